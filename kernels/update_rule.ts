/**
 * The fused engine's update rule (src/train/optim.ts UpdateRule) built from the fused kernels:
 * grouped global-norm clipping and one AdamW dispatch per parameter, the clip coefficient read
 * on the device (no scaled copies of the gradients).
 *
 * @example
 *   fusedEngine.updateRule === fusedUpdateRule;   // the trainer applies it to a model bound to fusedEngine
 */
import type { UpdateRule } from '../src/train/optim.js';
import { fusedAdamwUpdate, fusedClipGradNorm } from './adamw.js';

export const fusedUpdateRule: UpdateRule = {
  prepare(grads, maxGradNorm) {
    // maxNorm <= 0 gives coefficient 1: the norm is still reported, nothing is clipped.
    const clip = fusedClipGradNorm(grads, maxGradNorm > 0 && Number.isFinite(maxGradNorm) ? maxGradNorm : 0);
    const totalNorm = clip.totalNorm();
    return {
      totalNorm,
      apply: (state, params, hp) => fusedAdamwUpdate(grads, state, params, hp, { clip }),
      dispose: () => { totalNorm.dispose(); clip.dispose(); },
    };
  },
};
