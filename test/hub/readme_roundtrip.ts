/**
 * Writes what the README's Python snippets load, the way a user gets it: a base model loaded
 * through the Hub API (here from a local fake hub serving test/hub/fixtures/llama-bf16 with the
 * bundled tokenizer), a LoRA adapter with non-zero weights, the merged checkpoint, and the logits
 * WebTune computes for both. test/hub/readme_roundtrip.py then runs the README snippets on them.
 *
 *   npx tsx test/hub/readme_roundtrip.ts OUT_DIR && python test/hub/readme_roundtrip.py OUT_DIR
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeHub } from './fake_hub.js';
import { loadFromHub } from '../../src/io/hub.js';
import { copyTokenizerFiles } from '../../src/io/checkpoint.js';
import { nodeDirSink } from '../../src/io/files.js';
import { saveAdapter, saveMerged } from '../../src/io/peft.js';
import { applyLora, loraTensors, mergeAndUnload } from '../../src/nn/lora.js';
import { readdirSync } from 'node:fs';

const out = process.argv[2];
if (!out) throw new Error('usage: readme_roundtrip.ts OUT_DIR');
await tf.setBackend('cpu');

const here = new URL('.', import.meta.url).pathname;
const files = new Map<string, Uint8Array>();
for (const f of readdirSync(join(here, 'fixtures', 'llama-bf16'))) if (f !== 'expected.safetensors') files.set(f, readFileSync(join(here, 'fixtures', 'llama-bf16', f)));
for (const f of ['tokenizer.json', 'tokenizer_config.json']) files.set(f, readFileSync(join(here, '..', '..', 'models', 'tokenizer', f)));

const hub = new FakeHub();
const endpoint = await hub.start();
hub.repos.set('tiny/llama-bf16', { files });
try {
  const { model, tokenizer, source } = await loadFromHub('tiny/llama-bf16', { endpoint, cache: false });
  // The base as downloaded (what `from_pretrained(base)` reads), with its tokenizer files.
  const base = join(out, 'base');
  for (const [f, bytes] of files) await nodeDirSink(base).write(f, bytes);

  applyLora(model, { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], seed: 1, baseModelNameOrPath: 'tiny/llama-bf16' });
  // Stand-in for training: non-zero lora_B so the adapter changes the logits.
  for (const [name, v] of loraTensors(model)) if (name.includes('lora_B')) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 7));
  const ids = tf.tensor2d([[1, 17, 300, 1023], [2, 900, 64, 0]], [2, 4], 'int32');
  const withAdapter = Array.from((await model.forward(ids).data()) as Float32Array);
  await saveAdapter(model, join(out, 'adapter'));
  await copyTokenizerFiles(source, join(out, 'adapter'));

  mergeAndUnload(model);
  const merged = Array.from((await model.forward(ids).data()) as Float32Array);
  await saveMerged(model, join(out, 'merged'));
  await copyTokenizerFiles(source, join(out, 'merged'));
  writeFileSync(join(out, 'webtune_logits.json'), JSON.stringify({ input_ids: [[1, 17, 300, 1023], [2, 900, 64, 0]], with_adapter: withAdapter, merged, eos: tokenizer.eosToken }));
  console.log(`wrote ${out}/{base,adapter,merged,webtune_logits.json}`);
} finally {
  await hub.stop();
}
