/** Training: loss, optimizer, schedules, the trainer loop and its events, evaluation, generation. */

// Masked causal-LM cross-entropy (Hugging Face label convention) and the host-side trained-position
// check. (IGNORE_INDEX, -100, comes from the data barrel, which defines the labels.)
export { maskedCrossEntropy, countTrained, type MaskedLoss } from './loss.js';
// AdamW (torch semantics) and global-norm clipping, as functions and as gradient transformations with chain().
export * from './optim.js';
// Learning-rate schedules as transformers defines them.
export * from './schedule.js';
// Training memory from config.json alone (the plan), and the GPU buffer-limit check.
export * from './memory.js';

// Logits warpers and token choice: temperature, top-k, top-p, argmax.
export * from './sampling.js';
// The Trainer: events, pause/resume/stop, the step loop, epoch feeding; and, one module each, its
// options, batch sources, a step's gradient, events, log history, and progress (what a checkpoint holds).
export * from './trainer.js';
export * from './trainer_options.js';
export * from './batch_source.js';
export * from './gradients.js';
export * from './events.js';
export * from './run_log.js';
export { TrainingClock, yieldToEventLoop, type DataPosition, type TrainerProgress, type SavedProgress } from './progress.js';
// Generation: greedy or sampled, stop tokens, KV cache, streaming; generateChat.
export * from './generate.js';
