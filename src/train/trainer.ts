/**
 * The training loop: one optimizer step is a recipe with one line per phase,
 *
 *   take K micro-batches -> check labels -> forward + masked CE + grads (summed over K)
 *   -> clip-then-AdamW update -> read loss and pre-clip grad norm once -> apply (skipped if non-finite)
 *   -> metrics event -> eval every N steps -> yield to the event loop
 *
 * Gradient accumulation is token-weighted (like TRL's num_items_in_batch fix): with N trained
 * positions over the K micro-batches of a step, micro-batch i contributes sum_i / N, so the
 * accumulated gradient is the gradient of the mean loss over every trained token of the step,
 * the same as one batch holding all K micro-batches, whatever their padding and mask lengths.
 *
 * Randomness (LoRA dropout, NEFTune noise, batch shuffling) is a pure function of
 * (seed, step, micro-batch) or (seed, epoch), so a run resumed at step k reproduces the
 * uninterrupted run exactly (bit for bit on the CPU backend).
 *
 * The trainer owns the lifetimes of every tensor it makes: after each step tf.memory() is back
 * where it was (only the optimizer moments persist).
 *
 * @example
 *   const trainer = new Trainer(model, { train: batches, lr: 1e-3, maxSteps: 100, schedule: 'cosine', warmupSteps: 10 });
 *   trainer.on((e) => { if (e.type === 'step') console.log(e.step, e.loss.toFixed(3)); });
 *   await trainer.run();                        // resolves when maxSteps are done or stop() is called
 *   await saveTrainerCheckpoint(trainer, 'out/ckpt');   // src/io/trainer_checkpoint.ts: HF model dir + optimizer + trainer_state.json
 *
 *   // later: continue exactly where it stopped
 *   const resumed = await resumeTrainer('out/ckpt', { train: batches, lr: 1e-3, maxSteps: 200, schedule: 'cosine', warmupSteps: 10 });
 *
 * Evaluation lives in evaluation.ts, checkpoint files in src/io/trainer_checkpoint.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { iterateBatches, type Batch, type BatchOptions } from '../data/batch.js';
import type { TokenizedExample } from '../data/labels.js';
import { maskedCrossEntropy, countTrained, type MaskedLoss } from './loss.js';
import type { AdamWState, DecayFilter, ClipAdamW, ClipAdamWState } from './optim.js';
import { learningRate, warmupStepsFromRatio, type ScheduleConfig, type ScheduleKind } from './schedule.js';
import { describeRows, checkBatch, countRealTokens, batchTensors, disposeAll } from './batch_input.js';
import { evaluateLoss, type LossEvalResult } from './evaluation.js';
import { mixSeed, permutation } from '../utils/random.js';
import type { ForwardOptions } from '../../models/causal_lm.js';
import type { Engine } from '../engine/index.js';
import { checkStepFits } from './memory.js';
import { backendInfo } from '../backend/index.js';

export { evaluateLoss, type LossEvalResult };

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
 *
 * @example
 *   const { train, batchesPerEpoch } = batchSourceFrom(examples, { batchSize: 8, padTokenId: tok.padTokenId, seed: 42 });
 *   new Trainer(model, { train, batchesPerEpoch, epochs: 3, lr: 1e-4 });
 */
export function batchSourceFrom(examples: readonly TokenizedExample[], opts: Omit<BatchOptions, 'epochs'>): { train: (epoch: number) => Iterable<Batch>; batchesPerEpoch: number } {
  const seed = opts.seed ?? 0;
  const train = (epoch: number): Iterable<Batch> => iterateBatches(examples, { ...opts, seed, firstEpoch: epoch, epochs: 1 });
  let batchesPerEpoch = 0;
  for (const _ of train(0)) batchesPerEpoch++;
  return { train, batchesPerEpoch };
}

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
  forwardOptions?: Omit<ForwardOptions, 'attentionMask' | 'positionIds' | 'training' | 'seed' | 'cache'>;
}

/** Emitted after every optimizer step that was applied. */
export interface StepEvent {
  type: 'step';
  /** Optimizer steps completed (1 after the first). */
  step: number;
  /** Epochs completed, fractional (epoch + batches consumed / batches per epoch) when the epoch length is known. */
  epoch: number;
  /** Mean loss over every trained token of the step's micro-batches. */
  loss: number;
  /** Learning rate used for this step. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Non-padding tokens processed per second of this step. */
  tokensPerSecond: number;
  /** Trained positions / non-padding tokens of this step. */
  trainedFraction: number;
  /** Non-padding tokens seen since the start of the run (cumulative, like TRL's num_tokens). */
  tokens: number;
  /** Trained positions in this step (the loss's denominator). */
  trainedTokens: number;
  /** Milliseconds of training since the run started (pauses excluded). */
  elapsedMs: number;
}

/** Emitted when a step had a non-finite loss or gradient norm; no update was applied. */
export interface SkipEvent {
  type: 'skip';
  step: number;
  epoch: number;
  reason: 'non-finite loss' | 'non-finite gradient norm';
  /** The values read (NaN / Infinity are kept as numbers here). */
  loss: number;
  gradNorm: number;
  lr: number;
}

export interface EvalEvent extends LossEvalResult {
  type: 'eval';
  step: number;
  epoch: number;
}

export type TrainerStatus = 'idle' | 'running' | 'paused' | 'stopped' | 'done' | 'failed';

/** Emitted when the status changes; `reason` says why a run ended. */
export interface StatusEvent {
  type: 'status';
  status: TrainerStatus;
  step: number;
  reason?: 'max-steps' | 'stopped' | 'non-finite' | 'error';
  error?: string;
}

export type TrainerEvent = StepEvent | SkipEvent | EvalEvent | StatusEvent;
export type TrainerListener = (event: TrainerEvent) => void;

/** One entry of the log history kept in trainer_state.json (transformers' names). */
export type LogEntry = Record<string, number | string>;

/** Where the trainer is in the data: epoch and batches consumed in it. */
export interface DataPosition { epoch: number; batchIndex: number }

/** What Trainer.progress() gives a checkpoint writer. */
export interface TrainerProgress {
  step: number;                        // optimizer steps taken (skipped ones included)
  position: DataPosition;
  tokensSeen: number;
  skipped: number;
  elapsedMs: number;
  logHistory: readonly LogEntry[];
  /** The trainable variables by name, and the AdamW state (live: a resume assigns into them). */
  params: ReadonlyMap<string, tf.Variable>;
  optimizer: AdamWState;
}

/** Yields to the event loop (a macrotask), so UI events and timers run between steps. */
function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((r) => setImmediate(r));
  if (typeof MessageChannel === 'function') {
    return new Promise((r) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => { ch.port1.close(); r(); };
      ch.port2.postMessage(null);
    });
  }
  return new Promise((r) => setTimeout(r, 0));
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * Runs supervised fine-tuning steps on a model. Drive it with run() (resolves when the run
 * ends), or step() one optimizer step at a time. Listen with on(listener) or iterate events().
 */
export class Trainer {
  readonly model: TrainableModel;
  readonly options: Readonly<TrainerOptions>;
  /** Schedule of the run (totalSteps resolved). */
  readonly schedule: ScheduleConfig;
  /** Optimizer steps in the run. */
  readonly maxSteps: number;
  readonly seed: number;
  readonly gradientAccumulationSteps: number;

  private readonly params: Map<string, tf.Variable>;
  private readonly varNames: Map<string, string>;   // tf variable name -> param name
  private readonly optimizer: ClipAdamW;           // clip by global norm, then AdamW: the model's engine's implementation
  private readonly optState: ClipAdamWState;
  private stepCount = 0;                  // optimizer steps taken (applied or skipped); the schedule's step
  private position: DataPosition = { epoch: 0, batchIndex: 0 };
  private iterator: AsyncIterator<Batch> | Iterator<Batch> | undefined;
  private tokensSeen = 0;
  private elapsedBefore = 0;              // ms of training before this session (resumed runs)
  private sessionStart = 0;
  private pausedMs = 0;
  private pausedAt = 0;
  private skipped = 0;
  private logHistory: LogEntry[] = [];
  private statusValue: TrainerStatus = 'idle';
  private listeners = new Set<TrainerListener>();
  private pauseRequested = false;
  private stopRequested = false;
  private wake: (() => void) | undefined;
  private busy = false;
  private disposed = false;

  constructor(model: TrainableModel, options: TrainerOptions) {
    this.model = model;
    this.options = { ...options };
    const o = this.options;
    this.seed = o.seed ?? 42;
    this.gradientAccumulationSteps = o.gradientAccumulationSteps ?? 1;
    if (!Number.isInteger(this.gradientAccumulationSteps) || this.gradientAccumulationSteps < 1) {
      throw new Error(`Trainer: gradientAccumulationSteps must be a positive integer, got ${o.gradientAccumulationSteps}`);
    }
    const perEpoch = this.stepsPerEpoch();
    if (o.maxSteps !== undefined) {
      if (!Number.isInteger(o.maxSteps) || o.maxSteps < 1) throw new Error(`Trainer: maxSteps must be a positive integer, got ${o.maxSteps}`);
      this.maxSteps = o.maxSteps;
    } else {
      if (perEpoch === undefined) throw new Error('Trainer: give maxSteps, or batchesPerEpoch when train is a function, so the run length (and the schedule) is known');
      this.maxSteps = Math.max(1, Math.ceil((o.epochs ?? 1) * perEpoch));
    }
    const warmupSteps = o.warmupSteps ?? (o.warmupRatio !== undefined ? warmupStepsFromRatio(this.maxSteps, o.warmupRatio) : 0);
    this.schedule = { kind: o.schedule ?? 'linear', lr: o.lr ?? 5e-5, warmupSteps, totalSteps: this.maxSteps, numCycles: o.numCycles ?? 0.5 };
    learningRate(this.schedule, 0); // validates the kind
    this.params = model.trainableParams();
    if (this.params.size === 0) throw new Error('Trainer: the model has no trainable parameters');
    this.varNames = new Map([...this.params].map(([name, v]) => [v.name, name]));
    this.optimizer = model.engine.clipAdamw({
      maxGradNorm: o.maxGradNorm ?? 1.0, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay ?? 0, decay: o.decay,
    });
    this.optState = this.optimizer.init(this.params);
  }

  /** Current status: idle, running, paused, stopped, done or failed. */
  get status(): TrainerStatus {
    return this.statusValue;
  }

  /** Optimizer steps taken so far (skipped ones included). */
  get step(): number {
    return this.stepCount;
  }

  /** Epochs completed, fractional when the epoch length is known. */
  get epoch(): number {
    const batches = this.batchesPerEpoch();
    return this.position.epoch + (batches ? this.position.batchIndex / batches : 0);
  }

  /** Per-step and eval metrics so far, with transformers' log_history keys (loss, grad_norm, learning_rate, eval_loss...). */
  get history(): readonly LogEntry[] {
    return this.logHistory;
  }

  /** Adds a listener; returns a function that removes it. */
  on(listener: TrainerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Events as an async iterator, from now until the run ends (the status event with
   * stopped/done/failed is the last one yielded).
   *
   *   for await (const e of trainer.events()) if (e.type === 'step') chart.add(e.step, e.loss);
   */
  events(): AsyncIterableIterator<TrainerEvent> {
    const queue: TrainerEvent[] = [];
    let notify: (() => void) | undefined;
    let finished = false;
    const off = this.on((e) => {
      queue.push(e);
      if (e.type === 'status' && (e.status === 'stopped' || e.status === 'done' || e.status === 'failed')) finished = true;
      notify?.();
    });
    const iter: AsyncIterableIterator<TrainerEvent> = {
      [Symbol.asyncIterator]: () => iter,
      next: async () => {
        while (queue.length === 0) {
          if (finished) { off(); return { done: true, value: undefined }; }
          await new Promise<void>((r) => (notify = r));
          notify = undefined;
        }
        return { done: false, value: queue.shift()! };
      },
      return: async () => {
        off();
        return { done: true, value: undefined };
      },
    };
    return iter;
  }

  private emit(event: TrainerEvent): void {
    for (const l of [...this.listeners]) l(event);
  }

  private setStatus(status: TrainerStatus, extra: Partial<StatusEvent> = {}): void {
    this.statusValue = status;
    this.emit({ type: 'status', status, step: this.stepCount, ...extra });
  }

  /** Asks a running loop to wait after the current step. */
  pause(): void {
    if (this.statusValue !== 'running') return;
    this.pauseRequested = true;
  }

  /** Continues a paused run. (resumeTrainer, src/io/trainer_checkpoint.ts, restores a checkpoint.) */
  resume(): void {
    this.pauseRequested = false;
    this.wake?.();
  }

  /** Ends the run after the current step; run() then resolves. */
  stop(): void {
    this.stopRequested = true;
    this.wake?.();
  }

  /**
   * Trains until maxSteps, stop(), or (with onNonFinite 'stop') a non-finite step. Yields to the
   * event loop between steps. Resolves with the last status; rejects on an error (a batch with no
   * trained position, a model error), after emitting a 'failed' status.
   */
  async run(): Promise<TrainerStatus> {
    if (this.busy) throw new Error('Trainer.run: already running');
    this.stopRequested = false;
    this.sessionStart = now();
    this.pausedMs = 0;
    this.setStatus('running');
    try {
      while (this.stepCount < this.maxSteps) {
        if (this.stopRequested) break;
        if (this.pauseRequested) {
          this.pausedAt = now();
          this.setStatus('paused');
          while (this.pauseRequested && !this.stopRequested) await new Promise<void>((r) => (this.wake = r));
          this.wake = undefined;
          this.pausedMs += now() - this.pausedAt;
          if (this.stopRequested) break;
          this.setStatus('running');
        }
        const event = await this.trainStep();
        if (event.type === 'skip' && this.options.onNonFinite === 'stop') {
          this.finishSession();
          this.setStatus('stopped', { reason: 'non-finite' });
          return this.statusValue;
        }
        await yieldToEventLoop();
      }
      this.finishSession();
      if (this.stepCount >= this.maxSteps) this.setStatus('done', { reason: 'max-steps' });
      else this.setStatus('stopped', { reason: 'stopped' });
      return this.statusValue;
    } catch (e) {
      this.finishSession();
      this.setStatus('failed', { reason: 'error', error: (e as Error).message });
      throw e;
    }
  }

  private finishSession(): void {
    this.elapsedBefore = this.elapsedMs();
    this.sessionStart = 0;
  }

  private elapsedMs(): number {
    return this.elapsedBefore + (this.sessionStart ? now() - this.sessionStart - this.pausedMs : 0);
  }

  // ---------------------------------------------------------------------------------------------
  // Data

  private batchesPerEpoch(): number | undefined {
    const t = this.options.train;
    return typeof t === 'function' ? this.options.batchesPerEpoch : t.length;
  }

  private stepsPerEpoch(): number | undefined {
    const b = this.batchesPerEpoch();
    return b === undefined ? undefined : Math.ceil(b / (this.options.gradientAccumulationSteps ?? 1));
  }

  private epochBatches(epoch: number): Iterable<Batch> | AsyncIterable<Batch> {
    const t = this.options.train;
    if (typeof t === 'function') return t(epoch);
    if (!this.options.shuffle) return t;
    const order = permutation(t.length, mixSeed(this.seed, epoch, 0x5eed));
    return order.map((i) => t[i]);
  }

  private openEpoch(epoch: number): AsyncIterator<Batch> | Iterator<Batch> {
    const src = this.epochBatches(epoch);
    return Symbol.asyncIterator in src ? (src as AsyncIterable<Batch>)[Symbol.asyncIterator]() : (src as Iterable<Batch>)[Symbol.iterator]();
  }

  /**
   * The micro-batches of the next optimizer step: K batches, fewer at the end of an epoch (the
   * last step of an epoch takes what is left, as transformers does).
   */
  private async nextMicroBatches(): Promise<Batch[]> {
    const out: Batch[] = [];
    while (out.length < this.gradientAccumulationSteps) {
      if (!this.iterator) {
        this.iterator = this.openEpoch(this.position.epoch);
        // A resumed run skips what the interrupted one consumed of this epoch.
        for (let i = 0; i < this.position.batchIndex; i++) {
          const r = await this.iterator.next();
          if (r.done) throw new Error(`Trainer: epoch ${this.position.epoch} has ${i} batches, fewer than the ${this.position.batchIndex} the checkpoint had consumed (different training data?)`);
        }
      }
      const r = await this.iterator.next();
      if (r.done) {
        this.iterator = undefined;
        if (this.position.batchIndex === 0) throw new Error(`Trainer: epoch ${this.position.epoch} of the training data has no batches`);
        this.position = { epoch: this.position.epoch + 1, batchIndex: 0 };
        if (out.length > 0) break; // end of epoch: step with what we have
        continue;
      }
      this.position = { epoch: this.position.epoch, batchIndex: this.position.batchIndex + 1 };
      out.push(r.value);
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // One step

  /** Runs one optimizer step (outside run() too). Returns its step or skip event. */
  async trainStep(): Promise<StepEvent | SkipEvent> {
    if (this.disposed) throw new Error('Trainer: disposed');
    if (this.busy) throw new Error('Trainer.trainStep: a step is already in progress');
    this.busy = true;
    try {
      return await this.trainStepInner();
    } finally {
      this.busy = false;
    }
  }

  private checkedShapes = new Set<string>();

  /**
   * On WebGPU, refuses a batch shape whose step would bind a tensor larger than the device allows
   * (maxStorageBufferBindingSize): the error names the tensor, its size, the limit and what to change.
   */
  private checkFitsDevice(B: number, T: number): void {
    const key = `${B}x${T}`;
    const limits = backendInfo()?.limits;
    const config = this.model.config;   // a model without one (not a CausalLM) is not checked
    if (this.checkedShapes.has(key) || !limits || tf.getBackend() !== 'webgpu' || !config) return;
    checkStepFits(config, B, T, limits, { gradientCheckpointing: this.options.gradientCheckpointing });
    this.checkedShapes.add(key);
  }

  private async trainStepInner(): Promise<StepEvent | SkipEvent> {
    const t0 = now();
    const stepIndex = this.stepCount;           // 0-based: the schedule's step and the randomness key
    const micro = await this.nextMicroBatches();
    // Host-side checks before any GPU work: a step with nothing to learn from is a data error.
    let trained = 0, real = 0;
    micro.forEach((b, i) => {
      const where = `training batch ${this.position.epoch}:${this.position.batchIndex - micro.length + i} (step ${stepIndex + 1}, micro-batch ${i})`;
      checkBatch(b, where);
      const { total, emptyRows } = countTrained(b.labels, b.batchSize, b.seqLen);
      if (total === 0) {
        throw new Error(`${where}: no trained positions in rows ${describeRows(b, emptyRows)}: every label is -100 after the shift ` +
          '(check the loss mask, e.g. assistant turns cut off by truncation), so the loss would be 0/0');
      }
      trained += total;
      real += countRealTokens(b);
    });

    // Nothing over the device's binding limit: refused here, before the first dispatch of this shape.
    for (const b of micro) this.checkFitsDevice(b.batchSize, b.seqLen);

    // Forward + backward per micro-batch; gradients of sum_i / N summed on the device.
    const lr = learningRate(this.schedule, stepIndex);
    const vars = [...this.params.values()];
    const grads = new Map<string, tf.Tensor>();
    let lossSum: tf.Scalar = tf.scalar(0);
    for (let i = 0; i < micro.length; i++) {
      const t = batchTensors(micro[i]);
      const seed = mixSeed(this.seed, stepIndex, i);
      const { value, grads: g } = tf.variableGrads(() => {
        const opts = { gradientCheckpointing: this.options.gradientCheckpointing, ...this.options.forwardOptions, attentionMask: t.mask, positionIds: t.pos, training: true, seed };
        const { rowSums } = this.model.loss ? this.model.loss(t.ids, t.labels, opts) : maskedCrossEntropy(this.model.forward(t.ids, opts), t.labels, this.model.engine.ops);
        return tf.div(tf.sum(rowSums), trained) as tf.Scalar;
      }, vars);
      disposeAll(t);
      const nextLoss = lossSum.add(value) as tf.Scalar;
      lossSum.dispose(); value.dispose();
      lossSum = nextLoss;
      for (const [varName, gi] of Object.entries(g)) {
        const name = this.varNames.get(varName);
        if (name === undefined) { gi.dispose(); continue; }
        const prev = grads.get(name);
        if (prev) { grads.set(name, prev.add(gi)); prev.dispose(); gi.dispose(); } else grads.set(name, gi);
      }
    }

    // Clip (torch semantics) and read loss + pre-clip norm together: the one sync of the step.
    let update: ReturnType<ClipAdamW['update']>;
    try {
      update = this.optimizer.update(grads, this.optState, this.params, { lr });   // the model's engine's clip + AdamW (fused kernels on WebGPU)
    } catch (e) {
      for (const g of grads.values()) g.dispose();
      lossSum.dispose();
      throw e;
    }
    const readout = tf.stack([lossSum, update.gradNorm]);
    const [loss, gradNorm] = await readout.data();
    readout.dispose(); lossSum.dispose();

    this.stepCount += 1;
    this.tokensSeen += real;
    const epoch = this.epoch;
    try {
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        this.skipped += 1;
        const event: SkipEvent = { type: 'skip', step: this.stepCount, epoch, reason: Number.isFinite(loss) ? 'non-finite gradient norm' : 'non-finite loss', loss, gradNorm, lr };
        this.logHistory.push({ step: this.stepCount, epoch, skipped: event.reason, learning_rate: lr });
        this.emit(event);
        return event;
      }
      update.apply();
    } finally {
      update.dispose();
      for (const g of grads.values()) g.dispose();
    }
    const seconds = Math.max(now() - t0, 1e-3) / 1000;
    if (!this.sessionStart) this.elapsedBefore += seconds * 1000; // stepped by hand, outside run()
    const event: StepEvent = {
      type: 'step', step: this.stepCount, epoch, loss, lr, gradNorm,
      tokensPerSecond: real / seconds, trainedFraction: real ? trained / real : 0,
      tokens: this.tokensSeen, trainedTokens: trained, elapsedMs: this.elapsedMs(),
    };
    this.logHistory.push({ step: this.stepCount, epoch, loss, grad_norm: gradNorm, learning_rate: lr, num_tokens: this.tokensSeen });
    this.emit(event);

    const evalEvery = this.options.evalEvery ?? 0;
    if (evalEvery > 0 && this.options.eval && this.stepCount % evalEvery === 0) await this.evaluate();
    return event;
  }

  /**
   * Evaluates on `batches` (default: the eval source, epoch 0), emits an eval event and records
   * it in the history.
   */
  async evaluate(batches?: BatchSource): Promise<EvalEvent> {
    const src = batches ?? this.options.eval;
    if (!src) throw new Error('Trainer.evaluate: no eval batches (give options.eval or pass batches)');
    const result = await evaluateLoss(this.model, typeof src === 'function' ? src(0) : src, { forwardOptions: this.options.forwardOptions });
    const event: EvalEvent = { type: 'eval', step: this.stepCount, epoch: this.epoch, ...result };
    this.logHistory.push({ step: this.stepCount, epoch: event.epoch, eval_loss: result.evalLoss, eval_perplexity: result.perplexity, eval_token_accuracy: result.tokenAccuracy });
    this.emit(event);
    return event;
  }

  /**
   * Where the run stands, what a checkpoint holds (src/io/trainer_checkpoint.ts writes it): the
   * counters, data position and log history, and the live trainable variables and AdamW state.
   * Call it between steps.
   */
  progress(): TrainerProgress {
    if (this.busy) throw new Error('Trainer: a step is in progress; read its progress between steps (from a step event, or after run() resolves)');
    return {
      step: this.stepCount, position: { ...this.position }, tokensSeen: this.tokensSeen, skipped: this.skipped,
      elapsedMs: this.elapsedMs(), logHistory: this.logHistory, params: this.params, optimizer: this.optState[1],
    };
  }

  /** Puts a fresh trainer (no step taken) at a saved position; the optimizer state is restored into progress().optimizer. */
  restoreProgress(p: Pick<TrainerProgress, 'step' | 'position' | 'tokensSeen' | 'skipped' | 'elapsedMs' | 'logHistory'>): void {
    if (this.stepCount !== 0 || this.iterator) throw new Error('Trainer.restoreProgress: the trainer has already stepped');
    this.stepCount = p.step;
    this.position = { ...p.position };
    this.tokensSeen = p.tokensSeen;
    this.skipped = p.skipped;
    this.elapsedBefore = p.elapsedMs;
    this.logHistory = p.logHistory.map((e) => ({ ...e }));
  }

  /** Frees the optimizer state (not the model). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.stop();
    this.optimizer.dispose(this.optState);
  }
}
