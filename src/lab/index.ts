/**
 * The experiments lab: runs side by side (comparison table, differing settings, CSV), seed
 * statistics of an experiment's arms, and blind pairwise votes with Wilson intervals.
 */
export * from './stats.js';
export * from './runs.js';
export * from './votes.js';
export * from './experiments.js';
