/** GPT-2's config.json (transformers GPT2Config), field for field, and its parser. */
import { checkDtype, type ConfigReader } from '../../config_reader.js';

/** GELU variants GPT-2 checkpoints use. gelu_new, gelu_pytorch_tanh and gelu_fast are the tanh approximation; gelu is exact (erf). */
export type GPT2Activation = 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu_fast' | 'gelu';

export interface GPT2Config {
  model_type: 'gpt2';
  vocab_size: number;          // rows of wte and of the (tied) lm_head
  n_positions: number;         // rows of wpe: the longest sequence the model can read
  n_embd: number;              // C, the residual width
  n_layer: number;
  n_head: number;              // head size is n_embd / n_head
  n_inner: number | null;      // MLP width; null means 4 * n_embd (as in HF)
  activation_function: GPT2Activation;
  layer_norm_epsilon: number;
  initializer_range: number;   // std of the normal init; c_proj weights use std / sqrt(2 * n_layer)
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
  // Dropout probabilities are kept for round trip. WebTune does not apply base-model dropout
  // (training is deterministic given the seed; LoRA dropout is separate).
  resid_pdrop: number;
  embd_pdrop: number;
  attn_pdrop: number;
  /** Keys that do not change the computation (architectures, transformers_version, ...), written back verbatim. */
  extra: Record<string, unknown>;
}

const GPT2_ACTIVATIONS: GPT2Activation[] = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'gelu'];

export function parseGPT2(r: ConfigReader): GPT2Config {
  const n_embd = r.int('n_embd', 768);
  const n_head = r.int('n_head', 12);
  if (n_embd % n_head !== 0) r.fail('n_head', `n_embd (${n_embd}) must be divisible by n_head (${n_head}).`);
  const act = r.raw('activation_function') ?? 'gelu_new';
  if (!GPT2_ACTIVATIONS.includes(act as GPT2Activation)) r.fail('activation_function', `${JSON.stringify(act)} is not supported; use one of ${GPT2_ACTIVATIONS.join(', ')}.`);
  const n_inner = r.raw('n_inner');
  if (n_inner !== undefined && n_inner !== null && (typeof n_inner !== 'number' || !Number.isInteger(n_inner) || n_inner < 1)) r.fail('n_inner', `must be null or a positive integer, got ${JSON.stringify(n_inner)}.`);
  const n_positions = r.int('n_positions', 1024);
  // n_ctx is the pre-2020 name of n_positions; original GPT-2 configs carry both.
  if (r.has('n_ctx')) {
    const n_ctx = r.int('n_ctx');
    if (n_ctx > n_positions) r.fail('n_ctx', `(${n_ctx}) exceeds n_positions (${n_positions}).`);
  }
  r.only('scale_attn_weights', [true], 'attention scores are always divided by sqrt(head size)');
  r.only('scale_attn_by_inverse_layer_idx', [false], 'per-layer attention scaling is not implemented');
  r.only('reorder_and_upcast_attn', [false], 'attention is computed in float32 already');
  r.only('add_cross_attention', [false], 'decoder-only models only');
  r.only('is_encoder_decoder', [false], 'decoder-only models only');
  checkDtype(r);
  return {
    model_type: 'gpt2',
    vocab_size: r.int('vocab_size', 50257),
    n_positions,
    n_embd,
    n_layer: r.int('n_layer', 12),
    n_head,
    n_inner: (n_inner as number | null | undefined) ?? null,
    activation_function: act as GPT2Activation,
    layer_norm_epsilon: r.num('layer_norm_epsilon', 1e-5, { positive: true }),
    initializer_range: r.num('initializer_range', 0.02),
    tie_word_embeddings: r.bool('tie_word_embeddings', true),
    bos_token_id: r.tokenId('bos_token_id', 50256),
    eos_token_id: r.tokenId('eos_token_id', 50256),
    resid_pdrop: r.num('resid_pdrop', 0.1),
    embd_pdrop: r.num('embd_pdrop', 0.1),
    attn_pdrop: r.num('attn_pdrop', 0.1),
    extra: {},
  };
}
