/**
 * Evaluation: per-kind answer scorers, task accuracy of a model on an instruction set
 * (generation passed in as a function, or a chat model through chatAnswerer), and a table for the
 * terminal.
 */
export * from './scorers.js';
export * from './evaluate.js';
export * from './table.js';
export * from './answerer.js';
