/**
 * Model configurations, mirroring Hugging Face `config.json` field for field, so a checkpoint
 * directory written by transformers loads here and one written here loads in transformers.
 *
 * The families (GPT-2 `GPT2LMHeadModel`, Llama `LlamaForCausalLM`) are descriptors in
 * models/families/, looked up by `model_type`; this file is what is common. `parseConfig` is
 * strict about what changes the computation (an unsupported activation, RoPE scaling, model
 * type...) and refuses it naming the field; keys that do not change the forward pass
 * (`architectures`, `transformers_version`, `use_cache`, dropout probabilities...) are kept in
 * `extra` and written back by `configToJSON`.
 *
 * @example
 *   const cfg = parseConfig({ model_type: 'gpt2', vocab_size: 1024, n_embd: 64, n_layer: 2, n_head: 2 }, 'config.json');
 *   cfg.model_type;              // 'gpt2'
 *   configToJSON(cfg).architectures;  // ['GPT2LMHeadModel']
 */

import { ConfigReader } from './config_reader.js';
import { familyOf, isModelFamily, MODEL_TYPES, MODEL_FAMILIES, type ModelConfig, type ModelFamily } from './families/index.js';
import type { ModelDims, PresetSize } from './family.js';

export type { ModelConfig, ModelFamily, ModelDims };
export type { GPT2Config, GPT2Activation, LlamaConfig } from './families/index.js';

/** The parameters of a config, whichever family: width, depth, heads, vocabulary. */
export function dims(config: ModelConfig): ModelDims {
  return familyOf(config).dims(config);
}

/**
 * Reads a Hugging Face config.json (already JSON.parse'd). `source` names the file in errors.
 * Throws `<source>: field '<name>': <why>` for anything WebTune would compute differently.
 */
export function parseConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: a config must be a JSON object.`);
  const r = new ConfigReader(json as Record<string, unknown>, source);
  const type = r.raw('model_type');
  if (!isModelFamily(type)) r.fail('model_type', `${JSON.stringify(type)} is not supported; WebTune runs ${MODEL_TYPES.map((t) => `'${t}'`).join(' and ')}.`);
  const family = familyOf({ model_type: type as ModelFamily });
  const config = family.parseConfig(r);
  // Not part of the forward pass; written fresh by configToJSON.
  for (const k of ['architectures', 'torch_dtype', 'dtype']) r.used.add(k);
  const archs = (json as Record<string, unknown>).architectures;
  if (Array.isArray(archs) && archs.length > 0 && !archs.every((a) => a === family.architecture || a === family.baseArchitecture)) {
    r.fail('architectures', `${JSON.stringify(archs)} is not a causal LM head for ${config.model_type}; expected ${family.architecture}.`);
  }
  config.extra = r.extra();
  return config;
}

/** The config.json transformers loads (architectures, model_type, torch_dtype float32, every field). */
export function configToJSON(config: ModelConfig): Record<string, unknown> {
  const { extra, ...fields } = config;
  const family = familyOf(config);
  return { architectures: [family.architecture], ...extra, ...fields, torch_dtype: 'float32', ...family.extraJSON?.(config) };
}

// ---------------------------------------------------------------------------------------------
// Parameter counts and presets

/** Number of parameters of a model with this config (tied lm_head counted once): the sizes of its paramSpecs. */
export function countParams(config: ModelConfig): number {
  let n = 0;
  for (const s of familyOf(config).paramSpecs(config)) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

export type PresetName = 'nano' | 'micro' | 'small';

/** A size for every family: the gated-MLP families get a SwiGLU width of about 8/3 * hidden, rounded up to 16. */
export function modelSize(s: Omit<PresetSize, 'llamaInner'>): PresetSize {
  if (s.hidden % s.heads !== 0) throw new Error(`The width ${s.hidden} is not a multiple of the ${s.heads} heads.`);
  return { ...s, llamaInner: Math.ceil((s.hidden * 8) / 3 / 16) * 16 };
}

/** Sizes shared by every family (the Llama variant also has half as many K/V heads). */
const SIZES: Record<PresetName, PresetSize> = {
  nano: modelSize({ hidden: 64, layers: 2, heads: 2, positions: 256 }),      // llamaInner 176
  micro: modelSize({ hidden: 128, layers: 4, heads: 4, positions: 512 }),    // llamaInner 352
  small: modelSize({ hidden: 256, layers: 12, heads: 4, positions: 1024 }),  // llamaInner 688
};

/** Vocabulary size of the bundled byte-level BPE tokenizer (models/tokenizer/). */
export const BUNDLED_VOCAB_SIZE = 1024;

/**
 * A preset config. Parameter counts with vocab_size 1024 and tied embeddings
 * (checked by test/model/config.test.ts):
 *
 * | preset | C   | layers | heads (kv) | positions | gpt2 params | llama params |
 * |--------|-----|--------|------------|-----------|-------------|--------------|
 * | nano   | 64  | 2      | 2 (1)      | 256       | 182,016     | 158,016      |
 * | micro  | 128 | 4      | 4 (2)      | 512       | 989,952     | 869,504      |
 * | small  | 256 | 12     | 4 (2)      | 1024      | 10,001,920  | 8,968,448    |
 *
 * (Llama has no position table and GQA halves K/V, hence fewer parameters at the same width.)
 */
export function presetConfig(name: PresetName, opts: { vocabSize?: number; family?: ModelFamily } = {}): ModelConfig {
  const s = SIZES[name];
  if (!s) throw new Error(`Unknown preset '${name}'; choose one of ${Object.keys(SIZES).join(', ')}.`);
  const vocab = opts.vocabSize ?? BUNDLED_VOCAB_SIZE;
  const family = opts.family ?? 'gpt2';
  if (!isModelFamily(family)) throw new Error(`Unknown model family '${family}'; choose ${MODEL_TYPES.join(' or ')}.`);
  return MODEL_FAMILIES[family].preset(s, vocab);
}

/** GPT-2 family presets with the bundled tokenizer's vocabulary; `presetConfig` builds the Llama ones. */
export const PRESETS: Record<PresetName, ModelConfig> = {
  nano: presetConfig('nano'),
  micro: presetConfig('micro'),
  small: presetConfig('small'),
};
