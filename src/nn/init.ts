/**
 * Seeded initialisation. tf.randomNormal with a seed draws on the host (seedrandom), so the same
 * seed gives the same weights on every backend.
 */
import * as tf from '@tensorflow/tfjs';

// Per-parameter streams come from deriveSeed (src/utils/random.ts); re-exported for the layers.
export { deriveSeed } from '../utils/random.js';

/** A trainable float32 variable drawn from normal(0, std). */
export function normalVariable(shape: number[], std: number, seed: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, std, 'float32', seed), true));
}

/** A trainable float32 variable filled with `value` (zeros for biases, ones for norm weights). */
export function constantVariable(shape: number[], value: number): tf.Variable {
  return tf.tidy(() => tf.variable(tf.fill(shape, value, 'float32'), true));
}
