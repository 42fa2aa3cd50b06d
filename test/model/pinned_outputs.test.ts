/**
 * Model outputs pinned bit for bit: logits, loss, every gradient (LoRA with dropout, gradient
 * checkpointing) and a KV-cache decoding step of tiny seeded models of each family, hashed
 * (sha256 of the float32 bytes) and compared with the hashes the code gave before the model
 * files were restructured. A refactor of models/ must leave every hash unchanged.
 *
 * The CPU backend is pure JavaScript and gives the same bytes on every machine. A GPU adapter
 * may round differently (fused multiply-add, reduction order), so the WebGPU hashes are pinned
 * for the adapter they were recorded on (PINNED_ADAPTER); on any other adapter the WebGPU
 * outputs are compared with the pinned CPU outputs within float32 tolerance instead.
 *
 * To print the current hashes (after a deliberate change of the math): WEBTUNE_PRINT_PINS=1.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { it, expect, afterAll } from 'vitest';
import { describeEachBackend, assertAllClose, useBackend } from '../helpers/backends.js';
import { stockEngine, fusedEngine } from '../../src/engine/index.js';
import { CausalLM, createKVCache, parseConfig } from '../../models/index.js';
import { applyLora } from '../../src/nn/lora.js';

const CONFIGS = {
  gpt2: { model_type: 'gpt2', vocab_size: 24, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 },
  gpt2_erf_untied: { model_type: 'gpt2', vocab_size: 24, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 4, n_inner: 24, activation_function: 'gelu', tie_word_embeddings: false },
  llama: { model_type: 'llama', vocab_size: 24, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true },
  llama_bias_untied: { model_type: 'llama', vocab_size: 24, hidden_size: 16, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, attention_bias: true, mlp_bias: true, rope_theta: 500 },
} as const;

const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
const IDS = [[1, 5, 2, 9, 3, 7, 11, 4], [4, 4, 10, 0, 6, 8, 2, 2]];
const SEG = [[1, 1, 1, 2, 2, 2, 2, 0], [1, 1, 1, 1, 1, 1, 1, 1]];       // two packed segments + padding; one plain row
const POS = [[0, 1, 2, 0, 1, 2, 3, 0], [0, 1, 2, 3, 4, 5, 6, 7]];
const LABELS = [[-100, 5, 2, -100, 3, 7, 11, -100], [-100, 4, 10, 0, 6, 8, 2, 2]];

/** The outputs pinned for one model: name -> float32 values. */
async function outputs(json: Record<string, unknown>, engine: typeof stockEngine): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  const model = CausalLM.create(parseConfig(json), { seed: 3, engine });
  const [ids, mask, pos, labels] = [IDS, SEG, POS, LABELS].map(int2d);
  // Plain forward: logits [2, 8, V].
  const logits = model.forward(ids, { attentionMask: mask, positionIds: pos });
  out.set('logits', (await logits.data()) as Float32Array);
  logits.dispose();
  // KV cache: a 5-token prompt, then one token per step.
  const cache = createKVCache(model, 1);
  const prompt = int2d([IDS[0].slice(0, 5)]);
  const first = model.forward(prompt, { cache });
  out.set('cache.prompt', (await first.data()) as Float32Array);
  const step = int2d([[IDS[0][5]]]);
  const next = model.forward(step, { cache });
  out.set('cache.step', (await next.data()) as Float32Array);
  tf.dispose([first, next, prompt, step]);
  cache.dispose();
  // Full fine-tuning, then LoRA with dropout; each with and without gradient checkpointing.
  for (const lora of [false, true]) {
    if (lora) applyLora(model, { r: 2, alpha: 4, dropout: 0.25, targetModules: 'all-linear', seed: 9 });
    if (lora) {
      // Give B non-zero values so the branch contributes to the output (B is zero-initialised).
      for (const [name, v] of model.trainableParams()) if (name.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', 17));
    }
    for (const gradientCheckpointing of [false, true]) {
      const tag = `${lora ? 'lora' : 'full'}${gradientCheckpointing ? '.ckpt' : ''}`;
      const params = model.trainableParams();
      const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, { attentionMask: mask, positionIds: pos, training: true, seed: 5, gradientCheckpointing }).loss, [...params.values()]);
      out.set(`${tag}.loss`, (await value.data()) as Float32Array);
      for (const [name, v] of params) out.set(`${tag}.grad.${name}`, (await grads[v.name].data()) as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
    }
  }
  tf.dispose([ids, mask, pos, labels]);
  model.dispose();
  return out;
}

/** sha256 of the float32 bytes of every output, in order, with their names. */
function hash(values: Map<string, Float32Array>): string {
  const h = createHash('sha256');
  for (const [name, v] of values) {
    h.update(name);
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return h.digest('hex').slice(0, 32);
}

/** The adapter the WebGPU hashes were recorded on (its description starts with this). */
const PINNED_ADAPTER = 'llvmpipe';

/** Recorded before the restructuring of models/ (see the file comment). */
const PINS: Record<string, string> = {
  'cpu.stock.gpt2': '1b2487846dcfdda96ac32a54e33ea9d2',
  'cpu.stock.gpt2_erf_untied': 'da254b7f40eaf2407b81bc799725b447',
  'cpu.stock.llama': '11c36aa27087ad25589dda1a57ba39e5',
  'cpu.stock.llama_bias_untied': '1d5c0aa346b07d616322d08c73fb8c80',
  'webgpu.stock.gpt2': '35c9eeeb2cec66309a278ed825245283',
  'webgpu.stock.gpt2_erf_untied': 'ffa47524417668e805018a427037f34b',
  'webgpu.stock.llama': 'd69657dc24e77793749c5aa061b3168e',
  'webgpu.stock.llama_bias_untied': '46f9eae014d5b394e9f8144037736874',
  'webgpu.fused.gpt2': 'f326dac5ad5234a3b407b945c2e8e386',
  'webgpu.fused.gpt2_erf_untied': '1e08b6cc2cda0af7bfa448d6a4d15aad',
  'webgpu.fused.llama': 'a766764bfddd05d526727123fef6d8b0',
  'webgpu.fused.llama_bias_untied': 'a9de5512b2c865414bdb3076e6f848a0',
};

const printed: string[] = [];
afterAll(() => { if (printed.length) console.log(`PINS:\n${printed.join('\n')}`); });

/** Each model's CPU outputs, kept for the comparison on an adapter other than PINNED_ADAPTER. */
const cpuOutputs = new Map<string, Map<string, Float32Array>>();

describeEachBackend('model outputs are bit-identical to the pinned ones', (backend) => {
  const engines = backend === 'webgpu' ? { stock: stockEngine, fused: fusedEngine } : { stock: stockEngine };
  for (const [engineName, engine] of Object.entries(engines)) {
    for (const [family, json] of Object.entries(CONFIGS)) {
      it(`${family}, ${engineName} engine`, async () => {
        const key = `${backend}.${engineName}.${family}`;
        const got = await outputs(json, engine);
        expect(got.size).toBeGreaterThan(10);
        for (const [name, v] of got) expect(v.every(Number.isFinite), `${key}: ${name} is finite`).toBe(true);
        if (process.env.WEBTUNE_PRINT_PINS) printed.push(`  '${key}': '${hash(got)}',`);
        if (backend === 'cpu') {
          cpuOutputs.set(family, got);
          expect(hash(got), key).toBe(PINS[key]);
          return;
        }
        const adapter = (await useBackend('webgpu')).adapter?.description ?? '';
        if (adapter.startsWith(PINNED_ADAPTER)) {
          expect(hash(got), `${key} on ${adapter}`).toBe(PINS[key]);
          return;
        }
        // Another adapter: the same math within float32 rounding of the CPU outputs.
        const cpu = cpuOutputs.get(family) ?? await (async () => { await useBackend('cpu'); const o = await outputs(json, stockEngine); await useBackend('webgpu'); return o; })();
        for (const [name, v] of got) assertAllClose(v, cpu.get(name)!, { rtol: 1e-3, atol: 1e-4, label: `${key}: ${name} vs cpu` });
      });
    }
  }
});
