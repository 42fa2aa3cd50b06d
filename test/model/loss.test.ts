/** Masked cross-entropy: hand-computed values, masking, per-row sums and countTrained. */
import * as tf from '@tensorflow/tfjs';
import { describe, it, beforeAll, expect } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { maskedCrossEntropy, countTrained } from '../../src/train/loss.js';

const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');

describe('maskedCrossEntropy (CPU)', () => {
  beforeAll(async () => { await useBackend('cpu'); });

  it('uniform logits cost ln(V) per trained position; rows summed and counted after the shift', async () => {
    const V = 7;
    const { loss, rowSums, rowCounts } = maskedCrossEntropy(tf.zeros([2, 4, V]) as tf.Tensor3D, int2d([[5, 1, -100, 2], [0, -100, -100, 3]]));
    expect((await loss.data())[0]).toBeCloseTo(Math.log(7), 6);
    // Row 0 trains labels[1] and labels[3] (labels[0] is never predicted): 2 positions; row 1 trains labels[3]: 1.
    assertAllClose(await rowCounts.data(), [2, 1], { label: 'rowCounts' });
    assertAllClose(await rowSums.data(), [2 * Math.log(7), Math.log(7)], { rtol: 1e-6, label: 'rowSums' });
  });

  it('a hand-computed case: logits [0, ln 3] with target 1 costs ln(4/3)', async () => {
    const logits = tf.tensor3d([[[0, Math.log(3)], [5, 5]]]);     // position 0 predicts labels[1] = 1
    const { loss } = maskedCrossEntropy(logits, int2d([[-100, 1]]));
    expect((await loss.data())[0]).toBeCloseTo(Math.log(4 / 3), 6);
  });

  it('positions whose target is -100 do not change the loss or its gradient elsewhere', async () => {
    const labels = int2d([[1, 2, -100, 0]]);   // targets: t0 -> 2, t1 -> -100, t2 -> 0, t3 -> none
    const base = tf.randomNormal([1, 4, 3], 0, 1, 'float32', 1) as tf.Tensor3D;
    const changed = tf.tidy(() => {
      const noise = tf.mul(tf.randomNormal([1, 4, 3], 0, 100, 'float32', 2), tf.tensor3d([[[0], [1], [0], [1]]]));  // only t1 and t3
      return tf.add(base, noise) as tf.Tensor3D;
    });
    const grad = tf.grad((x: tf.Tensor) => maskedCrossEntropy(x as tf.Tensor3D, labels).loss);
    expect((await maskedCrossEntropy(changed, labels).loss.data())[0]).toBeCloseTo((await maskedCrossEntropy(base, labels).loss.data())[0], 5);
    const g = await grad(changed).array() as number[][][];
    expect(g[0][1].map(Math.abs)).toEqual([0, 0, 0]);
    expect(g[0][3].map(Math.abs)).toEqual([0, 0, 0]);
    assertAllClose(g[0].flat(), (await grad(base).array() as number[][][])[0].flat(), { atol: 1e-6, label: 'grad' });
  });

  it('is stable for huge logits (log-sum-exp)', async () => {
    const { loss } = maskedCrossEntropy(tf.tensor3d([[[1000, 0], [0, 0]]]), int2d([[-100, 1]]));
    expect((await loss.data())[0]).toBeCloseTo(1000, 3);
  });

  it('refuses labels that do not match the logits', () => {
    expect(() => maskedCrossEntropy(tf.zeros([1, 3, 2]) as tf.Tensor3D, int2d([[1, 1]]))).toThrow(/labels \[1,2\] must be \[1, 3\]/);
  });
});

describe('countTrained', () => {
  const cases: Array<{ labels: number[][]; total: number; emptyRows: number[] }> = [
    { labels: [[1, 2, 3]], total: 2, emptyRows: [] },
    { labels: [[7, -100, -100], [1, 2, -100]], total: 1, emptyRows: [0] },   // a label at t=0 is never predicted
    { labels: [[-100, -100], [-100, -100]], total: 0, emptyRows: [0, 1] },
    { labels: [[-100, 4, -100, 5]], total: 2, emptyRows: [] },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.labels)} -> total ${c.total}, empty rows ${JSON.stringify(c.emptyRows)}`, () => {
      const B = c.labels.length, T = c.labels[0].length;
      expect(countTrained(Int32Array.from(c.labels.flat()), B, T)).toEqual({ total: c.total, emptyRows: c.emptyRows });
    });
  }
  it('refuses a length that is not B*T', () => {
    expect(() => countTrained(new Int32Array(5), 2, 3)).toThrow(/5 entries, expected B\*T = 2\*3/);
  });
});
