/**
 * CPU and WebGPU (Dawn) agree on logits, loss and gradients of a tiny GPT-2 and a tiny Llama
 * (GQA), with a packed and padded batch, and on KV-cache decoding. Sizes are tiny: on machines
 * without a GPU the WebGPU backend runs on a software adapter.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, it, expect } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { CausalLM, createKVCache, parseConfig, type ModelConfig } from '../../models/index.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';

const CONFIGS: Record<string, ModelConfig> = {
  gpt2: parseConfig({ model_type: 'gpt2', vocab_size: 13, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 }),
  'llama GQA': parseConfig({ model_type: 'llama', vocab_size: 13, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, rope_theta: 100, tie_word_embeddings: false }),
};

const IDS = [[1, 5, 2, 9, 3, 7, 0], [4, 4, 12, 0, 6, 8, 11]];
const SEG = [[1, 1, 1, 2, 2, 2, 0], [1, 1, 1, 1, 1, 1, 1]];
const POS = [[0, 1, 2, 0, 1, 2, 0], [0, 1, 2, 3, 4, 5, 6]];
const LABELS = [[-100, 5, 2, -100, 3, 7, -100], [-100, 4, 12, 0, 6, 8, 11]];

interface Result { logits: Float32Array; loss: number; rowSums: Float32Array; grads: Map<string, Float32Array>; decoded: Float32Array; full: Float32Array }

async function run(config: ModelConfig): Promise<Result> {
  // The same seed gives the same weights on every backend (host-side seeded init); larger std so activations are not tiny.
  const m = CausalLM.create({ ...config, initializer_range: 0.3 }, { seed: 11 });
  const t = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
  const ids = t(IDS), mask = t(SEG), pos = t(POS), labels = t(LABELS);
  const logits = m.forward(ids, { attentionMask: mask, positionIds: pos });
  const ce = maskedCrossEntropy(logits, labels);
  const params = m.trainableParams();
  const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(m.forward(ids, { attentionMask: mask, positionIds: pos }), labels).loss, [...params.values()]);
  const g = new Map<string, Float32Array>();
  for (const [name, v] of params) g.set(name, await grads[v.name].data() as Float32Array);
  // KV cache: 5 tokens then 2, against the full forward of the 7.
  const cache = createKVCache(m, 2);
  const a = m.forward(t(IDS.map((r) => r.slice(0, 5))), { cache });
  const b = m.forward(t(IDS.map((r) => r.slice(5))), { cache });
  const full = m.forward(ids);
  const out: Result = {
    logits: await logits.data() as Float32Array, loss: (await ce.loss.data())[0], rowSums: await ce.rowSums.data() as Float32Array,
    grads: g, decoded: await tf.concat([a, b], 1).data() as Float32Array, full: await full.data() as Float32Array,
  };
  expect(Math.abs((await value.data())[0] - out.loss)).toBeLessThan(1e-6);
  cache.dispose();
  tf.dispose([ids, mask, pos, labels, logits, ce.loss, ce.rowSums, ce.rowCounts, value, a, b, full, ...Object.values(grads)]);
  m.dispose();
  return out;
}

describe('CPU and WebGPU agree', () => {
  for (const [label, config] of Object.entries(CONFIGS)) {
    it(`${label}: logits, loss, per-row sums, every gradient, KV-cache decoding`, async () => {
      await useBackend('cpu');
      const cpu = await run(config);
      await useBackend('webgpu');
      const gpu = await run(config);
      expect(tf.getBackend()).toBe('webgpu');
      expect(cpu.logits.every(Number.isFinite)).toBe(true);
      assertAllClose(gpu.logits, cpu.logits, { rtol: 1e-4, atol: 1e-5, label: `${label} logits` });
      expect(gpu.loss).toBeCloseTo(cpu.loss, 5);
      assertAllClose(gpu.rowSums, cpu.rowSums, { rtol: 1e-5, atol: 1e-5, label: `${label} rowSums` });
      expect(gpu.grads.size).toBe(cpu.grads.size);
      for (const [name, g] of cpu.grads) assertAllClose(gpu.grads.get(name)!, g, { rtol: 1e-3, atol: 1e-5, label: `${label} grad ${name}` });
      assertAllClose(gpu.decoded, gpu.full, { rtol: 1e-4, atol: 1e-5, label: `${label} webgpu cache` });
      assertAllClose(cpu.decoded, cpu.full, { rtol: 1e-5, atol: 1e-6, label: `${label} cpu cache` });
    });
  }
});
