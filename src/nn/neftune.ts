/**
 * NEFTune (Jain et al. 2023, "NEFTune: Noisy Embeddings Improve Instruction Finetuning"): in
 * training, add Uniform(-m, m) noise to the token embeddings, m = alpha / sqrt(L · d), d the
 * embedding width.
 *
 * What L is differs between the two public implementations, so both are offered:
 *
 *   'paper' (default)  the paper's training code: L is each sequence's TRUE length (its number of
 *                      non-padding tokens), and padding positions get no noise. With packed rows
 *                      (segment ids 1, 2, ...) each packed example is its own sequence: L is the
 *                      length of its segment.
 *   'transformers'     transformers' `neftune_post_forward_hook` (what TRL's `neftune_noise_alpha`
 *                      uses): L is the padded length T of the batch, and every position, padding
 *                      included, gets noise. Short sequences in a long batch then get less noise
 *                      than they would alone.
 *
 * Without an attention mask the two agree (every row is one sequence of length T).
 *
 * @example
 *   const e = tf.zeros([1, 4, 8]) as tf.Tensor3D;
 *   const mask = tf.tensor2d([[1, 1, 1, 0]], [1, 4], 'int32');
 *   neftuneNoise(e, 5, 7, { segments: mask });   // |noise| <= 5 / sqrt(3 * 8) on the first three, 0 on the last
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from './init.js';

export type NeftuneMode = 'paper' | 'transformers';

export interface NeftuneNoiseOptions {
  /** int32 [B, T]: 0 = padding, otherwise a segment id (one per packed example). Default: one segment per row. */
  segments?: tf.Tensor2D;
  /** Which length L the magnitude uses (see the file comment). Default 'paper'. */
  mode?: NeftuneMode;
}

/** m = alpha / sqrt(L · d): the bound of the noise for a sequence of length L and width d. */
export function neftuneMagnitude(alpha: number, L: number, d: number): number {
  return alpha / Math.sqrt(L * d);
}

/**
 * The per-position noise bound m [B, T]: alpha / sqrt(L · d) with L the length of the position's
 * segment ('paper'; 0 at padding) or the padded length T ('transformers').
 */
export function neftuneBounds(shape: [number, number, number], alpha: number, opts: NeftuneNoiseOptions = {}): tf.Tensor2D {
  const [B, T, d] = shape;
  return tf.tidy(() => {
    if (opts.mode === 'transformers' || !opts.segments) return tf.fill([B, T], neftuneMagnitude(alpha, T, d)) as tf.Tensor2D;
    const seg = opts.segments;
    // Length of each position's segment: how many positions of its row share its segment id.
    const same = tf.cast(tf.equal(tf.expandDims(seg, 2), tf.expandDims(seg, 1)), 'float32');   // [B, T, T]
    const L = tf.sum(same, 2);                                                                   // [B, T]
    const real = tf.cast(tf.notEqual(seg, 0), 'float32');                                        // [B, T]
    return tf.mul(tf.div(alpha, tf.sqrt(tf.mul(L, d))), real) as tf.Tensor2D;
  });
}

/**
 * e [B, T, d] + Uniform(-1, 1) · m [B, T, 1]. The draw comes from `seed` (derive it from the run
 * seed and the step, so a resumed run draws the same noise); without a seed it is unseeded.
 * The noise is a constant: no gradient flows through it.
 */
export function neftuneNoise(e: tf.Tensor3D, alpha: number, seed?: number, opts: NeftuneNoiseOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const m = neftuneBounds(e.shape, alpha, opts);                                               // [B, T]
    const u = tf.randomUniform(e.shape, -1, 1, 'float32', seed === undefined ? undefined : deriveSeed(seed, 'neftune'));
    return tf.add(e, tf.mul(u, tf.expandDims(m, 2))) as tf.Tensor3D;
  });
}
