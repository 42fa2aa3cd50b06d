/**
 * The data tools the CLI flags and the dataset panel share: filters from options, the per-filter
 * report, the seeded validation split and the overlap check against a test split, on hand-made rows.
 */
import { describe, it, expect } from 'vitest';
import { filtersFrom, filterReportLines, applyFilters, splitValidation, overlapWith, type Example } from '../../src/index.js';

const chat = (user: string, assistant: string, line: number): Example =>
  ({ format: 'messages', messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }], meta: { file: 'd.jsonl', line } });

describe('filtersFrom and filterReportLines', () => {
  it('builds the filters asked for, cheap exact checks first', () => {
    expect(filtersFrom({}).map((f) => f.name)).toEqual([]);
    expect(filtersFrom({ safety: true, nearDedup: 0.7, exactDedup: true, length: { maxWords: 5 } }).map((f) => f.name))
      .toEqual(['exact_dedup', 'near_dedup', 'length', 'safety']);
    expect(filtersFrom({ nearDedup: false, length: {} }).map((f) => f.name)).toEqual([]);
  });

  it('one line per filter with its count and up to three examples', () => {
    const rows = [chat('a b c', 'x', 1), chat('a b c', 'x', 2), chat('a b c', 'x', 3), chat('a b c', 'x', 4), chat('a b c', 'x', 5), chat('d', 'e', 6)];
    const { report } = applyFilters(rows, filtersFrom({ exactDedup: true, safety: true }));
    expect(filterReportLines(report)).toEqual([
      'exact_dedup: removed 4 rows, e.g. d.jsonl:2 exact duplicate of d.jsonl:1; d.jsonl:3 exact duplicate of d.jsonl:1; d.jsonl:4 exact duplicate of d.jsonl:1',
      'safety: removed 0 rows',
    ]);
  });
});

describe('splitValidation', () => {
  const rows = Array.from({ length: 10 }, (_, i) => i);
  it('holds out round(n * percent / 100) rows, reproducibly per seed, both parts in input order', () => {
    const a = splitValidation(rows, 20, 1);
    expect(a.valid).toHaveLength(2);
    expect([...a.train, ...a.valid].sort((x, y) => x - y)).toEqual(rows);
    expect(a.train).toEqual([...a.train].sort((x, y) => x - y));
    expect(splitValidation(rows, 20, 1)).toEqual(a);
    expect(splitValidation(rows, 25, 1).valid).toHaveLength(3);   // 2.5 rounds to 3
    expect(splitValidation(rows.slice(0, 4), 10, 1).valid).toEqual([]); // 0.4 rounds to 0
    expect(splitValidation(rows, 0, 1)).toEqual({ train: rows, valid: [] });
    // Another seed holds out other rows (for these 10 rows and seeds 1..5, not all the same pair).
    expect(new Set([1, 2, 3, 4, 5].map((s) => JSON.stringify(splitValidation(rows, 20, s).valid))).size).toBeGreaterThan(1);
    expect(() => splitValidation(rows, 100, 1)).toThrow(/percentage/);
  });
});

describe('overlapWith', () => {
  it('finds rows repeating a test instruction, exactly or above the ROUGE-L threshold', () => {
    const test = [chat('What is 14 minus 8?', '6', 1), chat('Reverse the word apple.', 'elppa', 2)];
    const rows = [
      chat('what is 14 MINUS 8', '6', 1),               // same tokens after lowercasing and dropping punctuation: 1
      chat('Reverse the word grape.', 'eparg', 2),      // LCS 3 of 4 and 4: F = 0.75 > 0.7
      chat('Reverse this word: plum.', 'mulp', 3),      // [reverse, this, word, plum] vs [reverse, the, word, apple]: LCS 2, F = 0.5
      chat('Name a colour.', 'red', 4),
    ];
    const hits = overlapWith(rows, test);
    expect(hits.map((o) => [o.row.meta.line, o.test.meta.line])).toEqual([[1, 1], [2, 2]]);
    expect(hits[0].score).toBe(1);
    expect(hits[1].score).toBeCloseTo(0.75, 12);
    expect(overlapWith(rows, test, 0.8).map((o) => o.row.meta.line)).toEqual([1]);
  });
});
