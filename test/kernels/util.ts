/** Shared helpers of the kernel tests: seeded random data and reads. */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/utils/random.js';

/** Mulberry32: a small seeded generator, so every failure reproduces. */
export const rng = mulberry32;

/** n uniform values in [-scale, scale). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

export async function read(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}
