/**
 * Causal self-attention: the mask (causal + packed segments + padding), RoPE, and the GPT-2 and
 * Llama attention modules. The score/softmax/value core is the engine's `ops.attention`.
 */
import * as tf from '@tensorflow/tfjs';
import { stockOps, type LayerContext } from './ops.js';
import type { Linear } from './linear.js';

/** Keys and values of one layer kept for incremental decoding. */
export interface LayerKV {
  k: tf.Tensor4D;   // [B, Hkv, S, D] (after RoPE for Llama)
  v: tf.Tensor4D;   // [B, Hkv, S, D]
}

/**
 * The additive attention mask, built once per forward and shared by every layer.
 *
 * Query i (absolute index offset + i) sees key j by the rule of src/nn/visibility.ts: causal,
 * within its segment, and a padding query (segment 0) sees only its own position, so no row is
 * ever fully masked (no NaN, no gradient leaking through a degenerate softmax); padding logits
 * are meaningless and ignored by the labels.
 *
 * segQ int32 [B, T] and segK int32 [B, S] (segK ends with segQ; with a KV cache it starts with
 * the cached segments). Both null: causal only, [1, 1, T, S]. This is the stock op, the
 * reference; a model builds its mask with its engine's ops.attentionMask.
 */
export function buildAttentionMask(segQ: tf.Tensor2D | null, segK: tf.Tensor2D | null, offset: number, T: number, S: number): tf.Tensor4D {
  return stockOps.attentionMask(segQ, segK, offset, T, S);
}

/**
 * Plain self-attention (no cached keys, queries and keys the same T positions): the segment
 * ids the mask was built from, int32 [B, T], or null for causal only. With it the attention
 * modules call ops.attentionSegments / attentionPacked, so a fused entry never reads the mask.
 */
export interface SelfSegments {
  segmentIds: tf.Tensor2D | null;
}

/** cos and sin of the rotary angles, [B, 1, T, D], computed once per forward from the positions. */
export interface Rope {
  cos: tf.Tensor4D;
  sin: tf.Tensor4D;
}

/** HF LlamaRotaryEmbedding (default rope_type): angle[t, d] = pos[t] / theta^(2(d mod D/2)/D), halves repeated. */
export function ropeTables(positionIds: tf.Tensor2D, headDim: number, theta: number): Rope {
  return tf.tidy(() => {
    const [B, T] = positionIds.shape;
    const half = headDim / 2;
    // inv_freq in float32 exactly as HF computes it: 1 / theta ** (arange(0, D, 2) / D).
    const invFreq = new Float32Array(headDim);
    for (let d = 0; d < half; d++) invFreq[d] = invFreq[d + half] = 1 / Math.pow(theta, (2 * d) / headDim);
    const angles = tf.mul(tf.reshape(tf.cast(positionIds, 'float32'), [B, 1, T, 1]), tf.tensor1d(invFreq));  // [B, 1, T, D]
    return { cos: tf.cos(angles) as tf.Tensor4D, sin: tf.sin(angles) as tf.Tensor4D };
  });
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = [-x2, x1] with x = [x1, x2] split in halves. x [B, H, T, D]. */
export function applyRope(x: tf.Tensor4D, rope: Rope): tf.Tensor4D {
  return tf.tidy(() => {
    const D = x.shape[3];
    const [x1, x2] = tf.split(x, [D / 2, D / 2], 3);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, rope.cos), tf.mul(rotated, rope.sin)) as tf.Tensor4D;
  });
}

/** What every attention module reads besides x (and the engine's ops, training, LoRA dropout seed). */
export interface AttentionContext extends LayerContext {
  mask: tf.Tensor4D;        // [B or 1, 1, T, S] additive
  selfSegments?: SelfSegments;   // set when this is plain self-attention (see SelfSegments)
  rope?: Rope;              // Llama only
  past?: LayerKV;           // cached keys/values of earlier positions
}

/** [B, T, H*D] -> [B, H, T, D] */
function splitHeads(x: tf.Tensor, H: number, D: number): tf.Tensor4D {
  const [B, T] = x.shape;
  return tf.transpose(tf.reshape(x, [B, T, H, D]), [0, 2, 1, 3]);
}

/** [B, H, T, D] -> [B, T, H*D] */
function mergeHeads(x: tf.Tensor4D): tf.Tensor3D {
  const [B, H, T, D] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B, T, H * D]);
}

/** Keys/values [B, H, T, D] made only if read (a KV cache reads them; a training step does not). */
function lazyKV(make: () => tf.Tensor[]): LayerKV {
  let kv: tf.Tensor4D[] | undefined;
  const get = () => (kv ??= make() as tf.Tensor4D[]);
  return { get k() { return get()[0]; }, get v() { return get()[1]; } };
}

function withPast(past: LayerKV | undefined, k: tf.Tensor4D, v: tf.Tensor4D): LayerKV {
  if (!past) return { k, v };
  return { k: tf.concat([past.k, k], 2), v: tf.concat([past.v, v], 2) };
}

/**
 * GPT-2 attention: one fused c_attn projection to q, k, v (Conv1D [C, 3C]), then c_proj.
 * Call inside tf.tidy (CausalLM.forward does): the returned K/V may have to outlive the call.
 */
export class GPT2Attention {
  constructor(readonly cAttn: Linear, readonly cProj: Linear, readonly nHead: number) {}

  /** x [B, T, C] -> out [B, T, C] and the layer's keys/values including the past ones. */
  apply(x: tf.Tensor3D, ctx: AttentionContext): { out: tf.Tensor3D; kv: LayerKV } {
    const C = x.shape[2], H = this.nHead, D = C / H;
    const qkv = this.cAttn.apply(x, ctx);                    // [B, T, 3C]
    const self = ctx.past ? undefined : ctx.selfSegments;
    if (self) {
      // Straight from the packed projection (no split, no head transposes on a fused path).
      const y = ctx.ops.attentionPacked(qkv as tf.Tensor3D, H, H, self.segmentIds, 1 / Math.sqrt(D), ctx.mask);   // [B, T, C]
      return { out: this.cProj.apply(y, ctx) as tf.Tensor3D, kv: lazyKV(() => tf.split(qkv, 3, 2).slice(1).map((t) => splitHeads(t, H, D))) };
    }
    const [q, k, v] = tf.split(qkv, 3, 2).map((t) => splitHeads(t, H, D));    // [B, H, T, D] each
    const kv = withPast(ctx.past, k, v);                                        // [B, H, S, D]
    const y = ctx.ops.attention(q, kv.k, kv.v, ctx.mask, 1 / Math.sqrt(D));         // [B, H, T, D]
    return { out: this.cProj.apply(mergeHeads(y), ctx) as tf.Tensor3D, kv };
  }
}

/** Llama attention: q/k/v/o projections, grouped-query attention, RoPE on q and k. Call inside tf.tidy, like GPT2Attention. */
export class LlamaAttention {
  constructor(readonly q: Linear, readonly k: Linear, readonly v: Linear, readonly o: Linear,
    readonly nHead: number, readonly nKVHead: number, readonly headDim: number) {}

  apply(x: tf.Tensor3D, ctx: AttentionContext): { out: tf.Tensor3D; kv: LayerKV } {
    if (!ctx.rope) throw new Error('LlamaAttention needs RoPE tables in its context.');
    const D = this.headDim;
    const q = applyRope(splitHeads(this.q.apply(x, ctx), this.nHead, D), ctx.rope);   // [B, H, T, D]
    const k = applyRope(splitHeads(this.k.apply(x, ctx), this.nKVHead, D), ctx.rope); // [B, Hkv, T, D]
    const v = splitHeads(this.v.apply(x, ctx), this.nKVHead, D);                       // [B, Hkv, T, D]
    const kv = withPast(ctx.past, k, v);
    const self = ctx.past ? undefined : ctx.selfSegments;
    const y = self
      ? ctx.ops.attentionSegments(q, k, v, self.segmentIds, 1 / Math.sqrt(D), ctx.mask)                      // [B, H, T, D]
      : ctx.ops.attention(q, kv.k, kv.v, ctx.mask, 1 / Math.sqrt(D));
    return { out: this.o.apply(mergeHeads(y), ctx) as tf.Tensor3D, kv };
  }
}
