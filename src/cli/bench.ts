/**
 * `webtune bench`: what one training step costs, stock tfjs ops against the fused WebGPU
 * kernels, in one run so the two are compared on the same adapter under the same conditions.
 *
 * A step is the real thing: model.forward (training), the masked cross-entropy of
 * src/train/loss.ts, gradients of every trainable parameter, global-norm clipping (1.0) and
 * AdamW, ending with one readback of the loss and gradient norm (as the trainer does). Each path
 * is the same model bound to one engine (src/engine, `model.withEngine`): its ops run the
 * forward and the loss, its clipAdamw clips and applies AdamW. 'stock' is stockEngine (stock
 * tfjs ops, src/train's clipGradNorm + adamwUpdate); 'fused' is fusedEngine (the fused WGSL
 * kernels, fusedClipGradNorm + fusedAdamwUpdate), the engine WebGPU gives by default.
 *
 * Modes: 'full' trains every parameter; 'lora' applies LoRA adapters (BENCH_LORA: r 8, alpha 16
 * on every linear of the blocks) and trains only those, so its gradients and optimizer state
 * are a small fraction of a full step's.
 *
 * Per preset, mode and path: tokens/s and ms/step (median of interleaved repeats after warm-up), GPU
 * compute dispatches per step, peak GPU bytes in use during a step, and the time of the very
 * first step (pipeline compilation included).
 */
import * as tf from '@tensorflow/tfjs';
import { parseFlags, CliError } from './args.js';
import { initBackend, describeBackend, type BackendName } from '../backend/index.js';
import { stockEngine, fusedEngine, describeEngine, type Engine, type KernelPath } from '../engine/index.js';
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig, parseConfig, modelSize, type ModelConfig } from '../../models/config.js';
import { familyOf, isModelFamily, MODEL_FAMILIES, MODEL_TYPES, type ModelFamily } from '../../models/families/index.js';
import { estimateTrainingMemory, checkFitsAdapter, formatBytes } from '../train/memory.js';
import { readFile } from 'node:fs/promises';
import { fusedKernelsAvailable, startGpuMeter, flush } from '../../kernels/index.js';
import { applyLora } from '../nn/lora.js';

const PRESET_NAMES = ['nano', 'micro', 'small'] as const;

/** LoRA as the bench measures it: r 8, alpha 16 on every linear of the blocks (benchLoraTargets). */
export const BENCH_LORA = { r: 8, alpha: 16 } as const;

/** Every linear module of a block, by its PEFT name (GPT-2: c_attn, c_proj, c_fc; Llama: the seven projections). */
export function benchLoraTargets(config: ModelConfig): string[] {
  const fam = familyOf(config);
  return [...new Set(fam.memory.layerLinears(fam.dims(config)).map((l) => l.path.split('.').pop()!))];
}

const SPEC = {
  preset: { type: 'string', help: `preset to measure (${PRESET_NAMES.join(', ')}, or 'all')`, default: 'all' },
  family: { type: 'string', help: `model family: ${MODEL_TYPES.join(' or ')}`, default: 'gpt2' },
  layers: { type: 'number', help: 'custom model: layers (with --dim, --heads ...; replaces the presets)' },
  heads: { type: 'number', help: 'custom model: attention heads' },
  dim: { type: 'number', help: 'custom model: width' },
  ctx: { type: 'number', help: 'sequence length of the benchmark batch', default: 128 },
  batch: { type: 'number', help: 'rows per batch', default: 8 },
  vocab: { type: 'number', help: 'vocabulary size', default: 512 },
  steps: { type: 'number', help: 'timed steps per path (interleaved)', default: 5 },
  mode: { type: 'string', help: "full (every parameter trained), lora (r 8, alpha 16 on every linear of the blocks), or 'both'", default: 'both' },
  config: { type: 'string', help: 'a Hugging Face config.json (GPT-2 or Llama family, as published) to measure with random weights (replaces the presets; its vocabulary is used)' },
  'gradient-checkpointing': { type: 'boolean', help: "recompute each block's forward in the backward pass (less memory, more compute)" },
  'lora-targets': { type: 'string', help: 'comma-separated LoRA target modules for --mode lora (default: every linear of the blocks)' },
  kernels: { type: 'string', help: 'paths to measure: both (stock and fused), fused or stock', default: 'both' },
  'compare-checkpointing': { type: 'boolean', help: 'measure every path with and without gradient checkpointing, interleaved, and print the ratio' },
  backend: { type: 'string', help: 'webgpu or cpu', default: 'webgpu' },
  json: { type: 'boolean', help: 'print one JSON object instead of a table' },
} as const;

/** The engine each measured path is. */
const ENGINES: Record<KernelPath, Engine> = { stock: stockEngine, fused: fusedEngine };

export interface BenchResult {
  preset: string;
  mode: 'full' | 'lora';
  path: KernelPath;
  /** Measured with gradient checkpointing. */
  gradientCheckpointing: boolean;
  tokensPerSecond: number;
  msPerStep: number;
  dispatchesPerStep: number;
  peakBytes: number;
  /** What estimateTrainingMemory predicts for this path (the peak to compare it with). */
  estimateBytes: number;
  firstStepMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The preset's config, or with name 'custom' a model of the given layers/heads/dim (vocab and ctx apply to both). */
export function configFor(name: string, flags: { family?: string; layers?: number; heads?: number; dim?: number; vocab?: number; ctx?: number }): ModelConfig {
  const family: ModelFamily = isModelFamily(flags.family) ? flags.family : 'gpt2';
  const base = presetConfig((name === 'custom' ? 'micro' : name) as any, { vocabSize: flags.vocab, family });
  if (name !== 'custom') return base;
  // A custom size of the family, with micro's for what is not given.
  const d = familyOf(base).dims(base);
  const hidden = flags.dim ?? d.hidden, heads = flags.heads ?? d.heads, layers = flags.layers ?? d.layers;
  if (hidden % heads !== 0) throw new CliError(`bench: --dim ${hidden} is not a multiple of --heads ${heads}.`);
  return MODEL_FAMILIES[family].preset(modelSize({ hidden, heads, layers, positions: Math.max(d.maxPositions, flags.ctx ?? 0) }), d.vocab) as ModelConfig;
}

/**
 * One training step of the model's trainable parameters on a path's engine (see the file
 * comment); resolves with its wall time in ms and the loss. Both paths share the model's
 * variables and one AdamW state. The loss is CausalLM.loss, as the trainer computes it (chunked
 * over the logits when they are large).
 */
export function makeStep(model: CausalLM, B: number, T: number, V: number, opts: { gradientCheckpointing?: boolean } = {}) {
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % V);
  const inputIds = tf.tensor2d(ids, [B, T], 'int32');
  const labels = tf.tensor2d(ids, [B, T], 'int32');      // every position trained
  const attentionMask = tf.ones([B, T], 'int32') as tf.Tensor2D;
  const positionIds = tf.tensor2d(Int32Array.from({ length: B * T }, (_, i) => i % T), [B, T], 'int32');
  const params = model.trainableParams();
  const byVarName = new Map([...params].map(([n, v]) => [v.name, n]));
  const bound: Record<KernelPath, CausalLM> = { stock: model.withEngine(ENGINES.stock), fused: model.withEngine(ENGINES.fused) };
  // Each engine's clip (1.0) then AdamW; the two share one state (the same [{}, AdamWState] shape).
  const optimizers = { stock: ENGINES.stock.clipAdamw({ maxGradNorm: 1.0, weightDecay: 0 }), fused: ENGINES.fused.clipAdamw({ maxGradNorm: 1.0, weightDecay: 0 }) };
  const state = optimizers.stock.init(params);
  const step = async (path: KernelPath): Promise<{ ms: number; loss: number }> => {
    const m = bound[path];
    const t0 = performance.now();
    const { value, grads: g } = tf.variableGrads(() =>
      m.loss(inputIds, labels, { attentionMask, positionIds, training: true, gradientCheckpointing: opts.gradientCheckpointing }).loss, [...params.values()]);
    const grads = new Map(Object.entries(g).map(([k, t]) => [byVarName.get(k) ?? k, t]));
    const update = optimizers[path].update(grads, state, params, { lr: 1e-4 });
    update.apply();
    const readout = tf.stack([value, update.gradNorm]);
    update.dispose();
    const [loss] = await readout.data();
    tf.dispose([readout, value, ...grads.values()]);
    if (!Number.isFinite(loss)) throw new Error(`bench: non-finite loss on the ${path} path`);
    return { ms: performance.now() - t0, loss };
  };
  const dispose = () => { tf.dispose([inputIds, labels, attentionMask, positionIds]); optimizers.stock.dispose(state); };
  return { step, dispose };
}

/** One measured configuration: a path (stock ops or fused kernels), with or without gradient checkpointing. */
interface Variant { path: KernelPath; gc: boolean }
const variantName = (v: Variant) => `${v.path}${v.gc ? '+gc' : ''}`;

async function measure(presetName: string, config: ModelConfig, B: number, T: number, steps: number, variants: Variant[], mode: 'full' | 'lora', loraTargets: string[], estimates: Map<string, number>): Promise<BenchResult[]> {
  const model = CausalLM.create(config, { seed: 0 });
  if (mode === 'lora') applyLora(model, { r: BENCH_LORA.r, alpha: BENCH_LORA.alpha, targetModules: loraTargets });
  const V = config.vocab_size;
  const plain = makeStep(model, B, T, V), ckpt = makeStep(model, B, T, V, { gradientCheckpointing: true });
  const step = (v: Variant) => (v.gc ? ckpt : plain).step(v.path);
  try {
    // The first step compiles the pipelines; its dispatches and peak memory are those of every step.
    const first = new Map<Variant, number>();
    const meters = new Map<Variant, { dispatches: number; peakBytes: number }>();
    for (const v of variants) {
      await flush();
      const m = startGpuMeter();
      first.set(v, (await step(v)).ms);
      meters.set(v, m.stop());
    }
    const times = new Map<Variant, number[]>(variants.map((v) => [v, []]));
    for (let i = 0; i < steps; i++) for (const v of (i % 2 ? [...variants].reverse() : variants)) times.get(v)!.push((await step(v)).ms);
    return variants.map((v) => {
      const ms = median(times.get(v)!);
      return {
        preset: presetName, mode, path: v.path, gradientCheckpointing: v.gc, tokensPerSecond: (B * T) / (ms / 1000), msPerStep: ms,
        dispatchesPerStep: meters.get(v)!.dispatches, peakBytes: meters.get(v)!.peakBytes, estimateBytes: estimates.get(variantName(v))!, firstStepMs: first.get(v)!,
      };
    });
  } finally {
    plain.dispose();
    ckpt.dispose();
    model.dispose();
  }
}

function table(results: BenchResult[]): string {
  const head = ['preset', 'mode', 'path', 'tokens/s', 'ms/step', 'dispatches', 'peak MiB', 'estimate MiB', 'first step ms'];
  const name = (r: BenchResult) => variantName({ path: r.path, gc: r.gradientCheckpointing });
  const rows = results.map((r) => [r.preset, r.mode, name(r), r.tokensPerSecond.toFixed(0), r.msPerStep.toFixed(1), String(r.dispatchesPerStep),
    (r.peakBytes / 2 ** 20).toFixed(1), (r.estimateBytes / 2 ** 20).toFixed(1), r.firstStepMs.toFixed(0)]);
  const ratio = (a: BenchResult, b: BenchResult, label: string) => [a.preset, a.mode, label, (a.tokensPerSecond / b.tokensPerSecond).toFixed(2) + 'x', (a.msPerStep / b.msPerStep).toFixed(2) + 'x',
    (a.dispatchesPerStep / b.dispatchesPerStep).toFixed(3) + 'x', (a.peakBytes / b.peakBytes).toFixed(2) + 'x', (a.estimateBytes / b.estimateBytes).toFixed(2) + 'x', (a.firstStepMs / b.firstStepMs).toFixed(2) + 'x'];
  const ratios: string[][] = [];
  const same = (a: BenchResult, b: BenchResult) => a.preset === b.preset && a.mode === b.mode;
  for (const r of results) {
    const stock = results.find((x) => same(x, r) && r.path === 'fused' && x.path === 'stock' && x.gradientCheckpointing === r.gradientCheckpointing);
    if (stock) ratios.push(ratio(r, stock, `${name(r)}/${name(stock)}`));
    const plain = results.find((x) => same(x, r) && r.gradientCheckpointing && !x.gradientCheckpointing && x.path === r.path);
    if (plain) ratios.push(ratio(r, plain, `${name(r)}/${name(plain)}`));
  }
  const all = [head, ...rows, ...ratios];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt), ...(ratios.length ? ['', ...ratios.map(fmt)] : [])].join('\n');
}

/** A config.json read from `file`: errors name the file (and the field, from parseConfig). */
async function readConfigFile(file: string): Promise<ModelConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CliError(`bench: --config ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliError(`bench: --config ${file}: not valid JSON (${(e as Error).message}).`);
  }
  try {
    return parseConfig(json, file);
  } catch (e) {
    throw new CliError(`bench: ${(e as Error).message}`);
  }
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('bench', argv, SPEC as any, 'Tokens/s, dispatches and peak memory per training step: stock tfjs ops vs fused WebGPU kernels.') as any;
  if (!flags) return 0;
  const backendName = flags.backend as BackendName;
  if (backendName !== 'webgpu' && backendName !== 'cpu') throw new CliError(`bench: --backend must be webgpu or cpu, got '${flags.backend}'.`);
  if (!isModelFamily(flags.family)) throw new CliError(`bench: --family must be ${MODEL_TYPES.join(' or ')}, got '${flags.family}'.`);
  const info = await initBackend({ prefer: backendName, strict: true });
  if (info.backend === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  const storageBuffers = info.limits?.maxStorageBuffersPerShaderStage ?? 0;
  const modes: Array<'full' | 'lora'> = flags.mode === 'both' ? ['full', 'lora'] : [flags.mode];
  for (const m of modes) if (m !== 'full' && m !== 'lora') throw new CliError(`bench: --mode must be full, lora or both, got '${flags.mode}'.`);
  const custom = flags.layers !== undefined || flags.heads !== undefined || flags.dim !== undefined;
  if (flags.config !== undefined && custom) throw new CliError('bench: --config replaces --layers/--heads/--dim; give one or the other.');
  const fromFile = flags.config !== undefined ? await readConfigFile(flags.config) : undefined;
  const presets = fromFile ? [flags.config as string] : custom ? ['custom'] : flags.preset === 'all' ? [...PRESET_NAMES] : [flags.preset];
  if (!fromFile) for (const p of presets) if (p !== 'custom' && !(PRESET_NAMES as readonly string[]).includes(p)) throw new CliError(`bench: unknown --preset '${p}'; choose ${PRESET_NAMES.join(', ')} or all.`);
  const family: ModelFamily = fromFile ? fromFile.model_type : flags.family;
  const B = flags.batch, T = flags.ctx, steps = Math.max(1, flags.steps);
  if (!['both', 'fused', 'stock'].includes(flags.kernels)) throw new CliError(`bench: --kernels must be both, fused or stock, got '${flags.kernels}'.`);
  if (flags.kernels === 'fused' && !fusedKernelsAvailable()) throw new CliError(`bench: --kernels fused needs the webgpu backend (this run is on ${info.backend}).`);
  const paths: KernelPath[] = (flags.kernels === 'both' ? ['stock', 'fused'] : [flags.kernels]).filter((p: string) => p === 'stock' || fusedKernelsAvailable()) as KernelPath[];
  const gcs = flags['gradient-checkpointing'] ? (flags['compare-checkpointing'] ? [false, true] : [true]) : flags['compare-checkpointing'] ? [false, true] : [false];
  const variants: Variant[] = paths.flatMap((path) => gcs.map((gc) => ({ path, gc })));
  const loraTargets: string[] = flags['lora-targets'] ? String(flags['lora-targets']).split(',').map((t) => t.trim()).filter(Boolean) : benchLoraTargets(fromFile ?? configFor(presets[0], { ...flags }));
  const notes: string[] = [];
  if (modes.includes('lora')) notes.push(`lora: r ${BENCH_LORA.r}, alpha ${BENCH_LORA.alpha} on ${loraTargets.join(', ')}; only the adapters train.`);
  if (gcs.includes(true)) notes.push('+gc: gradient checkpointing (each block recomputed in the backward pass).');
  if (storageBuffers) notes.push(`device: ${storageBuffers} storage buffers per shader stage (the adapter's limit; both paths).`);
  notes.push(`engine by default on ${info.backend}: ${describeEngine(info.engine)} (${info.engine.path}); paths measured: ${paths.join(', ')}.`);
  if (!fusedKernelsAvailable()) notes.push(`fused kernels need the webgpu backend; on ${info.backend} only the stock path is measured.`);
  const results: BenchResult[] = [];
  for (const p of presets) {
    const config = fromFile ?? configFor(p, { ...flags });
    for (const mode of modes) {
      // Planned before the first dispatch: the estimate of each variant, and a refusal when one of its tensors exceeds a binding limit.
      const estimates = new Map<string, number>();
      for (const v of variants) {
        const est = estimateTrainingMemory(config, { batchSize: B, seqLen: T, lora: mode === 'lora' ? { r: BENCH_LORA.r, targets: loraTargets } : undefined, path: v.path, gradientCheckpointing: v.gc });
        if (info.limits) {
          const fit = checkFitsAdapter(est, info.limits);
          if (!fit.ok) throw new CliError(`bench: ${p} (${mode}, ${variantName(v)}, batch ${B} x ${T}) cannot run on this adapter, refused before the first step: ${fit.message}`);
        }
        estimates.set(variantName(v), est.total);
      }
      if (!flags.json) console.error(`bench: ${p} (${family}, ${mode}), batch ${B} x ${T}, ${steps} timed steps per path...`);
      results.push(...await measure(p, config, B, T, steps, variants, mode, loraTargets, estimates));
    }
  }
  if (flags.json) {
    console.log(JSON.stringify({ backend: info.backend, engine: info.engine.path, adapter: info.adapter ?? null, limits: info.limits ?? null, batch: B, ctx: T, family, notes, results }, null, 2));
  } else {
    console.log(`adapter: ${describeBackend(info)}`);
    if (info.adapter?.isSoftware) console.log('(software adapter: use the ratios, not the absolute numbers)');
    if (info.limits) console.log(`binding limit: maxStorageBufferBindingSize ${formatBytes(info.limits.maxStorageBufferBindingSize)}`);
    const vocab = fromFile ? fromFile.vocab_size : flags.vocab;
    console.log(`batch ${B} x ctx ${T}, vocab ${vocab}, family ${family}${fromFile ? `, config ${flags.config}` : ''}; median of ${steps} interleaved steps after warm-up`);
    for (const n of notes) console.log(n);
    console.log('');
    console.log(table(results));
  }
  return 0;
}
