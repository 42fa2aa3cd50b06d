import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { startGpuMeter, fusedMaskedCrossEntropy } from '../../kernels/index.js';
import { stockEngine, fusedEngine } from '../../src/engine/index.js';
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig } from '../../models/config.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import { rng, randn } from './util.js';
import { applyLora } from '../../src/nn/lora.js';

/** A packed batch: row 0 holds two examples and padding, row 1 one example; first tokens untrained. */
function batch(B: number, T: number, V: number) {
  const r = rng(3);
  const ids = Int32Array.from({ length: B * T }, () => Math.floor(r() * V));
  const seg = new Int32Array(B * T), pos = new Int32Array(B * T), labels = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const s = b === 0 ? (t < 4 ? 1 : t < T - 2 ? 2 : 0) : 1;
      seg[b * T + t] = s;
      pos[b * T + t] = s === 2 ? t - 4 : t;
      if (s !== 0 && !(t === 0 || (b === 0 && t === 4))) labels[b * T + t] = ids[b * T + t];
    }
  }
  return {
    ids: tf.tensor2d(ids, [B, T], 'int32'), labels: tf.tensor2d(labels, [B, T], 'int32'),
    mask: tf.tensor2d(seg, [B, T], 'int32'), pos: tf.tensor2d(pos, [B, T], 'int32'),
  };
}

async function lossAndGrads(model: CausalLM, b: ReturnType<typeof batch>) {
  const vars = [...model.trainableParams().values()];
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.forward(b.ids, { attentionMask: b.mask, positionIds: b.pos, training: true });
    return maskedCrossEntropy(logits, b.labels, model.engine.ops).loss;
  }, vars);
  const out = new Map<string, Float32Array>();
  for (const [k, g] of Object.entries(grads)) out.set(k, (await g.data()) as Float32Array);
  const loss = (await value.data())[0];
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, grads: out };
}

describe('whole model on the fused engine and on the stock engine [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const family of ['gpt2', 'llama'] as const) {
    it(`${family}: loss and every gradient agree within float32 tolerance, with fewer dispatches`, async () => {
      // 16 rows and every width a multiple of 8: each linear runs kernels/matmul.ts.
      const config = presetConfig('nano', { vocabSize: 40, family });
      const model = CausalLM.create(config, { seed: 1 });
      expect(model.engine).toBe(fusedEngine);       // WebGPU's engine, by default
      const b = batch(2, 8, 40);
      let meter = startGpuMeter();
      const stock = await lossAndGrads(model.withEngine(stockEngine), b);
      const stockDispatches = meter.stop().dispatches;
      meter = startGpuMeter();
      const fused = await lossAndGrads(model, b);
      const fusedDispatches = meter.stop().dispatches;
      expect(Number.isFinite(fused.loss)).toBe(true);
      assertAllClose([fused.loss], [stock.loss], { rtol: 1e-5, atol: 1e-6, label: 'loss' });
      expect([...fused.grads.keys()].sort()).toEqual([...stock.grads.keys()].sort());
      for (const [k, g] of stock.grads) assertAllClose(fused.grads.get(k)!, g, { rtol: 2e-3, atol: 2e-5, label: `grad ${k}` });
      // Fused attention (packed qkv for GPT-2), residual-fused norms, bias+GELU and the one-pass
      // loss: far fewer dispatches (counts, not timings). Llama keeps its head transposes and
      // stock RoPE, so it saves less.
      expect(fusedDispatches).toBeLessThan(stockDispatches / (family === 'gpt2' ? 3 : 2));
      model.dispose();
      tf.dispose(Object.values(b));
    });
  }

  for (const family of ['gpt2', 'llama'] as const) {
    it(`${family} with LoRA on every linear of the blocks (dropout on): adapter gradients agree, fewer bytes at peak`, async () => {
      const config = presetConfig('nano', { vocabSize: 40, family });
      const model = CausalLM.create(config, { seed: 3 });
      const targets = family === 'gpt2' ? ['c_attn', 'c_proj', 'c_fc'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
      applyLora(model, { r: 8, alpha: 16, dropout: 0.1, targetModules: targets });
      // B starts at zero (PEFT); give it values so every adapter gradient is non-trivial.
      let s = 50;
      for (const [name, v] of model.trainableParams()) if (name.endsWith('lora_B.weight')) v.assign(tf.tensor(randn(v.size, s++, 0.1), v.shape));
      const b = batch(2, 8, 40);
      const lossAndGradsSeeded = async (m: CausalLM) => {
        const params = m.trainableParams();
        const meter = startGpuMeter();
        const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(m.forward(b.ids, { attentionMask: b.mask, positionIds: b.pos, training: true, seed: 7 }), b.labels, m.engine.ops).loss, [...params.values()]);
        const peak = meter.stop().peakBytes;
        const out = new Map<string, Float32Array>();
        for (const [k, g] of Object.entries(grads)) out.set(k, (await g.data()) as Float32Array);
        const loss = (await value.data())[0];
        tf.dispose([value, ...Object.values(grads)]);
        return { loss, grads: out, peak };
      };
      const stock = await lossAndGradsSeeded(model.withEngine(stockEngine));
      const fused = await lossAndGradsSeeded(model.withEngine(fusedEngine));
      assertAllClose([fused.loss], [stock.loss], { rtol: 1e-5, atol: 1e-6, label: 'loss' });
      expect([...fused.grads.keys()].sort()).toEqual([...stock.grads.keys()].sort());
      // A and B of each adapted module in each of the 2 layers ('c_proj' names attn.c_proj and mlp.c_proj).
      expect(stock.grads.size).toBe(2 * (family === 'gpt2' ? 4 : 7) * 2);
      for (const [k, g] of stock.grads) assertAllClose(fused.grads.get(k)!, g, { rtol: 2e-3, atol: 2e-5, label: `grad ${k}` });
      expect(fused.peak).toBeLessThan(stock.peak);
      model.dispose();
      tf.dispose(Object.values(b));
    });
  }

  it('gpt2 without an attention mask (causal only): fused loss and gradients equal the stock path', async () => {
    const config = presetConfig('nano', { vocabSize: 37, family: 'gpt2' });
    const model = CausalLM.create(config, { seed: 2 });
    const ids = tf.tensor2d(Array.from({ length: 14 }, (_, i) => (i * 5) % 37), [2, 7], 'int32');
    const run = async (m: CausalLM) => {
      const vars = [...m.trainableParams().values()];
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(m.forward(ids, { training: true }), ids, m.engine.ops).loss, vars);
      const out = new Map<string, Float32Array>();
      for (const [k, g] of Object.entries(grads)) out.set(k, (await g.data()) as Float32Array);
      const loss = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
      return { loss, grads: out };
    };
    const stock = await run(model.withEngine(stockEngine));
    const fused = await run(model.withEngine(fusedEngine));
    assertAllClose([fused.loss], [stock.loss], { rtol: 1e-5, atol: 1e-6, label: 'loss' });
    for (const [k, g] of stock.grads) assertAllClose(fused.grads.get(k)!, g, { rtol: 2e-3, atol: 2e-5, label: `grad ${k}` });
    model.dispose();
    ids.dispose();
  });

  it('fusedMaskedCrossEntropy equals src/train/loss.ts maskedCrossEntropy (values and gradient)', async () => {
    const B = 2, T = 9, V = 37;
    const b = batch(B, T, V);
    const logits = tf.randomNormal([B, T, V], 0, 2, 'float32', 4);
    const f = tf.valueAndGrad((x: tf.Tensor) => fusedMaskedCrossEntropy(x as tf.Tensor3D, b.labels).loss)(logits);
    const s = tf.valueAndGrad((x: tf.Tensor) => maskedCrossEntropy(x as tf.Tensor3D, b.labels).loss)(logits);
    assertAllClose(await f.value.data(), await s.value.data(), { rtol: 1e-5, label: 'loss' });
    assertAllClose(await f.grad.data(), await s.grad.data(), { rtol: 1e-4, atol: 1e-7, label: 'grad' });
    const fr = fusedMaskedCrossEntropy(logits as tf.Tensor3D, b.labels), sr = maskedCrossEntropy(logits as tf.Tensor3D, b.labels);
    assertAllClose(await fr.rowSums.data(), await sr.rowSums.data(), { rtol: 1e-5, label: 'rowSums' });
    assertAllClose(await fr.rowCounts.data(), await sr.rowCounts.data(), { label: 'rowCounts' });
  });
});
