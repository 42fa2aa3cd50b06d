/**
 * The float64 reference of every layer for the model tests, in plain loops over Float64Array,
 * written from the transformers modeling code (not from src/nn). Row-major arrays; shapes in
 * comments. Used for forward comparisons and for central finite differences of gradients. An op
 * that has a kernel reference (kernels/*_ref.ts: linear, norms, activations, attention,
 * cross-entropy) is that one reference; the rest (embedding, heads, RoPE) is written here.
 */

import { mulberry32 } from '../../src/utils/random.js';
import { attends } from '../../src/nn/visibility.js';
import { linearRef } from '../../kernels/linear_ref.js';
import { normRef } from '../../kernels/norm_ref.js';
import { erfRef, geluErfRef, geluTanhRef } from '../../kernels/activations_ref.js';
import { attentionRef } from '../../kernels/attention_ref.js';
import { maskedCrossEntropyRef } from '../../kernels/cross_entropy_ref.js';

export type F64 = Float64Array;

/** Deterministic pseudo-random numbers (mulberry32) in [-scale, scale). */
export function randArray(n: number, seed: number, scale = 1): F64 {
  const next = mulberry32(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

/** y [N, out] = x [N, in] · W (+ b); W is [in, out] ('in_out') or [out, in] ('out_in'). */
export function linear64(x: F64, N: number, inF: number, outF: number, W: F64, layout: 'in_out' | 'out_in', b?: F64): F64 {
  return linearRef(x, N, inF, outF, W, layout, b);
}

/** torch.nn.LayerNorm over the last axis, biased variance. x [N, C]. */
export function layerNorm64(x: F64, N: number, C: number, g: F64, b: F64, eps: number): F64 {
  return normRef('layer', x, g, b, new Float64Array(N * C), N, C, eps).y;
}

/** LlamaRMSNorm: x / sqrt(mean(x²) + eps) * w. x [N, C]. */
export function rmsNorm64(x: F64, N: number, C: number, w: F64, eps: number): F64 {
  return normRef('rms', x, w, null, new Float64Array(N * C), N, C, eps).y;
}

export const erf64 = erfRef;

export function gelu64(x: F64, approximate: 'tanh' | 'erf'): F64 {
  return x.map(approximate === 'erf' ? geluErfRef : geluTanhRef);
}

export function silu64(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** Embedding lookup: W [V, C], ids [N] -> [N, C]. */
export function embedding64(W: F64, C: number, ids: ArrayLike<number>): F64 {
  const y = new Float64Array(ids.length * C);
  for (let n = 0; n < ids.length; n++) for (let c = 0; c < C; c++) y[n * C + c] = W[ids[n] * C + c];
  return y;
}

/** [B, T, H*D] -> [B, H, T, D] */
export function splitHeads64(x: F64, B: number, T: number, H: number, D: number): F64 {
  const y = new Float64Array(x.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
    y[((b * H + h) * T + t) * D + d] = x[((b * T + t) * H + h) * D + d];
  }
  return y;
}

/** [B, H, T, D] -> [B, T, H*D] */
export function mergeHeads64(x: F64, B: number, T: number, H: number, D: number): F64 {
  const y = new Float64Array(x.length);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
    y[((b * T + t) * H + h) * D + d] = x[((b * H + h) * T + t) * D + d];
  }
  return y;
}

/** Rotate-half RoPE (HF apply_rotary_pos_emb). x [B, H, T, D], pos [B, T]. */
export function rope64(x: F64, B: number, H: number, T: number, D: number, pos: ArrayLike<number>, theta: number): F64 {
  const y = new Float64Array(x.length), half = D / 2;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const o = ((b * H + h) * T + t) * D;
    for (let d = 0; d < D; d++) {
      const ang = pos[b * T + t] / Math.pow(theta, (2 * (d % half)) / D);
      const rot = d < half ? -x[o + d + half] : x[o + d - half];
      y[o + d] = x[o + d] * Math.cos(ang) + rot * Math.sin(ang);
    }
  }
  return y;
}

/**
 * softmax(q kᵀ / sqrt(D) + mask) v with GQA (query head h reads kv head floor(h / (H / Hkv))).
 * q [B, H, T, D], k/v [B, Hkv, S, D]; query t sits at absolute index offset + t. Visible: the
 * rule of src/nn/visibility.ts (causal; with segments, inside the query's segment; a padding
 * query sees only itself).
 */
export function attention64(q: F64, k: F64, v: F64, B: number, H: number, Hkv: number, T: number, S: number, D: number,
  segQ?: ArrayLike<number>, segK?: ArrayLike<number>, offset = S - T): F64 {
  const allowed = (b: number, t: number, j: number) => (segQ && segK ? attends(offset + t, j, segQ[b * T + t], segK[b * S + j]) : attends(offset + t, j));
  return attentionRef(q, k, v, new Float64Array(B * H * T * D), B, H, Hkv, T, S, D, 1 / Math.sqrt(D), allowed).out;
}

/** HF causal-LM loss: logits [B, T, V] at t predict labels[t + 1]; -100 ignored; mean over trained positions. Also per-row sums and counts. */
export function maskedCrossEntropy64(logits: F64, labels: ArrayLike<number>, B: number, T: number, V: number): { loss: number; rowSums: number[]; rowCounts: number[] } {
  const r = maskedCrossEntropyRef(logits, labels, B, T, V);
  return { loss: r.loss, rowSums: Array.from(r.rowSums), rowCounts: Array.from(r.rowCounts) };
}

/** Central differences of a scalar function of several float64 arrays, for every element of `inputs[which]`. */
export function numericGrad(f: (xs: F64[]) => number, xs: F64[], which: number, h = 1e-5): F64 {
  const x = xs[which];
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i];
    x[i] = keep + h;
    const up = f(xs);
    x[i] = keep - h;
    const down = f(xs);
    x[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/** sum(out * R): turns a layer's output into the scalar whose gradient is checked. */
export function dot64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
