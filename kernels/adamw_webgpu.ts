/**
 * Optimizer programs.
 *
 * adamw: one dispatch per parameter updates p, m and v together (torch.optim.AdamW, the
 * formulas of src/train/optim.ts), with the gradient-clipping coefficient read from a device
 * tensor, so clipping needs no readback and no extra pass over the gradients.
 *
 * clip: global L2 norm of many gradients, up to CLIP_GROUP per dispatch, each dispatch adding
 * to the running sum of squares of the previous one (one workgroup, fixed order: deterministic).
 * Its output [3] = (sum of squares, clip coefficient min(1, maxNorm / (norm + 1e-6)), norm).
 */
import type { KernelProgram } from './runtime.js';

export function adamwProgram(n: number): KernelProgram {
  return {
    shaderKey: 'webtune_adamw',
    variableNames: ['p', 'g', 'm', 'v', 'gscale'],
    outputs: [{ name: 'pOut', shape: [n] }, { name: 'mOut', shape: [n] }, { name: 'vOut', shape: [n] }],
    uniforms: [['n', 'u32'], ['decay', 'f32'], ['beta1', 'f32'], ['beta2', 'f32'], ['bc2sqrt', 'f32'], ['eps', 'f32'], ['stepSize', 'f32'], ['scaleIndex', 'u32']],
    workgroupSize: 256,
    workgroups: Math.ceil(n / 256),
    getUserCode: () => `
fn main(wg: u32, lid: u32) {
  let idx = wg * WG + lid;
  if (idx >= uniforms.n) { return; }
  let gr = g[idx] * gscale[uniforms.scaleIndex];
  let m0 = m[idx];
  let m1 = m0 + (gr - m0) * (1.0 - uniforms.beta1);          // torch: exp_avg.lerp_(grad, 1 - beta1)
  let v1 = v[idx] * uniforms.beta2 + gr * gr * (1.0 - uniforms.beta2);
  let denom = sqrt(v1) / uniforms.bc2sqrt + uniforms.eps;
  pOut[idx] = p[idx] * uniforms.decay - m1 / denom * uniforms.stepSize;
  mOut[idx] = m1;
  vOut[idx] = v1;
}`,
  };
}

/** Gradients per clip dispatch: 8 storage bindings = 1 output + the running sum + 6 gradients. */
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
