/**
 * How much memory fine-tuning a model will take, from its config.json alone, so that the cost
 * can be shown before any weight is downloaded, and a GPU whose binding limits are too small
 * for one of the tensors is refused with a reason instead of failing mid-step.
 *
 * The arithmetic (bytes; every figure is an ESTIMATE of the path that will run: opts.path 'fused'
 * (default; WebGPU's fused kernels) or 'stock' (tfjs ops), with the chunked loss of CausalLM.loss
 * and, with opts.gradientCheckpointing, per-block checkpointing):
 *
 *   weights      every parameter (countParams: a tied lm_head counted once) x bytesPerParam.
 *                Weights are float32 after loading (F16/BF16 checkpoints are converted), so
 *                bytesPerParam is 4 unless stated otherwise.
 *   gradients    4 bytes per TRAINABLE parameter: all of them in full fine-tuning; with LoRA
 *                only the adapters, r x (in + out) per targeted linear module.
 *   optimizer    AdamW's two float32 moments: 8 bytes per trainable parameter.
 *   activations  float32 tensors the autodiff tape keeps from the forward pass until the
 *                backward pass (tfjs frees nothing it recorded before the gradients are done),
 *                with N = B*T tokens and A = B*H*T*T attention scores. Fused path: see
 *                FUSED_OVERHEAD below. Stock path, per layer, an op count
 *                from models/families/ (each family's memory counts) and src/nn/ops.ts:
 *                  GPT-2   28*C + 10*I per token (layer norms 4+4, c_attn matmul+bias 6, q/k/v
 *                          head split 6, context + merge 2, projections + residuals 6; c_fc
 *                          matmul+bias 2, tanh-GELU 8)
 *                  Llama   10*C + 2*(q+2kv) + 5*(q+kv) + 2*q [+ 2*q when kv < q] + 5*I per token
 *                          (RMSNorms, o/down projections, residuals; q/k/v projections and head
 *                          split; RoPE on q and k; context + merge; K/V repeated to H heads for
 *                          GQA; gate, up, sigmoid, two products)
 *                times a measured tape overhead (GPT-2 1.5, Llama 1.75: broadcast operands and
 *                copies behind reshapes/transposes), plus 4*A (scores, scaled, masked, softmax)
 *                and one copy of the layer's linear weights (measured: recorded every forward).
 *                Outside the layers: 2*N*C (embeddings, final norm), 2*V*C (lm_head's weight
 *                copies) and the loss: 7*N*V (logits [B,T,V] and the loss's log-sum-exp
 *                intermediates) when the logits are made whole, else one chunk (see lossRows).
 *                With checkpointing: each block's input (N*C per layer) and one block's
 *                activations at a time instead of every layer's.
 *                The backward pass roughly doubles it (each recorded tensor's gradient lives until
 *                its producer is processed): activations = 2 x the forward tape. Checked against
 *                tf.profile's peak bytes on the CPU backend (test/hub/estimate.test.ts); other
 *                backends and fused kernels differ, so treat it as +-25%.
 *   total        weights + gradients + optimizer + activations.
 *
 * WebGPU binds each tensor as one storage buffer, so the largest single tensor must fit
 * the adapter's maxStorageBufferBindingSize (and maxBufferSize): checkFitsAdapter says which
 * tensor does not (the embedding matrix [V, C], the logits [B, T, V] or one chunk of them, the
 * stock path's attention scores [B, H, T, T], the MLP activations [B, T, I]) and what to change.
 *
 * @example
 * const info = await fetchHubModelInfo('HuggingFaceTB/SmolLM2-135M-Instruct');   // config.json only
 * const est = estimateTrainingMemory(info.config, { batchSize: 4, seqLen: 256, lora: { r: 8, targets: ['q_proj', 'v_proj'] } });
 * formatBytes(est.total);                        // the fused path with the chunked loss; add gradientCheckpointing: true to keep less
 * const fit = checkFitsAdapter(est, adapter.limits);
 * if (!fit.ok) throw new Error(fit.message);
 */
import { parseConfig, countParams, dims, type ModelConfig } from '../../models/config.js';
import { familyOf } from '../../models/families/index.js';
import * as tf from '@tensorflow/tfjs';
import { backendInfo } from '../backend/index.js';

export interface LoraEstimate {
  r: number;
  /** Module names as PEFT's target_modules ('q_proj', 'c_attn', ...: a module matches by its last name parts) or 'all-linear' (every linear but lm_head). */
  targets: string[] | 'all-linear';
}

export interface EstimateOptions {
  batchSize: number;
  seqLen: number;
  lora?: LoraEstimate;
  /** Train every parameter. Default: true without `lora`, false with it. */
  fullFineTune?: boolean;
  /** Bytes per stored weight; 4 (float32), the dtype WebTune trains in. */
  bytesPerParam?: number;
  /** The path that will run: 'fused' (the fused WebGPU kernels; default) or 'stock' (tfjs ops: WebGL, CPU). */
  path?: 'fused' | 'stock';
  /** Gradient checkpointing per block (only each block's input kept; the block recomputed in the backward pass). */
  gradientCheckpointing?: boolean;
  /** The loss's logits budget (CausalLM.loss's logitsChunkBytes). Default 32 MiB. */
  logitsChunkBytes?: number;
}

/** One tensor that lives in one GPU buffer. */
export interface BufferEstimate {
  name: string;
  shape: number[];
  bytes: number;
}

export interface MemoryEstimate {
  params: number;
  trainableParams: number;
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  total: number;
  /** The largest single tensor (the one a binding limit meets first). */
  largestBuffer: BufferEstimate;
  /** The large single tensors, largest first. */
  buffers: BufferEstimate[];
}

/** A linear module of one layer: its name as PEFT matches it, and its features. */
interface LinearShape {
  path: string; // module path relative to the layer, e.g. 'attn.c_attn', 'self_attn.q_proj'
  inF: number;
  outF: number;
}

function layerLinears(config: ModelConfig): { prefix: (i: number) => string; linears: LinearShape[] } {
  const m = familyOf(config).memory;
  return { prefix: (i) => `${m.layerPrefix}.${i}`, linears: m.layerLinears(dims(config)) };
}

/** PEFT's rule: a target matches a module whose full path equals it or ends with '.' + target. */
const matches = (path: string, target: string) => path === target || path.endsWith(`.${target}`);

/** LoRA parameters: r * (in + out) for every targeted linear module. Throws when a target matches nothing. */
export function loraParamCount(config: ModelConfig, lora: LoraEstimate): number {
  if (!Number.isInteger(lora.r) || lora.r < 1) throw new Error(`lora.r: must be a positive integer, got ${JSON.stringify(lora.r)}`);
  const { prefix, linears } = layerLinears(config);
  const d = dims(config);
  const modules: LinearShape[] = [];
  for (let i = 0; i < d.layers; i++) for (const l of linears) modules.push({ ...l, path: `${prefix(i)}.${l.path}` });
  if (lora.targets === 'all-linear') return modules.reduce((s, m) => s + lora.r * (m.inF + m.outF), 0);
  modules.push({ path: 'lm_head', inF: d.hidden, outF: d.vocab });
  let total = 0;
  for (const t of lora.targets) {
    const hit = modules.filter((m) => matches(m.path, t));
    if (hit.length === 0) {
      const names = [...new Set(linears.map((l) => l.path.split('.').pop()!)), 'lm_head'];
      throw new Error(`lora.targets: "${t}" matches no linear module of ${config.model_type} (its modules: ${names.join(', ')})`);
    }
  }
  for (const m of modules) if (lora.targets.some((t) => matches(m.path, t))) total += lora.r * (m.inF + m.outF);
  return total;
}

/**
 * How much more than the op count above tfjs's tape really holds per token (broadcast operands,
 * copies behind reshapes and transposes on some backends). Measured with tf.profile on the CPU
 * backend of tfjs 4.22 over sequence lengths 16 to 64 (test/hub/estimate.test.ts checks it).
 */
// TAPE_OVERHEAD: the family's memory.tapeOverhead (GPT-2 1.5, Llama 1.75).

/**
 * The fused path (kernels/): one tensor per linear output, norms fused with the residual adds,
 * attention straight from the projections with no [T, S] scores, LoRA over a frozen base keeping
 * only its rank-r activation. Per token, what its forward keeps per layer:
 *   GPT-2   10*C + 2*I    (ln_1/ln_2 sums and outputs 4, c_attn 3, attention 1, c_proj 2; c_fc, GELU)
 *   Llama   6*C + 2*q + 3*kv + 3*I    (two add+norm pairs 4, q/k/v, RoPE'd q and k, attention, o/down
 *           projections 2; gate, up, SwiGLU product)
 * times FUSED_OVERHEAD, measured with `webtune bench` on lavapipe: SmolLM2-135M's layer shape,
 * vocabulary 4096, batch 2 x 128, LoRA on q/k/v/o, 2 and 4 layers peaked at 109.7 and 197.6 MiB,
 * 44.0 MiB per layer, of which 13.9 MiB are its weights and 30.2 MiB activations: 3.1 x the
 * count. GPT-2 (width 128, 4 layers, vocabulary 2048, batch 4 x 64, LoRA on c_attn: 27.2 MiB
 * peak, test/hub/estimate_webgpu.test.ts) keeps 2.1 x its count: no RoPE, no grouped K/V. The
 * factor covers the layouts the kernels read (heads split and merged), the kernels' side
 * outputs, and the backward pass's gradients, which live while the layer's backward runs.
 */
// FUSED_OVERHEAD: the family's memory.fusedOverhead (GPT-2 2.1, Llama 3.1).

/** Float32 elements one transformer layer keeps from forward to backward for B x T tokens on `path`. */
function layerActivations(config: ModelConfig, B: number, T: number, path: 'fused' | 'stock'): number {
  const d = dims(config), m = familyOf(config).memory;
  const N = B * T, A = B * d.heads * T * T;
  if (path === 'fused') return m.fusedOverhead * m.fusedPerToken(d) * N;
  // One copy of the layer's linear weights is recorded per forward (measured; as for a transposed operand).
  return m.layerWeights(d) + m.tapeOverhead * m.stockPerToken(d) * N + 4 * A;
}

/**
 * With gradient checkpointing, how many layers' worth of activations the backward pass holds at
 * its peak (the recomputed block, and its gradients), measured on lavapipe with `webtune bench
 * --compare-checkpointing`: Llama 1 (SmolLM2-135M's layer shape, 2 and 4 layers: 15.6 MiB per
 * layer for 13.9 MiB of weights, the rest one block), GPT-2 2 (the micro shape, 4 layers).
 */
// CHECKPOINT_BLOCKS: the family's memory.checkpointBlocks (GPT-2 2, Llama 1).

/** The logits budget of CausalLM.loss (models/causal_lm.ts LOGITS_CHUNK_BYTES). */
const LOGITS_CHUNK_BYTES = 32 * 2 ** 20;

/** Rows of one logits chunk, as src/nn/linear_cross_entropy.ts logitsChunkRows picks them (N when the logits are made whole). */
function lossRows(N: number, V: number, budget: number): number {
  if (N * V * 4 <= budget) return N;
  const most = Math.max(1, Math.floor(budget / (V * 4)));
  return Math.ceil(N / Math.ceil(N / most));
}

/** Estimates the memory of one training step; see the module comment for what is counted. */
export function estimateTrainingMemory(config: ModelConfig, opts: EstimateOptions): MemoryEstimate {
  const { batchSize: B, seqLen: T } = opts;
  if (!Number.isInteger(B) || B < 1) throw new Error(`batchSize: must be a positive integer, got ${JSON.stringify(B)}`);
  if (!Number.isInteger(T) || T < 1) throw new Error(`seqLen: must be a positive integer, got ${JSON.stringify(T)}`);
  const bytesPerParam = opts.bytesPerParam ?? 4;
  const path = opts.path ?? 'fused';
  const d = dims(config);
  if (T > d.maxPositions) {
    throw new Error(`seqLen: ${T} is longer than the model reads (${familyOf(config).memory.maxPositionsField} = ${d.maxPositions})`);
  }
  const params = countParams(config);
  const full = opts.fullFineTune ?? !opts.lora;
  const trainableParams = (full ? params : 0) + (opts.lora ? loraParamCount(config, opts.lora) : 0);

  const N = B * T, C = d.hidden, V = d.vocab;
  // The loss: whole logits when they fit the budget, else one chunk of R rows at a time
  // (CausalLM.loss). Whole: logits, their gradient, the loss's row statistics (stock: 7*N*V, the
  // log-sum-exp intermediates; fused: 2*N*V). Chunked: the chunk's logits and gradient (3*R*V with
  // the recomputation), and the hidden states and their gradient (2*N*C).
  const R = lossRows(N, V, opts.logitsChunkBytes ?? LOGITS_CHUNK_BYTES);
  const loss = R === N ? (path === 'stock' ? 7 : 2) * N * V : 3 * R * V + 2 * N * C;
  // Outside the layers: the embedding gather and the final norm (2*N*C); on the stock path the
  // lm_head's copies of its weight (V*C, forward and transposed for the gradient).
  const outside = 2 * N * C + (path === 'stock' ? 2 * V * C : 0) + loss;
  // Checkpointing keeps each block's input and output (2*N*C per layer: the saved input is a copy)
  // and, in the backward pass, the recomputed block's activations (CHECKPOINT_BLOCKS); otherwise
  // every layer's activations live until the backward pass.
  const layer = layerActivations(config, B, T, path);
  const layersKept = opts.gradientCheckpointing ? d.layers * 2 * N * C + familyOf(config).memory.checkpointBlocks * layer : d.layers * layer;
  // Stock: each recorded tensor's gradient lives until its producer is processed; measured on the
  // CPU backend, the peak of forward + backward is about twice what the forward recorded. (The
  // fused factor above already counts the backward pass.)
  const activationFloats = path === 'stock' ? 2 * (layersKept + outside) : layersKept + outside;

  const weights = params * bytesPerParam;
  const gradients = trainableParams * 4;
  const optimizer = trainableParams * 8;
  const activations = activationFloats * 4;

  const { embedding: embName, positionTable } = familyOf(config).memory;
  const buffers: BufferEstimate[] = [
    { name: `${embName} (the embedding matrix)`, shape: [V, C], bytes: V * C * bytesPerParam },
    R === N ? { name: 'logits', shape: [B, T, V], bytes: N * V * 4 } : { name: 'logits chunk', shape: [R, V], bytes: R * V * 4 },
    { name: 'MLP activations', shape: [B, T, d.inner], bytes: N * d.inner * 4 },
  ];
  // The fused attention never stores the [T, S] scores.
  if (path === 'stock') buffers.push({ name: 'attention scores', shape: [B, d.heads, T, T], bytes: B * d.heads * T * T * 4 });
  if (!config.tie_word_embeddings) buffers.push({ name: 'lm_head.weight', shape: [V, C], bytes: V * C * bytesPerParam });
  if (positionTable) buffers.push({ name: positionTable, shape: [d.maxPositions, C], bytes: d.maxPositions * C * bytesPerParam });
  buffers.sort((a, b) => b.bytes - a.bytes);

  return {
    params, trainableParams, weights, gradients, optimizer, activations,
    total: weights + gradients + optimizer + activations,
    largestBuffer: buffers[0], buffers,
  };
}

/** estimateTrainingMemory from a config.json (text or parsed), before anything else is downloaded. */
export function estimateFromConfigJson(json: string | Record<string, unknown>, opts: EstimateOptions, source = 'config.json'): MemoryEstimate {
  let parsed: unknown = json;
  if (typeof json === 'string') {
    try {
      parsed = JSON.parse(json);
    } catch (e) {
      throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
    }
  }
  return estimateTrainingMemory(parseConfig(parsed, source), opts);
}

/** The two GPUAdapter / GPUDevice limits a single tensor meets (adapter.limits has both). */
export interface BufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export type FitCheck =
  | { ok: true }
  | { ok: false; message: string; buffer: BufferEstimate; limitName: keyof BufferLimits; limit: number };

/** '1.5 GiB', '108.0 MiB', '512 B'. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Whether every large tensor of `estimate` fits in one buffer under `limits`. When one does not,
 * `message` names the tensor, its shape and size, the limit, and what to change: a smaller
 * batch or sequence length for activations (with the largest that fits), a smaller model for
 * weights (LoRA saves gradients and optimizer memory but not the base weights themselves).
 */
export function checkFitsAdapter(estimate: MemoryEstimate, limits: BufferLimits): FitCheck {
  const limitName: keyof BufferLimits = limits.maxStorageBufferBindingSize <= limits.maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
  const limit = limits[limitName];
  const buffer = estimate.buffers.find((b) => b.bytes > limit);
  if (!buffer) return { ok: true };
  const size = `${buffer.bytes.toLocaleString('en-US')} bytes (${formatBytes(buffer.bytes)})`;
  const head = `${buffer.name} [${buffer.shape.join(', ')}] float32 is ${size}, over this GPU's ${limitName} of ${limit.toLocaleString('en-US')} bytes (${formatBytes(limit)})`;
  let fix: string;
  if (buffer.name === 'logits') {
    const [B, T, V] = buffer.shape;
    const tokens = Math.floor(limit / (V * 4));
    fix = `use a smaller batch size or sequence length: batchSize x seqLen must be at most ${tokens} (now ${B} x ${T} = ${B * T})`;
  } else if (buffer.name === 'attention scores' || buffer.name === 'MLP activations') {
    fix = 'use a smaller batch size or sequence length';
  } else {
    fix = 'this model is too large for this GPU: choose a smaller model (LoRA saves gradient and optimizer memory, not the base weights)';
  }
  return { ok: false, message: `${head}: ${fix}.`, buffer, limitName, limit };
}

/**
 * What a page can plan for when WebGPU does not say how much memory the GPU has: 2 GiB, about
 * what an integrated laptop GPU lends one tab.
 */
export const DEFAULT_MEMORY_BUDGET = 2 * 2 ** 30;

export interface TrainingPlan {
  /** Whether to train with gradient checkpointing (asked for, or turned on to fit the budget). */
  gradientCheckpointing: boolean;
  /** Why checkpointing was turned on, when it was not asked for. */
  reason?: string;
  /** The estimate of the run as planned. */
  estimate: MemoryEstimate;
  /** When a single tensor exceeds the device's limits: what, by how much, and what to change. */
  refusal?: string;
}

/**
 * Plans a run's memory: estimates it as asked; when it exceeds `budgetBytes` without gradient
 * checkpointing and checkpointing brings it down, turns checkpointing on and says why; and checks
 * every large tensor against the device's `limits` (checkFitsAdapter).
 *
 * @example
 *   planTraining(smolConfig, { batchSize: 4, seqLen: 256, lora: { r: 8, targets: ['q_proj', 'v_proj'] } }).reason
 *   // 'the estimate without it is 5.1 GiB, over the 2.0 GiB planned for; with it 1.0 GiB'
 */
export function planTraining(config: ModelConfig, opts: EstimateOptions, { budgetBytes = DEFAULT_MEMORY_BUDGET, limits }: { budgetBytes?: number; limits?: BufferLimits } = {}): TrainingPlan {
  let estimate = estimateTrainingMemory(config, opts);
  let gradientCheckpointing = !!opts.gradientCheckpointing;
  let reason: string | undefined;
  if (!gradientCheckpointing && estimate.total > budgetBytes) {
    const withIt = estimateTrainingMemory(config, { ...opts, gradientCheckpointing: true });
    if (withIt.total < estimate.total) {
      reason = `the estimate without it is ${formatBytes(estimate.total)}, over the ${formatBytes(budgetBytes)} planned for; with it ${formatBytes(withIt.total)}`;
      estimate = withIt;
      gradientCheckpointing = true;
    }
  }
  const fit = limits ? checkFitsAdapter(estimate, limits) : { ok: true as const };
  return { gradientCheckpointing, reason, estimate, refusal: fit.ok ? undefined : fit.message };
}

/**
 * Throws when one training step of a batchSize x seqLen batch would bind a tensor over the
 * device's limits (the message names the tensor, its size, the limit and what to change).
 * The Trainer calls it before the first step of each batch shape.
 */
export function checkStepFits(config: ModelConfig, batchSize: number, seqLen: number, limits: BufferLimits, opts: { gradientCheckpointing?: boolean } = {}): void {
  const est = estimateTrainingMemory(config, { batchSize, seqLen: Math.min(seqLen, dims(config).maxPositions), fullFineTune: false, gradientCheckpointing: opts.gradientCheckpointing });
  const fit = checkFitsAdapter(est, limits);
  if (!fit.ok) throw new Error(`Trainer: a batch of ${batchSize} x ${seqLen} tokens cannot be trained on this GPU: ${fit.message}`);
}

/**
 * checkStepFits for the active device, once per batch shape: on WebGPU, where its limits are
 * known, a shape whose step would bind a tensor over maxStorageBufferBindingSize is refused
 * before its first dispatch. Elsewhere, or without a config (a model that is not a CausalLM),
 * nothing is checked.
 */
export function stepFitCheck(config: ModelConfig | undefined, opts: { gradientCheckpointing?: boolean } = {}): (batchSize: number, seqLen: number) => void {
  const checked = new Set<string>();
  return (batchSize, seqLen) => {
    const key = `${batchSize}x${seqLen}`;
    const limits = backendInfo()?.limits;
    if (checked.has(key) || !limits || tf.getBackend() !== 'webgpu' || !config) return;
    checkStepFits(config, batchSize, seqLen, limits, opts);
    checked.add(key);
  };
}
