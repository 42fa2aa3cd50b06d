/**
 * Next-token selection from one row of logits, host-side, as transformers' logits warpers do it:
 * temperature, then top-k (TopKLogitsWarper), then top-p (TopPLogitsWarper), then softmax and a
 * draw. Filtered tokens get -Infinity. Greedy decoding is argmax (the first index on ties, like
 * torch.argmax).
 *
 * @example
 *   topPFilter(Float64Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]), 0.7);
 *   // Float64Array [log 0.5, log 0.3, -Infinity]: {0.5, 0.3} is the smallest set with mass >= 0.7
 */
import { Rng } from '../utils/random.js';

export interface SamplingOptions {
  /** Divide logits by this (> 0). 1 leaves them unchanged. */
  temperature?: number;
  /** Keep the k most likely tokens (ties with the k-th kept). Undefined or 0: no top-k filter. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP (in (0, 1]). 1: no filter. */
  topP?: number;
}

/** Index of the largest value; the first one on ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Numerically stable softmax in float64. -Infinity entries get probability 0. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/**
 * TopKLogitsWarper: tokens whose logit is below the k-th largest are set to -Infinity.
 * k is clamped to [minTokensToKeep, vocab].
 */
export function topKFilter(logits: ArrayLike<number>, k: number, minTokensToKeep = 1): Float64Array {
  if (!Number.isInteger(k) || k < 0) throw new Error(`topK must be a non-negative integer, got ${k}`);
  const out = Float64Array.from(logits);
  const kk = Math.min(Math.max(k, minTokensToKeep), out.length);
  const kth = Float64Array.from(out).sort()[out.length - kk]; // k-th largest
  for (let i = 0; i < out.length; i++) if (out[i] < kth) out[i] = -Infinity;
  return out;
}

/**
 * TopPLogitsWarper: sort ascending, accumulate softmax probabilities, drop the tokens whose
 * cumulative probability (from the least likely up) is <= 1 - topP, always keeping the
 * `minTokensToKeep` most likely. What remains is the smallest set of most likely tokens with
 * total probability >= topP.
 */
export function topPFilter(logits: ArrayLike<number>, topP: number, minTokensToKeep = 1): Float64Array {
  if (!(topP > 0 && topP <= 1)) throw new Error(`topP must be in (0, 1], got ${topP}`);
  const out = Float64Array.from(logits);
  // Ascending by logit; ties broken by index so the result is deterministic.
  const order = Array.from(out.keys()).sort((a, b) => out[a] - out[b] || a - b);
  const probs = softmax(order.map((i) => out[i]));
  let cumulative = 0;
  for (let r = 0; r < order.length - minTokensToKeep; r++) {
    cumulative += probs[r];
    if (cumulative <= 1 - topP) out[order[r]] = -Infinity;
  }
  return out;
}

/** Applies temperature, top-k and top-p in transformers' order; returns filtered logits. */
export function warpLogits(logits: ArrayLike<number>, opts: SamplingOptions): Float64Array {
  let out: Float64Array = Float64Array.from(logits);
  const { temperature = 1, topK, topP } = opts;
  if (!(temperature > 0)) throw new Error(`temperature must be > 0 when sampling, got ${temperature} (use greedy decoding for 0)`);
  if (temperature !== 1) for (let i = 0; i < out.length; i++) out[i] /= temperature;
  if (topK) out = topKFilter(out, topK);
  if (topP !== undefined && topP < 1) out = topPFilter(out, topP);
  return out;
}

/** Draws an index from the probabilities (inverse CDF with one uniform from `rng`). */
export function drawIndex(probs: ArrayLike<number>, rng: Rng): number {
  const u = rng.next();
  let cumulative = 0, last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    cumulative += probs[i];
    last = i;
    if (u < cumulative) return i;
  }
  return last; // rounding left u above the total: the last token with mass
}

/** Samples one token id from logits with the warpers of `opts`. */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, rng: Rng): number {
  return drawIndex(softmax(warpLogits(logits, opts)), rng);
}
