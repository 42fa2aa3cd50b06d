/** The Llama family: everything WebTune knows about it (models/family.ts). */
import type { FamilyDescriptor } from '../../family.js';
import { parseLlama, type LlamaConfig } from './config.js';
import { llamaParamSpecs, buildLlama, llamaCheckpointName } from './llama.js';

export * from './config.js';
export * from './llama.js';

export const llamaFamily: FamilyDescriptor<LlamaConfig> = {
  modelType: 'llama',
  label: 'Llama',
  architecture: 'LlamaForCausalLM',
  baseArchitecture: 'LlamaModel',
  parseConfig: parseLlama,
  // Both spellings, so transformers v4 (rope_theta) and v5 (rope_parameters) read the same base.
  extraJSON: (c) => ({ rope_parameters: { rope_type: 'default', rope_theta: c.rope_theta } }),
  // Half as many K/V heads as query heads (grouped-query attention).
  preset: (s, vocab) => ({
    model_type: 'llama', vocab_size: vocab, hidden_size: s.hidden, intermediate_size: s.llamaInner, num_hidden_layers: s.layers,
    num_attention_heads: s.heads, num_key_value_heads: s.heads % 2 === 0 ? s.heads / 2 : s.heads, head_dim: s.hidden / s.heads,
    max_position_embeddings: s.positions, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true,
    attention_bias: false, mlp_bias: false, hidden_act: 'silu', initializer_range: 0.02, bos_token_id: 0, eos_token_id: 0,
    attention_dropout: 0, extra: {},
  }),
  dims: (c) => ({
    vocab: c.vocab_size, hidden: c.hidden_size, layers: c.num_hidden_layers, heads: c.num_attention_heads,
    kvHeads: c.num_key_value_heads, headDim: c.head_dim, inner: c.intermediate_size, maxPositions: c.max_position_embeddings,
  }),
  learnedPositions: false,
  paramSpecs: llamaParamSpecs,
  build: buildLlama,
  checkpointName: llamaCheckpointName,
  defaultLoraTargets: ['q_proj', 'v_proj'],
  attentionProjections: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  noDecay: ['norm', 'embed_tokens'],
  memory: {
    layerPrefix: 'model.layers',
    layerLinears: ({ hidden: C, inner: I, heads, kvHeads, headDim }) => {
      const q = heads * headDim, kv = kvHeads * headDim;
      return [
        { path: 'self_attn.q_proj', inF: C, outF: q },
        { path: 'self_attn.k_proj', inF: C, outF: kv },
        { path: 'self_attn.v_proj', inF: C, outF: kv },
        { path: 'self_attn.o_proj', inF: q, outF: C },
        { path: 'mlp.gate_proj', inF: C, outF: I },
        { path: 'mlp.up_proj', inF: C, outF: I },
        { path: 'mlp.down_proj', inF: I, outF: C },
      ];
    },
    fusedPerToken: ({ hidden: C, inner: I, heads, kvHeads, headDim }) => 6 * C + 2 * (heads * headDim) + 3 * (kvHeads * headDim) + 3 * I,
    fusedOverhead: 3.1,
    stockPerToken: ({ hidden: C, inner: I, heads, kvHeads, headDim }) => {
      const q = heads * headDim, kv = kvHeads * headDim;
      return 10 * C + 2 * (q + 2 * kv) + 5 * (q + kv) + 2 * q + (kv < q ? 2 * q : 0) + 5 * I;
    },
    tapeOverhead: 1.75,
    layerWeights: ({ hidden: C, inner: I, heads, kvHeads, headDim }) => {
      const q = heads * headDim, kv = kvHeads * headDim;
      return C * (q + 2 * kv) + q * C + 3 * C * I;
    },
    checkpointBlocks: 1,
    embedding: 'model.embed_tokens.weight',
    maxPositionsField: 'max_position_embeddings',
  },
};
