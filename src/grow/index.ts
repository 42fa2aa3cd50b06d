/** Growing instruction data with a model: Self-Instruct and Evol-Instruct, with every row's provenance. */

// The model behind one interface: a prompt and sampling settings in, text out.
export * from './generator.js';
// Seed tasks from Self-Instruct's seed file or any dataset row.
export * from './seeds.js';
// Self-Instruct's and Evol-Instruct's filters and elimination rules, as DatasetFilters.
export * from './rules.js';
// Candidates, rows, statistics: what both pipelines stream (the helpers they share stay inside).
export {
  grownExamples, DEFAULT_ANSWER_SAMPLING,
  type GrowMethod, type GrownRow, type GrowCandidate, type GrowStats, type GrowRun, type GrowOptionsBase,
} from './candidates.js';
export * from './self_instruct.js';
export * from './evol_instruct.js';
