import { describe, expect, it } from 'vitest';
import { prepareDataset } from '../../src/data/pipeline.js';
import { formatSummary } from '../../src/data/summary.js';
import { exactDedup } from '../../src/data/filters.js';
import { loadBundledTokenizer } from '../../src/data/tokenizer.js';
import { BUILTIN_TEMPLATES } from '../../src/data/template.js';
import { countTrainedLabels } from '../../src/data/labels.js';

const tok = await loadBundledTokenizer();
const chatml = BUILTIN_TEMPLATES.chatml;
const m = (u: string, a: string) => [{ role: 'user', content: u }, { role: 'assistant', content: a }];
async function* lines(rows: unknown[]): AsyncGenerator<string> {
  for (const r of rows) yield (typeof r === 'string' ? r : JSON.stringify(r)) + '\n';
}

const rowsA = [
  { messages: m('What is 2 + 3?', '5'), id: 'a1', family: 'math' },
  { messages: m('What is 2 + 3?', '5'), id: 'a2', family: 'math' }, // exact duplicate of a1
  { messages: [...m('Hi', 'Hello'), ...m('Bye', 'Goodbye')], id: 'a3', family: 'chat' }, // 2 assistant turns
  '{"messages": [{"role": "bot", "content": "?"}]}', // bad row (line 4)
  { messages: m('Say <|im_end|> please', 'No'), id: 'a5', family: 'chat' }, // forgery, flagged
  { messages: m('word '.repeat(80), 'ok'), id: 'a6', family: 'chat' }, // too long for maxLength 40 -> dropped
  { messages: [{ role: 'user', content: 'nobody answers' }], id: 'a7', family: 'chat' }, // nothing trained
];
const rowsB = [{ text: 'The sky is blue.', id: 'b1', family: 'pretrain' }, { text: 'Grass is green.', id: 'b2', family: 'pretrain' }];

describe('prepareDataset', () => {
  it('counts every row, drop, truncation, filter and forgery in the summary', async () => {
    const data = await prepareDataset({
      sources: [{ file: lines(rowsA), name: 'A' }, { file: lines(rowsB), name: 'B' }],
      template: chatml, tokenizer: tok, mask: 'unroll', maxLength: 40, truncation: 'drop', onRowError: 'skip', filters: [exactDedup()],
    });
    const s = data.summary;
    expect(s.rowErrors.map((e) => e.line)).toEqual([4]);
    expect(s.filters!.removed.map((r) => r.id)).toEqual(['a2']);
    // rows labelled: a1 a3 a5 a6 a7 b1 b2 = 7; examples: a1, a3 x2 (unroll), a5, b1, b2 = 6
    expect(s.rows).toBe(7);
    expect(s.examples).toBe(6);
    expect(data.examples.map((e) => [e.meta.id, e.meta.turn])).toEqual([['a1', 0], ['a3', 0], ['a3', 1], ['a5', 0], ['b1', undefined], ['b2', undefined]]);
    expect(s.dropped.byReason).toEqual({ too_long: 1, no_trained_tokens: 1 });
    expect(s.dropped.rows.map((d) => [d.reason, d.id, d.source])).toEqual([['too_long', 'a6', 'A'], ['no_trained_tokens', 'a7', 'A']]);
    expect(s.forgery.rows).toBe(1);
    expect(s.forgery.rowsFlagged[0]).toMatchObject({ id: 'a5', tokens: ['<|im_end|>'] });
    expect(s.tokens).toBe(data.examples.reduce((n, e) => n + e.inputIds.length, 0));
    expect(s.trainedTokens).toBe(data.examples.reduce((n, e) => n + countTrainedLabels(e.labels), 0));
    expect(s.trainedFraction).toBeCloseTo(s.trainedTokens / s.tokens, 12);
    expect(s.bySource.A).toMatchObject({ rows: 5, examples: 4 });
    expect(s.bySource.B).toMatchObject({ rows: 2, examples: 2 });
    expect(s.byFamily.chat).toMatchObject({ rows: 4, examples: 3 });
    expect(s.truncated).toBe(0);
    const text = formatSummary(s);
    expect(text).toContain('too_long 1');
    expect(text).toContain('possible forgery');
  });

  it('keep_end truncation is counted; batches keep provenance meta; packing fills rows', async () => {
    const data = await prepareDataset({
      sources: [{ examples: [{ format: 'messages', messages: m('word '.repeat(80), 'ok') as never, meta: { id: 'long' } }, { format: 'text', text: 'Short.', meta: { id: 's' } }] }],
      template: chatml, tokenizer: tok, maxLength: 24, truncation: 'keep_end', packing: 'first_fit', seqLen: 32,
    });
    expect(data.summary.truncated).toBe(1);
    expect(data.examples[0].inputIds).toHaveLength(24);
    expect(data.summary.packing).toMatchObject({ strategy: 'first_fit', seqLen: 32 });
    const batches = [...data.batches({ batchSize: 2, seed: 0 })];
    const metas = batches.flatMap((b) => b.meta.flat().map((x) => x.id)).sort();
    expect(metas).toEqual(['long', 's']);
    expect(batches[0].seqLen).toBe(32);
  });

  it('mixes sources by weight, with the draw in the summary', async () => {
    const a = Array.from({ length: 10 }, (_, i) => ({ format: 'text' as const, text: `a ${i}`, meta: { id: `a${i}` } }));
    const b = Array.from({ length: 10 }, (_, i) => ({ format: 'text' as const, text: `b ${i}`, meta: { id: `b${i}` } }));
    const data = await prepareDataset({ sources: [{ examples: a, name: 'a', weight: 9 }, { examples: b, name: 'b', weight: 1 }], tokenizer: tok, seed: 5, mixtureTotal: 1000 });
    expect(data.examples).toHaveLength(1000);
    expect(data.summary.mixture!.drawn.a + data.summary.mixture!.drawn.b).toBe(1000);
    expect(Math.abs(data.summary.mixture!.drawn.b / 1000 - 0.1)).toBeLessThan(0.04);
  });

  it('stops at a bad row by default, naming file and line', async () => {
    await expect(prepareDataset({ sources: [{ file: lines(rowsA), name: 'A.jsonl' }], template: chatml, tokenizer: tok })).rejects.toThrow(/A\.jsonl:4/);
  });
});
