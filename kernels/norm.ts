/**
 * Fused LayerNorm / RMSNorm (optionally with the residual add folded in): registrations and ops.
 * Signatures are those of ops.layerNorm / ops.rmsNorm; one dispatch forward, one backward.
 *
 * @example
 *   const y = fusedLayerNorm(x, gamma, beta, 1e-5);               // [..., C]
 *   const { sum, y: y2 } = fusedAddLayerNorm(x, attnOut, gamma, beta, 1e-5);   // sum = x + attnOut, y2 = LN(sum)
 */
import * as tf from '@tensorflow/tfjs';
import { normBackwardProgram, normForwardProgram, NORM_WG, type NormKind } from './norm_webgpu.js';
import { defineKernel, fusedKernelsAvailable, runFused } from './registry.js';
import { run, runProgram } from './runtime.js';

const NAMES: Record<NormKind, { plain: string; residual: string }> = {
  layer: { plain: 'WebTuneLayerNorm', residual: 'WebTuneAddLayerNorm' },
  rms: { plain: 'WebTuneRMSNorm', residual: 'WebTuneAddRMSNorm' },
};


for (const kind of ['layer', 'rms'] as NormKind[]) {
  for (const residual of [false, true]) {
    const kernelName = residual ? NAMES[kind].residual : NAMES[kind].plain;
    const paramNames = kind === 'layer' ? ['gamma', 'beta'] : ['gamma'];
    defineKernel({
      kernel: {
        kernelName,
        backendName: 'webgpu',
        kernelFunc: ({ inputs, attrs }) => {
          const x = inputs.x as tf.TensorInfo;
          const C = x.shape[x.shape.length - 1];
          const rows = tf.util.sizeFromShape(x.shape) / C;
          const ins = [x, ...(residual ? [inputs.residual as tf.TensorInfo] : []), ...paramNames.map((n) => inputs[n] as tf.TensorInfo)];
          return runProgram(normForwardProgram(kind, residual, rows, x.shape), ins, [C, attrs!.eps as number, rows]);
        },
      },
      gradient: {
        kernelName,
        inputsToSave: ['x', 'gamma'],
        // y, stats[, h]: stats always; h (x + residual) with a residual, since xhat is computed from it.
        outputsToSave: residual ? [false, true, true] : [false, true],
        gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [dy, , dh] = dys as tf.Tensor[];
          const [xIn, gamma, stats, h] = saved;
          const x = residual ? h : xIn;
          const C = x.shape[x.shape.length - 1];
          const rows = x.size / C;
          // One dispatch yields every gradient; the closures hand them out.
          const grads = run(normBackwardProgram(kind, residual, rows, x.shape),
            [x, gamma, stats, dy, ...(residual ? [dh] : [])], [C, rows, Math.ceil(rows / NORM_WG)]);
          const [dx, dgamma, dbeta] = grads;
          const out: Record<string, () => tf.Tensor> = { x: () => dx, gamma: () => dgamma };
          if (kind === 'layer') out.beta = () => dbeta;
          // The same dx flows into both addends; a clone (no copy) keeps the engine's accounting per input.
          if (residual) out.residual = () => tf.clone(dx);
          return out;
        },
      },
    });
  }
}

function useFused(x: tf.Tensor): boolean {
  return fusedKernelsAvailable() && x.size > 0 && x.dtype === 'float32';
}

/** (x - mean) / sqrt(var + eps) * gamma + beta over the last axis. x [..., C], gamma/beta [C]. */
export function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  if (!useFused(x)) return stockLayerNorm(x, gamma, beta, eps);
  const [y, stats] = runFused(NAMES.layer.plain, { x, gamma, beta }, { eps });
  stats.dispose();
  return y;
}

/** x / sqrt(mean(x^2) + eps) * weight over the last axis. */
export function fusedRmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  if (!useFused(x)) return stockRmsNorm(x, weight, eps);
  const [y, stats] = runFused(NAMES.rms.plain, { x, gamma: weight }, { eps });
  stats.dispose();
  return y;
}

/** sum = x + residual and y = LayerNorm(sum), in one dispatch each way. */
export function fusedAddLayerNorm(x: tf.Tensor, residual: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): { sum: tf.Tensor; y: tf.Tensor } {
  if (!useFused(x) || !tf.util.arraysEqual(x.shape, residual.shape)) {
    return tf.tidy(() => { const sum = tf.add(x, residual); return { sum, y: stockLayerNorm(sum, gamma, beta, eps) }; });
  }
  const [y, stats, sum] = runFused(NAMES.layer.residual, { x, residual, gamma, beta }, { eps });
  stats.dispose();
  return { sum, y };
}

/** sum = x + residual and y = RMSNorm(sum). */
export function fusedAddRmsNorm(x: tf.Tensor, residual: tf.Tensor, weight: tf.Tensor1D, eps: number): { sum: tf.Tensor; y: tf.Tensor } {
  if (!useFused(x) || !tf.util.arraysEqual(x.shape, residual.shape)) {
    return tf.tidy(() => { const sum = tf.add(x, residual); return { sum, y: stockRmsNorm(sum, weight, eps) }; });
  }
  const [y, stats, sum] = runFused(NAMES.rms.residual, { x, residual, gamma: weight }, { eps });
  stats.dispose();
  return { sum, y };
}

/** Stock composition (tf.moments, biased variance like torch). */
export function stockLayerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, x.rank - 1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  });
}

export function stockRmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), x.rank - 1, true), eps))), weight));
}
