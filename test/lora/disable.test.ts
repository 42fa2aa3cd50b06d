/**
 * withAdaptersDisabled (PEFT's `disable_adapter()`): inside, the model computes exactly what the
 * base model computed before the adapter was applied (LoRA branches off, modules to save at their
 * base values, a tied head's own copy set aside); afterwards, exactly the adapted outputs again,
 * also when the callback throws or its promise rejects.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBackend } from '../helpers/backends.js';
import type { CausalLM } from '../../models/index.js';
import { loadModel } from '../../src/io/index.js';
import { applyLora, loraState, loraTensors, mergeLora, unmergeLora, withAdaptersDisabled, disposeLora, mergeAndUnload, loraTrainableReport, type LoraConfig } from '../../src/nn/lora.js';

const HF = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf');
const gpt2Tiny = () => loadModel(join(HF, 'gpt2-tiny'));
const llamaTiny = () => loadModel(join(HF, 'llama-tiny'));

/** Logits of a fixed batch, on the host. */
function logitsSync(model: CausalLM): number[] {
  return tf.tidy(() => Array.from(model.forward(tf.tensor2d([[1, 5, 9, 3, 7], [2, 4, 6, 8, 10]], [2, 5], 'int32')).dataSync()));
}
async function logitsOf(model: CausalLM): Promise<number[]> {
  const ids = tf.tensor2d([[1, 5, 9, 3, 7], [2, 4, 6, 8, 10]], [2, 5], 'int32');
  const l = model.forward(ids);
  const d = Array.from(await l.data());
  tf.dispose([ids, l]);
  return d;
}

/** Gives every adapter tensor (B = 0 at init) and every module to save values unlike the base's, as training would. */
function perturb(model: CausalLM, seed: number): void {
  let s = seed;
  for (const [, v] of loraTensors(model)) v.assign(tf.tidy(() => tf.add(v, tf.randomNormal(v.shape, 0, 0.3, 'float32', s++))));
}

beforeAll(async () => { await useBackend('cpu'); });

describe('withAdaptersDisabled', () => {
  it('runs the base model exactly (LoRA, trained embedding and a tied head\'s own copy all set aside), then the adapted one exactly', async () => {
    const cases: Array<[() => Promise<CausalLM>, Partial<LoraConfig>]> = [
      [gpt2Tiny, { targetModules: 'all-linear', modulesToSave: ['wte', 'lm_head'] }],
      [gpt2Tiny, { targetModules: ['c_attn'], modulesToSave: ['wte'] }],
      [llamaTiny, { targetModules: ['q_proj', 'v_proj', 'down_proj'], modulesToSave: ['embed_tokens', 'norm'] }],
    ];
    for (const [make, opts] of cases) {
      const model = await make();
      const base = await logitsOf(model);
      applyLora(model, { r: 2, alpha: 4, ...opts });
      perturb(model, 3);
      const adapted = await logitsOf(model);
      expect(adapted).not.toEqual(base);
      const trainable = [...model.trainableParams().keys()].sort();

      expect(await withAdaptersDisabled(model, () => logitsOf(model))).toEqual(base);
      expect(withAdaptersDisabled(model, () => logitsSync(model))).toEqual(base);   // a synchronous callback returns its value
      expect(await logitsOf(model)).toEqual(adapted);
      expect([...model.trainableParams().keys()].sort()).toEqual(trainable);
      expect(loraState(model)!.disabled).toBe(false);
      // Saving while disabled would store base values: refused; the trainable count still reads.
      const report = loraTrainableReport(model).line;
      expect(() => withAdaptersDisabled(model, () => loraTensors(model))).toThrow(/disabled/);
      expect(withAdaptersDisabled(model, () => loraTrainableReport(model).line)).toBe(report);
      // Nested: still the base model inside, adapted after.
      expect(withAdaptersDisabled(model, () => withAdaptersDisabled(model, () => logitsSync(model)))).toEqual(base);
      expect(await logitsOf(model)).toEqual(adapted);
      model.dispose();
    }
  });

  it('restores the adapter when the callback throws or its promise rejects', async () => {
    const model = await gpt2Tiny();
    const base = await logitsOf(model);
    applyLora(model, { r: 2, targetModules: 'all-linear', modulesToSave: ['wte', 'lm_head'] });
    perturb(model, 11);
    const adapted = await logitsOf(model);
    const lins = [...model.linearModules().values()].filter((l) => l.lora);
    expect(() => withAdaptersDisabled(model, () => {
      expect(logitsSync(model)).toEqual(base);
      expect(lins.every((l) => l.lora === undefined)).toBe(true);
      throw new Error('boom');
    })).toThrow('boom');
    expect(lins.every((l) => l.lora !== undefined)).toBe(true);
    expect(await logitsOf(model)).toEqual(adapted);
    await expect(withAdaptersDisabled(model, async () => {
      expect(await logitsOf(model)).toEqual(base);
      throw new Error('async boom');
    })).rejects.toThrow('async boom');
    expect(await logitsOf(model)).toEqual(adapted);
    expect(loraState(model)!.disabled).toBe(false);
    model.dispose();
  });

  it('refuses merged adapters and models without one; keeps no tensors alive after it', async () => {
    const model = await llamaTiny();
    expect(() => withAdaptersDisabled(model, () => 1)).toThrow(/no LoRA adapter/);
    applyLora(model, { r: 2, modulesToSave: ['embed_tokens'] });
    perturb(model, 5);
    mergeLora(model);
    expect(() => withAdaptersDisabled(model, () => 1)).toThrow(/merged.*unmergeLora/);
    unmergeLora(model);
    const n0 = tf.memory().numTensors;
    withAdaptersDisabled(model, () => logitsSync(model));
    expect(tf.memory().numTensors).toBe(n0);
    // The base values kept for the embedding go with the adapter.
    disposeLora(model);
    expect(tf.memory().numTensors).toBeLessThan(n0);
    model.dispose();
    const other = await gpt2Tiny();
    applyLora(other, { r: 2, modulesToSave: ['wte'] });
    const n1 = tf.memory().numTensors;
    mergeAndUnload(other);
    expect(tf.memory().numTensors).toBeLessThan(n1);
    other.dispose();
  });
});
