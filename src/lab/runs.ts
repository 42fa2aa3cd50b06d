/**
 * Training runs side by side. A RunRecord is what one run leaves behind (its settings, seed,
 * curves, eval loss, per-family scores, answers, votes); the page keeps them in IndexedDB and
 * `webtune compare` reads them from run directories. Both build the same comparison table:
 *
 *   runs -> comparisonTable(runs) -> { columns, rows, differing }  -> toCsv(table) | formatTable(table)
 *
 * Settings are flattened to dotted keys ({ lora: { r: 8 } } -> 'lora.r'); a setting is
 * "differing" when two runs give it different values (a run that lacks it counts as a value),
 * which is what a reader of the table wants highlighted.
 */
import type { PairVote } from './votes.js';

export type Scalar = string | number | boolean | null;

/** Loss curves of a run: train loss and learning rate per step, eval loss per evaluation. */
export interface RunCurves {
  step: number[];
  loss: number[];
  lr: number[];
  evalStep: number[];
  evalLoss: number[];
}

export interface FamilyScoreRecord { n: number; correct: number }

export interface RunRecord {
  id: string;
  name: string;
  /** Milliseconds since 1970. */
  createdAt: number;
  /** The run's settings (nested objects allowed; flattened for the table). */
  settings: Record<string, unknown>;
  seed: number;
  /** Family (or source) -> mixture weight. */
  mixture?: Record<string, number>;
  curves: RunCurves;
  /** Last train loss and last eval loss (NaN / undefined when there was none). */
  finalLoss?: number;
  evalLoss?: number;
  steps?: number;
  /** 'done', 'stopped', 'failed'. */
  state?: string;
  /** Per-family task accuracy before and after, when a comparison ran. */
  scores?: { before?: Record<string, FamilyScoreRecord>; after?: Record<string, FamilyScoreRecord> };
  /** Held-out prompts with the answers before and after training. */
  answers?: Array<{ prompt: string; before?: string; after: string; family?: string }>;
  /** The experiment this run belongs to: its id, title, the arm and what the arm set. */
  experiment?: { id: string; title: string; arm: string; setting: string };
  votes?: PairVote[];
}

export const emptyCurves = (): RunCurves => ({ step: [], loss: [], lr: [], evalStep: [], evalLoss: [] });

/** { a: 1, b: { c: 2, d: [1, 2] } } -> { a: 1, 'b.c': 2, 'b.d': '1,2' }. */
export function flattenSettings(obj: Record<string, unknown>, prefix = ''): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flattenSettings(v as Record<string, unknown>, key));
    else if (Array.isArray(v)) out[key] = v.map(String).join(',');
    else if (v === undefined) continue;
    else out[key] = v as Scalar;
  }
  return out;
}

/** Keys (of flattened settings) whose values are not the same in every run, in first-seen order. */
export function differingSettings(settings: readonly Record<string, Scalar>[]): string[] {
  const keys = [...new Set(settings.flatMap((s) => Object.keys(s)))];
  return keys.filter((k) => new Set(settings.map((s) => (k in s ? JSON.stringify(s[k]) : 'absent'))).size > 1);
}

/** Overall accuracy of per-family scores: correct / n over all families (NaN without any). */
export function overallAccuracy(scores?: Record<string, FamilyScoreRecord>): number {
  if (!scores) return NaN;
  let n = 0, c = 0;
  for (const s of Object.values(scores)) { n += s.n; c += s.correct; }
  return n ? c / n : NaN;
}

export interface ComparisonTable {
  /** 'name', then the settings columns, then the result columns. */
  columns: string[];
  rows: Array<{ id: string; cells: Record<string, Scalar> }>;
  /** Settings columns whose values differ between runs. */
  differing: string[];
  /** The results columns (the rest are settings). */
  results: string[];
}

export const RESULT_COLUMNS = ['last_step', 'final_loss', 'eval_loss', 'accuracy_before', 'accuracy_after'] as const;

/**
 * One row per run: its name, seed, every setting (only the differing ones with `onlyDiffering`),
 * the mixture weights as 'mixture.<family>', and its results.
 */
export function comparisonTable(runs: readonly RunRecord[], opts: { onlyDiffering?: boolean } = {}): ComparisonTable {
  const flat: Array<Record<string, Scalar>> = runs.map((r) => ({
    ...flattenSettings(r.settings),
    seed: r.seed,
    ...(r.mixture ? flattenSettings({ mixture: r.mixture }) : {}),
  }));
  const differing = differingSettings(flat);
  const settingCols = opts.onlyDiffering ? differing : [...new Set(flat.flatMap((s) => Object.keys(s)))];
  const results = [...RESULT_COLUMNS];
  const num = (x: number | undefined): Scalar => (x === undefined || Number.isNaN(x) ? null : x);
  const rows = runs.map((r, i) => ({
    id: r.id,
    cells: {
      name: r.name,
      ...Object.fromEntries(settingCols.map((k) => [k, k in flat[i] ? flat[i][k] : null])),
      last_step: num(r.steps ?? r.curves.step.at(-1)),
      final_loss: num(r.finalLoss ?? r.curves.loss.at(-1)),
      eval_loss: num(r.evalLoss ?? r.curves.evalLoss.at(-1)),
      accuracy_before: num(overallAccuracy(r.scores?.before)),
      accuracy_after: num(overallAccuracy(r.scores?.after)),
    } as Record<string, Scalar>,
  }));
  return { columns: ['name', ...settingCols, ...results], rows, differing, results };
}

/** A cell as text: numbers to 4 significant digits past the point where it matters, null as ''. */
export function formatCell(v: Scalar): string {
  if (v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) < 1e-3 ? v.toExponential(3) : v.toFixed(4);
  return String(v);
}

/** RFC 4180 CSV: a header row, then one row per run; fields with a comma, quote or newline are quoted. */
export function toCsv(table: ComparisonTable): string {
  const q = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const lines = [table.columns.map(q).join(',')];
  for (const r of table.rows) lines.push(table.columns.map((c) => q(r.cells[c] === null || r.cells[c] === undefined ? '' : String(r.cells[c]))).join(','));
  return lines.join('\r\n') + '\r\n';
}

/** The table as aligned text for a terminal; differing settings are marked with '*' in the header. */
export function formatTable(table: ComparisonTable): string {
  const head = table.columns.map((c) => (table.differing.includes(c) ? `${c}*` : c));
  const body = table.rows.map((r) => table.columns.map((c) => formatCell(r.cells[c] ?? null)));
  const widths = head.map((h, j) => Math.max(h.length, ...body.map((row) => row[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padEnd(widths[j])).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
  if (table.differing.length) out.push('', `* differs between runs: ${table.differing.join(', ')}`);
  return out.join('\n');
}
