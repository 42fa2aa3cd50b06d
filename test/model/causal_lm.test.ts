/**
 * CausalLM on the CPU backend: whole-model logits and gradients against the float64 reference
 * (model64.ts), packing, padding, KV-cache decoding, initialisation, checkpoint validation.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, it, beforeAll, expect } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { CausalLM, createKVCache, neftuneNoise, parseConfig, presetConfig, countParams, type ModelConfig } from '../../models/index.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import * as R from './ref64.js';
import { forward64, type Weights } from './model64.js';

const TINY: Record<string, Record<string, unknown>> = {
  'gpt2 (tied, gelu_new)': { model_type: 'gpt2', vocab_size: 11, n_positions: 16, n_embd: 8, n_layer: 2, n_head: 2, n_inner: 12 },
  'gpt2 (untied, exact gelu)': { model_type: 'gpt2', vocab_size: 11, n_positions: 16, n_embd: 8, n_layer: 1, n_head: 2, activation_function: 'gelu', tie_word_embeddings: false },
  'llama (GQA 4:2, head_dim 4, biases, untied)': { model_type: 'llama', vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 4, rope_theta: 100, attention_bias: true, mlp_bias: true, tie_word_embeddings: false },
  'llama (MQA 2:1, tied)': { model_type: 'llama', vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, rope_theta: 10000, tie_word_embeddings: true },
};

/** A model whose every parameter (norms and biases included) is random, so no term is trivially 1 or 0. */
function randomModel(config: ModelConfig, seed = 7): CausalLM {
  const m = CausalLM.create(config, { seed });
  let s = seed * 1000;
  for (const [name, v] of m.params) {
    const base = /norm|ln_/.test(name) && name.endsWith('weight') ? 1 : 0;
    v.assign(tf.tensor(Float32Array.from(R.randArray(v.size, s++, 0.5), (x) => base + x), v.shape));
  }
  return m;
}

async function weights64(m: CausalLM): Promise<Weights> {
  const w: Weights = new Map();
  for (const [name, v] of m.params) w.set(name, Float64Array.from(await v.data()));
  return w;
}

const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');

const IDS = [[1, 5, 2, 9, 3, 7], [4, 4, 10, 0, 6, 8]];
const SEG = [[1, 1, 1, 2, 2, 2], [1, 1, 1, 1, 1, 0]];         // a packed row; a right-padded row
const POS = [[0, 1, 2, 0, 1, 2], [0, 1, 2, 3, 4, 5]];
const LABELS = [[-100, 5, 2, -100, 3, 7], [-100, 4, 10, 0, 6, -100]];

describe('CausalLM (CPU)', () => {
  beforeAll(async () => { await useBackend('cpu'); });

  for (const [label, json] of Object.entries(TINY)) {
    it(`${label}: logits, loss and gradients match the float64 reference`, async () => {
      const config = parseConfig(json, `${label}/config.json`);
      const m = randomModel(config);
      const W = await weights64(m);
      const [B, T] = [2, 6];
      const inputs = { ids: IDS.flat(), B, T, seg: SEG.flat(), pos: POS.flat() };
      const ids = int2d(IDS), mask = int2d(SEG), pos = int2d(POS), labels = int2d(LABELS);

      const logits = m.forward(ids, { attentionMask: mask, positionIds: pos });
      const ref = forward64(config, W, inputs);
      assertAllClose(await logits.data(), ref, { rtol: 1e-4, atol: 1e-4, label: `${label} logits` });

      const params = m.trainableParams();
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(m.forward(ids, { attentionMask: mask, positionIds: pos }), labels).loss, [...params.values()]);
      const lossOf = (w: Weights) => R.maskedCrossEntropy64(forward64(config, w, inputs), LABELS.flat(), B, T, config.vocab_size).loss;
      expect((await value.data())[0]).toBeCloseTo(lossOf(W), 4);

      // Central differences on a few elements of every parameter (all of them would be slow and add nothing).
      for (const [name, v] of params) {
        const g = await grads[v.name].data();
        const w = W.get(name)!;
        const picks = [0, Math.floor(w.length / 3), Math.floor((2 * w.length) / 3), w.length - 1];
        for (const i of picks) {
          const keep = w[i], h = 1e-5;
          w[i] = keep + h; const up = lossOf(W);
          w[i] = keep - h; const down = lossOf(W);
          w[i] = keep;
          const numeric = (up - down) / (2 * h);
          assertAllClose([g[i]], [numeric], { rtol: 3e-3, atol: 3e-5, label: `${label} d loss / d ${name}[${i}]` });
        }
      }
      expect(params.size).toBe(m.params.size);
      tf.dispose([logits, value, ids, mask, pos, labels, ...Object.values(grads)]);
      m.dispose();
    });

    it(`${label}: a packed row gives each example's logits alone; padding gives no NaN`, async () => {
      const config = parseConfig(json);
      const m = randomModel(config, 3);
      const packed = m.forward(int2d([[1, 5, 2, 9, 3, 0, 0]]), { attentionMask: int2d([[1, 1, 1, 2, 2, 0, 0]]), positionIds: int2d([[0, 1, 2, 0, 1, 0, 0]]) });
      const a = m.forward(int2d([[1, 5, 2]]));
      const b = m.forward(int2d([[9, 3]]));
      const p = await packed.array();
      expect(p[0].flat().every(Number.isFinite)).toBe(true);
      assertAllClose(p[0].slice(0, 3).flat(), (await a.array())[0].flat(), { rtol: 1e-5, atol: 1e-5, label: 'first example' });
      assertAllClose(p[0].slice(3, 5).flat(), (await b.array())[0].flat(), { rtol: 1e-5, atol: 1e-5, label: 'second example' });
      // Left padding: positions given (as generation does), real tokens unaffected.
      const left = m.forward(int2d([[0, 0, 9, 3]]), { attentionMask: int2d([[0, 0, 1, 1]]), positionIds: int2d([[0, 0, 0, 1]]) });
      const l = await left.array();
      expect(l[0].flat().every(Number.isFinite)).toBe(true);
      assertAllClose(l[0].slice(2).flat(), (await b.array())[0].flat(), { rtol: 1e-5, atol: 1e-5, label: 'left-padded example' });
      tf.dispose([packed, a, b, left]);
      m.dispose();
    });

    it(`${label}: KV-cache decoding equals the full forward (with and without a mask)`, async () => {
      const config = parseConfig(json);
      const m = randomModel(config, 5);
      const before = tf.memory().numTensors;
      const mine: tf.Tensor[] = [];
      const input = (rows: number[][]) => { const t = int2d(rows); mine.push(t); return t; };
      for (const withMask of [false, true]) {
        const ids = input(IDS);
        const seg = withMask ? [[1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]] : undefined;   // row 2 left-padded
        const pos = withMask ? [[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 3, 4]] : undefined;
        const full = m.forward(ids, { attentionMask: seg && input(seg), positionIds: pos && input(pos) });
        const cache = createKVCache(m, 2);
        const pieces: tf.Tensor[] = [];
        for (const [start, len] of [[0, 3], [3, 2], [5, 1]]) {
          const slice = (rows: number[][]) => input(rows.map((r) => r.slice(start, start + len)));
          pieces.push(m.forward(slice(IDS), { cache, attentionMask: seg && slice(seg), positionIds: pos && slice(pos) }));
        }
        expect(cache.length).toBe(6);
        const inc = tf.concat(pieces, 1);
        const f = await full.array() as number[][][], g = await inc.array() as number[][][];
        for (let b = 0; b < 2; b++) {
          const from = withMask && b === 1 ? 1 : 0;   // padding logits are not compared
          assertAllClose(g[b].slice(from).flat(), f[b].slice(from).flat(), { rtol: 1e-5, atol: 1e-5, label: `${label} cache row ${b}` });
        }
        cache.dispose();
        tf.dispose([full, inc, ...pieces]);
      }
      tf.dispose(mine);
      // Every tensor made along the way is freed: tidy inside forward, the cache by dispose().
      expect(tf.memory().numTensors).toBe(before);
      m.dispose();
    });
  }

  it('forward leaves no tensors behind but its logits', () => {
    const m = CausalLM.create(presetConfig('nano', { vocabSize: 32, family: 'llama' }));
    const ids = int2d([[1, 2, 3]]);
    const mask = int2d([[1, 1, 2]]);
    const before = tf.memory().numTensors;
    const out = m.forward(ids, { attentionMask: mask });
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose([out, ids, mask]);
    m.dispose();
  });

  it('create: seeded and deterministic, HF init (normal std, c_proj scaled, zero biases, unit norms)', async () => {
    const config = presetConfig('nano');
    const a = CausalLM.create(config, { seed: 1 }), b = CausalLM.create(config, { seed: 1 }), c = CausalLM.create(config, { seed: 2 });
    const w = (m: CausalLM, k: string) => m.params.get(k)!.data();
    expect(Array.from(await w(a, 'transformer.h.0.attn.c_attn.weight'))).toEqual(Array.from(await w(b, 'transformer.h.0.attn.c_attn.weight')));
    expect(Array.from(await w(a, 'transformer.h.0.attn.c_attn.weight'))).not.toEqual(Array.from(await w(c, 'transformer.h.0.attn.c_attn.weight')));
    const std = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0) / x.length);
    expect(std(await w(a, 'transformer.h.1.mlp.c_fc.weight'))).toBeCloseTo(0.02, 3);
    expect(std(await w(a, 'transformer.h.1.attn.c_proj.weight'))).toBeCloseTo(0.02 / Math.sqrt(2 * 2), 3);
    expect(std(await w(a, 'transformer.h.1.mlp.c_proj.weight'))).toBeCloseTo(0.02 / Math.sqrt(2 * 2), 3);
    expect(new Set(await w(a, 'transformer.h.0.attn.c_attn.bias'))).toEqual(new Set([0]));
    expect(new Set(await w(a, 'transformer.ln_f.weight'))).toEqual(new Set([1]));
    expect(a.params.has('lm_head.weight')).toBe(false);
    expect(a.linearModules().get('lm_head')!.weight).toBe(a.params.get('transformer.wte.weight'));
    [a, b, c].forEach((m) => m.dispose());
  });

  it('preset parameter counts (the table in models/config.ts)', () => {
    const table: Array<[Parameters<typeof presetConfig>[0], 'gpt2' | 'llama', number]> = [
      ['nano', 'gpt2', 182_016], ['micro', 'gpt2', 989_952], ['small', 'gpt2', 10_001_920],
      ['nano', 'llama', 158_016], ['micro', 'llama', 869_504], ['small', 'llama', 8_968_448],
    ];
    for (const [name, family, n] of table) {
      const config = presetConfig(name, { family });
      expect(countParams(config), `${family} ${name}`).toBe(n);
      if (name !== 'small') {
        const m = CausalLM.create(config);
        expect(m.numParams(), `${family} ${name} created`).toBe(n);
        m.dispose();
      }
    }
    expect(presetConfig('nano', { vocabSize: 500 }).vocab_size).toBe(500);
  });

  it('linearModules names HF module paths; trainableParams follows trainable and includes LoRA weights', () => {
    const m = CausalLM.create(presetConfig('nano', { vocabSize: 16, family: 'llama' }));
    const names = [...m.linearModules().keys()];
    expect(names).toContain('model.layers.1.self_attn.k_proj');
    expect(names).toContain('model.layers.0.mlp.down_proj');
    expect(names).toContain('lm_head');
    expect(m.linearModules().get('model.layers.0.self_attn.k_proj')!.weight.shape).toEqual([32, 64]);   // [out, in], 1 kv head of 32
    for (const v of m.params.values()) v.trainable = false;
    const q = m.linearModules().get('model.layers.0.self_attn.q_proj')!;
    q.lora = { A: tf.variable(tf.zeros([2, 64])), B: tf.variable(tf.zeros([64, 2])), scaling: 1, dropout: 0 };
    expect([...m.trainableParams().keys()]).toEqual(['model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.0.self_attn.q_proj.lora_B.weight']);
    m.dispose();
  });
});

describe('CausalLM.fromTensors (CPU)', () => {
  beforeAll(async () => { await useBackend('cpu'); });

  const gpt2 = parseConfig(TINY['gpt2 (tied, gelu_new)']);
  const llama = parseConfig(TINY['llama (GQA 4:2, head_dim 4, biases, untied)']);

  function tensorsOf(m: CausalLM): Map<string, tf.Tensor> {
    return new Map([...m.params].map(([k, v]) => [k, v.clone()]));
  }

  it('round trip: a model rebuilt from its own tensors gives the same logits', async () => {
    for (const config of [gpt2, llama]) {
      const m = randomModel(config);
      const again = CausalLM.fromTensors(config, tensorsOf(m), 'x.safetensors');
      const ids = int2d([[1, 2, 3]]);
      expect(Array.from(await again.forward(ids).data())).toEqual(Array.from(await m.forward(ids).data()));
      m.dispose(); again.dispose();
    }
  });

  it('accepts original GPT-2 keys (no transformer. prefix), ignores attn.bias buffers and a tied lm_head', async () => {
    const m = randomModel(gpt2);
    const t = new Map<string, tf.Tensor>();
    for (const [k, v] of tensorsOf(m)) t.set(k.replace(/^transformer\./, ''), v);
    t.set('h.0.attn.bias', tf.ones([1, 1, 16, 16]));
    t.set('h.1.attn.masked_bias', tf.scalar(-1e4));
    t.set('lm_head.weight', tf.zeros([11, 8]));   // transformers ties it to wte anyway
    const again = CausalLM.fromTensors(gpt2, t, 'gpt2/model.safetensors');
    const ids = int2d([[4, 2]]);
    expect(Array.from(await again.forward(ids).data())).toEqual(Array.from(await m.forward(ids).data()));
    expect(again.params.has('lm_head.weight')).toBe(false);
    m.dispose(); again.dispose();
  });

  it('converts non-float32 tensors and ignores rotary inv_freq buffers', () => {
    const m = randomModel(llama);
    const t = tensorsOf(m);
    t.set('model.layers.0.self_attn.rotary_emb.inv_freq', tf.ones([2]));
    t.set('model.norm.weight', tf.cast(tf.ones([8]), 'int32'));
    const again = CausalLM.fromTensors(llama, t);
    expect(again.params.get('model.norm.weight')!.dtype).toBe('float32');
    m.dispose(); again.dispose();
  });

  const errors: Array<[string, ModelConfig, (t: Map<string, tf.Tensor>) => void, RegExp]> = [
    ['a missing tensor', gpt2, (t) => t.delete('transformer.h.1.ln_2.bias'), /f\.safetensors: missing tensor 'transformer\.h\.1\.ln_2\.bias'/],
    ['a wrong shape', gpt2, (t) => t.set('transformer.h.0.attn.c_attn.weight', tf.zeros([24, 8])),
      /f\.safetensors: tensor 'transformer\.h\.0\.attn\.c_attn\.weight': expected shape \[8, 24\] \(from config\.json\), got \[24, 8\]/],
    ['an unexpected tensor', gpt2, (t) => t.set('transformer.h.2.ln_1.weight', tf.zeros([8])), /unexpected tensor 'transformer\.h\.2\.ln_1\.weight'/],
    ['an untied lm_head missing', llama, (t) => t.delete('lm_head.weight'), /missing tensor 'lm_head\.weight'/],
    ['a Llama K projection with the wrong number of KV heads', llama, (t) => t.set('model.layers.0.self_attn.k_proj.weight', tf.zeros([16, 8])),
      /'model\.layers\.0\.self_attn\.k_proj\.weight': expected shape \[8, 8\].*got \[16, 8\]/],
  ];
  for (const [what, config, edit, message] of errors) {
    it(`refuses ${what}, naming the key`, () => {
      const m = randomModel(config);
      const t = tensorsOf(m);
      edit(t);
      expect(() => CausalLM.fromTensors(config, t, 'f.safetensors')).toThrow(message);
      m.dispose();
    });
  }
});

describe('training-time randomness (CPU)', () => {
  beforeAll(async () => { await useBackend('cpu'); });

  it('NEFTune noise is Uniform(-m, m) with m = alpha / sqrt(T * C), seeded', async () => {
    const e = tf.zeros([2, 5, 8]) as tf.Tensor3D;
    const m = 4 / Math.sqrt(5 * 8);
    const a = Array.from(await neftuneNoise(e, 4, 1).data());
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(m);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.8 * m);          // 80 draws fill the interval
    expect(Math.abs(a.reduce((x, y) => x + y, 0) / a.length)).toBeLessThan(0.25 * m);
    expect(Array.from(await neftuneNoise(e, 4, 1).data())).toEqual(a);
    expect(Array.from(await neftuneNoise(e, 4, 2).data())).not.toEqual(a);
  });

  it('NEFTune and LoRA dropout act in training only, reproducibly from the seed', async () => {
    const m = randomModel(parseConfig(TINY['llama (MQA 2:1, tied)']));
    const q = m.linearModules().get('model.layers.0.self_attn.q_proj')!;
    q.lora = { A: tf.variable(tf.randomNormal([2, 8], 0, 1, 'float32', 1)), B: tf.variable(tf.randomNormal([8, 2], 0, 1, 'float32', 2)), scaling: 2, dropout: 0.5 };
    const ids = int2d([[1, 2, 3, 4]]);
    const logits = async (o: Parameters<CausalLM['forward']>[1]) => Array.from(await m.forward(ids, o).data());
    const plain = await logits({});
    expect(await logits({ neftune: { alpha: 5 }, seed: 3 })).toEqual(plain);                       // not training
    const noisy = await logits({ training: true, neftune: { alpha: 5 }, seed: 3 });
    expect(noisy).not.toEqual(plain);
    expect(await logits({ training: true, neftune: { alpha: 5 }, seed: 3 })).toEqual(noisy);       // same seed, same draw
    expect(await logits({ training: true, neftune: { alpha: 5 }, seed: 4 })).not.toEqual(noisy);
    const dropped = await logits({ training: true, seed: 3 });                                      // LoRA dropout only
    expect(dropped).not.toEqual(plain);
    expect(await logits({ training: true, seed: 3 })).toEqual(dropped);
    m.dispose();
  });
});
