/** Files in and out: safetensors, checkpoint directories, training state, browser storage. */

// The safetensors format: strict reader (F32/F16/BF16/F64/I64/I32/I16/I8/U8/BOOL), F32/I32 writer.
export * from './safetensors.js';
// Where files come from and go to: Node directories, picked browser files, URLs, memory.
export * from './files.js';
// Hugging Face checkpoint directories: loadModel, saveModel, shards, tokenizer files.
export * from './checkpoint.js';
// Optimizer moments and trainer state beside a checkpoint, for exact resumption.
export * from './train_state.js';
// Resumable Trainer checkpoints (model, adapters, optimizer, trainer_state.json): saveTrainerCheckpoint, resumeTrainer.
export * from './trainer_checkpoint.js';
// A run folder with rotating checkpoints (atomic save, keep the last N, resume from the newest), over any FolderStorage.
export * from './run_folder.js';
// IndexedDB storage of checkpoint directories (browser only).
export * from './browser_store.js';
// PEFT LoRA adapter directories (adapter_config.json + adapter_model.safetensors) and merged checkpoints.
export * from './peft.js';
// A trained model as one directory: weights, adapter (beside, merged or alone), tokenizer, chat template, generation config.
export * from './model_files.js';
// Base models from the Hugging Face Hub: streamed downloads with progress, cancel, clear errors.
export * from './hub.js';
// Cache Storage (browser) / in-memory cache of downloaded hub files.
export * from './cache.js';
