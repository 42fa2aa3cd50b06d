/**
 * Every layer against the float64 reference (ref64.ts): the tfjs forward against the reference
 * forward, and tfjs autograd gradients against central finite differences of the reference, on
 * the CPU backend. One row of the table per layer configuration.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, it, beforeAll, expect } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import {
  Linear, Embedding, LayerNorm, RMSNorm, GPT2Attention, LlamaAttention, GPT2MLP, LlamaMLP,
  buildAttentionMask, ropeTables, stockOps, type LayerContext, type Ops,
} from '../../src/nn/index.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import * as R from './ref64.js';

type F64 = Float64Array;

interface Input { name: string; shape: number[]; data: F64 }
interface Case {
  name: string;
  inputs: Input[];                               // differentiable float inputs
  tf: (v: tf.Variable[]) => tf.Tensor;           // the layer under test
  ref: (x: F64[]) => F64;                        // the float64 reference
}

let seed = 1;
const input = (name: string, shape: number[], scale = 1): Input => ({ name, shape, data: R.randArray(shape.reduce((a, b) => a * b, 1), seed++, scale) });
const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
const lin = (name: string, inF: number, outF: number, layout: 'in_out' | 'out_in', w: tf.Variable, b?: tf.Variable) =>
  new Linear({ name, inFeatures: inF, outFeatures: outF, layout, weight: w, bias: b });

// The layers run the stock ops, the reference every other engine's ops are tested against.
const STOCK: LayerContext = { ops: stockOps };

// Shapes shared by the attention rows.
const B = 2, T = 5;
const SEG = [[1, 1, 1, 2, 2], [1, 1, 1, 1, 0]];       // a packed row, and a row with one padding position
const POS = [[0, 1, 2, 0, 1], [3, 4, 5, 6, 7]];

const cases: Case[] = [
  {
    name: 'Linear in_out (Conv1D) with bias',
    inputs: [input('x', [3, 5]), input('W', [5, 4]), input('b', [4])],
    tf: ([x, W, b]) => lin('l', 5, 4, 'in_out', W, b).apply(x, STOCK),
    ref: ([x, W, b]) => R.linear64(x, 3, 5, 4, W, 'in_out', b),
  },
  {
    name: 'Linear out_in (nn.Linear) without bias, 3-D input',
    inputs: [input('x', [2, 3, 5]), input('W', [4, 5])],
    tf: ([x, W]) => lin('l', 5, 4, 'out_in', W).apply(x, STOCK),
    ref: ([x, W]) => R.linear64(x, 6, 5, 4, W, 'out_in'),
  },
  {
    name: 'Linear with a LoRA branch (scaling 2, eval mode)',
    inputs: [input('x', [3, 5]), input('W', [4, 5]), input('A', [2, 5]), input('Bm', [4, 2])],
    tf: ([x, W, A, Bm]) => {
      const l = lin('l', 5, 4, 'out_in', W);
      l.lora = { A, B: Bm, scaling: 2, dropout: 0.5 };
      return l.apply(x, { ops: stockOps, training: false });
    },
    ref: ([x, W, A, Bm]) => {
      const base = R.linear64(x, 3, 5, 4, W, 'out_in');
      const low = R.linear64(R.linear64(x, 3, 5, 2, A, 'out_in'), 3, 2, 4, Bm, 'out_in');
      return base.map((v, i) => v + 2 * low[i]);
    },
  },
  {
    name: 'LayerNorm',
    inputs: [input('x', [4, 6], 2), input('g', [6]), input('b', [6])],
    tf: ([x, g, b]) => new LayerNorm('ln', g, b, 1e-5).apply(x, STOCK),
    ref: ([x, g, b]) => R.layerNorm64(x, 4, 6, g, b, 1e-5),
  },
  {
    name: 'RMSNorm',
    inputs: [input('x', [4, 6], 2), input('w', [6])],
    tf: ([x, w]) => new RMSNorm('n', w, 1e-6).apply(x, STOCK),
    ref: ([x, w]) => R.rmsNorm64(x, 4, 6, w, 1e-6),
  },
  {
    name: 'Embedding (repeated ids accumulate gradient)',
    inputs: [input('W', [7, 3])],
    tf: ([W]) => new Embedding('wte', 7, 3, W).apply(int2d([[1, 4, 1], [6, 0, 4]])),
    ref: ([W]) => R.embedding64(W, 3, [1, 4, 1, 6, 0, 4]),
  },
  ...(['tanh', 'erf'] as const).map((approximate): Case => ({
    name: `GPT-2 MLP, gelu ${approximate}`,
    inputs: [input('x', [2, 3, 4], 2), input('Wfc', [4, 8]), input('bfc', [8]), input('Wp', [8, 4]), input('bp', [4])],
    tf: ([x, Wfc, bfc, Wp, bp]) => new GPT2MLP(lin('c_fc', 4, 8, 'in_out', Wfc, bfc), lin('c_proj', 8, 4, 'in_out', Wp, bp), approximate).apply(x, STOCK),
    ref: ([x, Wfc, bfc, Wp, bp]) => R.linear64(R.gelu64(R.linear64(x, 6, 4, 8, Wfc, 'in_out', bfc), approximate), 6, 8, 4, Wp, 'in_out', bp),
  })),
  {
    name: 'Llama MLP (SwiGLU)',
    inputs: [input('x', [2, 3, 4], 2), input('Wg', [6, 4]), input('Wu', [6, 4]), input('Wd', [4, 6])],
    tf: ([x, Wg, Wu, Wd]) => new LlamaMLP(lin('g', 4, 6, 'out_in', Wg), lin('u', 4, 6, 'out_in', Wu), lin('d', 6, 4, 'out_in', Wd)).apply(x, STOCK),
    ref: ([x, Wg, Wu, Wd]) => {
      const g = R.linear64(x, 6, 4, 6, Wg, 'out_in'), u = R.linear64(x, 6, 4, 6, Wu, 'out_in');
      return R.linear64(g.map((v, i) => R.silu64(v) * u[i]), 6, 6, 4, Wd, 'out_in');
    },
  },
  {
    name: 'GPT-2 attention with packed segments and padding',
    inputs: [input('x', [B, T, 8]), input('Wa', [8, 24]), input('ba', [24]), input('Wp', [8, 8]), input('bp', [8])],
    tf: ([x, Wa, ba, Wp, bp]) => {
      const seg = int2d(SEG);
      const attn = new GPT2Attention(lin('c_attn', 8, 24, 'in_out', Wa, ba), lin('c_proj', 8, 8, 'in_out', Wp, bp), 2);
      return attn.apply(x as tf.Tensor as tf.Tensor3D, { ops: stockOps, mask: buildAttentionMask(seg, seg, 0, T, T), training: false }).out;
    },
    ref: ([x, Wa, ba, Wp, bp]) => {
      const qkv = R.linear64(x, B * T, 8, 24, Wa, 'in_out', ba);                 // [B*T, 24]
      const part = (p: number) => R.splitHeads64(Float64Array.from({ length: B * T * 8 }, (_, i) => qkv[Math.floor(i / 8) * 24 + p * 8 + (i % 8)]), B, T, 2, 4);
      const y = R.attention64(part(0), part(1), part(2), B, 2, 2, T, T, 4, SEG.flat(), SEG.flat());
      return R.linear64(R.mergeHeads64(y, B, T, 2, 4), B * T, 8, 8, Wp, 'in_out', bp);
    },
  },
  ...[{ seg: undefined, label: 'causal' }, { seg: SEG, label: 'packed segments' }].map(({ seg, label }): Case => ({
    name: `Llama attention, GQA 4:2 + RoPE (theta 100), ${label}, positions given`,
    inputs: [input('x', [B, T, 8]), input('Wq', [16, 8]), input('Wk', [8, 8]), input('Wv', [8, 8]), input('Wo', [8, 16])],
    tf: ([x, Wq, Wk, Wv, Wo]) => {
      const s = seg ? int2d(seg) : null;
      const attn = new LlamaAttention(lin('q', 8, 16, 'out_in', Wq), lin('k', 8, 8, 'out_in', Wk), lin('v', 8, 8, 'out_in', Wv), lin('o', 16, 8, 'out_in', Wo), 4, 2, 4);
      return attn.apply(x as tf.Tensor as tf.Tensor3D, { ops: stockOps, mask: buildAttentionMask(s, s, 0, T, T), rope: ropeTables(int2d(POS), 4, 100), training: false }).out;
    },
    ref: ([x, Wq, Wk, Wv, Wo]) => {
      const pos = POS.flat();
      const q = R.rope64(R.splitHeads64(R.linear64(x, B * T, 8, 16, Wq, 'out_in'), B, T, 4, 4), B, 4, T, 4, pos, 100);
      const k = R.rope64(R.splitHeads64(R.linear64(x, B * T, 8, 8, Wk, 'out_in'), B, T, 2, 4), B, 2, T, 4, pos, 100);
      const v = R.splitHeads64(R.linear64(x, B * T, 8, 8, Wv, 'out_in'), B, T, 2, 4);
      const y = R.attention64(q, k, v, B, 4, 2, T, T, 4, seg?.flat(), seg?.flat());
      return R.linear64(R.mergeHeads64(y, B, T, 4, 4), B * T, 16, 8, Wo, 'out_in');
    },
  })),
  {
    name: 'masked cross-entropy (shifted, -100 ignored)',
    inputs: [input('logits', [2, 4, 5], 3)],
    tf: ([lg]) => maskedCrossEntropy(lg as tf.Tensor as tf.Tensor3D, int2d([[3, -100, 2, 4], [0, 1, -100, -100]])).loss,
    ref: ([lg]) => Float64Array.of(R.maskedCrossEntropy64(lg, [3, -100, 2, 4, 0, 1, -100, -100], 2, 4, 5).loss),
  },
];

describe('layers against a float64 reference (CPU)', () => {
  beforeAll(async () => { await useBackend('cpu'); });

  for (const c of cases) {
    it(`${c.name}: forward and gradients`, async () => {
      const xs = c.inputs.map((i) => Float64Array.from(i.data));
      const vars = c.inputs.map((i) => tf.variable(tf.tensor(Float32Array.from(i.data), i.shape)));
      // The float64 reference sees the float32-rounded inputs, so only the arithmetic differs.
      const xs32 = xs.map((x) => Float64Array.from(Float32Array.from(x)));
      const refOut = c.ref(xs32);
      const Rw = R.randArray(refOut.length, 999);
      const { value, grads } = tf.variableGrads(() => {
        const out = c.tf(vars);
        expect(out.size).toBe(refOut.length);
        return tf.sum(tf.mul(out, tf.tensor(Float32Array.from(Rw), out.shape)));
      }, vars);
      const out = tf.tidy(() => c.tf(vars));
      assertAllClose(await out.data(), refOut, { rtol: 1e-4, atol: 1e-5, label: `${c.name} forward` });
      expect(Math.abs((await value.data())[0] - R.dot64(refOut, Rw))).toBeLessThan(1e-4 * (1 + Math.abs(R.dot64(refOut, Rw))));
      for (let i = 0; i < c.inputs.length; i++) {
        const numeric = R.numericGrad((x) => R.dot64(c.ref(x), Rw), xs32, i);
        const got = await grads[vars[i].name].data();
        assertAllClose(got, numeric, { rtol: 2e-3, atol: 2e-4, label: `${c.name} d/d${c.inputs[i].name}` });
      }
      out.dispose(); value.dispose();
      Object.values(grads).forEach((g) => g.dispose());
      vars.forEach((v) => v.dispose());
    });
  }
});

describe('attention mask and ops table', () => {
  beforeAll(async () => { await useBackend('cpu'); });

  it('mask: query i sees key j iff j <= i, same segment, segment != 0 (hand-written table)', async () => {
    const seg = int2d([[1, 1, 2, 2, 0]]);
    const m = await buildAttentionMask(seg, seg, 0, 5, 5).array();
    const seen = m[0][0].map((row) => row.map((v) => (v === 0 ? 1 : 0)));
    expect(seen).toEqual([
      [1, 0, 0, 0, 0],
      [1, 1, 0, 0, 0],
      [0, 0, 1, 0, 0],
      [0, 0, 1, 1, 0],
      [0, 0, 0, 0, 1],   // a padding query sees only itself
    ]);
    const causal = await buildAttentionMask(null, null, 2, 2, 4).array();   // 2 new queries after 2 cached keys
    expect(causal[0][0].map((row) => row.map((v) => (v === 0 ? 1 : 0)))).toEqual([[1, 1, 1, 0], [1, 1, 1, 1]]);
  });

  it('padding queries attend to themselves only: output = own value, no gradient to q', async () => {
    const q = tf.variable(tf.randomNormal([1, 1, 2, 4], 0, 1, 'float32', 3));
    const k = tf.randomNormal([1, 1, 2, 4], 0, 1, 'float32', 4), v = tf.randomNormal([1, 1, 2, 4], 0, 1, 'float32', 5);
    const seg = int2d([[0, 0]]);
    const { value, grads } = tf.variableGrads(() => tf.sum(stockOps.attention(q as tf.Tensor as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, buildAttentionMask(seg, seg, 0, 2, 2), 0.5)), [q]);
    expect((await value.data())[0]).toBeCloseTo((await tf.sum(v).data())[0], 5);
    expect(Array.from(await grads[q.name].data())).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('a layer calls the ops table of the context it is given, and only that one', () => {
    let calls = 0;
    const counting: Ops = { ...stockOps, rmsNorm: (x, w, eps) => { calls++; return stockOps.rmsNorm(x, w, eps); } };
    const n = new RMSNorm('n', tf.variable(tf.ones([3])), 1e-6);
    tf.tidy(() => n.apply(tf.ones([1, 3]), { ops: counting }));
    tf.tidy(() => n.apply(tf.ones([1, 3]), STOCK));
    expect(calls).toBe(1);
  });
});
