/**
 * The gradient of one optimizer step over its K micro-batches: forward + masked cross-entropy +
 * backward per micro-batch, summed on the device, keyed by parameter name.
 *
 * Accumulation is token-weighted (like TRL's num_items_in_batch fix): with N trained positions
 * over the K micro-batches of a step, micro-batch i contributes sum_i / N, so the accumulated
 * gradient is the gradient of the mean loss over every trained token of the step, the same as
 * one batch holding all K micro-batches, whatever their padding and mask lengths.
 *
 * @example
 *   const { grads, loss } = stepGradients(model, params, micro, { trained, seedOf: (i) => mixSeed(seed, step, i) });
 *   // grads: Map<name, tf.Tensor> shaped like each parameter; loss: scalar, the step's mean loss
 */
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../data/batch.js';
import type { ForwardOptions } from '../../models/causal_lm.js';
import type { Engine } from '../engine/index.js';
import { maskedCrossEntropy, type MaskedLoss } from './loss.js';
import { batchTensors, disposeAll } from './batch_input.js';
import type { checkStepFits } from './memory.js';

/** What the trainer needs of a model (CausalLM has it). */
export interface TrainableModel {
  /** The engine the model is bound to: its ops compute the loss, its clipAdamw applies the step. */
  readonly engine: Engine;
  forward(inputIds: tf.Tensor2D, opts?: ForwardOptions): tf.Tensor3D;
  /**
   * The masked loss of maskedCrossEntropy(forward(ids), labels), computed without the full logits
   * where they are large (CausalLM.loss). Used for training when present.
   */
  loss?(inputIds: tf.Tensor2D, labels: tf.Tensor2D, opts?: Omit<ForwardOptions, 'cache'>): MaskedLoss;
  /** The variables that get gradients, by name (HF names; LoRA '<module>.lora_A.weight'). */
  trainableParams(): Map<string, tf.Variable>;
  /** The model's config.json fields, when it has them: batch shapes are then checked against the GPU's limits before their first step. */
  readonly config?: Parameters<typeof checkStepFits>[0];
}

/** Forward options a caller may add to every training forward (e.g. NEFTune settings); the step sets the rest. */
export type TrainForwardOptions = Omit<ForwardOptions, 'attentionMask' | 'positionIds' | 'training' | 'seed' | 'cache'>;

export interface StepGradientOptions {
  /** Trained positions over all the micro-batches (N, the loss's denominator). */
  trained: number;
  /** The randomness key of micro-batch i (LoRA dropout, NEFTune noise). */
  seedOf: (i: number) => number;
  gradientCheckpointing?: boolean;
  forwardOptions?: TrainForwardOptions;
}

/**
 * Sum over micro-batches of d(sum_i / N)/d(params), and the step's mean loss sum_i sum_i / N as a
 * scalar tensor. The caller owns (and disposes) both. A gradient for a variable not in `params`
 * is dropped.
 */
export function stepGradients(model: TrainableModel, params: Map<string, tf.Variable>, micro: readonly Batch[], o: StepGradientOptions): { grads: Map<string, tf.Tensor>; loss: tf.Scalar } {
  const vars = [...params.values()];
  const nameOf = new Map([...params].map(([name, v]) => [v.name, name]));   // tf variable name -> parameter name
  const grads = new Map<string, tf.Tensor>();
  let loss: tf.Scalar = tf.scalar(0);
  micro.forEach((batch, i) => {
    const t = batchTensors(batch);
    const { value, grads: g } = tf.variableGrads(() => {
      const opts = { gradientCheckpointing: o.gradientCheckpointing, ...o.forwardOptions, attentionMask: t.mask, positionIds: t.pos, training: true, seed: o.seedOf(i) };
      const { rowSums } = model.loss ? model.loss(t.ids, t.labels, opts) : maskedCrossEntropy(model.forward(t.ids, opts), t.labels, model.engine.ops);
      return tf.div(tf.sum(rowSums), o.trained) as tf.Scalar;   // sum_i / N
    }, vars);
    disposeAll(t);
    const next = loss.add(value) as tf.Scalar;
    loss.dispose(); value.dispose();
    loss = next;
    for (const [varName, gi] of Object.entries(g)) {
      const name = nameOf.get(varName);
      if (name === undefined) { gi.dispose(); continue; }
      const prev = grads.get(name);
      if (prev) { grads.set(name, prev.add(gi)); prev.dispose(); gi.dispose(); } else grads.set(name, gi);
    }
  });
  return { grads, loss };
}
