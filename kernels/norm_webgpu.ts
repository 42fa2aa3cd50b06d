/**
 * LayerNorm and RMSNorm programs over the last axis, one dispatch per direction.
 *
 * No workgroup memory and no barrier: one invocation owns a whole row (forward, dx) or a whole
 * column (dgamma, dbeta) and loops over it in order. On a software adapter (lavapipe runs a
 * workgroup's invocations as SIMD lanes and splits the shader at every barrier) this measured
 * several times faster than a workgroup per row with tree reductions, and it is deterministic.
 *
 * Forward: two passes per row, mean then centred variance, as tf.moments does. With
 * `residual`, the row is first h = x + residual, written out as a second result, so the
 * residual add costs no dispatch.
 *
 *   y     [rows, C]   (x - mean) * rstd * gamma + beta        (RMS: x * rstd * gamma)
 *   stats [rows, 2]   mean, rstd per row                       (RMS: 0, rstd)
 *   h     [rows, C]   x + residual                             (only with residual)
 *
 * Backward: one dispatch with two kinds of workgroups: the first ceil(rows / WG) compute dx,
 * one row per invocation; the rest sum dgamma (and dbeta) over all rows, one column per
 * invocation.
 *
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) [+ dres],  g = dy * gamma, xhat = (x - mean) * rstd
 *   RMS: dx = rstd * (g - xhat * mean(g * xhat)) [+ dres],        xhat = x * rstd
 *   dgamma = sum_rows dy * xhat,  dbeta = sum_rows dy
 */
import type { KernelProgram } from './runtime.js';

export type NormKind = 'layer' | 'rms';

/** Invocations per workgroup of both programs (rows or columns per workgroup). */
export const NORM_WG = 64;
const WG = NORM_WG;

export function normForwardProgram(kind: NormKind, residual: boolean, rows: number, shape: number[]): KernelProgram {
  const inputs = ['x', ...(residual ? ['res'] : []), 'gamma', ...(kind === 'layer' ? ['beta'] : [])];
  const outputs = [{ name: 'y', shape }, { name: 'stats', shape: [rows, 2] }, ...(residual ? [{ name: 'h', shape }] : [])];
  // With a residual the summed row lives in h (read back by the same invocation that wrote it).
  const src = residual ? 'h' : 'x';
  return {
    shaderKey: `webtune_${kind}norm_fwd${residual ? '_res' : ''}`,
    variableNames: inputs,
    outputs,
    uniforms: [['C', 'u32'], ['eps', 'f32'], ['rows', 'u32']],
    workgroupSize: WG,
    workgroups: Math.ceil(rows / WG),
    getUserCode: () => `
fn main(wg: u32, lid: u32) {
  let row = wg * WG + lid;
  if (row >= uniforms.rows) { return; }
  let C = uniforms.C;
  let base = row * C;
  ${kind === 'layer' ? `
  var s = 0.0;
  for (var c = 0u; c < C; c = c + 1u) {
    ${residual ? `let v = x[base + c] + res[base + c]; h[base + c] = v;` : `let v = x[base + c];`}
    s = s + v;
  }
  let mean = s / f32(C);` : `
  let mean = 0.0;${residual ? `
  for (var c = 0u; c < C; c = c + 1u) { h[base + c] = x[base + c] + res[base + c]; }` : ''}`}
  var q = 0.0;
  for (var c = 0u; c < C; c = c + 1u) { let d = ${src}[base + c] - mean; q = q + d * d; }
  let rstd = inverseSqrt(q / f32(C) + uniforms.eps);
  for (var c = 0u; c < C; c = c + 1u) {
    y[base + c] = (${src}[base + c] - mean) * rstd * gamma[c]${kind === 'layer' ? ' + beta[c]' : ''};
  }
  stats[2u * row] = mean;
  stats[2u * row + 1u] = rstd;
}`,
  };
}

export function normBackwardProgram(kind: NormKind, withDres: boolean, rows: number, shape: number[]): KernelProgram {
  const C = shape[shape.length - 1];
  const rowGroups = Math.ceil(rows / WG);
  const layer = kind === 'layer';
  return {
    shaderKey: `webtune_${kind}norm_bwd${withDres ? '_dres' : ''}`,
    variableNames: ['x', 'gamma', 'stats', 'dy', ...(withDres ? ['dres'] : [])],
    outputs: [{ name: 'dx', shape }, { name: 'dgamma', shape: [C] }, ...(layer ? [{ name: 'dbeta', shape: [C] }] : [])],
    uniforms: [['C', 'u32'], ['rows', 'u32'], ['rowGroups', 'u32']],
    workgroupSize: WG,
    workgroups: rowGroups + Math.ceil(C / WG),
    getUserCode: () => `
fn main(wg: u32, lid: u32) {
  let C = uniforms.C;
  let rows = uniforms.rows;
  if (wg < uniforms.rowGroups) {
    // dx of one row.
    let row = wg * WG + lid;
    if (row >= rows) { return; }
    let base = row * C;
    let mean = stats[2u * row];
    let rstd = stats[2u * row + 1u];
    var a = 0.0;   // sum g
    var b = 0.0;   // sum g * xhat
    for (var c = 0u; c < C; c = c + 1u) {
      let g = dy[base + c] * gamma[c];
      a = a + g;
      b = b + g * (x[base + c] - mean) * rstd;
    }
    let meanG = ${layer ? 'a / f32(C)' : '0.0'};
    let meanGX = b / f32(C);
    for (var c = 0u; c < C; c = c + 1u) {
      let xhat = (x[base + c] - mean) * rstd;
      let g = dy[base + c] * gamma[c];
      dx[base + c] = rstd * (g - meanG - xhat * meanGX)${withDres ? ' + dres[base + c]' : ''};
    }
    return;
  }
  // dgamma/dbeta of one column, rows in order.
  let c = (wg - uniforms.rowGroups) * WG + lid;
  if (c >= C) { return; }
  var sg = 0.0;
  var sb = 0.0;
  for (var r = 0u; r < rows; r = r + 1u) {
    let d = dy[r * C + c];
    sg = sg + d * (x[r * C + c] - stats[2u * r]) * stats[2u * r + 1u];
    sb = sb + d;
  }
  dgamma[c] = sg;
  ${layer ? 'dbeta[c] = sb;' : 'let unusedDbeta = sb;'}
}`,
  };
}
