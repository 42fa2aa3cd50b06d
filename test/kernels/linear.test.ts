import * as tf from '@tensorflow/tfjs';
import { it, expect } from 'vitest';
import { describeEachBackend, assertAllClose } from '../helpers/backends.js';
import { fusedLinear } from '../../kernels/linear.js';
import { matmul2d, columnSum } from '../../kernels/matmul.js';
import { stockOps } from '../../src/nn/ops.js';
import { randn, read } from './util.js';

// Multiples of 8, so the WebGPU path runs kernels/matmul.ts for every product (forward and backward).
const N = 16, IN = 8, OUT = 24, R = 8;
const t = (shape: number[], seed: number) => tf.tensor(randn(shape.reduce((a, b) => a * b, 1), seed), shape);

describeEachBackend('fusedLinear equals the stock ops.linear', () => {
  for (const transposeB of [false, true]) {
    it(`no LoRA, with bias (transposeB ${transposeB}): value and gradients of x, W, bias`, async () => {
      const x = t([N, IN], 1), w = t(transposeB ? [OUT, IN] : [IN, OUT], 2), b = t([OUT], 3), dy = t([N, OUT], 4);
      const f = (impl: typeof fusedLinear) => tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(impl(a as tf.Tensor2D, c as tf.Tensor2D, transposeB, d as tf.Tensor1D), dy)))([x, w, b]);
      const got = f(fusedLinear), want = f(stockOps.linear);
      for (let i = 0; i < 3; i++) assertAllClose(await read(got[i]), await read(want[i]), { rtol: 1e-5, atol: 1e-5, label: ['dx', 'dW', 'db'][i] });
      assertAllClose(await read(fusedLinear(x as tf.Tensor2D, w as tf.Tensor2D, transposeB, b as tf.Tensor1D)), await read(stockOps.linear(x as tf.Tensor2D, w as tf.Tensor2D, transposeB, b as tf.Tensor1D)), { rtol: 1e-5, atol: 1e-6, label: 'y' });
    });

    for (const dropped of [false, true]) {
      it(`LoRA over a frozen base (transposeB ${transposeB}, ${dropped ? 'dropout input' : 'same input'}): value and gradients of x, A, B`, async () => {
        const w = tf.variable(t(transposeB ? [OUT, IN] : [IN, OUT], 5), false), b = tf.variable(t([OUT], 6), false);
        const x = t([N, IN], 7), A = t([R, IN], 8), B = t([OUT, R], 9), dy = t([N, OUT], 10);
        const keep = tf.tensor2d(Array.from({ length: N * IN }, (_, i) => (i % 3 ? 1.5 : 0)), [N, IN]);   // a fixed "dropout" mask
        const f = (impl: typeof fusedLinear) => tf.grads((a: tf.Tensor, la: tf.Tensor, lb: tf.Tensor) => {
          const input = (dropped ? tf.mul(a, keep) : a) as tf.Tensor2D;
          return tf.sum(tf.mul(impl(a as tf.Tensor2D, w as tf.Tensor2D, transposeB, b as tf.Tensor1D, { A: la as tf.Tensor2D, B: lb as tf.Tensor2D, scaling: 2, input }), dy));
        })([x, A, B]);
        const got = f(fusedLinear), want = f(stockOps.linear);
        for (let i = 0; i < 3; i++) assertAllClose(await read(got[i]), await read(want[i]), { rtol: 1e-5, atol: 1e-5, label: ['dx', 'dA', 'dB'][i] });
        const lora = { A: A as tf.Tensor2D, B: B as tf.Tensor2D, scaling: 2, input: x as tf.Tensor2D };
        assertAllClose(await read(fusedLinear(x as tf.Tensor2D, w as tf.Tensor2D, transposeB, b as tf.Tensor1D, lora)),
          await read(stockOps.linear(x as tf.Tensor2D, w as tf.Tensor2D, transposeB, b as tf.Tensor1D, lora)), { rtol: 1e-5, atol: 1e-6, label: 'y' });
        tf.dispose([w, b]);
      });
    }
  }

  it('LoRA over a trainable base falls back to the stock entry (gradient of W too)', async () => {
    const w = tf.variable(t([IN, OUT], 11), true), x = t([N, IN], 12), A = t([R, IN], 13), B = t([OUT, R], 14);
    const lora = { A: A as tf.Tensor2D, B: B as tf.Tensor2D, scaling: 0.5, input: x as tf.Tensor2D };
    const { grads } = tf.variableGrads(() => tf.sum(fusedLinear(x as tf.Tensor2D, w as tf.Tensor2D, false, undefined, lora)) as tf.Scalar, [w]);
    const { grads: want } = tf.variableGrads(() => tf.sum(stockOps.linear(x as tf.Tensor2D, w as tf.Tensor2D, false, undefined, lora)) as tf.Scalar, [w]);
    expect(Object.keys(grads)).toEqual([w.name]);
    assertAllClose(await read(grads[w.name]), await read(want[w.name]), { rtol: 1e-5, atol: 1e-6, label: 'dW' });
    w.dispose();
  });
});

describeEachBackend('matmul2d equals a float64 reference', () => {
  // [M, K, N]: multiples of 8 (the kernel), and odd sizes (the tf.matMul fallback).
  for (const [M, K, Nn] of [[16, 5, 24], [8, 33, 8], [7, 4, 9]]) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
      it(`[${M}, ${K}] x [${K}, ${Nn}], transposeA ${ta}, transposeB ${tb}, with bias`, async () => {
        const a = t(ta ? [K, M] : [M, K], 20), b = t(tb ? [Nn, K] : [K, Nn], 21), bias = t([Nn], 22);
        const [A, B, Bi] = [await read(a), await read(b), await read(bias)];
        const want = new Float64Array(M * Nn);
        for (let i = 0; i < M; i++) for (let j = 0; j < Nn; j++) {
          let s = Bi[j];
          for (let k = 0; k < K; k++) s += A[ta ? k * M + i : i * K + k] * B[tb ? j * K + k : k * Nn + j];
          want[i * Nn + j] = s;
        }
        const y = matmul2d(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb, bias as tf.Tensor1D);
        expect(y.shape).toEqual([M, Nn]);
        assertAllClose(await read(y), want, { rtol: 1e-5, atol: 1e-5, label: 'y' });
      });
    }
  }
});

describeEachBackend('columnSum equals a float64 reference', () => {
  for (const [rows, cols] of [[1, 3], [37, 70], [300, 129]]) {
    it(`[${rows}, ${cols}]`, async () => {
      const x = t([rows, cols], 30);
      const X = await read(x);
      const want = new Float64Array(cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[c] += X[r * cols + c];
      assertAllClose(await read(columnSum(x as tf.Tensor2D)), want, { rtol: 1e-5, atol: 1e-5, label: 'sum' });
    });
  }
});
