/**
 * Attention programs, flash-attention style: scores and probabilities live only in workgroup
 * memory, a chunk of WG keys (or queries) at a time; no [T, S] matrix is ever written.
 *
 *   forward   one workgroup per (b, h, query i): online softmax over key chunks,
 *             out = softmax(q·kᵀ·scale + mask)·v, and the row's max and log-sum (for backward).
 *   backward  two dispatches:
 *             dq      one workgroup per (b, h, i): p_ij recomputed from the saved row max and
 *                     log-sum, dS_ij = p_ij (dO_i·v_j - delta_i) with delta_i = dO_i·O_i = Σ_j p_ij dO_i·v_j
 *                     (accumulated in the same pass, so O is not read), dq_i = scale Σ_j dS_ij k_j;
 *                     writes (max, log-sum, delta) per row for the next dispatch.
 *             dk, dv  one workgroup per (b, kv head, key j), summing over every query head of the
 *                     group (GQA) and every query i: dv_j = Σ p_ij dO_i, dk_j = scale Σ dS_ij q_i.
 *
 * Masks:
 *   'additive'  mask [Bm, 1, T, S] added to the scores (ops.attention's contract; Bm = 1 or B).
 *   'segments'  seg int32 [B, T] (S = T): i sees j iff j <= i, seg[j] == seg[i] and seg[i] != 0.
 *               Keys j > i are never visited; a padding query (seg 0) gets out = 0.
 *
 * Layouts: 'bhtd' ([B, H, T, D], ops.attention) or 'bthd' ([B, T, H, D], the layout a linear
 * layer produces, so no transpose is needed); q, k, v and out share it. Head h reads kv head
 * h / (H / Hkv). D is at most WG * PER (a compile-time constant).
 */
import type { KernelProgram, UniformType } from './runtime.js';

export type MaskMode = 'additive' | 'segments';

export const ATTN_UNIFORMS: Array<[string, UniformType]> = [
  ['B', 'u32'], ['H', 'u32'], ['Hkv', 'u32'], ['T', 'u32'], ['S', 'u32'], ['D', 'u32'], ['scale', 'f32'],
  ['qsB', 'u32'], ['qsH', 'u32'], ['qsT', 'u32'], ['ksB', 'u32'], ['ksH', 'u32'], ['ksT', 'u32'], ['maskBS', 'u32'],
];

/** Uniform values in ATTN_UNIFORMS order. */
export function attnUniforms(layout: 'bhtd' | 'bthd', B: number, H: number, Hkv: number, T: number, S: number, D: number, scale: number, maskBatches: number): number[] {
  const q = layout === 'bhtd' ? [H * T * D, T * D, D] : [T * H * D, D, H * D];
  const k = layout === 'bhtd' ? [Hkv * S * D, S * D, D] : [S * Hkv * D, D, Hkv * D];
  return [B, H, Hkv, T, S, D, scale, ...q, ...k, maskBatches > 1 ? T * S : 0];
}

/** WGSL: index helpers, visibility and the score bias of (b, i, j). */
function common(mode: MaskMode): string {
  return `
fn qOff(b: u32, h: u32, i: u32) -> u32 { return b * uniforms.qsB + h * uniforms.qsH + i * uniforms.qsT; }
fn kOff(b: u32, h: u32, j: u32) -> u32 { return b * uniforms.ksB + h * uniforms.ksH + j * uniforms.ksT; }
${mode === 'additive'
    ? `fn bias(b: u32, i: u32, j: u32) -> f32 { return mask[b * uniforms.maskBS + i * uniforms.S + j]; }
fn visible(b: u32, i: u32, j: u32) -> bool { return true; }`
    : `fn bias(b: u32, i: u32, j: u32) -> f32 { return 0.0; }
fn visible(b: u32, i: u32, j: u32) -> bool {
  let si = mask[b * uniforms.T + i];
  return j <= i && si != 0 && mask[b * uniforms.T + j] == si;
}`}
var<workgroup> red: array<f32, WG>;
fn reduceMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) { if (lid < k) { red[lid] = max(red[lid], red[lid + k]); } workgroupBarrier(); }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn reduceSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) { if (lid < k) { red[lid] = red[lid] + red[lid + k]; } workgroupBarrier(); }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;
}

/** Number of keys query i visits: all S (additive) or 0..i (segments; none for padding). */
function keyEnd(mode: MaskMode): string {
  return mode === 'additive' ? `let jEnd = uniforms.S;` : `
  if (lid == 0u) { rowEnd = select(0u, i + 1u, mask[b * uniforms.T + i] != 0); }
  let jEnd = workgroupUniformLoad(&rowEnd);`;
}

export function attentionForwardProgram(mode: MaskMode, per: number, outShape: number[], rows: number, wg: number): KernelProgram {
  return {
    shaderKey: `webtune_attn_fwd_${mode}_${per}`,
    variableNames: ['q', 'k', 'v', 'mask'],
    outputs: [{ name: 'result', shape: outShape }, { name: 'lse', shape: [rows, 2] }],
    uniforms: ATTN_UNIFORMS,
    workgroupSize: wg,
    workgroups: rows,
    getUserCode: () => `
const PER: u32 = ${per}u;
var<workgroup> qs: array<f32, ${wg * per}>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> rowEnd: u32;
${common(mode)}
fn main(row: u32, lid: u32) {
  let T = uniforms.T; let D = uniforms.D;
  let i = row % T;
  let bh = row / T;
  let h = bh % uniforms.H;
  let b = bh / uniforms.H;
  let hk = h / (uniforms.H / uniforms.Hkv);
  let qo = qOff(b, h, i);
  for (var d = lid; d < D; d = d + WG) { qs[d] = q[qo + d] * uniforms.scale; }
  workgroupBarrier();
  ${keyEnd(mode)}
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, PER>;
  for (var j0 = 0u; j0 < jEnd; j0 = j0 + WG) {
    let j = j0 + lid;
    var s = -3.0e38;
    var ok = false;
    if (j < jEnd) {
      ok = visible(b, i, j);
      if (ok) {
        let ko = kOff(b, hk, j);
        var dot = 0.0;
        for (var d = 0u; d < D; d = d + 1u) { dot = dot + qs[d] * k[ko + d]; }
        s = dot + bias(b, i, j);
      }
    }
    let mNew = max(m, reduceMax(s, lid));
    let p = select(0.0, exp(s - mNew), ok);
    ps[lid] = p;
    let alpha = exp(m - mNew);
    l = l * alpha + reduceSum(p, lid);
    let n = min(WG, jEnd - j0);
    for (var r = 0u; r < PER; r = r + 1u) {
      let d = lid + r * WG;
      if (d < D) {
        var a = acc[r] * alpha;
        for (var jj = 0u; jj < n; jj = jj + 1u) { a = a + ps[jj] * v[kOff(b, hk, j0 + jj) + d]; }
        acc[r] = a;
      }
    }
    m = mNew;
    workgroupBarrier();
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var r = 0u; r < PER; r = r + 1u) {
    let d = lid + r * WG;
    if (d < D) { result[qo + d] = acc[r] * inv; }
  }
  // The row max and log of the sum, apart: m + log(l) would round log(l) away when a row is
  // masked everywhere (m ~ -1e9), and the backward pass recomputes p = exp((s - m) - log(l)).
  if (lid == 0u) { lse[2u * row] = m; lse[2u * row + 1u] = select(0.0, log(l), l > 0.0); }
}`,
  };
}

export function attentionBackwardQProgram(mode: MaskMode, per: number, qShape: number[], rows: number, wg: number): KernelProgram {
  return {
    shaderKey: `webtune_attn_bwd_q_${mode}_${per}`,
    variableNames: ['q', 'k', 'v', 'mask', 'dO', 'lse'],
    outputs: [{ name: 'dq', shape: qShape }, { name: 'stats', shape: [rows, 3] }],
    uniforms: ATTN_UNIFORMS,
    workgroupSize: wg,
    workgroups: rows,
    getUserCode: () => `
const PER: u32 = ${per}u;
var<workgroup> qs: array<f32, ${wg * per}>;
var<workgroup> gs: array<f32, ${wg * per}>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> ps2: array<f32, WG>;
var<workgroup> rowEnd: u32;
${common(mode)}
fn main(row: u32, lid: u32) {
  let T = uniforms.T; let D = uniforms.D;
  let i = row % T;
  let bh = row / T;
  let h = bh % uniforms.H;
  let b = bh / uniforms.H;
  let hk = h / (uniforms.H / uniforms.Hkv);
  let qo = qOff(b, h, i);
  for (var d = lid; d < D; d = d + WG) { qs[d] = q[qo + d] * uniforms.scale; gs[d] = dO[qo + d]; }
  workgroupBarrier();
  ${keyEnd(mode)}
  let mI = lse[2u * row];
  let logl = lse[2u * row + 1u];
  // dq = scale Σ_j p_j (dp_j - delta) k_j with delta = dO·O = Σ_j p_j dp_j, accumulated in one
  // pass as scale (Σ p dp k - delta Σ p k), so O is not needed (and not bound: 8 buffers max).
  var accA: array<f32, PER>;
  var accB: array<f32, PER>;
  var dlt = 0.0;
  for (var j0 = 0u; j0 < jEnd; j0 = j0 + WG) {
    let j = j0 + lid;
    var p = 0.0;
    var dp = 0.0;
    if (j < jEnd && visible(b, i, j)) {
      let ko = kOff(b, hk, j);
      var dot = 0.0;
      for (var d = 0u; d < D; d = d + 1u) { dot = dot + qs[d] * k[ko + d]; dp = dp + gs[d] * v[ko + d]; }
      p = exp((dot + bias(b, i, j) - mI) - logl);
    }
    dlt = dlt + reduceSum(p * dp, lid);
    ps[lid] = p;
    ps2[lid] = p * dp;
    workgroupBarrier();
    let n = min(WG, jEnd - j0);
    for (var r = 0u; r < PER; r = r + 1u) {
      let d = lid + r * WG;
      if (d < D) {
        var a = accA[r];
        var bb = accB[r];
        for (var jj = 0u; jj < n; jj = jj + 1u) {
          let kv = k[kOff(b, hk, j0 + jj) + d];
          a = a + ps2[jj] * kv;
          bb = bb + ps[jj] * kv;
        }
        accA[r] = a;
        accB[r] = bb;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < PER; r = r + 1u) {
    let d = lid + r * WG;
    if (d < D) { dq[qo + d] = (accA[r] - dlt * accB[r]) * uniforms.scale; }
  }
  if (lid == 0u) { stats[3u * row] = mI; stats[3u * row + 1u] = logl; stats[3u * row + 2u] = dlt; }
}`,
  };
}

export function attentionBackwardKVProgram(mode: MaskMode, per: number, kShape: number[], rows: number, wg: number): KernelProgram {
  return {
    shaderKey: `webtune_attn_bwd_kv_${mode}_${per}`,
    variableNames: ['q', 'k', 'v', 'mask', 'dO', 'stats'],
    outputs: [{ name: 'dk', shape: kShape }, { name: 'dv', shape: kShape }],
    uniforms: ATTN_UNIFORMS,
    workgroupSize: wg,
    workgroups: rows,
    getUserCode: () => `
const PER: u32 = ${per}u;
var<workgroup> ks: array<f32, ${wg * per}>;
var<workgroup> vs: array<f32, ${wg * per}>;
var<workgroup> ps: array<f32, WG>;
var<workgroup> dss: array<f32, WG>;
var<workgroup> qoffs: array<u32, WG>;
${common(mode)}
fn main(row: u32, lid: u32) {
  let T = uniforms.T; let D = uniforms.D; let S = uniforms.S;
  let j = row % S;
  let bh = row / S;
  let hk = bh % uniforms.Hkv;
  let b = bh / uniforms.Hkv;
  let G = uniforms.H / uniforms.Hkv;
  let ko = kOff(b, hk, j);
  for (var d = lid; d < D; d = d + WG) { ks[d] = k[ko + d] * uniforms.scale; vs[d] = v[ko + d]; }
  workgroupBarrier();
  // Items are (g, i): query head hk * G + g, query row i from iStart (causal: no i < j sees j).
  let iStart = ${mode === 'segments' ? 'j' : '0u'};
  let nI = T - iStart;
  let items = G * nI;
  var accK: array<f32, PER>;
  var accV: array<f32, PER>;
  for (var n0 = 0u; n0 < items; n0 = n0 + WG) {
    let n = n0 + lid;
    var p = 0.0;
    var ds = 0.0;
    var qo = 0u;
    if (n < items) {
      let h = hk * G + n / nI;
      let i = iStart + n % nI;
      qo = qOff(b, h, i);
      if (visible(b, i, j)) {
        let r = (b * uniforms.H + h) * T + i;
        var dot = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d = d + 1u) { dot = dot + q[qo + d] * ks[d]; dp = dp + dO[qo + d] * vs[d]; }
        p = exp((dot + bias(b, i, j) - stats[3u * r]) - stats[3u * r + 1u]);
        ds = p * (dp - stats[3u * r + 2u]);
      }
    }
    ps[lid] = p;
    dss[lid] = ds;
    qoffs[lid] = qo;
    workgroupBarrier();
    let cnt = min(WG, items - n0);
    for (var r = 0u; r < PER; r = r + 1u) {
      let d = lid + r * WG;
      if (d < D) {
        var ak = accK[r];
        var av = accV[r];
        for (var nn = 0u; nn < cnt; nn = nn + 1u) {
          let o = qoffs[nn] + d;
          av = av + ps[nn] * dO[o];
          ak = ak + dss[nn] * q[o];
        }
        accK[r] = ak;
        accV[r] = av;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < PER; r = r + 1u) {
    let d = lid + r * WG;
    if (d < D) { dk[ko + d] = accK[r] * uniforms.scale; dv[ko + d] = accV[r]; }
  }
}`,
  };
}
