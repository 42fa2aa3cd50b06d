import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { generate, generateChat, endOfTurnMarker } from '../../src/train/generate.js';
import { topKFilter, topPFilter, warpLogits, sampleToken, softmax, argmax } from '../../src/train/sampling.js';
import { Rng } from '../../src/utils/random.js';
import { CausalLM } from '../../models/causal_lm.js';
import { loadBundledTokenizer } from '../../src/data/tokenizer.js';
import { BUILTIN_TEMPLATES } from '../../src/data/template.js';
import { describeEachBackend, useBackend } from '../helpers/backends.js';
import { tinyGPT2Config, tinyLlamaConfig } from './helpers.js';

const log = Math.log;

describe('logits warpers (transformers semantics)', () => {
  it('top-p keeps the smallest most-likely set reaching p, at least one token', () => {
    const probs = [0.05, 0.4, 0.1, 0.25, 0.2];                 // sorted desc: 1 (.4), 3 (.25), 4 (.2), 2 (.1), 0 (.05)
    const logits = probs.map(log);
    const kept = (p: number) => Array.from(topPFilter(logits, p)).map((x, i) => (x === -Infinity ? -1 : i)).filter((i) => i >= 0);
    const table: Array<[number, number[]]> = [
      [0.3, [1]],            // 0.4 >= 0.3
      [0.5, [1, 3]],         // 0.4 < 0.5 <= 0.65
      [0.7, [1, 3, 4]],      // 0.65 < 0.7 <= 0.85
      [0.9, [1, 2, 3, 4]],   // 0.85 < 0.9 <= 0.95
      [0.99, [0, 1, 2, 3, 4]],
      [1e-9, [1]],           // always at least one
    ];
    for (const [p, expected] of table) expect(kept(p), `top_p ${p}`).toEqual(expected);
    // Kept logits are unchanged.
    expect(topPFilter(logits, 0.5)[3]).toBe(logits[3]);
  });

  it('top-k keeps the k largest (ties with the k-th kept) and temperature divides logits', () => {
    expect(Array.from(topKFilter([1, 5, 3, 5, 2], 2))).toEqual([-Infinity, 5, -Infinity, 5, -Infinity]);
    expect(Array.from(topKFilter([1, 5, 3, 4, 2], 3))).toEqual([-Infinity, 5, 3, 4, -Infinity]);
    expect(Array.from(topKFilter([1, 2], 10))).toEqual([1, 2]);
    expect(Array.from(warpLogits([2, 4, -6], { temperature: 2 }))).toEqual([1, 2, -3]);
    // temperature first, then top-k, then top-p (on the tempered distribution)
    const w = warpLogits([0, log(2), log(4), log(8)], { temperature: 1, topK: 3, topP: 0.6 });
    expect(Array.from(w).map((x) => x > -Infinity)).toEqual([false, false, true, true]); // 8/14 < 0.6 <= 12/14
  });

  it('sampling draws tokens in proportion to their probabilities, reproducibly from a seed', () => {
    const logits = [log(0.1), log(0.2), log(0.3), log(0.4)];
    const rng = new Rng(123);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleToken(logits, {}, rng)]++;
    counts.forEach((c, i) => expect(Math.abs(c / n - (i + 1) / 10), `token ${i}`).toBeLessThan(0.015));
    // Filtered tokens are never drawn.
    const rng2 = new Rng(5);
    for (let i = 0; i < 2000; i++) expect(sampleToken(logits, { topK: 2 }, rng2)).toBeGreaterThanOrEqual(2);
    const a = Array.from({ length: 50 }, ((r) => () => sampleToken(logits, {}, r))(new Rng(9)));
    const b = Array.from({ length: 50 }, ((r) => () => sampleToken(logits, {}, r))(new Rng(9)));
    expect(a).toEqual(b);
    expect(softmax([0, -Infinity])[1]).toBe(0);
    expect(argmax([1, 3, 3, 2])).toBe(1);
  });
});

describeEachBackend('generate', (backend) => {
  const configs = backend === 'cpu' ? [['gpt2', tinyGPT2Config()], ['llama', tinyLlamaConfig()]] as const : [['gpt2', tinyGPT2Config()]] as const;
  const steps = backend === 'cpu' ? 12 : 5;
  for (const [family, config] of configs) {
    it(`${family}: greedy equals the argmax of full-forward logits, step by step; cache and no cache agree`, async () => {
      const model = CausalLM.create(config, { seed: 3 });
      const prompt = [5, 9, 2, 17];
      // Reference: re-run the whole sequence and take the argmax of the last row, independently.
      const seq = prompt.slice();
      for (let i = 0; i < steps; i++) {
        const logits = model.forward(tf.tensor2d(seq, [1, seq.length], 'int32'));
        const all = (await logits.data()) as Float32Array;
        const V = logits.shape[2];
        logits.dispose();
        seq.push(argmax(all.subarray((seq.length - 1) * V)));
      }
      const expected = seq.slice(prompt.length);
      const before = tf.memory().numTensors;
      const cached = await generate(model, prompt, { maxNewTokens: steps });
      expect(tf.memory().numTensors).toBe(before);              // the cache is freed
      const uncached = await generate(model, prompt, { maxNewTokens: steps, useCache: false });
      expect(cached.ids).toEqual(expected);
      expect(uncached.ids).toEqual(expected);
      expect(cached.stopReason).toBe('max-new-tokens');
      // Sampling: same seed, same tokens, with and without the cache; top-k = 1 is greedy.
      const s1 = await generate(model, prompt, { maxNewTokens: steps, temperature: 1.3, seed: 7 });
      const s2 = await generate(model, prompt, { maxNewTokens: steps, temperature: 1.3, seed: 7, useCache: false });
      expect(s1.ids).toEqual(s2.ids);
      const k1 = await generate(model, prompt, { maxNewTokens: steps, topK: 1, temperature: 2, seed: 1 });
      expect(k1.ids).toEqual(expected);
      model.dispose();
    });
  }

  it('stops at a stop token (included in ids), at max length, and streams every token to the callback', async () => {
    const model = CausalLM.create(tinyGPT2Config({ n_positions: 12 } as never), { seed: 4 });
    const prompt = [1, 2, 3];
    const sampling = { temperature: 50, seed: 12 };                 // near-uniform draws: varied tokens
    const free = await generate(model, prompt, { maxNewTokens: 6, ...sampling });
    const stopAt = free.ids.findIndex((id, i) => free.ids.indexOf(id) === i && i >= 2); // a token first seen at index >= 2
    expect(stopAt).toBeGreaterThanOrEqual(2);
    const stopId = free.ids[stopAt];
    const streamed: number[] = [];
    const stopped = await generate(model, prompt, { maxNewTokens: 6, ...sampling, stopTokens: [stopId, 999], onToken: (id) => { streamed.push(id); } });
    expect(stopped.ids).toEqual(free.ids.slice(0, stopAt + 1));
    expect(stopped.stopReason).toBe('stop-token');
    expect(streamed).toEqual(stopped.ids);
    // n_positions 12: 3 prompt tokens leave room for 9.
    const long = await generate(model, prompt, { maxNewTokens: 50 });
    expect(long.ids.length).toBe(9);
    expect(long.stopReason).toBe('max-length');
    // The callback can stop generation.
    const cb = await generate(model, prompt, { maxNewTokens: 6, onToken: () => false });
    expect(cb.ids.length).toBe(1);
    expect(cb.stopReason).toBe('callback');
    model.dispose();
  });
});

describe('generate with a tokenizer, and generateChat', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });
  it('streams text pieces that concatenate to the decoded text; generateChat stops at <|im_end|>', async () => {
    const tokenizer = await loadBundledTokenizer();
    const model = CausalLM.create(tinyGPT2Config({ vocab_size: tokenizer.vocabSize, n_positions: 64 } as never), { seed: 2 });
    const prompt = tokenizer.encode('Hello there').ids;
    const pieces: string[] = [];
    const ids: number[] = [];
    const out = await generate(model, prompt, { maxNewTokens: 10, temperature: 1, seed: 3, tokenizer, onToken: (id, text) => { ids.push(id); pieces.push(text); } });
    expect(ids).toEqual(out.ids);
    expect(pieces.join('')).toBe(out.text);
    expect(out.text).toBe(tokenizer.decode(out.ids));

    expect(endOfTurnMarker(BUILTIN_TEMPLATES.chatml)).toBe('<|im_end|>');
    expect(endOfTurnMarker(BUILTIN_TEMPLATES.llama3)).toBe('<|eot_id|>');
    const imEnd = tokenizer.tokenToId('<|im_end|>')!;
    // Make <|im_end|> the model's choice: with ln_f.bias = 5 everywhere (LayerNorm output sums to
    // zero before the bias), a wte row of 5s scores about 5 * 5 * C against ~0 for the others.
    const wte = model.params.get('transformer.wte.weight')!;
    const lnfBias = model.params.get('transformer.ln_f.bias')!;
    tf.tidy(() => {
      const [rows, C] = wte.shape;
      const isImEnd = tf.oneHot(tf.tensor1d([imEnd], 'int32'), rows).reshape([rows, 1]).toFloat();
      wte.assign(wte.mul(tf.scalar(1).sub(isImEnd)).add(isImEnd.mul(tf.fill([1, C], 5))));
      lnfBias.assign(tf.fill([C], 5));
    });
    const reply = await generateChat(model, tokenizer, BUILTIN_TEMPLATES.chatml, [{ role: 'user', content: 'Hi' }], { maxNewTokens: 5 });
    expect(reply.prompt).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(reply.stopReason).toBe('stop-token');
    expect(reply.ids.at(-1)).toBe(imEnd);
    expect(reply.text).not.toContain('<|im_end|>');
    model.dispose();
  });
});
