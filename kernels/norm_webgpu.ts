/**
 * LayerNorm and RMSNorm programs over the last axis, one dispatch per direction.
 *
 * Forward: one workgroup per row; the row statistics are reduced in workgroup memory (two
 * passes, mean then centred variance, as tf.moments does). With `residual`, the row is first
 * h = x + residual, written out as a second result, so the residual add costs no dispatch.
 *
 *   y     [rows, C]   (x - mean) * rstd * gamma + beta        (RMS: x * rstd * gamma)
 *   stats [rows, 2]   mean, rstd per row                       (RMS: 0, rstd)
 *   h     [rows, C]   x + residual                             (only with residual)
 *
 * Backward: one dispatch with two kinds of workgroups. The first `rows` workgroups compute dx
 * of one row each (row reductions in workgroup memory); the remaining ones each own COLS
 * columns and sum dgamma (and dbeta) over all rows, LANES rows at a time, so no second
 * reduction pass is needed.
 *
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) [+ dres],  g = dy * gamma, xhat = (x - mean) * rstd
 *   RMS: dx = rstd * (g - xhat * mean(g * xhat)) [+ dres],        xhat = x * rstd
 *   dgamma = sum_rows dy * xhat,  dbeta = sum_rows dy
 */
import type { KernelProgram } from './runtime.js';

export type NormKind = 'layer' | 'rms';

export function normForwardProgram(kind: NormKind, residual: boolean, rows: number, shape: number[], wg: number): KernelProgram {
  const C = shape[shape.length - 1];
  const inputs = ['x', ...(residual ? ['res'] : []), 'gamma', ...(kind === 'layer' ? ['beta'] : [])];
  const outputs = [{ name: 'y', shape }, { name: 'stats', shape: [rows, 2] }, ...(residual ? [{ name: 'h', shape }] : [])];
  // With a residual the summed row lives in h (read back by the same thread that wrote it).
  const src = residual ? 'h' : 'x';
  return {
    shaderKey: `webtune_${kind}norm_fwd${residual ? '_res' : ''}`,
    variableNames: inputs,
    outputs,
    uniforms: [['C', 'u32'], ['eps', 'f32']],
    workgroupSize: wg,
    workgroups: rows,
    getUserCode: () => `
var<workgroup> red: array<f32, WG>;
fn main(row: u32, lid: u32) {
  let C = uniforms.C;
  let base = row * C;
  ${kind === 'layer' ? `
  var s = 0.0;
  for (var c = lid; c < C; c = c + WG) {
    ${residual ? `let v = x[base + c] + res[base + c]; h[base + c] = v;` : `let v = x[base + c];`}
    s = s + v;
  }
  red[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) { if (lid < k) { red[lid] = red[lid] + red[lid + k]; } workgroupBarrier(); }
  let mean = red[0] / f32(C);
  workgroupBarrier();` : `
  let mean = 0.0;${residual ? `
  for (var c = lid; c < C; c = c + WG) { h[base + c] = x[base + c] + res[base + c]; }` : ''}`}
  var q = 0.0;
  for (var c = lid; c < C; c = c + WG) { let d = ${src}[base + c] - mean; q = q + d * d; }
  red[lid] = q;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) { if (lid < k) { red[lid] = red[lid] + red[lid + k]; } workgroupBarrier(); }
  let rstd = inverseSqrt(red[0] / f32(C) + uniforms.eps);
  for (var c = lid; c < C; c = c + WG) {
    y[base + c] = (${src}[base + c] - mean) * rstd * gamma[c]${kind === 'layer' ? ' + beta[c]' : ''};
  }
  if (lid == 0u) { stats[2u * row] = mean; stats[2u * row + 1u] = rstd; }
}`,
  };
}

/** Threads of a column workgroup that walk different rows. */
export const NORM_LANES = 4;

export function normBackwardProgram(kind: NormKind, withDres: boolean, rows: number, shape: number[], wg: number): KernelProgram {
  const C = shape[shape.length - 1];
  const cols = wg / NORM_LANES;
  const colGroups = Math.ceil(C / cols);
  const layer = kind === 'layer';
  return {
    shaderKey: `webtune_${kind}norm_bwd${withDres ? '_dres' : ''}`,
    variableNames: ['x', 'gamma', 'stats', 'dy', ...(withDres ? ['dres'] : [])],
    outputs: [{ name: 'dx', shape }, { name: 'dgamma', shape: [C] }, ...(layer ? [{ name: 'dbeta', shape: [C] }] : [])],
    uniforms: [['C', 'u32'], ['rows', 'u32']],
    workgroupSize: wg,
    workgroups: rows + colGroups,
    getUserCode: () => `
var<workgroup> redA: array<f32, WG>;
var<workgroup> redB: array<f32, WG>;
const COLS: u32 = ${cols}u;
const LANES: u32 = ${NORM_LANES}u;
fn main(wg: u32, lid: u32) {
  let C = uniforms.C;
  let rows = uniforms.rows;
  if (wg < rows) {
    // dx of row wg.
    let base = wg * C;
    let mean = stats[2u * wg];
    let rstd = stats[2u * wg + 1u];
    var a = 0.0;   // sum g
    var b = 0.0;   // sum g * xhat
    for (var c = lid; c < C; c = c + WG) {
      let g = dy[base + c] * gamma[c];
      a = a + g;
      b = b + g * (x[base + c] - mean) * rstd;
    }
    redA[lid] = a;
    redB[lid] = b;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k >> 1u) {
      if (lid < k) { redA[lid] = redA[lid] + redA[lid + k]; redB[lid] = redB[lid] + redB[lid + k]; }
      workgroupBarrier();
    }
    let meanG = ${layer ? 'redA[0] / f32(C)' : '0.0'};
    let meanGX = redB[0] / f32(C);
    for (var c = lid; c < C; c = c + WG) {
      let xhat = (x[base + c] - mean) * rstd;
      let g = dy[base + c] * gamma[c];
      dx[base + c] = rstd * (g - meanG - xhat * meanGX)${withDres ? ' + dres[base + c]' : ''};
    }
    return;
  }
  // dgamma/dbeta of columns [c0, c0 + COLS): thread (lane, col) walks rows lane, lane + LANES, ...
  let col = lid % COLS;
  let lane = lid / COLS;
  let c = (wg - rows) * COLS + col;
  var sg = 0.0;
  var sb = 0.0;
  if (c < C) {
    for (var r = lane; r < rows; r = r + LANES) {
      let d = dy[r * C + c];
      sg = sg + d * (x[r * C + c] - stats[2u * r]) * stats[2u * r + 1u];
      sb = sb + d;
    }
  }
  redA[lid] = sg;
  redB[lid] = sb;
  workgroupBarrier();
  if (lane == 0u && c < C) {
    var tg = 0.0;
    var tb = 0.0;
    for (var l = 0u; l < LANES; l = l + 1u) { tg = tg + redA[l * COLS + col]; tb = tb + redB[l * COLS + col]; }
    dgamma[c] = tg;
    ${layer ? 'dbeta[c] = tb;' : 'let unusedDbeta = tb;'}
  }
}`,
  };
}
