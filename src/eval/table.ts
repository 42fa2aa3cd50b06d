/**
 * Plain-text table of an evaluation result, for the CLI:
 *
 * ```
 * family       n  correct  accuracy  seen  unseen
 * arithmetic  57       21     36.8%  ...
 * ...
 * overall    409      160     39.1%
 * ```
 */
import type { EvalResult } from './evaluate.js';

const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : `${(x * 100).toFixed(1)}%`);

export function formatEvalTable(result: EvalResult): string {
  const phrasings = Object.keys(result.phrasingCounts).sort((a, b) => order(a) - order(b));
  const header = ['family', 'n', 'correct', 'accuracy', ...phrasings];
  const perPhrasing = (family: string | null, p: string) => {
    const rows = result.perRow.filter((r) => r.phrasing === p && (family === null || r.family === family));
    return rows.length ? pct(rows.filter((r) => r.correct).length / rows.length) : '-';
  };
  const body = Object.keys(result.familyCounts).sort().map((f) => {
    const c = result.familyCounts[f];
    return [f, String(c.n), String(c.correct), pct(c.correct / c.n), ...phrasings.map((p) => perPhrasing(f, p))];
  });
  const total = ['overall', String(result.n), String(result.correct), pct(result.overall), ...phrasings.map((p) => perPhrasing(null, p))];
  const table = [header, ...body, total];
  const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), ...body.map(line), line(total)].join('\n');
}

/** Column order of phrasing groups: seen, unseen, human, then any others. */
function order(p: string): number {
  const i = ['seen', 'unseen', 'human'].indexOf(p);
  return i < 0 ? 99 : i;
}
