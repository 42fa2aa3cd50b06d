/**
 * saveModelFiles / loadModelFiles: a LoRA-tuned model saved with its adapter beside the base
 * weights, merged into them, or alone, reads back with the same logits; the tokenizer files carry
 * the chat template, and generation_config.json the template's end-of-turn token as a stop token.
 */
import * as tf from '@tensorflow/tfjs';
import { it, expect, beforeAll } from 'vitest';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { saveModelFiles, loadModelFiles } from '../../src/io/model_files.js';
import { loadAdapter } from '../../src/io/peft.js';
import { MemoryFiles } from '../../src/io/files.js';
import { applyLora, loraState } from '../../src/nn/lora.js';
import { loadBundledTokenizer } from '../../src/data/tokenizer.js';
import { BUILTIN_TEMPLATES } from '../../src/data/template.js';
import { CausalLM, parseConfig } from '../../models/index.js';

beforeAll(async () => { await useBackend('cpu'); });

const IDS = tf.tensor2d([[1, 5, 2, 9, 3, 7]], [1, 6], 'int32');

/** A 1-layer GPT-2 with a trained-looking adapter (B non-zero) on c_attn and mlp.c_fc. */
function tuned(): CausalLM {
  const model = CausalLM.create(parseConfig({ model_type: 'gpt2', vocab_size: 1024, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }), { seed: 4 });
  applyLora(model, { r: 2, alpha: 4, targetModules: ['c_attn', 'c_fc'], seed: 1 });
  for (const [name, v] of model.trainableParams()) if (name.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', 3));
  return model;
}

async function logits(m: CausalLM): Promise<Float32Array> {
  const y = m.forward(IDS);
  const d = (await y.data()) as Float32Array;
  y.dispose();
  return d;
}

it("adapter 'beside': base weights + PEFT files; loadModelFiles applies the adapter", async () => {
  const model = tuned();
  const want = await logits(model);
  const dir = new MemoryFiles();
  await saveModelFiles(model, dir);
  expect([...dir.files.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'config.json', 'model.safetensors']);
  const back = await loadModelFiles(dir);
  expect(loraState(back)).toBeDefined();
  assertAllClose(await logits(back), want, { rtol: 1e-5, atol: 1e-6, label: 'beside' });
  back.dispose(); model.dispose();
});

it("adapter 'merged': one plain checkpoint with the same outputs; the model keeps its adapter", async () => {
  const model = tuned();
  const want = await logits(model);
  const dir = new MemoryFiles();
  await saveModelFiles(model, dir, { adapter: 'merged' });
  expect([...dir.files.keys()].sort()).toEqual(['config.json', 'model.safetensors']);
  expect(loraState(model)?.merged).toBeNull();                   // unmerged again after the save
  assertAllClose(await logits(model), want, { rtol: 1e-6, atol: 1e-6, label: 'model after the save' });
  const back = await loadModelFiles(dir);
  expect(loraState(back)).toBeUndefined();
  assertAllClose(await logits(back), want, { rtol: 1e-4, atol: 1e-5, label: 'merged' });
  back.dispose(); model.dispose();
});

it("adapter 'only': the PEFT directory alone, applied to the base model gives the same outputs", async () => {
  const model = tuned();
  const want = await logits(model);
  const base = new MemoryFiles();
  await saveModelFiles(model, new MemoryFiles());                // (beside: unchanged model)
  const only = new MemoryFiles();
  await saveModelFiles(model, only, { adapter: 'only' });
  expect([...only.files.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  await saveModelFiles(CausalLM.create(model.config, { seed: 4 }), base);   // the same seed: the base weights
  const back = await loadModelFiles(base);
  await loadAdapter(back, only);
  assertAllClose(await logits(back), want, { rtol: 1e-5, atol: 1e-6, label: 'base + adapter' });
  back.dispose(); model.dispose();
});

it('tokenizer files with the chat template, and the end-of-turn token in generation_config.json', async () => {
  const model = CausalLM.create(parseConfig({ model_type: 'gpt2', vocab_size: 1024, n_positions: 16, n_embd: 16, n_layer: 1, n_head: 2 }), { seed: 0 });
  const tokenizer = await loadBundledTokenizer();
  const template = BUILTIN_TEMPLATES.chatml;
  const dir = new MemoryFiles();
  await saveModelFiles(model, dir, { tokenizer, template });
  const json = (f: string) => JSON.parse(new TextDecoder().decode(dir.files.get(f)!)) as Record<string, unknown>;
  expect(json('tokenizer_config.json').chat_template).toBe(template.source);
  expect(json('tokenizer.json')).toEqual(tokenizer.files.tokenizerJson);
  const imEnd = tokenizer.tokenToId('<|im_end|>');
  expect(imEnd).toBeTypeOf('number');
  expect(json('generation_config.json')).toEqual({
    bos_token_id: tokenizer.bosTokenId ?? 0,
    eos_token_id: imEnd === tokenizer.eosTokenId ? imEnd : [tokenizer.eosTokenId, imEnd],
    pad_token_id: tokenizer.padTokenId,
  });
  model.dispose();
});
