/** What a model family tells CausalLM: its parameters (name, shape, init) and how to run them. */
import type * as tf from '@tensorflow/tfjs';
import type { Linear, LayerKV, Rope, SelfSegments, LayerContext } from '../src/nn/index.js';

/** How a parameter is initialised by CausalLM.create (as Hugging Face's _init_weights does). */
export type Init = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };

export interface ParamSpec {
  name: string;        // HF state-dict key
  shape: number[];     // HF layout
  init: Init;
}

/** Everything a network reads besides the token ids (the bound engine's ops included), computed once per forward by CausalLM. */
export interface NetContext extends LayerContext {
  positionIds: tf.Tensor2D;      // int32 [B, T]
  mask: tf.Tensor4D;             // additive [B or 1, 1, T, S]
  /** The segment ids of `mask` when it is plain self-attention (no cached positions); see SelfSegments. */
  selfSegments?: SelfSegments;
  pasts?: Array<LayerKV | undefined>;  // per layer, with a KV cache
  training: boolean;
  /** Recompute each block's forward in the backward pass instead of keeping its activations (training only, no KV cache). */
  gradientCheckpointing?: boolean;
  /** Run Block.forward (plain) instead of Block.forwardFolded (see models/transformer.ts). */
  plainBlocks?: boolean;
  /** Applied to the token embeddings before anything else reads them (NEFTune noise hooks in here). */
  onTokenEmbeddings?: (e: tf.Tensor3D) => tf.Tensor3D;
}

/** A built network over a set of variables. */
export interface Net {
  /**
   * ids int32 [B, T] -> the final norm's output [B, T, C] (what lm_head reads) and each layer's
   * keys/values (past included; none with gradientCheckpointing).
   */
  forward(inputIds: tf.Tensor2D, ctx: NetContext): { hidden: tf.Tensor3D; kvs: LayerKV[] };
  /** hidden [B, T, C] -> logits [B, T, V] (tied to the token embedding when tie_word_embeddings). */
  lmHead: Linear;
  /** Every Linear by HF module path, lm_head included. */
  linears: Map<string, Linear>;
}

export type { Rope };
