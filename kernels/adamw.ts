/**
 * Fused AdamW and global-norm clipping, drop-in companions of src/train/optim.ts:
 *
 *   fusedClipGradNorm(grads, maxNorm)            ceil(n / (storage buffers - 2)) dispatches instead of ~3 per gradient
 *   fusedAdamwUpdate(grads, state, params, hp, { clip })   one dispatch per floor((storage buffers - 1) / 7)
 *                                                parameters (p, m, v at once): 1 with the default 8, 2 with 16
 *
 * Same semantics as clipGradNorm + adamwUpdate (torch): the clip coefficient is folded into the
 * update instead of producing scaled copies of every gradient. Off WebGPU both run the stock
 * tfjs compositions.
 *
 * @example
 *   const clip = fusedClipGradNorm(grads, 1.0);
 *   fusedAdamwUpdate(grads, state, params, { lr: 1e-3 }, { clip });
 *   const norm = clip.totalNorm();   // scalar tensor, pre-clip norm
 *   clip.dispose();
 */
import * as tf from '@tensorflow/tfjs';
import { adamwProgram, adamwStarts, adamwGroup, clipProgram, clipGroup } from './adamw_webgpu.js';
import { fusedKernelsAvailable } from './registry.js';
import { run, webgpuBackend } from './runtime.js';
import { adamwBeginStep } from '../src/train/optim.js';

/** Storage buffers a shader may bind on the active device (8 unless the device was created with more). */
function storageLimit(): number {
  return webgpuBackend()?.device.limits.maxStorageBuffersPerShaderStage ?? 8;
}

/** The parts of src/train/optim.ts AdamWState this update reads and writes (structurally the same type). */
export interface AdamWStateLike {
  step: number;
  m: Map<string, tf.Variable>;
  v: Map<string, tf.Variable>;
  decay: Map<string, boolean>;
}

export interface AdamWHyperParamsLike { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }

/** The clipping result: `stats` [3] = (sum of squares, coefficient, norm) on the device. */
export interface ClipResult {
  stats: tf.Tensor1D;
  /** The pre-clip global norm as a scalar tensor (one slice dispatch). */
  totalNorm(): tf.Scalar;
  /** The coefficient gradients are multiplied by, as a scalar tensor. */
  coef(): tf.Scalar;
  dispose(): void;
}

function clipResult(stats: tf.Tensor1D): ClipResult {
  return {
    stats,
    totalNorm: () => tf.tidy(() => tf.reshape(tf.slice(stats, [2], [1]), []) as tf.Scalar),
    coef: () => tf.tidy(() => tf.reshape(tf.slice(stats, [1], [1]), []) as tf.Scalar),
    dispose: () => stats.dispose(),
  };
}

/**
 * Global L2 norm of all gradients (names in sorted order, like globalNorm) and the clip
 * coefficient min(1, maxNorm / (norm + 1e-6)) (1 when maxNorm <= 0: no clipping).
 */
export function fusedClipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): ClipResult {
  const names = [...grads.keys()].sort();
  if (!fusedKernelsAvailable()) {
    return clipResult(tf.tidy(() => {
      const sq = names.length ? tf.addN(names.map((n) => tf.sum(tf.square(grads.get(n)!)))) : tf.scalar(0);
      const norm = tf.sqrt(sq);
      const coef = maxNorm > 0 ? tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1) : tf.scalar(1);
      return tf.stack([sq, coef, norm]) as tf.Tensor1D;
    }));
  }
  let acc = tf.tensor1d([0, 1, 0]);
  const per = clipGroup(storageLimit());
  for (let i = 0; i < names.length || i === 0; i += per) {
    const group = names.slice(i, i + per).map((n) => grads.get(n)!);
    if (group.length === 0) break;
    const [next] = run(clipProgram(group.length), [acc, ...group], [...group.map((g) => g.size), maxNorm]);
    acc.dispose();
    acc = next as tf.Tensor1D;
  }
  return clipResult(acc as tf.Tensor1D);
}

/**
 * One AdamW step over every parameter with a gradient, updating params and state in place
 * (variables are re-assigned, as adamwUpdate does). With `clip`, gradients are scaled by its
 * coefficient on the fly. Gradients are not disposed.
 */
export function fusedAdamwUpdate(
  grads: Map<string, tf.Tensor>, state: AdamWStateLike, params: Map<string, tf.Variable>,
  hp: AdamWHyperParamsLike, opts: { clip?: ClipResult } = {},
): void {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = hp;
  const { stepSize, biasCorrection2Sqrt: bc2sqrt } = adamwBeginStep('fusedAdamwUpdate', grads, state, params, hp);
  const fused = fusedKernelsAvailable();
  const one = opts.clip ? undefined : tf.scalar(1);
  const scale = opts.clip ? opts.clip.stats : one!;
  const scaleIndex = opts.clip ? 1 : 0;
  const decayOf = (name: string) => (state.decay.get(name) && weightDecay !== 0 && lr !== 0 ? 1 - lr * weightDecay : 1);
  const names = [...grads.keys()].filter((n) => !fused || grads.get(n)!.size > 0);
  const per = fused ? adamwGroup(storageLimit()) : 1;
  for (let i = 0; i < names.length; i += per) {
    const group = names.slice(i, i + per);
    if (fused) {
      const sizes = group.map((n) => grads.get(n)!.size);
      const starts = adamwStarts(sizes);
      const inputs = group.flatMap((n) => [params.get(n)!, grads.get(n)!, state.m.get(n)!, state.v.get(n)!]);
      const outs = run(adamwProgram(sizes), [...inputs, scale], [...group.flatMap((n, k) => [sizes[k], starts[k], decayOf(n)]), beta1, beta2, bc2sqrt, eps, stepSize, scaleIndex]);
      // assign() keeps the variables' identity; the reshape is free (same buffer).
      group.forEach((n, k) => {
        const p = params.get(n)!, m = state.m.get(n)!, v = state.v.get(n)!;
        const [p1, m1, v1] = outs.slice(3 * k, 3 * k + 3);
        tf.tidy(() => {
          m.assign(tf.reshape(m1, m.shape));
          v.assign(tf.reshape(v1, v.shape));
          p.assign(tf.reshape(p1, p.shape));
        });
      });
      tf.dispose(outs);
    } else {
      const name = group[0], g = grads.get(name)!;
      const p = params.get(name)!, m = state.m.get(name)!, v = state.v.get(name)!;
      const decay = decayOf(name);
      tf.tidy(() => {
        const gs = opts.clip ? tf.mul(g, opts.clip.coef()) : g;
        const m1 = m.add(gs.sub(m).mul(1 - beta1));
        const v1 = v.mul(beta2).add(gs.square().mul(1 - beta2));
        const p1 = p.mul(decay).sub(m1.div(v1.sqrt().div(bc2sqrt).add(eps)).mul(stepSize));
        m.assign(m1);
        v.assign(v1);
        p.assign(p1);
      });
    }
  }
  one?.dispose();
}
