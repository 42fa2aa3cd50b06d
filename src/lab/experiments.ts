/**
 * One-setting experiments: arms that differ in one setting, each run over several seeds, so the
 * noise between seeds is visible next to the effect.
 *
 *   const exp = { id: 'neftune', title: 'NEFTune off vs on', setting: 'neftune.enabled',
 *                 arms: [{ label: 'off', set: { 'neftune.enabled': false } }, { label: 'on', set: { 'neftune.enabled': true } }] };
 *   planExperiment(exp, settings, [1, 2])   // 4 runs: off/1, off/2, on/1, on/2 (arm-major), each a patched copy
 *   experimentResult(exp, runs, 'eval_loss') // per-arm seed stats and arm B vs arm A
 */
import { compareArms, seedStats, type ArmComparison, type SeedStats } from './stats.js';
import { overallAccuracy, type RunRecord } from './runs.js';

export interface ExperimentArm {
  label: string;
  /** Dotted setting paths and the values this arm gives them, e.g. { 'lora.enabled': true }. */
  set: Record<string, unknown>;
}

export interface Experiment {
  id: string;
  title: string;
  /** What changes between the arms, for the result view. */
  setting: string;
  /** Why it is worth trying: the lesson it illustrates. */
  lesson?: string;
  arms: ExperimentArm[];
}

export interface PlannedRun<S> { arm: string; seed: number; settings: S }

/** A deep copy of `obj` with the dotted `path` set to `value` (intermediate objects are created). */
export function withSetting<S>(obj: S, path: string, value: unknown): S {
  const copy = structuredClone(obj) as Record<string, unknown>;
  const keys = path.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) {
    if (o[k] === null || typeof o[k] !== 'object') o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
  return copy as S;
}

/**
 * The runs of an experiment, arm-major: every arm's settings are `base` with the arm's values
 * set and `seedPath` (default 'seed') set to each seed.
 */
export function planExperiment<S>(exp: Experiment, base: S, seeds: readonly number[], seedPath = 'seed'): PlannedRun<S>[] {
  if (exp.arms.length < 2) throw new Error(`experiment '${exp.id}': needs at least two arms`);
  if (seeds.length === 0) throw new Error(`experiment '${exp.id}': needs at least one seed`);
  const out: PlannedRun<S>[] = [];
  for (const arm of exp.arms) {
    let s = base;
    for (const [k, v] of Object.entries(arm.set)) s = withSetting(s, k, v);
    for (const seed of seeds) out.push({ arm: arm.label, seed, settings: withSetting(s, seedPath, seed) });
  }
  return out;
}

export type ExperimentMetric = 'eval_loss' | 'final_loss' | 'accuracy_after';

/** A run's value of a metric (NaN when it has none). */
export function runMetric(r: RunRecord, metric: ExperimentMetric): number {
  if (metric === 'final_loss') return r.finalLoss ?? r.curves.loss.at(-1) ?? NaN;
  if (metric === 'eval_loss') return r.evalLoss ?? r.curves.evalLoss.at(-1) ?? NaN;
  return overallAccuracy(r.scores?.after);
}

export interface ExperimentResult {
  metric: ExperimentMetric;
  arms: Array<{ label: string; runs: string[]; stats: SeedStats }>;
  /** The last arm against the first. */
  comparison: ArmComparison;
}

/** Per-arm statistics of `metric` over the experiment's runs (matched by run.experiment), and arm B vs arm A. */
export function experimentResult(exp: Experiment, runs: readonly RunRecord[], metric: ExperimentMetric): ExperimentResult {
  const mine = runs.filter((r) => r.experiment?.id === exp.id);
  const arms = exp.arms.map((a) => {
    const armRuns = mine.filter((r) => r.experiment!.arm === a.label);
    const values = armRuns.map((r) => runMetric(r, metric)).filter((v) => Number.isFinite(v));
    return { label: a.label, runs: armRuns.map((r) => r.id), values, stats: seedStats(values) };
  });
  const comparison = compareArms(arms[0].values, arms[arms.length - 1].values);
  return { metric, arms: arms.map(({ values: _v, ...rest }) => rest), comparison };
}
