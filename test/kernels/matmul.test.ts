/**
 * kernels/matmul.ts (matmul2d, columnSum) and kernels/linear.ts (fusedLinear, LoRA included)
 * against their float64 references (kernels/linear_ref.ts), on every backend: on WebGPU with
 * sizes that are multiples of 8 the WGSL programs run; elsewhere (and for other sizes) tf.matMul.
 */
import * as tf from '@tensorflow/tfjs';
import { it } from 'vitest';
import { describeEachBackend, assertAllClose } from '../helpers/backends.js';
import { matmul2d, columnSum } from '../../kernels/matmul.js';
import { fusedLinear } from '../../kernels/linear.js';
import { matmulRef, columnSumRef, linearRef } from '../../kernels/linear_ref.js';
import { randn, read } from './util.js';

describeEachBackend('matmul2d and columnSum equal the float64 reference', () => {
  // [M, K, N]: multiples of 8 (the WGSL program) and not (the tf.matMul fallback).
  for (const [M, K, N] of [[16, 12, 24], [8, 5, 8], [7, 6, 9]]) {
    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        it(`[${M}, ${K}] x [${K}, ${N}], transposeA ${transposeA}, transposeB ${transposeB}, with bias`, async () => {
          const a = randn(M * K, 1), b = randn(K * N, 2), bias = randn(N, 3);
          const ta = tf.tensor2d(a, transposeA ? [K, M] : [M, K]), tb = tf.tensor2d(b, transposeB ? [N, K] : [K, N]), tbias = tf.tensor1d(bias);
          const y = matmul2d(ta, tb, transposeA, transposeB, tbias);
          assertAllClose(await read(y), matmulRef(a, b, M, K, N, transposeA, transposeB, bias), { rtol: 1e-5, atol: 1e-5, label: 'matmul2d' });
          const s = columnSum(ta);
          const [rows, cols] = ta.shape;
          assertAllClose(await read(s), columnSumRef(a, rows, cols), { rtol: 1e-5, atol: 1e-5, label: 'columnSum' });
          tf.dispose([ta, tb, tbias, y, s]);
        });
      }
    }
  }
});

describeEachBackend('fusedLinear equals the float64 linear reference', () => {
  const N = 16, IN = 8, OUT = 24, R = 8;
  for (const layout of ['in_out', 'out_in'] as const) {
    it(`${layout}, bias and LoRA (scaling 2, a dropped-out input)`, async () => {
      const x = randn(N * IN, 4), W = randn(IN * OUT, 5), b = randn(OUT, 6), A = randn(R * IN, 7), B = randn(OUT * R, 8);
      const dropped = x.map((v, i) => (i % 3 ? v * 1.5 : 0));
      const t2 = (v: Float32Array, shape: [number, number]) => tf.tensor2d(v, shape);
      const lora = { A: t2(A, [R, IN]), B: t2(B, [OUT, R]), scaling: 2, input: t2(dropped, [N, IN]) };
      const [tx, tw, tb] = [t2(x, [N, IN]), t2(W, layout === 'in_out' ? [IN, OUT] : [OUT, IN]), tf.tensor1d(b)];
      const plain = fusedLinear(tx, tw, layout === 'out_in', tb);
      const withLora = fusedLinear(tx, tw, layout === 'out_in', tb, lora);
      assertAllClose(await read(plain), linearRef(x, N, IN, OUT, W, layout, b), { rtol: 1e-5, atol: 1e-5, label: 'y' });
      assertAllClose(await read(withLora), linearRef(x, N, IN, OUT, W, layout, b, { A, B, r: R, scaling: 2, input: dropped }), { rtol: 1e-5, atol: 1e-5, label: 'y with LoRA' });
      tf.dispose([tx, tw, tb, plain, withLora, lora.A, lora.B, lora.input]);
    });
  }
});
