/** parseConfig / configToJSON on configs as real checkpoints write them, and every refusal naming its field. */
import { describe, it, expect } from 'vitest';
import { parseConfig, configToJSON, presetConfig, PRESETS, type GPT2Config, type LlamaConfig } from '../../models/config.js';

// openai-community/gpt2 config.json, verbatim.
const GPT2_ORIGINAL = {
  activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1,
  eos_token_id: 50256, initializer_range: 0.02, layer_norm_epsilon: 1e-05, model_type: 'gpt2', n_ctx: 1024, n_embd: 768, n_head: 12,
  n_layer: 12, n_positions: 1024, resid_pdrop: 0.1, summary_activation: null, summary_first_dropout: 0.1, summary_proj_to_labels: true,
  summary_type: 'cls_index', summary_use_proj: true, task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } }, vocab_size: 50257,
};

// A transformers v4 Llama config (TinyLlama-1.1B style).
const LLAMA_V4 = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 2048,
  initializer_range: 0.02, intermediate_size: 5632, max_position_embeddings: 2048, model_type: 'llama', num_attention_heads: 32,
  num_hidden_layers: 22, num_key_value_heads: 4, pretraining_tp: 1, rms_norm_eps: 1e-05, rope_scaling: null, rope_theta: 10000.0,
  tie_word_embeddings: false, torch_dtype: 'bfloat16', transformers_version: '4.35.0', use_cache: true, vocab_size: 32000,
};

// The same model as transformers v5 writes it: dtype, rope_parameters, a list of eos ids.
const LLAMA_V5 = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 1, eos_token_id: [2, 7], head_dim: 64,
  hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02, intermediate_size: 5632, max_position_embeddings: 2048, mlp_bias: false,
  model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 22, num_key_value_heads: 4, rms_norm_eps: 1e-05,
  rope_parameters: { rope_theta: 500000.0, rope_type: 'default' }, tie_word_embeddings: false, dtype: 'float32', transformers_version: '5.0.0', use_cache: true, vocab_size: 32000,
};

describe('parseConfig', () => {
  it('reads the original GPT-2 config (n_ctx, dropout probs, summary_* kept for round trip)', () => {
    const c = parseConfig(GPT2_ORIGINAL) as GPT2Config;
    expect(c).toMatchObject({ model_type: 'gpt2', n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024, n_inner: null, activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5, tie_word_embeddings: true, resid_pdrop: 0.1, eos_token_id: 50256 });
    expect(c.extra.task_specific_params).toEqual(GPT2_ORIGINAL.task_specific_params);
    expect(c.extra.summary_type).toBe('cls_index');
  });

  it('reads a transformers v4 Llama config (rope_theta, torch_dtype, rope_scaling null)', () => {
    const c = parseConfig(LLAMA_V4) as LlamaConfig;
    expect(c).toMatchObject({ model_type: 'llama', hidden_size: 2048, num_key_value_heads: 4, head_dim: 64, rope_theta: 10000, tie_word_embeddings: false, hidden_act: 'silu' });
    expect(c.extra).toEqual({ pretraining_tp: 1, transformers_version: '4.35.0', use_cache: true });
  });

  it('reads a transformers v5 Llama config (rope_parameters, dtype, eos list)', () => {
    const c = parseConfig(LLAMA_V5) as LlamaConfig;
    expect(c.rope_theta).toBe(500000);
    expect(c.eos_token_id).toEqual([2, 7]);
    expect(c.head_dim).toBe(64);
  });

  it('round trip: configToJSON writes what parseConfig reads back, with architectures and float32', () => {
    for (const json of [GPT2_ORIGINAL, LLAMA_V4, LLAMA_V5]) {
      const c = parseConfig(json);
      const out = configToJSON(c);
      expect(out.architectures).toEqual([c.model_type === 'gpt2' ? 'GPT2LMHeadModel' : 'LlamaForCausalLM']);
      expect(out.torch_dtype).toBe('float32');
      expect(parseConfig(JSON.parse(JSON.stringify(out)))).toEqual(c);
    }
    const l = configToJSON(parseConfig(LLAMA_V4));
    expect(l.rope_theta).toBe(10000);                                              // v4 reads this
    expect(l.rope_parameters).toEqual({ rope_type: 'default', rope_theta: 10000 }); // v5 reads this
    expect(configToJSON(PRESETS.nano).n_positions).toBe(256);
  });

  it('fills Hugging Face defaults for absent fields', () => {
    const g = parseConfig({ model_type: 'gpt2', vocab_size: 10, n_embd: 8, n_layer: 1, n_head: 2 }) as GPT2Config;
    expect(g).toMatchObject({ n_positions: 1024, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, tie_word_embeddings: true });
    const l = parseConfig({ model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2 }) as LlamaConfig;
    expect(l).toMatchObject({ num_key_value_heads: 2, head_dim: 4, rope_theta: 10000, rms_norm_eps: 1e-6, tie_word_embeddings: false });
  });

  const refusals: Array<[string, Record<string, unknown>, string]> = [
    ['an unknown model_type', { ...LLAMA_V4, model_type: 'mistral' }, "field 'model_type': \"mistral\" is not supported"],
    ['Llama with gelu', { ...LLAMA_V4, hidden_act: 'gelu' }, "field 'hidden_act'"],
    ['GPT-2 with relu', { ...GPT2_ORIGINAL, activation_function: 'relu' }, "field 'activation_function'"],
    ['llama3 RoPE scaling (v4)', { ...LLAMA_V4, rope_scaling: { rope_type: 'llama3', factor: 8 } }, "field 'rope_scaling.rope_type': \"llama3\""],
    ['linear RoPE scaling (old key type)', { ...LLAMA_V4, rope_scaling: { type: 'linear', factor: 2 } }, "field 'rope_scaling.rope_type': \"linear\""],
    ['yarn RoPE (v5)', { ...LLAMA_V5, rope_parameters: { rope_theta: 1e4, rope_type: 'yarn', factor: 4 } }, "field 'rope_parameters.rope_type'"],
    ['a RoPE factor with default type', { ...LLAMA_V5, rope_parameters: { rope_theta: 1e4, rope_type: 'default', factor: 4 } }, "field 'rope_parameters.factor'"],
    ['rope_theta disagreeing between v4 and v5 keys', { ...LLAMA_V5, rope_theta: 10000 }, "field 'rope_parameters.rope_theta'"],
    ['heads not a multiple of KV heads', { ...LLAMA_V4, num_key_value_heads: 5 }, "field 'num_key_value_heads'"],
    ['n_embd not divisible by n_head', { ...GPT2_ORIGINAL, n_head: 7 }, "field 'n_head'"],
    ['a non-integer size', { ...GPT2_ORIGINAL, n_layer: 2.5 }, "field 'n_layer': must be an integer"],
    ['an unknown dtype', { ...LLAMA_V4, torch_dtype: 'int8' }, "field 'torch_dtype'"],
    ['cross-attention', { ...GPT2_ORIGINAL, add_cross_attention: true }, "field 'add_cross_attention'"],
    ['per-layer attention scaling', { ...GPT2_ORIGINAL, scale_attn_by_inverse_layer_idx: true }, "field 'scale_attn_by_inverse_layer_idx'"],
    ['a sequence-classification head', { ...GPT2_ORIGINAL, architectures: ['GPT2ForSequenceClassification'] }, "field 'architectures'"],
    ['a string tie flag', { ...LLAMA_V4, tie_word_embeddings: 'yes' }, "field 'tie_word_embeddings'"],
  ];
  for (const [what, json, message] of refusals) {
    it(`refuses ${what}, naming the field`, () => {
      expect(() => parseConfig(json, 'ckpt/config.json')).toThrow(`ckpt/config.json: ${message}`);
    });
  }
  it('refuses a non-object', () => {
    expect(() => parseConfig([1], 'c.json')).toThrow('c.json: a config must be a JSON object');
  });
});

describe('presets', () => {
  it('both families at each size, vocabulary as a parameter', () => {
    for (const name of ['nano', 'micro', 'small'] as const) {
      const g = presetConfig(name, { vocabSize: 300 }) as GPT2Config;
      const l = presetConfig(name, { vocabSize: 300, family: 'llama' }) as LlamaConfig;
      expect(g.vocab_size).toBe(300);
      expect(l.hidden_size).toBe(g.n_embd);
      expect(l.num_attention_heads % l.num_key_value_heads).toBe(0);
      // Presets are valid configs: they survive the strict parser unchanged.
      expect(parseConfig(configToJSON(g))).toEqual(g);
      expect(parseConfig(configToJSON(l))).toEqual(l);
    }
    expect(PRESETS.nano.vocab_size).toBe(1024);
  });
});
