/** Layers of the model, each from the primitive ops table (ops.ts) up; an engine (src/engine) supplies the table. */
export * from './ops.js';
export * from './init.js';
export * from './linear.js';
export * from './embedding.js';
export * from './norm.js';
export * from './attention.js';
export * from './visibility.js';
export * from './mlp.js';
export * from './neftune.js';
export * from './lora.js';
export * from './linear_cross_entropy.js';
export * from './checkpoint.js';
