/**
 * The additive attention mask of ops.attentionMask in one dispatch (the stock composition takes
 * about ten): mask[b, 0, i, j] = 0 where query i (absolute offset + i) sees key j, else -1e9.
 * The rule is src/nn/visibility.ts (query i at absolute position offset + i; with segments segQ
 * for the queries, segK for the keys). Integer inputs, so no gradient. Reference:
 * kernels/mask_ref.ts; test: test/kernels/mask.test.ts.
 *
 * The model's self-attention with the fused table never reads this mask (it hands the segment
 * ids to the attention kernel); it is still built, exactly, for callers that do.
 */
import * as tf from '@tensorflow/tfjs';
import { MASK_VALUE, stockOps } from '../src/nn/ops.js';
import { fusedKernelsAvailable } from './registry.js';
import { run, type KernelProgram } from './runtime.js';
import { attendsWGSL } from '../src/nn/visibility.js';

function maskProgram(withSegments: boolean, shape: number[]): KernelProgram {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    shaderKey: `webtune_attn_mask_${withSegments ? 'seg' : 'causal'}`,
    variableNames: withSegments ? ['segQ', 'segK'] : [],
    outputs: [{ name: 'mask', shape }],
    uniforms: [['n', 'u32'], ['T', 'u32'], ['S', 'u32'], ['offset', 'u32'], ['hidden', 'f32']],
    workgroupSize: 256,
    workgroups: Math.ceil(n / 256),
    getUserCode: () => `
${attendsWGSL('attends', withSegments)}
fn main(wg: u32, lid: u32) {
  let x = wg * WG + lid;
  if (x >= uniforms.n) { return; }
  let j = x % uniforms.S;
  let i = (x / uniforms.S) % uniforms.T;
  ${withSegments ? `let b = x / (uniforms.S * uniforms.T);
  let ok = attends(segQ[b * uniforms.T + i], segK[b * uniforms.S + j], uniforms.offset + i, j);` : 'let ok = attends(0, 0, uniforms.offset + i, j);'}
  mask[x] = select(uniforms.hidden, 0.0, ok);
}`,
  };
}

/** ops.attentionMask: [B or 1, 1, T, S] additive mask. */
export function fusedAttentionMask(segQ: tf.Tensor2D | null, segK: tf.Tensor2D | null, offset: number, T: number, S: number): tf.Tensor4D {
  if (!fusedKernelsAvailable() || T * S === 0 || (segQ && segQ.dtype !== 'int32') || (segK && segK.dtype !== 'int32')) {
    return stockOps.attentionMask(segQ, segK, offset, T, S);
  }
  const seg = segQ && segK;
  const shape = seg ? [segQ.shape[0], 1, T, S] : [1, 1, T, S];
  return run(maskProgram(!!seg, shape), seg ? [segQ, segK] : [], [shape.reduce((a, b) => a * b, 1), T, S, offset, MASK_VALUE])[0] as tf.Tensor4D;
}
