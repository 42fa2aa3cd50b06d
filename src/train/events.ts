/**
 * What a Trainer tells its listeners: a step applied, a step skipped, an evaluation, a status
 * change; and the listener set that delivers them, as callbacks or as an async iterator.
 *
 * @example
 *   trainer.on((e) => { if (e.type === 'step') console.log(e.step, e.loss.toFixed(3)); });
 *   for await (const e of trainer.events()) if (e.type === 'eval') chart.add(e.step, e.evalLoss);
 */
import type { LossEvalResult } from './evaluation.js';

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

/** Whether an event is the last of a run (a status that ends it). */
function endsRun(e: TrainerEvent): boolean {
  return e.type === 'status' && (e.status === 'stopped' || e.status === 'done' || e.status === 'failed');
}

/** The listeners of one trainer. */
export class TrainerEvents {
  private listeners = new Set<TrainerListener>();

  /** Adds a listener; returns a function that removes it. */
  on(listener: TrainerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: TrainerEvent): void {
    for (const l of [...this.listeners]) l(event);
  }

  /** Events from now until the run ends (the status event with stopped/done/failed is the last one yielded). */
  iterate(): AsyncIterableIterator<TrainerEvent> {
    const queue: TrainerEvent[] = [];
    let notify: (() => void) | undefined;
    let finished = false;
    const off = this.on((e) => {
      queue.push(e);
      if (endsRun(e)) finished = true;
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
}
