/**
 * Model configurations, mirroring Hugging Face `config.json` field for field, so a checkpoint
 * directory written by transformers loads here and one written here loads in transformers.
 *
 * Two families: GPT-2 (`GPT2LMHeadModel`) and Llama (`LlamaForCausalLM`). `parseConfig` is
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

/** GELU variants GPT-2 checkpoints use. gelu_new, gelu_pytorch_tanh and gelu_fast are the tanh approximation; gelu is exact (erf). */
export type GPT2Activation = 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu_fast' | 'gelu';

export interface GPT2Config {
  model_type: 'gpt2';
  vocab_size: number;          // rows of wte and of the (tied) lm_head
  n_positions: number;         // rows of wpe: the longest sequence the model can read
  n_embd: number;              // C, the residual width
  n_layer: number;
  n_head: number;              // head size is n_embd / n_head
  n_inner: number | null;      // MLP width; null means 4 * n_embd (as in HF)
  activation_function: GPT2Activation;
  layer_norm_epsilon: number;
  initializer_range: number;   // std of the normal init; c_proj weights use std / sqrt(2 * n_layer)
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
  // Dropout probabilities are kept for round trip. WebTune does not apply base-model dropout
  // (training is deterministic given the seed; LoRA dropout is separate).
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  /** Keys that do not change the computation (architectures, transformers_version, ...), written back verbatim. */
  extra: Record<string, unknown>;
}

export interface LlamaConfig {
  model_type: 'llama';
  vocab_size: number;
  hidden_size: number;              // C
  intermediate_size: number;        // SwiGLU width
  num_hidden_layers: number;
  num_attention_heads: number;      // query heads
  num_key_value_heads: number;      // K/V heads (grouped-query attention when < num_attention_heads)
  head_dim: number;                 // default hidden_size / num_attention_heads
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;               // RoPE base (v4: rope_theta; v5: rope_parameters.rope_theta)
  tie_word_embeddings: boolean;
  attention_bias: boolean;          // biases on q/k/v/o projections
  mlp_bias: boolean;                // biases on gate/up/down projections
  hidden_act: 'silu';
  initializer_range: number;
  bos_token_id: number;
  eos_token_id: number | number[];
  attention_dropout: number;        // kept for round trip, not applied
  extra: Record<string, unknown>;
}

export type ModelConfig = GPT2Config | LlamaConfig;
export type ModelFamily = ModelConfig['model_type'];

/** The parameters of a config, whichever family: width, depth, heads, vocabulary. */
export function dims(config: ModelConfig): { vocab: number; hidden: number; layers: number; heads: number; kvHeads: number; headDim: number; inner: number; maxPositions: number } {
  if (config.model_type === 'gpt2') {
    return {
      vocab: config.vocab_size, hidden: config.n_embd, layers: config.n_layer, heads: config.n_head, kvHeads: config.n_head,
      headDim: config.n_embd / config.n_head, inner: config.n_inner ?? 4 * config.n_embd, maxPositions: config.n_positions,
    };
  }
  return {
    vocab: config.vocab_size, hidden: config.hidden_size, layers: config.num_hidden_layers, heads: config.num_attention_heads,
    kvHeads: config.num_key_value_heads, headDim: config.head_dim, inner: config.intermediate_size, maxPositions: config.max_position_embeddings,
  };
}

// ---------------------------------------------------------------------------------------------
// Parsing

class ConfigReader {
  readonly used = new Set<string>();
  constructor(readonly json: Record<string, unknown>, readonly source: string) {}

  fail(field: string, message: string): never {
    throw new Error(`${this.source}: field '${field}': ${message}`);
  }
  has(key: string): boolean {
    return this.json[key] !== undefined;
  }
  raw(key: string): unknown {
    this.used.add(key);
    return this.json[key];
  }
  int(key: string, dflt?: number, { min = 1 } = {}): number {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) this.fail(key, 'is required.');
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `must be an integer >= ${min}, got ${JSON.stringify(v)}.`);
    return v;
  }
  num(key: string, dflt: number, { positive = false } = {}): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive ? v <= 0 : v < 0)) this.fail(key, `must be a ${positive ? 'positive' : 'non-negative'} number, got ${JSON.stringify(v)}.`);
    return v;
  }
  bool(key: string, dflt: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}.`);
    return v;
  }
  tokenId(key: string, dflt: number): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(key, `must be a token id (integer >= 0), got ${JSON.stringify(v)}.`);
    return v;
  }
  /** A field that must be absent or equal one of `allowed` (default values of options WebTune does not implement). */
  only(key: string, allowed: unknown[], why: string): void {
    const v = this.raw(key);
    if (v === undefined || allowed.some((a) => a === v)) return;
    this.fail(key, `${JSON.stringify(v)} is not supported (${why}).`);
  }
  /** Every key not read goes to `extra`, for round trip. */
  extra(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.json)) if (!this.used.has(k)) out[k] = v;
    return out;
  }
}

const DTYPES = ['float32', 'float16', 'bfloat16', 'float64', 'auto'];

function checkDtype(r: ConfigReader): void {
  // Weights are converted to float32 on load whatever they were saved in; the field is only checked.
  for (const key of ['torch_dtype', 'dtype']) {
    const v = r.raw(key);
    if (v !== undefined && v !== null && !DTYPES.includes(v as string)) r.fail(key, `${JSON.stringify(v)} is not a dtype WebTune can load (one of ${DTYPES.join(', ')}).`);
  }
}

const GPT2_ACTIVATIONS: GPT2Activation[] = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'gelu'];

function parseGPT2(r: ConfigReader): GPT2Config {
  const n_embd = r.int('n_embd', 768);
  const n_head = r.int('n_head', 12);
  if (n_embd % n_head !== 0) r.fail('n_head', `n_embd (${n_embd}) must be divisible by n_head (${n_head}).`);
  const act = r.raw('activation_function') ?? 'gelu_new';
  if (!GPT2_ACTIVATIONS.includes(act as GPT2Activation)) r.fail('activation_function', `${JSON.stringify(act)} is not supported; use one of ${GPT2_ACTIVATIONS.join(', ')}.`);
  const n_inner = r.raw('n_inner');
  if (n_inner !== undefined && n_inner !== null && (typeof n_inner !== 'number' || !Number.isInteger(n_inner) || n_inner < 1)) r.fail('n_inner', `must be null or a positive integer, got ${JSON.stringify(n_inner)}.`);
  const n_positions = r.int('n_positions', 1024);
  // n_ctx is the pre-2020 name of n_positions; original GPT-2 configs carry both.
  if (r.has('n_ctx')) {
    const n_ctx = r.int('n_ctx');
    if (n_ctx > n_positions) r.fail('n_ctx', `(${n_ctx}) exceeds n_positions (${n_positions}).`);
  }
  r.only('scale_attn_weights', [true], 'attention scores are always divided by sqrt(head size)');
  r.only('scale_attn_by_inverse_layer_idx', [false], 'per-layer attention scaling is not implemented');
  r.only('reorder_and_upcast_attn', [false], 'attention is computed in float32 already');
  r.only('add_cross_attention', [false], 'decoder-only models only');
  r.only('is_encoder_decoder', [false], 'decoder-only models only');
  checkDtype(r);
  return {
    model_type: 'gpt2',
    vocab_size: r.int('vocab_size', 50257),
    n_positions,
    n_embd,
    n_layer: r.int('n_layer', 12),
    n_head,
    n_inner: (n_inner as number | null | undefined) ?? null,
    activation_function: act as GPT2Activation,
    layer_norm_epsilon: r.num('layer_norm_epsilon', 1e-5, { positive: true }),
    initializer_range: r.num('initializer_range', 0.02),
    tie_word_embeddings: r.bool('tie_word_embeddings', true),
    bos_token_id: r.tokenId('bos_token_id', 50256),
    eos_token_id: r.tokenId('eos_token_id', 50256),
    resid_pdrop: r.num('resid_pdrop', 0.1),
    embd_pdrop: r.num('embd_pdrop', 0.1),
    attn_pdrop: r.num('attn_pdrop', 0.1),
    extra: {},
  };
}

function parseRope(r: ConfigReader): number {
  // transformers v4: rope_theta + rope_scaling (null or {rope_type|type: 'default'});
  // v5: rope_parameters {rope_theta, rope_type}.
  let theta: number | undefined;
  if (r.has('rope_theta')) theta = r.num('rope_theta', 10000, { positive: true });
  for (const key of ['rope_scaling', 'rope_parameters']) {
    const p = r.raw(key);
    if (p === undefined || p === null) continue;
    if (typeof p !== 'object' || Array.isArray(p)) r.fail(key, `must be an object or null, got ${JSON.stringify(p)}.`);
    const o = p as Record<string, unknown>;
    const type = o.rope_type ?? o.type ?? 'default';
    if (type !== 'default' && type !== 'none') r.fail(`${key}.rope_type`, `${JSON.stringify(type)} is not supported (only default RoPE; no linear/dynamic/yarn/llama3 scaling).`);
    for (const [k, v] of Object.entries(o)) {
      if (k === 'rope_type' || k === 'type') continue;
      if (k === 'rope_theta') {
        if (typeof v !== 'number' || !(v > 0)) r.fail(`${key}.rope_theta`, `must be a positive number, got ${JSON.stringify(v)}.`);
        if (theta !== undefined && theta !== v) r.fail(`${key}.rope_theta`, `(${v}) disagrees with rope_theta (${theta}).`);
        theta = v;
      } else if (k === 'partial_rotary_factor') {
        if (v !== 1 && v !== 1.0) r.fail(`${key}.partial_rotary_factor`, `${JSON.stringify(v)} is not supported (RoPE over the whole head only).`);
      } else {
        r.fail(`${key}.${k}`, 'is a RoPE scaling option; only default RoPE is supported.');
      }
    }
  }
  return theta ?? 10000;
}

function parseLlama(r: ConfigReader): LlamaConfig {
  const hidden_size = r.int('hidden_size', 4096);
  const num_attention_heads = r.int('num_attention_heads', 32);
  const num_key_value_heads = r.int('num_key_value_heads', num_attention_heads);
  if (num_attention_heads % num_key_value_heads !== 0) r.fail('num_key_value_heads', `num_attention_heads (${num_attention_heads}) must be a multiple of num_key_value_heads (${num_key_value_heads}).`);
  if (!r.has('head_dim') && hidden_size % num_attention_heads !== 0) r.fail('num_attention_heads', `hidden_size (${hidden_size}) must be divisible by num_attention_heads (${num_attention_heads}) when head_dim is not given.`);
  const head_dim = r.int('head_dim', hidden_size / num_attention_heads);
  if (head_dim % 2 !== 0) r.fail('head_dim', `must be even for RoPE, got ${head_dim}.`);
  const act = r.raw('hidden_act') ?? 'silu';
  if (act !== 'silu') r.fail('hidden_act', `${JSON.stringify(act)} is not supported for llama; only silu (SwiGLU).`);
  const rope_theta = parseRope(r);
  const pt = r.raw('pretraining_tp');
  // pretraining_tp > 1 only splits the same matmuls into slices: the result is identical.
  if (pt !== undefined && pt !== null && (typeof pt !== 'number' || !Number.isInteger(pt) || pt < 1)) r.fail('pretraining_tp', `must be a positive integer, got ${JSON.stringify(pt)}.`);
  if (pt !== undefined) r.used.delete('pretraining_tp');  // keep it for round trip
  let eos: number | number[] = 2;
  const eosRaw = r.raw('eos_token_id');
  if (Array.isArray(eosRaw)) {
    eosRaw.forEach((v, i) => { if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) r.fail(`eos_token_id[${i}]`, `must be a token id, got ${JSON.stringify(v)}.`); });
    eos = eosRaw as number[];
  } else if (eosRaw !== undefined && eosRaw !== null) {
    r.used.delete('eos_token_id');
    eos = r.tokenId('eos_token_id', 2);
  }
  checkDtype(r);
  return {
    model_type: 'llama',
    vocab_size: r.int('vocab_size', 32000),
    hidden_size,
    intermediate_size: r.int('intermediate_size', 11008),
    num_hidden_layers: r.int('num_hidden_layers', 32),
    num_attention_heads,
    num_key_value_heads,
    head_dim,
    max_position_embeddings: r.int('max_position_embeddings', 2048),
    rms_norm_eps: r.num('rms_norm_eps', 1e-6, { positive: true }),
    rope_theta,
    tie_word_embeddings: r.bool('tie_word_embeddings', false),
    attention_bias: r.bool('attention_bias', false),
    mlp_bias: r.bool('mlp_bias', false),
    hidden_act: 'silu',
    initializer_range: r.num('initializer_range', 0.02),
    bos_token_id: r.tokenId('bos_token_id', 1),
    eos_token_id: eos,
    attention_dropout: r.num('attention_dropout', 0),
    extra: {},
  };
}

/**
 * Reads a Hugging Face config.json (already JSON.parse'd). `source` names the file in errors.
 * Throws `<source>: field '<name>': <why>` for anything WebTune would compute differently.
 */
export function parseConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: a config must be a JSON object.`);
  const r = new ConfigReader(json as Record<string, unknown>, source);
  const type = r.raw('model_type');
  if (type !== 'gpt2' && type !== 'llama') r.fail('model_type', `${JSON.stringify(type)} is not supported; WebTune runs 'gpt2' and 'llama'.`);
  const config: ModelConfig = type === 'gpt2' ? parseGPT2(r) : parseLlama(r);
  // Not part of the forward pass; written fresh by configToJSON.
  for (const k of ['architectures', 'torch_dtype', 'dtype']) r.used.add(k);
  const archs = (json as Record<string, unknown>).architectures;
  const expected = config.model_type === 'gpt2' ? 'GPT2LMHeadModel' : 'LlamaForCausalLM';
  if (Array.isArray(archs) && archs.length > 0 && !archs.every((a) => a === expected || (config.model_type === 'gpt2' && a === 'GPT2Model') || (config.model_type === 'llama' && a === 'LlamaModel'))) {
    r.fail('architectures', `${JSON.stringify(archs)} is not a causal LM head for ${config.model_type}; expected ${expected}.`);
  }
  config.extra = r.extra();
  return config;
}

/** The config.json transformers loads (architectures, model_type, torch_dtype float32, every field). */
export function configToJSON(config: ModelConfig): Record<string, unknown> {
  const { extra, ...fields } = config;
  const arch = config.model_type === 'gpt2' ? 'GPT2LMHeadModel' : 'LlamaForCausalLM';
  const out: Record<string, unknown> = { architectures: [arch], ...extra, ...fields, torch_dtype: 'float32' };
  if (config.model_type === 'llama') {
    // Both spellings, so transformers v4 (rope_theta) and v5 (rope_parameters) read the same base.
    out.rope_parameters = { rope_type: 'default', rope_theta: config.rope_theta };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parameter counts and presets

/** Number of parameters of a model with this config (tied lm_head counted once), computed from the shapes. */
export function countParams(config: ModelConfig): number {
  const d = dims(config);
  const C = d.hidden;
  if (config.model_type === 'gpt2') {
    const perLayer = 2 * C /* ln_1 */ + C * 3 * C + 3 * C /* c_attn */ + C * C + C /* attn.c_proj */ + 2 * C /* ln_2 */
      + C * d.inner + d.inner /* c_fc */ + d.inner * C + C /* mlp.c_proj */;
    return d.vocab * C + d.maxPositions * C + d.layers * perLayer + 2 * C + (config.tie_word_embeddings ? 0 : d.vocab * C);
  }
  const q = d.heads * d.headDim, kv = d.kvHeads * d.headDim;
  const ab = config.attention_bias ? 1 : 0, mb = config.mlp_bias ? 1 : 0;
  const perLayer = C /* input_layernorm */ + C * q + ab * q + 2 * (C * kv + ab * kv) + q * C + ab * C /* q,k,v,o */
    + C /* post_attention_layernorm */ + 2 * (C * d.inner + mb * d.inner) + d.inner * C + mb * C /* gate, up, down */;
  return d.vocab * C + d.layers * perLayer + C + (config.tie_word_embeddings ? 0 : d.vocab * C);
}

export type PresetName = 'nano' | 'micro' | 'small';

/** Sizes shared by both families; the Llama variant uses a SwiGLU width of about 8/3 * C (rounded up to 16) and half as many K/V heads. */
const SIZES: Record<PresetName, { hidden: number; layers: number; heads: number; positions: number; llamaInner: number }> = {
  nano: { hidden: 64, layers: 2, heads: 2, positions: 256, llamaInner: 176 },
  micro: { hidden: 128, layers: 4, heads: 4, positions: 512, llamaInner: 352 },
  small: { hidden: 256, layers: 12, heads: 4, positions: 1024, llamaInner: 688 },
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
  if (family === 'gpt2') {
    return {
      model_type: 'gpt2', vocab_size: vocab, n_positions: s.positions, n_embd: s.hidden, n_layer: s.layers, n_head: s.heads,
      n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, initializer_range: 0.02,
      tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, extra: {},
    };
  }
  if (family !== 'llama') throw new Error(`Unknown model family '${family}'; choose gpt2 or llama.`);
  return {
    model_type: 'llama', vocab_size: vocab, hidden_size: s.hidden, intermediate_size: s.llamaInner, num_hidden_layers: s.layers,
    num_attention_heads: s.heads, num_key_value_heads: s.heads / 2, head_dim: s.hidden / s.heads,
    max_position_embeddings: s.positions, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
    attention_bias: false, mlp_bias: false, hidden_act: 'silu', initializer_range: 0.02, bos_token_id: 0, eos_token_id: 0,
    attention_dropout: 0, extra: {},
  };
}

/** GPT-2 family presets with the bundled tokenizer's vocabulary; `presetConfig` builds the Llama ones. */
export const PRESETS: Record<PresetName, ModelConfig> = {
  nano: presetConfig('nano'),
  micro: presetConfig('micro'),
  small: presetConfig('small'),
};
