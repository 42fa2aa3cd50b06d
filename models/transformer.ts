/**
 * The pre-norm decoder both families are built from (GPT-2 and Llama differ only in their parts:
 * norms, attention, MLP, embeddings), read as nanoGPT writes it:
 *
 *   Block:        x = x + attn(norm_1(x))             x [B, T, C]
 *                 x = x + mlp(norm_2(x))
 *   Transformer:  x = embed(ids)  (+ positions)  -> blocks -> norm_f  -> hidden [B, T, C]
 *
 * `Block.forward` is that plain forward. The model runs `Block.forwardFolded`, the same math with
 * each residual add folded into the norm that reads its sum (ops.addLayerNorm / addRmsNorm: one
 * kernel on the fused engine instead of two); test/model/transformer.test.ts checks the two
 * against each other. `ForwardOptions.plainBlocks` runs the plain one.
 */
import * as tf from '@tensorflow/tfjs';
import { checkpoint, moduleVariables, type Linear, type LayerKV, type LayerContext, type AttentionContext, type Rope } from '../src/nn/index.js';
import type { Net, NetContext } from './spec.js';

/** LayerNorm or RMSNorm (src/nn/norm.ts). */
export interface Norm {
  apply(x: tf.Tensor, run: LayerContext): tf.Tensor;
  /** sum = x + residual and y = norm(sum), one fused op where the engine has one. */
  applyAdd(x: tf.Tensor, residual: tf.Tensor, run: LayerContext): { sum: tf.Tensor; y: tf.Tensor };
}

/** Causal self-attention: x [B, T, C] -> out [B, T, C] and this layer's keys/values (past included). */
export interface Attention {
  apply(x: tf.Tensor3D, ctx: AttentionContext): { out: tf.Tensor3D; kv: LayerKV };
}

/** x [B, T, C] -> [B, T, C]. */
export interface MLP {
  apply(x: tf.Tensor, run: LayerContext): tf.Tensor;
}

export class Block {
  constructor(
    readonly name: string,      // HF module path: 'transformer.h.0', 'model.layers.0'
    readonly norm1: Norm,       // ln_1 / input_layernorm
    readonly attn: Attention,
    readonly norm2: Norm,       // ln_2 / post_attention_layernorm
    readonly mlp: MLP,
  ) {}

  /** The plain forward: x [B, T, C] -> x [B, T, C], every residual add visible. */
  forward(x: tf.Tensor3D, ctx: AttentionContext): { x: tf.Tensor3D; kv: LayerKV } {
    const { out, kv } = this.attn.apply(this.norm1.apply(x, ctx) as tf.Tensor3D, ctx);   // [B, T, C]
    x = tf.add(x, out);                                                                  // x = x + attn(norm_1(x))
    x = tf.add(x, this.mlp.apply(this.norm2.apply(x, ctx), ctx));                        // x = x + mlp(norm_2(x))
    return { x, kv };
  }

  /**
   * forward with the residual adds folded into the norms: takes h = norm_1(x) (already computed,
   * by the previous block's fold), and with `next` (the following block's norm_1, or norm_f)
   * returns h = next(x) as well, so the last add is folded too.
   */
  forwardFolded(x: tf.Tensor3D, h: tf.Tensor3D, ctx: AttentionContext, next?: Norm): { x: tf.Tensor3D; h?: tf.Tensor3D; kv: LayerKV } {
    const { out, kv } = this.attn.apply(h, ctx);                          // [B, T, C]
    const mid = this.norm2.applyAdd(x, out, ctx);                         // x = x + attn; h = norm_2(x)
    const mlp = this.mlp.apply(mid.y, ctx);                               // [B, T, C]
    if (!next) return { x: tf.add(mid.sum, mlp) as tf.Tensor3D, kv };     // x = x + mlp
    const { sum, y } = next.applyAdd(mid.sum, mlp, ctx);                  // x = x + mlp; h = next(x)
    return { x: sum as tf.Tensor3D, h: y as tf.Tensor3D, kv };
  }
}

/** The parts a family assembles (models/families/<name>/<name>.ts). */
export interface TransformerParts {
  /** ids int32 [B, T] -> token embeddings [B, T, C], and position embeddings [B, T, C] for a learned table (x = tok + pos). */
  embed(inputIds: tf.Tensor2D, positionIds: tf.Tensor2D): { tok: tf.Tensor3D; pos?: tf.Tensor3D };
  /** RoPE tables [B, 1, T, D] every layer's attention reads, from the positions (rotary families only). */
  rope?(positionIds: tf.Tensor2D): Rope;
  blocks: Block[];
  normF: Norm;                             // ln_f / model.norm
  lmHead: Linear;
  linears: Map<string, Linear>;
  params: Map<string, tf.Variable>;
}

/** The network of a family's parts: embed -> blocks -> norm_f (lm_head is applied by CausalLM). */
export function transformer(p: TransformerParts): Net {
  const { blocks, normF } = p;
  return {
    linears: p.linears,
    lmHead: p.lmHead,
    forward(inputIds: tf.Tensor2D, ctx: NetContext) {
      let { tok, pos } = p.embed(inputIds, ctx.positionIds);                // [B, T, C]
      if (ctx.onTokenEmbeddings) tok = ctx.onTokenEmbeddings(tok);
      const rope = p.rope?.(ctx.positionIds);                               // cos, sin [B, 1, T, D], shared by all layers
      // What block i's attention reads; mask, segment ids and RoPE tables are given explicitly
      // so a checkpointed block reads its saved copies in the backward pass.
      const layer = (i: number, mask: tf.Tensor4D, segmentIds: tf.Tensor2D | null | undefined, r: Rope | undefined): AttentionContext => ({
        ops: ctx.ops, training: ctx.training, seed: ctx.seed, mask, rope: r, past: ctx.pasts?.[i],
        selfSegments: ctx.selfSegments && { segmentIds: segmentIds ?? null },
      });
      const seg = ctx.selfSegments?.segmentIds;
      const kvs: LayerKV[] = [];

      if (ctx.plainBlocks || ctx.gradientCheckpointing) {
        let x = (pos ? tf.add(tok, pos) : tok) as tf.Tensor3D;             // x = tok + pos
        if (ctx.gradientCheckpointing) {
          // Only each block's input is kept; its forward runs again in the backward pass.
          const context = [ctx.mask, ...(rope ? [rope.cos, rope.sin] : []), ...(seg ? [seg] : [])];
          const unpack = (t: tf.Tensor[]) => ({ mask: t[0] as tf.Tensor4D, rope: rope && { cos: t[1] as tf.Tensor4D, sin: t[2] as tf.Tensor4D }, seg: (seg ? t[t.length - 1] : undefined) as tf.Tensor2D | undefined });
          blocks.forEach((b, i) => {
            x = checkpoint((xi, saved) => {
              const s = unpack(saved);
              const run = layer(i, s.mask, s.seg, s.rope);
              return ctx.plainBlocks ? b.forward(xi as tf.Tensor3D, run).x : b.forwardFolded(xi as tf.Tensor3D, b.norm1.apply(xi, run) as tf.Tensor3D, run).x;
            }, x, context, moduleVariables(b.name, p.params, p.linears)) as tf.Tensor3D;
          });
        } else {
          blocks.forEach((b, i) => {
            const r = b.forward(x, layer(i, ctx.mask, seg, rope));
            x = r.x;
            kvs.push(r.kv);
          });
        }
        return { hidden: normF.apply(x, ctx) as tf.Tensor3D, kvs };        // [B, T, C]
      }

      // Folded: every residual add goes into the norm that reads its sum.
      const first = blocks.length ? blocks[0].norm1 : normF;
      let { sum: x, y: h } = pos ? first.applyAdd(tok, pos, ctx) : { sum: tok as tf.Tensor, y: first.apply(tok, ctx) };
      blocks.forEach((b, i) => {
        const r = b.forwardFolded(x as tf.Tensor3D, h as tf.Tensor3D, layer(i, ctx.mask, seg, rope), i + 1 < blocks.length ? blocks[i + 1].norm1 : normF);
        x = r.x;
        h = r.h!;
        kvs.push(r.kv);
      });
      return { hidden: h as tf.Tensor3D, kvs };                             // [B, T, C]
    },
  };
}
