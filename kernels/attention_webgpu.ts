/**
 * Attention programs, flash-attention style: the [T, S] score matrix never reaches global memory.
 *
 * One thread owns one query row (forward, dq) or one key row (dk, dv); a workgroup owns a block
 * of WG consecutive rows of one (batch, head) and walks the other side in tiles of TILE rows
 * that the whole workgroup loads into workgroup memory once (K/V tiles for the query side,
 * Q/dO tiles plus row statistics for the key side). There are no reductions across threads and
 * only two barriers per tile, which is what makes it fast on a software adapter (where every
 * barrier splits the shader) and keeps the loads coalesced on a GPU.
 *
 *   forward   out_i = Σ_j p_ij v_j with p = softmax_j(q_i·k_j·scale + bias_ij), online softmax
 *             (running max and sum, rescaled once per tile); saves the row max m_i and log l_i.
 *   backward  two dispatches, no float atomics (WGSL has none):
 *             dq   per query row: p_ij recomputed from (m_i, log l_i), dp_ij = dO_i·v_j,
 *                  dq_i = scale (Σ p dp k_j - delta_i Σ p k_j) with delta_i = Σ_j p_ij dp_ij = dO_i·O_i
 *                  accumulated in the same pass (so O is not read); writes (m, log l, delta).
 *             dk,dv per key row: sums over every query head of its group (GQA) and every query i:
 *                  dv_j = Σ p_ij dO_i, dk_j = scale Σ p_ij (dp_ij - delta_i) q_i.
 *
 * Masks:
 *   'additive'  mask [Bm, 1, T, S] added to the scores (ops.attention's contract; Bm = 1 or B).
 *   'segments'  seg int32 [B, T] (S = T): the rule of src/nn/visibility.ts (i sees j iff j <= i,
 *               seg[j] == seg[i] != 0; a padding query, seg 0, sees only itself).
 *   'causal'    j <= i (S = T), no mask input.
 *   With 'segments' and 'causal' a block stops at its last row's causal limit (keys after the
 *   block are never loaded), and key blocks start at their first key (no earlier query sees it).
 *
 * Geometry: every tensor is addressed as base + b*sB + h*sH + t*sT + d, so q, k, v may be
 * [B, H, T, D], [B, T, H, D], or three slices of one packed [B, T, (H + 2 Hkv) D] projection
 * (GPT-2's c_attn output) without any transpose or split. Out, dO and the dq scratch use the
 * "o" strides. Head h reads kv head h / (H / Hkv). D is a compile-time constant.
 */
import type { KernelProgram, UniformType } from './runtime.js';
import { attendsWGSL } from '../src/nn/visibility.js';

export type MaskMode = 'additive' | 'segments' | 'causal';

export const ATTN_UNIFORMS: Array<[string, UniformType]> = [
  ['B', 'u32'], ['H', 'u32'], ['Hkv', 'u32'], ['T', 'u32'], ['S', 'u32'], ['scale', 'f32'],
  ['qsB', 'u32'], ['qsH', 'u32'], ['qsT', 'u32'], ['qBase', 'u32'],
  ['osB', 'u32'], ['osH', 'u32'], ['osT', 'u32'],
  ['ksB', 'u32'], ['ksH', 'u32'], ['ksT', 'u32'], ['kBase', 'u32'], ['vBase', 'u32'],
  ['maskBS', 'u32'],
];

/** Threads (rows) per workgroup. */
export const ATTN_WG = 32;

export interface AttnGeometry {
  B: number; H: number; Hkv: number; T: number; S: number; D: number;
  /** q strides (b, h, t) and base offset. */
  q: [number, number, number, number];
  /** out / dO / dq-scratch strides (b, h, t). */
  o: [number, number, number];
  /** k and v strides (b, h, t) and their base offsets. */
  k: [number, number, number];
  kBase: number;
  vBase: number;
}

/** Strides of a [B, X, T, D] ('bhtd') or [B, T, X, D] ('bthd') tensor. */
export function layoutStrides(layout: 'bhtd' | 'bthd', X: number, T: number, D: number): [number, number, number] {
  return layout === 'bhtd' ? [X * T * D, T * D, D] : [T * X * D, D, X * D];
}

/** Uniform values in ATTN_UNIFORMS order. */
export function attnUniforms(g: AttnGeometry, scale: number, maskBatches: number): number[] {
  return [g.B, g.H, g.Hkv, g.T, g.S, scale, ...g.q, ...g.o, ...g.k, g.kBase, g.vBase, maskBatches > 1 ? g.T * g.S : 0];
}

/** Rows of the tiles of the other side: two [TILE, D] float tiles plus 4 floats per row within 16 KiB. */
export function attnTile(D: number): number {
  let t = 32;
  while (t > 1 && t * (8 * D + 16) > 16384) t /= 2;
  return t;
}

/**
 * A loop over d in [0, D) with a body that uses `d`, unrolled for small D: constant indices let
 * the compiler keep the per-thread arrays (q, k, accumulators) in registers, which matters most
 * on a software adapter (a dynamically indexed private array there lives in memory).
 */
function forD(D: number, body: (d: string) => string): string {
  if (D > 64) return `for (var d = 0u; d < D; d = d + 1u) { ${body('d')} }`;
  return Array.from({ length: D }, (_, d) => body(`${d}u`)).join('\n      ');
}

function common(mode: MaskMode): string {
  // The additive mode carries the rule in its mask (bias); the others apply src/nn/visibility.ts.
  const visible = mode === 'additive' ? 'fn visible(si: i32, sj: i32, i: u32, j: u32) -> bool { return true; }' : attendsWGSL('visible', mode === 'segments');
  return `
const NEG: f32 = -3.0e38;
fn qIdx(b: u32, h: u32, i: u32) -> u32 { return uniforms.qBase + b * uniforms.qsB + h * uniforms.qsH + i * uniforms.qsT; }
fn oIdx(b: u32, h: u32, i: u32) -> u32 { return b * uniforms.osB + h * uniforms.osH + i * uniforms.osT; }
fn kIdx(b: u32, h: u32, j: u32) -> u32 { return uniforms.kBase + b * uniforms.ksB + h * uniforms.ksH + j * uniforms.ksT; }
fn vIdx(b: u32, h: u32, j: u32) -> u32 { return uniforms.vBase + b * uniforms.ksB + h * uniforms.ksH + j * uniforms.ksT; }
// Does query i (segment si) see key j (segment sj)? Segments are read once per row and per tile, not per pair.
${visible}
fn segOf(b: u32, t: u32) -> i32 { return ${mode === 'segments' ? 'mask[b * uniforms.T + t]' : '0'}; }
fn bias(b: u32, i: u32, j: u32) -> f32 { return ${mode === 'additive' ? 'mask[b * uniforms.maskBS + i * uniforms.S + j]' : '0.0'}; }
var<workgroup> segt: array<i32, TILE>;`;
}

function inputs(packed: boolean, mode: MaskMode, extra: string[]): string[] {
  return [...(packed ? ['qkv'] : ['q', 'k', 'v']), ...(mode === 'causal' ? [] : ['mask']), ...extra];
}

/** WGSL aliases so one body reads packed (one qkv binding) and separate q, k, v alike. */
function readers(packed: boolean): string {
  return packed
    ? `fn rq(x: u32) -> f32 { return qkv[x]; }
fn rk(x: u32) -> f32 { return qkv[x]; }
fn rv(x: u32) -> f32 { return qkv[x]; }`
    : `fn rq(x: u32) -> f32 { return q[x]; }
fn rk(x: u32) -> f32 { return k[x]; }
fn rv(x: u32) -> f32 { return v[x]; }`;
}

/** WGSL: the query block of workgroup wg: b, h, hk, first row i0, this thread's row i. */
const QUERY_BLOCK = `
  let T = uniforms.T; let S = uniforms.S;
  let nb = (T + WG - 1u) / WG;
  let blk = wg % nb;
  let bh = wg / nb;
  let h = bh % uniforms.H;
  let b = bh / uniforms.H;
  let hk = h / (uniforms.H / uniforms.Hkv);
  let i0 = blk * WG;
  let i = i0 + lid;
  let live = i < T;
  let iq = min(i, T - 1u);
  let row = bh * T + iq;
  let myS = segOf(b, iq);`;

/** WGSL: the key range of a query block and of its thread. */
function queryKeyRange(mode: MaskMode): string {
  return mode === 'additive'
    ? `let jEnd = S;
  let myEnd = S;`
    : `let jEnd = min(S, i0 + WG);
  let myEnd = iq + 1u;`;
}

/** WGSL: load keys [t0, t0 + n) of kv head hk into kt / vt. */
const LOAD_KV = `
    for (var x = lid; x < n * D; x = x + WG) {
      let jj = x / D;
      let d = x % D;
      kt[x] = rk(kIdx(b, hk, t0 + jj) + d);
      vt[x] = rv(vIdx(b, hk, t0 + jj) + d);
    }
    for (var x = lid; x < n; x = x + WG) { segt[x] = segOf(b, t0 + x); }
    workgroupBarrier();`;

export function attentionForwardProgram(mode: MaskMode, packed: boolean, D: number, outShape: number[], rows: number, workgroups: number): KernelProgram {
  const tile = attnTile(D);
  return {
    shaderKey: `webtune_attn2_fwd_${mode}_${packed ? 'p' : 's'}_${D}`,
    variableNames: inputs(packed, mode, []),
    outputs: [{ name: 'result', shape: outShape }, { name: 'lse', shape: [rows, 2] }],
    uniforms: ATTN_UNIFORMS,
    workgroupSize: ATTN_WG,
    workgroups,
    getUserCode: () => `
const D: u32 = ${D}u;
const TILE: u32 = ${tile}u;
var<workgroup> kt: array<f32, ${tile * D}>;
var<workgroup> vt: array<f32, ${tile * D}>;
${common(mode)}
${readers(packed)}
fn main(wg: u32, lid: u32) {
  ${QUERY_BLOCK}
  var qr: array<f32, ${D}>;
  let qo = qIdx(b, h, iq);
  ${forD(D, (d) => `qr[${d}] = rq(qo + ${d}) * uniforms.scale;`)}
  ${queryKeyRange(mode)}
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, ${D}>;
  var s: array<f32, ${tile}>;
  for (var t0 = 0u; t0 < jEnd; t0 = t0 + TILE) {
    let n = min(TILE, jEnd - t0);
    ${LOAD_KV}
    if (live && myEnd > t0) {
      let cnt = min(n, myEnd - t0);
      var tm = NEG;
      for (var jj = 0u; jj < cnt; jj = jj + 1u) {
        var sc = NEG;
        if (visible(myS, segt[jj], i, t0 + jj)) {
          var dot = 0.0;
          let kb = jj * D;
          ${forD(D, (d) => `dot = dot + qr[${d}] * kt[kb + ${d}];`)}
          sc = dot + bias(b, i, t0 + jj);
        }
        s[jj] = sc;
        tm = max(tm, sc);
      }
      if (tm > NEG) {
        let mNew = max(m, tm);
        let corr = exp(m - mNew);
        l = l * corr;
        ${forD(D, (d) => `acc[${d}] = acc[${d}] * corr;`)}
        for (var jj = 0u; jj < cnt; jj = jj + 1u) {
          if (s[jj] > NEG) {
            let p = exp(s[jj] - mNew);
            l = l + p;
            let vb = jj * D;
            ${forD(D, (d) => `acc[${d}] = acc[${d}] + p * vt[vb + ${d}];`)}
          }
        }
        m = mNew;
      }
    }
    workgroupBarrier();
  }
  if (live) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let oo = oIdx(b, h, i);
    ${forD(D, (d) => `result[oo + ${d}] = acc[${d}] * inv;`)}
    // Max and log-sum apart: m + log(l) would round log(l) away when every score is ~ -1e9.
    lse[2u * row] = m;
    lse[2u * row + 1u] = select(0.0, log(l), l > 0.0);
  }
}`,
  };
}

export function attentionBackwardQProgram(mode: MaskMode, packed: boolean, D: number, dqShape: number[], rows: number, workgroups: number): KernelProgram {
  const tile = attnTile(D);
  return {
    shaderKey: `webtune_attn2_bwd_q_${mode}_${packed ? 'p' : 's'}_${D}`,
    variableNames: inputs(packed, mode, ['dO', 'lse']),
    outputs: [{ name: 'dq', shape: dqShape }, { name: 'stats', shape: [rows, 3] }],
    uniforms: ATTN_UNIFORMS,
    workgroupSize: ATTN_WG,
    workgroups,
    getUserCode: () => `
const D: u32 = ${D}u;
const TILE: u32 = ${tile}u;
var<workgroup> kt: array<f32, ${tile * D}>;
var<workgroup> vt: array<f32, ${tile * D}>;
${common(mode)}
${readers(packed)}
fn main(wg: u32, lid: u32) {
  ${QUERY_BLOCK}
  var qr: array<f32, ${D}>;
  var gr: array<f32, ${D}>;
  let qo = qIdx(b, h, iq);
  let oo = oIdx(b, h, iq);
  ${forD(D, (d) => `qr[${d}] = rq(qo + ${d}) * uniforms.scale; gr[${d}] = dO[oo + ${d}];`)}
  let mI = lse[2u * row];
  let logl = lse[2u * row + 1u];
  ${queryKeyRange(mode)}
  var accA: array<f32, ${D}>;
  var accB: array<f32, ${D}>;
  var dlt = 0.0;
  for (var t0 = 0u; t0 < jEnd; t0 = t0 + TILE) {
    let n = min(TILE, jEnd - t0);
    ${LOAD_KV}
    if (live && myEnd > t0) {
      let cnt = min(n, myEnd - t0);
      for (var jj = 0u; jj < cnt; jj = jj + 1u) {
        if (visible(myS, segt[jj], i, t0 + jj)) {
          var dot = 0.0;
          var dp = 0.0;
          let kb = jj * D;
          ${forD(D, (d) => `dot = dot + qr[${d}] * kt[kb + ${d}]; dp = dp + gr[${d}] * vt[kb + ${d}];`)}
          let p = exp((dot + bias(b, i, t0 + jj) - mI) - logl);
          let pdp = p * dp;
          dlt = dlt + pdp;
          ${forD(D, (d) => `accA[${d}] = accA[${d}] + pdp * kt[kb + ${d}]; accB[${d}] = accB[${d}] + p * kt[kb + ${d}];`)}
        }
      }
    }
    workgroupBarrier();
  }
  if (live) {
    ${forD(D, (d) => `dq[oo + ${d}] = (accA[${d}] - dlt * accB[${d}]) * uniforms.scale;`)}
    stats[3u * row] = mI;
    stats[3u * row + 1u] = logl;
    stats[3u * row + 2u] = dlt;
  }
}`,
  };
}

/**
 * dk and dv. Separate q, k, v: outputs dk, dv shaped like k. Packed: one output dqkv shaped like
 * qkv, holding dk, dv and a copy of the dq scratch (input 'dqs', [B, T, H, D]) in their slots,
 * so the packed projection gets its whole gradient without a concat.
 */
export function attentionBackwardKVProgram(mode: MaskMode, packed: boolean, D: number, kShape: number[], workgroups: number): KernelProgram {
  const tile = attnTile(D);
  const early = mode !== 'additive';
  return {
    shaderKey: `webtune_attn2_bwd_kv_${mode}_${packed ? 'p' : 's'}_${D}`,
    variableNames: inputs(packed, mode, ['dO', 'stats', ...(packed ? ['dqs'] : [])]),
    outputs: packed ? [{ name: 'dqkv', shape: kShape }] : [{ name: 'dk', shape: kShape }, { name: 'dv', shape: kShape }],
    uniforms: ATTN_UNIFORMS,
    workgroupSize: ATTN_WG,
    workgroups,
    getUserCode: () => `
const D: u32 = ${D}u;
const TILE: u32 = ${tile}u;
var<workgroup> qt: array<f32, ${tile * D}>;
var<workgroup> gt: array<f32, ${tile * D}>;
var<workgroup> st: array<f32, ${tile * 3}>;
${common(mode)}
${readers(packed)}
fn main(wg: u32, lid: u32) {
  let T = uniforms.T; let S = uniforms.S;
  let nb = (S + WG - 1u) / WG;
  let blk = wg % nb;
  let bh = wg / nb;
  let hk = bh % uniforms.Hkv;
  let b = bh / uniforms.Hkv;
  let G = uniforms.H / uniforms.Hkv;
  let j0 = blk * WG;
  let j = j0 + lid;
  let live = j < S;
  let jk = min(j, S - 1u);
  let myS = segOf(b, jk);
  var kr: array<f32, ${D}>;
  var vr: array<f32, ${D}>;
  let ko = kIdx(b, hk, jk);
  let vo = vIdx(b, hk, jk);
  ${forD(D, (d) => `kr[${d}] = rk(ko + ${d}) * uniforms.scale; vr[${d}] = rv(vo + ${d});`)}
  var ak: array<f32, ${D}>;
  var av: array<f32, ${D}>;
  // Causal: no query before the block's first key sees any of its keys.
  let iStart = ${early ? 'j0' : '0u'};
  for (var g = 0u; g < G; g = g + 1u) {
    let h = hk * G + g;
    for (var t0 = iStart; t0 < T; t0 = t0 + TILE) {
      let n = min(TILE, T - t0);
      for (var x = lid; x < n * D; x = x + WG) {
        let ii = x / D;
        let d = x % D;
        qt[x] = rq(qIdx(b, h, t0 + ii) + d);
        gt[x] = dO[oIdx(b, h, t0 + ii) + d];
      }
      for (var x = lid; x < n * 3u; x = x + WG) { st[x] = stats[3u * ((b * uniforms.H + h) * T + t0) + x]; }
      for (var x = lid; x < n; x = x + WG) { segt[x] = segOf(b, t0 + x); }
      workgroupBarrier();
      if (live) {
        for (var ii = 0u; ii < n; ii = ii + 1u) {
          let i = t0 + ii;
          if (visible(segt[ii], myS, i, j)) {
            var dot = 0.0;
            var dp = 0.0;
            let qb = ii * D;
            ${forD(D, (d) => `dot = dot + qt[qb + ${d}] * kr[${d}]; dp = dp + gt[qb + ${d}] * vr[${d}];`)}
            let p = exp((dot + bias(b, i, j) - st[3u * ii]) - st[3u * ii + 1u]);
            let ds = p * (dp - st[3u * ii + 2u]);
            ${forD(D, (d) => `av[${d}] = av[${d}] + p * gt[qb + ${d}]; ak[${d}] = ak[${d}] + ds * qt[qb + ${d}];`)}
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (live) {
${packed ? `    ${forD(D, (d) => `dqkv[ko + ${d}] = ak[${d}] * uniforms.scale; dqkv[vo + ${d}] = av[${d}];`)}
    for (var g = 0u; g < G; g = g + 1u) {
      let h = hk * G + g;
      let qo = qIdx(b, h, j);
      let so = oIdx(b, h, j);
      for (var d = 0u; d < D; d = d + 1u) { dqkv[qo + d] = dqs[so + d]; }
    }` : `    ${forD(D, (d) => `dk[ko + ${d}] = ak[${d}] * uniforms.scale; dv[vo + ${d}] = av[${d}];`)}`}
  }
}`,
  };
}
