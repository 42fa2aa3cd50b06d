/**
 * The engine a model runs on: the primitive ops its layers call, the optimizer the trainer
 * applies (clip by global norm, then AdamW), and a warm-up that compiles its GPU pipelines before the first
 * step. The backend decides which one a model gets (initBackend returns it):
 *
 *   webgpu        -> fusedEngine: kernels/ (fused WGSL kernels, fusedClipAdamw), warm-up compiles them
 *   webgl, cpu    -> stockEngine: src/nn/ops.ts stockOps and src/train/optim.ts clipAdamw
 *
 * A model is bound to one engine when it is made (CausalLM.create / fromTensors, default: the
 * engine of the active backend) and `model.withEngine(e)` gives the same weights on another one,
 * so two paths are compared on one model without any table to set and restore. A new fused op
 * is one more entry of fusedOps (kernels/index.ts) with its stock reference in stockOps.
 *
 * @example
 *   const backend = await initBackend();                 // { backend: 'webgpu', engine: fusedEngine, ... }
 *   const model = CausalLM.create(presetConfig('micro'), { engine: backend.engine });
 *   await model.engine.warmUp(model.config);             // pipelines compiled before step 1
 *   describeEngine(model.engine);                        // 'fused WGSL kernels'
 */
import { stockOps, type Ops } from '../nn/ops.js';
import { clipAdamw, type ClipAdamW, type ClipAdamWOptions } from '../train/optim.js';
import { fusedOps, fusedClipAdamw, warmUpFusedKernels } from '../../kernels/index.js';
import { dims, type ModelConfig } from '../../models/config.js';
import type { BackendName } from '../backend/index.js';

/** Which implementation of the ops a model runs: WebTune's fused WGSL kernels, or stock tfjs ops. */
export type KernelPath = 'fused' | 'stock';

/** What a caller asks for: 'auto' is fused on WebGPU and stock elsewhere; the others are for comparisons. */
export type KernelChoice = 'auto' | KernelPath;

export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'fused', 'stock'];

export interface Engine {
  readonly path: KernelPath;
  /** The table every layer of a bound model calls (src/nn/ops.ts Ops). */
  readonly ops: Readonly<Ops>;
  /** The training step's optimizer, clip by global norm then AdamW (src/train/optim.ts ClipAdamW): the same chain on every engine. */
  readonly clipAdamw: (opts: ClipAdamWOptions) => ClipAdamW;
  /** Compiles the pipelines a training step of this model shape runs; resolves with the number compiled (0: nothing to compile). */
  warmUp(config: ModelConfig): Promise<number>;
}

/** Stock tfjs ops and the reference optimizer chain: runs on every backend, the reference for the fused engine. */
export const stockEngine: Engine = Object.freeze({
  path: 'stock' as const,
  ops: stockOps,
  clipAdamw,
  warmUp: async () => 0,
});

/** WebTune's fused WGSL kernels (tfjs-backend-webgpu): far fewer dispatches and less memory per step. */
export const fusedEngine: Engine = Object.freeze({
  path: 'fused' as const,
  ops: fusedOps,
  clipAdamw: fusedClipAdamw,
  warmUp: (config: ModelConfig) => {
    const d = dims(config);
    return warmUpFusedKernels({ hidden: d.hidden, vocab: d.vocab, headDim: d.headDim, inner: d.inner });
  },
});

/**
 * The engine for a backend: 'auto' gives the fused engine on WebGPU and the stock one elsewhere;
 * 'fused' off WebGPU is refused (the kernels are WGSL), 'stock' is always possible.
 */
export function selectEngine(backend: BackendName, kernels: KernelChoice = 'auto'): Engine {
  if (!KERNEL_CHOICES.includes(kernels)) throw new Error(`kernels must be one of ${KERNEL_CHOICES.join(', ')}, got '${kernels}'.`);
  if (kernels === 'stock') return stockEngine;
  if (backend === 'webgpu') return fusedEngine;
  if (kernels === 'fused') throw new Error(`kernels 'fused': the fused kernels are WGSL and need the webgpu backend; this backend is '${backend}'. Use 'auto' or 'stock'.`);
  return stockEngine;
}

/** One phrase for logs, the status panel and benchmark headers. */
export function describeEngine(engine: Engine): string {
  return engine.path === 'fused' ? 'fused WGSL kernels' : 'stock tfjs ops';
}
