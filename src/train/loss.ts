/**
 * Masked causal-LM cross-entropy, Hugging Face convention: labels are unshifted ids with -100
 * where a token is not trained; logits at t predict labels at t + 1; the loss is the mean over
 * trained positions (sum / count).
 *
 * @example
 *   // uniform logits over V = 4: every trained position costs ln 4
 *   const { loss } = maskedCrossEntropy(tf.zeros([1, 3, 4]), tf.tensor2d([[-100, 1, 2]], [1, 3], 'int32'));
 *   await loss.data();   // Float32Array [1.3862944]
 */
import * as tf from '@tensorflow/tfjs';
import { stockOps, type Ops } from '../nn/ops.js';
import { IGNORE_INDEX } from '../data/labels.js';

export { IGNORE_INDEX };

export interface MaskedLoss {
  loss: tf.Scalar;          // sum over trained positions / their count (0 when none: refuse such batches with countTrained first)
  rowSums: tf.Tensor1D;     // [B] summed loss per row
  rowCounts: tf.Tensor1D;   // [B] trained positions per row (float32)
}

/**
 * logits [B, T, V], labels int32 [B, T] (unshifted, -100 ignored). The shift is done on the
 * labels (labels[:, 1:] padded with -100), so the logits are never sliced or copied; the core
 * per-position loss is crossEntropy (logSumExp minus the gathered target logit). The whole loss
 * is the ops-table entry ops.maskedCrossEntropy: pass a model's `engine.ops` to run its engine's
 * (a fused one-pass kernel on WebGPU); the default is the stock reference.
 */
export function maskedCrossEntropy(logits: tf.Tensor3D, labels: tf.Tensor2D, ops: Readonly<Ops> = stockOps): MaskedLoss {
  const [B, T, V] = logits.shape;
  if (!(labels.shape[0] === B && labels.shape[1] === T)) throw new Error(`maskedCrossEntropy: labels [${labels.shape}] must be [${B}, ${T}] like the logits.`);
  if (labels.dtype !== 'int32') throw new Error(`maskedCrossEntropy: labels must be int32, got ${labels.dtype}.`);
  return ops.maskedCrossEntropy(logits, labels);
}

/**
 * Host-side count of trained positions, shift-aware (position 0 of a row is never predicted).
 * labels is [B*T] row-major. The trainer refuses a batch with total 0, naming emptyRows.
 */
export function countTrained(labels: Int32Array, B: number, T: number): { total: number; emptyRows: number[] } {
  if (labels.length !== B * T) throw new Error(`countTrained: labels has ${labels.length} entries, expected B*T = ${B}*${T}.`);
  let total = 0;
  const emptyRows: number[] = [];
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = 1; t < T; t++) if (labels[b * T + t] !== IGNORE_INDEX) n++;
    if (n === 0) emptyRows.push(b);
    total += n;
  }
  return { total, emptyRows };
}
