import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { fusedMaskedCrossEntropy, fusedCrossEntropy, stockMaskedCrossEntropy, stockCrossEntropy } from '../../kernels/cross_entropy.js';
import { maskedCrossEntropyRef, rowCrossEntropyRef } from '../../kernels/cross_entropy_ref.js';
import { startGpuMeter } from '../../kernels/counters.js';
import { randn, rng, read } from './util.js';

/** Labels with about a third ignored, and row `emptyRow` entirely ignored. */
function makeLabels(B: number, T: number, V: number, seed: number, emptyRow = -1): Int32Array {
  const r = rng(seed);
  const labels = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) labels[i] = r() < 0.33 ? -100 : Math.floor(r() * V);
  if (emptyRow >= 0) labels.fill(-100, emptyRow * T, (emptyRow + 1) * T);
  return labels;
}

const CASES: Array<{ B: number; T: number; V: number; emptyRow?: number }> = [
  { B: 2, T: 5, V: 37 },
  { B: 3, T: 4, V: 515, emptyRow: 1 },
  { B: 1, T: 1, V: 37 },          // T = 1: nothing to predict
  { B: 2, T: 3, V: 7, emptyRow: 0 },
];

describe('fused masked cross-entropy [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const { B, T, V, emptyRow = -1 } of CASES) {
    it(`matches the float64 reference, values and gradient (B=${B} T=${T} V=${V}${emptyRow >= 0 ? `, row ${emptyRow} fully masked` : ''})`, async () => {
      const logitsData = randn(B * T * V, 11 + V, 4);
      const labelsData = makeLabels(B, T, V, 5 + T, emptyRow);
      const dRowSumsData = randn(B, 3);
      const ref = maskedCrossEntropyRef(logitsData, labelsData, B, T, V, 0.7, dRowSumsData);
      const logits = tf.tensor3d(logitsData, [B, T, V]);
      const labels = tf.tensor2d(labelsData, [B, T], 'int32');
      const dRowSums = tf.tensor1d(dRowSumsData);
      const out = fusedMaskedCrossEntropy(logits, labels);
      assertAllClose([(await out.loss.data())[0]], [ref.loss], { rtol: 1e-5, atol: 1e-5, label: 'loss' });
      assertAllClose(await read(out.rowSums), ref.rowSums, { rtol: 1e-5, atol: 1e-4, label: 'rowSums' });
      assertAllClose(await read(out.rowCounts), ref.rowCounts, { label: 'rowCounts' });
      // Gradient of 0.7 * loss + <dRowSums, rowSums>: both upstream paths at once.
      const g = tf.grad((x: tf.Tensor) => {
        const r = fusedMaskedCrossEntropy(x as tf.Tensor3D, labels);
        return tf.add(tf.mul(r.loss, 0.7), tf.sum(tf.mul(r.rowSums, dRowSums)));
      })(logits);
      const gd = await read(g);
      expect(gd.every(Number.isFinite)).toBe(true);
      assertAllClose(gd, ref.dlogits, { rtol: 1e-4, atol: 1e-6, label: 'dlogits' });
      // Rows with an ignored target have exactly zero gradient.
      for (let r = 0; r < B * T; r++) {
        const t = r % T;
        const ignored = t + 1 >= T || labelsData[r + 1] < 0;
        if (ignored) for (let v = 0; v < V; v++) expect(gd[r * V + v]).toBe(0);
      }
      tf.dispose([logits, labels, dRowSums, out.loss, out.rowSums, out.rowCounts, g]);
    });
  }

  it('matches the stock-op path (loss and gradient) and uses 3 dispatches', async () => {
    const B = 2, T = 6, V = 515;
    const logits = tf.tensor3d(randn(B * T * V, 99, 3), [B, T, V]);
    const labels = tf.tensor2d(makeLabels(B, T, V, 17), [B, T], 'int32');
    const meter = startGpuMeter();
    const fused = tf.valueAndGrad((x: tf.Tensor) => fusedMaskedCrossEntropy(x as tf.Tensor3D, labels).loss)(logits);
    const { dispatches } = meter.stop();
    const stock = tf.valueAndGrad((x: tf.Tensor) => stockMaskedCrossEntropy(x as tf.Tensor3D, labels).loss)(logits);
    assertAllClose(await read(fused.value), await read(stock.value), { rtol: 1e-5, label: 'loss' });
    assertAllClose(await read(fused.grad), await read(stock.grad), { rtol: 1e-4, atol: 1e-7, label: 'grad' });
    expect(dispatches).toBe(3);
    tf.dispose([logits, labels, fused.value, fused.grad, stock.value, stock.grad]);
  });

  it('per-row cross-entropy matches the reference and the stock op', async () => {
    const N = 7, V = 37;
    const logitsData = randn(N * V, 5, 5);
    const r = rng(8);
    const targetsData = Int32Array.from({ length: N }, () => Math.floor(r() * V));
    const dyData = randn(N, 9);
    const ref = rowCrossEntropyRef(logitsData, targetsData, N, V, dyData);
    const logits = tf.tensor2d(logitsData, [N, V]);
    const targets = tf.tensor1d(targetsData, 'int32');
    const dy = tf.tensor1d(dyData);
    const f = (x: tf.Tensor) => tf.sum(tf.mul(fusedCrossEntropy(x as tf.Tensor2D, targets), dy));
    const s = (x: tf.Tensor) => tf.sum(tf.mul(stockCrossEntropy(x as tf.Tensor2D, targets), dy));
    assertAllClose(await read(fusedCrossEntropy(logits, targets)), ref.nll, { rtol: 1e-5, atol: 1e-5, label: 'nll' });
    const gf = await read(tf.grad(f)(logits));
    assertAllClose(gf, ref.dlogits, { rtol: 1e-4, atol: 1e-6, label: 'dlogits' });
    assertAllClose(gf, await read(tf.grad(s)(logits)), { rtol: 1e-4, atol: 1e-6, label: 'stock dlogits' });
  });
});

describe('masked cross-entropy fallback [cpu]', () => {
  beforeAll(async () => { await useBackend('cpu'); });
  it('falls back to the stock composition, which matches the reference', async () => {
    const B = 2, T = 4, V = 37;
    const logitsData = randn(B * T * V, 1, 2);
    const labelsData = makeLabels(B, T, V, 2, 1);
    const ref = maskedCrossEntropyRef(logitsData, labelsData, B, T, V);
    const logits = tf.tensor3d(logitsData, [B, T, V]);
    const labels = tf.tensor2d(labelsData, [B, T], 'int32');
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => fusedMaskedCrossEntropy(x as tf.Tensor3D, labels).loss)(logits);
    assertAllClose([(await value.data())[0]], [ref.loss], { rtol: 1e-5, label: 'loss' });
    assertAllClose(await read(grad), ref.dlogits, { rtol: 1e-4, atol: 1e-6, label: 'dlogits' });
  });
});
