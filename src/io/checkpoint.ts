/**
 * Hugging Face checkpoint directories, read and written the way transformers does:
 *
 *   config.json                        the model config (models/config.ts parses and writes it)
 *   model.safetensors                  every parameter, HF names and layouts, metadata {"format": "pt"}
 *   model.safetensors.index.json       instead of model.safetensors: {"metadata": {...}, "weight_map": {name: shard}}
 *   model-00001-of-0000N.safetensors   the shards it names
 *   tokenizer.json, tokenizer_config.json, generation_config.json, ...   copied alongside as bytes
 *
 * As in transformers, a single model.safetensors is preferred over an index when both exist, and
 * a tied lm_head.weight is not written (it is the embedding). Stored F16/BF16/F64 weights load as
 * float32 (the dtype WebTune trains in); saving writes float32.
 *
 * @example
 * const model = await loadModel('checkpoints/gpt2-nano');       // or a FileSource (browser files, URL)
 * await saveModel(model, 'checkpoints/gpt2-nano-sft');          // or a FileSink (MemoryFiles)
 */
import * as tf from '@tensorflow/tfjs';
import { CausalLM, type BindOptions } from '../../models/causal_lm.js';
import { parseConfig, configToJSON } from '../../models/config.js';
import { familyOf } from '../../models/families/index.js';
import { parseSafetensors, writeSafetensors, type TensorRecord, type WritableTensor } from './safetensors.js';
import { openSink, openSource, checkFileName, FileNotFoundError, type FileSink, type FileSource } from './files.js';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';

/** Files saved beside a model that describe its tokenizer and generation defaults (copied byte for byte). */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja',
  'generation_config.json', 'vocab.json', 'merges.txt', 'added_tokens.json',
] as const;

/** "<source>/<file>", the way errors name a file of a checkpoint. */
export function filePath(src: { name: string }, file: string): string {
  return src.name.endsWith('/') ? src.name + file : `${src.name}/${file}`;
}

async function readJson(src: FileSource, file: string): Promise<unknown> {
  const text = await src.readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${filePath(src, file)}: not valid JSON (${(e as Error).message})`);
  }
}

export interface CheckpointTensors {
  config: Record<string, unknown>; // config.json as parsed JSON (not validated: parseConfig does that)
  tensors: Map<string, TensorRecord>; // every stored tensor, under its stored name
  files: string[]; // the weight files read, in order
}

/**
 * Reads config.json and the weights (model.safetensors, or the index and every shard) without
 * building a model. Shards are validated against the index: every shard it names must exist,
 * every tensor it maps must be in that shard, and every tensor of a shard must be mapped to it.
 */
export async function loadCheckpointTensors(source: FileSource | string): Promise<CheckpointTensors> {
  const src = openSource(source);
  if (!(await src.exists(CONFIG_FILE))) throw new FileNotFoundError(filePath(src, CONFIG_FILE), 'missing: a checkpoint directory needs config.json');
  const config = await readJson(src, CONFIG_FILE);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new Error(`${filePath(src, CONFIG_FILE)}: must be a JSON object`);

  if (await src.exists(WEIGHTS_FILE)) {
    const { tensors } = parseSafetensors(await src.read(WEIGHTS_FILE), filePath(src, WEIGHTS_FILE));
    return { config: config as Record<string, unknown>, tensors, files: [WEIGHTS_FILE] };
  }
  if (await src.exists(WEIGHTS_INDEX_FILE)) {
    const { tensors, files } = await loadSharded(src);
    return { config: config as Record<string, unknown>, tensors, files };
  }
  const hint = (await src.exists('pytorch_model.bin'))
    ? ' (it has pytorch_model.bin: PyTorch pickles are not read; convert it to safetensors, e.g. save_pretrained(..., safe_serialization=True))'
    : '';
  throw new FileNotFoundError(filePath(src, WEIGHTS_FILE), `missing, and there is no ${WEIGHTS_INDEX_FILE} either${hint}`);
}

async function loadSharded(src: FileSource): Promise<{ tensors: Map<string, TensorRecord>; files: string[] }> {
  const indexPath = filePath(src, WEIGHTS_INDEX_FILE);
  const index = await readJson(src, WEIGHTS_INDEX_FILE);
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof index !== 'object' || index === null || typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`${indexPath}: must be an object with a "weight_map" object {tensor name: shard file}`);
  }
  // shard -> tensor names the index puts in it
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string') throw new Error(`${indexPath}: weight_map["${name}"] must be a file name, got ${JSON.stringify(shard)}`);
    checkFileName(shard, `${indexPath}: weight_map["${name}"]:`);
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  if (byShard.size === 0) throw new Error(`${indexPath}: "weight_map" is empty`);
  // Every shard present before any is read: a partial download fails at once, naming what is missing.
  const shards = [...byShard.keys()].sort();
  const missing: string[] = [];
  for (const shard of shards) if (!(await src.exists(shard))) missing.push(shard);
  if (missing.length > 0) {
    const first = missing[0];
    throw new FileNotFoundError(filePath(src, first),
      `missing shard (named in ${WEIGHTS_INDEX_FILE} for tensor "${byShard.get(first)![0]}"${missing.length > 1 ? `; ${missing.length - 1} more shard(s) missing: ${missing.slice(1).join(', ')}` : ''})`);
  }
  const tensors = new Map<string, TensorRecord>();
  for (const shard of shards) {
    const where = filePath(src, shard);
    const expected = new Set(byShard.get(shard));
    const parsed = parseSafetensors(await src.read(shard), where);
    for (const name of parsed.tensors.keys()) {
      if (!expected.has(name)) {
        const other = (weightMap as Record<string, string>)[name];
        throw new Error(`${where}: tensor "${name}" is ${other === undefined ? 'not in' : `mapped to ${other} by`} ${WEIGHTS_INDEX_FILE}: the index and the shards disagree`);
      }
    }
    for (const name of expected) {
      const t = parsed.tensors.get(name);
      if (!t) throw new Error(`${indexPath}: tensor "${name}" is mapped to ${shard}, which does not contain it`);
      tensors.set(name, t);
    }
  }
  return { tensors, files: shards };
}

/** A float32 (or int32) tf.Tensor over a stored tensor; `where` names it in errors. */
function toTf(rec: TensorRecord, where: string): tf.Tensor {
  const d = rec.data;
  if (d instanceof Float32Array) return tf.tensor(d, rec.shape, 'float32');
  if (d instanceof Float64Array) return tf.tensor(Float32Array.from(d), rec.shape, 'float32');
  if (d instanceof Int32Array) return tf.tensor(d, rec.shape, 'int32');
  if (d instanceof BigInt64Array) throw new Error(`${where}: ${rec.dtype} values outside the int32 range cannot be loaded`);
  return tf.tensor(Int32Array.from(d), rec.shape, 'int32');
}

/**
 * Loads a checkpoint directory into a CausalLM: config.json through parseConfig, weights through
 * CausalLM.fromTensors (which checks every name and shape). Buffers that are not parameters
 * (GPT-2 attn.bias masks, Llama rotary inv_freq) are skipped without being uploaded. The model is
 * bound to `opts.engine`, by default the engine of the active backend.
 */
export async function loadModel(source: FileSource | string, opts: BindOptions = {}): Promise<CausalLM> {
  const src = openSource(source);
  const { config: json, tensors, files } = await loadCheckpointTensors(src);
  const config = parseConfig(json, filePath(src, CONFIG_FILE));
  const weightsName = files.length === 1 ? filePath(src, files[0]) : filePath(src, WEIGHTS_INDEX_FILE);
  const family = familyOf(config);
  const tfTensors = new Map<string, tf.Tensor>();
  try {
    for (const [name, rec] of tensors) {
      if (family.checkpointName(name) === null) continue;   // a buffer, not a parameter
      if (name === 'lm_head.weight' && config.tie_word_embeddings) continue; // transformers ignores it too
      tfTensors.set(name, toTf(rec, `${weightsName}: tensor "${name}"`));
    }
    return CausalLM.fromTensors(config, tfTensors, weightsName, opts);
  } finally {
    for (const t of tfTensors.values()) t.dispose();
  }
}

/** Every parameter of `model` on the host, by HF name, in HF layout (a tied lm_head is not included). */
export async function modelTensors(model: CausalLM): Promise<Map<string, WritableTensor>> {
  const out = new Map<string, WritableTensor>();
  for (const [name, v] of model.params) {
    if (v.dtype !== 'float32') throw new Error(`saveModel: parameter "${name}" is ${v.dtype}, expected float32`);
    out.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
  }
  return out;
}

/**
 * Writes config.json and model.safetensors (float32, metadata {"format": "pt"} as transformers
 * writes it) so that `AutoModelForCausalLM.from_pretrained(dir)` loads the model. LoRA adapters
 * are not part of the base weights: save them as a PEFT adapter (or merge them first).
 */
export async function saveModel(model: CausalLM, sink: FileSink | string): Promise<void> {
  const out = openSink(sink);
  const tensors = await modelTensors(model);
  if (tensors.has('lm_head.weight') && model.config.tie_word_embeddings) {
    tensors.delete('lm_head.weight'); // tied: transformers neither writes nor expects it
  }
  await out.write(WEIGHTS_FILE, writeSafetensors(tensors, { format: 'pt' }));
  await out.write(CONFIG_FILE, JSON.stringify(configToJSON(model.config), null, 2) + '\n');
}

/**
 * Copies the tokenizer and generation files that exist in `src` (TOKENIZER_FILES) to `sink`,
 * byte for byte, and returns the names copied.
 */
export async function copyTokenizerFiles(source: FileSource | string, sink: FileSink | string): Promise<string[]> {
  const src = openSource(source);
  const out = openSink(sink);
  const copied: string[] = [];
  for (const file of TOKENIZER_FILES) {
    if (!(await src.exists(file))) continue;
    await out.write(file, await src.read(file));
    copied.push(file);
  }
  return copied;
}

