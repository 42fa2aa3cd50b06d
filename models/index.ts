/** Model definitions: configs and presets, the two families, and the CausalLM that runs them. */
export * from './config.js';
export * from './spec.js';
export * from './gpt2.js';
export * from './llama.js';
export * from './causal_lm.js';
