/**
 * A Trainer's options (transformers' TrainingArguments, where they share a meaning, with its
 * defaults) and what they resolve to: the run length, the learning-rate schedule and the optimizer.
 *
 * @example
 *   resolveTrainerOptions({ train: batches, lr: 1e-3, epochs: 2, warmupRatio: 0.1 });
 *   // { maxSteps: 2 * batches.length, schedule: { kind: 'linear', lr: 1e-3, warmupSteps, ... }, optimizer: { maxGradNorm: 1, ... }, ... }
 */
import type { BatchSource } from './batch_source.js';
import { sourceLength } from './batch_source.js';
import type { TrainForwardOptions } from './gradients.js';
import type { ClipAdamWOptions, DecayFilter } from './optim.js';
import { learningRate, warmupStepsFromRatio, type ScheduleConfig, type ScheduleKind } from './schedule.js';

export interface TrainerOptions {
  /** Training batches. */
  train: BatchSource;
  /** Evaluation batches (used by evaluate() and every `evalEvery` steps). */
  eval?: BatchSource;
  /** Peak learning rate. Default 5e-5 (transformers' TrainingArguments). */
  lr?: number;
  /** Learning-rate schedule. Default 'linear' (transformers' default). */
  schedule?: ScheduleKind;
  /** Linear warmup steps. Default 0. */
  warmupSteps?: number;
  /** Warmup as a fraction of the total steps (ceil), used when warmupSteps is not given. */
  warmupRatio?: number;
  /** Cosine cycles (transformers' num_cycles). Default 0.5. */
  numCycles?: number;
  /** Optimizer steps in the run. Default: epochs * steps per epoch (needs an array `train` or `stepsPerEpoch`). */
  maxSteps?: number;
  /** Epochs, used when maxSteps is not given. Default 1. */
  epochs?: number;
  /** Batches per epoch when `train` is a function (for epoch fractions and maxSteps from epochs). */
  batchesPerEpoch?: number;
  /** Micro-batches summed into one optimizer step. Default 1. */
  gradientAccumulationSteps?: number;
  /** Global-norm clipping threshold (torch clip_grad_norm_); 0 or Infinity disables it. Default 1.0. */
  maxGradNorm?: number;
  /** AdamW decoupled weight decay. Default 0 (transformers' TrainingArguments). */
  weightDecay?: number;
  /** Which parameters are decayed. Default 'default' (no norms, biases, embeddings). */
  decay?: DecayFilter;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Seed of every random choice. Default 42 (transformers' default). */
  seed?: number;
  /** Shuffle an array `train` source per epoch from (seed, epoch). Default false (use the order given). */
  shuffle?: boolean;
  /** Evaluate every N optimizer steps (needs `eval`). Default 0: only when asked. */
  evalEvery?: number;
  /** After a non-finite loss or gradient norm: skip the step and go on (default), or stop the run. */
  onNonFinite?: 'skip' | 'stop';
  /**
   * Recompute each block's forward in the backward pass instead of keeping its activations
   * (transformers' gradient_checkpointing): much less memory for about one more forward per step.
   * Gradients are the same. Default false.
   */
  gradientCheckpointing?: boolean;
  /** Extra options passed to every training forward (e.g. NEFTune settings). */
  forwardOptions?: TrainForwardOptions;
}

export interface ResolvedRun {
  seed: number;
  gradientAccumulationSteps: number;
  /** Optimizer steps in the run. */
  maxSteps: number;
  /** Batches per epoch, when known (for fractional epochs). */
  batchesPerEpoch: number | undefined;
  /** The schedule with totalSteps resolved. */
  schedule: ScheduleConfig;
  /** clip-then-AdamW settings (the engine's clipAdamw builds the optimizer from them). */
  optimizer: ClipAdamWOptions;
}

/** Defaults applied and checked; errors say which option is wrong. */
export function resolveTrainerOptions(o: TrainerOptions): ResolvedRun {
  const seed = o.seed ?? 42;
  const gradientAccumulationSteps = o.gradientAccumulationSteps ?? 1;
  if (!Number.isInteger(gradientAccumulationSteps) || gradientAccumulationSteps < 1) {
    throw new Error(`Trainer: gradientAccumulationSteps must be a positive integer, got ${o.gradientAccumulationSteps}`);
  }
  const batchesPerEpoch = sourceLength(o.train, o.batchesPerEpoch);
  let maxSteps: number;
  if (o.maxSteps !== undefined) {
    if (!Number.isInteger(o.maxSteps) || o.maxSteps < 1) throw new Error(`Trainer: maxSteps must be a positive integer, got ${o.maxSteps}`);
    maxSteps = o.maxSteps;
  } else {
    if (batchesPerEpoch === undefined) throw new Error('Trainer: give maxSteps, or batchesPerEpoch when train is a function, so the run length (and the schedule) is known');
    maxSteps = Math.max(1, Math.ceil((o.epochs ?? 1) * Math.ceil(batchesPerEpoch / gradientAccumulationSteps)));
  }
  const warmupSteps = o.warmupSteps ?? (o.warmupRatio !== undefined ? warmupStepsFromRatio(maxSteps, o.warmupRatio) : 0);
  const schedule: ScheduleConfig = { kind: o.schedule ?? 'linear', lr: o.lr ?? 5e-5, warmupSteps, totalSteps: maxSteps, numCycles: o.numCycles ?? 0.5 };
  learningRate(schedule, 0); // validates the kind
  const optimizer: ClipAdamWOptions = {
    maxGradNorm: o.maxGradNorm ?? 1.0, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay ?? 0, decay: o.decay,
  };
  return { seed, gradientAccumulationSteps, maxSteps, batchesPerEpoch, schedule, optimizer };
}
