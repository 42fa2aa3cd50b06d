/**
 * Adapters WebTune writes, for checking that PEFT loads them (verify_webtune_adapter.py) and
 * that WebTune keeps writing the same bytes (test/lora/peft_written.test.ts).
 *
 * Each case applies LoRA to a fixture base model, sets B (and the modules to save) to seeded
 * random values so that the adapter changes the outputs, saves the adapter, and records the
 * logits WebTune computes with it, unmerged and after mergeAndUnload, on the fixture inputs.
 *
 *   npx tsx test/reference/webtune_adapters.ts     # rewrites test/fixtures/hf/lora/webtune/
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, MemoryFiles, writeSafetensors, saveAdapter, saveMerged, type WritableTensor } from '../../src/io/index.js';
import { applyLora, mergeAndUnload, loraTensors, loraTrainableReport, type LoraConfig } from '../../src/nn/lora.js';

export const HF = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf');
export const OUT = join(HF, 'lora', 'webtune');

export interface AdapterCase { name: string; base: string; config: LoraConfig }

export const CASES: AdapterCase[] = [
  // GPT-2 Conv1D layers (fan_in_fan_out), every linear but the head, dropout, and the TIED head saved in full.
  { name: 'gpt2-all-linear-lm_head', base: 'gpt2-tiny', config: { r: 4, alpha: 16, dropout: 0.05, targetModules: 'all-linear', modulesToSave: ['lm_head'], seed: 1, baseModelNameOrPath: 'gpt2-tiny' } },
  // Llama: a regular expression, rsLoRA, Gaussian init, an untied embedding saved in full.
  { name: 'llama-regex-rslora-embed', base: 'llama-tiny', config: { r: 2, alpha: 4, targetModules: '.*\\.(q|k|v|o)_proj', useRslora: true, init: 'gaussian', modulesToSave: ['embed_tokens'], seed: 2, baseModelNameOrPath: 'llama-tiny' } },
  // Llama with biases and a tied head: globs (saved as the matched paths), the tied embedding saved in full.
  { name: 'llama-variant-glob-tied-embed', base: 'llama-tiny-variant', config: { r: 3, alpha: 6, targetModules: ['*.mlp.*_proj'], modulesToSave: ['embed_tokens'], seed: 3, baseModelNameOrPath: 'llama-tiny-variant' } },
];

export interface Built { files: Map<string, Uint8Array>; report: string }

/** Builds one case: adapter files, logits (unmerged, merged) and the merged checkpoint, all in memory. */
export async function buildCase(c: AdapterCase): Promise<Built> {
  const inputs = JSON.parse(readFileSync(join(HF, 'lora', 'llama-tiny-qv', 'inputs.json'), 'utf8')) as { input_ids: number[][]; attention_mask: number[][] };
  const B = inputs.input_ids.length, T = inputs.input_ids[0].length;
  const ids = tf.tensor2d(inputs.input_ids.flat(), [B, T], 'int32');
  const mask = tf.tensor2d(inputs.attention_mask.flat(), [B, T], 'int32');
  const model = await loadModel(join(HF, c.base));
  const out = new MemoryFiles();
  try {
    applyLora(model, c.config);
    let k = 0;
    for (const [name, v] of loraTensors(model)) {
      k++;
      if (name.endsWith('.lora_A.weight')) continue;
      // B = 0 at init: give it (and the saved modules) seeded values so the adapter matters.
      const noise = tf.tidy(() => tf.randomNormal(v.shape, 0, name.endsWith('.lora_B.weight') ? 0.3 : 0.05, 'float32', 1000 * (c.config.seed ?? 0) + k));
      tf.tidy(() => v.assign(name.endsWith('.lora_B.weight') ? noise : tf.add(v, noise)));
      noise.dispose();
    }
    const report = loraTrainableReport(model).line;
    await saveAdapter(model, out);
    const logits = model.forward(ids, { attentionMask: mask });
    mergeAndUnload(model);
    const merged = model.forward(ids, { attentionMask: mask });
    const tensors = new Map<string, WritableTensor>([
      ['logits', { shape: [B, T, logits.shape[2]], data: (await logits.data()) as Float32Array }],
      ['logits_merged', { shape: [B, T, merged.shape[2]], data: (await merged.data()) as Float32Array }],
    ]);
    tf.dispose([logits, merged]);
    await out.write('expected.safetensors', writeSafetensors(tensors, { format: 'pt' }));
    await out.write('expected.json', JSON.stringify({ base_model: `../../../${c.base}`, inputs: '../../llama-tiny-qv/inputs.json', trainable_report: report }, null, 2) + '\n');
    const mergedDir = new MemoryFiles();
    await saveMerged(model, mergedDir);
    for (const [f, bytes] of mergedDir.files) out.files.set(`merged/${f}`, bytes);
    return { files: out.files, report };
  } finally {
    model.dispose();
    tf.dispose([ids, mask]);
  }
}

async function main(): Promise<void> {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  await tf.setBackend('cpu');
  for (const c of CASES) {
    const { files, report } = await buildCase(c);
    for (const [f, bytes] of files) {
      const p = join(OUT, c.name, f);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, bytes);
    }
    console.log(`${c.name}: ${report}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
