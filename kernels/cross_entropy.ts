/**
 * Fused softmax cross-entropy: the kernel registrations and the ops.
 *
 *   fusedMaskedCrossEntropy(logits [B, T, V], labels int32 [B, T]) -> { loss, rowSums [B], rowCounts [B] }
 *     Same contract as src/train/loss.ts maskedCrossEntropy: the label shift happens inside
 *     (logits at t predict labels at t + 1), labels outside [0, V) (-100) are ignored,
 *     loss = sum / count over trained positions (0, not NaN, when there are none).
 *     WebGPU: 2 dispatches forward (rows, then a one-workgroup reduction), 1 backward.
 *
 *   fusedCrossEntropy(logits [N, V], targets int32 [N]) -> nll [N]
 *     Drop-in for ops.crossEntropy. 1 dispatch forward, 1 backward.
 *
 * On any other backend both fall back to stock tfjs compositions with the same semantics.
 *
 * @example
 *   const { loss } = fusedMaskedCrossEntropy(logits, labels);
 *   await loss.data();   // Float32Array [2.31...]
 */
import * as tf from '@tensorflow/tfjs';
import { ceBackwardProgram, ceForwardProgram, ceReduceProgram } from './cross_entropy_webgpu.js';
import { defineKernel, fusedKernelsAvailable, runFused } from './registry.js';
import { pow2AtMost, run, runProgram } from './runtime.js';

const MASKED = 'WebTuneMaskedCrossEntropy';
const ROWS = 'WebTuneRowCrossEntropy';

function rowWorkgroup(V: number): number {
  return pow2AtMost(V, 256, 64);
}

defineKernel({
  kernel: {
    kernelName: MASKED,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend }) => {
      const { logits, labels } = inputs as { logits: tf.TensorInfo; labels: tf.TensorInfo };
      const [B, T, V] = logits.shape;
      const rows = B * T;
      const [nll, lse] = runProgram(ceForwardProgram('shifted', rows, rowWorkgroup(V)), [logits, labels], [T, V]);
      const [loss, rowSums, rowCounts] = runProgram(ceReduceProgram(B), [nll, labels], [B, T, V]);
      (backend as any).disposeData(nll.dataId);
      return [loss, rowSums, rowCounts, lse];
    },
  },
  gradient: {
    kernelName: MASKED,
    inputsToSave: ['logits', 'labels'],
    outputsToSave: [false, false, true, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [dLoss, dRowSums] = dys as tf.Tensor[];
      const [logits, labels, rowCounts, lse] = saved;
      const [B, T, V] = logits.shape;
      return {
        logits: () => {
          const prog = ceBackwardProgram('shifted', B * T, V, rowWorkgroup(V));
          prog.outputs[0].shape = logits.shape;
          return run(prog, [logits, labels, lse, rowCounts, dLoss, dRowSums], [B, T, V])[0];
        },
        labels: () => tf.zerosLike(labels),
      };
    },
  },
});

defineKernel({
  kernel: {
    kernelName: ROWS,
    backendName: 'webgpu',
    kernelFunc: ({ inputs }) => {
      const { logits, targets } = inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
      const [N, V] = logits.shape;
      return runProgram(ceForwardProgram('rows', N, rowWorkgroup(V)), [logits, targets], [1, V]);
    },
  },
  gradient: {
    kernelName: ROWS,
    inputsToSave: ['logits', 'targets'],
    outputsToSave: [false, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [dy] = dys as tf.Tensor[];
      const [logits, targets, lse] = saved;
      const [N, V] = logits.shape;
      return {
        logits: () => run(ceBackwardProgram('rows', N, V, rowWorkgroup(V)), [logits, targets, lse, dy], [1, 1, V])[0],
        targets: () => tf.zerosLike(targets),
      };
    },
  },
});

export interface MaskedCrossEntropy {
  /** sum / count over trained positions; 0 when there are none. */
  loss: tf.Scalar;
  /** [B] summed nll of each row. */
  rowSums: tf.Tensor1D;
  /** [B] trained positions of each row. */
  rowCounts: tf.Tensor1D;
}

/** Masked, shifted cross-entropy (see the file comment). logits [B, T, V] float32, labels [B, T] int32. */
export function fusedMaskedCrossEntropy(logits: tf.Tensor3D, labels: tf.Tensor2D): MaskedCrossEntropy {
  const [B, T, V] = logits.shape;
  if (labels.shape[0] !== B || labels.shape[1] !== T) {
    throw new Error(`fusedMaskedCrossEntropy: labels [${labels.shape}] do not match logits [${logits.shape}] (expected [${B}, ${T}])`);
  }
  const lab = labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32');
  if (!fusedKernelsAvailable() || B * T * V === 0) {
    const out = stockMaskedCrossEntropy(logits, lab);
    if (lab !== labels) lab.dispose();
    return out;
  }
  const [loss, rowSums, rowCounts, lse] = runFused(MASKED, { logits, labels: lab });
  lse.dispose();
  if (lab !== labels) lab.dispose();
  return { loss: loss as tf.Scalar, rowSums: rowSums as tf.Tensor1D, rowCounts: rowCounts as tf.Tensor1D };
}

/** Per-row -log softmax(logits)[target]; drop-in for ops.crossEntropy. logits [N, V], targets int32 [N] in [0, V). */
export function fusedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  if (!fusedKernelsAvailable() || logits.size === 0) return stockCrossEntropy(logits, targets);
  const tg = targets.dtype === 'int32' ? targets : tf.cast(targets, 'int32');
  const [nll, lse] = runFused(ROWS, { logits, targets: tg });
  lse.dispose();
  if (tg !== targets) tg.dispose();
  return nll as tf.Tensor1D;
}

/** Stock tfjs composition of fusedCrossEntropy (any backend). */
export function stockCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const V = logits.shape[1];
    const picked = tf.sum(tf.mul(logits, tf.oneHot(tf.cast(targets, 'int32'), V)), 1);
    return tf.sub(tf.logSumExp(logits, 1), picked) as tf.Tensor1D;
  });
}

/** Stock tfjs composition of fusedMaskedCrossEntropy (any backend): the reference path. */
export function stockMaskedCrossEntropy(logits: tf.Tensor3D, labels: tf.Tensor2D): MaskedCrossEntropy {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    if (T < 2) {
      const zeros = tf.zeros([B]) as tf.Tensor1D;
      return { loss: tf.mul(tf.sum(logits), 0) as tf.Scalar, rowSums: tf.add(zeros, tf.mul(tf.sum(logits), 0)) as tf.Tensor1D, rowCounts: zeros };
    }
    const lg = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, V]), [B * (T - 1), V]) as tf.Tensor2D;
    const tg = tf.reshape(tf.slice(labels, [0, 1], [B, T - 1]), [B * (T - 1)]) as tf.Tensor1D;
    const valid = tf.logicalAnd(tf.greaterEqual(tg, 0), tf.less(tg, V));
    const safe = tf.where(valid, tg, tf.zerosLike(tg)) as tf.Tensor1D;
    const mask = tf.cast(valid, 'float32');
    const nll = tf.mul(stockCrossEntropy(lg, safe), mask);
    const rowSums = tf.sum(tf.reshape(nll, [B, T - 1]), 1) as tf.Tensor1D;
    const rowCounts = tf.sum(tf.reshape(mask, [B, T - 1]), 1) as tf.Tensor1D;
    const loss = tf.div(tf.sum(rowSums), tf.maximum(tf.sum(rowCounts), 1)) as tf.Scalar;
    return { loss, rowSums, rowCounts };
  });
}
