/**
 * The primitive ops the model calls, as a table an engine provides (src/engine).
 *
 * Every layer goes through `run.ops.<name>(...)`, never straight to a tfjs composite, so a fused
 * WebGPU kernel (kernels/) is one more entry of an engine's table and the model does not change:
 *
 *   const model = CausalLM.create(config, { engine: fusedEngine });   // its layers call fusedOps
 *
 * An entry of another table must have the same signature, the same numerics within float32
 * tolerance, and be differentiable (tf.customGrad or registered gradients), because training
 * calls it too. The stock entries below are the reference the others are tested against.
 */
import * as tf from '@tensorflow/tfjs';
import { makeLinearCrossEntropy, type LinearHead } from './linear_cross_entropy.js';
import { IGNORE_INDEX } from '../data/labels.js';

/** Added to the scores of a masked key. Large enough that exp() underflows to 0, small enough that a row masked everywhere stays finite (uniform), never NaN. */
export const MASK_VALUE = -1e9;

export interface Ops {
  /** (x - mean) / sqrt(var + eps) * gamma + beta over the last axis. x [..., C], gamma/beta [C]. */
  layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor;
  /** x / sqrt(mean(x^2) + eps) * weight over the last axis (Llama RMSNorm). */
  rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor;
  /**
   * softmax(q·kᵀ·scale + mask)·v with grouped-query attention: head h of q reads K/V head
   * floor(h / (H / Hkv)) (HF repeat_kv). q [B, H, T, D], k/v [B, Hkv, S, D], mask additive
   * [B or 1, 1, T, S] (0 = visible, MASK_VALUE = hidden). Returns [B, H, T, D].
   */
  attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D, scale: number): tf.Tensor4D;
  /** GELU: 'tanh' is the approximation of gelu_new / gelu_pytorch_tanh; 'erf' is exact. */
  gelu(x: tf.Tensor, approximate: 'tanh' | 'erf'): tf.Tensor;
  /** silu(gate) * up, the SwiGLU product of Llama's MLP. */
  swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor;
  /** Per-row -log softmax(logits)[target]. logits [N, V], targets int32 [N] in [0, V). Returns [N]. */
  crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D;
  /**
   * The additive attention mask [B or 1, 1, T, S] of query segments segQ [B, T] and key segments
   * segK [B, S] at absolute query offset `offset` (see src/nn/attention.ts buildAttentionMask).
   */
  attentionMask(segQ: tf.Tensor2D | null, segK: tf.Tensor2D | null, offset: number, T: number, S: number): tf.Tensor4D;
  /**
   * Causal self-attention over segment ids: q [B, H, T, D], k/v [B, Hkv, T, D], segmentIds int32
   * [B, T] (0 = padding, which attends to itself only) or null (causal only). Equals
   * attention(q, k, v, attentionMask(seg, seg, 0, T, T), scale); `mask`, when the caller already
   * has that mask, saves the stock entry from building it again (a fused entry never reads it).
   */
  attentionSegments(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, segmentIds: tf.Tensor2D | null, scale: number, mask?: tf.Tensor4D): tf.Tensor4D;
  /**
   * attentionSegments straight from a packed projection qkv [B, T, (H + 2 Hkv) D] (q heads, then
   * k heads, then v heads, as GPT-2's c_attn lays them out) to [B, T, H D] (heads merged).
   */
  attentionPacked(qkv: tf.Tensor3D, heads: number, kvHeads: number, segmentIds: tf.Tensor2D | null, scale: number, mask?: tf.Tensor4D): tf.Tensor3D;
  /** sum = x + residual and y = layerNorm(sum). */
  addLayerNorm(x: tf.Tensor, residual: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): { sum: tf.Tensor; y: tf.Tensor };
  /** sum = x + residual and y = rmsNorm(sum). */
  addRmsNorm(x: tf.Tensor, residual: tf.Tensor, weight: tf.Tensor1D, eps: number): { sum: tf.Tensor; y: tf.Tensor };
  /** gelu(x + bias), bias [C] over the last axis. */
  biasGelu(x: tf.Tensor, bias: tf.Tensor1D, approximate: 'tanh' | 'erf'): tf.Tensor;
  /**
   * Masked causal-LM cross-entropy (src/train/loss.ts contract): logits [B, T, V], labels int32
   * [B, T] unshifted with -100 ignored; loss = sum / max(count, 1), per-row sums and counts.
   */
  maskedCrossEntropy(logits: tf.Tensor3D, labels: tf.Tensor2D): { loss: tf.Scalar; rowSums: tf.Tensor1D; rowCounts: tf.Tensor1D };
  /**
   * A linear layer on rows: x [N, in] -> x·W (transposeB: x·Wᵀ) (+ bias [out]) (+ scaling ·
   * (loraInput·Aᵀ)·Bᵀ with lora.A [r, in], lora.B [out, r]; loraInput is x, or x after LoRA dropout).
   */
  linear(x: tf.Tensor2D, weight: tf.Tensor2D, transposeB: boolean, bias?: tf.Tensor1D, lora?: LoraBranch): tf.Tensor2D;
  /**
   * maskedCrossEntropy(linear(hidden) as [B, T, V], labels) without ever holding the [B·T, V]
   * logits or their gradient: hidden [B, T, C] is run through the head `chunkRows` rows at a time
   * (src/nn/linear_cross_entropy.ts). Same loss, rowSums, rowCounts and gradients.
   */
  linearCrossEntropy(hidden: tf.Tensor3D, head: LinearHead, labels: tf.Tensor2D, chunkRows: number): { loss: tf.Scalar; rowSums: tf.Tensor1D; rowCounts: tf.Tensor1D };
}

/**
 * What every layer reads besides its input: the ops table of the engine its model is bound to,
 * and whether this is training (LoRA dropout) with the seed of that randomness.
 */
export interface LayerContext {
  ops: Readonly<Ops>;
  training?: boolean;
  /** Seed for training-time randomness (LoRA dropout); each module derives its own stream from it. */
  seed?: number;
}

/** The low-rank branch ops.linear adds (see Linear in src/nn/linear.ts). */
export interface LoraBranch {
  A: tf.Tensor2D;        // [r, in]
  B: tf.Tensor2D;        // [out, r]
  scaling: number;
  input: tf.Tensor2D;    // [N, in]: x, or x after dropout
}

function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const { mean, variance } = tf.moments(x, axis, true);       // biased variance, like torch
    const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(xhat, gamma), beta);
  });
}

function rmsNorm(x: tf.Tensor, weight: tf.Tensor1D, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), x.rank - 1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), weight);
  });
}

function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor4D, scale: number): tf.Tensor4D {
  return tf.tidy(() => {
    const H = q.shape[1], Hkv = k.shape[1];
    if (H !== Hkv) {
      // repeat_kv: query head h uses K/V head floor(h / rep). One gather per tensor; its gradient sums the groups.
      const rep = H / Hkv;
      const idx = tf.tensor1d(Array.from({ length: H }, (_, h) => Math.floor(h / rep)), 'int32');
      k = tf.gather(k, idx, 1) as tf.Tensor4D;
      v = tf.gather(v, idx, 1) as tf.Tensor4D;
    }
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), scale), mask);   // [B, H, T, S]
    const probs = tf.softmax(scores, -1);
    return tf.matMul(probs, v) as tf.Tensor4D;                                     // [B, H, T, D]
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function gelu(x: tf.Tensor, approximate: 'tanh' | 'erf'): tf.Tensor {
  return tf.tidy(() => {
    if (approximate === 'erf') return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  });
}

function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up));
}

/**
 * Cross-entropy with a hand-written gradient: forward is logSumExp - target logit (the target
 * logit gathered, no one-hot in the forward), backward is (softmax - onehot) * dy, the one
 * [N, V] tensor autograd would build anyway, in three ops instead of a dozen.
 */
function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const f = tf.customGrad(((lg: tf.Tensor, tg: tf.Tensor, save: tf.GradSaveFunc) => {
    const [N, V] = lg.shape as [number, number];
    const lse = tf.logSumExp(lg, 1);                                                   // [N]
    const flat = tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), tg as tf.Tensor1D);   // [N] index into [N*V]
    const picked = tf.gather(tf.reshape(lg, [N * V]), flat);                          // [N]
    save([lg, tg, lse]);
    return {
      value: tf.sub(lse, picked),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [l, t, s] = saved;
        const probs = tf.exp(tf.sub(l, tf.expandDims(s, 1)));                        // [N, V]
        const onehot = tf.oneHot(t as tf.Tensor1D, V);
        return [tf.mul(tf.sub(probs, onehot), tf.expandDims(dy, 1)), tf.zerosLike(t)];
      },
    };
  }) as any);
  return f(logits, targets) as tf.Tensor1D;
}

/** The rule of src/nn/visibility.ts (`attends`) over whole tensors: [B or 1, 1, T, S], 0 where visible, MASK_VALUE where not. */
function attentionMask(segQ: tf.Tensor2D | null, segK: tf.Tensor2D | null, offset: number, T: number, S: number): tf.Tensor4D {
  return tf.tidy(() => {
    const qi = tf.reshape(tf.range(offset, offset + T, 1, 'int32'), [T, 1]);
    const kj = tf.reshape(tf.range(0, S, 1, 'int32'), [1, S]);
    let allowed: tf.Tensor = tf.lessEqual(kj, qi);                                    // [T, S]
    if (segQ && segK) {
      const B = segQ.shape[0];
      const q = tf.reshape(segQ, [B, T, 1]);
      const k = tf.reshape(segK, [B, 1, S]);
      const isPad = tf.equal(q, tf.scalar(0, 'int32'));                                   // [B, T, 1]
      const same = tf.logicalAnd(tf.equal(q, k), tf.logicalNot(isPad));                     // [B, T, S]
      // A padding query attends to itself only: a proper one-key softmax, so forward and
      // gradient stay finite and consistent (its logits are ignored by the labels anyway).
      allowed = tf.logicalOr(tf.logicalAnd(same, allowed), tf.logicalAnd(isPad, tf.equal(kj, qi)));
    }
    const mask = tf.mul(tf.sub(1, tf.cast(allowed, 'float32')), MASK_VALUE);         // 0 where allowed
    return tf.reshape(mask, allowed.rank === 2 ? [1, 1, T, S] : [allowed.shape[0], 1, T, S]) as tf.Tensor4D;
  });
}

function attentionSegments(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, segmentIds: tf.Tensor2D | null, scale: number, mask?: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const T = q.shape[2];
    return attention(q, k, v, mask ?? attentionMask(segmentIds, segmentIds, 0, T, T), scale);
  });
}

function attentionPacked(qkv: tf.Tensor3D, heads: number, kvHeads: number, segmentIds: tf.Tensor2D | null, scale: number, mask?: tf.Tensor4D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, T, W] = qkv.shape;
    const D = W / (heads + 2 * kvHeads);
    const parts = heads === kvHeads ? tf.split(qkv, 3, 2) : tf.split(qkv, [heads * D, kvHeads * D, kvHeads * D], 2);
    // [B, T, X*D] -> [B, X, T, D]
    const [q, k, v] = parts.map((t, i) => tf.transpose(tf.reshape(t, [B, T, i === 0 ? heads : kvHeads, D]), [0, 2, 1, 3]) as tf.Tensor4D);
    const y = attentionSegments(q, k, v, segmentIds, scale, mask);                  // [B, H, T, D]
    return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, heads * D]) as tf.Tensor3D;
  });
}

function addLayerNorm(x: tf.Tensor, residual: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): { sum: tf.Tensor; y: tf.Tensor } {
  const sum = tf.add(x, residual);
  return { sum, y: layerNorm(sum, gamma, beta, eps) };
}

function addRmsNorm(x: tf.Tensor, residual: tf.Tensor, weight: tf.Tensor1D, eps: number): { sum: tf.Tensor; y: tf.Tensor } {
  const sum = tf.add(x, residual);
  return { sum, y: rmsNorm(sum, weight, eps) };
}

function biasGelu(x: tf.Tensor, bias: tf.Tensor1D, approximate: 'tanh' | 'erf'): tf.Tensor {
  return tf.tidy(() => gelu(tf.add(x, bias), approximate));
}

function linear(x: tf.Tensor2D, weight: tf.Tensor2D, transposeB: boolean, bias?: tf.Tensor1D, lora?: LoraBranch): tf.Tensor2D {
  return tf.tidy(() => {
    let y = tf.matMul(x, weight, false, transposeB);                                  // [N, out]
    if (bias) y = tf.add(y, bias);
    if (lora) {
      const low = tf.matMul(lora.input, lora.A, false, true);                         // [N, r]
      y = tf.add(y, tf.mul(tf.matMul(low, lora.B, false, true), lora.scaling));       // [N, out]
    }
    return y as tf.Tensor2D;
  });
}

/**
 * The shift is done on the labels (labels[:, 1:] padded with -100), so the logits are never
 * sliced or copied; the per-position loss is crossEntropy.
 */
function maskedCrossEntropy(logits: tf.Tensor3D, labels: tf.Tensor2D): { loss: tf.Scalar; rowSums: tf.Tensor1D; rowCounts: tf.Tensor1D } {
  const [B, T, V] = logits.shape;
  return tf.tidy(() => {
    // targets[t] = labels[t + 1]; the last position predicts nothing.
    const shifted = tf.concat([tf.slice(labels, [0, 1], [B, T - 1]), tf.fill([B, 1], IGNORE_INDEX, 'int32')], 1);  // [B, T]
    const trained = tf.notEqual(shifted, tf.scalar(IGNORE_INDEX, 'int32'));                                         // [B, T] bool
    const targets = tf.where(trained, shifted, tf.zerosLike(shifted));                                              // any valid id where ignored
    const weights = tf.cast(trained, 'float32');                                                                     // [B, T]
    const nll = crossEntropy(tf.reshape(logits, [B * T, V]), tf.reshape(targets, [B * T]));                    // [B*T]
    const perToken = tf.mul(tf.reshape(nll, [B, T]), weights);                                                       // [B, T]
    const rowSums = tf.sum(perToken, 1) as tf.Tensor1D;
    const rowCounts = tf.sum(weights, 1) as tf.Tensor1D;
    const loss = tf.div(tf.sum(rowSums), tf.maximum(tf.sum(rowCounts), 1)) as tf.Scalar;
    return { loss, rowSums, rowCounts };
  });
}

/** The stock tfjs implementations: the reference for any fused replacement. */
export const stockOps: Readonly<Ops> = Object.freeze({
  layerNorm, rmsNorm, attention, gelu, swiglu, crossEntropy,
  attentionMask, attentionSegments, attentionPacked, addLayerNorm, addRmsNorm, biasGelu, maskedCrossEntropy, linear,
  linearCrossEntropy: makeLinearCrossEntropy({ linear, crossEntropy }),
});
