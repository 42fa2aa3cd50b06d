/**
 * `webtune bench`: what one training step costs, stock tfjs ops against the fused WebGPU
 * kernels, in one run so the two are compared on the same adapter under the same conditions.
 *
 * A step is the real thing: model.forward (training), the masked cross-entropy of
 * src/train/loss.ts, gradients of every trainable parameter, global-norm clipping (1.0) and
 * AdamW, ending with one readback of the loss and gradient norm (as the trainer does). Each path
 * is the same model bound to one engine (src/engine, `model.withEngine`): its ops run the
 * forward and the loss, its update rule clips and applies AdamW. 'stock' is stockEngine (stock
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
import { presetConfig, type ModelConfig } from '../../models/config.js';
import { maskedCrossEntropy } from '../train/loss.js';
import { adamwInit, adamwDispose } from '../train/optim.js';
import { fusedKernelsAvailable, startGpuMeter, flush } from '../../kernels/index.js';
import { applyLora } from '../nn/lora.js';

const PRESET_NAMES = ['nano', 'micro', 'small'] as const;

/** LoRA as the bench measures it: every linear of the blocks, PEFT names, r 8, alpha 16. */
export const BENCH_LORA = {
  r: 8, alpha: 16,
  targets: { gpt2: ['c_attn', 'c_proj', 'c_fc'], llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
} as const;

const SPEC = {
  preset: { type: 'string', help: `preset to measure (${PRESET_NAMES.join(', ')}, or 'all')`, default: 'all' },
  family: { type: 'string', help: 'model family: gpt2 or llama', default: 'gpt2' },
  layers: { type: 'number', help: 'custom model: layers (with --dim, --heads ...; replaces the presets)' },
  heads: { type: 'number', help: 'custom model: attention heads' },
  dim: { type: 'number', help: 'custom model: width' },
  ctx: { type: 'number', help: 'sequence length of the benchmark batch', default: 128 },
  batch: { type: 'number', help: 'rows per batch', default: 8 },
  vocab: { type: 'number', help: 'vocabulary size', default: 512 },
  steps: { type: 'number', help: 'timed steps per path (interleaved)', default: 5 },
  mode: { type: 'string', help: "full (every parameter trained), lora (r 8, alpha 16 on every linear of the blocks), or 'both'", default: 'both' },
  backend: { type: 'string', help: 'webgpu or cpu', default: 'webgpu' },
  json: { type: 'boolean', help: 'print one JSON object instead of a table' },
} as const;

/** The engine each measured path is. */
const ENGINES: Record<KernelPath, Engine> = { stock: stockEngine, fused: fusedEngine };

export interface BenchResult {
  preset: string;
  mode: 'full' | 'lora';
  path: KernelPath;
  tokensPerSecond: number;
  msPerStep: number;
  dispatchesPerStep: number;
  peakBytes: number;
  firstStepMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The preset's config, or with name 'custom' a model of the given layers/heads/dim (vocab and ctx apply to both). */
export function configFor(name: string, flags: { family?: string; layers?: number; heads?: number; dim?: number; vocab?: number; ctx?: number }): ModelConfig {
  const family = flags.family === 'llama' ? 'llama' : 'gpt2';
  const base = presetConfig((name === 'custom' ? 'micro' : name) as any, { vocabSize: flags.vocab, family }) as any;
  if (name !== 'custom') return base;
  const dim = flags.dim ?? (family === 'gpt2' ? base.n_embd : base.hidden_size);
  const heads = flags.heads ?? (family === 'gpt2' ? base.n_head : base.num_attention_heads);
  const layers = flags.layers ?? (family === 'gpt2' ? base.n_layer : base.num_hidden_layers);
  if (dim % heads !== 0) throw new CliError(`bench: --dim ${dim} is not a multiple of --heads ${heads}.`);
  if (family === 'gpt2') return { ...base, n_embd: dim, n_head: heads, n_layer: layers, n_positions: Math.max(base.n_positions, flags.ctx ?? 0) };
  const kv = heads % 2 === 0 ? heads / 2 : heads;
  return {
    ...base, hidden_size: dim, num_attention_heads: heads, num_key_value_heads: kv, head_dim: dim / heads, num_hidden_layers: layers,
    intermediate_size: Math.round((dim * 8) / 3 / 8) * 8, max_position_embeddings: Math.max(base.max_position_embeddings, flags.ctx ?? 0),
  };
}

/**
 * One training step of the model's trainable parameters on a path's engine (see the file
 * comment); resolves with its wall time in ms and the loss. Both paths share the model's
 * variables and one AdamW state.
 */
export function makeStep(model: CausalLM, B: number, T: number, V: number) {
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % V);
  const inputIds = tf.tensor2d(ids, [B, T], 'int32');
  const labels = tf.tensor2d(ids, [B, T], 'int32');      // every position trained
  const attentionMask = tf.ones([B, T], 'int32') as tf.Tensor2D;
  const positionIds = tf.tensor2d(Int32Array.from({ length: B * T }, (_, i) => i % T), [B, T], 'int32');
  const params = model.trainableParams();
  const byVarName = new Map([...params].map(([n, v]) => [v.name, n]));
  const state = adamwInit(params);
  const bound: Record<KernelPath, CausalLM> = { stock: model.withEngine(ENGINES.stock), fused: model.withEngine(ENGINES.fused) };
  const step = async (path: KernelPath): Promise<{ ms: number; loss: number }> => {
    const m = bound[path];
    const t0 = performance.now();
    const { value, grads: g } = tf.variableGrads(() => {
      const logits = m.forward(inputIds, { attentionMask, positionIds, training: true });
      return maskedCrossEntropy(logits, labels, m.engine.ops).loss;
    }, [...params.values()]);
    const grads = new Map(Object.entries(g).map(([k, t]) => [byVarName.get(k) ?? k, t]));
    const update = m.engine.updateRule.prepare(grads, 1.0);
    update.apply(state, params, { lr: 1e-4, weightDecay: 0 });
    const readout = tf.stack([value, update.totalNorm]);
    update.dispose();
    const [loss] = await readout.data();
    tf.dispose([readout, value, ...grads.values()]);
    if (!Number.isFinite(loss)) throw new Error(`bench: non-finite loss on the ${path} path`);
    return { ms: performance.now() - t0, loss };
  };
  const dispose = () => { tf.dispose([inputIds, labels, attentionMask, positionIds]); adamwDispose(state); };
  return { step, dispose };
}

async function measure(presetName: string, config: ModelConfig, B: number, T: number, steps: number, paths: KernelPath[], mode: 'full' | 'lora'): Promise<BenchResult[]> {
  const model = CausalLM.create(config, { seed: 0 });
  if (mode === 'lora') applyLora(model, { r: BENCH_LORA.r, alpha: BENCH_LORA.alpha, targetModules: [...BENCH_LORA.targets[config.model_type]] });
  const V = config.vocab_size;
  const { step, dispose } = makeStep(model, B, T, V);
  try {
    const first: Record<string, number> = {};
    for (const p of paths) first[p] = (await step(p)).ms;                  // compiles the pipelines
    for (const p of paths) await step(p);                             // one more warm-up each
    const meters: Record<string, { dispatches: number; peakBytes: number }> = {};
    for (const p of paths) {
      await flush();
      const m = startGpuMeter();
      await step(p);
      meters[p] = m.stop();
    }
    const times: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p, []]));
    for (let i = 0; i < steps; i++) for (const p of (i % 2 ? [...paths].reverse() : paths)) times[p].push((await step(p)).ms);
    return paths.map((p) => {
      const ms = median(times[p]);
      return {
        preset: presetName, mode, path: p, tokensPerSecond: (B * T) / (ms / 1000), msPerStep: ms,
        dispatchesPerStep: meters[p].dispatches, peakBytes: meters[p].peakBytes, firstStepMs: first[p],
      };
    });
  } finally {
    dispose();
    model.dispose();
  }
}

function table(results: BenchResult[]): string {
  const head = ['preset', 'mode', 'path', 'tokens/s', 'ms/step', 'dispatches', 'peak MiB', 'first step ms'];
  const rows = results.map((r) => [r.preset, r.mode, r.path, r.tokensPerSecond.toFixed(0), r.msPerStep.toFixed(1), String(r.dispatchesPerStep),
    (r.peakBytes / 2 ** 20).toFixed(1), r.firstStepMs.toFixed(0)]);
  const ratios: string[][] = [];
  for (const r of results) {
    if (r.path !== 'fused') continue;
    const s = results.find((x) => x.preset === r.preset && x.mode === r.mode && x.path === 'stock');
    if (!s) continue;
    ratios.push([r.preset, r.mode, 'fused/stock', (r.tokensPerSecond / s.tokensPerSecond).toFixed(2) + 'x', (r.msPerStep / s.msPerStep).toFixed(2) + 'x',
      (r.dispatchesPerStep / s.dispatchesPerStep).toFixed(3) + 'x', (r.peakBytes / s.peakBytes).toFixed(2) + 'x', (r.firstStepMs / s.firstStepMs).toFixed(2) + 'x']);
  }
  const all = [head, ...rows, ...ratios];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt), ...(ratios.length ? ['', ...ratios.map(fmt)] : [])].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('bench', argv, SPEC as any, 'Tokens/s, dispatches and peak memory per training step: stock tfjs ops vs fused WebGPU kernels.') as any;
  if (!flags) return 0;
  const backendName = flags.backend as BackendName;
  if (backendName !== 'webgpu' && backendName !== 'cpu') throw new CliError(`bench: --backend must be webgpu or cpu, got '${flags.backend}'.`);
  if (flags.family !== 'gpt2' && flags.family !== 'llama') throw new CliError(`bench: --family must be gpt2 or llama, got '${flags.family}'.`);
  const info = await initBackend({ prefer: backendName, strict: true });
  if (info.backend === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  const storageBuffers = info.limits?.maxStorageBuffersPerShaderStage ?? 0;
  const modes: Array<'full' | 'lora'> = flags.mode === 'both' ? ['full', 'lora'] : [flags.mode];
  for (const m of modes) if (m !== 'full' && m !== 'lora') throw new CliError(`bench: --mode must be full, lora or both, got '${flags.mode}'.`);
  const custom = flags.layers !== undefined || flags.heads !== undefined || flags.dim !== undefined;
  const presets = custom ? ['custom'] : flags.preset === 'all' ? [...PRESET_NAMES] : [flags.preset];
  for (const p of presets) if (p !== 'custom' && !(PRESET_NAMES as readonly string[]).includes(p)) throw new CliError(`bench: unknown --preset '${p}'; choose ${PRESET_NAMES.join(', ')} or all.`);
  const B = flags.batch, T = flags.ctx, steps = Math.max(1, flags.steps);
  const paths: KernelPath[] = fusedKernelsAvailable() ? ['stock', 'fused'] : ['stock'];
  const notes: string[] = [];
  if (modes.includes('lora')) notes.push(`lora: r ${BENCH_LORA.r}, alpha ${BENCH_LORA.alpha} on ${BENCH_LORA.targets[flags.family as 'gpt2' | 'llama'].join(', ')}; only the adapters train.`);
  if (storageBuffers) notes.push(`device: ${storageBuffers} storage buffers per shader stage (the adapter's limit; both paths).`);
  notes.push(`engine by default on ${info.backend}: ${describeEngine(info.engine)} (${info.engine.path}); paths measured: ${paths.join(', ')}.`);
  if (!fusedKernelsAvailable()) notes.push(`fused kernels need the webgpu backend; on ${info.backend} only the stock path is measured.`);
  const results: BenchResult[] = [];
  for (const p of presets) {
    const config = configFor(p, { ...flags });
    for (const mode of modes) {
      if (!flags.json) console.error(`bench: ${p} (${flags.family}, ${mode}), batch ${B} x ${T}, ${steps} timed steps per path...`);
      results.push(...await measure(p, config, B, T, steps, paths, mode));
    }
  }
  if (flags.json) {
    console.log(JSON.stringify({ backend: info.backend, engine: info.engine.path, adapter: info.adapter ?? null, batch: B, ctx: T, family: flags.family, notes, results }, null, 2));
  } else {
    console.log(`adapter: ${describeBackend(info)}`);
    if (info.adapter?.isSoftware) console.log('(software adapter: use the ratios, not the absolute numbers)');
    console.log(`batch ${B} x ctx ${T}, vocab ${flags.vocab}, family ${flags.family}; median of ${steps} interleaved steps after warm-up`);
    for (const n of notes) console.log(n);
    console.log('');
    console.log(table(results));
  }
  return 0;
}
