/** Llama's config.json (transformers LlamaConfig), field for field, and its parser. */
import { checkDtype, type ConfigReader } from '../../config_reader.js';

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

export function parseLlama(r: ConfigReader): LlamaConfig {
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
