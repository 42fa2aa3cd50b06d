/**
 * ops.linearCrossEntropy (the chunked head + masked loss that never holds the logits) against a
 * float64 reference: the loss, row sums and counts, and the gradients of the hidden states and
 * of every trainable head tensor by central finite differences. Per backend, for the stock and
 * the fused ops tables, with chunks that do and do not divide the rows; plus CausalLM.loss (tied
 * embeddings, LoRA and modules_to_save on lm_head) against the whole-logits path.
 */
import * as tf from '@tensorflow/tfjs';
import { it, expect } from 'vitest';
import { describeEachBackend, assertAllClose } from '../helpers/backends.js';
import { stockOps } from '../../src/nn/ops.js';
import { fusedLinearCrossEntropy } from '../../kernels/index.js';
import { logitsChunkRows, type LinearHead } from '../../src/nn/linear_cross_entropy.js';
import { CausalLM, parseConfig } from '../../models/index.js';
import { applyLora } from '../../src/nn/lora.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import * as R from './ref64.js';

const B = 2, T = 5, C = 4, V = 9, N = B * T, RANK = 2, SCALING = 1.5;
const LABELS = [-100, 3, 8, -100, 0, /* row 1 */ -100, -100, 5, 1, 7];
// A fixed "dropout" of the LoRA input: some features zeroed, the rest scaled by 2.
const KEEP = Array.from({ length: N * C }, (_, i) => (i % 3 === 1 ? 0 : 2));

type Case = { name: string; transposeB: boolean; bias: boolean; weightTrained: boolean; lora: boolean; dropout: boolean };
const CASES: Case[] = [
  { name: 'trainable [V, C] head (full fine-tuning of a tied or untied head)', transposeB: true, bias: false, weightTrained: true, lora: false, dropout: false },
  { name: 'trainable [C, V] head with bias', transposeB: false, bias: true, weightTrained: true, lora: false, dropout: false },
  { name: 'frozen head (LoRA elsewhere): gradient of the hidden states only', transposeB: true, bias: false, weightTrained: false, lora: false, dropout: false },
  { name: 'LoRA on a frozen head', transposeB: true, bias: false, weightTrained: false, lora: true, dropout: false },
  { name: 'LoRA on a frozen head with dropout on its input', transposeB: true, bias: false, weightTrained: false, lora: true, dropout: true },
];

/** The float64 logits of the head: x·op(W) (+ b) (+ s·(input·Aᵀ)·Bᵀ). xs = [x, W, b, A, B]. */
function logits64(c: Case, [x, W, b, A, Bl]: R.F64[]): R.F64 {
  const logits = R.linear64(x, N, C, V, W, c.transposeB ? 'out_in' : 'in_out', c.bias ? b : undefined);
  if (!c.lora) return logits;
  const input = c.dropout ? x.map((v, i) => v * KEEP[i]) : x;
  const up = R.linear64(R.linear64(input, N, C, RANK, A, 'out_in'), N, RANK, V, Bl, 'out_in');
  return logits.map((v, i) => v + SCALING * up[i]);
}

const TABLES = { stock: stockOps.linearCrossEntropy, fused: fusedLinearCrossEntropy };

describeEachBackend('linearCrossEntropy equals the float64 loss and its finite-difference gradients', () => {
  for (const c of CASES) {
    for (const [table, op] of Object.entries(TABLES)) {
      for (const chunkRows of [3, 5, N]) {
        it(`${c.name}: ${table} table, ${chunkRows} rows per chunk`, async () => {
          const ref = [R.randArray(N * C, 1), R.randArray(V * C, 2, 0.8), R.randArray(V, 3), R.randArray(RANK * C, 4), R.randArray(V * RANK, 5)];
          const x = tf.tensor2d(Float32Array.from(ref[0]), [N, C]);
          const W = tf.variable(tf.tensor2d(Float32Array.from(ref[1]), c.transposeB ? [V, C] : [C, V]), c.weightTrained);
          const bias = tf.variable(tf.tensor1d(Float32Array.from(ref[2])), true);
          const A = tf.variable(tf.tensor2d(Float32Array.from(ref[3]), [RANK, C]), true);
          const Bl = tf.variable(tf.tensor2d(Float32Array.from(ref[4]), [V, RANK]), true);
          const keep = tf.tensor2d(KEEP, [N, C]);
          const labels = tf.tensor2d(LABELS, [B, T], 'int32');
          const before = tf.memory().numTensors;
          const trained = [W, ...(c.bias ? [bias] : []), ...(c.lora ? [A, Bl] : [])].filter((v) => v.trainable);
          const { value: rowSumsSum, grads } = tf.tidy(() => {
            const f = (xi: tf.Tensor) => {
              const head: LinearHead = {
                weight: W as tf.Tensor2D, transposeB: c.transposeB, bias: c.bias ? bias as tf.Tensor1D : undefined,
                lora: c.lora ? { A: A as tf.Tensor2D, B: Bl as tf.Tensor2D, scaling: SCALING, input: (c.dropout ? tf.mul(xi, keep) : xi) as tf.Tensor2D } : undefined,
              };
              return op(tf.reshape(xi, [B, T, C]) as tf.Tensor3D, head, labels, chunkRows);
            };
            const out = f(x);
            const g = tf.grads((xi: tf.Tensor, ...vs: tf.Tensor[]) => { void vs; return f(xi).loss; })([x, ...trained]);
            return { value: [out.loss, out.rowSums, out.rowCounts], grads: g };
          });
          const [lossT, rowSumsT, rowCountsT] = rowSumsSum;
          // Forward against float64.
          const want = R.maskedCrossEntropy64(logits64(c, ref), LABELS, B, T, V);
          assertAllClose(await lossT.data(), [want.loss], { rtol: 1e-5, atol: 1e-6, label: 'loss' });
          assertAllClose(await rowSumsT.data(), want.rowSums, { rtol: 1e-5, atol: 1e-5, label: 'rowSums' });
          expect(Array.from(await rowCountsT.data())).toEqual(want.rowCounts);
          // Gradients against central differences of the float64 loss.
          const which = [0, ...(c.weightTrained ? [1] : []), ...(c.bias ? [2] : []), ...(c.lora ? [3, 4] : [])];
          expect(grads.length).toBe(which.length);
          for (let k = 0; k < which.length; k++) {
            const fd = R.numericGrad((xs) => R.maskedCrossEntropy64(logits64(c, xs), LABELS, B, T, V).loss, ref.map((a) => a.slice()), which[k], 1e-6);
            assertAllClose(await grads[k].data(), fd, { rtol: 1e-3, atol: 2e-5, label: `d${['x', 'W', 'bias', 'A', 'B'][which[k]]}` });
          }
          tf.dispose([...rowSumsSum, ...grads]);
          expect(tf.memory().numTensors).toBe(before);             // nothing from the chunks outlives the call
          tf.dispose([x, W, bias, A, Bl, keep, labels]);
        });
      }
    }
  }

  it('logitsChunkRows: balanced chunks within the budget', () => {
    expect(logitsChunkRows(1024, 49152, 32 * 2 ** 20)).toBe(147);     // 7 chunks of <= 170 rows (170 x 49152 x 4 B <= 32 MiB)
    expect(logitsChunkRows(10, 4, 1)).toBe(1);
    expect(logitsChunkRows(10, 4, 1000)).toBe(10);
    expect(logitsChunkRows(10, 4, 16 * 4)).toBe(4);                   // at most 4 rows -> 3 chunks -> 4, 4, 2
  });
});

describeEachBackend('CausalLM.loss in chunks equals maskedCrossEntropy(forward(ids))', () => {
  const ids = [[1, 5, 2, 9, 3, 7], [4, 4, 10, 0, 6, 8]];
  const labels = [[-100, 5, 2, -100, 3, 7], [-100, 4, 10, 0, 6, -100]];
  const configs = {
    'llama, tied embeddings, full fine-tuning': { json: { model_type: 'llama', vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, tie_word_embeddings: true }, lora: undefined },
    'gpt2 (tied), LoRA on c_attn and lm_head with dropout': { json: { model_type: 'gpt2', vocab_size: 11, n_positions: 16, n_embd: 8, n_layer: 1, n_head: 2 }, lora: { r: 2, alpha: 4, dropout: 0.25, targetModules: ['c_attn', 'lm_head'] } },
    'llama (tied), LoRA on q_proj, modules_to_save lm_head': { json: { model_type: 'llama', vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, tie_word_embeddings: true }, lora: { r: 2, alpha: 4, targetModules: ['q_proj'], modulesToSave: ['lm_head'] } },
  } as const;
  for (const [name, { json, lora }] of Object.entries(configs)) {
    it(name, async () => {
      const model = CausalLM.create(parseConfig(json), { seed: 3 });
      if (lora) applyLora(model, { ...lora, targetModules: [...lora.targetModules], modulesToSave: 'modulesToSave' in lora ? [...lora.modulesToSave] : undefined, seed: 1, init: 'gaussian' } as never);
      // B starts at 0 (PEFT): make it random so every LoRA gradient is non-trivial.
      let s = 100;
      for (const lin of model.linearModules().values()) if (lin.lora) lin.lora.B.assign(tf.tensor(Float32Array.from(R.randArray(lin.lora.B.size, s++, 0.5)), lin.lora.B.shape));
      const params = model.trainableParams();
      const vars = [...params.values()];
      const inputIds = tf.tensor2d(ids, [2, 6], 'int32'), lab = tf.tensor2d(labels, [2, 6], 'int32');
      const opts = { training: true, seed: 11 };
      const whole = tf.variableGrads(() => maskedCrossEntropy(model.forward(inputIds, opts), lab).loss, vars);
      // 2 rows per chunk (11 x 2 x 4 B = 88 B): six chunks over the 12 rows.
      const chunked = tf.variableGrads(() => model.loss(inputIds, lab, { ...opts, logitsChunkBytes: 88 }).loss, vars);
      assertAllClose(await chunked.value.data(), await whole.value.data(), { rtol: 1e-5, atol: 1e-6, label: 'loss' });
      expect(Object.keys(chunked.grads).sort()).toEqual(Object.keys(whole.grads).sort());
      for (const [n, v] of params) assertAllClose(await chunked.grads[v.name].data(), await whole.grads[v.name].data(), { rtol: 1e-4, atol: 1e-6, label: n });
      tf.dispose([whole.value, chunked.value, ...Object.values(whole.grads), ...Object.values(chunked.grads), inputIds, lab]);
      model.dispose();
    });
  }
});
