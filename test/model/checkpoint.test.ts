/**
 * Gradient checkpointing: the same loss and gradients as the plain forward (every trainable
 * tensor, full fine-tuning and LoRA with dropout, both families, stock and fused ops, packed
 * rows), and tf.memory() flat over many trainer steps with it on.
 */
import * as tf from '@tensorflow/tfjs';
import { it, expect } from 'vitest';
import { describeEachBackend, assertAllClose } from '../helpers/backends.js';
import { stockEngine, fusedEngine } from '../../src/engine/index.js';
import { CausalLM, parseConfig } from '../../models/index.js';
import { applyLora } from '../../src/nn/lora.js';
import { Trainer } from '../../src/train/trainer.js';
import { makeBatch, randomRows } from '../train/helpers.js';

const CONFIGS = {
  gpt2: { model_type: 'gpt2', vocab_size: 24, n_positions: 16, n_embd: 16, n_layer: 2, n_head: 2 },
  llama: { model_type: 'llama', vocab_size: 24, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true },
} as const;

const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
const IDS = [[1, 5, 2, 9, 3, 7, 11, 4], [4, 4, 10, 0, 6, 8, 2, 2]];
const SEG = [[1, 1, 1, 2, 2, 2, 2, 0], [1, 1, 1, 1, 1, 1, 1, 1]];
const POS = [[0, 1, 2, 0, 1, 2, 3, 0], [0, 1, 2, 3, 4, 5, 6, 7]];
const LABELS = [[-100, 5, 2, -100, 3, 7, 11, -100], [-100, 4, 10, 0, 6, 8, 2, 2]];

async function lossAndGrads(model: CausalLM, gradientCheckpointing: boolean): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const params = model.trainableParams();
  const [ids, mask, pos, labels] = [IDS, SEG, POS, LABELS].map(int2d);
  const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, { attentionMask: mask, positionIds: pos, training: true, seed: 5, gradientCheckpointing }).loss, [...params.values()]);
  const out = new Map<string, Float32Array>();
  for (const [name, v] of params) out.set(name, (await grads[v.name].data()) as Float32Array);
  const loss = (await value.data())[0];
  tf.dispose([value, ...Object.values(grads), ids, mask, pos, labels]);
  return { loss, grads: out };
}

describeEachBackend('gradient checkpointing gives the gradients of the plain forward', (backend) => {
  const tables = backend === 'webgpu' ? ['stock', 'fused'] : ['stock'];
  for (const table of tables) {
    for (const [family, json] of Object.entries(CONFIGS)) {
      for (const mode of ['full', 'lora'] as const) {
        it(`${family}, ${mode}, ${table} ops`, async () => {
          const model = CausalLM.create(parseConfig(json), { seed: 2, engine: table === 'fused' ? fusedEngine : stockEngine });
          if (mode === 'lora') {
            applyLora(model, { r: 2, alpha: 4, dropout: 0.2, targetModules: 'all-linear', seed: 3 });
            let s = 1;
            for (const lin of model.linearModules().values()) if (lin.lora) lin.lora.B.assign(tf.randomUniform(lin.lora.B.shape, -0.5, 0.5, 'float32', s++));
          }
          const before = tf.memory().numTensors;
          const plain = await lossAndGrads(model, false);
          const ckpt = await lossAndGrads(model, true);
          expect(tf.memory().numTensors).toBe(before);
          expect(ckpt.loss).toBe(plain.loss);
          expect([...ckpt.grads.keys()]).toEqual([...plain.grads.keys()]);
          let nonZero = 0;
          for (const [name, g] of plain.grads) {
            // The recomputed forward is the same sequence of ops, so equal up to float32 summation order.
            assertAllClose(ckpt.grads.get(name)!, g, { rtol: 1e-5, atol: 1e-7, label: name });
            if (g.some((v) => v !== 0)) nonZero++;
          }
          expect(nonZero).toBe(plain.grads.size);
          model.dispose();
        });
      }
    }
  }

  it('keeps tf.memory() flat over 60 trainer steps with gradientCheckpointing (LoRA with dropout)', async () => {
    const model = CausalLM.create(parseConfig(CONFIGS.llama), { seed: 4 });
    applyLora(model, { r: 2, alpha: 4, dropout: 0.1, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    const batches = [makeBatch(randomRows(2, 8, 24, 1)), makeBatch(randomRows(2, 8, 24, 2))];
    const trainer = new Trainer(model, { train: batches, lr: 1e-3, maxSteps: 60, gradientCheckpointing: true });
    const snapshots = new Map<number, { numTensors: number; numBytes: number }>();
    trainer.on((e) => {
      if (e.type === 'step' && (e.step === 5 || e.step === 60)) snapshots.set(e.step, { numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes });
    });
    expect(await trainer.run()).toBe('done');
    expect(snapshots.get(5)).toBeDefined();
    expect(snapshots.get(60)).toEqual(snapshots.get(5));
    trainer.dispose();
    model.dispose();
  });
});
