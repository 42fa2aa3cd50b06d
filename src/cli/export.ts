/**
 * `webtune export`: turn a base checkpoint + PEFT LoRA adapter into files for the Python side.
 *
 *   webtune export --model base/ --adapter adapter/ --merge --out merged/
 *       a plain Hugging Face checkpoint with W += scaling·B·A folded in (PEFT merge_and_unload):
 *       config.json + model.safetensors, plus the tokenizer / generation files of base/ copied
 *   webtune export --model base/ --adapter adapter/ --out normalised/
 *       the adapter validated against base/ and rewritten: adapter_config.json with every field
 *       PEFT 0.21 writes, adapter_model.safetensors float32 with sorted keys
 */
import * as tf from '@tensorflow/tfjs';
import { parseFlags, CliError } from './args.js';
import { initBackend, describeBackend, type BackendName } from '../backend/index.js';
import { loadModel, loadAdapter, saveAdapter, saveMerged, copyTokenizerFiles } from '../io/index.js';
import { mergeAndUnload, loraTrainableReport } from '../nn/lora.js';

const SPEC = {
  model: { type: 'string', required: true, help: 'base checkpoint directory (config.json + model.safetensors)' },
  adapter: { type: 'string', required: true, help: 'PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors)' },
  out: { type: 'string', required: true, help: 'output directory' },
  merge: { type: 'boolean', help: 'write a merged checkpoint instead of a normalised adapter' },
  backend: { type: 'string', help: 'cpu or webgpu (default cpu: merging is a few matrix products)' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('export', argv, SPEC, 'Merge a LoRA adapter into its base checkpoint (--merge), or validate and rewrite it as PEFT writes it.');
  if (!flags) return 0;
  const backend = flags.backend ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'webgpu') throw new CliError(`export: --backend must be cpu or webgpu, got '${backend}'.`);
  const info = await initBackend({ prefer: backend as BackendName, strict: true });
  if (info.backend === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);

  const model = await loadModel(flags.model!);
  try {
    await loadAdapter(model, flags.adapter!);
    const report = loraTrainableReport(model).line;
    if (flags.merge) {
      mergeAndUnload(model);
      await saveMerged(model, flags.out!);
      const copied = await copyTokenizerFiles(flags.model!, flags.out!);
      console.log(`export: merged ${flags.adapter} (${report}) into ${flags.model} on ${describeBackend(info)}; wrote ${flags.out}/config.json, ${flags.out}/model.safetensors${copied.length ? `, ${copied.join(', ')}` : ''}`);
    } else {
      const files = await saveAdapter(model, flags.out!);
      console.log(`export: adapter ${flags.adapter} checked against ${flags.model} (${report}); wrote ${files.map((f) => `${flags.out}/${f}`).join(', ')}`);
    }
    return 0;
  } finally {
    model.dispose();
  }
}
