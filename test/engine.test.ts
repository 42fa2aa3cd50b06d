/**
 * The engine binding: the backend gives the engine (fused kernels on WebGPU, stock ops on the
 * CPU), a model is bound to one when it is made, and its forward, loss and training step go
 * through that engine's ops and optimizer, with nothing global to set or restore.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, it, expect } from 'vitest';
import { useBackend } from './helpers/backends.js';
import { initBackend, describeBackend, currentEngine } from '../src/backend/index.js';
import { selectEngine, stockEngine, fusedEngine, describeEngine, type Engine, type KernelChoice } from '../src/engine/index.js';
import { stockOps, type Ops } from '../src/nn/ops.js';
import { clipAdamw } from '../src/train/optim.js';
import { Trainer } from '../src/train/trainer.js';
import { CausalLM } from '../models/causal_lm.js';
import { tinyGPT2, tinyLlamaConfig, makeBatch, randomRows } from './train/helpers.js';

/** An engine with the stock ops and optimizer that counts every call it receives. */
function countingEngine(): { engine: Engine; calls: Map<string, number>; prepares: () => number } {
  const calls = new Map<string, number>();
  const ops = Object.fromEntries(Object.entries(stockOps).map(([name, f]) => [name, (...args: unknown[]) => {
    calls.set(name, (calls.get(name) ?? 0) + 1);
    return (f as (...a: unknown[]) => unknown)(...args);
  }])) as unknown as Ops;
  let prepares = 0;   // optimizer updates
  const counting: Engine['clipAdamw'] = (opts) => {
    const stock = clipAdamw(opts);
    return { ...stock, update: (...args) => { prepares++; return stock.update(...args); } };
  };
  return { engine: { path: 'stock', ops, clipAdamw: counting, warmUp: async () => 0 }, calls, prepares: () => prepares };
}

describe('selectEngine', () => {
  const table: Array<[backend: 'webgpu' | 'webgl' | 'cpu', kernels: KernelChoice, want: Engine]> = [
    ['webgpu', 'auto', fusedEngine],
    ['webgpu', 'fused', fusedEngine],
    ['webgpu', 'stock', stockEngine],
    ['webgl', 'auto', stockEngine],
    ['webgl', 'stock', stockEngine],
    ['cpu', 'auto', stockEngine],
    ['cpu', 'stock', stockEngine],
  ];
  for (const [backend, kernels, want] of table) {
    it(`${backend} + ${kernels} -> ${want.path}`, () => { expect(selectEngine(backend, kernels)).toBe(want); });
  }
  it('refuses fused kernels off WebGPU, naming the backend and what to use', () => {
    expect(() => selectEngine('cpu', 'fused')).toThrow(/need the webgpu backend; this backend is 'cpu'. Use 'auto' or 'stock'/);
    expect(() => selectEngine('webgl', 'fused')).toThrow(/'webgl'/);
    expect(() => selectEngine('webgpu', 'fast' as KernelChoice)).toThrow(/kernels must be one of auto, fused, stock, got 'fast'/);
  });
  it('each engine says which kernels it runs', () => {
    expect(describeEngine(fusedEngine)).toBe('fused WGSL kernels');
    expect(describeEngine(stockEngine)).toBe('stock tfjs ops');
    expect(Object.keys(fusedEngine.ops).sort()).toEqual(Object.keys(stockOps).sort());   // one fused entry per stock op
  });
});

describe('initBackend gives the engine models are bound to', () => {
  it('WebGPU: the fused engine by default, the stock one when asked; the CPU: stock', async () => {
    const gpu = await useBackend('webgpu');
    expect(gpu.engine).toBe(fusedEngine);
    expect(describeBackend(gpu)).toMatch(/^webgpu on .+, fused WGSL kernels$/);
    expect(currentEngine()).toBe(fusedEngine);
    const model = tinyGPT2(0);
    expect(model.engine).toBe(fusedEngine);
    model.dispose();

    const stock = await initBackend({ prefer: 'webgpu', strict: true, kernels: 'stock' });
    expect(stock.engine).toBe(stockEngine);
    expect(describeBackend(stock)).toMatch(/, stock tfjs ops$/);
    expect(currentEngine()).toBe(stockEngine);
    const asked = tinyGPT2(0);
    expect(asked.engine).toBe(stockEngine);
    asked.dispose();

    const cpu = await useBackend('cpu');
    expect(cpu.engine).toBe(stockEngine);
    expect(describeBackend(cpu)).toBe('cpu, stock tfjs ops');
    await expect(initBackend({ prefer: 'cpu', kernels: 'fused' })).rejects.toThrow(/need the webgpu backend; this backend is 'cpu'/);
    // The refusal changed nothing: the CPU's engine is still the one models get.
    expect(currentEngine()).toBe(stockEngine);
  });
});

describe('a model runs on the engine it is bound to [cpu]', () => {
  it('forward and loss call the bound engine\'s ops; withEngine shares the weights and calls only its own', async () => {
    await useBackend('cpu');
    const { engine, calls } = countingEngine();
    for (const config of [tinyGPT2(0).config, tinyLlamaConfig()]) {
      const model = CausalLM.create(config, { seed: 3, engine });
      expect(model.engine).toBe(engine);
      const ids = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 0]], [2, 4], 'int32');
      const mask = tf.tensor2d([[1, 1, 2, 2], [1, 1, 1, 0]], [2, 4], 'int32');
      calls.clear();
      const counted = model.forward(ids, { attentionMask: mask });
      const family = config.model_type;
      // The mask once, attention and the residual-fused norms per block, every linear: all through the engine.
      expect(calls.get('attentionMask')).toBe(1);
      expect(calls.get(family === 'gpt2' ? 'attentionPacked' : 'attentionSegments')).toBe(1);
      expect(calls.get(family === 'gpt2' ? 'addLayerNorm' : 'addRmsNorm')).toBeGreaterThanOrEqual(2);
      expect(calls.get('linear')).toBeGreaterThanOrEqual(family === 'gpt2' ? 4 : 8);
      // The same variables on the stock engine: the same logits, and no call reaches the counting engine.
      calls.clear();
      const stock = model.withEngine(stockEngine);
      expect(stock.params).toBe(model.params);
      const plain = stock.forward(ids, { attentionMask: mask });
      expect(calls.size).toBe(0);
      expect(Array.from(await plain.data())).toEqual(Array.from(await counted.data()));
      tf.dispose([ids, mask, counted, plain]);
      model.dispose();
    }
  });

  it('the Trainer computes the loss with the model\'s ops and applies the model\'s optimizer', async () => {
    await useBackend('cpu');
    const { engine, calls, prepares } = countingEngine();
    const batches = [makeBatch(randomRows(2, 6, 32, 11))];
    const losses = new Map<string, number[]>();
    for (const [name, e] of [['counting', engine], ['stock', stockEngine]] as const) {
      const model = tinyGPT2(4, e);
      const trainer = new Trainer(model, { train: batches, lr: 1e-2, maxSteps: 3 });
      const seen: number[] = [];
      trainer.on((ev) => { if (ev.type === 'step') seen.push(ev.loss); });
      await trainer.run();
      losses.set(name, seen);
      trainer.dispose(); model.dispose();
    }
    expect(prepares()).toBe(3);
    expect(calls.get('maskedCrossEntropy')).toBe(3);
    // The counting engine computes exactly what the stock one does (same seed, CPU): same curve, and it learns.
    expect(losses.get('counting')).toEqual(losses.get('stock'));
    expect(losses.get('stock')![2]).toBeLessThan(losses.get('stock')![0]);
  });
});
