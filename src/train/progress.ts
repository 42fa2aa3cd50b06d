/**
 * Where a run stands, as a checkpoint saves and restores it (src/io/trainer_checkpoint.ts), and
 * the clock of its training time (pauses excluded, carried over a resume).
 */
import type * as tf from '@tensorflow/tfjs';
import type { AdamWState } from './optim.js';
import type { LogEntry } from './run_log.js';

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

/** What Trainer.restoreProgress() puts back (the variables and moments are assigned in place). */
export type SavedProgress = Pick<TrainerProgress, 'step' | 'position' | 'tokensSeen' | 'skipped' | 'elapsedMs' | 'logHistory'>;

export const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Milliseconds of training: sessions of run() minus their pauses, plus steps taken by hand, plus what a resumed run had. */
export class TrainingClock {
  private before = 0;        // ms of finished sessions (and of the run a checkpoint resumed)
  private sessionStart = 0;  // 0: no session (stepping by hand)
  private pausedMs = 0;
  private pausedAt = 0;

  elapsedMs(): number {
    return this.before + (this.sessionStart ? now() - this.sessionStart - this.pausedMs : 0);
  }
  start(): void { this.sessionStart = now(); this.pausedMs = 0; }
  pause(): void { this.pausedAt = now(); }
  unpause(): void { this.pausedMs += now() - this.pausedAt; }
  finish(): void { this.before = this.elapsedMs(); this.sessionStart = 0; }
  /** A step taken outside run() counts its own duration. */
  stepOutsideRun(ms: number): void { if (!this.sessionStart) this.before += ms; }
  restore(ms: number): void { this.before = ms; }
}

/** Yields to the event loop (a macrotask), so UI events and timers run between steps. */
export function yieldToEventLoop(): Promise<void> {
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
