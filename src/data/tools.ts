/**
 * The data tools a user reaches from `webtune train` / `webtune inspect` flags and the page's
 * dataset panel, built on filters.ts and mixture.ts:
 *
 *   filtersFrom({ exactDedup: true, nearDedup: 0.7, length: { maxWords: 200 }, safety: true })
 *       -> [exactDedup(), nearDedup({ threshold: 0.7 }), lengthFilter(...), safetyFilter()]
 *   filterReportLines(report)          -> "exact_dedup: removed 2 rows, e.g. data.jsonl:4 exact duplicate of data.jsonl:1"
 *   splitValidation(rows, 10, seed)    -> { train, valid }: a seeded 10 % held out for eval loss
 *   overlapWith(rows, testRows)        -> rows whose instruction is (nearly) a test row's
 */
import type { Example } from './dataset.js';
import { exactDedup, instructionText, lengthFilter, nearDedup, rougeL, rougeTokens, safetyFilter, type DatasetFilter, type FilterReport } from './filters.js';
import { shuffled } from './batch.js';

export interface LengthLimits { minChars?: number; maxChars?: number; minWords?: number; maxWords?: number }

export interface DataToolOptions {
  exactDedup?: boolean;
  /** Near-dedup threshold (ROUGE-L F1 of instructions; Self-Instruct's 0.7), or false / undefined for off. */
  nearDedup?: number | false;
  /** Length filter limits; off when none is set. */
  length?: LengthLimits;
  safety?: boolean;
}

/** The filters the options ask for, in the order rows should meet them (cheap exact checks first). */
export function filtersFrom(o: DataToolOptions): DatasetFilter[] {
  const out: DatasetFilter[] = [];
  if (o.exactDedup) out.push(exactDedup());
  if (typeof o.nearDedup === 'number') out.push(nearDedup({ threshold: o.nearDedup }));
  const l = o.length ?? {};
  if ([l.minChars, l.maxChars, l.minWords, l.maxWords].some((v) => v !== undefined)) out.push(lengthFilter(l));
  if (o.safety) out.push(safetyFilter());
  return out;
}

const where = (r: { id?: unknown; file?: unknown; line?: unknown }) =>
  r.file !== undefined ? `${String(r.file)}:${String(r.line ?? '?')}` : r.id !== undefined ? `row ${String(r.id)}` : 'a row';

/** One line per filter: how many rows it removed and up to `examples` of them with the reason. */
export function filterReportLines(report: FilterReport, examples = 3): string[] {
  return Object.entries(report.byFilter).map(([name, n]) => {
    const shown = report.removed.filter((r) => r.filter === name).slice(0, examples).map((r) => `${where(r)} ${r.reason}`);
    return `${name}: removed ${n} row${n === 1 ? '' : 's'}${shown.length ? `, e.g. ${shown.join('; ')}` : ''}`;
  });
}

/**
 * Holds out round(n · percent / 100) of the n rows for eval loss (so 10 % of 4 rows is none),
 * chosen by a seeded shuffle; both parts keep the input order.
 */
export function splitValidation<T>(rows: readonly T[], percent: number, seed: number): { train: T[]; valid: T[] } {
  if (!(percent >= 0 && percent < 100)) throw new Error(`validation split must be a percentage in [0, 100), got ${percent}`);
  const k = Math.round((rows.length * percent) / 100);
  const held = new Set(shuffled(rows.map((_, i) => i), seed, 0).slice(0, k));
  return { train: rows.filter((_, i) => !held.has(i)), valid: rows.filter((_, i) => held.has(i)) };
}

export interface Overlap { row: Example; test: Example; score: number }

/**
 * Rows whose instruction (first user message / prompt) matches a test row's: exactly after
 * rouge tokenisation (score 1), or with ROUGE-L F1 above `threshold` (default 0.7, the near-dedup rule).
 * Training on test prompts makes the held-out accuracy meaningless, so this is reported before training.
 */
export function overlapWith(rows: readonly Example[], test: readonly Example[], threshold = 0.7): Overlap[] {
  const exact = new Map<string, Example>();
  for (const t of test) exact.set(rougeTokens(instructionText(t)).join(' '), t);
  const out: Overlap[] = [];
  for (const row of rows) {
    const text = instructionText(row);
    const key = rougeTokens(text).join(' ');
    if (!key) continue;
    const hit = exact.get(key);
    if (hit) { out.push({ row, test: hit, score: 1 }); continue; }
    let best: Overlap | undefined;
    for (const t of test) {
      const f = rougeL(instructionText(t), text);
      if (f > threshold && (!best || f > best.score)) best = { row, test: t, score: f };
    }
    if (best) out.push(best);
  }
  return out;
}
