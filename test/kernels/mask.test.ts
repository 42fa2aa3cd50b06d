/**
 * kernels/mask.ts (the attention mask in one dispatch) and the stock ops.attentionMask against
 * the float64 reference built from the one visibility rule (src/nn/visibility.ts), and that rule
 * against a hand-written table.
 */
import * as tf from '@tensorflow/tfjs';
import { it, expect } from 'vitest';
import { describeEachBackend } from '../helpers/backends.js';
import { fusedAttentionMask } from '../../kernels/mask.js';
import { attentionMaskRef } from '../../kernels/mask_ref.js';
import { stockOps, MASK_VALUE } from '../../src/nn/ops.js';
import { attends } from '../../src/nn/visibility.js';
import { startGpuMeter } from '../../kernels/counters.js';

it('attends: causal, inside the segment, padding sees only itself (hand-written table)', () => {
  // Segments of one packed row of 5 positions: [1, 1, 2, 2, 0]. Row i = query, column j = key.
  const seg = [1, 1, 2, 2, 0];
  const want = [
    [1, 0, 0, 0, 0],
    [1, 1, 0, 0, 0],
    [0, 0, 1, 0, 0],
    [0, 0, 1, 1, 0],
    [0, 0, 0, 0, 1],
  ];
  const got = seg.map((si, i) => seg.map((sj, j) => (attends(i, j, si, sj) ? 1 : 0)));
  expect(got).toEqual(want);
  expect([0, 1, 2, 3].map((j) => attends(2, j))).toEqual([true, true, true, false]);   // causal only
});

const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');

// [segQ rows, segK rows, offset]: self-attention (S = T), packed + padding, and a KV-cache step (offset > 0).
const CASES: Array<{ name: string; segQ: number[][] | null; segK: number[][] | null; T: number; S: number; offset: number }> = [
  { name: 'causal only', segQ: null, segK: null, T: 5, S: 5, offset: 0 },
  { name: 'causal, cached keys', segQ: null, segK: null, T: 2, S: 6, offset: 4 },
  { name: 'packed segments + padding', segQ: [[1, 1, 2, 2, 0], [1, 1, 1, 1, 1]], segK: [[1, 1, 2, 2, 0], [1, 1, 1, 1, 1]], T: 5, S: 5, offset: 0 },
  { name: 'segments with cached keys', segQ: [[2, 0], [1, 1]], segK: [[1, 1, 2, 2, 0], [1, 1, 1, 1, 1]], T: 2, S: 5, offset: 3 },
];

describeEachBackend('the attention mask equals the reference', (backend) => {
  for (const c of CASES) {
    it(`${c.name}: stock and ${backend === 'webgpu' ? 'the WGSL kernel' : 'the fused entry (stock fallback)'}`, async () => {
      const B = c.segQ?.length ?? 1;
      const want = attentionMaskRef(c.segQ?.flat() ?? null, c.segK?.flat() ?? null, B, c.T, c.S, c.offset, MASK_VALUE);
      const [q, k] = [c.segQ, c.segK].map((s) => (s ? int2d(s) : null));
      const stock = stockOps.attentionMask(q, k, c.offset, c.T, c.S);
      const meter = backend === 'webgpu' ? startGpuMeter() : undefined;
      const fused = fusedAttentionMask(q, k, c.offset, c.T, c.S);
      const reading = await meter?.stop();
      expect(stock.shape).toEqual([c.segQ ? B : 1, 1, c.T, c.S]);
      expect(fused.shape).toEqual(stock.shape);
      const values = async (t: tf.Tensor) => Array.from(await t.data(), (v) => v + 0);   // -0 (the stock 0 * MASK_VALUE) read as 0
      expect(await values(stock)).toEqual(Array.from(want));
      expect(await values(fused)).toEqual(Array.from(want));
      if (reading) expect(reading.dispatches).toBe(1);      // the kernel ran, in one dispatch
      tf.dispose([stock, fused, ...(q ? [q] : []), ...(k ? [k] : [])]);
    });
  }
});
