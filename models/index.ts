/** Model definitions: configs and presets, the families (one folder each), and the CausalLM that runs them. */
export * from './config.js';
export * from './config_reader.js';
export * from './spec.js';
export * from './family.js';
export * from './transformer.js';
export * from './families/index.js';
export * from './causal_lm.js';
