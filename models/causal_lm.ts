/**
 * CausalLM: one class over every family (models/families/: GPT-2, Llama) with Hugging Face parameter names.
 *
 * @example
 *   const model = CausalLM.create(presetConfig('nano'), { seed: 0 });
 *   const logits = model.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'));   // [1, 3, 1024]
 *   model.numParams();   // 182016
 *
 * Tensor ownership: forward returns a new tensor the caller disposes; everything else it makes
 * is freed by tf.tidy. The model owns its variables until dispose().
 *
 * A model is bound to an engine (src/engine): its ops are what every layer calls, its update
 * rule is what the Trainer applies. Default: the engine of the active backend (fused WGSL kernels
 * on WebGPU); `withEngine` gives the same weights on another engine, for comparisons.
 */
import * as tf from '@tensorflow/tfjs';
import { normalVariable, constantVariable, deriveSeed, sameShape, logitsChunkRows, type Linear, type LayerKV } from '../src/nn/index.js';
import type { ModelConfig } from './config.js';
import { familyOf } from './families/index.js';
import type { FamilyDescriptor } from './family.js';
import type { Net, NetContext, ParamSpec } from './spec.js';
import { neftuneNoise, type NeftuneMode } from '../src/nn/neftune.js';
import { currentEngine } from '../src/backend/index.js';
import type { Engine } from '../src/engine/index.js';

export { neftuneNoise };

export interface ForwardOptions {
  /**
   * int32 [B, T]: 0 = padding, otherwise a SEGMENT ID. Query i attends key j iff j <= i,
   * seg[j] == seg[i] and seg[i] != 0. A Hugging Face 0/1 mask is the one-segment case; packed
   * rows use 1, 2, 3, ... per example. Default: all ones. A padding query attends to itself
   * only, so nothing is NaN; its logits are meaningless (give it label -100).
   */
  attentionMask?: tf.Tensor2D;
  /** int32 [B, T]. Default 0..T-1 (offset by the cache length with a KV cache); packed rows restart at 0 per segment. */
  positionIds?: tf.Tensor2D;
  /** Turns on LoRA dropout (and NEFTune). Base-model dropout is never applied. */
  training?: boolean;
  /** Seed for training-time randomness (LoRA dropout); derive it from (run seed, step) so a resumed run is exact. */
  seed?: number;
  /** Incremental decoding: keys/values of earlier positions are read from it and this call's are appended. */
  cache?: KVCache;
  /** NEFTune noise on the token embeddings, in training only (ignored when training is false). */
  neftune?: NeftuneOptions;
  /**
   * Gradient checkpointing (transformers' gradient_checkpointing): keep only each block's input
   * and recompute the block in the backward pass. Less memory, about one more forward of compute.
   * Training only; ignored with a KV cache.
   */
  gradientCheckpointing?: boolean;
  /**
   * Run each block's plain forward (models/transformer.ts Block.forward, every residual add on its
   * own) instead of the folded one the model runs by default. The same math: for tests and reading.
   */
  plainBlocks?: boolean;
}

/** The logits block CausalLM.loss holds at most at once, unless told otherwise: 32 MiB. */
export const LOGITS_CHUNK_BYTES = 32 * 2 ** 20;

export interface LossOptions extends Omit<ForwardOptions, 'cache'> {
  /**
   * Largest logits block [rows, V] float32, in bytes, the loss holds at once. When all B·T rows fit
   * the logits are made whole (one pass); otherwise the head and the loss run in chunks
   * (ops.linearCrossEntropy). Default LOGITS_CHUNK_BYTES.
   */
  logitsChunkBytes?: number;
}

/**
 * NEFTune (Jain et al. 2023): in training, add Uniform(-m, m) noise to the token embeddings with
 * m = alpha / sqrt(L * C), C the width. L is each sequence's true length (per packed segment,
 * no noise on padding) as in the paper's code, or with mode 'transformers' the padded length T
 * with noise everywhere, as transformers' neftune_post_forward_hook does (src/nn/neftune.ts).
 * The noise is drawn from `ForwardOptions.seed`, so a resumed run draws the same noise.
 */
export interface NeftuneOptions {
  alpha: number;         // neftune_noise_alpha; typical values 5 to 15
  mode?: NeftuneMode;    // 'paper' (default) or 'transformers'
}

/**
 * Keys and values per layer for incremental decoding, plus the segments of the cached positions.
 * Owned by the caller: dispose() it when generation ends.
 *
 * @example
 *   const cache = createKVCache(model, 1);
 *   model.forward(prompt, { cache }).dispose();          // prompt [1, T]: fills positions 0..T-1
 *   const next = model.forward(tok, { cache });           // tok [1, 1]: position T, reads the cache
 */
export class KVCache {
  /** Per layer: K and V [B, Hkv, length, D]; undefined before the first forward. */
  layers: Array<LayerKV | undefined>;
  /** int32 [B, length] segment ids of the cached positions (present once a mask was given). */
  segments?: tf.Tensor2D;
  /** Number of cached positions. */
  length = 0;

  constructor(readonly numLayers: number, readonly batchSize: number, readonly maxLength: number) {
    this.layers = new Array(numLayers).fill(undefined);
  }

  dispose(): void {
    for (const kv of this.layers) if (kv) { kv.k.dispose(); kv.v.dispose(); }
    this.layers.fill(undefined);
    this.segments?.dispose();
    this.segments = undefined;
    this.length = 0;
  }
}

/** An empty cache for `batchSize` rows of `model`. */
export function createKVCache(model: CausalLM, batchSize: number): KVCache {
  const d = model.family.dims(model.config);
  return new KVCache(d.layers, batchSize, model.family.learnedPositions ? d.maxPositions : Infinity);
}

/** Which engine a new model is bound to. Default: currentEngine(), the engine of the active backend. */
export interface BindOptions {
  engine?: Engine;
}

/** The parameter list of a config: names, HF shapes, HF init. */
export function paramSpecs(config: ModelConfig): ParamSpec[] {
  return familyOf(config).paramSpecs(config);
}

export class CausalLM {
  private readonly net: Net;
  private disposed = false;
  /** What the model's family is (models/families/): parameters, network, LoRA defaults, ... */
  readonly family: FamilyDescriptor<ModelConfig>;

  private constructor(
    readonly config: ModelConfig,
    /** Every parameter by its HF name, HF layout; a tied lm_head is not duplicated (it reads the embedding). */
    readonly params: Map<string, tf.Variable>,
    /** The engine this model runs on: the ops of every forward, the update rule of every training step. */
    readonly engine: Engine,
    net?: Net,
  ) {
    this.family = familyOf(config);
    this.net = net ?? this.family.build(config, params);
  }

  /**
   * The same model (the same variables, LoRA adapters included) on another engine, e.g. the
   * stock ops next to the fused kernels. The two share their weights: dispose only one of them.
   */
  withEngine(engine: Engine): CausalLM {
    return new CausalLM(this.config, this.params, engine, this.net);
  }

  /** A freshly initialised model, as transformers' _init_weights does it; the same seed gives the same weights on every backend. */
  static create(config: ModelConfig, opts: { seed?: number } & BindOptions = {}): CausalLM {
    const seed = opts.seed ?? 0;
    const params = new Map<string, tf.Variable>();
    for (const s of paramSpecs(config)) {
      const v = s.init.kind === 'normal' ? normalVariable(s.shape, s.init.std, deriveSeed(seed, s.name))
        : constantVariable(s.shape, s.init.kind === 'ones' ? 1 : 0);
      params.set(s.name, v);
    }
    return new CausalLM(config, params, opts.engine ?? currentEngine());
  }

  /**
   * A model over given tensors (a loaded checkpoint). Checks every name and shape against the
   * config; errors name `source`, the key and expected vs got. Accepts original GPT-2 keys
   * (without `transformer.`), ignores buffers (attn.bias, attn.masked_bias, rotary inv_freq),
   * and with tie_word_embeddings ignores a stored lm_head.weight as transformers does.
   * Tensors are converted to float32 variables; the caller may dispose its map afterwards.
   */
  static fromTensors(config: ModelConfig, tensors: Map<string, tf.Tensor>, source = 'checkpoint', opts: BindOptions = {}): CausalLM {
    const family = familyOf(config);
    const specs = new Map(family.paramSpecs(config).map((s) => [s.name, s]));
    const arch = family.architecture;
    const found = new Map<string, { key: string; tensor: tf.Tensor }>();
    for (const [key, tensor] of tensors) {
      const name = family.checkpointName(key);
      if (name === null) continue;                                           // a buffer, not a parameter
      if (name === 'lm_head.weight' && config.tie_word_embeddings) continue;   // transformers ties it to the embedding anyway
      const spec = specs.get(name);
      if (!spec) {
        const hint = name === 'lm_head.weight' ? ' (config.json has tie_word_embeddings: false? then it is expected; otherwise check the checkpoint family)' : '';
        throw new Error(`${source}: unexpected tensor '${key}': not a parameter of ${arch} with this config.json${hint}.`);
      }
      if (found.has(name)) throw new Error(`${source}: tensor '${key}' given twice (also as '${found.get(name)!.key}').`);
      if (!sameShape(tensor.shape, spec.shape)) {
        throw new Error(`${source}: tensor '${key}': expected shape [${spec.shape.join(', ')}] (from config.json), got [${tensor.shape.join(', ')}].`);
      }
      found.set(name, { key, tensor });
    }
    const missing = [...specs.keys()].filter((n) => !found.has(n));
    if (missing.length > 0) {
      const more = missing.length > 1 ? ` and ${missing.length - 1} more` : '';
      throw new Error(`${source}: missing tensor '${missing[0]}'${more} required by ${arch} with this config.json.`);
    }
    const params = new Map<string, tf.Variable>();
    for (const name of specs.keys()) {
      const t = found.get(name)!.tensor;
      params.set(name, tf.tidy(() => tf.variable(t.dtype === 'float32' ? t : tf.cast(t, 'float32'), true)));
    }
    return new CausalLM(config, params, opts.engine ?? currentEngine());
  }

  /**
   * inputIds int32 [B, T] -> logits float32 [B, T, V]. Ids must lie in [0, vocab_size): the
   * data pipeline guarantees it (a GPU gather does not check).
   */
  forward(inputIds: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    this.checkInputs(inputIds, opts);
    const cache = opts.cache;
    const S = (cache?.length ?? 0) + inputIds.shape[1];

    let newSegments: tf.Tensor2D | undefined;
    let newKVs: LayerKV[] | undefined;
    const logits = tf.tidy(() => {
      const hidden = this.hidden(inputIds, opts, (kvs, segments) => { newKVs = kvs; newSegments = segments; });
      return this.net.lmHead.apply(hidden, { ops: this.engine.ops, training: opts.training ?? false, seed: opts.seed }) as tf.Tensor3D;   // [B, T, V]
    });
    if (cache) {
      cache.dispose();                      // the old K/V are contained in the new ones
      cache.layers = newKVs!;
      cache.segments = newSegments;
      cache.length = S;
    }
    return logits;
  }

  /**
   * The training loss of inputIds int32 [B, T] against labels int32 [B, T] (unshifted, -100 not
   * trained; src/train/loss.ts maskedCrossEntropy's contract), without the [B, T, V] logits when
   * they would exceed `logitsChunkBytes`: the final hidden states go through lm_head and the
   * cross-entropy a chunk of rows at a time (ops.linearCrossEntropy). Same loss and gradients as
   * maskedCrossEntropy(forward(inputIds), labels).
   */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, opts: LossOptions = {}): { loss: tf.Scalar; rowSums: tf.Tensor1D; rowCounts: tf.Tensor1D } {
    this.checkInputs(inputIds, opts);
    const [B, T] = inputIds.shape;
    if (!sameShape(labels.shape, [B, T]) || labels.dtype !== 'int32') throw new Error(`CausalLM.loss: labels must be int32 [${B}, ${T}] like inputIds, got ${labels.dtype} [${labels.shape}].`);
    const V = this.config.vocab_size;
    const budget = opts.logitsChunkBytes ?? LOGITS_CHUNK_BYTES;
    return tf.tidy(() => {
      const hidden = this.hidden(inputIds, opts);                                          // [B, T, C]
      const head = this.net.lmHead;
      const training = opts.training ?? false;
      const ops = this.engine.ops;
      if (B * T * V * 4 <= budget) return ops.maskedCrossEntropy(head.apply(hidden, { ops, training, seed: opts.seed }) as tf.Tensor3D, labels);
      const x2 = tf.reshape(hidden, [B * T, head.inFeatures]) as tf.Tensor2D;
      return ops.linearCrossEntropy(hidden, {
        weight: head.weight as tf.Tensor2D, transposeB: head.layout === 'out_in', bias: head.bias as tf.Tensor1D | undefined,
        lora: head.loraBranch(x2, training, opts.seed),
      }, labels, logitsChunkRows(B * T, V, budget));
    });
  }

  /** Checks shapes, dtypes and the cache against inputIds [B, T] (see forward). */
  private checkInputs(inputIds: tf.Tensor2D, opts: ForwardOptions): void {
    if (this.disposed) throw new Error('CausalLM: the model was disposed.');
    if (inputIds.rank !== 2) throw new Error(`CausalLM.forward: inputIds must be [B, T], got shape [${inputIds.shape}].`);
    if (inputIds.dtype !== 'int32') throw new Error(`CausalLM.forward: inputIds must be int32, got ${inputIds.dtype}.`);
    const [B, T] = inputIds.shape;
    for (const [field, t] of [['attentionMask', opts.attentionMask], ['positionIds', opts.positionIds]] as const) {
      if (t && (!sameShape(t.shape, [B, T]) || t.dtype !== 'int32')) throw new Error(`CausalLM.forward: ${field} must be int32 [${B}, ${T}] like inputIds, got ${t.dtype} [${t.shape}].`);
    }
    const cache = opts.cache;
    const offset = cache?.length ?? 0;
    if (cache) {
      if (cache.batchSize !== B) throw new Error(`CausalLM.forward: the KV cache holds ${cache.batchSize} rows, inputIds has ${B}.`);
      const layers = this.family.dims(this.config).layers;
      if (cache.numLayers !== layers) throw new Error(`CausalLM.forward: the KV cache has ${cache.numLayers} layers, the model ${layers}.`);
    }
    const maxPositions = this.family.learnedPositions ? this.family.dims(this.config).maxPositions : Infinity;
    if (!opts.positionIds && offset + T > maxPositions) {
      throw new Error(`CausalLM.forward: ${offset + T} positions exceed n_positions (${maxPositions}) of this ${this.family.label}; use shorter sequences.`);
    }
  }

  /**
   * The network up to lm_head: hidden [B, T, C] (call inside a tidy). With a KV cache, `onCache`
   * receives this call's keys/values (past included) and key segments, kept for the cache.
   */
  private hidden(inputIds: tf.Tensor2D, opts: ForwardOptions, onCache?: (kvs: LayerKV[], segments: tf.Tensor2D | undefined) => void): tf.Tensor3D {
    const [B, T] = inputIds.shape;
    const cache = opts.cache;
    const offset = cache?.length ?? 0;
    const S = offset + T;
    let newSegments: tf.Tensor2D | undefined;
    const positionIds = opts.positionIds ?? (tf.tile(tf.reshape(tf.range(offset, S, 1, 'int32'), [1, T]), [B, 1]) as tf.Tensor2D);
    // Segments of all S keys: the cached ones, then this call's. Without any mask: causal only.
    let segQ: tf.Tensor2D | null = null, segK: tf.Tensor2D | null = null;
    if (opts.attentionMask || cache?.segments) {
      segQ = opts.attentionMask ?? tf.ones([B, T], 'int32');
      const past = cache ? (cache.segments ?? (offset > 0 ? tf.ones([B, offset], 'int32') as tf.Tensor2D : undefined)) : undefined;
      segK = past ? tf.concat([past, segQ], 1) : segQ;
      if (cache) newSegments = tf.keep(segK.clone());
    }
    const ops = this.engine.ops;
    const mask = ops.attentionMask(segQ, segK, offset, T, S);       // [B or 1, 1, T, S]
    const training = opts.training ?? false;
    const ctx: NetContext = { ops, positionIds, mask, pasts: cache?.layers, training, seed: opts.seed, gradientCheckpointing: training && !cache && !!opts.gradientCheckpointing, plainBlocks: opts.plainBlocks };
    // No cached keys: every layer is plain self-attention over these segments.
    if (offset === 0 && segK === segQ) ctx.selfSegments = { segmentIds: segQ };
    if (training && opts.neftune && opts.neftune.alpha > 0) ctx.onTokenEmbeddings = (e) => neftuneNoise(e, opts.neftune!.alpha, opts.seed, { segments: opts.attentionMask, mode: opts.neftune!.mode });
    const out = this.net.forward(inputIds, ctx);
    // Only with a cache do the keys/values outlive this call.
    if (cache) onCache?.(out.kvs.map((kv) => ({ k: tf.keep(kv.k), v: tf.keep(kv.v) })), newSegments);
    return out.hidden;
  }

  /** Every Linear by HF module path ('transformer.h.0.attn.c_attn', 'model.layers.0.self_attn.q_proj', 'lm_head'). */
  linearModules(): Map<string, Linear> {
    return this.net.linears;
  }

  /**
   * Variables with trainable === true: base parameters under their HF names, and LoRA weights
   * as '<module path>.lora_A.weight' / '.lora_B.weight' (PEFT's names without 'base_model.model.').
   */
  trainableParams(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [name, v] of this.params) if (v.trainable) out.set(name, v);
    const own = new Set(this.params.values());
    for (const [name, lin] of this.net.linears) {
      // A tied head given its own weight (LoRA modules_to_save on lm_head) trains under its own name.
      if (!own.has(lin.weight) && lin.weight.trainable) out.set(`${name}.weight`, lin.weight);
      if (!lin.lora) continue;
      if (lin.lora.A.trainable) out.set(`${name}.lora_A.weight`, lin.lora.A);
      if (lin.lora.B.trainable) out.set(`${name}.lora_B.weight`, lin.lora.B);
    }
    return out;
  }

  /** Number of base-model parameters (a tied lm_head counted once; LoRA weights not included). */
  numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Frees every variable, LoRA ones included. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const lin of this.net.linears.values()) {
      if (lin.lora) { lin.lora.A.dispose(); lin.lora.B.dispose(); }
      if (!this.params.has(`${lin.name}.weight`) && ![...this.params.values()].includes(lin.weight)) lin.weight.dispose();   // a tied head's own copy
    }
    for (const v of this.params.values()) v.dispose();
  }
}
