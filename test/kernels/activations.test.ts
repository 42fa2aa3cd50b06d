import * as tf from '@tensorflow/tfjs';
import { describe, it, beforeAll } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { fusedGelu, fusedBiasGelu, fusedSwiglu, stockGelu, stockSwiglu } from '../../kernels/activations.js';
import { geluTanhRef, geluTanhGradRef, swigluRef } from '../../kernels/activations_ref.js';
import { randn, read } from './util.js';

const TOL = { rtol: 1e-4, atol: 1e-5 };
const SHAPES = [[3, 37], [2, 5, 300], [1]];

describe('fused activations [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const shape of SHAPES) {
    const n = shape.reduce((a, b) => a * b, 1), C = shape[shape.length - 1];
    it(`gelu (tanh) and bias+gelu match the reference and the stock ops, shape [${shape}]`, async () => {
      const xd = randn(n, n, 6), bd = randn(C, 3), dyd = randn(n, 4);
      const x = tf.tensor(xd, shape), b = tf.tensor1d(bd), dy = tf.tensor(dyd, shape);
      assertAllClose(await read(fusedGelu(x, 'tanh')), Array.from(xd, geluTanhRef), { ...TOL, label: 'gelu' });
      const gx = await read(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(fusedGelu(a, 'tanh'), dy)))(x));
      assertAllClose(gx, Array.from(xd, (v, i) => geluTanhGradRef(v) * dyd[i]), { ...TOL, label: 'dgelu' });
      assertAllClose(gx, await read(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(stockGelu(a, 'tanh'), dy)))(x)), { ...TOL, label: 'dgelu vs stock' });
      const z = Array.from(xd, (v, i) => v + bd[i % C]);
      assertAllClose(await read(fusedBiasGelu(x, b)), z.map(geluTanhRef), { ...TOL, label: 'bias gelu' });
      const [dx, db] = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(fusedBiasGelu(a, c as tf.Tensor1D), dy)))([x, b]);
      const dxRef = z.map((v, i) => geluTanhGradRef(v) * dyd[i]);
      const dbRef = new Float64Array(C);
      dxRef.forEach((v, i) => { dbRef[i % C] += v; });
      assertAllClose(await read(dx), dxRef, { ...TOL, label: 'dx' });
      assertAllClose(await read(db), dbRef, { ...TOL, label: 'dbias' });
    });

    it(`swiglu matches the reference and the stock op, shape [${shape}]`, async () => {
      const gd = randn(n, 1, 5), ud = randn(n, 2), dyd = randn(n, 3);
      const g = tf.tensor(gd, shape), u = tf.tensor(ud, shape), dy = tf.tensor(dyd, shape);
      const ref = Array.from(gd, (v, i) => swigluRef(v, ud[i]));
      assertAllClose(await read(fusedSwiglu(g, u)), ref.map((r) => r.y), { ...TOL, label: 'y' });
      const [dg, du] = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(fusedSwiglu(a, c), dy)))([g, u]);
      assertAllClose(await read(dg), ref.map((r, i) => r.dgate * dyd[i]), { ...TOL, label: 'dgate' });
      assertAllClose(await read(du), ref.map((r, i) => r.dup * dyd[i]), { ...TOL, label: 'dup' });
      const [sg, su] = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(stockSwiglu(a, c), dy)))([g, u]);
      assertAllClose(await read(dg), await read(sg), { ...TOL, label: 'dgate vs stock' });
      assertAllClose(await read(du), await read(su), { ...TOL, label: 'dup vs stock' });
    });
  }
});
