/**
 * Evaluation of a model on batches: mean masked cross-entropy over every trained position, its
 * perplexity, and token accuracy. The Trainer calls it every `evalEvery` steps; anything with a
 * forward and an engine (CausalLM) can call it directly.
 */
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../data/batch.js';
import { IGNORE_INDEX } from '../data/labels.js';
import { maskedCrossEntropy, countTrained } from './loss.js';
import { checkBatch, batchTensors, disposeAll } from './batch_input.js';
import { backendInfo } from '../backend/index.js';
import type { TrainableModel, TrainForwardOptions } from './gradients.js';

/** What evaluation needs of a model: its forward and engine, and (to check the logits fit the GPU) its vocabulary size. */
export type EvalModel = Pick<TrainableModel, 'engine' | 'forward'> & { readonly config?: { readonly vocab_size: number } };

export interface LossEvalResult {
  /** Mean loss over every trained position of the eval batches. */
  evalLoss: number;
  /** exp(evalLoss). */
  perplexity: number;
  /** Fraction of trained positions where argmax of the (shifted) logits equals the label. */
  tokenAccuracy: number;
  /** Trained positions evaluated. */
  tokens: number;
}

/**
 * Evaluation reads whole logits [B, T, V] (token accuracy needs their argmax): on WebGPU, refuse a
 * batch whose logits would exceed the device's binding limit before anything is dispatched.
 */
function checkEvalLogitsFit(model: EvalModel, batch: Batch, where: string): void {
  const limit = backendInfo()?.limits?.maxStorageBufferBindingSize;
  const V = model.config?.vocab_size;
  if (!limit || tf.getBackend() !== 'webgpu' || !V) return;
  const bytes = batch.batchSize * batch.seqLen * V * 4;
  if (bytes > limit) {
    throw new Error(`${where}: its logits [${batch.batchSize}, ${batch.seqLen}, ${V}] float32 are ${bytes.toLocaleString('en-US')} bytes, over this GPU's ` +
      `maxStorageBufferBindingSize of ${limit.toLocaleString('en-US')} bytes: use eval batches of at most ${Math.floor(limit / (V * 4))} tokens (batch size x sequence length).`);
  }
}

/**
 * Evaluation over batches: mean masked cross-entropy over every trained position, its exp, and
 * token accuracy (argmax of logits[:, t] == labels[:, t + 1] over trained positions). Batches
 * with no trained position contribute nothing; an eval set with none at all is an error. The
 * sums stay on the device and are read once at the end.
 */
export async function evaluateLoss(model: EvalModel, batches: Iterable<Batch> | AsyncIterable<Batch>, opts: { forwardOptions?: TrainForwardOptions } = {}): Promise<LossEvalResult> {
  let lossSum: tf.Scalar = tf.scalar(0);
  let correct: tf.Scalar = tf.scalar(0);
  let count = 0, index = 0;
  try {
    for await (const batch of batches) {
      checkBatch(batch, `eval batch ${index}`);
      checkEvalLogitsFit(model, batch, `eval batch ${index}`);
      index++;
      const n = countTrained(batch.labels, batch.batchSize, batch.seqLen).total;
      if (n === 0) continue;
      count += n;
      const t = batchTensors(batch);
      const [nextLoss, nextCorrect] = tf.tidy(() => {
        const logits = model.forward(t.ids, { ...opts.forwardOptions, attentionMask: t.mask, positionIds: t.pos, training: false });
        const { rowSums } = maskedCrossEntropy(logits, t.labels, model.engine.ops);
        const [B, T] = t.labels.shape;
        const targets = tf.slice(t.labels, [0, 1], [B, T - 1]);                          // [B, T-1] labels at t+1
        const predicted = tf.argMax(tf.slice(logits, [0, 0, 0], [B, T - 1, -1]), -1);    // [B, T-1] int32
        const hit = tf.logicalAnd(tf.equal(predicted, targets), tf.notEqual(targets, tf.scalar(IGNORE_INDEX, 'int32')));
        return [lossSum.add(rowSums.sum()), correct.add(tf.cast(hit, 'float32').sum())] as [tf.Scalar, tf.Scalar];
      });
      disposeAll(t);
      lossSum.dispose(); correct.dispose();
      lossSum = nextLoss; correct = nextCorrect;
    }
    if (count === 0) throw new Error(`evaluateLoss: the ${index} eval batches have no trained positions (every label is -100 after the shift)`);
    const sums = tf.stack([lossSum, correct]);
    const [ls, c] = await sums.data();
    sums.dispose();
    const evalLoss = ls / count;
    return { evalLoss, perplexity: Math.exp(evalLoss), tokenAccuracy: c / count, tokens: count };
  } finally {
    lossSum.dispose(); correct.dispose();
  }
}
