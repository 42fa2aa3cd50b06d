/**
 * An independent float64 reference of every layer, in plain loops over Float64Array, written
 * from the transformers modeling code (not from src/nn). Row-major arrays; shapes in comments.
 * Used for forward comparisons and for central finite differences of gradients.
 */

import { mulberry32 } from '../../src/utils/random.js';

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
  const y = new Float64Array(N * outF);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[n * inF + i] * (layout === 'in_out' ? W[i * outF + o] : W[o * inF + i]);
      y[n * outF + o] = s;
    }
  }
  return y;
}

/** torch.nn.LayerNorm over the last axis, biased variance. x [N, C]. */
export function layerNorm64(x: F64, N: number, C: number, g: F64, b: F64, eps: number): F64 {
  const y = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[n * C + c];
    mean /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c] - mean) ** 2;
    v /= C;
    const r = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - mean) * r * g[c] + b[c];
  }
  return y;
}

/** LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w. x [N, C]. */
export function rmsNorm64(x: F64, N: number, C: number, w: F64, eps: number): F64 {
  const y = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let ms = 0;
    for (let c = 0; c < C; c++) ms += x[n * C + c] ** 2;
    const r = 1 / Math.sqrt(ms / C + eps);
    for (let c = 0; c < C; c++) y[n * C + c] = x[n * C + c] * r * w[c];
  }
  return y;
}

/** erf by its Maclaurin series (exact to ~1e-12 for |x| < 4). */
export function erf64(x: number): number {
  if (Math.abs(x) >= 4) return Math.sign(x);
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export function gelu64(x: F64, approximate: 'tanh' | 'erf'): F64 {
  return x.map((v) => approximate === 'erf'
    ? 0.5 * v * (1 + erf64(v / Math.SQRT2))
    : 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
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
 * q [B, H, T, D], k/v [B, Hkv, S, D]; query t sits at absolute index offset + t. Visible: key
 * j <= offset + t, and with segments segK[j] == segQ[t] != 0. A padding query (segment 0)
 * attends to its own position only (WebTune's documented convention).
 */
export function attention64(q: F64, k: F64, v: F64, B: number, H: number, Hkv: number, T: number, S: number, D: number,
  segQ?: ArrayLike<number>, segK?: ArrayLike<number>, offset = S - T): F64 {
  const y = new Float64Array(B * H * T * D), rep = H / Hkv, scale = 1 / Math.sqrt(D);
  const scores = new Float64Array(S);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    const kh = Math.floor(h / rep);
    const visible: boolean[] = [];
    for (let j = 0; j < S; j++) {
      let ok = j <= offset + t;
      if (segQ && segK) ok = segQ[b * T + t] === 0 ? j === offset + t : ok && segK[b * S + j] === segQ[b * T + t];
      visible.push(ok);
    }
    let max = -Infinity;
    for (let j = 0; j < S; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += q[((b * H + h) * T + t) * D + d] * k[((b * Hkv + kh) * S + j) * D + d];
      scores[j] = s * scale;
      if (visible[j] && scores[j] > max) max = scores[j];
    }
    let z = 0;
    const p = new Float64Array(S);
    for (let j = 0; j < S; j++) {
      p[j] = visible[j] ? Math.exp(scores[j] - max) : 0;
      z += p[j];
    }
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (let j = 0; j < S; j++) s += (p[j] / z) * v[((b * Hkv + kh) * S + j) * D + d];
      y[((b * H + h) * T + t) * D + d] = s;
    }
  }
  return y;
}

/** HF causal-LM loss: logits [B, T, V] at t predict labels[t + 1]; -100 ignored; mean over trained positions. Also per-row sums and counts. */
export function maskedCrossEntropy64(logits: F64, labels: ArrayLike<number>, B: number, T: number, V: number): { loss: number; rowSums: number[]; rowCounts: number[] } {
  const rowSums: number[] = [], rowCounts: number[] = [];
  for (let b = 0; b < B; b++) {
    let s = 0, c = 0;
    for (let t = 0; t + 1 < T; t++) {
      const y = labels[b * T + t + 1];
      if (y === -100) continue;
      const o = (b * T + t) * V;
      let max = -Infinity;
      for (let i = 0; i < V; i++) max = Math.max(max, logits[o + i]);
      let z = 0;
      for (let i = 0; i < V; i++) z += Math.exp(logits[o + i] - max);
      s += Math.log(z) + max - logits[o + y];
      c++;
    }
    rowSums.push(s);
    rowCounts.push(c);
  }
  const total = rowCounts.reduce((a, b) => a + b, 0);
  return { loss: rowSums.reduce((a, b) => a + b, 0) / total, rowSums, rowCounts };
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
