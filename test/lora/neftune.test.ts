import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../helpers/backends.js';
import { neftuneNoise, neftuneBounds, neftuneMagnitude } from '../../src/nn/neftune.js';
import { CausalLM, parseConfig } from '../../models/index.js';

beforeAll(async () => { await useBackend('cpu'); });

/** The noise added at each position [B][T][d] (e = 0, so the output is the noise). */
async function noise(B: number, T: number, d: number, alpha: number, seed: number, mask?: number[][], mode?: 'paper' | 'transformers'): Promise<number[][][]> {
  const e = tf.zeros([B, T, d]) as tf.Tensor3D;
  const segments = mask ? tf.tensor2d(mask.flat(), [B, T], 'int32') : undefined;
  const out = neftuneNoise(e, alpha, seed, { segments, mode });
  const arr = (await out.array()) as number[][][];
  tf.dispose([e, out, ...(segments ? [segments] : [])]);
  return arr;
}

describe('NEFTune noise', () => {
  it('is Uniform(-m, m), m = alpha / sqrt(L d): bounded, mean ~0, variance ~m^2/3, for several L and d', async () => {
    for (const [T, d, alpha] of [[8, 64, 5], [32, 16, 10], [5, 200, 15]]) {
      const m = alpha / Math.sqrt(T * d);
      expect(neftuneMagnitude(alpha, T, d)).toBeCloseTo(m, 12);
      const x = (await noise(4, T, d, alpha, 1)).flat(2);
      const max = Math.max(...x.map(Math.abs));
      expect(max).toBeLessThanOrEqual(m * (1 + 1e-6));
      expect(max).toBeGreaterThan(0.98 * m);
      const mean = x.reduce((s, v) => s + v, 0) / x.length;
      const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
      expect(Math.abs(mean)).toBeLessThan(4 * m / Math.sqrt(3 * x.length));
      expect(Math.abs(variance / (m * m / 3) - 1)).toBeLessThan(0.1);
    }
  });

  it("'paper' mode: L is each row's true length, no noise on padding; 'transformers' mode: padded L, noise everywhere", async () => {
    const mask = [[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]];
    const d = 32, alpha = 5;
    const paper = await noise(2, 8, d, alpha, 3, mask);
    const hf = await noise(2, 8, d, alpha, 3, mask, 'transformers');
    for (const [b, L] of [[0, 6], [1, 2]]) {
      const m = alpha / Math.sqrt(L * d);
      for (let t = 0; t < 8; t++) {
        const maxP = Math.max(...paper[b][t].map(Math.abs)), maxH = Math.max(...hf[b][t].map(Math.abs));
        if (mask[b][t] === 0) expect(maxP).toBe(0);
        else { expect(maxP).toBeLessThanOrEqual(m * (1 + 1e-6)); expect(maxP).toBeGreaterThan(0.8 * m); }
        expect(maxH).toBeLessThanOrEqual(alpha / Math.sqrt(8 * d) * (1 + 1e-6));
        expect(maxH).toBeGreaterThan(0.8 * alpha / Math.sqrt(8 * d));
      }
    }
  });

  it('with packing, L is each packed example (segment) length', async () => {
    const seg = tf.tensor2d([[1, 1, 1, 2, 2, 3, 3, 3, 3, 0]], [1, 10], 'int32');
    const m = (await neftuneBounds([1, 10, 12], 6, { segments: seg }).array())[0];
    const want = [3, 3, 3, 2, 2, 4, 4, 4, 4].map((L) => 6 / Math.sqrt(L * 12)).concat([0]);
    m.forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    const hf = (await neftuneBounds([1, 10, 12], 6, { segments: seg, mode: 'transformers' }).array())[0];
    hf.forEach((v) => expect(v).toBeCloseTo(6 / Math.sqrt(10 * 12), 6));
    seg.dispose();
  });

  it('is seeded per step, and only active in training (never in eval or generation)', async () => {
    const a = await noise(1, 4, 8, 5, 7), b = await noise(1, 4, 8, 5, 7), c = await noise(1, 4, 8, 5, 8);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const cfg = parseConfig({ model_type: 'llama', vocab_size: 37, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 32, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false });
    const model = CausalLM.create(cfg, { seed: 0 });
    const ids = tf.tensor2d([[1, 2, 3, 4], [5, 6, 0, 0]], [2, 4], 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1], [1, 1, 0, 0]], [2, 4], 'int32');
    const run = async (o: object) => { const l = model.forward(ids, { attentionMask: mask, ...o }); const d = Array.from(await l.data()); l.dispose(); return d; };
    const plain = await run({});
    expect(await run({ neftune: { alpha: 5 }, seed: 1 })).toEqual(plain);
    const noisy = await run({ training: true, neftune: { alpha: 5 }, seed: 1 });
    expect(noisy).not.toEqual(plain);
    expect(await run({ training: true, neftune: { alpha: 5 }, seed: 1 })).toEqual(noisy);
    expect(await run({ training: true, neftune: { alpha: 5, mode: 'transformers' }, seed: 1 })).not.toEqual(noisy);
    model.dispose(); tf.dispose([ids, mask]);
  });
});
