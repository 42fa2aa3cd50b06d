/**
 * Fused WebGPU kernels for tfjs-backend-webgpu 4.22.0, each with a CPU reference and a stock
 * tfjs fallback on other backends. `fusedOps` is the fused engine's ops table (src/engine).
 *
 * @example
 *   const model = CausalLM.create(config, { engine: fusedEngine });   // its layers call fusedOps
 *   await warmUpFusedKernels({ hidden: 128, vocab: 512, headDim: 32 });
 */
import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../src/nn/ops.js';
import { makeLinearCrossEntropy } from '../src/nn/linear_cross_entropy.js';
import { ensureRegistered } from './registry.js';
import { fusedLayerNorm, fusedRmsNorm, fusedAddLayerNorm, fusedAddRmsNorm } from './norm.js';
import { fusedAttention, fusedAttentionSegments, fusedAttentionPacked } from './attention.js';
import { fusedGelu, fusedBiasGelu, fusedSwiglu, stockGelu } from './activations.js';
import { fusedCrossEntropy, fusedMaskedCrossEntropy } from './cross_entropy.js';
import { fusedAttentionMask } from './mask.js';
import { fusedLinear } from './linear.js';

// Kernels and their ops
export { fusedMaskedCrossEntropy, fusedCrossEntropy, stockMaskedCrossEntropy, stockCrossEntropy, type MaskedCrossEntropy } from './cross_entropy.js';
export { fusedLayerNorm, fusedRmsNorm, fusedAddLayerNorm, fusedAddRmsNorm, stockLayerNorm, stockRmsNorm } from './norm.js';
export { fusedAttention, fusedSegmentAttention, fusedAttentionSegments, fusedAttentionPacked, stockAttention, segmentMask, type SegmentAttentionOptions } from './attention.js';
export { fusedAttentionMask } from './mask.js';
export { fusedLinear } from './linear.js';
export { matmul2d, columnSum } from './matmul.js';
export { fusedGelu, fusedBiasGelu, fusedSwiglu, stockGelu, stockSwiglu } from './activations.js';
export { fusedAdamwUpdate, fusedClipGradNorm, type ClipResult, type AdamWStateLike } from './adamw.js';
export { fusedClipAdamw } from './clip_adamw.js';
// CPU references
export { maskedCrossEntropyRef, rowCrossEntropyRef } from './cross_entropy_ref.js';
export { normRef } from './norm_ref.js';
export { attentionRef } from './attention_ref.js';
export { adamwRef, globalNormRef } from './adamw_ref.js';
export { geluTanhRef, geluTanhGradRef, swigluRef, erfRef, geluErfRef } from './activations_ref.js';
export { matmulRef, columnSumRef, linearRef } from './linear_ref.js';
export { attentionMaskRef } from './mask_ref.js';
// Runtime, measurement, warm-up
export { runProgram, run, toTensors, makeShader, compiledPipelineCount, type KernelProgram } from './runtime.js';
export { startGpuMeter, flush, type GpuMeter, type GpuMeterReading } from './counters.js';
export { warmUpFusedKernels, type WarmUpShapes } from './warmup.js';
export { fusedKernelsAvailable } from './registry.js';

/** Registers every fused kernel and its gradient with tfjs (idempotent; ops also do it on first use). */
export function registerFusedKernels(): void {
  ensureRegistered();
}

/** ops.linearCrossEntropy over the fused matmuls and the one-pass row cross-entropy. */
export const fusedLinearCrossEntropy = makeLinearCrossEntropy({ linear: fusedLinear, crossEntropy: fusedCrossEntropy });

/**
 * The fused engine's ops table (src/nn/ops.ts Ops): every entry a fused kernel. Each falls back
 * to the stock op off WebGPU, so a model bound to it still runs on any backend. A new fused op
 * is one more entry here, with its stock reference in stockOps.
 */
export const fusedOps: Readonly<Ops> = Object.freeze({
  layerNorm: fusedLayerNorm,
  rmsNorm: fusedRmsNorm,
  attention: fusedAttention,
  gelu: fusedGelu,
  swiglu: fusedSwiglu,
  crossEntropy: fusedCrossEntropy,
  attentionMask: fusedAttentionMask,
  attentionSegments: fusedAttentionSegments,
  attentionPacked: fusedAttentionPacked,
  addLayerNorm: fusedAddLayerNorm,
  addRmsNorm: fusedAddRmsNorm,
  biasGelu: (x: tf.Tensor, bias: tf.Tensor1D, approximate: 'tanh' | 'erf') => (approximate === 'tanh' ? fusedBiasGelu(x, bias) : tf.tidy(() => stockGelu(tf.add(x, bias), 'erf'))),
  maskedCrossEntropy: fusedMaskedCrossEntropy,
  linear: fusedLinear,
  linearCrossEntropy: fusedLinearCrossEntropy,
});

