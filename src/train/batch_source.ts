/**
 * Where a trainer's batches come from, epoch by epoch: an array (in order, or shuffled per
 * epoch from (seed, epoch)), or a function of the epoch. Either way epoch e gives the same
 * batches every time it is opened, so a resumed run can skip to its position.
 *
 * @example
 *   const { train, batchesPerEpoch } = batchSourceFrom(examples, { batchSize: 8, padTokenId: tok.padTokenId, seed: 42 });
 *   new Trainer(model, { train, batchesPerEpoch, epochs: 3, lr: 1e-4 });
 */
import { iterateBatches, type Batch, type BatchOptions } from '../data/batch.js';
import type { TokenizedExample } from '../data/labels.js';
import { mixSeed, permutation } from '../utils/random.js';

/**
 * Batches for one epoch. An array is used in order (or shuffled per epoch from (seed, epoch)
 * with `shuffle`); a function is called with the epoch number and must return the same batches
 * for the same epoch (it owns any shuffling; derive it from the epoch) so a resumed run can skip
 * to its position.
 */
export type BatchSource = readonly Batch[] | ((epoch: number) => Iterable<Batch> | AsyncIterable<Batch>);

/**
 * A BatchSource over tokenized examples: epoch e is one epoch of iterateBatches, shuffled (when
 * `shuffle` is not false) from (seed, e), so a resumed run finds the same batches. Returns the
 * source and its batches per epoch (counted on epoch 0; with packing later epochs may differ by a
 * batch, which only changes the fractional epoch reported).
 */
export function batchSourceFrom(examples: readonly TokenizedExample[], opts: Omit<BatchOptions, 'epochs'>): { train: (epoch: number) => Iterable<Batch>; batchesPerEpoch: number } {
  const seed = opts.seed ?? 0;
  const train = (epoch: number): Iterable<Batch> => iterateBatches(examples, { ...opts, seed, firstEpoch: epoch, epochs: 1 });
  let batchesPerEpoch = 0;
  for (const _ of train(0)) batchesPerEpoch++;
  return { train, batchesPerEpoch };
}

/** Batches in one epoch: an array's length, else `given` (the batchesPerEpoch a function source comes with), if any. */
export function sourceLength(source: BatchSource, given: number | undefined): number | undefined {
  return typeof source === 'function' ? given : source.length;
}

/** An iterator over epoch `epoch` of a source; an array with `shuffle` is permuted from (seed, epoch). */
export function openEpoch(source: BatchSource, epoch: number, { shuffle = false, seed }: { shuffle?: boolean; seed: number }): AsyncIterator<Batch> | Iterator<Batch> {
  let batches: Iterable<Batch> | AsyncIterable<Batch>;
  if (typeof source === 'function') batches = source(epoch);
  else if (!shuffle) batches = source;
  else batches = permutation(source.length, mixSeed(seed, epoch, 0x5eed)).map((i) => source[i]);
  return Symbol.asyncIterator in batches ? (batches as AsyncIterable<Batch>)[Symbol.asyncIterator]() : (batches as Iterable<Batch>)[Symbol.iterator]();
}
