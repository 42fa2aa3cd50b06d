/** The GPT-2 family: everything WebTune knows about it (models/family.ts). */
import type { FamilyDescriptor } from '../../family.js';
import { parseGPT2, type GPT2Config } from './config.js';
import { gpt2ParamSpecs, buildGPT2, gpt2CheckpointName } from './gpt2.js';

export * from './config.js';
export * from './gpt2.js';

export const gpt2Family: FamilyDescriptor<GPT2Config> = {
  modelType: 'gpt2',
  label: 'GPT-2',
  architecture: 'GPT2LMHeadModel',
  baseArchitecture: 'GPT2Model',
  parseConfig: parseGPT2,
  preset: (s, vocab) => ({
    model_type: 'gpt2', vocab_size: vocab, n_positions: s.positions, n_embd: s.hidden, n_layer: s.layers, n_head: s.heads,
    n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, initializer_range: 0.02,
    tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0, resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0, extra: {},
  }),
  dims: (c) => ({
    vocab: c.vocab_size, hidden: c.n_embd, layers: c.n_layer, heads: c.n_head, kvHeads: c.n_head,
    headDim: c.n_embd / c.n_head, inner: c.n_inner ?? 4 * c.n_embd, maxPositions: c.n_positions,
  }),
  learnedPositions: true,
  paramSpecs: gpt2ParamSpecs,
  build: buildGPT2,
  checkpointName: gpt2CheckpointName,
  defaultLoraTargets: ['c_attn'],
  attentionProjections: ['c_attn'],
  noDecay: ['ln_', 'wte', 'wpe'],
  memory: {
    layerPrefix: 'transformer.h',
    layerLinears: ({ hidden: C, inner: I }) => [
      { path: 'attn.c_attn', inF: C, outF: 3 * C },
      { path: 'attn.c_proj', inF: C, outF: C },
      { path: 'mlp.c_fc', inF: C, outF: I },
      { path: 'mlp.c_proj', inF: I, outF: C },
    ],
    fusedPerToken: ({ hidden: C, inner: I }) => 10 * C + 2 * I,
    fusedOverhead: 2.1,
    stockPerToken: ({ hidden: C, inner: I }) => 28 * C + 10 * I,
    tapeOverhead: 1.5,
    layerWeights: ({ hidden: C, inner: I }) => C * 3 * C + C * C + 2 * C * I,
    checkpointBlocks: 2,
    embedding: 'transformer.wte.weight',
    positionTable: 'transformer.wpe.weight',
    maxPositionsField: 'n_positions',
  },
};
