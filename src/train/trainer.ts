/**
 * The training loop: one optimizer step is a recipe with one line per phase,
 *
 *   take K micro-batches -> check labels -> forward + masked CE + grads (summed over K)
 *   -> clip-then-AdamW update -> read loss and pre-clip grad norm once -> apply (skipped if non-finite)
 *   -> metrics event -> eval every N steps -> yield to the event loop
 *
 * The trainer owns events, pause/resume/stop, the step loop and epoch feeding; the rest is one
 * module each: options (trainer_options.ts), batch sources (batch_source.ts), the step's
 * gradient (gradients.ts), the optimizer (optim.ts, the engine's clipAdamw), events (events.ts),
 * log history (run_log.ts), progress and clock (progress.ts), evaluation (evaluation.ts);
 * checkpoint files are src/io/trainer_checkpoint.ts.
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
 */
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../data/batch.js';
import { mixSeed } from '../utils/random.js';
import { openEpoch, type BatchSource } from './batch_source.js';
import { checkStepBatches } from './batch_input.js';
import { evaluateLoss } from './evaluation.js';
import { TrainerEvents, type TrainerEvent, type TrainerListener, type TrainerStatus, type StatusEvent, type StepEvent, type SkipEvent, type EvalEvent } from './events.js';
import { stepGradients, type TrainableModel } from './gradients.js';
import { stepFitCheck } from './memory.js';
import type { ClipAdamW, ClipAdamWState } from './optim.js';
import { TrainingClock, now, yieldToEventLoop, type DataPosition, type TrainerProgress, type SavedProgress } from './progress.js';
import { logEntry, type LogEntry } from './run_log.js';
import { learningRate, type ScheduleConfig } from './schedule.js';
import { resolveTrainerOptions, type TrainerOptions } from './trainer_options.js';

// What callers import from here.
export { evaluateLoss, type LossEvalResult } from './evaluation.js';
export { batchSourceFrom, type BatchSource } from './batch_source.js';
export type { TrainableModel, TrainerOptions, LogEntry, DataPosition, TrainerProgress, TrainerEvent, TrainerListener, TrainerStatus, StepEvent, SkipEvent, EvalEvent, StatusEvent };

/**
 * Runs supervised fine-tuning steps on a model. Drive it with run() (resolves when the run
 * ends), or trainStep() one optimizer step at a time. Listen with on(listener) or iterate events().
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

  private readonly batchesPerEpoch: number | undefined;
  private readonly params: Map<string, tf.Variable>;
  private readonly optimizer: ClipAdamW;           // clip by global norm, then AdamW: the model's engine's implementation
  private readonly optState: ClipAdamWState;
  private readonly checkFitsDevice: (batchSize: number, seqLen: number) => void;
  private readonly listeners = new TrainerEvents();
  private readonly clock = new TrainingClock();
  private stepCount = 0;                  // optimizer steps taken (applied or skipped); the schedule's step
  private position: DataPosition = { epoch: 0, batchIndex: 0 };
  private iterator: AsyncIterator<Batch> | Iterator<Batch> | undefined;
  private tokensSeen = 0;
  private skipped = 0;
  private logHistory: LogEntry[] = [];
  private statusValue: TrainerStatus = 'idle';
  private pauseRequested = false;
  private stopRequested = false;
  private wake: (() => void) | undefined;
  private busy = false;
  private disposed = false;

  constructor(model: TrainableModel, options: TrainerOptions) {
    this.model = model;
    this.options = { ...options };
    const run = resolveTrainerOptions(this.options);
    this.seed = run.seed;
    this.gradientAccumulationSteps = run.gradientAccumulationSteps;
    this.maxSteps = run.maxSteps;
    this.schedule = run.schedule;
    this.batchesPerEpoch = run.batchesPerEpoch;
    this.params = model.trainableParams();
    if (this.params.size === 0) throw new Error('Trainer: the model has no trainable parameters');
    this.optimizer = model.engine.clipAdamw(run.optimizer);
    this.optState = this.optimizer.init(this.params);
    this.checkFitsDevice = stepFitCheck(model.config, { gradientCheckpointing: options.gradientCheckpointing });
  }

  /** Current status: idle, running, paused, stopped, done or failed. */
  get status(): TrainerStatus { return this.statusValue; }

  /** Optimizer steps taken so far (skipped ones included). */
  get step(): number { return this.stepCount; }

  /** Epochs completed, fractional when the epoch length is known. */
  get epoch(): number {
    const batches = this.batchesPerEpoch;
    return this.position.epoch + (batches ? this.position.batchIndex / batches : 0);
  }

  /** Per-step and eval metrics so far, with transformers' log_history keys (loss, grad_norm, learning_rate, eval_loss...). */
  get history(): readonly LogEntry[] { return this.logHistory; }

  /** Adds a listener; returns a function that removes it. */
  on(listener: TrainerListener): () => void { return this.listeners.on(listener); }

  /** Events as an async iterator, from now until the run ends (its last status event included). */
  events(): AsyncIterableIterator<TrainerEvent> { return this.listeners.iterate(); }

  private record(event: StepEvent | SkipEvent | EvalEvent): void {
    this.logHistory.push(logEntry(event));
    this.listeners.emit(event);
  }

  private setStatus(status: TrainerStatus, extra: Partial<StatusEvent> = {}): void {
    this.statusValue = status;
    this.listeners.emit({ type: 'status', status, step: this.stepCount, ...extra });
  }

  /** Asks a running loop to wait after the current step. */
  pause(): void {
    if (this.statusValue === 'running') this.pauseRequested = true;
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
    this.clock.start();
    this.setStatus('running');
    try {
      while (this.stepCount < this.maxSteps && !this.stopRequested) {
        if (this.pauseRequested) {
          this.clock.pause();
          this.setStatus('paused');
          while (this.pauseRequested && !this.stopRequested) await new Promise<void>((r) => (this.wake = r));
          this.wake = undefined;
          this.clock.unpause();
          if (this.stopRequested) break;
          this.setStatus('running');
        }
        const event = await this.trainStep();
        if (event.type === 'skip' && this.options.onNonFinite === 'stop') {
          this.clock.finish();
          this.setStatus('stopped', { reason: 'non-finite' });
          return this.statusValue;
        }
        await yieldToEventLoop();
      }
      this.clock.finish();
      if (this.stepCount >= this.maxSteps) this.setStatus('done', { reason: 'max-steps' });
      else this.setStatus('stopped', { reason: 'stopped' });
      return this.statusValue;
    } catch (e) {
      this.clock.finish();
      this.setStatus('failed', { reason: 'error', error: (e as Error).message });
      throw e;
    }
  }

  /**
   * The micro-batches of the next optimizer step: K batches, fewer at the end of an epoch (the
   * last step of an epoch takes what is left, as transformers does).
   */
  private async nextMicroBatches(): Promise<Batch[]> {
    const out: Batch[] = [];
    while (out.length < this.gradientAccumulationSteps) {
      if (!this.iterator) {
        this.iterator = openEpoch(this.options.train, this.position.epoch, { shuffle: this.options.shuffle, seed: this.seed });
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

  private async trainStepInner(): Promise<StepEvent | SkipEvent> {
    const t0 = now();
    const stepIndex = this.stepCount;           // 0-based: the schedule's step and the randomness key
    const micro = await this.nextMicroBatches();
    const first = this.position.batchIndex - micro.length;
    const { trained, real } = checkStepBatches(micro, (i) => `training batch ${this.position.epoch}:${first + i} (step ${stepIndex + 1}, micro-batch ${i})`);
    for (const b of micro) this.checkFitsDevice(b.batchSize, b.seqLen);   // refused before the first dispatch of a shape too large for the GPU

    const lr = learningRate(this.schedule, stepIndex);
    const { grads, loss: lossSum } = stepGradients(this.model, this.params, micro, {
      trained, seedOf: (i) => mixSeed(this.seed, stepIndex, i), gradientCheckpointing: this.options.gradientCheckpointing, forwardOptions: this.options.forwardOptions,
    });
    let update: ReturnType<ClipAdamW['update']> | undefined;
    let loss = NaN, gradNorm = NaN, applied = false;
    try {
      update = this.optimizer.update(grads, this.optState, this.params, { lr });
      const readout = tf.stack([lossSum, update.gradNorm]);   // the one sync of the step: loss and pre-clip norm together
      [loss, gradNorm] = await readout.data();
      readout.dispose();
      applied = Number.isFinite(loss) && Number.isFinite(gradNorm);
      if (applied) update.apply();
    } finally {
      update?.dispose();
      lossSum.dispose();
      for (const g of grads.values()) g.dispose();
    }
    this.stepCount += 1;
    this.tokensSeen += real;
    const epoch = this.epoch;
    if (!applied) {
      this.skipped += 1;
      const skip: SkipEvent = { type: 'skip', step: this.stepCount, epoch, reason: Number.isFinite(loss) ? 'non-finite gradient norm' : 'non-finite loss', loss, gradNorm, lr };
      this.record(skip);
      return skip;
    }
    const ms = Math.max(now() - t0, 1e-3);
    this.clock.stepOutsideRun(ms);
    const event: StepEvent = {
      type: 'step', step: this.stepCount, epoch, loss, lr, gradNorm,
      tokensPerSecond: real / (ms / 1000), trainedFraction: real ? trained / real : 0,
      tokens: this.tokensSeen, trainedTokens: trained, elapsedMs: this.clock.elapsedMs(),
    };
    this.record(event);
    const evalEvery = this.options.evalEvery ?? 0;
    if (evalEvery > 0 && this.options.eval && this.stepCount % evalEvery === 0) await this.evaluate();
    return event;
  }

  /** Evaluates on `batches` (default: the eval source, epoch 0), emits an eval event and records it in the history. */
  async evaluate(batches?: BatchSource): Promise<EvalEvent> {
    const src = batches ?? this.options.eval;
    if (!src) throw new Error('Trainer.evaluate: no eval batches (give options.eval or pass batches)');
    const result = await evaluateLoss(this.model, typeof src === 'function' ? src(0) : src, { forwardOptions: this.options.forwardOptions });
    const event: EvalEvent = { type: 'eval', step: this.stepCount, epoch: this.epoch, ...result };
    this.record(event);
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
      elapsedMs: this.clock.elapsedMs(), logHistory: this.logHistory, params: this.params, optimizer: this.optState[1],
    };
  }

  /** Puts a fresh trainer (no step taken) at a saved position; the optimizer state is restored into progress().optimizer. */
  restoreProgress(p: SavedProgress): void {
    if (this.stepCount !== 0 || this.iterator) throw new Error('Trainer.restoreProgress: the trainer has already stepped');
    this.stepCount = p.step;
    this.position = { ...p.position };
    this.tokensSeen = p.tokensSeen;
    this.skipped = p.skipped;
    this.clock.restore(p.elapsedMs);
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
