/**
 * Batching for the trainer: padded rows (one example per row) or packed rows (several
 * examples per row, separated by segment ids), seeded shuffling and epochs.
 *
 * Packed rows follow the attention contract of models/causal_lm.ts: `attentionMask` holds
 * segment ids 1..k (0 = padding) and a query attends only keys of its own segment, positions
 * restart at 0 in every segment, and the first token of every packed example is labelled
 * -100, so no loss term predicts one example's first token from the previous example.
 *
 * Randomness: mulberry32 seeded from a hash of (seed, purpose, epoch), the same small PRNG
 * the instruction-set generator uses (src/data/instruct/prng.ts), so an epoch's order is a
 * pure function of (seed, epoch) and a resumed run sees the same batches.
 *
 * @example
 * const b = padBatch([{ inputIds: [5, 6, 7], labels: [-100, 6, 7], meta: {} }, { inputIds: [8], labels: [8], meta: {} }], { padTokenId: 0 });
 * // b.inputIds = [5,6,7, 8,0,0], b.attentionMask = [1,1,1, 1,0,0], b.labels = [-100,6,7, 8,-100,-100]
 */
import { hash32, mulberry32 } from '../utils/random.js';
import { IGNORE_INDEX, type TokenizedExample } from './labels.js';

export interface Batch {
  inputIds: Int32Array;      // [B*T] row-major
  labels: Int32Array;        // [B*T] unshifted, -100 = not trained
  attentionMask: Int32Array; // [B*T] 0 = padding, else segment id (1 for an unpacked row; 1..k for k packed examples)
  positionIds: Int32Array;   // [B*T] restarting at 0 in each segment
  batchSize: number;
  seqLen: number;
  meta: Array<Array<Record<string, unknown>>>; // per row, the provenance of each example in it
}

export type PackingStrategy = 'greedy' | 'first_fit';

/** A PRNG stream for one purpose: mulberry32(hash32(`${seed}:${purpose}`)). */
export function rngFor(seed: number, purpose: string): () => number {
  return mulberry32(hash32(`${seed}:${purpose}`));
}

/** A seeded Fisher-Yates shuffle (a new array); the same (items, seed, epoch) give the same order. */
export function shuffled<T>(items: readonly T[], seed: number, epoch = 0): T[] {
  const a = items.slice();
  const rnd = rngFor(seed, `shuffle:${epoch}`);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Lays rows of examples into a [B, T] batch; T = seqLen or the longest row. */
function layout(rows: TokenizedExample[][], padTokenId: number, seqLen?: number): Batch {
  const lengths = rows.map((r) => r.reduce((n, e) => n + e.inputIds.length, 0));
  const T = seqLen ?? Math.max(1, ...lengths);
  const B = rows.length;
  const inputIds = new Int32Array(B * T).fill(padTokenId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(B * T);
  const positionIds = new Int32Array(B * T);
  rows.forEach((row, b) => {
    if (lengths[b] > T) throw new Error(`batch row ${b} holds ${lengths[b]} tokens, more than the sequence length ${T} (set maxLength <= seqLen so examples are truncated first)`);
    let t = b * T;
    row.forEach((ex, k) => {
      if (ex.inputIds.length !== ex.labels.length) throw new Error(`example ${JSON.stringify(ex.meta)}: ${ex.inputIds.length} ids but ${ex.labels.length} labels`);
      for (let i = 0; i < ex.inputIds.length; i++, t++) {
        inputIds[t] = ex.inputIds[i];
        // The first token of a packed example after the first: never a target (no cross-example loss).
        labels[t] = i === 0 && k > 0 ? IGNORE_INDEX : ex.labels[i];
        attentionMask[t] = k + 1;
        positionIds[t] = i;
      }
    });
    // Padding: positionIds stay 0, attentionMask 0, labels -100 (never attended, never trained).
  });
  return { inputIds, labels, attentionMask, positionIds, batchSize: B, seqLen: T, meta: rows.map((r) => r.map((e) => e.meta)) };
}

/** One example per row, right-padded to the longest (or to `seqLen`); attentionMask 1 on tokens, 0 on padding. */
export function padBatch(examples: readonly TokenizedExample[], opts: { padTokenId: number; seqLen?: number }): Batch {
  return layout(examples.map((e) => [e]), opts.padTokenId, opts.seqLen);
}

/**
 * Packs examples into rows of at most `seqLen` tokens without splitting any example.
 * `greedy` fills rows in order and opens a new row when the next example does not fit;
 * `first_fit` puts each example into the first open row with room (fewer, fuller rows).
 * Examples longer than seqLen are an error: truncate them first (labelExample's maxLength).
 */
export function packExamples(examples: readonly TokenizedExample[], seqLen: number, strategy: PackingStrategy = 'first_fit'): TokenizedExample[][] {
  const rows: TokenizedExample[][] = [];
  const used: number[] = [];
  for (const ex of examples) {
    const n = ex.inputIds.length;
    if (n > seqLen) throw new Error(`example ${JSON.stringify(ex.meta)} has ${n} tokens, more than the packed sequence length ${seqLen}: truncate it first (maxLength)`);
    let r = -1;
    if (strategy === 'greedy') r = rows.length > 0 && used[rows.length - 1] + n <= seqLen ? rows.length - 1 : -1;
    else r = used.findIndex((u) => u + n <= seqLen);
    if (r < 0) {
      rows.push([]);
      used.push(0);
      r = rows.length - 1;
    }
    rows[r].push(ex);
    used[r] += n;
  }
  return rows;
}

/** Rows of packed examples -> a [B, seqLen] batch with segment ids, restarting positions and -100 at each example's first token. */
export function packBatch(rows: readonly TokenizedExample[][], opts: { padTokenId: number; seqLen: number }): Batch {
  return layout(rows.map((r) => [...r]), opts.padTokenId, opts.seqLen);
}

export interface BatchOptions {
  batchSize: number;
  padTokenId: number;
  /** Packed: the row length (required). Padded: a fixed length, or omit to pad to each batch's longest row. */
  seqLen?: number;
  packing?: false | PackingStrategy;
  /** Shuffle every epoch with (seed, epoch) (default true). False keeps the given order (curriculum). */
  shuffle?: boolean;
  seed?: number;
  epochs?: number;
  /** Index of the first epoch (default 0): `{firstEpoch: e, epochs: 1}` is epoch e alone, shuffled as in a full run. */
  firstEpoch?: number;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** Batches over epochs; each carries its epoch and its step (0-based, counted across epochs). */
export function* iterateBatches(examples: readonly TokenizedExample[], opts: BatchOptions): Generator<Batch & { epoch: number; step: number }> {
  const { batchSize, padTokenId } = opts;
  if (!(batchSize >= 1)) throw new Error(`batchSize must be at least 1, got ${batchSize}`);
  if (opts.packing && !opts.seqLen) throw new Error('packing needs seqLen (the length of a packed row)');
  let step = 0;
  const first = opts.firstEpoch ?? 0;
  for (let epoch = first; epoch < first + (opts.epochs ?? 1); epoch++) {
    const order = opts.shuffle === false ? examples.slice() : shuffled(examples, opts.seed ?? 0, epoch);
    const rows = opts.packing ? packExamples(order, opts.seqLen!, opts.packing) : order.map((e) => [e]);
    for (let i = 0; i < rows.length; i += batchSize) {
      const chunk = rows.slice(i, i + batchSize);
      if (chunk.length < batchSize && opts.dropLast) break;
      const b = opts.packing ? packBatch(chunk, { padTokenId, seqLen: opts.seqLen! }) : layout(chunk, padTokenId, opts.seqLen);
      yield { ...b, epoch, step: step++ };
    }
  }
}
