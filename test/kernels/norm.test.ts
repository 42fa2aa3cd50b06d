import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { fusedLayerNorm, fusedRmsNorm, fusedAddLayerNorm, fusedAddRmsNorm, stockLayerNorm, stockRmsNorm } from '../../kernels/norm.js';
import { normRef } from '../../kernels/norm_ref.js';
import { startGpuMeter } from '../../kernels/counters.js';
import { randn, read } from './util.js';

const SHAPES: number[][] = [[2, 3, 37], [5, 300], [1, 1, 128], [1, 7], [70, 9]];   // [70, 9]: more rows than one workgroup
const TOL = { rtol: 2e-4, atol: 2e-5 };

describe('fused LayerNorm / RMSNorm [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const kind of ['layer', 'rms'] as const) {
    for (const shape of SHAPES) {
      it(`${kind}: forward and gradients match the float64 reference and the stock ops, shape [${shape}]`, async () => {
        const C = shape[shape.length - 1];
        const rows = shape.reduce((a, b) => a * b, 1) / C;
        const xd = randn(rows * C, C + rows, 2).map((v, i) => v + (i % 3));   // non-zero means
        const gd = randn(C, 2 * C).map((v) => 1 + 0.5 * v);
        const bd = randn(C, 3 * C);
        const dyd = randn(rows * C, 7);
        const ref = normRef(kind, xd, gd, kind === 'layer' ? bd : null, dyd, rows, C, 1e-5);
        const x = tf.tensor(xd, shape), gamma = tf.tensor1d(gd), beta = tf.tensor1d(bd), dy = tf.tensor(dyd, shape);
        const fused = kind === 'layer'
          ? (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => fusedLayerNorm(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5)
          : (a: tf.Tensor, g: tf.Tensor) => fusedRmsNorm(a, g as tf.Tensor1D, 1e-5);
        const stock = kind === 'layer'
          ? (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => stockLayerNorm(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5)
          : (a: tf.Tensor, g: tf.Tensor) => stockRmsNorm(a, g as tf.Tensor1D, 1e-5);
        const args = kind === 'layer' ? [x, gamma, beta] : [x, gamma];
        assertAllClose(await read(fused(x, gamma, beta)), ref.y, { ...TOL, label: 'y' });
        const meter = startGpuMeter();
        const gf = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(fused(a[0], a[1], a[2]), dy)))(args);
        const { dispatches } = meter.stop();
        const gs = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(stock(a[0], a[1], a[2]), dy)))(args);
        assertAllClose(await read(gf[0]), ref.dx, { ...TOL, label: 'dx' });
        assertAllClose(await read(gf[1]), ref.dgamma, { ...TOL, label: 'dgamma' });
        if (kind === 'layer') assertAllClose(await read(gf[2]), ref.dbeta, { ...TOL, label: 'dbeta' });
        for (let i = 0; i < gf.length; i++) assertAllClose(await read(gf[i]), await read(gs[i]), { ...TOL, label: `stock grad ${i}` });
        // forward + mul + sum + their grads + 1 norm backward: the norm itself is one dispatch each way.
        expect(dispatches).toBeLessThanOrEqual(6);
        tf.dispose([x, gamma, beta, dy, ...gf, ...gs]);
      });
    }
  }

  for (const kind of ['layer', 'rms'] as const) {
    it(`${kind}: residual add fused in; both addends receive dsum + dnorm`, async () => {
      const shape = [3, 2, 45], C = 45, rows = 6;
      const xd = randn(rows * C, 1), rd = randn(rows * C, 2), gd = randn(C, 3).map((v) => 1 + v), bd = randn(C, 4);
      const dyd = randn(rows * C, 5), dsd = randn(rows * C, 6);
      const hd = xd.map((v, i) => v + rd[i]);
      const ref = normRef(kind, hd, gd, kind === 'layer' ? bd : null, dyd, rows, C, 1e-6);
      const x = tf.tensor(xd, shape), r = tf.tensor(rd, shape), gamma = tf.tensor1d(gd), beta = tf.tensor1d(bd);
      const dy = tf.tensor(dyd, shape), ds = tf.tensor(dsd, shape);
      const f = (a: tf.Tensor, b: tf.Tensor, g: tf.Tensor) => {
        const out = kind === 'layer' ? fusedAddLayerNorm(a, b, g as tf.Tensor1D, beta, 1e-6) : fusedAddRmsNorm(a, b, g as tf.Tensor1D, 1e-6);
        return tf.add(tf.sum(tf.mul(out.y, dy)), tf.sum(tf.mul(out.sum, ds)));
      };
      const out = kind === 'layer' ? fusedAddLayerNorm(x, r, gamma, beta, 1e-6) : fusedAddRmsNorm(x, r, gamma, 1e-6);
      assertAllClose(await read(out.sum), hd, { label: 'sum' });
      assertAllClose(await read(out.y), ref.y, { ...TOL, label: 'y' });
      const [gx, gr, gg] = tf.grads(f)([x, r, gamma]);
      const expected = ref.dx.map((v, i) => v + dsd[i]);
      assertAllClose(await read(gx), expected, { ...TOL, label: 'dx' });
      assertAllClose(await read(gr), expected, { ...TOL, label: 'dresidual' });
      assertAllClose(await read(gg), ref.dgamma, { ...TOL, label: 'dgamma' });
    });
  }
});

describe('norm fallback [cpu]', () => {
  beforeAll(async () => { await useBackend('cpu'); });
  it('uses the stock composition off WebGPU', async () => {
    const xd = randn(2 * 9, 1), gd = randn(9, 2), bd = randn(9, 3);
    const ref = normRef('layer', xd, gd, bd, new Float64Array(18), 2, 9, 1e-5);
    assertAllClose(await read(fusedLayerNorm(tf.tensor2d(xd, [2, 9]), tf.tensor1d(gd), tf.tensor1d(bd), 1e-5)), ref.y, { ...TOL, label: 'y' });
  });
});
