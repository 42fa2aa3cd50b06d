/**
 * Shader warm-up: runs every fused program once, forward and backward, on tiny inputs with the
 * model's compile-time shape classes (hidden width, vocabulary, head dim pick the workgroup
 * variants), so pipelines are compiled before the first timed step. Sizes never enter a
 * pipeline key, so tiny batches compile exactly the pipelines a real step uses.
 *
 * @example
 *   await warmUpFusedKernels({ hidden: 128, vocab: 512, headDim: 32, inner: 512 });   // -> 21 (pipelines compiled)
 */
import * as tf from '@tensorflow/tfjs';
import { fusedMaskedCrossEntropy, fusedCrossEntropy } from './cross_entropy.js';
import { fusedLayerNorm, fusedRmsNorm, fusedAddLayerNorm, fusedAddRmsNorm } from './norm.js';
import { fusedAttention, fusedSegmentAttention, fusedAttentionPacked } from './attention.js';
import { fusedAttentionMask } from './mask.js';
import { fusedLinear } from './linear.js';
import { columnSum } from './matmul.js';
import { fusedGelu, fusedBiasGelu, fusedSwiglu } from './activations.js';
import { fusedAdamwUpdate, fusedClipGradNorm } from './adamw.js';
import { adamwGroup, clipGroup } from './adamw_webgpu.js';
import { fusedKernelsAvailable } from './registry.js';
import { compiledPipelineCount, webgpuBackend } from './runtime.js';
import { flush } from './counters.js';

export interface WarmUpShapes {
  /** Model width (norm rows). */
  hidden: number;
  vocab: number;
  headDim: number;
  /** MLP width (activations are size-independent; kept for completeness of the shapes). */
  inner?: number;
}

/** Compiles every fused pipeline for these shapes; returns the number of pipelines compiled so far. No-op off WebGPU. */
export async function warmUpFusedKernels(shapes: WarmUpShapes): Promise<number> {
  if (!fusedKernelsAvailable()) return 0;
  const { hidden: C, vocab: V, headDim: D } = shapes;
  tf.tidy(() => {
    const B = 1, T = 2, H = 2;
    const sum = (t: tf.Tensor) => tf.sum(t);
    const labels = tf.tensor2d([[1 % V, 0]], [B, T], 'int32');
    tf.grad((x: tf.Tensor) => fusedMaskedCrossEntropy(x as tf.Tensor3D, labels).loss)(tf.zeros([B, T, V]));
    tf.grad((x: tf.Tensor) => sum(fusedCrossEntropy(x as tf.Tensor2D, tf.tensor1d([0, 0], 'int32'))))(tf.zeros([2, V]));
    const x = tf.ones([B, T, C]), g = tf.ones([C]) as tf.Tensor1D, b = tf.zeros([C]) as tf.Tensor1D;
    tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => sum(fusedLayerNorm(a, c as tf.Tensor1D, d as tf.Tensor1D, 1e-5)))([x, g, b]);
    tf.grads((a: tf.Tensor, c: tf.Tensor) => sum(fusedRmsNorm(a, c as tf.Tensor1D, 1e-5)))([x, g]);
    tf.grads((a: tf.Tensor, r: tf.Tensor) => { const o = fusedAddLayerNorm(a, r, g, b, 1e-5); return tf.add(sum(o.y), sum(o.sum)); })([x, x]);
    tf.grads((a: tf.Tensor, r: tf.Tensor) => { const o = fusedAddRmsNorm(a, r, g, 1e-5); return tf.add(sum(o.y), sum(o.sum)); })([x, x]);
    const q = tf.ones([B, H, T, D]) as tf.Tensor4D;
    const mask = tf.zeros([1, 1, T, T]) as tf.Tensor4D;
    tf.grads((a: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => sum(fusedAttention(a as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, mask, 0.5)))([q, q, q]);
    const seg = tf.ones([B, T], 'int32') as tf.Tensor2D;
    for (const s of [seg, null]) {
      tf.grads((a: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => sum(fusedSegmentAttention(a as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, s)))([q, q, q]);
      // Packed qkv [B, T, 3 H D] (GPT-2's c_attn), masked and causal-only variants.
      tf.grad((a: tf.Tensor) => sum(fusedAttentionPacked(a as tf.Tensor3D, H, H, s, 0.5)))(tf.ones([B, T, 3 * H * D]));
    }
    fusedAttentionMask(seg, seg, 0, T, T);
    fusedAttentionMask(null, null, 0, T, T);
    // The linear layers' matmul, with and without the bias (8 x 8: the kernel's tile).
    const x8 = tf.ones([8, 8]) as tf.Tensor2D;
    tf.grads((a: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => sum(fusedLinear(a as tf.Tensor2D, w as tf.Tensor2D, false, c as tf.Tensor1D)))([x8, x8, tf.zeros([8])]);
    tf.grad((a: tf.Tensor) => sum(fusedLinear(a as tf.Tensor2D, x8, true)))(x8);
    columnSum(x8);
    tf.grad((a: tf.Tensor) => sum(fusedGelu(a, 'tanh')))(x);
    tf.grads((a: tf.Tensor, c: tf.Tensor) => sum(fusedBiasGelu(a, c as tf.Tensor1D)))([x, b]);
    tf.grads((a: tf.Tensor, c: tf.Tensor) => sum(fusedSwiglu(a, c)))([x, x]);
    // AdamW and clipping at every group size the device's storage-buffer limit allows
    // (a model's last group is usually a partial one).
    const limit: number = webgpuBackend()!.device.limits.maxStorageBuffersPerShaderStage;
    const perUpdate = adamwGroup(limit), perClip = clipGroup(limit);
    const names = Array.from({ length: Math.max(perUpdate, perClip) }, (_, i) => `w${i}`);
    const variable = () => tf.variable(tf.zeros([3]), false);
    const params = new Map(names.map((n) => [n, variable()] as [string, tf.Variable]));
    const grads = new Map(names.map((n) => [n, tf.ones([3])] as [string, tf.Tensor]));
    const state = { step: 0, m: new Map(names.map((n) => [n, variable()] as [string, tf.Variable])), v: new Map(names.map((n) => [n, variable()] as [string, tf.Variable])), decay: new Map(names.map((n) => [n, true] as [string, boolean])) };
    for (let k = 1; k <= perClip; k++) fusedClipGradNorm(new Map([...grads].slice(0, k)), 1).dispose();
    const clip = fusedClipGradNorm(grads, 1);
    for (let k = 1; k <= perUpdate; k++) fusedAdamwUpdate(new Map([...grads].slice(0, k)), state, params, { lr: 0 }, { clip });
    clip.dispose();
    for (const m of [params, state.m, state.v]) for (const t of m.values()) t.dispose();
  });
  await flush();
  return compiledPipelineCount();
}
