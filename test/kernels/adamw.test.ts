import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { fusedAdamwUpdate, fusedClipGradNorm } from '../../kernels/adamw.js';
import { adamwRef, globalNormRef } from '../../kernels/adamw_ref.js';
import { adamwInit, adamwUpdate, clipGradNorm, clipAdamw } from '../../src/train/optim.js';
import { fusedClipAdamw } from '../../kernels/clip_adamw.js';
import { startGpuMeter } from '../../kernels/counters.js';
import { adamwGroup, clipGroup } from '../../kernels/adamw_webgpu.js';
import { randn, read } from './util.js';

// 8 parameters (more than one clip group of 6), odd sizes, one with weight decay excluded (1-D).
const SHAPES: Record<string, number[]> = {
  'h.0.w': [7, 13], 'h.0.b': [13], 'h.1.w': [300], 'h.1.ln.weight': [5], 'wte': [37, 3], 'h.2.w': [2, 2, 3], 'h.3.w': [1], 'h.4.w': [257, 2],
};

function makeParams(seed: number, tag = ""): Map<string, tf.Variable> {
  const m = new Map<string, tf.Variable>();
  let s = seed;
  for (const [name, shape] of Object.entries(SHAPES)) m.set(name, tf.variable(tf.tensor(randn(shape.reduce((a, b) => a * b, 1), s++), shape), true, `${name}_${seed}${tag}`));
  return m;
}

function makeGrads(seed: number, scale: number): Map<string, tf.Tensor> {
  const m = new Map<string, tf.Tensor>();
  let s = seed;
  for (const [name, shape] of Object.entries(SHAPES)) m.set(name, tf.tensor(randn(shape.reduce((a, b) => a * b, 1), s++, scale), shape));
  return m;
}

/** Three clipped AdamW steps on WebGPU against the float64 reference and the stock optimizer; returns the dispatches of the last step. */
async function threeSteps(tag = ""): Promise<number> {
  const hp = { lr: 3e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
  const fusedParams = makeParams(1, "fused" + tag), stockParams = makeParams(1, "stock" + tag);
  const fusedState = adamwInit(fusedParams), stockState = adamwInit(stockParams);
  // float64 reference state
  const ref = new Map<string, { p: Float64Array; m: Float64Array; v: Float64Array }>();
  for (const [n, p] of fusedParams) ref.set(n, { p: Float64Array.from(await read(p)), m: new Float64Array(p.size), v: new Float64Array(p.size) });
  let dispatches = 0;
  for (let step = 1; step <= 3; step++) {
    const grads = makeGrads(10 * step, 3);
    const arrays = new Map<string, Float32Array>();
    for (const [n, g] of grads) arrays.set(n, await read(g));
    const coef = Math.min(1, 1.0 / (globalNormRef([...arrays.values()]) + 1e-6));
    for (const [n, r] of ref) {
      const next = adamwRef(r.p, arrays.get(n)!, r.m, r.v, step, { ...hp, decay: fusedState.decay.get(n)! }, coef);
      ref.set(n, next);
    }
    const meter = startGpuMeter();
    const clip = fusedClipGradNorm(grads, 1.0);
    fusedAdamwUpdate(grads, fusedState, fusedParams, hp, { clip });
    dispatches = meter.stop().dispatches;
    clip.dispose();
    const { grads: clipped, totalNorm } = clipGradNorm(grads, 1.0);
    adamwUpdate(clipped, stockState, stockParams, hp);
    tf.dispose([...clipped.values(), totalNorm, ...grads.values()]);
  }
  expect(fusedState.step).toBe(3);
  for (const [n, p] of fusedParams) {
    const r = ref.get(n)!;
    assertAllClose(await read(p), r.p, { rtol: 1e-5, atol: 1e-6, label: `${n} p vs reference` });
    assertAllClose(await read(fusedState.m.get(n)!), r.m, { rtol: 1e-5, atol: 1e-7, label: `${n} m` });
    assertAllClose(await read(fusedState.v.get(n)!), r.v, { rtol: 1e-5, atol: 1e-9, label: `${n} v` });
    assertAllClose(await read(p), await read(stockParams.get(n)!), { rtol: 1e-5, atol: 1e-6, label: `${n} p vs stock` });
  }
  return dispatches;
}

describe('fused AdamW and clipping [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  it('global norm and clip coefficient match the float64 reference', async () => {
    const grads = makeGrads(100, 2);
    const arrays = await Promise.all([...grads.values()].map((g) => read(g)));
    const norm = globalNormRef(arrays);
    const clip = fusedClipGradNorm(grads, 1.5);
    const stats = await read(clip.stats);
    assertAllClose([stats[2]], [norm], { rtol: 1e-5, label: 'norm' });
    assertAllClose([stats[1]], [Math.min(1, 1.5 / (norm + 1e-6))], { rtol: 1e-5, label: 'coef' });
    assertAllClose(await read(clip.totalNorm()), [norm], { rtol: 1e-5, label: 'totalNorm()' });
    const off = fusedClipGradNorm(grads, 0);
    expect((await read(off.stats))[1]).toBe(1);
  });

  it('three steps with clipping equal the float64 reference and src/train/optim (stock) within float32', async () => {
    // 8 gradients: ceil(8 / clipGroup) norm dispatches + ceil(8 / adamwGroup) updates, at the device's limit.
    const limit: number = (tf.backend() as any).device.limits.maxStorageBuffersPerShaderStage;
    expect(await threeSteps()).toBe(Math.ceil(8 / clipGroup(limit)) + Math.ceil(8 / adamwGroup(limit)));
  });
});

describe('the webgpu device has the adapter\'s storage-buffer limit', () => {
  beforeAll(async () => { await useBackend('webgpu'); });
  it('initBackend requests maxStorageBuffersPerShaderStage of the adapter (tfjs alone asks for 8)', async () => {
    const adapter = await (globalThis as any).navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    const device = (tf.backend() as any).device as GPUDevice;
    expect(device.limits.maxStorageBuffersPerShaderStage).toBe(adapter.limits.maxStorageBuffersPerShaderStage);
    expect(device.limits.maxStorageBufferBindingSize).toBe(adapter.limits.maxStorageBufferBindingSize);
    expect(device.limits.maxBufferSize).toBe(adapter.limits.maxBufferSize);
    // With 16 (lavapipe) AdamW updates 2 parameters and the norm reads 14 gradients per dispatch.
    expect(adamwGroup(16)).toBe(2);
    expect(clipGroup(16)).toBe(14);
    expect(adamwGroup(8)).toBe(1);
    expect(clipGroup(8)).toBe(6);
  });
});

describe('fused clip-then-AdamW for the trainer [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });
  for (const maxNorm of [0.5, 0]) {
    it(`equals the stock chain clipAdamw (norm and parameters), maxGradNorm ${maxNorm}`, async () => {
      const opts = { maxGradNorm: maxNorm, weightDecay: 0.1 };
      const fused = fusedClipAdamw(opts), stock = clipAdamw(opts);
      const fp = makeParams(3, 'rf' + maxNorm), sp = makeParams(3, 'rs' + maxNorm);
      const fs = fused.init(fp), ss = stock.init(sp);
      const grads = makeGrads(4, 2);
      const f = fused.update(grads, fs, fp, { lr: 1e-2 }), s = stock.update(grads, ss, sp, { lr: 1e-2 });
      assertAllClose(await read(f.gradNorm), await read(s.gradNorm), { rtol: 1e-5, label: 'norm' });
      f.apply(); s.apply();
      f.dispose(); s.dispose();
      for (const [n, p] of fp) assertAllClose(await read(p), await read(sp.get(n)!), { rtol: 1e-5, atol: 1e-6, label: n });
    });
  }
});

describe('fused AdamW fallback [cpu]', () => {
  beforeAll(async () => { await useBackend('cpu'); });
  it('off WebGPU the same call equals the float64 reference', async () => {
    const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    const params = makeParams(5);
    const state = adamwInit(params);
    const grads = makeGrads(6, 1);
    const arrays = await Promise.all([...grads.values()].map((g) => read(g)));
    const coef = Math.min(1, 0.5 / (globalNormRef(arrays) + 1e-6));
    const before = new Map<string, Float32Array>();
    for (const [n, p] of params) before.set(n, Float32Array.from(await read(p)));
    const clip = fusedClipGradNorm(grads, 0.5);
    fusedAdamwUpdate(grads, state, params, hp, { clip });
    let i = 0;
    for (const [n, p] of params) {
      const r = adamwRef(before.get(n)!, arrays[i++], new Float64Array(p.size), new Float64Array(p.size), 1, { ...hp, decay: state.decay.get(n)! }, coef);
      assertAllClose(await read(p), r.p, { rtol: 1e-5, atol: 1e-6, label: n });
    }
  });
});

