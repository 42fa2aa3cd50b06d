/**
 * The trainer on WebGPU (Dawn): a short run that must follow the CPU run's loss curve and keep
 * GPU memory flat. Kept tiny: software adapters are slow.
 */
import * as tf from '@tensorflow/tfjs';
import { it, expect } from 'vitest';
import { Trainer, type StepEvent } from '../../src/train/trainer.js';
import { stockEngine, fusedEngine, type Engine } from '../../src/engine/index.js';
import { describeEachBackend, useBackend } from '../helpers/backends.js';
import { tinyGPT2, makeBatch, randomRows } from './helpers.js';

const batches = [makeBatch(randomRows(2, 8, 32, 31)), makeBatch(randomRows(2, 8, 32, 32))];
const options = { train: batches, eval: [batches[0]], lr: 2e-2, schedule: 'linear' as const, warmupSteps: 2, maxSteps: 24, gradientAccumulationSteps: 2, maxGradNorm: 1.0, weightDecay: 0.01, seed: 5 };

async function runOn(backend: 'cpu' | 'webgpu', engine: Engine): Promise<{ steps: StepEvent[]; memory: Map<number, { numTensors: number; numBytes: number }>; evalLoss: number }> {
  await useBackend(backend);
  const model = tinyGPT2(8, engine);
  const trainer = new Trainer(model, options);
  const steps: StepEvent[] = [];
  const memory = new Map<number, { numTensors: number; numBytes: number }>();
  trainer.on((e) => {
    if (e.type !== 'step') return;
    steps.push(e);
    if (e.step === 4 || e.step === 24) memory.set(e.step, { numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes });
  });
  await trainer.run();
  const { evalLoss } = await trainer.evaluate();
  trainer.dispose(); model.dispose();
  return { steps, memory, evalLoss };
}

describeEachBackend('Trainer', () => {
  it('follows the CPU loss curve, learns, and keeps memory flat', async () => {
    const cpu = await runOn('cpu', stockEngine);
    const gpu = await runOn('webgpu', stockEngine);
    expect(gpu.steps.length).toBe(24);
    // Same computation, different float32 kernels: the curves agree (seen: within 5e-5), and learn.
    for (let i = 0; i < 24; i++) expect(Math.abs(gpu.steps[i].loss - cpu.steps[i].loss), `step ${i + 1}`).toBeLessThan(1e-3);
    for (let i = 0; i < 24; i++) expect(Math.abs(gpu.steps[i].gradNorm - cpu.steps[i].gradNorm) / cpu.steps[i].gradNorm, `grad norm ${i + 1}`).toBeLessThan(1e-3);
    expect(gpu.steps.at(-1)!.loss).toBeLessThan(gpu.steps[0].loss - 1.0);
    expect(Math.abs(gpu.evalLoss - cpu.evalLoss)).toBeLessThan(1e-3);
    expect(gpu.memory.get(24)).toEqual(gpu.memory.get(4));

    // The same run on the fused engine (its ops and its update rule) follows the same curve.
    const fused = await runOn('webgpu', fusedEngine);
    for (let i = 0; i < 24; i++) expect(Math.abs(fused.steps[i].loss - cpu.steps[i].loss), `fused step ${i + 1}`).toBeLessThan(1e-3);
    expect(fused.memory.get(24)).toEqual(fused.memory.get(4));
  });
}, ['webgpu']);
