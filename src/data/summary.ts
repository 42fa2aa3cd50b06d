/**
 * DatasetSummary: what a prepared dataset holds and everything that was left out or changed
 * on the way (bad rows, filtered rows, dropped and truncated examples, special-token
 * forgeries), with counts per source and per family. `formatSummary` prints it for people;
 * the object itself is the `--json` form.
 */
import type { RowError } from './dataset.js';
import type { FilterReport } from './filters.js';
import { countTrainedLabels, type DropReason, type LabelResult, type TokenizedExample } from './labels.js';

export interface LengthStats { min: number; mean: number; p50: number; p95: number; max: number }
export interface GroupCounts { rows: number; examples: number; tokens: number; trainedTokens: number }
export interface DroppedRow { reason: DropReason; detail: string; source?: string; id?: unknown; file?: unknown; line?: unknown }

export interface DatasetSummary {
  mask: string;
  template: string | null;
  maxLength: number | null;
  truncation: string;
  /** Rows read from the sources (good ones), and the bad rows left out with file/line/field. */
  rows: number;
  rowErrors: RowError[];
  filters: FilterReport | null;
  /** Emitted examples (after unrolling, truncation and dropping; before mixing). */
  examples: number;
  tokens: number;
  /** Positions the shifted loss trains on (labels[1..] that are not -100). */
  trainedTokens: number;
  trainedFraction: number;
  lengths: LengthStats;
  truncated: number;
  dropped: { total: number; byReason: Partial<Record<DropReason, number>>; rows: DroppedRow[] };
  forgery: { rows: number; byToken: Record<string, number>; rowsFlagged: Array<{ id?: unknown; file?: unknown; line?: unknown; tokens: string[] }> };
  bySource: Record<string, GroupCounts>;
  byFamily: Record<string, GroupCounts>;
  /** Set when examples are packed: rows and the fraction of row positions holding tokens. */
  packing?: { strategy: string; seqLen: number; rows: number; fill: number };
  /** Set when sources were mixed by weight: examples drawn per source. */
  mixture?: { total: number; drawn: Record<string, number>; weights: Record<string, number> };
}

export function lengthStats(xs: readonly number[]): LengthStats {
  if (xs.length === 0) return { min: 0, mean: 0, p50: 0, p95: 0, max: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
  return { min: s[0], mean: s.reduce((a, b) => a + b, 0) / s.length, p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

const group = (): GroupCounts => ({ rows: 0, examples: 0, tokens: 0, trainedTokens: 0 });

/** Accumulates label results row by row into a DatasetSummary. */
export class SummaryBuilder {
  private s: DatasetSummary;
  private lengths: number[] = [];
  constructor(config: { mask: string; template: string | null; maxLength: number | null; truncation: string }) {
    this.s = {
      ...config, rows: 0, rowErrors: [], filters: null, examples: 0, tokens: 0, trainedTokens: 0, trainedFraction: 0,
      lengths: lengthStats([]), truncated: 0, dropped: { total: 0, byReason: {}, rows: [] },
      forgery: { rows: 0, byToken: {}, rowsFlagged: [] }, bySource: {}, byFamily: {},
    };
  }

  /** Records one dataset row's outcome. */
  addRow(source: string, meta: Record<string, unknown>, r: LabelResult): void {
    const s = this.s;
    s.rows++;
    const src = (s.bySource[source] ??= group());
    const family = String(meta.family ?? meta.task ?? 'unknown');
    const fam = (s.byFamily[family] ??= group());
    src.rows++;
    fam.rows++;
    for (const ex of r.examples) this.addExample(ex, [src, fam]);
    s.truncated += r.truncated;
    for (const d of r.dropped) {
      s.dropped.total++;
      s.dropped.byReason[d.reason] = (s.dropped.byReason[d.reason] ?? 0) + 1;
      s.dropped.rows.push({ reason: d.reason, detail: d.detail, source, ...pick(d.meta) });
    }
    if (r.forgedSpecials.length) {
      s.forgery.rows++;
      for (const t of r.forgedSpecials) s.forgery.byToken[t] = (s.forgery.byToken[t] ?? 0) + 1;
      s.forgery.rowsFlagged.push({ ...pick(meta), tokens: r.forgedSpecials });
    }
  }

  private addExample(ex: TokenizedExample, groups: GroupCounts[]): void {
    const n = ex.inputIds.length;
    const t = countTrainedLabels(ex.labels);
    this.s.examples++;
    this.s.tokens += n;
    this.s.trainedTokens += t;
    this.lengths.push(n);
    for (const g of groups) {
      g.examples++;
      g.tokens += n;
      g.trainedTokens += t;
    }
  }

  setRowErrors(errors: RowError[]): void { this.s.rowErrors = errors; }
  setFilters(report: FilterReport | null): void { this.s.filters = report; }
  setPacking(p: DatasetSummary['packing']): void { this.s.packing = p; }
  setMixture(m: DatasetSummary['mixture']): void { this.s.mixture = m; }

  finish(): DatasetSummary {
    this.s.lengths = lengthStats(this.lengths);
    this.s.trainedFraction = this.s.tokens ? this.s.trainedTokens / this.s.tokens : 0;
    return this.s;
  }
}

function pick(meta: Record<string, unknown>): { id?: unknown; file?: unknown; line?: unknown } {
  const out: { id?: unknown; file?: unknown; line?: unknown } = {};
  for (const k of ['id', 'file', 'line'] as const) if (meta[k] !== undefined) out[k] = meta[k];
  return out;
}

const where = (r: { id?: unknown; file?: unknown; line?: unknown }) =>
  [r.file !== undefined ? `${String(r.file)}:${String(r.line ?? '?')}` : '', r.id !== undefined ? `(${String(r.id)})` : ''].filter(Boolean).join(' ');

/** A readable multi-line report. `limit` caps how many individual rows each list shows. */
export function formatSummary(s: DatasetSummary, limit = 10): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const L: string[] = [];
  L.push(`dataset: ${s.rows} rows -> ${s.examples} examples, ${s.tokens} tokens, ${s.trainedTokens} trained (${pct(s.trainedFraction)})`);
  L.push(`  mask ${s.mask}, template ${s.template ?? 'none'}, max length ${s.maxLength ?? 'none'} (${s.truncation})`);
  L.push(`  lengths: min ${s.lengths.min}, mean ${s.lengths.mean.toFixed(1)}, p50 ${s.lengths.p50}, p95 ${s.lengths.p95}, max ${s.lengths.max}`);
  L.push(`  truncated: ${s.truncated}`);
  if (s.rowErrors.length) {
    L.push(`  bad rows skipped: ${s.rowErrors.length}`);
    for (const e of s.rowErrors.slice(0, limit)) L.push(`    ${e.message}`);
  }
  if (s.filters) {
    L.push(`  filtered: ${s.filters.input - s.filters.kept} of ${s.filters.input} rows (${Object.entries(s.filters.byFilter).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    for (const r of s.filters.removed.slice(0, limit)) L.push(`    ${r.filter}: ${where(r)} ${r.reason}`);
  }
  L.push(`  dropped: ${s.dropped.total}${s.dropped.total ? ` (${Object.entries(s.dropped.byReason).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`);
  for (const d of s.dropped.rows.slice(0, limit)) L.push(`    ${d.reason}: ${where(d)} ${d.detail}`);
  if (s.forgery.rows) {
    L.push(`  special-token text inside content (possible forgery): ${s.forgery.rows} rows (${Object.entries(s.forgery.byToken).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    for (const f of s.forgery.rowsFlagged.slice(0, limit)) L.push(`    ${where(f)} ${f.tokens.join(' ')}`);
  }
  const table = (title: string, g: Record<string, GroupCounts>) => {
    L.push(`  ${title}:`);
    for (const [k, v] of Object.entries(g).sort()) L.push(`    ${k.padEnd(16)} ${String(v.rows).padStart(6)} rows ${String(v.examples).padStart(6)} examples ${String(v.tokens).padStart(8)} tokens ${pct(v.tokens ? v.trainedTokens / v.tokens : 0).padStart(6)} trained`);
  };
  table('by source', s.bySource);
  if (Object.keys(s.byFamily).length > 1 || !s.byFamily.unknown) table('by family', s.byFamily);
  if (s.packing) L.push(`  packing: ${s.packing.strategy}, ${s.packing.rows} rows of ${s.packing.seqLen}, ${pct(s.packing.fill)} filled`);
  if (s.mixture) L.push(`  mixture: ${s.mixture.total} drawn (${Object.entries(s.mixture.drawn).map(([k, v]) => `${k} ${v} (weight ${s.mixture!.weights[k]})`).join(', ')})`);
  return L.join('\n');
}
