/**
 * A model family as data: everything WebTune knows about GPT-2 or Llama in one object, so the
 * rest of the code (CausalLM, config.json reading and writing, checkpoint loading, LoRA, weight
 * decay, generation) looks the family up instead of branching on `model_type`.
 *
 * Adding a family is one folder, models/families/<name>/ (config.ts: its config and parser;
 * <name>.ts: its parameters and network; index.ts: this descriptor), and one line in
 * models/families/index.ts.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ConfigReader } from './config_reader.js';
import type { ParamSpec, Net } from './spec.js';

/** The sizes of a config, whichever family: width, depth, heads, vocabulary. */
export interface ModelDims {
  vocab: number;
  hidden: number;         // C, the residual width
  layers: number;
  heads: number;          // query heads
  kvHeads: number;        // key/value heads (fewer than heads with grouped-query attention)
  headDim: number;
  inner: number;          // MLP width
  maxPositions: number;   // the longest sequence the model was trained to read
}

/** A preset size shared by every family (models/config.ts SIZES). */
export interface PresetSize {
  hidden: number;
  layers: number;
  heads: number;
  positions: number;
  /** SwiGLU width of the gated-MLP families: about 8/3 * hidden, rounded up to 16. */
  llamaInner: number;
}

/**
 * A family's side of the training-memory plan: what src/train/memory.ts counts per layer and
 * the constants measured for it (that file explains each count and how it was measured).
 */
export interface FamilyMemory {
  /** HF module path of layer i is `${layerPrefix}.${i}`. */
  layerPrefix: string;
  /** Every linear module of one layer: path below the layer, in and out features. */
  layerLinears(d: ModelDims): Array<{ path: string; inF: number; outF: number }>;
  /** Float32 values one layer's forward keeps per token on the fused path (times fusedOverhead). */
  fusedPerToken(d: ModelDims): number;
  fusedOverhead: number;
  /** The same on the stock path, tfjs's tape (times tapeOverhead), and the layer's linear weights (one recorded copy). */
  stockPerToken(d: ModelDims): number;
  tapeOverhead: number;
  layerWeights(d: ModelDims): number;
  /** Layers' worth of activations the backward pass holds with gradient checkpointing. */
  checkpointBlocks: number;
  /** The embedding matrix's parameter name, and the learned position table's when there is one. */
  embedding: string;
  positionTable?: string;
  /** The config.json field that bounds the sequence length (named in errors). */
  maxPositionsField: string;
}

export interface FamilyDescriptor<C extends { model_type: string; tie_word_embeddings: boolean } = { model_type: string; tie_word_embeddings: boolean }> {
  /** config.json `model_type`. */
  readonly modelType: C['model_type'];
  /** What the page and logs call it. */
  readonly label: string;
  /** The transformers class config.json names in `architectures` (the causal LM head). */
  readonly architecture: string;
  /** The headless transformers class, also accepted in `architectures` on load. */
  readonly baseArchitecture: string;
  /** Reads the family's fields of config.json; refuses what WebTune would compute differently. */
  parseConfig(r: ConfigReader): C;
  /** Fields config.json gets besides the config's own (written by configToJSON). */
  extraJSON?(config: C): Record<string, unknown>;
  /** The config of a preset size over a `vocab`-token vocabulary. */
  preset(size: PresetSize, vocab: number): C;
  dims(config: C): ModelDims;
  /** True when positions come from a learned table: a sequence may not be longer than dims().maxPositions. */
  readonly learnedPositions: boolean;
  /** Every parameter: Hugging Face name, shape, init. */
  paramSpecs(config: C): ParamSpec[];
  /** The network over a set of variables (keyed by paramSpecs' names). */
  build(config: C, params: Map<string, tf.Variable>): Net;
  /** The parameter name of a checkpoint key, or null for a buffer ignored on load (causal masks, rotary frequencies). */
  checkpointName(key: string): string | null;
  /** PEFT's default LoRA target_modules for the family. */
  readonly defaultLoraTargets: readonly string[];
  /** Every attention projection: LoRA targets the page suggests for a pretrained model. */
  readonly attentionProjections: readonly string[];
  /** Name fragments of matrices kept out of weight decay (norms, embeddings); biases and 1-D parameters never decay. */
  readonly noDecay: readonly string[];
  /** What the training-memory plan needs to know of the family. */
  readonly memory: FamilyMemory;
}
