/**
 * Batched greedy decoding (generateGreedyBatch, generateChatBatch) against one-prompt-at-a-time
 * greedy generate(), which generate.test.ts checks against full-forward argmaxes; and
 * evaluate() with a batch answerer (chatAnswerer) against the one-row-at-a-time path.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import { generate, generateGreedyBatch, type GenerateResult } from '../../src/train/generate.js';
import { CausalLM } from '../../models/causal_lm.js';
import { loadModel } from '../../src/io/checkpoint.js';
import { loadBundledTokenizer } from '../../src/data/tokenizer.js';
import { evaluate, type EvalRowInput, type RowResult } from '../../src/eval/evaluate.js';
import { chatAnswerer } from '../../src/eval/answerer.js';
import { resolveTemplate, resolveTokenizer } from '../../src/cli/eval.js';
import { useBackend } from '../helpers/backends.js';
import { tinyGPT2Config, tinyLlamaConfig } from './helpers.js';

// Lengths 1 to 7, several prompts per length (the 3-token group is larger than the batch).
const PROMPTS = [[5, 9, 2], [1, 2, 3, 4, 5], [7], [30, 1, 4], [8, 8, 8, 8, 8, 8, 8], [11, 3, 6], [2, 25, 14, 9, 1], [19], [3, 3, 17]];

/** Unbatched greedy, one prompt at a time: the reference. */
async function oneByOne(model: CausalLM, maxNewTokens: number, stopTokens: number[]): Promise<GenerateResult[]> {
  const out: GenerateResult[] = [];
  for (const p of PROMPTS) out.push(await generate(model, p, { maxNewTokens, stopTokens }));
  return out;
}

/**
 * Re-draws the weight matrices with std 0.5 (seeded): a tiny model at its 0.02 init mostly
 * repeats its last token, which would leave no replies that stop at different steps.
 */
function lively(model: CausalLM): CausalLM {
  tf.tidy(() => [...model.params.values()].forEach((v, i) => { if (v.rank === 2) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 100 + i)); }));
  return model;
}

/** Two stop tokens under which the free replies end at two or more different steps and one reply not at all. */
function stopsAtDifferentSteps(free: GenerateResult[]): number[] {
  const tokens = [...new Set(free.flatMap((r) => r.ids))];
  for (const a of tokens) {
    for (const b of tokens) {
      const ends = free.map((r) => r.ids.findIndex((id) => id === a || id === b));
      if (new Set(ends.filter((e) => e >= 0)).size >= 2 && ends.includes(-1)) return [a, b];
    }
  }
  throw new Error(`no stop tokens end these replies at different steps: ${JSON.stringify(free.map((r) => r.ids))}`);
}

describe('generateGreedyBatch [cpu]', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  for (const [family, config] of [['gpt2', tinyGPT2Config()], ['llama', tinyLlamaConfig()]] as const) {
    it(`${family}: the same ids and stop reasons as greedy generate() prompt by prompt, rows stopping at different steps`, async () => {
      const model = lively(CausalLM.create(config, { seed: 5 }));
      const maxNew = 10;
      const stops = stopsAtDifferentSteps(await oneByOne(model, maxNew, []));
      const expected = await oneByOne(model, maxNew, stops);
      // The reference really has rows ending at different steps, and rows running to the limit.
      const stopSteps = new Set(expected.filter((r) => r.stopReason === 'stop-token').map((r) => r.ids.length));
      expect(stopSteps.size, JSON.stringify(expected)).toBeGreaterThanOrEqual(2);
      expect(expected.some((r) => r.stopReason === 'max-new-tokens'), JSON.stringify(expected)).toBe(true);

      const before = tf.memory().numTensors;
      for (const batchSize of [2, 4, 16]) {
        const finished: number[] = [];
        const rowsFed: number[] = [];   // B of every forward
        const spy = { config: model.config, family: model.family, forward: (x: tf.Tensor2D, o: object) => { rowsFed.push(x.shape[0]); return model.forward(x, o); } };
        const got = await generateGreedyBatch(spy, PROMPTS, { maxNewTokens: maxNew, stopTokens: stops, batchSize, onResult: (i) => finished.push(i) });
        expect(got.map((r) => r.ids), `batch ${batchSize}`).toEqual(expected.map((r) => r.ids));
        expect(got.map((r) => r.stopReason), `batch ${batchSize}`).toEqual(expected.map((r) => r.stopReason));
        expect([...finished].sort((a, b) => a - b)).toEqual(PROMPTS.map((_, i) => i));   // each once
        expect(tf.memory().numTensors, `batch ${batchSize}: tensors left behind`).toBe(before);
        // A finished row leaves the batch: each row is fed once per token it chose, no more.
        expect(rowsFed.reduce((a, b) => a + b, 0)).toBe(expected.reduce((a, r) => a + r.ids.length, 0));
      }
      model.dispose();
    });
  }

  it('groups rows of one prompt length, as many as batchSize and the logits budget allow', async () => {
    const model = lively(CausalLM.create(tinyGPT2Config(), { seed: 7 }));
    const shapes: number[][] = [];
    const spy = { config: model.config, family: model.family, forward: (ids: tf.Tensor2D, o: object) => { shapes.push(ids.shape); return model.forward(ids, o); } };
    const expected = await oneByOne(model, 2, []);
    // Budget for the logits of three 3-token rows (3 x 3 x 32 floats).
    const got = await generateGreedyBatch(spy, PROMPTS, { maxNewTokens: 2, batchSize: 16, logitsBudgetBytes: 3 * 3 * 32 * 4 });
    expect(got.map((r) => r.ids)).toEqual(expected.map((r) => r.ids));
    // Lengths 3 (four prompts: 3 rows fit the budget, then 1), 5 (one row fits), 1 (two), 7 (one row fits);
    // each group: its prompt forward [B, L], then one decoding step [B, 1].
    expect(shapes).toEqual([[3, 3], [3, 1], [1, 3], [1, 1], [1, 5], [1, 1], [1, 5], [1, 1], [2, 1], [2, 1], [1, 7], [1, 1]]);
    model.dispose();
  });

  it('stops at the model\'s positions (max-length) as generate() does, and rejects bad input', async () => {
    const model = CausalLM.create(tinyGPT2Config({ n_positions: 8 } as never), { seed: 6 });
    const prompts = [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [9, 9]];
    const expected = await Promise.all(prompts.map((p) => generate(model, p, { maxNewTokens: 20 })));
    expect(expected.map((r) => [r.ids.length, r.stopReason])).toEqual([[2, 'max-length'], [2, 'max-length'], [6, 'max-length']]);
    const before = tf.memory().numTensors;
    const got = await generateGreedyBatch(model, prompts, { maxNewTokens: 20 });
    expect(got).toEqual(expected.map((r) => ({ ...r, text: '' })));
    expect(tf.memory().numTensors).toBe(before);
    await expect(generateGreedyBatch(model, [[1], []])).rejects.toThrow(/prompt 1 is empty/);
    await expect(generateGreedyBatch(model, [[1]], { batchSize: 0 })).rejects.toThrow(/batchSize must be a positive integer/);
    const ctl = new AbortController();
    ctl.abort();
    await expect(generateGreedyBatch(model, [[1]], { signal: ctl.signal })).rejects.toThrow(/aborted/);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

/** The first `n` rows of the bundled test split, as evaluate() reads them. */
function testRows(n: number): EvalRowInput[] {
  return fs.readFileSync('demo/data/test.jsonl', 'utf8').trim().split('\n').slice(0, n).map((l) => JSON.parse(l) as EvalRowInput);
}

/** evaluate() of models/base, one row at a time and batched; both results. */
async function baseBothWays(rowCount: number, batchSize: number, maxNewTokens: number): Promise<Array<{ overall: number; perRow: RowResult[] }>> {
  const { tok } = await resolveTokenizer(undefined, 'models/base');
  const template = await resolveTemplate(undefined, tok);
  const model = await loadModel('models/base');
  try {
    const rows = testRows(rowCount);
    const one = await evaluate(rows, chatAnswerer(model, tok, template, { maxNewTokens, batchSize: 1 }));
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const many = await evaluate(rows, chatAnswerer(model, tok, template, { maxNewTokens, batchSize }), { onRow: (_r, done) => progress.push(done) });
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual(rows.map((_, i) => i + 1));
    return [one, many];
  } finally {
    model.dispose();
  }
}

describe('evaluate with a batch answerer [cpu]', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('models/base: the same answers, scores and row order as one row at a time', async () => {
    const [one, many] = await baseBothWays(24, 8, 16);
    expect(many.perRow).toEqual(one.perRow);
    expect(many.perRow.map((r) => r.index)).toEqual(one.perRow.map((_, i) => i));
    // The answers are real text and differ between rows (so equal lists mean something).
    expect(new Set(one.perRow.map((r) => r.output)).size).toBeGreaterThan(3);
  }, 120_000);

  it('takes answers from the batch function in any order and refuses a wrong count', async () => {
    const rows = testRows(5);
    const seen: string[][] = [];
    const batch = async (prompts: Array<{ messages: Array<{ content: string }> }>, onAnswer: (i: number, a: string) => void) => {
      seen.push(prompts.map((p) => p.messages.at(-1)!.content));
      onAnswer(3, 'three');
      onAnswer(1, 'one');
      return prompts.map((_, i) => ['zero', 'one', 'two', 'three', 'four'][i]);
    };
    const r = await evaluate(rows, { batch });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toEqual(rows.map((row) => row.messages!.filter((m) => m.role === 'user').at(-1)!.content));
    expect(r.perRow.map((x) => [x.index, x.output])).toEqual([[0, 'zero'], [1, 'one'], [2, 'two'], [3, 'three'], [4, 'four']]);
    await expect(evaluate(rows, { batch: async () => ['x'] })).rejects.toThrow(/returned 1 answers for 5 prompts/);
    // An abort stops it at the next answer.
    const ctl = new AbortController();
    const scored: number[] = [];
    const stopping = evaluate(rows, { batch: async (_p, onAnswer) => { onAnswer(0, 'a'); ctl.abort(); onAnswer(1, 'b'); return ['a', 'b', 'c', 'd', 'e']; } }, { signal: ctl.signal, onRow: (r) => scored.push(r.index) });
    await expect(stopping).rejects.toThrow(/evaluate: aborted/);
    expect(scored).toEqual([0]);
  });
});

describe('evaluate with a batch answerer [webgpu]', () => {
  beforeAll(async () => {
    await useBackend('webgpu');
  });

  it('models/base: the same answers as one row at a time on a handful of rows', async () => {
    const [one, many] = await baseBothWays(8, 8, 12);
    expect(many.perRow.map((r) => r.output)).toEqual(one.perRow.map((r) => r.output));
  }, 300_000);
});
