/**
 * GPT-2 (transformers GPT2LMHeadModel), top to bottom:
 *   Block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))
 *   GPT2:  x = wte[ids] + wpe[pos] -> blocks -> ln_f -> lm_head (tied to wte)
 * Conv1D weights are [in, out]; the key names are HF's, so checkpoints load both ways.
 */
import * as tf from '@tensorflow/tfjs';
import { Linear, Embedding, LayerNorm, GPT2Attention, GPT2MLP, checkpoint, moduleVariables, type LayerKV } from '../src/nn/index.js';
import type { GPT2Config } from './config.js';
import type { ParamSpec, Net, NetContext } from './spec.js';

/** Every parameter of GPT2LMHeadModel with its shape and HF init (c_proj scaled by 1/sqrt(2 * n_layer)). */
export function gpt2ParamSpecs(c: GPT2Config): ParamSpec[] {
  const C = c.n_embd, I = c.n_inner ?? 4 * C, std = c.initializer_range;
  const normal = { kind: 'normal', std } as const;
  const proj = { kind: 'normal', std: std / Math.sqrt(2 * c.n_layer) } as const;
  const zeros = { kind: 'zeros' } as const, ones = { kind: 'ones' } as const;
  const specs: ParamSpec[] = [
    { name: 'transformer.wte.weight', shape: [c.vocab_size, C], init: normal },
    { name: 'transformer.wpe.weight', shape: [c.n_positions, C], init: normal },
  ];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}`;
    specs.push(
      { name: `${p}.ln_1.weight`, shape: [C], init: ones }, { name: `${p}.ln_1.bias`, shape: [C], init: zeros },
      { name: `${p}.attn.c_attn.weight`, shape: [C, 3 * C], init: normal }, { name: `${p}.attn.c_attn.bias`, shape: [3 * C], init: zeros },
      { name: `${p}.attn.c_proj.weight`, shape: [C, C], init: proj }, { name: `${p}.attn.c_proj.bias`, shape: [C], init: zeros },
      { name: `${p}.ln_2.weight`, shape: [C], init: ones }, { name: `${p}.ln_2.bias`, shape: [C], init: zeros },
      { name: `${p}.mlp.c_fc.weight`, shape: [C, I], init: normal }, { name: `${p}.mlp.c_fc.bias`, shape: [I], init: zeros },
      { name: `${p}.mlp.c_proj.weight`, shape: [I, C], init: proj }, { name: `${p}.mlp.c_proj.bias`, shape: [C], init: zeros },
    );
  }
  specs.push({ name: 'transformer.ln_f.weight', shape: [C], init: ones }, { name: 'transformer.ln_f.bias', shape: [C], init: zeros });
  if (!c.tie_word_embeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocab_size, C], init: normal });
  return specs;
}

/** Keys in GPT-2 checkpoints that are buffers, not parameters (the causal mask), ignored on load. */
export function isGPT2Buffer(key: string): boolean {
  return /\.attn\.(masked_)?bias$/.test(key);
}

interface Block { ln1: LayerNorm; attn: GPT2Attention; ln2: LayerNorm; mlp: GPT2MLP }

export function buildGPT2(c: GPT2Config, params: Map<string, tf.Variable>): Net {
  const C = c.n_embd, I = c.n_inner ?? 4 * C, eps = c.layer_norm_epsilon;
  const get = (name: string) => params.get(name)!;
  const linears = new Map<string, Linear>();
  const linear = (name: string, inF: number, outF: number) => {
    const l = new Linear({ name, inFeatures: inF, outFeatures: outF, layout: 'in_out', weight: get(`${name}.weight`), bias: get(`${name}.bias`) });
    linears.set(name, l);
    return l;
  };
  const wte = new Embedding('transformer.wte', c.vocab_size, C, get('transformer.wte.weight'));
  const wpe = new Embedding('transformer.wpe', c.n_positions, C, get('transformer.wpe.weight'));
  const approximate = c.activation_function === 'gelu' ? 'erf' : 'tanh';
  const blocks: Block[] = [];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}`;
    blocks.push({
      ln1: new LayerNorm(`${p}.ln_1`, get(`${p}.ln_1.weight`), get(`${p}.ln_1.bias`), eps),
      attn: new GPT2Attention(linear(`${p}.attn.c_attn`, C, 3 * C), linear(`${p}.attn.c_proj`, C, C), c.n_head),
      ln2: new LayerNorm(`${p}.ln_2`, get(`${p}.ln_2.weight`), get(`${p}.ln_2.bias`), eps),
      mlp: new GPT2MLP(linear(`${p}.mlp.c_fc`, C, I), linear(`${p}.mlp.c_proj`, I, C), approximate),
    });
  }
  const lnF = new LayerNorm('transformer.ln_f', get('transformer.ln_f.weight'), get('transformer.ln_f.bias'), eps);
  // Tied: lm_head reads wte's variable ([V, C] is nn.Linear's [out, in]).
  const lmHead = new Linear({ name: 'lm_head', inFeatures: C, outFeatures: c.vocab_size, layout: 'out_in',
    weight: c.tie_word_embeddings ? wte.weight : get('lm_head.weight') });
  linears.set('lm_head', lmHead);

  return {
    linears,
    lmHead,
    forward(inputIds: tf.Tensor2D, ctx: NetContext) {
      let tok = wte.apply(inputIds) as tf.Tensor3D;                        // [B, T, C]
      if (ctx.onTokenEmbeddings) tok = ctx.onTokenEmbeddings(tok);
      const kvs: LayerKV[] = [];
      /** Block i on x [B, T, C] with h = ln_1(x): x + attn, then + mlp; `next` (when given) is fused with the last add. */
      const block = (i: number, x: tf.Tensor, h: tf.Tensor, next?: LayerNorm, on: { mask: tf.Tensor4D; segmentIds?: tf.Tensor2D | null } = { mask: ctx.mask, segmentIds: ctx.selfSegments?.segmentIds }) => {
        const b = blocks[i];
        const selfSegments = ctx.selfSegments && { segmentIds: on.segmentIds ?? null };
        const { out, kv } = b.attn.apply(h as tf.Tensor3D, { ...ctx, mask: on.mask, selfSegments, past: ctx.pasts?.[i] });
        const mid = b.ln2.applyAdd(x, out, ctx);                                // x = x + attn; h = ln_2(x)
        const mlp = b.mlp.apply(mid.y, ctx);
        return { kv, ...(next ? next.applyAdd(mid.sum, mlp, ctx) : { sum: tf.add(mid.sum, mlp), y: undefined }) };
      };
      if (ctx.gradientCheckpointing) {
        // Only each block's input is kept; its forward runs again in the backward pass.
        let x: tf.Tensor = tf.add(tok, wpe.apply(ctx.positionIds));
        const seg = ctx.selfSegments?.segmentIds;
        const context = [ctx.mask, ...(seg ? [seg] : [])];
        blocks.forEach((b, i) => {
          x = checkpoint((xi, [mask, segmentIds]) => block(i, xi, b.ln1.apply(xi, ctx), undefined, { mask: mask as tf.Tensor4D, segmentIds: segmentIds as tf.Tensor2D | undefined }).sum,
            x, context, moduleVariables(`transformer.h.${i}`, params, linears));
        });
        return { hidden: lnF.apply(x, ctx) as tf.Tensor3D, kvs };
      }
      // x = tok + pos; every residual add is fused with the norm that reads its sum.
      let { sum: x, y: h } = blocks.length ? blocks[0].ln1.applyAdd(tok, wpe.apply(ctx.positionIds), ctx) : lnF.applyAdd(tok, wpe.apply(ctx.positionIds), ctx);   // [B, T, C]
      blocks.forEach((_, i) => {
        const r = block(i, x, h, i + 1 < blocks.length ? blocks[i + 1].ln1 : lnF);
        x = r.sum;
        h = r.y!;
        kvs.push(r.kv);
      });
      return { hidden: h as tf.Tensor3D, kvs };                            // [B, T, C]
    },
  };
}
