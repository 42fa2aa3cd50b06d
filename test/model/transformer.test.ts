/**
 * The folded forward the model runs (each residual add fused into the norm that reads its sum)
 * against the plain Block.forward of models/transformer.ts: the same logits, loss and gradients.
 * With the stock ops the fold is only a regrouping of the same ops, so the bits are equal; the
 * fused engine computes the add and the norm in one kernel, so they agree to float32 rounding.
 */
import * as tf from '@tensorflow/tfjs';
import { it, expect } from 'vitest';
import { describeEachBackend, assertAllClose } from '../helpers/backends.js';
import { stockEngine, fusedEngine } from '../../src/engine/index.js';
import { CausalLM, parseConfig } from '../../models/index.js';

const CONFIGS = {
  gpt2: { model_type: 'gpt2', vocab_size: 24, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 },
  llama: { model_type: 'llama', vocab_size: 24, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 },
} as const;

const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
const IDS = [[1, 5, 2, 9, 3, 7], [4, 4, 10, 0, 6, 8]];
const SEG = [[1, 1, 1, 2, 2, 0], [1, 1, 1, 1, 1, 1]];
const LABELS = [[-100, 5, 2, -100, 3, -100], [-100, 4, 10, 0, 6, 8]];

/** Logits, loss and every gradient of a full fine-tuning step, plain or folded (and optionally checkpointed). */
async function run(model: CausalLM, plainBlocks: boolean, gradientCheckpointing: boolean): Promise<Map<string, Float32Array>> {
  const [ids, mask, labels] = [IDS, SEG, LABELS].map(int2d);
  const out = new Map<string, Float32Array>();
  const logits = model.forward(ids, { attentionMask: mask, plainBlocks });
  out.set('logits', (await logits.data()) as Float32Array);
  const params = model.trainableParams();
  const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, { attentionMask: mask, training: true, plainBlocks, gradientCheckpointing }).loss, [...params.values()]);
  out.set('loss', (await value.data()) as Float32Array);
  for (const [name, v] of params) out.set(name, (await grads[v.name].data()) as Float32Array);
  tf.dispose([logits, value, ...Object.values(grads), ids, mask, labels]);
  return out;
}

describeEachBackend('Block.forward (plain) and Block.forwardFolded give the same model', (backend) => {
  const engines = backend === 'webgpu' ? { stock: stockEngine, fused: fusedEngine } : { stock: stockEngine };
  for (const [engineName, engine] of Object.entries(engines)) {
    for (const [family, json] of Object.entries(CONFIGS)) {
      for (const ckpt of [false, true]) {
        it(`${family}, ${engineName} engine${ckpt ? ', gradient checkpointing' : ''}`, async () => {
          const model = CausalLM.create(parseConfig(json), { seed: 1, engine });
          const folded = await run(model, false, ckpt);
          const plain = await run(model, true, ckpt);
          model.dispose();
          expect([...plain.keys()]).toEqual([...folded.keys()]);
          expect(folded.get('loss')![0]).toBeGreaterThan(2);     // about ln(24) for a fresh model
          for (const [name, v] of folded) {
            if (engineName === 'stock') expect(plain.get(name), name).toEqual(v);
            else assertAllClose(plain.get(name)!, v, { rtol: 1e-4, atol: 1e-6, label: name });
          }
        });
      }
    }
  }
});
