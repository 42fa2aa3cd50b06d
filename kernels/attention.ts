/**
 * Fused causal attention: registrations and ops. One dispatch forward, two backward; the [T, S]
 * score matrix never reaches global memory.
 *
 *   fusedAttention(q, k, v, mask, scale)            drop-in for ops.attention: q [B, H, T, D],
 *                                                   k/v [B, Hkv, S, D], additive mask [Bm, 1, T, S].
 *   fusedSegmentAttention(q, k, v, segmentIds, opts) the contract's mask semantics from segment ids
 *                                                   (int32 [B, T]; 0 = padding, j <= i, same
 *                                                   segment), layout 'bhtd' or 'bthd'; keys after
 *                                                   the query are skipped, not masked; padding
 *                                                   query rows come out as zeros.
 *
 * @example
 *   const out = fusedSegmentAttention(q, k, v, seg, { layout: 'bthd', heads: 4, kvHeads: 2 });   // [B, T, 4, D]
 */
import * as tf from '@tensorflow/tfjs';
import { attentionBackwardKVProgram, attentionBackwardQProgram, attentionForwardProgram, attnUniforms, type MaskMode } from './attention_webgpu.js';
import { defineKernel, fusedKernelsAvailable, runFused } from './registry.js';
import { run, runProgram } from './runtime.js';

const NAME = 'WebTuneAttention';
export const ATTN_WG = 64;

type Layout = 'bhtd' | 'bthd';

interface Dims { B: number; H: number; Hkv: number; T: number; S: number; D: number }

function dims(layout: Layout, q: { shape: number[] }, k: { shape: number[] }): Dims {
  const [B, a1, a2, D] = q.shape;
  const [, k1, k2] = k.shape;
  return layout === 'bhtd' ? { B, H: a1, T: a2, Hkv: k1, S: k2, D } : { B, T: a1, H: a2, S: k1, Hkv: k2, D };
}

function per(D: number): number {
  return Math.ceil(D / ATTN_WG);
}

function uniformsOf(attrs: tf.NamedAttrMap, q: tf.TensorInfo, k: tf.TensorInfo, mask: tf.TensorInfo): { d: Dims; u: number[]; mode: MaskMode } {
  const layout = attrs.layout as Layout;
  const mode = attrs.mode as MaskMode;
  const d = dims(layout, q, k);
  const maskBatches = mode === 'additive' ? mask.shape[0] : d.B;
  return { d, mode, u: attnUniforms(layout, d.B, d.H, d.Hkv, d.T, d.S, d.D, attrs.scale as number, maskBatches) };
}

defineKernel({
  kernel: {
    kernelName: NAME,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs }) => {
      const { q, k, v, mask } = inputs as Record<string, tf.TensorInfo>;
      const { d, u, mode } = uniformsOf(attrs!, q, k, mask);
      const rows = d.B * d.H * d.T;
      return runProgram(attentionForwardProgram(mode, per(d.D), q.shape, rows, ATTN_WG), [q, k, v, mask], u);
    },
  },
  gradient: {
    kernelName: NAME,
    inputsToSave: ['q', 'k', 'v', 'mask'],
    outputsToSave: [false, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) => {
      const [dO] = dys as tf.Tensor[];
      const [q, k, v, mask, lse] = saved;
      const { d, u, mode } = uniformsOf(attrs!, q, k, mask);
      const [dq, stats] = run(attentionBackwardQProgram(mode, per(d.D), q.shape, d.B * d.H * d.T, ATTN_WG), [q, k, v, mask, dO, lse], u);
      const [dk, dv] = run(attentionBackwardKVProgram(mode, per(d.D), k.shape, d.B * d.Hkv * d.S, ATTN_WG), [q, k, v, mask, dO, stats], u);
      stats.dispose();
      return { q: () => dq, k: () => dk, v: () => dv, mask: () => tf.zerosLike(mask) };
    },
  },
});

function check(name: string, layout: Layout, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): Dims {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) throw new Error(`${name}: q, k, v must be rank 4 (${layout})`);
  if (!tf.util.arraysEqual(k.shape, v.shape)) throw new Error(`${name}: k [${k.shape}] and v [${v.shape}] differ`);
  const d = dims(layout, q, k);
  if (d.H % d.Hkv !== 0) throw new Error(`${name}: ${d.H} query heads are not a multiple of ${d.Hkv} key/value heads`);
  if (k.shape[3] !== d.D) throw new Error(`${name}: head dims differ (q ${d.D}, k ${k.shape[3]})`);
  return d;
}

/** softmax(q·kᵀ·scale + mask)·v with GQA; same contract as ops.attention. */
export function fusedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D, scale: number): tf.Tensor4D {
  const d = check('fusedAttention', 'bhtd', q, k, v);
  if (!fusedKernelsAvailable() || q.size === 0 || k.size === 0) return stockAttention(q, k, v, mask, scale);
  if (mask.rank !== 4 || mask.shape[1] !== 1 || mask.shape[2] !== d.T || mask.shape[3] !== d.S || (mask.shape[0] !== 1 && mask.shape[0] !== d.B)) {
    throw new Error(`fusedAttention: mask [${mask.shape}] must be [1 or ${d.B}, 1, ${d.T}, ${d.S}]`);
  }
  const [out, lse] = runFused(NAME, { q, k, v, mask }, { mode: 'additive', layout: 'bhtd', scale });
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
export function fusedSegmentAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, segmentIds: tf.Tensor2D, opts: SegmentAttentionOptions = {}): tf.Tensor4D {
  const layout = opts.layout ?? 'bhtd';
  const d = check('fusedSegmentAttention', layout, q, k, v);
  if (d.S !== d.T) throw new Error(`fusedSegmentAttention: keys (${d.S}) and queries (${d.T}) must have the same length`);
  if (segmentIds.shape[0] !== d.B || segmentIds.shape[1] !== d.T) throw new Error(`fusedSegmentAttention: segmentIds [${segmentIds.shape}] must be [${d.B}, ${d.T}]`);
  const scale = opts.scale ?? 1 / Math.sqrt(d.D);
  if (!fusedKernelsAvailable() || q.size === 0) return stockSegmentAttention(q, k, v, segmentIds, layout, scale);
  const seg = segmentIds.dtype === 'int32' ? segmentIds : tf.cast(segmentIds, 'int32');
  const [out, lse] = runFused(NAME, { q, k, v, mask: seg }, { mode: 'segments', layout, scale });
  lse.dispose();
  if (seg !== segmentIds) seg.dispose();
  return out as tf.Tensor4D;
}

/** The stock composition (matMul, softmax, matMul; GQA by gathering kv heads). */
export function stockAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D, scale: number): tf.Tensor4D {
  return tf.tidy(() => {
    const H = q.shape[1], Hkv = k.shape[1];
    if (H !== Hkv) {
      const idx = tf.tensor1d(Array.from({ length: H }, (_, h) => Math.floor(h / (H / Hkv))), 'int32');
      k = tf.gather(k, idx, 1) as tf.Tensor4D;
      v = tf.gather(v, idx, 1) as tf.Tensor4D;
    }
    const probs = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), mask), -1);
    return tf.matMul(probs, v) as tf.Tensor4D;
  });
}

/** The additive [B, 1, T, T] mask of segment ids (0 visible, -1e9 hidden). */
export function segmentMask(segmentIds: tf.Tensor2D): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, T] = segmentIds.shape;
    const seg = tf.cast(segmentIds, 'int32');
    const causal = tf.lessEqual(tf.reshape(tf.range(0, T, 1, 'int32'), [1, 1, T]), tf.reshape(tf.range(0, T, 1, 'int32'), [1, T, 1]));
    const same = tf.logicalAnd(tf.equal(tf.reshape(seg, [B, T, 1]), tf.reshape(seg, [B, 1, T])), tf.notEqual(tf.reshape(seg, [B, T, 1]), tf.scalar(0, 'int32')));
    return tf.reshape(tf.mul(tf.sub(1, tf.cast(tf.logicalAnd(causal, same), 'float32')), -1e9), [B, 1, T, T]) as tf.Tensor4D;
  });
}

function stockSegmentAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, segmentIds: tf.Tensor2D, layout: Layout, scale: number): tf.Tensor4D {
  return tf.tidy(() => {
    const toBhtd = (t: tf.Tensor4D) => (layout === 'bhtd' ? t : tf.transpose(t, [0, 2, 1, 3]) as tf.Tensor4D);
    const out = stockAttention(toBhtd(q), toBhtd(k), toBhtd(v), segmentMask(segmentIds), scale);
    // Padding queries see nothing: zeros, as the fused kernel writes.
    const [B, T] = segmentIds.shape;
    const keep = tf.reshape(tf.cast(tf.notEqual(segmentIds, 0), 'float32'), [B, 1, T, 1]);
    const masked = tf.mul(out, keep) as tf.Tensor4D;
    return layout === 'bhtd' ? masked : tf.transpose(masked, [0, 2, 1, 3]) as tf.Tensor4D;
  });
}
