/**
 * AdamW with torch.optim.AdamW semantics, as a pair of functions (init, update), and global-norm
 * gradient clipping with torch.nn.utils.clip_grad_norm_ semantics.
 *
 * One update of a parameter p with gradient g, at step t (1-based), as torch computes it:
 *
 *   p  <- p * (1 - lr * weightDecay)                  decoupled weight decay, before the Adam step
 *   m  <- beta1 * m + (1 - beta1) * g                 exp_avg
 *   v  <- beta2 * v + (1 - beta2) * g^2               exp_avg_sq
 *   p  <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * eps is added to sqrt(v_hat), not inside the square root. amsgrad is not implemented.
 *
 * @example
 *   const state = adamwInit(model.trainableParams());
 *   const { grads } = tf.variableGrads(lossFn);                      // keyed by variable name
 *   adamwUpdate(gradsByParamName, state, model.trainableParams(), { lr: 1e-3 });
 *   state.step;                                                        // 1
 */
import * as tf from '@tensorflow/tfjs';
import { MODEL_FAMILIES } from '../../models/families/index.js';

/** Hyper-parameters of one AdamW update. Defaults are torch.optim.AdamW's. */
export interface AdamWHyperParams {
  /** Learning rate of this step (the schedule's value). */
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Added to sqrt(v_hat). Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay. Default 0.01 (torch's AdamW default; transformers' Trainer uses 0.0). */
  weightDecay?: number;
}

/**
 * Which parameters receive weight decay. `'all'` decays every parameter (torch's default when
 * one parameter group is used); `'default'` excludes norms, biases and embeddings (see
 * {@link defaultDecayFilter}); a function decides per parameter.
 */
export type DecayFilter = 'all' | 'default' | ((name: string, shape: number[]) => boolean);

export interface AdamWInitOptions {
  /** Default 'default' (no decay for norms, biases, embeddings). */
  decay?: DecayFilter;
}

/** Optimizer state: first and second moments per parameter (by HF name), updated in place. */
export interface AdamWState {
  /** Number of updates applied so far (torch's `state['step']`, shared by every parameter). */
  step: number;
  /** exp_avg per parameter name, same shape as the parameter. */
  m: Map<string, tf.Variable>;
  /** exp_avg_sq per parameter name. */
  v: Map<string, tf.Variable>;
  /** Whether weight decay applies to each parameter. */
  decay: Map<string, boolean>;
}

/**
 * No weight decay for parameters that are 1-D (every bias and norm weight) or whose Hugging
 * Face name contains 'bias' or a fragment of a family's noDecay list (models/families/: its
 * norms, e.g. GPT-2 'ln_', Llama 'norm', and its embeddings, 'wte', 'wpe', 'embed_tokens'). transformers' Trainer excludes biases and norm weights; embeddings are
 * excluded here as well, as nanoGPT and most SFT recipes do, because decaying rarely-seen
 * token rows towards zero only hurts them. A tied lm_head shares the wte variable and so is
 * not decayed either; an untied `lm_head.weight` is decayed.
 */
const NO_DECAY = ['bias', ...new Set(Object.values(MODEL_FAMILIES).flatMap((f) => f.noDecay))];

export function defaultDecayFilter(name: string, shape: number[]): boolean {
  if (shape.length <= 1) return false;
  const n = name.toLowerCase();
  for (const key of NO_DECAY) if (n.includes(key)) return false;
  return true;
}

function resolveFilter(decay: DecayFilter | undefined): (name: string, shape: number[]) => boolean {
  if (decay === undefined || decay === 'default') return defaultDecayFilter;
  if (decay === 'all') return () => true;
  return decay;
}

/** Creates zeroed moments for every parameter. Variables are non-trainable. */
export function adamwInit(params: Map<string, tf.Variable>, opts: AdamWInitOptions = {}): AdamWState {
  const filter = resolveFilter(opts.decay);
  const m = new Map<string, tf.Variable>();
  const v = new Map<string, tf.Variable>();
  const decay = new Map<string, boolean>();
  for (const [name, p] of params) {
    m.set(name, tf.variable(tf.zerosLike(p), false));
    v.set(name, tf.variable(tf.zerosLike(p), false));
    decay.set(name, filter(name, p.shape));
  }
  // tf.variable copies its initial value; the zerosLike tensors were kept alive by nothing else.
  return { step: 0, m, v, decay };
}

/**
 * The host side of one AdamW step, shared by adamwUpdate and the fused kernel: checks that every
 * gradient has a parameter and moments, advances the step, and returns the step's scalars,
 * computed in float64 on the host exactly as torch does for its Python floats.
 */
export function adamwBeginStep(
  caller: string, grads: Map<string, unknown>, state: { step: number; m: Map<string, unknown> },
  params: Map<string, unknown>, hp: { lr: number; beta1?: number; beta2?: number },
): { stepSize: number; biasCorrection2Sqrt: number } {
  const { lr, beta1 = 0.9, beta2 = 0.999 } = hp;
  for (const name of grads.keys()) {
    if (!params.has(name)) throw new Error(`${caller}: gradient for '${name}', which is not a parameter`);
    if (!state.m.has(name)) throw new Error(`${caller}: no optimizer state for '${name}' (call adamwInit with the same parameters)`);
  }
  state.step += 1;
  const t = state.step;
  return { stepSize: lr / (1 - Math.pow(beta1, t)), biasCorrection2Sqrt: Math.sqrt(1 - Math.pow(beta2, t)) };
}

/**
 * Applies one AdamW step in place to every parameter that has a gradient. `grads` is keyed by
 * the same names as `params`; a parameter without a gradient is left alone (its moments too),
 * as torch skips parameters whose .grad is None. The gradients are not disposed.
 */
export function adamwUpdate(
  grads: Map<string, tf.Tensor>,
  state: AdamWState,
  params: Map<string, tf.Variable>,
  hp: AdamWHyperParams,
): void {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = hp;
  const { stepSize, biasCorrection2Sqrt } = adamwBeginStep('adamwUpdate', grads, state, params, hp);
  for (const [name, g] of grads) {
    const p = params.get(name)!;
    const m = state.m.get(name)!;
    const v = state.v.get(name)!;
    const decayed = state.decay.get(name) && weightDecay !== 0 && lr !== 0;
    tf.tidy(() => {
      const p0 = decayed ? p.mul(1 - lr * weightDecay) : p;
      // torch: exp_avg.lerp_(grad, 1 - beta1), i.e. m + (1 - beta1) * (g - m)
      const m1 = m.add(g.sub(m).mul(1 - beta1));
      const v1 = v.mul(beta2).add(g.square().mul(1 - beta2));
      const denom = v1.sqrt().div(biasCorrection2Sqrt).add(eps);
      const p1 = p0.sub(m1.div(denom).mul(stepSize));
      m.assign(m1);
      v.assign(v1);
      p.assign(p1);
    });
  }
}

/** Disposes the moment variables. */
export function adamwDispose(state: AdamWState): void {
  for (const t of state.m.values()) t.dispose();
  for (const t of state.v.values()) t.dispose();
  state.m.clear();
  state.v.clear();
}

/**
 * The global L2 norm of all gradients together (torch clip_grad_norm_ with norm_type 2), as a
 * scalar tensor. Names are visited in sorted order so the float32 sum does not depend on the
 * order in which a model happened to create its parameters (a resumed run stays bit-exact).
 */
export function globalNorm(grads: Map<string, tf.Tensor>): tf.Scalar {
  return tf.tidy(() => {
    const names = [...grads.keys()].sort();
    if (names.length === 0) return tf.scalar(0);
    // torch: total_norm = vector_norm(stack([vector_norm(g) for g in grads]))
    const norms = names.map((n) => tf.norm(grads.get(n)!));
    return tf.norm(tf.stack(norms)) as tf.Scalar;
  });
}

/**
 * Scales gradients so their global norm is at most `maxNorm`, torch's clip_grad_norm_:
 * coef = maxNorm / (totalNorm + 1e-6), applied only when coef < 1. Returns new gradient
 * tensors (the inputs are not disposed) and the pre-clip norm as a scalar tensor. Everything
 * stays on the device; nothing is read back.
 */
export function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): { grads: Map<string, tf.Tensor>; totalNorm: tf.Scalar } {
  const totalNorm = globalNorm(grads);
  const clipped = new Map<string, tf.Tensor>();
  const coef = tf.tidy(() => tf.minimum(tf.scalar(maxNorm).div(totalNorm.add(1e-6)), 1));
  for (const [name, g] of grads) clipped.set(name, g.mul(coef));
  coef.dispose();
  return { grads: clipped, totalNorm };
}

/**
 * The clip-and-update phase of a step, replaceable (e.g. by fused WebGPU kernels). prepare()
 * receives the accumulated gradients (owned by the trainer; do not dispose them) and the
 * clipping threshold (0: no clipping); it returns the pre-clip global norm, an apply() the
 * trainer calls only when the loss and norm are finite, and a dispose() always called after.
 */
export interface UpdateRule {
  prepare(grads: Map<string, tf.Tensor>, maxGradNorm: number): PreparedUpdate;
}

export interface PreparedUpdate {
  /** Pre-clip global L2 norm (torch clip_grad_norm_'s return value). Freed by dispose(). */
  totalNorm: tf.Scalar;
  /** Applies AdamW with the clipped gradients, in place. */
  apply(state: AdamWState, params: Map<string, tf.Variable>, hp: AdamWHyperParams): void;
  dispose(): void;
}

/** clipGradNorm (scaled copies of the gradients) then adamwUpdate: the reference update rule. */
export const stockUpdateRule: UpdateRule = {
  prepare(grads, maxGradNorm) {
    if (maxGradNorm > 0) {
      const { grads: clipped, totalNorm } = clipGradNorm(grads, maxGradNorm);
      return {
        totalNorm,
        apply: (state, params, hp) => adamwUpdate(clipped, state, params, hp),
        dispose: () => { totalNorm.dispose(); for (const g of clipped.values()) g.dispose(); },
      };
    }
    const totalNorm = globalNorm(grads);
    return { totalNorm, apply: (state, params, hp) => adamwUpdate(grads, state, params, hp), dispose: () => totalNorm.dispose() };
  },
};
