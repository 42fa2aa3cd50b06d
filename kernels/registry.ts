/**
 * The fused kernels as tfjs kernels: each forward is registered for the 'webgpu' backend under
 * its own name with a registered gradient, so `tf.grad`, `tf.variableGrads` and tidy scopes
 * treat it like any stock op. Registration happens once, on first use or through
 * registerFusedKernels().
 */
import * as tf from '@tensorflow/tfjs';

export interface FusedKernelDef {
  kernel: tf.KernelConfig;
  gradient?: tf.GradConfig;
}

const defs: FusedKernelDef[] = [];

/** Adds a kernel to the set registered by ensureRegistered(). */
export function defineKernel(def: FusedKernelDef): FusedKernelDef {
  defs.push(def);
  return def;
}

/** Registers every defined kernel (and gradient) not yet registered. Idempotent. */
export function ensureRegistered(): void {
  for (const { kernel, gradient } of defs) {
    if (!tf.getKernel(kernel.kernelName, kernel.backendName)) tf.registerKernel(kernel);
    if (gradient && !tf.getGradient(gradient.kernelName)) tf.registerGradient(gradient);
  }
}

/** True when the fused path runs: the active backend is tfjs-backend-webgpu. */
export function fusedKernelsAvailable(): boolean {
  return tf.getBackend() === 'webgpu';
}

/** engine.runKernel for a fused kernel (registering on first use). */
export function runFused(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor[] {
  ensureRegistered();
  const out = (tf.engine() as any).runKernel(name, inputs, attrs);
  return Array.isArray(out) ? out : [out];
}
