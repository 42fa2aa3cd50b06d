import { describe, expect, it } from 'vitest';
import { padBatch, packExamples, packBatch, shuffled, iterateBatches } from '../../src/data/batch.js';
import { mixExamples, curriculumOrder } from '../../src/data/mixture.js';
import type { TokenizedExample } from '../../src/data/labels.js';

const X = -100;
const ex = (ids: number[], labels: number[], id: string, extra: Record<string, unknown> = {}): TokenizedExample => ({ inputIds: ids, labels, meta: { id, ...extra } });

describe('padBatch', () => {
  it('pads to the longest row with attention mask 0 and labels -100 (hand-written)', () => {
    const b = padBatch([ex([5, 6, 7], [X, 6, 7], 'a'), ex([8], [8], 'b')], { padTokenId: 0 });
    expect([b.batchSize, b.seqLen]).toEqual([2, 3]);
    expect([...b.inputIds]).toEqual([5, 6, 7, 8, 0, 0]);
    expect([...b.labels]).toEqual([X, 6, 7, 8, X, X]);
    expect([...b.attentionMask]).toEqual([1, 1, 1, 1, 0, 0]);
    expect([...b.positionIds]).toEqual([0, 1, 2, 0, 0, 0]);
    expect(b.meta).toEqual([[{ id: 'a' }], [{ id: 'b' }]]);
  });
  it('pads to a fixed length, and refuses a row longer than it', () => {
    const b = padBatch([ex([1, 2], [1, 2], 'a')], { padTokenId: 9, seqLen: 4 });
    expect([...b.inputIds]).toEqual([1, 2, 9, 9]);
    expect(() => padBatch([ex([1, 2, 3], [1, 2, 3], 'a')], { padTokenId: 0, seqLen: 2 })).toThrow(/more than the sequence length 2/);
  });
});

describe('packing', () => {
  const e = [ex([1, 2, 3], [X, 2, 3], 'a'), ex([4, 5], [4, 5], 'b'), ex([6, 7, 8, 9], [6, X, 8, 9], 'c'), ex([10], [10], 'd')];

  it('first_fit and greedy place examples whole (hand-worked)', () => {
    // seqLen 5: greedy -> [a b] [c d]; first_fit -> [a b] [c d] as well; with seqLen 6 greedy [a b] [c d], first_fit [a b d] [c]
    expect(packExamples(e, 5, 'greedy').map((r) => r.map((x) => x.meta.id))).toEqual([['a', 'b'], ['c', 'd']]);
    expect(packExamples(e, 6, 'greedy').map((r) => r.map((x) => x.meta.id))).toEqual([['a', 'b'], ['c', 'd']]);
    expect(packExamples(e, 6, 'first_fit').map((r) => r.map((x) => x.meta.id))).toEqual([['a', 'b', 'd'], ['c']]);
    expect(packExamples([e[2], e[0], e[1]], 6, 'greedy').map((r) => r.map((x) => x.meta.id))).toEqual([['c'], ['a', 'b']]);
    expect(() => packExamples(e, 3, 'greedy')).toThrow(/truncate it first/);
  });

  it('segment ids 1..k, positions restart, first token of every later example labelled -100, padding 0', () => {
    const b = packBatch(packExamples(e, 6, 'first_fit'), { padTokenId: 0, seqLen: 6 });
    expect([...b.inputIds]).toEqual([1, 2, 3, 4, 5, 10, 6, 7, 8, 9, 0, 0]);
    expect([...b.attentionMask]).toEqual([1, 1, 1, 2, 2, 3, 1, 1, 1, 1, 0, 0]);
    expect([...b.positionIds]).toEqual([0, 1, 2, 0, 1, 0, 0, 1, 2, 3, 0, 0]);
    expect([...b.labels]).toEqual([X, 2, 3, X, 5, X, 6, X, 8, 9, X, X]);
    expect(b.meta).toEqual([[{ id: 'a' }, { id: 'b' }, { id: 'd' }], [{ id: 'c' }]]);
  });

  it('every example appears exactly once across packed batches, never split', () => {
    const many = Array.from({ length: 37 }, (_, i) => ex(Array.from({ length: 1 + (i * 7) % 9 }, (_, j) => i * 100 + j), Array(1 + (i * 7) % 9).fill(1), `e${i}`));
    const seen: string[] = [];
    for (const b of iterateBatches(many, { batchSize: 4, padTokenId: 0, seqLen: 12, packing: 'first_fit', seed: 3 })) {
      for (let r = 0; r < b.batchSize; r++) {
        const row = b.inputIds.slice(r * b.seqLen, (r + 1) * b.seqLen);
        const seg = b.attentionMask.slice(r * b.seqLen, (r + 1) * b.seqLen);
        b.meta[r].forEach((m, k) => {
          const orig = many.find((x) => x.meta.id === m.id)!;
          const got = [...row].filter((_, t) => seg[t] === k + 1);
          expect(got).toEqual(orig.inputIds);
          seen.push(String(m.id));
        });
      }
    }
    expect(seen.sort()).toEqual(many.map((x) => String(x.meta.id)).sort());
  });
});

describe('shuffling and epochs', () => {
  const items = Array.from({ length: 20 }, (_, i) => i);
  it('is deterministic per (seed, epoch) and a permutation', () => {
    expect(shuffled(items, 7, 0)).toEqual(shuffled(items, 7, 0));
    expect(shuffled(items, 7, 0)).not.toEqual(shuffled(items, 7, 1));
    expect(shuffled(items, 7, 0)).not.toEqual(shuffled(items, 8, 0));
    expect([...shuffled(items, 7, 0)].sort((a, b) => a - b)).toEqual(items);
  });
  it('iterates epochs with steps counted across them; dropLast drops a short batch', () => {
    const exs = items.slice(0, 10).map((i) => ex([i + 1], [i + 1], `r${i}`));
    const run = () => [...iterateBatches(exs, { batchSize: 4, padTokenId: 0, epochs: 2, seed: 1 })].map((b) => [b.epoch, b.step, [...b.inputIds]]);
    const a = run();
    expect(a.map(([e, s]) => [e, s])).toEqual([[0, 0], [0, 1], [0, 2], [1, 3], [1, 4], [1, 5]]);
    expect(a).toEqual(run());
    const d = [...iterateBatches(exs, { batchSize: 4, padTokenId: 0, dropLast: true, shuffle: false })];
    expect(d.map((b) => [...b.inputIds])).toEqual([[1, 2, 3, 4], [5, 6, 7, 8]]);
  });
});

describe('mixtures and curriculum', () => {
  it('draws sources in proportion to their weights (3:1 over 4000 draws) and repeats a small source', () => {
    const a = Array.from({ length: 50 }, (_, i) => ex([i], [i], `a${i}`));
    const b = Array.from({ length: 5 }, (_, i) => ex([i], [i], `b${i}`));
    const mixed = mixExamples([{ name: 'A', examples: a, weight: 3 }, { name: 'B', examples: b, weight: 1 }], { seed: 11, total: 4000 });
    const fracB = mixed.filter((m) => m.meta.mixtureSource === 'B').length / mixed.length;
    // binomial sd = sqrt(.25*.75/4000) = 0.0068; 4 sd
    expect(Math.abs(fracB - 0.25)).toBeLessThan(0.028);
    const counts = new Map<string, number>();
    for (const m of mixed) if (m.meta.mixtureSource === 'B') counts.set(String(m.meta.id), (counts.get(String(m.meta.id)) ?? 0) + 1);
    expect(counts.size).toBe(5);
    expect(mixExamples([{ name: 'A', examples: a, weight: 3 }, { name: 'B', examples: b, weight: 1 }], { seed: 11, total: 50 }))
      .toEqual(mixed.slice(0, 50));
    expect(() => mixExamples([{ name: 'A', examples: a, weight: -1 }], { seed: 1 })).toThrow(/weight/);
  });
  it('orders by length or difficulty, stable', () => {
    const e = [ex([1, 2, 3], [1, 2, 3], 'x', { difficulty: 2 }), ex([1], [1], 'y', { difficulty: 3 }), ex([1, 2], [1, 2], 'z', { difficulty: 1 }), ex([7], [7], 'w', { difficulty: 1 })];
    expect(curriculumOrder(e, 'length').map((x) => x.meta.id)).toEqual(['y', 'w', 'z', 'x']);
    expect(curriculumOrder(e, 'difficulty').map((x) => x.meta.id)).toEqual(['z', 'w', 'x', 'y']);
    expect(() => curriculumOrder([ex([1], [1], 'q')], 'difficulty')).toThrow(/q has no numeric 'difficulty'/);
  });
});
