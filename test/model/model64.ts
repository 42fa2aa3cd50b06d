/**
 * Whole-model float64 references of GPT2LMHeadModel and LlamaForCausalLM built from ref64.ts,
 * reading weights by their Hugging Face names. Written from the transformers modeling code.
 */
import type { GPT2Config, LlamaConfig, ModelConfig } from '../../models/config.js';
import * as R from './ref64.js';

type F64 = Float64Array;
export type Weights = Map<string, F64>;

export interface Inputs { ids: number[]; B: number; T: number; seg?: number[]; pos?: number[] }

function defaultPos(B: number, T: number): number[] {
  return Array.from({ length: B * T }, (_, i) => i % T);
}

function add(a: F64, b: F64): F64 {
  return a.map((v, i) => v + b[i]);
}

function gpt2(c: GPT2Config, W: Weights, { ids, B, T, seg, pos }: Inputs): F64 {
  const C = c.n_embd, H = c.n_head, D = C / H, I = c.n_inner ?? 4 * C, N = B * T, eps = c.layer_norm_epsilon;
  const w = (k: string) => { const v = W.get(k); if (!v) throw new Error(`reference: no weight ${k}`); return v; };
  const p = pos ?? defaultPos(B, T);
  let x = add(R.embedding64(w('transformer.wte.weight'), C, ids), R.embedding64(w('transformer.wpe.weight'), C, p));
  for (let l = 0; l < c.n_layer; l++) {
    const h = `transformer.h.${l}`;
    const a = R.layerNorm64(x, N, C, w(`${h}.ln_1.weight`), w(`${h}.ln_1.bias`), eps);
    const qkv = R.linear64(a, N, C, 3 * C, w(`${h}.attn.c_attn.weight`), 'in_out', w(`${h}.attn.c_attn.bias`));
    const part = (k: number) => R.splitHeads64(Float64Array.from({ length: N * C }, (_, i) => qkv[Math.floor(i / C) * 3 * C + k * C + (i % C)]), B, T, H, D);
    const y = R.attention64(part(0), part(1), part(2), B, H, H, T, T, D, seg, seg);
    x = add(x, R.linear64(R.mergeHeads64(y, B, T, H, D), N, C, C, w(`${h}.attn.c_proj.weight`), 'in_out', w(`${h}.attn.c_proj.bias`)));
    const m = R.layerNorm64(x, N, C, w(`${h}.ln_2.weight`), w(`${h}.ln_2.bias`), eps);
    const f = R.gelu64(R.linear64(m, N, C, I, w(`${h}.mlp.c_fc.weight`), 'in_out', w(`${h}.mlp.c_fc.bias`)), c.activation_function === 'gelu' ? 'erf' : 'tanh');
    x = add(x, R.linear64(f, N, I, C, w(`${h}.mlp.c_proj.weight`), 'in_out', w(`${h}.mlp.c_proj.bias`)));
  }
  x = R.layerNorm64(x, N, C, w('transformer.ln_f.weight'), w('transformer.ln_f.bias'), eps);
  const head = c.tie_word_embeddings ? w('transformer.wte.weight') : w('lm_head.weight');
  return R.linear64(x, N, C, c.vocab_size, head, 'out_in');
}

function llama(c: LlamaConfig, W: Weights, { ids, B, T, seg, pos }: Inputs): F64 {
  const C = c.hidden_size, H = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim, I = c.intermediate_size, N = B * T, eps = c.rms_norm_eps;
  const w = (k: string) => { const v = W.get(k); if (!v) throw new Error(`reference: no weight ${k}`); return v; };
  const b = (k: string, on: boolean) => (on ? w(k) : undefined);
  const p = pos ?? defaultPos(B, T);
  let x = R.embedding64(w('model.embed_tokens.weight'), C, ids);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const h = `model.layers.${l}`, ab = c.attention_bias, mb = c.mlp_bias;
    const a = R.rmsNorm64(x, N, C, w(`${h}.input_layernorm.weight`), eps);
    const proj = (n: string, out: number) => R.linear64(a, N, C, out, w(`${h}.self_attn.${n}.weight`), 'out_in', b(`${h}.self_attn.${n}.bias`, ab));
    const q = R.rope64(R.splitHeads64(proj('q_proj', H * D), B, T, H, D), B, H, T, D, p, c.rope_theta);
    const k = R.rope64(R.splitHeads64(proj('k_proj', Hkv * D), B, T, Hkv, D), B, Hkv, T, D, p, c.rope_theta);
    const v = R.splitHeads64(proj('v_proj', Hkv * D), B, T, Hkv, D);
    const y = R.mergeHeads64(R.attention64(q, k, v, B, H, Hkv, T, T, D, seg, seg), B, T, H, D);
    x = add(x, R.linear64(y, N, H * D, C, w(`${h}.self_attn.o_proj.weight`), 'out_in', b(`${h}.self_attn.o_proj.bias`, ab)));
    const m = R.rmsNorm64(x, N, C, w(`${h}.post_attention_layernorm.weight`), eps);
    const g = R.linear64(m, N, C, I, w(`${h}.mlp.gate_proj.weight`), 'out_in', b(`${h}.mlp.gate_proj.bias`, mb));
    const u = R.linear64(m, N, C, I, w(`${h}.mlp.up_proj.weight`), 'out_in', b(`${h}.mlp.up_proj.bias`, mb));
    x = add(x, R.linear64(g.map((v2, i) => R.silu64(v2) * u[i]), N, I, C, w(`${h}.mlp.down_proj.weight`), 'out_in', b(`${h}.mlp.down_proj.bias`, mb)));
  }
  x = R.rmsNorm64(x, N, C, w('model.norm.weight'), eps);
  const head = c.tie_word_embeddings ? w('model.embed_tokens.weight') : w('lm_head.weight');
  return R.linear64(x, N, C, c.vocab_size, head, 'out_in');
}

/** logits [B, T, V] in float64. */
export function forward64(config: ModelConfig, W: Weights, inputs: Inputs): F64 {
  return config.model_type === 'gpt2' ? gpt2(config, W, inputs) : llama(config, W, inputs);
}
