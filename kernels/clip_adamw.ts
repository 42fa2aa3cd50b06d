/**
 * The fused engine's clip-then-AdamW (src/train/optim.ts ClipAdamW, the same interface and state
 * as the reference chain(clipByGlobalNorm(maxGradNorm), adamw(opts))) built from the fused
 * kernels: grouped global-norm clipping and grouped AdamW dispatches, the clip coefficient read
 * on the device (no scaled copies of the gradients).
 *
 * @example
 *   const opt = fusedEngine.clipAdamw({ maxGradNorm: 1, weightDecay: 0.1 });   // === fusedClipAdamw(...)
 *   const state = opt.init(params);           // [{}, AdamWState], as clipAdamw gives
 *   const u = opt.update(grads, state, params, { lr: 1e-3 });
 *   u.apply(); u.dispose();
 */
import { clipAdamw, type ClipAdamW, type ClipAdamWOptions } from '../src/train/optim.js';
import { fusedAdamwUpdate, fusedClipGradNorm } from './adamw.js';

export function fusedClipAdamw(opts: ClipAdamWOptions): ClipAdamW {
  const { maxGradNorm, ...hp } = opts;   // hp: betas, eps, weight decay (and the decay filter, read by init)
  // maxNorm 0 gives coefficient 1: the norm is still reported, nothing is clipped.
  const maxNorm = maxGradNorm > 0 && Number.isFinite(maxGradNorm) ? maxGradNorm : 0;
  const { init, dispose } = clipAdamw(opts);   // the same state: nothing for the clip, AdamW's moments
  return {
    init,
    dispose,
    update(grads, [, state], params, { lr }) {
      const clip = fusedClipGradNorm(grads, maxNorm);
      const gradNorm = clip.totalNorm();
      return {
        grads,
        gradNorm,
        apply: () => fusedAdamwUpdate(grads, state, params, { ...hp, lr }, { clip }),
        dispose: () => { gradNorm.dispose(); clip.dispose(); },
      };
    },
  };
}
