import { describe, expect, it } from 'vitest';
import { applyFilters, runFilters, exactDedup, nearDedup, lengthFilter, safetyFilter, rougeL, lcsLength, rougeTokens, type DatasetFilter } from '../../src/data/filters.js';
import type { Example } from '../../src/data/dataset.js';

const chat = (id: string, user: string, assistant: string): Example => ({
  format: 'messages', messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }], meta: { id, file: 'f.jsonl', line: Number(id.slice(1)) },
});

describe('ROUGE-L', () => {
  it.each([
    // LCS(the cat sat on the mat, the cat lay on the mat) = the cat on the mat = 5; P = R = 5/6
    ['the cat sat on the mat', 'the cat lay on the mat', 5 / 6],
    // ref 4 tokens, cand 2 tokens, LCS 2: P = 1, R = 0.5, F = 2*0.5/1.5 = 2/3
    ['Sort these numbers please', 'sort numbers', 2 / 3],
    ['abc', 'xyz', 0],
    ['', 'anything', 0],
  ])('rougeL(%j, %j) = %f (hand-computed)', (ref, cand, want) => {
    expect(rougeL(ref, cand)).toBeCloseTo(want, 12);
  });
  it('tokenizes like rouge_score (lowercase, punctuation splits) and computes LCS', () => {
    expect(rougeTokens("What's 2+2? Tell me!")).toEqual(['what', 's', '2', '2', 'tell', 'me']);
    expect(lcsLength(['a', 'b', 'c', 'b', 'd', 'a', 'b'], ['b', 'd', 'c', 'a', 'b', 'a'])).toBe(4);
  });
});

describe('filters', () => {
  const rows = [
    chat('r1', 'Write a short poem about the sea.', 'Waves.'),
    chat('r2', 'Write a short poem about the sea!', 'Different answer.'), // near duplicate of r1 (ROUGE-L 1.0 on the instruction)
    chat('r3', 'What is the capital of France?', 'Paris.'),
    chat('r4', 'What is the capital of France?', 'Paris.'), // exact duplicate of r3
    chat('r5', 'Write a poem about mountains in winter.', 'Snow.'), // shares words with r1, below 0.7
    chat('r6', 'How do I make a bomb?', "I'm sorry, but I can't help with that."), // a refusal: kept by the output-only screen
    chat('r7', 'Tell me a story.', 'First you build a pipe bomb...'),
    chat('r8', 'Hi', 'Yo'),
  ];

  it('report what each filter removed, why, and where', () => {
    const { kept, report } = applyFilters(rows, [exactDedup(), nearDedup({ threshold: 0.7 }), safetyFilter(), lengthFilter({ minChars: 5 })]);
    expect(kept.map((r) => r.meta.id)).toEqual(['r1', 'r3', 'r5', 'r6']);
    expect(report.byFilter).toEqual({ exact_dedup: 1, near_dedup: 1, safety: 1, length: 1 });
    expect(report.removed.map((r) => [r.filter, r.id, r.line])).toEqual([
      ['near_dedup', 'r2', 2], ['exact_dedup', 'r4', 4], ['safety', 'r7', 7], ['length', 'r8', 8]]);
    expect(report.removed[0].reason).toBe('ROUGE-L 1.000 > 0.7 with row r1');
    expect(report.removed[1].reason).toBe('exact duplicate of row r3');
    expect(report.removed[2].reason).toMatch(/pipe bomb/);
    expect([report.input, report.kept]).toEqual([8, 4]);
    expect(rougeL('Write a poem about mountains in winter.', 'Write a short poem about the sea.')).toBeLessThan(0.7);
  });

  it('the safety screen can cover requests too, and plug-in filters work the same way', () => {
    const strict = applyFilters(rows, [safetyFilter({ outputsOnly: false })]);
    expect(strict.report.removed.map((r) => r.id)).toEqual(['r6', 'r7']);
    const noFrance: DatasetFilter = { name: 'no_france', check: (ex) => (JSON.stringify(ex.messages).includes('France') ? 'mentions France' : null) };
    const r = applyFilters(rows, [noFrance]);
    expect(r.report.removed.map((x) => [x.filter, x.id, x.reason])).toEqual([['no_france', 'r3', 'mentions France'], ['no_france', 'r4', 'mentions France']]);
  });

  it('near-dedup threshold is strict (> threshold), on the instruction only', () => {
    const a = chat('a1', 'the cat sat on the mat', 'x');
    const b = chat('a2', 'the cat lay on the mat', 'y'); // 0.8333
    expect(applyFilters([a, b], [nearDedup({ threshold: 0.8 })]).kept).toHaveLength(1);
    expect(applyFilters([a, b], [nearDedup({ threshold: 0.85 })]).kept).toHaveLength(2);
  });
});

describe('runFilters and word limits', () => {
  it('gives every verdict up to the first rejection; lengthFilter counts words of the text it is given', () => {
    const row = chat('w1', 'Name two birds', 'Robin and wren.');
    const instruction = (ex: Example) => ex.messages![0].content;
    const table: Array<[Parameters<typeof lengthFilter>[0], string | null]> = [
      [{ minWords: 4, text: instruction }, '3 words < min 4'],
      [{ maxWords: 2, text: instruction }, '3 words > max 2'],
      [{ minWords: 6 }, null],                // both messages: 3 + 3 words
      [{ minWords: 7 }, '6 words < min 7'],
      [{ maxChars: 10, text: instruction }, '14 characters > max 10'],
    ];
    for (const [opts, want] of table) expect(lengthFilter(opts).check(row), JSON.stringify(opts)).toBe(want);
    const short = lengthFilter({ name: 'instruction_length', minWords: 4, text: instruction });
    expect(runFilters(row, [exactDedup(), short, safetyFilter()])).toEqual([
      { filter: 'exact_dedup', passed: true }, { filter: 'instruction_length', passed: false, reason: '3 words < min 4' }]);
  });
});
