/** Training: loss, optimizer, schedules, the trainer loop and its events, evaluation, generation. */

// Masked causal-LM cross-entropy (Hugging Face label convention) and the host-side trained-position
// check. (IGNORE_INDEX, -100, comes from the data barrel, which defines the labels.)
export { maskedCrossEntropy, countTrained, type MaskedLoss } from './loss.js';
// AdamW (torch semantics) as init/update functions, weight-decay filter, global-norm clipping.
export * from './optim.js';
// Learning-rate schedules as transformers defines them.
export * from './schedule.js';
// Training memory from config.json alone (the plan), and the GPU buffer-limit check.
export * from './memory.js';

// Logits warpers and token choice: temperature, top-k, top-p, argmax.
export * from './sampling.js';
// The Trainer: steps, accumulation, events, eval, pause/resume/stop, checkpoints.
export * from './trainer.js';
// Generation: greedy or sampled, stop tokens, KV cache, streaming; generateChat.
export * from './generate.js';
