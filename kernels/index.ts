/**
 * Fused WebGPU kernels for tfjs-backend-webgpu 4.22.0, each with a CPU reference and a stock
 * tfjs fallback on other backends.
 *
 * @example
 *   registerFusedKernels();
 *   const restore = useFusedOps();     // the model's ops table now runs the fused kernels
 *   await warmUpFusedKernels({ hidden: 128, vocab: 512, headDim: 32 });
 *   ...
 *   restore();
 */
import * as tf from '@tensorflow/tfjs';
import { setOps } from '../src/nn/ops.js';
import { makeLinearCrossEntropy } from '../src/nn/linear_cross_entropy.js';
import { ensureRegistered, fusedKernelsAvailable } from './registry.js';
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
export { fusedUpdateRule } from './update_rule.js';
// CPU references
export { maskedCrossEntropyRef, rowCrossEntropyRef } from './cross_entropy_ref.js';
export { normRef } from './norm_ref.js';
export { attentionRef } from './attention_ref.js';
export { adamwRef, globalNormRef } from './adamw_ref.js';
export { geluTanhRef, geluTanhGradRef, swigluRef } from './activations_ref.js';
// Runtime, measurement, warm-up
export { runProgram, run, toTensors, makeShader, compiledPipelineCount, type KernelProgram } from './runtime.js';
export { startGpuMeter, flush, type GpuMeter, type GpuMeterReading } from './counters.js';
export { warmUpFusedKernels, type WarmUpShapes } from './warmup.js';
export { fusedKernelsAvailable, definedKernelNames } from './registry.js';

/** Registers every fused kernel and its gradient with tfjs (idempotent; ops also do it on first use). */
export function registerFusedKernels(): void {
  ensureRegistered();
}

/** ops.linearCrossEntropy over the fused matmuls and the one-pass row cross-entropy. */
export const fusedLinearCrossEntropy = makeLinearCrossEntropy({ linear: fusedLinear, crossEntropy: fusedCrossEntropy });

/**
 * Swaps the fused kernels into the model's ops table (src/nn/ops.ts): every entry (layerNorm,
 * rmsNorm, attention, gelu, swiglu, crossEntropy, attentionMask, attentionSegments,
 * attentionPacked, addLayerNorm, addRmsNorm, biasGelu, maskedCrossEntropy, linear, linearCrossEntropy). Each falls back to
 * stock ops off WebGPU, so this is safe on any backend. Returns a function that restores the
 * previous table.
 */
export function useFusedOps(): () => void {
  registerFusedKernels();
  return setOps({
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
    biasGelu: (x, bias, approximate) => (approximate === 'tanh' ? fusedBiasGelu(x, bias) : tf.tidy(() => stockGelu(tf.add(x, bias), 'erf'))),
    maskedCrossEntropy: fusedMaskedCrossEntropy,
    linear: fusedLinear,
    linearCrossEntropy: fusedLinearCrossEntropy,
  });
}

export { fusedKernelsAvailable as fusedOpsAvailable };
