/**
 * The SFT data pipeline, in the order data flows through it:
 * rows -> conversations -> chat template -> tokens -> labels -> batches.
 */
export * from './dataset.js';
export * from './template.js';
export * from './tokenizer.js';
export * from './labels.js';
export * from './batch.js';
export * from './filters.js';
export * from './instruct/index.js';
export * from './pipeline.js';
export * from './mixture.js';
export * from './summary.js';
export * from './bpe_train.js';
export * from './tools.js';
