/**
 * Llama (transformers LlamaForCausalLM), top to bottom:
 *   Block: x = x + attn(input_layernorm(x)); x = x + mlp(post_attention_layernorm(x))
 *   attn:  q, k, v projections, RoPE (rotate-half) on q and k, grouped-query attention, o_proj
 *   mlp:   down_proj(silu(gate_proj(x)) * up_proj(x))
 *   Llama: x = embed_tokens[ids] -> blocks -> norm -> lm_head (tied when tie_word_embeddings)
 * nn.Linear weights are [out, in].
 */
import * as tf from '@tensorflow/tfjs';
import { Linear, Embedding, RMSNorm, LlamaAttention, LlamaMLP, ropeTables, checkpoint, moduleVariables, type LayerKV } from '../src/nn/index.js';
import type { LlamaConfig } from './config.js';
import type { ParamSpec, Net, NetContext } from './spec.js';

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

/** Buffers older Llama checkpoints carry (rotary inverse frequencies), ignored on load: they are recomputed from rope_theta. */
export function isLlamaBuffer(key: string): boolean {
  return /\.rotary_emb\.inv_freq$/.test(key);
}

interface Block { norm1: RMSNorm; attn: LlamaAttention; norm2: RMSNorm; mlp: LlamaMLP }

export function buildLlama(c: LlamaConfig, params: Map<string, tf.Variable>): Net {
  const C = c.hidden_size, I = c.intermediate_size, D = c.head_dim, eps = c.rms_norm_eps;
  const q = c.num_attention_heads * D, kv = c.num_key_value_heads * D;
  const get = (name: string) => params.get(name)!;
  const linears = new Map<string, Linear>();
  const linear = (name: string, inF: number, outF: number, bias: boolean) => {
    const l = new Linear({ name, inFeatures: inF, outFeatures: outF, layout: 'out_in', weight: get(`${name}.weight`), bias: bias ? get(`${name}.bias`) : undefined });
    linears.set(name, l);
    return l;
  };
  const embed = new Embedding('model.embed_tokens', c.vocab_size, C, get('model.embed_tokens.weight'));
  const blocks: Block[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const ab = c.attention_bias, mb = c.mlp_bias;
    blocks.push({
      norm1: new RMSNorm(`${p}.input_layernorm`, get(`${p}.input_layernorm.weight`), eps),
      attn: new LlamaAttention(
        linear(`${p}.self_attn.q_proj`, C, q, ab), linear(`${p}.self_attn.k_proj`, C, kv, ab),
        linear(`${p}.self_attn.v_proj`, C, kv, ab), linear(`${p}.self_attn.o_proj`, q, C, ab),
        c.num_attention_heads, c.num_key_value_heads, D),
      norm2: new RMSNorm(`${p}.post_attention_layernorm`, get(`${p}.post_attention_layernorm.weight`), eps),
      mlp: new LlamaMLP(linear(`${p}.mlp.gate_proj`, C, I, mb), linear(`${p}.mlp.up_proj`, C, I, mb), linear(`${p}.mlp.down_proj`, I, C, mb)),
    });
  }
  const norm = new RMSNorm('model.norm', get('model.norm.weight'), eps);
  const lmHead = new Linear({ name: 'lm_head', inFeatures: C, outFeatures: c.vocab_size, layout: 'out_in',
    weight: c.tie_word_embeddings ? embed.weight : get('lm_head.weight') });
  linears.set('lm_head', lmHead);

  return {
    linears,
    lmHead,
    forward(inputIds: tf.Tensor2D, ctx: NetContext) {
      let x = embed.apply(inputIds) as tf.Tensor3D;                        // [B, T, C]
      if (ctx.onTokenEmbeddings) x = ctx.onTokenEmbeddings(x);
      const rope = ropeTables(ctx.positionIds, D, c.rope_theta);           // cos, sin [B, 1, T, D], shared by all layers
      const kvs: LayerKV[] = [];
      /** Block i on x [B, T, C] with h = input_layernorm(x): x + attn, then + mlp; `next` (when given) is fused with the last add. */
      const block = (i: number, x: tf.Tensor, h: tf.Tensor, next?: RMSNorm, on: { mask: tf.Tensor4D; segmentIds?: tf.Tensor2D | null; rope: typeof rope } = { mask: ctx.mask, segmentIds: ctx.selfSegments?.segmentIds, rope }) => {
        const b = blocks[i];
        const selfSegments = ctx.selfSegments && { segmentIds: on.segmentIds ?? null };
        const { out, kv } = b.attn.apply(h as tf.Tensor3D, { ...ctx, mask: on.mask, selfSegments, rope: on.rope, past: ctx.pasts?.[i] });
        const mid = b.norm2.applyAdd(x, out, ctx);                              // x = x + attn; h = post_attention_layernorm(x)
        const mlp = b.mlp.apply(mid.y, ctx);
        return { kv, ...(next ? next.applyAdd(mid.sum, mlp, ctx) : { sum: tf.add(mid.sum, mlp), y: undefined }) };
      };
      if (ctx.gradientCheckpointing) {
        // Only each block's input is kept; its forward runs again in the backward pass.
        const seg = ctx.selfSegments?.segmentIds;
        const context = [ctx.mask, rope.cos, rope.sin, ...(seg ? [seg] : [])];
        blocks.forEach((b, i) => {
          x = checkpoint((xi, [mask, cos, sin, segmentIds]) => block(i, xi, b.norm1.apply(xi, ctx), undefined,
            { mask: mask as tf.Tensor4D, rope: { cos: cos as tf.Tensor4D, sin: sin as tf.Tensor4D }, segmentIds: segmentIds as tf.Tensor2D | undefined }).sum,
          x, context, moduleVariables(`model.layers.${i}`, params, linears)) as tf.Tensor3D;
        });
        return { hidden: norm.apply(x, ctx) as tf.Tensor3D, kvs };
      }
      // Every residual add is fused with the norm that reads its sum.
      let h = blocks.length ? blocks[0].norm1.apply(x, ctx) : norm.apply(x, ctx);
      blocks.forEach((_, i) => {
        const r = block(i, x, h, i + 1 < blocks.length ? blocks[i + 1].norm1 : norm);
        x = r.sum as tf.Tensor3D;
        h = r.y!;
        kvs.push(r.kv);
      });
      return { hidden: h as tf.Tensor3D, kvs };                            // [B, T, C]
    },
  };
}
