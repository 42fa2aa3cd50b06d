/**
 * Llama (transformers LlamaForCausalLM), top to bottom:
 *   Block: x = x + attn(input_layernorm(x)); x = x + mlp(post_attention_layernorm(x))   (models/transformer.ts Block)
 *   attn:  q, k, v projections, RoPE (rotate-half) on q and k, grouped-query attention, o_proj
 *   mlp:   down_proj(silu(gate_proj(x)) * up_proj(x))
 *   Llama: x = embed_tokens[ids] -> blocks -> norm -> lm_head (tied when tie_word_embeddings)
 * nn.Linear weights are [out, in].
 */
import type * as tf from '@tensorflow/tfjs';
import { Linear, Embedding, RMSNorm, LlamaAttention, LlamaMLP, ropeTables } from '../../../src/nn/index.js';
import { Block, transformer } from '../../transformer.js';
import type { LlamaConfig } from './config.js';
import type { ParamSpec, Net } from '../../spec.js';

/** Every parameter of LlamaForCausalLM with its shape and HF init. */
export function llamaParamSpecs(c: LlamaConfig): ParamSpec[] {
  const C = c.hidden_size, I = c.intermediate_size, D = c.head_dim;
  const q = c.num_attention_heads * D, kv = c.num_key_value_heads * D;
  const normal = { kind: 'normal', std: c.initializer_range } as const;
  const zeros = { kind: 'zeros' } as const, ones = { kind: 'ones' } as const;
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, C], init: normal }];
  const lin = (name: string, out: number, inF: number, bias: boolean) => {
    specs.push({ name: `${name}.weight`, shape: [out, inF], init: normal });
    if (bias) specs.push({ name: `${name}.bias`, shape: [out], init: zeros });
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [C], init: ones });
    lin(`${p}.self_attn.q_proj`, q, C, c.attention_bias);
    lin(`${p}.self_attn.k_proj`, kv, C, c.attention_bias);
    lin(`${p}.self_attn.v_proj`, kv, C, c.attention_bias);
    lin(`${p}.self_attn.o_proj`, C, q, c.attention_bias);
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [C], init: ones });
    lin(`${p}.mlp.gate_proj`, I, C, c.mlp_bias);
    lin(`${p}.mlp.up_proj`, I, C, c.mlp_bias);
    lin(`${p}.mlp.down_proj`, C, I, c.mlp_bias);
  }
  specs.push({ name: 'model.norm.weight', shape: [C], init: ones });
  if (!c.tie_word_embeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocab_size, C], init: normal });
  return specs;
}

/** The parameter name of a checkpoint key; null for the rotary inverse frequencies older checkpoints carry (recomputed from rope_theta). */
export function llamaCheckpointName(key: string): string | null {
  return /\.rotary_emb\.inv_freq$/.test(key) ? null : key;
}

/** The network over `params` (named as llamaParamSpecs lists them). */
export function buildLlama(c: LlamaConfig, params: Map<string, tf.Variable>): Net {
  const C = c.hidden_size, I = c.intermediate_size, D = c.head_dim, eps = c.rms_norm_eps;
  const q = c.num_attention_heads * D, kv = c.num_key_value_heads * D;
  const ab = c.attention_bias, mb = c.mlp_bias;
  const get = (name: string) => params.get(name)!;
  const linears = new Map<string, Linear>();
  const linear = (name: string, inF: number, outF: number, bias: boolean) => {
    const l = new Linear({ name, inFeatures: inF, outFeatures: outF, layout: 'out_in', weight: get(`${name}.weight`), bias: bias ? get(`${name}.bias`) : undefined });
    linears.set(name, l);
    return l;
  };
  const embed = new Embedding('model.embed_tokens', c.vocab_size, C, get('model.embed_tokens.weight'));   // [V, C]
  const blocks: Block[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    blocks.push(new Block(p,
      new RMSNorm(`${p}.input_layernorm`, get(`${p}.input_layernorm.weight`), eps),
      new LlamaAttention(
        linear(`${p}.self_attn.q_proj`, C, q, ab), linear(`${p}.self_attn.k_proj`, C, kv, ab),
        linear(`${p}.self_attn.v_proj`, C, kv, ab), linear(`${p}.self_attn.o_proj`, q, C, ab),
        c.num_attention_heads, c.num_key_value_heads, D),
      new RMSNorm(`${p}.post_attention_layernorm`, get(`${p}.post_attention_layernorm.weight`), eps),
      new LlamaMLP(linear(`${p}.mlp.gate_proj`, C, I, mb), linear(`${p}.mlp.up_proj`, C, I, mb), linear(`${p}.mlp.down_proj`, I, C, mb))));
  }
  const norm = new RMSNorm('model.norm', get('model.norm.weight'), eps);
  const lmHead = new Linear({ name: 'lm_head', inFeatures: C, outFeatures: c.vocab_size, layout: 'out_in',
    weight: c.tie_word_embeddings ? embed.weight : get('lm_head.weight') });
  linears.set('lm_head', lmHead);

  return transformer({
    embed: (ids) => ({ tok: embed.apply(ids) as tf.Tensor3D }),           // x = embed_tokens[ids]; positions enter through RoPE
    rope: (positionIds) => ropeTables(positionIds, D, c.rope_theta),      // cos, sin [B, 1, T, D]
    blocks, normF: norm, lmHead, linears, params,
  });
}
