/**
 * The bundled instruction set: task families with paraphrased templates and seeded inputs,
 * hand-written rows, train / validation / test splits with held-out phrasings, a plain-prose
 * pretraining corpus, and the manifest describing them.
 */
export * from './types.js';
export { FACTS, REFUSAL, type Fact } from './facts.js';
export * from './families.js';
export { CALCULATOR_TOOL, calculatorCall, toolUseFamily, type ToolUseInput } from './tools.js';
export { HUMAN_ROWS, humanSplit, type HumanRow } from './human.js';
export * from './build.js';
export { renderDataReadme } from './readme.js';
