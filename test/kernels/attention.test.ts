import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { fusedAttention, fusedSegmentAttention, fusedAttentionPacked, stockAttention, segmentMask } from '../../kernels/attention.js';
import { stockOps } from '../../src/nn/ops.js';
import { attentionRef } from '../../kernels/attention_ref.js';
import { attends } from '../../src/nn/visibility.js';
import { startGpuMeter } from '../../kernels/counters.js';
import { randn, read } from './util.js';

const TOL = { rtol: 2e-4, atol: 2e-5 };

/** [B, X, Y, D] -> [B, Y, X, D] on plain arrays. */
function swap12(a: Float32Array, B: number, X: number, Y: number, D: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let b = 0; b < B; b++) for (let x = 0; x < X; x++) for (let y = 0; y < Y; y++) for (let d = 0; d < D; d++) {
    out[((b * Y + y) * X + x) * D + d] = a[((b * X + x) * Y + y) * D + d];
  }
  return out;
}

interface SegCase { B: number; H: number; Hkv: number; T: number; D: number; seg: number[][] | null }

/** The model's rule (src/nn/visibility.ts): j <= i within the segment; a padding query (0) sees only itself; null = causal. */
function allowedOf(seg: number[][] | null) {
  return (b: number, i: number, j: number) => (seg === null ? attends(i, j) : attends(i, j, seg[b][i], seg[b][j]));
}
const SEG_CASES: SegCase[] = [
  { B: 2, H: 4, Hkv: 2, T: 5, D: 7, seg: [[1, 1, 2, 2, 0], [1, 1, 1, 1, 1]] },   // packed + padding, GQA
  { B: 1, H: 3, Hkv: 3, T: 1, D: 5, seg: [[1]] },                              // T = 1
  { B: 1, H: 2, Hkv: 1, T: 70, D: 67, seg: [Array.from({ length: 70 }, (_, t) => (t < 40 ? 1 : t < 66 ? 2 : 0))] },  // T not a multiple of the 32-row block, odd D
  { B: 2, H: 2, Hkv: 2, T: 33, D: 8, seg: null },                                // causal only, one row past a block
  { B: 1, H: 4, Hkv: 1, T: 40, D: 16, seg: [Array.from({ length: 40 }, (_, t) => (t < 3 ? 0 : t < 35 ? 1 : 2))] },  // leading padding, MQA
];

describe('fused attention [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const c of SEG_CASES) {
    for (const layout of ['bhtd', 'bthd'] as const) {
      it(`segment mask, ${layout}: matches the float64 reference (B=${c.B} H=${c.H} Hkv=${c.Hkv} T=${c.T} D=${c.D})`, async () => {
        const { B, H, Hkv, T, D, seg } = c;
        const qd = randn(B * H * T * D, 1, 1.5), kd = randn(B * Hkv * T * D, 2, 1.5), vd = randn(B * Hkv * T * D, 3), dOd = randn(B * H * T * D, 4);
        const allowed = allowedOf(seg);
        const scale = 1 / Math.sqrt(D);
        const ref = attentionRef(qd, kd, vd, dOd, B, H, Hkv, T, T, D, scale, allowed);
        const tr = (a: Float32Array | Float64Array, X: number): Float32Array => (layout === 'bhtd' ? Float32Array.from(a) : swap12(Float32Array.from(a), B, X, T, D));
        const shape = (X: number) => (layout === 'bhtd' ? [B, X, T, D] : [B, T, X, D]);
        const q = tf.tensor4d(tr(qd, H), shape(H) as any), k = tf.tensor4d(tr(kd, Hkv), shape(Hkv) as any), v = tf.tensor4d(tr(vd, Hkv), shape(Hkv) as any);
        const dO = tf.tensor4d(tr(dOd, H), shape(H) as any);
        const segT = seg === null ? null : tf.tensor2d(seg, [B, T], 'int32');
        const f = (a: tf.Tensor, b: tf.Tensor, cc: tf.Tensor) => fusedSegmentAttention(a as tf.Tensor4D, b as tf.Tensor4D, cc as tf.Tensor4D, segT, { layout });
        assertAllClose(await read(f(q, k, v)), tr(ref.out, H), { ...TOL, label: 'out' });
        const meter = startGpuMeter();
        const [dq, dk, dv] = tf.grads((a: tf.Tensor, b: tf.Tensor, cc: tf.Tensor) => tf.sum(tf.mul(f(a, b, cc), dO)))([q, k, v]);
        const { dispatches } = meter.stop();
        assertAllClose(await read(dq), tr(ref.dq, H), { ...TOL, label: 'dq' });
        assertAllClose(await read(dk), tr(ref.dk, Hkv), { ...TOL, label: 'dk' });
        assertAllClose(await read(dv), tr(ref.dv, Hkv), { ...TOL, label: 'dv' });
        // attention 1 + 2, mul/sum forward and backward around it: at most 7.
        expect(dispatches).toBeLessThanOrEqual(7);
      });
    }
  }

  for (const c of [SEG_CASES[0], SEG_CASES[2], SEG_CASES[3]]) {
    it(`packed qkv [B, T, (H + 2 Hkv) D] equals the stock split + attention + merge (B=${c.B} H=${c.H} Hkv=${c.Hkv} T=${c.T} D=${c.D}), 3 attention dispatches`, async () => {
      const { B, H, Hkv, T, D, seg } = c;
      const W = (H + 2 * Hkv) * D;
      const qkv = tf.tensor3d(randn(B * T * W, 21, 1.5), [B, T, W]);
      const dO = tf.tensor3d(randn(B * T * H * D, 22), [B, T, H * D]);
      const segT = seg === null ? null : tf.tensor2d(seg, [B, T], 'int32');
      const scale = 1 / Math.sqrt(D);
      const loss = (f: typeof fusedAttentionPacked) => (x: tf.Tensor) => tf.sum(tf.mul(f(x as tf.Tensor3D, H, Hkv, segT, scale), dO));
      assertAllClose(await read(fusedAttentionPacked(qkv, H, Hkv, segT, scale)), await read(stockOps.attentionPacked(qkv, H, Hkv, segT, scale)), { ...TOL, label: 'out' });
      const meter = startGpuMeter();
      const gf = tf.grad(loss(fusedAttentionPacked))(qkv);
      const { dispatches } = meter.stop();
      const gs = tf.grad(loss(stockOps.attentionPacked))(qkv);
      assertAllClose(await read(gf), await read(gs), { ...TOL, label: 'dqkv' });
      // forward 1 + backward 2, plus mul, sum and their gradients around it.
      expect(dispatches).toBeLessThanOrEqual(7);
    });
  }

  it('additive mask (ops.attention drop-in) equals the stock composition, GQA, padded rows included', async () => {
    const B = 2, H = 4, Hkv = 2, T = 6, D = 9;
    const seg = tf.tensor2d([[1, 1, 1, 2, 2, 0], [1, 1, 1, 1, 0, 0]], [B, T], 'int32');
    const mask = segmentMask(seg);
    const q = tf.tensor4d(randn(B * H * T * D, 5), [B, H, T, D]);
    const k = tf.tensor4d(randn(B * Hkv * T * D, 6), [B, Hkv, T, D]);
    const v = tf.tensor4d(randn(B * Hkv * T * D, 7), [B, Hkv, T, D]);
    const dO = tf.tensor4d(randn(B * H * T * D, 8), [B, H, T, D]);
    const scale = 0.37;
    const fused = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(fusedAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask, scale), dO));
    const stock = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(stockAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask, scale), dO));
    assertAllClose(await read(fusedAttention(q, k, v, mask, scale)), await read(stockAttention(q, k, v, mask, scale)), { ...TOL, label: 'out' });
    const gf = tf.grads(fused)([q, k, v]);
    const gs = tf.grads(stock)([q, k, v]);
    for (let i = 0; i < 3; i++) assertAllClose(await read(gf[i]), await read(gs[i]), { ...TOL, label: `grad ${'qkv'[i]}` });
  });

  it('additive mask with more keys than queries (a KV cache) and a shared [1, 1, T, S] mask', async () => {
    const B = 2, H = 2, T = 3, S = 7, D = 4;
    const md = new Float32Array(T * S);
    for (let i = 0; i < T; i++) for (let j = 0; j < S; j++) md[i * S + j] = j <= S - T + i ? 0 : -1e9;
    const mask = tf.tensor4d(md, [1, 1, T, S]);
    const q = tf.tensor4d(randn(B * H * T * D, 9), [B, H, T, D]);
    const k = tf.tensor4d(randn(B * H * S * D, 10), [B, H, S, D]);
    const v = tf.tensor4d(randn(B * H * S * D, 11), [B, H, S, D]);
    assertAllClose(await read(fusedAttention(q, k, v, mask, 0.5)), await read(stockAttention(q, k, v, mask, 0.5)), { ...TOL, label: 'out' });
    const loss = (f: typeof fusedAttention) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(f(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, mask, 0.5)));
    const gf = tf.grads(loss(fusedAttention))([q, k, v]);
    const gs = tf.grads(loss(stockAttention))([q, k, v]);
    for (let i = 0; i < 3; i++) assertAllClose(await read(gf[i]), await read(gs[i]), { ...TOL, label: `grad ${'qkv'[i]}` });
  });
});

describe('fused attention fallback [cpu]', () => {
  beforeAll(async () => { await useBackend('cpu'); });
  it('segment attention off WebGPU matches the reference (a padding row sees itself)', async () => {
    const B = 1, H = 2, Hkv = 1, T = 4, D = 3;
    const seg = [[1, 1, 2, 0]];
    const qd = randn(B * H * T * D, 1), kd = randn(B * Hkv * T * D, 2), vd = randn(B * Hkv * T * D, 3);
    const ref = attentionRef(qd, kd, vd, new Float32Array(B * H * T * D), B, H, Hkv, T, T, D, 1 / Math.sqrt(D), allowedOf(seg));
    const out = fusedSegmentAttention(tf.tensor4d(qd, [B, H, T, D]), tf.tensor4d(kd, [B, Hkv, T, D]), tf.tensor4d(vd, [B, Hkv, T, D]), tf.tensor2d(seg, [B, T], 'int32'));
    assertAllClose(await read(out), ref.out, { ...TOL, label: 'out' });
  });
});
