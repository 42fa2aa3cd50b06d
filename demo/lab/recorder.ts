/**
 * Builds the RunRecord of the run in progress from what the page already receives: the settings
 * it sent, then step and eval replies, the final status, and the before/after comparison of the
 * model the run produced.
 */
import { emptyCurves, type RunRecord } from '../../src/index.js';
import type { CompareRow, FamilyScore, TrainSettings } from '../protocol.js';

/** A run's settings as the table shows them: the template by name, the mixture kept apart. */
export function recordedSettings(s: TrainSettings): { settings: Record<string, unknown>; mixture: Record<string, number> } {
  const { template, weights, uploadWeight, growWeight, seed: _seed, ...rest } = s;
  const templateName = template.kind === 'builtin' ? template.name : template.kind === 'tokenizer_config' ? template.fileName : template.kind;
  const mixture = { ...weights, ...(uploadWeight ? { upload: uploadWeight } : {}), ...(growWeight ? { grown: growWeight } : {}) };
  return { settings: { ...rest, template: templateName }, mixture };
}

export function newRun(s: TrainSettings, name: string, experiment?: RunRecord['experiment']): RunRecord {
  const { settings, mixture } = recordedSettings(s);
  const now = Date.now();
  return {
    id: `run-${now.toString(36)}-${Math.floor(Math.random() * 36 ** 4).toString(36)}`,
    name, createdAt: now, settings, seed: s.seed, mixture, curves: emptyCurves(), ...(experiment ? { experiment } : {}),
  };
}

export function recordStep(r: RunRecord, step: number, loss: number, lr: number): void {
  r.curves.step.push(step); r.curves.loss.push(loss); r.curves.lr.push(lr);
  r.finalLoss = loss;
  r.steps = step;
}

export function recordEval(r: RunRecord, step: number, evalLoss: number): void {
  r.curves.evalStep.push(step); r.curves.evalLoss.push(evalLoss);
  r.evalLoss = evalLoss;
}

/** One answered held-out prompt of the before/after comparison. */
export function recordAnswer(r: RunRecord, which: 'base' | 'tuned', row: CompareRow): void {
  const answers = (r.answers ??= []);
  while (answers.length <= row.index) answers.push({ prompt: '', after: '' });
  const a = answers[row.index];
  a.prompt = row.prompt;
  a.family = row.family;
  if (which === 'base') a.before = row.output;
  else a.after = row.output;
}

export function recordScores(r: RunRecord, base: Record<string, FamilyScore>, tuned: Record<string, FamilyScore>): void {
  r.scores = { ...(Object.keys(base).length ? { before: base } : {}), after: tuned };
}
