/**
 * Seeded initialisation. tf.randomNormal with a seed draws on the host (seedrandom), so the same
 * seed gives the same weights on every backend.
 */
import * as tf from '@tensorflow/tfjs';

/** A 32-bit hash of a string (FNV-1a), to give every parameter and every dropout site its own stream. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A seed for `name` derived from a base seed: independent streams per parameter or per layer. */
export function deriveSeed(seed: number, name: string): number {
  return (hashString(name) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}

/** A trainable float32 variable drawn from normal(0, std). */
export function normalVariable(shape: number[], std: number, seed: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed), true));
}

/** A trainable float32 variable filled with `value` (zeros for biases, ones for norm weights). */
export function constantVariable(shape: number[], value: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.fill(shape, value, 'float32'), true));
}
