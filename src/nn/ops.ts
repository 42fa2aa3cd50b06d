/**
 * The primitive ops the model calls, as one replaceable table.
 *
 * Every layer goes through `ops.<name>(...)`, never straight to a tfjs composite, so a fused
 * WebGPU kernel (kernels/) can replace an entry without touching the model:
 *
 *   const restore = setOps({ layerNorm: fusedLayerNorm });
 *   ...                        // the model now runs the fused kernel
 *   restore();                 // back to the previous table
 *
 * A replacement must have the same signature, the same numerics within float32 tolerance, and
 * be differentiable (tf.customGrad or registered gradients), because training calls it too.
 * The stock entries below are the reference the replacements are tested against.
 */
import * as tf from '@tensorflow/tfjs';

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

/** The stock tfjs implementations: the reference for any fused replacement. */
export const stockOps: Readonly<Ops> = Object.freeze({ layerNorm, rmsNorm, attention, gelu, swiglu, crossEntropy });

/** The live table the model calls. Change it through setOps. */
export const ops: Ops = { ...stockOps };

/** Replaces some entries; returns a function that restores the table as it was. */
export function setOps(replacements: Partial<Ops>): () => void {
  const before = { ...ops };
  Object.assign(ops, replacements);
  return () => { Object.assign(ops, before); };
}
