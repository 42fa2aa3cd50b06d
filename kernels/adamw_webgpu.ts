/**
 * Optimizer programs.
 *
 * adamw: one dispatch per parameter (two or more where the device allows more storage buffers) updates p, m and v together (torch.optim.AdamW, the
 * formulas of src/train/optim.ts), with the gradient-clipping coefficient read from a device
 * tensor, so clipping needs no readback and no extra pass over the gradients.
 *
 * clip: global L2 norm of many gradients, up to CLIP_GROUP per dispatch, each dispatch adding
 * to the running sum of squares of the previous one (one workgroup, fixed order: deterministic).
 * Its output [3] = (sum of squares, clip coefficient min(1, maxNorm / (norm + 1e-6)), norm).
 */
import type { KernelProgram } from './runtime.js';

/**
 * AdamW over k parameters in one dispatch (k = 1 on a device with the default 8 storage
 * buffers; 7 bindings per parameter, plus the clip statistics). Workgroups [wgStart_i,
 * wgStart_{i+1}) belong to parameter i.
 */
export function adamwProgram(sizes: number[]): KernelProgram {
  const k = sizes.length;
  const ids = Array.from({ length: k }, (_, i) => i);
  const wgs = sizes.reduce((a, n) => a + Math.ceil(n / 256), 0);
  const body = (i: number) => `
    let idx = (wg - uniforms.wgStart${i}) * WG + lid;
    if (idx >= uniforms.n${i}) { return; }
    let gr = g${i}[idx] * gscale[uniforms.scaleIndex];
    let m0 = m${i}[idx];
    let m1 = m0 + (gr - m0) * (1.0 - uniforms.beta1);          // torch: exp_avg.lerp_(grad, 1 - beta1)
    let v1 = v${i}[idx] * uniforms.beta2 + gr * gr * (1.0 - uniforms.beta2);
    let denom = sqrt(v1) / uniforms.bc2sqrt + uniforms.eps;
    pOut${i}[idx] = p${i}[idx] * uniforms.decay${i} - m1 / denom * uniforms.stepSize;
    mOut${i}[idx] = m1;
    vOut${i}[idx] = v1;`;
  return {
    shaderKey: `webtune_adamw_${k}`,
    variableNames: [...ids.flatMap((i) => [`p${i}`, `g${i}`, `m${i}`, `v${i}`]), 'gscale'],
    outputs: ids.flatMap((i) => [{ name: `pOut${i}`, shape: [sizes[i]] }, { name: `mOut${i}`, shape: [sizes[i]] }, { name: `vOut${i}`, shape: [sizes[i]] }]),
    uniforms: [...ids.flatMap((i) => [[`n${i}`, 'u32'], [`wgStart${i}`, 'u32'], [`decay${i}`, 'f32']] as Array<[string, 'u32' | 'f32']>),
      ['beta1', 'f32'], ['beta2', 'f32'], ['bc2sqrt', 'f32'], ['eps', 'f32'], ['stepSize', 'f32'], ['scaleIndex', 'u32']],
    workgroupSize: 256,
    workgroups: wgs,
    getUserCode: () => `
fn main(wg: u32, lid: u32) {
  ${ids.map((i) => (i === k - 1 ? `{${body(i)}\n  }` : `if (wg < uniforms.wgStart${i + 1}) {${body(i)}\n    return;\n  }`)).join('\n  ')}
}`,
  };
}

/** Work-group start offsets of adamwProgram's parameters (the uniforms wgStart_i). */
export function adamwStarts(sizes: number[]): number[] {
  const starts: number[] = [];
  let wgs = 0;
  for (const n of sizes) { starts.push(wgs); wgs += Math.ceil(n / 256); }
  return starts;
}

/** Parameters per AdamW dispatch for a device allowing `storage` storage buffers per stage. */
export function adamwGroup(storage: number): number {
  return Math.max(1, Math.floor((storage - 1) / 7));
}

/** Gradients per clip dispatch: one output and the running sum take two bindings. */
export function clipGroup(storage: number): number {
  return Math.max(1, storage - 2);
}

/** Gradients per clip dispatch on a device with the default 8 storage bindings (1 output + the running sum + 6 gradients). */
export const CLIP_GROUP = 6;

export function clipProgram(count: number): KernelProgram {
  const names = Array.from({ length: count }, (_, i) => `g${i}`);
  return {
    shaderKey: `webtune_clip_${count}`,
    variableNames: ['prev', ...names],
    outputs: [{ name: 'result', shape: [3] }],
    uniforms: [...names.map((n) => [`${n}Size`, 'u32'] as [string, 'u32']), ['maxNorm', 'f32']],
    workgroupSize: 256,
    workgroups: 1,
    getUserCode: () => `
var<workgroup> red: array<f32, WG>;
fn main(wg: u32, lid: u32) {
  var s = 0.0;
  ${names.map((n) => `for (var i = lid; i < uniforms.${n}Size; i = i + WG) { let x = ${n}[i]; s = s + x * x; }`).join('\n  ')}
  red[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) { if (lid < k) { red[lid] = red[lid] + red[lid + k]; } workgroupBarrier(); }
  if (lid == 0u) {
    let total = prev[0] + red[0];
    let norm = sqrt(total);
    result[0] = total;
    result[1] = select(1.0, min(1.0, uniforms.maxNorm / (norm + 1e-6)), uniforms.maxNorm > 0.0);
    result[2] = norm;
  }
}`,
  };
}
