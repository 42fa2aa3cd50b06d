/**
 * The data-tool flags `webtune train` and `webtune inspect` share, named as the library names
 * the tools (exactDedup, nearDedup, lengthFilter, safetyFilter, curriculum), and the report of
 * what each removed, printed before any training.
 */
import { UsageError, type Flags } from './args.js';
import { filtersFrom, filterReportLines } from '../data/tools.js';
import type { DatasetFilter } from '../data/filters.js';
import type { CurriculumKey } from '../data/mixture.js';
import type { DatasetSummary } from '../data/summary.js';

export const DATA_TOOL_FLAGS = {
  'exact-dedup': { type: 'boolean', help: 'remove rows whose whole content equals an earlier row (exactDedup)' },
  'near-dedup': { type: 'boolean', help: 'remove rows whose instruction has ROUGE-L F1 above --near-dedup-threshold with an earlier kept one (nearDedup, Self-Instruct\'s rule)' },
  'near-dedup-threshold': { type: 'number', default: 0.7, help: 'ROUGE-L F1 above which --near-dedup removes a row' },
  'min-chars': { type: 'number', help: 'length filter: remove rows with fewer characters (all texts of the row)' },
  'max-chars': { type: 'number', help: 'length filter: remove rows with more characters' },
  'min-words': { type: 'number', help: 'length filter: remove rows with fewer words' },
  'max-words': { type: 'number', help: 'length filter: remove rows with more words' },
  'safety-filter': { type: 'boolean', help: 'remove rows whose trained outputs match the built-in unsafe-content patterns (safetyFilter)' },
  curriculum: { type: 'string', help: 'order examples easiest first instead of shuffling: length (tokens) or difficulty (a numeric field of each row)' },
} as const;

type DataToolFlags = Flags<typeof DATA_TOOL_FLAGS>;

/** The filters and the curriculum the flags ask for; bad values are usage errors naming the flag. */
export function dataTools(command: string, f: DataToolFlags): { filters: DatasetFilter[]; curriculum?: CurriculumKey } {
  const bad = (msg: string) => { throw new UsageError(`${command}: ${msg}`); };
  const t = f['near-dedup-threshold']!;
  if (!(t > 0 && t <= 1)) bad(`--near-dedup-threshold must be in (0, 1], got ${t}`);
  for (const k of ['min-chars', 'max-chars', 'min-words', 'max-words'] as const) {
    const v = f[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) bad(`--${k} must be a whole number >= 0, got ${v}`);
  }
  if (f.curriculum !== undefined && f.curriculum !== 'length' && f.curriculum !== 'difficulty') bad(`--curriculum must be length or difficulty, got '${f.curriculum}'`);
  const filters = filtersFrom({
    exactDedup: f['exact-dedup'], nearDedup: f['near-dedup'] ? t : false, safety: f['safety-filter'],
    length: { minChars: f['min-chars'], maxChars: f['max-chars'], minWords: f['min-words'], maxWords: f['max-words'] },
  });
  return { filters, curriculum: f.curriculum as CurriculumKey | undefined };
}

/** "filters: 12 rows in, 9 kept" and one line per filter with examples, or nothing without filters. */
export function filterReport(summary: DatasetSummary): string[] {
  const r = summary.filters;
  if (!r) return [];
  return [`filters: ${r.input} rows in, ${r.kept} kept`, ...filterReportLines(r).map((l) => `  ${l}`)];
}
