/**
 * Fused causal attention: registrations and ops. One dispatch forward, two backward; the [T, S]
 * score matrix never reaches global memory (see attention_webgpu.ts).
 *
 *   fusedAttention(q, k, v, mask, scale)             drop-in for ops.attention: q [B, H, T, D],
 *                                                    k/v [B, Hkv, S, D], additive mask [Bm, 1, T, S].
 *   fusedSegmentAttention(q, k, v, segmentIds, opts) the contract's mask from segment ids (int32
 *                                                    [B, T]; 0 = padding, j <= i, same segment;
 *                                                    null = causal only), layout 'bhtd' or 'bthd'.
 *   fusedAttentionSegments(q, k, v, segmentIds, scale, mask?)   ops.attentionSegments ([B, H, T, D]).
 *   fusedAttentionPacked(qkv, H, Hkv, segmentIds, scale, mask?) ops.attentionPacked: straight from a
 *                                                    packed [B, T, (H + 2 Hkv) D] projection to
 *                                                    [B, T, H D]: no split, no transpose either way.
 *
 * A padding query (segment 0) attends to itself only, exactly as the stock additive mask of
 * src/nn/attention.ts makes it, so outputs and gradients equal the stock path everywhere.
 *
 * @example
 *   const out = fusedSegmentAttention(q, k, v, seg, { layout: 'bthd' });   // [B, T, H, D]
 */
import * as tf from '@tensorflow/tfjs';
import {
  ATTN_WG, attentionBackwardKVProgram, attentionBackwardQProgram, attentionForwardProgram, attnUniforms, layoutStrides,
  type AttnGeometry, type MaskMode,
} from './attention_webgpu.js';
import { defineKernel, fusedKernelsAvailable, runFused } from './registry.js';
import { run, runProgram } from './runtime.js';
import { buildAttentionMask } from '../src/nn/attention.js';
import { stockOps } from '../src/nn/ops.js';

export { ATTN_WG };

type Layout = 'bhtd' | 'bthd';

const SEPARATE = { masked: 'WebTuneAttention', causal: 'WebTuneAttentionCausal' };
const PACKED = { masked: 'WebTuneAttentionQKV', causal: 'WebTuneAttentionQKVCausal' };

function separateGeometry(layout: Layout, q: { shape: number[] }, k: { shape: number[] }): AttnGeometry {
  const [B, a1, a2, D] = q.shape;
  const [, k1, k2] = k.shape;
  const [H, T, Hkv, S] = layout === 'bhtd' ? [a1, a2, k1, k2] : [a2, a1, k2, k1];
  const qs = layoutStrides(layout, H, T, D);
  return { B, H, Hkv, T, S, D, q: [...qs, 0], o: qs, k: layoutStrides(layout, Hkv, S, D), kBase: 0, vBase: 0 };
}

function packedGeometry(qkv: { shape: number[] }, H: number, Hkv: number): AttnGeometry {
  const [B, T, W] = qkv.shape;
  const D = W / (H + 2 * Hkv);
  const s: [number, number, number] = [T * W, D, W];
  return { B, H, Hkv, T, S: T, D, q: [...s, 0], o: [T * H * D, D, H * D], k: s, kBase: H * D, vBase: (H + Hkv) * D };
}

const cdiv = (a: number, b: number) => Math.ceil(a / b);

for (const masked of [true, false]) {
  // Separate q, k, v (any layout, additive or segment mask, or causal).
  const sepName = masked ? SEPARATE.masked : SEPARATE.causal;
  const sepInputs = masked ? ['q', 'k', 'v', 'mask'] : ['q', 'k', 'v'];
  defineKernel({
    kernel: {
      kernelName: sepName,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, attrs }) => {
        const ins = sepInputs.map((n) => inputs[n] as tf.TensorInfo);
        const mode = attrs!.mode as MaskMode;
        const g = separateGeometry(attrs!.layout as Layout, ins[0], ins[1]);
        const u = attnUniforms(g, attrs!.scale as number, masked && mode === 'additive' ? ins[3].shape[0] : g.B);
        return runProgram(attentionForwardProgram(mode, false, g.D, ins[0].shape, g.B * g.H * g.T, g.B * g.H * cdiv(g.T, ATTN_WG)), ins, u);
      },
    },
    gradient: {
      kernelName: sepName,
      inputsToSave: sepInputs,
      outputsToSave: [false, true],
      gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) => {
        const [dO] = dys as tf.Tensor[];
        const ins = saved.slice(0, sepInputs.length);
        const lse = saved[sepInputs.length];
        const mode = attrs!.mode as MaskMode;
        const g = separateGeometry(attrs!.layout as Layout, ins[0], ins[1]);
        const u = attnUniforms(g, attrs!.scale as number, masked && mode === 'additive' ? ins[3].shape[0] : g.B);
        const [dq, stats] = run(attentionBackwardQProgram(mode, false, g.D, ins[0].shape, g.B * g.H * g.T, g.B * g.H * cdiv(g.T, ATTN_WG)), [...ins, dO, lse], u);
        const [dk, dv] = run(attentionBackwardKVProgram(mode, false, g.D, ins[1].shape, g.B * g.Hkv * cdiv(g.S, ATTN_WG)), [...ins, dO, stats], u);
        stats.dispose();
        const out: Record<string, () => tf.Tensor> = { q: () => dq, k: () => dk, v: () => dv };
        if (masked) out.mask = () => tf.zerosLike(ins[3]);
        return out;
      },
    },
  });

  // Packed qkv (segment mask or causal; self-attention, S = T).
  const packName = masked ? PACKED.masked : PACKED.causal;
  const packInputs = masked ? ['qkv', 'mask'] : ['qkv'];
  defineKernel({
    kernel: {
      kernelName: packName,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, attrs }) => {
        const ins = packInputs.map((n) => inputs[n] as tf.TensorInfo);
        const H = attrs!.heads as number, Hkv = attrs!.kvHeads as number;
        const g = packedGeometry(ins[0], H, Hkv);
        const mode: MaskMode = masked ? 'segments' : 'causal';
        return runProgram(attentionForwardProgram(mode, true, g.D, [g.B, g.T, H * g.D], g.B * H * g.T, g.B * H * cdiv(g.T, ATTN_WG)),
          ins, attnUniforms(g, attrs!.scale as number, g.B));
      },
    },
    gradient: {
      kernelName: packName,
      inputsToSave: packInputs,
      outputsToSave: [false, true],
      gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) => {
        const [dO] = dys as tf.Tensor[];
        const ins = saved.slice(0, packInputs.length);
        const lse = saved[packInputs.length];
        const H = attrs!.heads as number, Hkv = attrs!.kvHeads as number;
        const g = packedGeometry(ins[0], H, Hkv);
        const mode: MaskMode = masked ? 'segments' : 'causal';
        const u = attnUniforms(g, attrs!.scale as number, g.B);
        const [dqs, stats] = run(attentionBackwardQProgram(mode, true, g.D, [g.B, g.T, H, g.D], g.B * H * g.T, g.B * H * cdiv(g.T, ATTN_WG)), [...ins, dO, lse], u);
        const [dqkv] = run(attentionBackwardKVProgram(mode, true, g.D, ins[0].shape, g.B * Hkv * cdiv(g.T, ATTN_WG)), [...ins, dO, stats, dqs], u);
        tf.dispose([dqs, stats]);
        const out: Record<string, () => tf.Tensor> = { qkv: () => dqkv };
        if (masked) out.mask = () => tf.zerosLike(ins[1]);
        return out;
      },
    },
  });
}

function check(name: string, layout: Layout, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): AttnGeometry {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new Error(`${name}: q, k, v must be rank 4 (${layout})`);
  if (!tf.util.arraysEqual(k.shape, v.shape)) throw new Error(`${name}: k [${k.shape}] and v [${v.shape}] differ`);
  const g = separateGeometry(layout, q, k);
  if (g.H % g.Hkv !== 0) throw new Error(`${name}: ${g.H} query heads are not a multiple of ${g.Hkv} key/value heads`);
  if (k.shape[3] !== g.D) throw new Error(`${name}: head dims differ (q ${g.D}, k ${k.shape[3]})`);
  return g;
}

function int32(t: tf.Tensor2D): tf.Tensor2D {
  return t.dtype === 'int32' ? t : tf.cast(t, 'int32');
}

/** softmax(q·kᵀ·scale + mask)·v with GQA; same contract as ops.attention. */
export function fusedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D, scale: number): tf.Tensor4D {
  const g = check('fusedAttention', 'bhtd', q, k, v);
  if (!fusedKernelsAvailable() || q.size === 0 || k.size === 0) return stockAttention(q, k, v, mask, scale);
  if (mask.rank !== 4 || mask.shape[1] !== 1 || mask.shape[2] !== g.T || mask.shape[3] !== g.S || (mask.shape[0] !== 1 && mask.shape[0] !== g.B)) {
    throw new Error(`fusedAttention: mask [${mask.shape}] must be [1 or ${g.B}, 1, ${g.T}, ${g.S}]`);
  }
  const [out, lse] = runFused(SEPARATE.masked, { q, k, v, mask }, { mode: 'additive', layout: 'bhtd', scale });
  lse.dispose();
  return out as tf.Tensor4D;
}

export interface SegmentAttentionOptions {
  /** 'bhtd' = [B, H, T, D] (default); 'bthd' = [B, T, H, D]. */
  layout?: Layout;
  /** Default 1 / sqrt(D). */
  scale?: number;
}

/** Causal attention with segment ids (see the file comment). q [B, H, T, D] or [B, T, H, D]; k/v with Hkv heads and S = T. */
export function fusedSegmentAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, segmentIds: tf.Tensor2D | null, opts: SegmentAttentionOptions = {}): tf.Tensor4D {
  const layout = opts.layout ?? 'bhtd';
  const g = check('fusedSegmentAttention', layout, q, k, v);
  if (g.S !== g.T) throw new Error(`fusedSegmentAttention: keys (${g.S}) and queries (${g.T}) must have the same length`);
  if (segmentIds && (segmentIds.shape[0] !== g.B || segmentIds.shape[1] !== g.T)) throw new Error(`fusedSegmentAttention: segmentIds [${segmentIds.shape}] must be [${g.B}, ${g.T}]`);
  const scale = opts.scale ?? 1 / Math.sqrt(g.D);
  if (!fusedKernelsAvailable() || q.size === 0) return stockSegmentAttention(q, k, v, segmentIds, layout, scale);
  if (!segmentIds) {
    const [out, lse] = runFused(SEPARATE.causal, { q, k, v }, { mode: 'causal', layout, scale });
    lse.dispose();
    return out as tf.Tensor4D;
  }
  const seg = int32(segmentIds);
  const [out, lse] = runFused(SEPARATE.masked, { q, k, v, mask: seg }, { mode: 'segments', layout, scale });
  lse.dispose();
  if (seg !== segmentIds) seg.dispose();
  return out as tf.Tensor4D;
}

/** ops.attentionSegments: q [B, H, T, D], k/v [B, Hkv, T, D], segment ids [B, T] or null (causal). `mask` is only read off WebGPU. */
export function fusedAttentionSegments(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, segmentIds: tf.Tensor2D | null, scale: number, mask?: tf.Tensor4D): tf.Tensor4D {
  if (!fusedKernelsAvailable() || q.size === 0) return stockOps.attentionSegments(q, k, v, segmentIds, scale, mask);
  return fusedSegmentAttention(q, k, v, segmentIds, { layout: 'bhtd', scale });
}

/** ops.attentionPacked: qkv [B, T, (H + 2 Hkv) D] -> [B, T, H D]. */
export function fusedAttentionPacked(qkv: tf.Tensor3D, heads: number, kvHeads: number, segmentIds: tf.Tensor2D | null, scale: number, mask?: tf.Tensor4D): tf.Tensor3D {
  const [B, T, W] = qkv.shape;
  if (heads % kvHeads !== 0 || W % (heads + 2 * kvHeads) !== 0) throw new Error(`fusedAttentionPacked: width ${W} is not (${heads} + 2 x ${kvHeads}) heads of one size`);
  if (segmentIds && (segmentIds.shape[0] !== B || segmentIds.shape[1] !== T)) throw new Error(`fusedAttentionPacked: segmentIds [${segmentIds.shape}] must be [${B}, ${T}]`);
  if (!fusedKernelsAvailable() || qkv.size === 0) return stockOps.attentionPacked(qkv, heads, kvHeads, segmentIds, scale, mask);
  const D = W / (heads + 2 * kvHeads);
  let res: tf.Tensor[];
  if (segmentIds) {
    const seg = int32(segmentIds);
    res = runFused(PACKED.masked, { qkv, mask: seg }, { heads, kvHeads, scale });
    if (seg !== segmentIds) seg.dispose();
  } else {
    res = runFused(PACKED.causal, { qkv }, { heads, kvHeads, scale });
  }
  res[1].dispose();
  // [B, T, H, D] -> [B, T, H D]: same buffer.
  const out = tf.reshape(res[0], [B, T, heads * D]) as tf.Tensor3D;
  res[0].dispose();
  return out;
}

/** The stock composition (matMul, softmax, matMul; GQA by gathering kv heads). */
export function stockAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D, scale: number): tf.Tensor4D {
  return stockOps.attention(q, k, v, mask, scale);
}

/** The additive [B, 1, T, T] mask of segment ids (0 visible, -1e9 hidden; a padding query sees itself), as the model builds it. */
export function segmentMask(segmentIds: tf.Tensor2D): tf.Tensor4D {
  return buildAttentionMask(segmentIds, segmentIds, 0, segmentIds.shape[1], segmentIds.shape[1]);
}

function stockSegmentAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, segmentIds: tf.Tensor2D | null, layout: Layout, scale: number): tf.Tensor4D {
  return tf.tidy(() => {
    const toBhtd = (t: tf.Tensor4D) => (layout === 'bhtd' ? t : tf.transpose(t, [0, 2, 1, 3]) as tf.Tensor4D);
    const out = stockOps.attentionSegments(toBhtd(q), toBhtd(k), toBhtd(v), segmentIds, scale);
    return layout === 'bhtd' ? out : tf.transpose(out, [0, 2, 1, 3]) as tf.Tensor4D;
  });
}
