/**
 * WebTune's public API. The demo and every user import from here, and only from here.
 */

// Seeded randomness: hashes, mulberry32, seed mixing (every random choice is keyed, so runs reproduce).
export * from './utils/random.js';

// Backends: WebGPU first, announced fallbacks; each gives the engine models run on.
export * from './backend/index.js';
// Engines: the ops, update rule and warm-up a model is bound to (fused kernels on WebGPU, stock ops elsewhere).
export * from './engine/index.js';

// Files: safetensors, Hugging Face checkpoint directories, training state, browser storage.
export * from './io/index.js';

// Data: datasets, chat templates, tokenizers, loss masks, batches, the bundled instruction set.
export * from './data/index.js';

// Models: configs, presets, GPT-2 and Llama causal LMs, and their layers.
export * from '../models/index.js';
export * from './nn/index.js';

// Evaluation: task scorers and accuracy on an instruction set.
export * from './eval/index.js';


// Training: masked cross-entropy, AdamW, schedules, the Trainer and its events, generation.
export * from './train/index.js';

// The experiments lab: runs side by side, seed statistics of experiments, blind pairwise votes.
export * from './lab/index.js';

// Growing data with a model: Self-Instruct and Evol-Instruct pipelines streaming rows with provenance.
export * from './grow/index.js';

// Fused WebGPU kernels (the fused engine's ops), their CPU references, and the GPU meter.
export * from '../kernels/index.js';
