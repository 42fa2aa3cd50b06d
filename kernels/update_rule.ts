/**
 * The trainer's update rule (src/train/trainer.ts UpdateRule) built from the fused kernels:
 * grouped global-norm clipping and one AdamW dispatch per parameter, the clip coefficient read
 * on the device (no scaled copies of the gradients).
 *
 * @example
 *   const trainer = new Trainer(model, { train: batches, lr: 1e-3, updateRule: fusedUpdateRule });
 */
import type { UpdateRule } from '../src/train/trainer.js';
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
