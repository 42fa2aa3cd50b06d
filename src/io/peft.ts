/**
 * PEFT LoRA adapter directories, read and written as PEFT 0.21 does:
 *
 *   adapter_config.json        LoraConfig.to_dict() as save_pretrained writes it (json.dumps, indent 2, keys sorted)
 *   adapter_model.safetensors  `base_model.model.<module path>.lora_A.weight` [r, in],
 *                              `base_model.model.<module path>.lora_B.weight` [out, r],
 *                              and for modules_to_save `base_model.model.<module path>.weight` (/.bias),
 *                              float32, metadata {"format": "pt"}
 *
 * An adapter PEFT saved loads here, and one saved here loads with `PeftModel.from_pretrained`,
 * with the same outputs. Options WebTune does not implement are refused on load, naming the field.
 *
 * @example
 *   applyLora(model, { r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'] });
 *   // ... train ...
 *   await saveAdapter(model, 'out/adapter');
 *   const other = await loadModel('base/'); await loadAdapter(other, 'out/adapter');
 */
import * as tf from '@tensorflow/tfjs';
import { applyLora, loraState, loraTensors, matchesEntry, resolveTargets, disposeLora, type LoraConfig, type LoraModel } from '../nn/lora.js';
import { parseSafetensors, writeSafetensors, type TensorRecord, type WritableTensor } from './safetensors.js';
import { openSink, openSource, FileNotFoundError, type FileSink, type FileSource } from './files.js';
import { filePath, modelTensors, CONFIG_FILE, WEIGHTS_FILE } from './checkpoint.js';
import { configToJSON } from '../../models/config.js';
import type { CausalLM } from '../../models/causal_lm.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** The PEFT release whose adapter_config.json layout is written (its `peft_version` field). */
export const PEFT_FORMAT_VERSION = '0.21.0';
const PREFIX = 'base_model.model.';

// ---------------------------------------------------------------------------------------------
// JSON as Python's json.dumps(obj, indent=2, sort_keys=True) writes it

/** A number as Python prints it: floats keep a '.0', exponents as 1e-05. */
class PyFloat {
  constructor(readonly value: number) {}
}

function pyFloatText(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`adapter_config.json: cannot write ${x}`);
  const abs = Math.abs(x);
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  if (abs >= 1e16 || abs < 1e-4) {
    const [mant, exp] = x.toExponential().split('e');
    const e = Number(exp);
    return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  const s = String(x);
  return s.includes('.') ? s : `${s}.0`;
}

function pyJson(v: unknown, indent = ''): string {
  const inner = `${indent}  `;
  if (v === null || v === undefined) return 'null';
  if (v instanceof PyFloat) return pyFloatText(v.value);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyFloatText(v);
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[\n${v.map((x) => inner + pyJson(x, inner)).join(',\n')}\n${indent}]`;
  const keys = Object.keys(v as object).sort();
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${pyJson(k)}: ${pyJson((v as Record<string, unknown>)[k], inner)}`).join(',\n')}\n${indent}}`;
}

/** adapter_config.json text of the model's adapter: every field PEFT 0.21 writes, in its order and number format. */
export function adapterConfigText(model: LoraModel): string {
  const s = loraState(model);
  if (!s) throw new Error('adapter_config.json: the model has no LoRA adapter.');
  const cfg: Record<string, unknown> = {
    alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null,
    base_model_name_or_path: s.baseModelNameOrPath, bias: 'none', corda_config: null, ensure_weight_tying: false,
    eva_config: null, exclude_modules: null, fan_in_fan_out: s.fanInFanOut, inference_mode: true,
    init_lora_weights: s.init === 'gaussian' ? 'gaussian' : true, kasa_config: null, layer_replication: null,
    layers_pattern: null, layers_to_transform: null, loftq_config: {},
    lora_alpha: Number.isInteger(s.alpha) ? s.alpha : new PyFloat(s.alpha), lora_bias: false,
    lora_dropout: new PyFloat(s.dropout), lora_ga_config: null, megatron_config: null, megatron_core: 'megatron.core',
    modules_to_save: s.modulesToSave, monteclora_config: null, peft_type: 'LORA', peft_version: PEFT_FORMAT_VERSION,
    qalora_group_size: 16, r: s.r, rank_pattern: {}, revision: null, target_modules: s.targetModules,
    target_parameters: null, task_type: 'CAUSAL_LM', trainable_token_indices: null, use_bdlora: null,
    use_dora: false, use_qalora: false, use_rslora: s.useRslora, velora_config: null,
  };
  return pyJson(cfg);   // PEFT writes json.dumps(..., indent=2, sort_keys=True) with no trailing newline
}

/** The adapter's tensors under PEFT's saved names, on the host. */
export async function adapterTensors(model: LoraModel): Promise<Map<string, WritableTensor>> {
  const out = new Map<string, WritableTensor>();
  for (const [name, v] of loraTensors(model)) out.set(PREFIX + name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
  return out;
}

/** Writes adapter_config.json and adapter_model.safetensors (keys sorted, F32, {"format": "pt"}). */
export async function saveAdapter(model: LoraModel, sink: FileSink | string): Promise<string[]> {
  const out = openSink(sink);
  const config = adapterConfigText(model);
  await out.write(ADAPTER_WEIGHTS_FILE, writeSafetensors(await adapterTensors(model), { format: 'pt' }));
  await out.write(ADAPTER_CONFIG_FILE, config);
  return [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE];
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Fields whose non-default value means a PEFT feature WebTune does not implement. */
const UNSUPPORTED: Array<[string, (v: unknown) => boolean, string]> = [
  ['use_dora', (v) => v === true, 'DoRA is not implemented'],
  ['bias', (v) => v !== undefined && v !== 'none', 'only bias "none" is implemented (base biases stay frozen)'],
  ['lora_bias', (v) => v === true, 'a bias on lora_B is not implemented'],
  ['rank_pattern', (v) => isNonEmpty(v), 'per-module ranks are not implemented'],
  ['alpha_pattern', (v) => isNonEmpty(v), 'per-module alphas are not implemented'],
  ['layers_to_transform', (v) => v !== null && v !== undefined, 'layer selection is not implemented'],
  ['layers_pattern', (v) => v !== null && v !== undefined, 'layer selection is not implemented'],
  ['exclude_modules', (v) => isNonEmpty(v), 'exclude_modules is not implemented'],
  ['target_parameters', (v) => isNonEmpty(v), 'LoRA on parameters is not implemented'],
  ['layer_replication', (v) => isNonEmpty(v), 'layer replication is not implemented'],
  ['trainable_token_indices', (v) => isNonEmpty(v), 'trainable tokens are not implemented'],
  ['alora_invocation_tokens', (v) => isNonEmpty(v), 'activated LoRA is not implemented'],
  ['use_qalora', (v) => v === true, 'QA-LoRA is not implemented'],
  ['use_bdlora', (v) => isNonEmpty(v), 'block-diagonal LoRA is not implemented'],
  ['megatron_config', (v) => isNonEmpty(v), 'Megatron layers are not implemented'],
];

function isNonEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === false) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** Reads and validates adapter_config.json into a LoraConfig. Errors name the file and field. */
export function parseAdapterConfig(json: unknown, where = ADAPTER_CONFIG_FILE): LoraConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${where}: must be a JSON object`);
  const c = json as Record<string, unknown>;
  const bad = (field: string, why: string): never => { throw new Error(`${where}: field "${field}" = ${JSON.stringify(c[field])}: ${why}`); };
  if (c.peft_type !== 'LORA') bad('peft_type', 'only "LORA" adapters are supported');
  if (c.task_type !== undefined && c.task_type !== null && c.task_type !== 'CAUSAL_LM') bad('task_type', 'only "CAUSAL_LM" adapters are supported');
  for (const [field, isBad, why] of UNSUPPORTED) if (isBad(c[field])) bad(field, why);
  if (typeof c.r !== 'number' || !Number.isInteger(c.r) || c.r < 1) bad('r', 'must be a positive integer');
  const alpha = c.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0)) bad('lora_alpha', 'must be a positive number');
  const dropout = c.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || dropout < 0 || dropout >= 1) bad('lora_dropout', 'must be a number in [0, 1)');
  const tm = c.target_modules;
  if (!(typeof tm === 'string' || (Array.isArray(tm) && tm.length > 0 && tm.every((t) => typeof t === 'string')))) bad('target_modules', 'must be a non-empty list of module names or a regular expression string');
  const mts = c.modules_to_save ?? null;
  if (mts !== null && !(Array.isArray(mts) && mts.every((t) => typeof t === 'string'))) bad('modules_to_save', 'must be null or a list of module names');
  // ensure_weight_tying keeps a tied embedding and head as ONE trained matrix; WebTune trains each listed module's own copy (PEFT's default).
  if (c.ensure_weight_tying === true && isNonEmpty(mts)) bad('ensure_weight_tying', 'one shared trained matrix for tied modules_to_save is not implemented (each listed module trains its own copy, as with false)');
  if (c.use_rslora !== undefined && typeof c.use_rslora !== 'boolean') bad('use_rslora', 'must be true or false');
  const init = c.init_lora_weights;
  return {
    r: c.r as number, alpha: alpha as number, dropout: dropout as number, targetModules: tm as string[] | string,
    useRslora: c.use_rslora === true, init: init === 'gaussian' ? 'gaussian' : 'default',
    modulesToSave: (mts as string[] | null) ?? undefined,
    baseModelNameOrPath: typeof c.base_model_name_or_path === 'string' ? c.base_model_name_or_path : null,
  };
}

function recordToTensor(rec: TensorRecord, where: string): tf.Tensor {
  const d = rec.data;
  if (d instanceof Float32Array) return tf.tensor(d, rec.shape, 'float32');
  if (d instanceof Float64Array) return tf.tensor(Float32Array.from(d), rec.shape, 'float32');
  throw new Error(`${where}: dtype ${rec.dtype}, expected a floating-point tensor`);
}

/**
 * Applies the adapter in `source` to `model`: reads adapter_config.json (validated), applies LoRA
 * with its options, then copies the stored weights in. Every stored key must be one PEFT would
 * write for this config and model, with the right shape; every targeted module must have both of
 * its matrices. Errors name the file and the key or field. With `trainable: false` the adapter is
 * frozen too (inference). Returns the config read.
 */
export async function loadAdapter(model: CausalLM, source: FileSource | string, opts: { trainable?: boolean } = {}): Promise<LoraConfig> {
  const src = openSource(source);
  const cfgPath = filePath(src, ADAPTER_CONFIG_FILE);
  if (!(await src.exists(ADAPTER_CONFIG_FILE))) throw new FileNotFoundError(cfgPath, 'missing: a PEFT adapter directory needs adapter_config.json');
  let json: unknown;
  try {
    json = JSON.parse(await src.readText(ADAPTER_CONFIG_FILE));
  } catch (e) {
    if (e instanceof SyntaxError) throw new Error(`${cfgPath}: not valid JSON (${e.message})`);
    throw e;
  }
  const config = parseAdapterConfig(json, cfgPath);
  const wPath = filePath(src, ADAPTER_WEIGHTS_FILE);
  if (!(await src.exists(ADAPTER_WEIGHTS_FILE))) {
    const hint = (await src.exists('adapter_model.bin')) ? ' (it has adapter_model.bin: PyTorch pickles are not read; save with safe_serialization=True)' : '';
    throw new FileNotFoundError(wPath, `missing${hint}`);
  }
  const { tensors } = parseSafetensors(await src.read(ADAPTER_WEIGHTS_FILE), wPath);

  // Check every key against the model before changing anything.
  const linears = model.linearModules();
  let targets: string[];
  try {
    targets = resolveTargets(config.targetModules!, linears.keys());
  } catch (e) {
    throw new Error(`${cfgPath}: ${(e as Error).message}`);
  }
  const r = config.r;
  const expected = new Map<string, number[]>();
  for (const path of targets) {
    const lin = linears.get(path)!;
    expected.set(`${PREFIX}${path}.lora_A.weight`, [r, lin.inFeatures]);
    expected.set(`${PREFIX}${path}.lora_B.weight`, [lin.outFeatures, r]);
  }
  const savedNames = new Map<string, number[]>();
  for (const [name, v] of model.params) savedNames.set(name, v.shape);
  if (linears.has('lm_head') && !savedNames.has('lm_head.weight')) savedNames.set('lm_head.weight', linears.get('lm_head')!.weight.shape);
  for (const [key, rec] of tensors) {
    const want = expected.get(key);
    if (want) {
      if (rec.shape.join() !== want.join()) throw new Error(`${wPath}: tensor "${key}": expected shape [${want.join(', ')}] (r = ${r} from adapter_config.json and the base model's layer), got [${rec.shape.join(', ')}]`);
      continue;
    }
    const m = /^base_model\.model\.(.+)\.(lora_A|lora_B)(\.[^.]+)?\.weight$/.exec(key);
    if (m) {
      const path = m[1];
      if (m[3]) throw new Error(`${wPath}: tensor "${key}": adapter-named keys (".${m[3].slice(1)}") are not how PEFT saves; expected "${PREFIX}${path}.${m[2]}.weight"`);
      if (!linears.has(path)) throw new Error(`${wPath}: tensor "${key}": the base model has no linear module '${path}' (wrong base model?)`);
      throw new Error(`${wPath}: tensor "${key}": module '${path}' is not selected by target_modules ${JSON.stringify(config.targetModules)} in adapter_config.json`);
    }
    const name = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : undefined;
    const module = name?.slice(0, name.lastIndexOf('.'));
    if (name && module && (config.modulesToSave ?? []).some((e) => matchesEntry(module, e)) && savedNames.has(name)) {
      const shape = savedNames.get(name)!;
      if (rec.shape.join() !== shape.join()) throw new Error(`${wPath}: tensor "${key}" (modules_to_save): expected shape [${shape.join(', ')}] like the base model's "${name}", got [${rec.shape.join(', ')}]`);
      continue;
    }
    throw new Error(`${wPath}: unexpected tensor "${key}": not a LoRA matrix of a targeted module nor a parameter of a module in modules_to_save`);
  }
  for (const key of expected.keys()) if (!tensors.has(key)) throw new Error(`${wPath}: missing tensor "${key}" for a module selected by target_modules in adapter_config.json`);

  applyLora(model, config);
  try {
    for (const [name, v] of loraTensors(model)) {
      const rec = tensors.get(PREFIX + name);
      if (!rec) throw new Error(`${wPath}: missing tensor "${PREFIX}${name}" (modules_to_save ${JSON.stringify(config.modulesToSave)})`);
      tf.tidy(() => v.assign(recordToTensor(rec, `${wPath}: tensor "${PREFIX}${name}"`)));
      if (opts.trainable === false) v.trainable = false;
    }
  } catch (e) {
    disposeLora(model);
    throw e;
  }
  return config;
}

// ---------------------------------------------------------------------------------------------
// Merged checkpoints

/**
 * Writes a merged model (after mergeAndUnload) as a Hugging Face checkpoint: config.json +
 * model.safetensors. A tied model whose lm_head was trained on its own (modules_to_save) is
 * written untied (tie_word_embeddings false, lm_head.weight stored), as PEFT's merge_and_unload
 * leaves it.
 */
export async function saveMerged(model: CausalLM, sink: FileSink | string): Promise<void> {
  if (loraState(model)) throw new Error('saveMerged: the model still has a LoRA adapter; call mergeAndUnload first.');
  await saveMergedWeights(model, sink);
}

/**
 * The weights as saveMerged writes them, also for a model whose adapter is merged (mergeLora)
 * but still attached (saveModelFiles with adapter 'merged' merges, writes, then unmerges).
 */
export async function saveMergedWeights(model: CausalLM, sink: FileSink | string): Promise<void> {
  const out = openSink(sink);
  const tensors = await modelTensors(model);
  const head = model.linearModules().get('lm_head');
  const config = configToJSON(model.config);
  const untied = model.config.tie_word_embeddings && head !== undefined && ![...model.params.values()].includes(head.weight);
  if (untied) {
    tensors.set('lm_head.weight', { shape: head.weight.shape.slice(), data: (await head.weight.data()) as Float32Array });
    config.tie_word_embeddings = false;
  } else if (model.config.tie_word_embeddings) tensors.delete('lm_head.weight');
  await out.write(WEIGHTS_FILE, writeSafetensors(tensors, { format: 'pt' }));
  await out.write(CONFIG_FILE, JSON.stringify(config, null, 2) + '\n');
}
