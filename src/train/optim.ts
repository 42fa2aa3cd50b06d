/**
 * AdamW with torch.optim.AdamW semantics and global-norm clipping with
 * torch.nn.utils.clip_grad_norm_ semantics, as plain functions (adamwInit / adamwUpdate,
 * clipGradNorm) and as optax-style gradient transformations { init, update } that compose with
 * chain(): the trainer's optimizer is chain(clipByGlobalNorm(maxGradNorm), adamw({...})).
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
 *   const opt = chain(clipByGlobalNorm(1.0), adamw({ weightDecay: 0.1 }));
 *   const state = opt.init(params);                              // [{}, { step: 0, m, v, decay }]
 *   const u = opt.update(grads, state, params, { lr: 1e-3 });    // grads: Map by parameter name
 *   const norm = await u.gradNorm!.data();                        // pre-clip global norm
 *   if (Number.isFinite(norm[0])) u.apply();                      // params and moments change in place
 *   u.dispose();
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

// -----------------------------------------------------------------------------------------------
// Gradient transformations (optax's shape): an optimizer is { init, update }, and transformations
// compose with chain(). Updates are in place (tfjs variables), so update() returns a pending
// update the caller commits with apply() or drops: the trainer reads the loss and the pre-clip
// norm first and skips the step when either is not finite, without touching the state.

/** The per-step values of an update (the schedule's learning rate). */
export interface UpdateHyperParams {
  lr: number;
}

/** What update() returns: computed on the device, committed only by apply(). */
export interface PendingUpdate {
  /**
   * The gradients handed to the next transformation of a chain: scaled copies for
   * clipByGlobalNorm, the input unchanged for a transformation that applies the step (adamw).
   */
  grads: Map<string, tf.Tensor>;
  /** The global L2 norm of the gradients as they came in (torch clip_grad_norm_'s return value), where measured. */
  gradNorm?: tf.Scalar;
  /** Commits the update: parameters and state change in place. Call at most once. */
  apply(): void;
  /** Frees what update() made (after apply(), or instead of it for a skipped step). Input gradients are not freed. */
  dispose(): void;
}

/** A gradient transformation with state S. */
export interface GradientTransformation<S> {
  init(params: Map<string, tf.Variable>): S;
  update(grads: Map<string, tf.Tensor>, state: S, params: Map<string, tf.Variable>, hp: UpdateHyperParams): PendingUpdate;
  /** Frees the state's tensors. */
  dispose(state: S): void;
}

type StatesOf<T extends readonly GradientTransformation<unknown>[]> = { [K in keyof T]: T[K] extends GradientTransformation<infer S> ? S : never };

/**
 * Transformations applied in order, each to the gradients the previous one handed on; the state
 * is the tuple of their states and the reported norm is the first one measured (optax.chain).
 *
 *   chain(clipByGlobalNorm(1.0), adamw({ weightDecay: 0.1 }))
 */
export function chain<T extends readonly GradientTransformation<any>[]>(...ts: T): GradientTransformation<StatesOf<T>> {
  return {
    init: (params) => ts.map((t) => t.init(params)) as unknown as StatesOf<T>,
    update(grads, state, params, hp) {
      const parts: PendingUpdate[] = [];
      let g = grads;
      try {
        ts.forEach((t, i) => { parts.push(t.update(g, (state as unknown[])[i], params, hp)); g = parts[parts.length - 1].grads; });
      } catch (e) {
        for (const p of parts.reverse()) p.dispose();
        throw e;
      }
      return {
        grads: g,
        gradNorm: parts.find((p) => p.gradNorm)?.gradNorm,
        apply: () => { for (const p of parts) p.apply(); },
        dispose: () => { for (const p of [...parts].reverse()) p.dispose(); },
      };
    },
    dispose: (state) => ts.forEach((t, i) => t.dispose((state as unknown[])[i])),
  };
}

/** clipByGlobalNorm has no state. */
export type ClipState = Record<string, never>;

/**
 * torch clip_grad_norm_ as a transformation: hands on gradients scaled by
 * min(1, maxNorm / (norm + 1e-6)) and reports the pre-clip norm. maxNorm 0 or Infinity only
 * measures the norm (the gradients are handed on as they are).
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<ClipState> {
  const clips = maxNorm > 0 && Number.isFinite(maxNorm);
  return {
    init: () => ({}),
    update(grads) {
      if (!clips) {
        const gradNorm = globalNorm(grads);
        return { grads, gradNorm, apply: () => {}, dispose: () => gradNorm.dispose() };
      }
      const { grads: clipped, totalNorm } = clipGradNorm(grads, maxNorm);
      return { grads: clipped, gradNorm: totalNorm, apply: () => {}, dispose: () => { totalNorm.dispose(); for (const g of clipped.values()) g.dispose(); } };
    },
    dispose: () => {},
  };
}

/** AdamW's settings that do not change per step (the learning rate comes with each update). */
export type AdamWOptions = Omit<AdamWHyperParams, 'lr'> & AdamWInitOptions;

/** torch.optim.AdamW as a transformation: apply() runs adamwUpdate (and advances state.step). */
export function adamw(opts: AdamWOptions = {}): GradientTransformation<AdamWState> {
  return {
    init: (params) => adamwInit(params, { decay: opts.decay }),
    update: (grads, state, params, hp) => ({
      grads,
      apply: () => adamwUpdate(grads, state, params, { ...opts, lr: hp.lr }),
      dispose: () => {},
    }),
    dispose: adamwDispose,
  };
}

/** The trainer's optimizer: clip by global norm, then AdamW. maxGradNorm 0 or Infinity: the norm is reported, nothing clipped. */
export interface ClipAdamWOptions extends AdamWOptions {
  maxGradNorm: number;
}

export type ClipAdamWState = [ClipState, AdamWState];

/** A clip-then-AdamW optimizer: its update always reports the pre-clip norm. */
export interface ClipAdamW extends GradientTransformation<ClipAdamWState> {
  update(grads: Map<string, tf.Tensor>, state: ClipAdamWState, params: Map<string, tf.Variable>, hp: UpdateHyperParams): PendingUpdate & { gradNorm: tf.Scalar };
}

/** The reference clip-then-AdamW: chain(clipByGlobalNorm(maxGradNorm), adamw(opts)). The fused engine has its own (kernels/). */
export function clipAdamw({ maxGradNorm, ...opts }: ClipAdamWOptions): ClipAdamW {
  const chained = chain(clipByGlobalNorm(maxGradNorm), adamw(opts));
  return {
    ...chained,
    update: (grads, state, params, hp) => {
      const u = chained.update(grads, state, params, hp);
      return { ...u, gradNorm: u.gradNorm! };   // clipByGlobalNorm always measures it
    },
  };
}
