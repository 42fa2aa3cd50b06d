/**
 * The log history of a run, one entry per step, skipped step and evaluation, with the keys
 * transformers' Trainer writes to trainer_state.json (loss, grad_norm, learning_rate, eval_loss...).
 *
 * @example
 *   logEntry({ type: 'step', step: 3, epoch: 0.5, loss: 2.1, gradNorm: 0.8, lr: 1e-4, tokens: 960, ... });
 *   // { step: 3, epoch: 0.5, loss: 2.1, grad_norm: 0.8, learning_rate: 1e-4, num_tokens: 960 }
 */
import type { StepEvent, SkipEvent, EvalEvent } from './events.js';

/** One entry of the log history kept in trainer_state.json (transformers' names). */
export type LogEntry = Record<string, number | string>;

export function logEntry(e: StepEvent | SkipEvent | EvalEvent): LogEntry {
  const { step, epoch } = e;
  switch (e.type) {
    case 'step': return { step, epoch, loss: e.loss, grad_norm: e.gradNorm, learning_rate: e.lr, num_tokens: e.tokens };
    case 'skip': return { step, epoch, skipped: e.reason, learning_rate: e.lr };
    case 'eval': return { step, epoch, eval_loss: e.evalLoss, eval_perplexity: e.perplexity, eval_token_accuracy: e.tokenAccuracy };
  }
}
