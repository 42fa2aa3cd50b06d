/** Host-side checks of a Batch (and of a step's micro-batches) and its upload as int32 tensors, shared by the training step and evaluation. */
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../data/batch.js';
import { countTrained } from './loss.js';

/** Names the rows of a batch (with their provenance when the batch carries it) for error messages. */
export function describeRows(batch: Batch, rows: number[]): string {
  return rows.map((r) => {
    const metas = batch.meta?.[r] ?? [];
    const where = metas.map((m) => (m && m.file !== undefined ? `${m.file}${m.line !== undefined ? `:${m.line}` : ''}` : '')).filter((s) => s);
    return where.length ? `${r} (${where.join(', ')})` : String(r);
  }).join(', ');
}

export function checkBatch(batch: Batch, where: string): void {
  const { batchSize: B, seqLen: T } = batch;
  for (const field of ['inputIds', 'labels', 'attentionMask', 'positionIds'] as const) {
    const a = batch[field];
    if (!a || a.length !== B * T) throw new Error(`${where}: ${field} has ${a ? a.length : 'no'} entries, expected batchSize*seqLen = ${B}*${T}`);
  }
}

/** Tokens that are not padding (attentionMask != 0). */
export function countRealTokens(batch: Batch): number {
  let n = 0;
  for (const s of batch.attentionMask) if (s !== 0) n++;
  return n;
}

/** The int32 input tensors of a batch. */
export function batchTensors(batch: Batch): { ids: tf.Tensor2D; labels: tf.Tensor2D; mask: tf.Tensor2D; pos: tf.Tensor2D } {
  const shape: [number, number] = [batch.batchSize, batch.seqLen];
  return {
    ids: tf.tensor2d(batch.inputIds, shape, 'int32'),
    labels: tf.tensor2d(batch.labels, shape, 'int32'),
    mask: tf.tensor2d(batch.attentionMask, shape, 'int32'),
    pos: tf.tensor2d(batch.positionIds, shape, 'int32'),
  };
}

export function disposeAll(ts: { [k: string]: tf.Tensor }): void {
  for (const t of Object.values(ts)) t.dispose();
}

/**
 * Host-side checks of a step's micro-batches before any GPU work: shapes, and at least one
 * trained position in each (a step with nothing to learn from is a data error, and its loss 0/0).
 * `where(i)` names micro-batch i in errors. Returns the trained positions and real tokens of the step.
 */
export function checkStepBatches(micro: readonly Batch[], where: (i: number) => string): { trained: number; real: number } {
  let trained = 0, real = 0;
  micro.forEach((b, i) => {
    checkBatch(b, where(i));
    const { total, emptyRows } = countTrained(b.labels, b.batchSize, b.seqLen);
    if (total === 0) {
      throw new Error(`${where(i)}: no trained positions in rows ${describeRows(b, emptyRows)}: every label is -100 after the shift ` +
        '(check the loss mask, e.g. assistant turns cut off by truncation), so the loss would be 0/0');
    }
    trained += total;
    real += countRealTokens(b);
  });
  return { trained, real };
}
