/**
 * GPT-2 (transformers GPT2LMHeadModel), top to bottom:
 *   Block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))          (models/transformer.ts Block)
 *   attn:  c_attn -> q, k, v [B, H, T, D], causal softmax(q k^T / sqrt(D)) v, c_proj
 *   mlp:   c_proj(gelu(c_fc(x)))                                 (tanh GELU unless activation_function is 'gelu')
 *   GPT2:  x = wte[ids] + wpe[pos] -> blocks -> ln_f -> lm_head (tied to wte)
 * Conv1D weights are [in, out]; the key names are HF's, so checkpoints load both ways.
 */
import type * as tf from '@tensorflow/tfjs';
import { Linear, Embedding, LayerNorm, GPT2Attention, GPT2MLP } from '../../../src/nn/index.js';
import { Block, transformer } from '../../transformer.js';
import type { GPT2Config } from './config.js';
import type { ParamSpec, Net } from '../../spec.js';

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

/** The parameter name of a checkpoint key: original GPT-2 files lack 'transformer.'; the causal-mask buffers (attn.bias, attn.masked_bias) are not parameters (null). */
export function gpt2CheckpointName(key: string): string | null {
  if (/\.attn\.(masked_)?bias$/.test(key)) return null;
  return key.startsWith('transformer.') || key === 'lm_head.weight' ? key : `transformer.${key}`;
}

/** The network over `params` (named as gpt2ParamSpecs lists them). */
export function buildGPT2(c: GPT2Config, params: Map<string, tf.Variable>): Net {
  const C = c.n_embd, I = c.n_inner ?? 4 * C, eps = c.layer_norm_epsilon;
  const get = (name: string) => params.get(name)!;
  const linears = new Map<string, Linear>();
  const linear = (name: string, inF: number, outF: number) => {
    const l = new Linear({ name, inFeatures: inF, outFeatures: outF, layout: 'in_out', weight: get(`${name}.weight`), bias: get(`${name}.bias`) });
    linears.set(name, l);
    return l;
  };
  const wte = new Embedding('transformer.wte', c.vocab_size, C, get('transformer.wte.weight'));    // [V, C]
  const wpe = new Embedding('transformer.wpe', c.n_positions, C, get('transformer.wpe.weight'));   // [n_positions, C]
  const approximate = c.activation_function === 'gelu' ? 'erf' : 'tanh';
  const blocks: Block[] = [];
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}`;
    blocks.push(new Block(p,
      new LayerNorm(`${p}.ln_1`, get(`${p}.ln_1.weight`), get(`${p}.ln_1.bias`), eps),
      new GPT2Attention(linear(`${p}.attn.c_attn`, C, 3 * C), linear(`${p}.attn.c_proj`, C, C), c.n_head),
      new LayerNorm(`${p}.ln_2`, get(`${p}.ln_2.weight`), get(`${p}.ln_2.bias`), eps),
      new GPT2MLP(linear(`${p}.mlp.c_fc`, C, I), linear(`${p}.mlp.c_proj`, I, C), approximate)));
  }
  const lnF = new LayerNorm('transformer.ln_f', get('transformer.ln_f.weight'), get('transformer.ln_f.bias'), eps);
  // Tied: lm_head reads wte's variable ([V, C] is nn.Linear's [out, in]).
  const lmHead = new Linear({ name: 'lm_head', inFeatures: C, outFeatures: c.vocab_size, layout: 'out_in',
    weight: c.tie_word_embeddings ? wte.weight : get('lm_head.weight') });
  linears.set('lm_head', lmHead);

  return transformer({
    embed: (ids, positionIds) => ({ tok: wte.apply(ids) as tf.Tensor3D, pos: wpe.apply(positionIds) as tf.Tensor3D }),   // x = wte[ids] + wpe[pos]
    blocks, normF: lnF, lmHead, linears, params,
  });
}
