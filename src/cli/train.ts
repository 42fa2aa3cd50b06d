/**
 * `webtune train`: supervised fine-tuning (or pre-training with --mask all) from the terminal.
 *
 *   webtune train --preset micro --data demo/data/pretrain.jsonl --mask all --packing --max-length 128 --steps 600 --out out/base
 *   webtune train --model models/base --data demo/data/train.jsonl --eval-data demo/data/valid.jsonl --out out/sft
 *
 * What it writes into --out:
 *   config.json, model.safetensors        the model, as transformers' save_pretrained writes it
 *   tokenizer.json, tokenizer_config.json the tokenizer, with the chat template used as `chat_template`
 *   generation_config.json                stop ids (eos and the template's end-of-turn token)
 *   webtune_run.json                      the run's flags as given and as used, defaults filled in (read by `webtune compare`)
 *   metrics.jsonl                         one JSON line per step ({"type":"step",...}), per skipped step ({"type":"skip",...}) and per eval ({"type":"eval",...})
 *   loss.svg                              the loss curve (train and eval)
 *   data_problems.txt                     every bad row and dropped example (file:line: what is wrong), when there are any
 *   .webtune-train.lock                   while the run lives: a second run on the folder is refused (see out_dir.ts)
 * With --lora-r the base weights stay frozen and the output is a PEFT adapter directory instead of
 * the model files (adapter_config.json + adapter_model.safetensors, plus the tokenizer files), which
 * `webtune eval --adapter`, the demo and PEFT's `PeftModel.from_pretrained` load on top of the base.
 * --lora-modules-to-save adds whole modules to the adapter (PEFT modules_to_save), e.g. the token
 * embedding when the data's chat markers are tokens the base model never learned.
 *
 *   checkpoint-<step>/                    resumable checkpoints (model + optimizer + trainer state + the
 *                                         run's flags): every --save-every steps and on Ctrl-C; removed
 *                                         when the run completes unless --keep-checkpoints
 *
 * A checkpoint directory is written under a temporary name and renamed when complete, and an older
 * one is removed only after the newer one exists, so a crash at any moment leaves the last good
 * checkpoint; SIGTERM saves one like the first Ctrl-C. Free space is checked before the first
 * step; a failed final save keeps everything and saves the trained state where it fits. A run
 * whose steps keep coming out non-finite stops with an error (--max-consecutive-skips).
 * `--resume DIR` (a checkpoint-<step> directory, or an --out directory holding one) continues the
 * run exactly: the flags saved in the checkpoint are used, and flags given on the command line
 * override them (e.g. a larger --steps to extend it).
 *
 * Bad data rows are skipped and listed (file:line field message) at the end; --strict-data stops
 * at the first one instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { parseFlags, CliError, UsageError, type Flags } from './args.js';
import { DATA_TOOL_FLAGS, dataTools, filterReport } from './data_flags.js';
import { ARGS_FILE, RUN_FILE, MB, checkFreeSpace, disk, openOutDir, runFolder, type OutLock } from './out_dir.js';
import { Progress, formatDuration } from './progress.js';
import { lossCurveSvg, type Point } from './svg.js';
import { initBackend, describeBackend, type BackendName } from '../backend/index.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { resolveTokenizer, resolveTemplate } from './eval.js';
import { MASK_MODES, type MaskMode, type TokenizedExample } from '../data/labels.js';
import { prepareDataset, type PipelineSource, type PreparedDataset } from '../data/pipeline.js';
import { iterateBatches, padBatch, type Batch } from '../data/batch.js';
import type { DatasetSummary } from '../data/summary.js';
import { loadModel } from '../io/checkpoint.js';
import { applyLora, loraState, loraTrainableReport, type LoraConfig } from '../nn/lora.js';
import { saveTrainerCheckpoint, resumeTrainer } from '../io/trainer_checkpoint.js';
import { saveModelFiles, saveTokenizerFiles } from '../io/model_files.js';
import type { RunFolder, CheckpointEntry } from '../io/run_folder.js';
import type { FileSink } from '../io/files.js';
import { Trainer, type TrainerOptions, type TrainerEvent } from '../train/trainer.js';
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig, dims, type PresetName, type ModelConfig } from '../../models/config.js';
import { isModelFamily, MODEL_TYPES, type ModelFamily } from '../../models/families/index.js';
import type { KernelChoice } from '../engine/index.js';

const PRESET_NAMES: PresetName[] = ['nano', 'micro', 'small'];

export const TRAIN_FLAGS = {
  data: { type: 'string', help: '[required] training data: FILE, or FILE:weight,FILE:weight for a weighted mixture (JSONL: messages, prompt/completion, text, Alpaca)' },
  template: { type: 'string', help: 'chat template: built-in name (chatml, zephyr, llama3, ...), .jinja file or tokenizer_config.json; default: the tokenizer\'s chat_template, else chatml' },
  tokenizer: { type: 'string', help: 'tokenizer directory; default: the --model directory\'s tokenizer, else the bundled one' },
  model: { type: 'string', help: '[--model or --preset] start from this Hugging Face checkpoint directory (GPT-2 or Llama)' },
  preset: { type: 'string', help: `[--model or --preset] start from a freshly initialised preset: ${PRESET_NAMES.join(', ')}` },
  family: { type: 'string', default: 'gpt2', help: 'model family of --preset: gpt2 or llama' },
  mask: { type: 'string', default: 'assistant', help: `which tokens are trained: ${MASK_MODES.join(', ')} ('all' for plain-text pre-training)` },
  'max-length': { type: 'number', help: 'maximum tokens per example (longer ones are truncated); default: the model\'s context length' },
  packing: { type: 'boolean', help: 'pack several examples into each row of --max-length tokens (segment-masked attention)' },
  'lora-r': { type: 'number', help: 'train a LoRA adapter of this rank instead of every weight (output: a PEFT adapter directory)' },
  'lora-alpha': { type: 'number', help: 'LoRA alpha (scaling = alpha / r); default 2 * r' },
  'lora-dropout': { type: 'number', default: 0, help: 'LoRA dropout on the adapter input, training only' },
  'lora-targets': { type: 'string', help: 'LoRA target modules: comma-separated names or globs (c_attn,c_proj / q_proj,v_proj), or all-linear; default: PEFT\'s per-family default' },
  'lora-modules-to-save': { type: 'string', help: 'modules trained in full beside the LoRA adapter and saved in it (PEFT modules_to_save): comma-separated names, e.g. wte,lm_head (GPT-2) or embed_tokens,lm_head (Llama) when the data uses tokens the base never learned (chat markers). With tied embeddings each listed module trains its own copy, as in PEFT (wte alone leaves the head reading the old rows)' },
  rslora: { type: 'boolean', help: 'rank-stabilised LoRA: scaling = alpha / sqrt(r)' },
  'neftune-alpha': { type: 'number', help: 'NEFTune noise alpha on the token embeddings (e.g. 5); off by default' },
  'gradient-checkpointing': { type: 'boolean', help: "recompute each block's forward in the backward pass: much less activation memory, about one more forward per step" },
  steps: { type: 'number', help: 'optimizer steps to train (exclusive with --epochs)' },
  epochs: { type: 'number', help: 'epochs over the training data (default 1 when --steps is not given; may be fractional)' },
  lr: { type: 'number', default: 1e-3, help: 'peak learning rate (tiny models from scratch like ~1e-3; pretrained larger ones 1e-5..1e-4)' },
  schedule: { type: 'string', default: 'linear', help: 'learning-rate schedule after warmup: linear, cosine or constant' },
  warmup: { type: 'number', default: 0, help: 'warmup: steps (an integer >= 1), or a fraction of the run (0 < W < 1)' },
  'batch-size': { type: 'number', default: 8, help: 'rows per micro-batch' },
  'grad-accum': { type: 'number', default: 1, help: 'micro-batches per optimizer step (gradient accumulation)' },
  'weight-decay': { type: 'number', default: 0, help: 'AdamW decoupled weight decay (norms, biases and embeddings are not decayed)' },
  'max-grad-norm': { type: 'number', default: 1, help: 'global gradient-norm clipping threshold (0 disables)' },
  'eval-data': { type: 'string', help: 'evaluation data (same format); eval loss and token accuracy are logged' },
  'eval-every': { type: 'number', help: 'evaluate every N steps (needs --eval-data; default: only at the end)' },
  'save-every': { type: 'number', help: 'write a resumable checkpoint-<step> every N steps (default: only on Ctrl-C; the final model is always written)' },
  'save-total-limit': { type: 'number', default: 1, help: 'checkpoint-<step> directories kept (the newest ones)' },
  'keep-checkpoints': { type: 'boolean', help: 'keep checkpoint-<step> directories after the run completes (a final one is written), so the run can be extended with --resume' },
  resume: { type: 'string', help: 'continue the run saved in this checkpoint directory (or the newest checkpoint-<step> inside it)' },
  seed: { type: 'number', default: 42, help: 'seed of initialisation, shuffling, mixture draws and noise' },
  backend: { type: 'string', default: 'webgpu', help: 'webgpu (falls back to cpu, announced) or cpu' },
  kernels: { type: 'string', default: 'auto', help: 'WebGPU ops: fused (custom WGSL kernels), stock (tfjs ops) or auto (fused where available)' },
  'strict-data': { type: 'boolean', help: 'stop at the first bad data row (default: skip bad rows and list them at the end)' },
  'special-tokens-in-text': { type: 'string', default: 'keep', help: 'special-token text typed inside a message (e.g. "<|im_end|>"): keep (encoded as the special token, with a warning), refuse (the row is left out and listed) or literal (encoded as ordinary text)' },
  'max-consecutive-skips': { type: 'number', default: 5, help: 'stop with an error after this many steps in a row were skipped for a non-finite loss or gradient (a diverged run)' },
  'log-every': { type: 'number', default: 10, help: 'without a terminal: print a progress line every N steps' },
  ...DATA_TOOL_FLAGS,
  out: { type: 'string', help: '[required] output directory (with --resume: default the original run\'s)' },
} as const;

export type TrainFlags = Flags<typeof TRAIN_FLAGS>;

const SUMMARY = 'Fine-tune (or pre-train) a causal language model; writes a Hugging Face checkpoint, metrics.jsonl and loss.svg.';

const METRICS_FILE = 'metrics.jsonl';
/** Every data problem of the run, one per line (the terminal shows the first MAX_PROBLEMS_SHOWN). */
const PROBLEMS_FILE = 'data_problems.txt';
const MAX_PROBLEMS_SHOWN = 20;
/** Flags that decide what is trained: a resumed run keeps the checkpoint's. */
const MODE_FLAGS = ['model', 'preset', 'family', 'lora-r', 'lora-alpha', 'lora-targets', 'lora-modules-to-save', 'rslora'] as const;

/** --data: `FILE`, `FILE:weight` and comma-separated lists of either. */
export function parseDataSpec(spec: string, flag = '--data'): PipelineSource[] {
  const items = spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (!items.length) throw new CliError(`train: ${flag} is empty`);
  const out = items.map((item) => {
    const m = /^(.*):([^:/\\]*)$/.exec(item);
    if (m && m[1] && /^[0-9.eE+-]+$/.test(m[2])) {
      const weight = Number(m[2]);
      if (!Number.isFinite(weight) || weight <= 0) throw new CliError(`train: ${flag}: weight of '${m[1]}' must be a positive number, got '${m[2]}'`);
      return { file: m[1], weight } as PipelineSource;
    }
    return { file: item } as PipelineSource;
  });
  const weighted = out.filter((s) => s.weight !== undefined).length;
  if (weighted > 0 && weighted < out.length) throw new CliError(`train: ${flag}: give a weight to every file of a mixture or to none ('${spec}')`);
  for (const s of out) {
    const file = s.file as string;
    if (!fs.existsSync(file)) throw new CliError(`train: ${flag}: no such file '${file}'`);
    if (fs.statSync(file).isDirectory()) throw new CliError(`train: ${flag}: '${file}' is a directory; give the data file (.jsonl or .json) inside it`);
  }
  return out;
}

/** Flag combinations that cannot work, as clear errors (before any file is read). */
export function validateFlags(f: TrainFlags): void {
  const bad = (msg: string) => { throw new UsageError(`train: ${msg}`); };
  if (!f.out) bad('missing required flag --out (the output directory). Run \'webtune train --help\'.');
  if (!f.data) bad('missing required flag --data. Run \'webtune train --help\'.');
  if (f.model && f.preset) bad('give --model or --preset, not both');
  if (!f.model && !f.preset) bad('give --model DIR (a checkpoint to start from) or --preset NAME (a fresh model)');
  if (f.preset && !PRESET_NAMES.includes(f.preset as PresetName)) bad(`--preset must be one of ${PRESET_NAMES.join(', ')}, got '${f.preset}'`);
  if (!isModelFamily(f.family)) bad(`--family must be ${MODEL_TYPES.join(' or ')}, got '${f.family}'`);
  if (f.steps !== undefined && f.epochs !== undefined) bad('give --steps or --epochs, not both');
  if (f.steps !== undefined && (!Number.isInteger(f.steps) || f.steps < 1)) bad(`--steps must be a positive integer, got ${f.steps}`);
  if (f.epochs !== undefined && !(f.epochs > 0)) bad(`--epochs must be positive, got ${f.epochs}`);
  if (!MASK_MODES.includes(f.mask as MaskMode)) bad(`--mask must be one of ${MASK_MODES.join(', ')}, got '${f.mask}'`);
  if (!['linear', 'cosine', 'constant'].includes(f.schedule as string)) bad(`--schedule must be linear, cosine or constant, got '${f.schedule}'`);
  if (!['webgpu', 'cpu'].includes(f.backend as string)) bad(`--backend must be webgpu or cpu, got '${f.backend}'`);
  if (!['auto', 'fused', 'stock'].includes(f.kernels as string)) bad(`--kernels must be auto, fused or stock, got '${f.kernels}'`);
  const posInt = (name: keyof TrainFlags) => {
    const v = f[name] as number | undefined;
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) bad(`--${String(name)} must be a positive integer, got ${v}`);
  };
  for (const k of ['batch-size', 'grad-accum', 'max-length', 'eval-every', 'save-every', 'save-total-limit', 'log-every'] as const) posInt(k);
  if (!(f.lr! > 0)) bad(`--lr must be positive, got ${f.lr}`);
  if (f.warmup! < 0 || (f.warmup! >= 1 && !Number.isInteger(f.warmup))) bad(`--warmup must be a whole number of steps or a fraction in (0, 1), got ${f.warmup}`);
  if (f['weight-decay']! < 0) bad(`--weight-decay must be >= 0, got ${f['weight-decay']}`);
  if (f['max-grad-norm']! < 0) bad(`--max-grad-norm must be >= 0, got ${f['max-grad-norm']}`);
  if (f['neftune-alpha'] !== undefined && !(f['neftune-alpha'] > 0)) bad(`--neftune-alpha must be positive, got ${f['neftune-alpha']}`);
  if (f['lora-r'] !== undefined && (!Number.isInteger(f['lora-r']) || f['lora-r'] < 1)) bad(`--lora-r must be a positive integer, got ${f['lora-r']}`);
  if (f['lora-r'] === undefined) {
    for (const k of ['lora-alpha', 'lora-targets', 'lora-modules-to-save'] as const) if (f[k] !== undefined) bad(`--${k} needs --lora-r (the adapter rank)`);
    if (f['lora-dropout']) bad('--lora-dropout needs --lora-r (the adapter rank)');
    if (f.rslora) bad('--rslora needs --lora-r (the adapter rank)');
  }
  if (f['lora-modules-to-save'] !== undefined && moduleList(f['lora-modules-to-save']).length === 0) bad('--lora-modules-to-save needs at least one module name (e.g. wte or embed_tokens,lm_head)');
  if (f['lora-alpha'] !== undefined && !(f['lora-alpha'] > 0)) bad(`--lora-alpha must be positive, got ${f['lora-alpha']}`);
  if (!(f['lora-dropout']! >= 0 && f['lora-dropout']! < 1)) bad(`--lora-dropout must be in [0, 1), got ${f['lora-dropout']}`);
  if (f['eval-every'] !== undefined && !f['eval-data']) bad('--eval-every needs --eval-data');
  if (!Number.isInteger(f.seed) || f.seed! < 0) bad(`--seed must be a non-negative integer, got ${f.seed}`);
  if (!['keep', 'refuse', 'literal'].includes(f['special-tokens-in-text'] as string)) bad(`--special-tokens-in-text must be keep, refuse or literal, got '${f['special-tokens-in-text']}'`);
  posInt('max-consecutive-skips');
}

/** A comma-separated list of module names, trimmed, empty entries dropped. */
function moduleList(spec: string): string[] {
  return spec.split(',').map((x) => x.trim()).filter(Boolean);
}

/** The newest-written checkpoint-<step> directory inside `dir` (a resumed run's outranks the steps it abandoned), or undefined. */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  return (await runFolder(dir).latest())?.location;
}

/** `--resume DIR`: DIR itself when it holds trainer_state.json, else its newest checkpoint-<step>. */
async function resolveResume(dir: string): Promise<string> {
  if (fs.existsSync(path.join(dir, 'trainer_state.json'))) return dir;
  const latest = await latestCheckpoint(dir);
  if (latest && fs.existsSync(path.join(latest, 'trainer_state.json'))) return latest;
  throw new CliError(`train: --resume ${dir}: no trainer_state.json there and no checkpoint-<step> directory inside it (checkpoints are written every --save-every steps and on Ctrl-C)`);
}

function maxPositions(config: ModelConfig): number {
  return dims(config).maxPositions;
}

/** The batches of one epoch: a seeded shuffle per (seed, epoch), then padded or packed rows. */
function epochBatches(examples: readonly TokenizedExample[], epoch: number, o: { seed: number; batchSize: number; padTokenId: number; packing: boolean; seqLen: number; shuffle: boolean }): Batch[] {
  return [...iterateBatches(examples, {
    batchSize: o.batchSize, padTokenId: o.padTokenId, seed: o.seed, firstEpoch: epoch, epochs: 1, shuffle: o.shuffle,
    ...(o.packing ? { packing: 'first_fit' as const, seqLen: o.seqLen } : {}),   // padded rows: to each batch's longest
  })];
}

/** Eval batches in file order (no shuffling), padded to each batch's longest row. */
function evalBatches(examples: readonly TokenizedExample[], batchSize: number, padTokenId: number): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < examples.length; i += batchSize) out.push(padBatch(examples.slice(i, i + batchSize), { padTokenId }));
  return out;
}

/** Lines of bad rows and dropped examples, for the end-of-run report. */
function dataProblems(summary: DatasetSummary): string[] {
  const lines: string[] = [];
  for (const e of summary.rowErrors) lines.push(e.message); // 'file:line: field "...": what is wrong'
  for (const d of summary.dropped.rows) {
    const where = d.file !== undefined ? `${String(d.file)}:${String(d.line)}` : String(d.id ?? '?');
    lines.push(`${where} dropped (${d.reason}): ${d.detail}`);
  }
  return lines;
}

interface MetricsLine { type: string; step: number; [k: string]: unknown }

/** metrics.jsonl lines (skipping unreadable ones) */
function readMetrics(file: string): MetricsLine[] {
  if (!fs.existsSync(file)) return [];
  const out: MetricsLine[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as MetricsLine); } catch { /* a line cut by a crash */ }
  }
  return out;
}

/** Writes a file atomically: temporary name, then rename. */
function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.partial-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

export async function run(argv: string[]): Promise<number> {
  // --resume: the saved flags first, then the ones given here (later flags win).
  const first = parseFlags('train', argv, TRAIN_FLAGS, SUMMARY);
  if (!first) return 0;
  let resumeDir: string | undefined;
  let f: TrainFlags = first;
  let savedArgs: string[] = [];
  if (first.resume) {
    resumeDir = await resolveResume(first.resume);
    savedArgs = readSavedArgs(resumeDir);
    const merged = parseFlags('train', [...savedArgs, ...argv], TRAIN_FLAGS, SUMMARY)!;
    // --steps given now replaces --epochs saved then (extending a run), and the other way round.
    const given = new Set(argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]));
    f = { ...merged, epochs: given.has('steps') ? undefined : merged.epochs, steps: given.has('epochs') ? undefined : merged.steps };
    checkSameMode(resumeDir, parseFlags('train', savedArgs, TRAIN_FLAGS, SUMMARY)!, merged, given);
  }
  validateFlags(f);
  const tools = dataTools('train', f);
  const trainSources = parseDataSpec(f.data!);
  const evalSources = f['eval-data'] ? parseDataSpec(f['eval-data'], '--eval-data') : undefined;
  const savedArgv = argv.filter((a, i) => !(a === '--resume' || a.startsWith('--resume=') || argv[i - 1] === '--resume'));
  const argsToSave = [...savedArgs, ...savedArgv];

  const outDir = f.out!;
  const tty = process.stdout.isTTY === true;
  const log = (s: string) => console.log(s);

  // 1. Backend.
  // Its engine (fused kernels on WebGPU unless --kernels stock) is what the model is bound to.
  const backend = await initBackend({ prefer: f.backend as BackendName, kernels: f.kernels as KernelChoice })
    .catch((e: Error) => { throw new CliError(`train: --backend ${f.backend} --kernels ${f.kernels}: ${e.message}`); });
  log(`backend: ${describeBackend(backend)}`);

  let trainer: Trainer | undefined;
  let model: CausalLM | undefined;
  let lock: OutLock | undefined;
  // SIGINT (Ctrl-C) and SIGTERM (timeout, docker stop, batch schedulers) alike: the first stops
  // after the current step and saves a checkpoint; a second one quits at once.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (trainer && !interrupted) {
      process.stderr.write(`\nwebtune: ${signal}: stopping after this step to save a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again quits without saving)\n`);
      interrupted = signal;
      trainer.stop();
    } else process.exit(signalExitCode(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    // Nobody else writes this folder while we do; what an interrupted run left half-written goes.
    const opened = await openOutDir(outDir);
    lock = opened.lock;
    const folder = opened.run;
    const leftovers = opened.removed;
    if (lock.stale) log(`note: ${outDir} was locked by a run that is gone (pid ${lock.stale.pid}, started ${lock.stale.started}); taking it over`);
    if (leftovers.length) log(`note: removed what an interrupted run left half-written in ${outDir}: ${leftovers.join(', ')}`);
    // The run's flags, defaults filled in, for `webtune compare` (checkpoints keep their own copy for --resume).
    writeAtomic(path.join(outDir, RUN_FILE), JSON.stringify({ argv: argsToSave, flags: f }, null, 2) + '\n');
    fs.rmSync(path.join(outDir, PROBLEMS_FILE), { force: true }); // an earlier run's list; this run writes its own

    // 2. Tokenizer, template, model.
    const modelDir = resumeDir ?? f.model;
    const { tok, from: tokFrom } = await resolveTokenizer(f.tokenizer, resumeDir ?? f.model);
    const template = await resolveTemplate(f.template, tok);
    log(`tokenizer: ${tokFrom} (${tok.vocabSize} tokens); template: ${template.name}`);
    let config: ModelConfig;
    if (modelDir) {
      model = await loadModel(modelDir, { engine: backend.engine });
      config = model.config;
    } else {
      config = presetConfig(f.preset as PresetName, { vocabSize: tok.vocabSize, family: f.family as ModelFamily });
      model = CausalLM.create(config, { seed: f.seed, engine: backend.engine });
    }
    let lora: LoraConfig | undefined;
    if (f['lora-r'] !== undefined) {
      const targets = f['lora-targets'];
      lora = {
        r: f['lora-r'], alpha: f['lora-alpha'] ?? 2 * f['lora-r'], dropout: f['lora-dropout'], useRslora: f.rslora, seed: f.seed,
        targetModules: targets === undefined ? undefined : targets === 'all-linear' ? 'all-linear' : moduleList(targets),
        modulesToSave: f['lora-modules-to-save'] === undefined ? undefined : moduleList(f['lora-modules-to-save']),
        baseModelNameOrPath: f.model ?? null,
      };
      try {
        applyLora(model, lora);
      } catch (e) {
        throw new CliError(`train: ${(e as Error).message}`);
      }
      const saved = loraState(model)!.savedModules;
      log(`LoRA: ${loraTrainableReport(model).line}${saved.size ? `; modules_to_save trained in full: ${[...saved.keys()].join(', ')}` : ''}`);
    }
    if (modelDir) {
      const bad = await firstNonFinite(model);
      if (bad) throw new CliError(`train: ${modelDir}: weight '${bad}' holds NaN or Infinity; training cannot start from it (every step would be skipped)`);
    }
    if (config.vocab_size < tok.vocabSize) throw new CliError(`train: the model's vocab_size ${config.vocab_size} is smaller than the tokenizer's ${tok.vocabSize} tokens (${tokFrom})`);
    const positions = maxPositions(config);
    if (f['max-length'] !== undefined && f['max-length'] > positions) throw new CliError(`train: --max-length ${f['max-length']} exceeds the model's ${positions} positions`);
    const maxLength = f['max-length'] ?? Math.min(positions, tok.modelMaxLength ?? positions);
    log(`model: ${modelDir ?? `preset ${f.preset} (${f.family})`}, ${model.numParams().toLocaleString('en-US')} parameters, context ${positions}`);

    // 3. Data.
    const onRowError = f['strict-data'] ? 'stop' : 'skip';
    const specialText = f['special-tokens-in-text'];
    // Filters and the curriculum shape the training data only; eval data is read as it is.
    const prep = async (sources: PipelineSource[], shaped = false): Promise<PreparedDataset> => prepareDataset({
      sources, template, tokenizer: tok, mask: f.mask as MaskMode, maxLength, onRowError, seed: f.seed,
      ...(shaped ? { filters: dataTools('train', f).filters, curriculum: tools.curriculum } : {}),
      rejectSpecialTokenForgery: specialText === 'refuse', literalSpecialTokens: specialText === 'literal',
      ...(f.packing ? { packing: 'first_fit' as const, seqLen: maxLength } : {}),
    });
    const train = await prep(trainSources, true);
    const ts = train.summary;
    for (const line of filterReport(ts)) log(line);
    log(`data: ${ts.rows} rows -> ${train.examples.length} examples, ${ts.tokens.toLocaleString('en-US')} tokens, ${(ts.trainedFraction * 100).toFixed(1)}% trained (mask ${f.mask})` +
      `${ts.rowErrors.length ? `, ${ts.rowErrors.length} bad rows skipped` : ''}${ts.dropped.total ? `, ${ts.dropped.total} examples dropped` : ''}`);
    const evalData = evalSources ? await prep(evalSources) : undefined;
    for (const d of [train, ...(evalData ? [evalData] : [])]) {
      const fg = d.summary.forgery;
      if (!fg.rows || specialText === 'refuse') continue;
      const at = fg.rowsFlagged.slice(0, 3).map((r) => `${String(r.file)}:${String(r.line)}`).join(', ');
      console.error(`webtune train: warning: ${fg.rows} row${fg.rows === 1 ? ' holds' : 's hold'} special-token text inside a message (${Object.keys(fg.byToken).join(' ')}; ${at}${fg.rows > 3 ? ', ...' : ''}): ` +
        (specialText === 'literal' ? 'encoded as ordinary text (--special-tokens-in-text literal)'
          : 'encoded as the special tokens themselves; --special-tokens-in-text refuse leaves such rows out, literal encodes the text as ordinary text'));
    }
    const batchOpts = { seed: f.seed!, batchSize: f['batch-size']!, padTokenId: tok.padTokenId, packing: !!f.packing, seqLen: maxLength, shuffle: !tools.curriculum };
    const perEpoch = epochBatches(train.examples, 0, batchOpts).length;
    const cache = new Map<number, Batch[]>([[0, epochBatches(train.examples, 0, batchOpts)]]);
    const batchesFor = (epoch: number): Batch[] => {
      let b = cache.get(epoch);
      if (!b) { cache.clear(); b = epochBatches(train.examples, epoch, batchOpts); cache.set(epoch, b); }
      return b;
    };

    // 4. Trainer.
    const warmup = f.warmup!;
    const options: TrainerOptions = {
      train: (epoch) => batchesFor(epoch),
      batchesPerEpoch: perEpoch,
      eval: evalData ? evalBatches(evalData.examples, f['batch-size']!, tok.padTokenId) : undefined,
      lr: f.lr, schedule: f.schedule as 'linear' | 'cosine' | 'constant',
      ...(warmup >= 1 ? { warmupSteps: warmup } : warmup > 0 ? { warmupRatio: warmup } : { warmupSteps: 0 }),
      ...(f.steps !== undefined ? { maxSteps: f.steps } : { epochs: f.epochs ?? 1 }),
      gradientAccumulationSteps: f['grad-accum'], weightDecay: f['weight-decay'], maxGradNorm: f['max-grad-norm'],
      seed: f.seed, evalEvery: f['eval-every'] ?? 0, gradientCheckpointing: f['gradient-checkpointing'],
      forwardOptions: f['neftune-alpha'] ? { neftune: { alpha: f['neftune-alpha'] } } : undefined,
    };
    if (resumeDir) trainer = await resumeTrainer(resumeDir, options, model);
    else trainer = new Trainer(model, options);
    const t = trainer;
    const startStep = t.step;
    if (startStep > t.maxSteps) throw new CliError(`train: the checkpoint is at step ${startStep}, past the run's ${t.maxSteps} steps (give a larger --steps to extend it)`);
    if (startStep === t.maxSteps) log(`the checkpoint is at the run's last step ${startStep}: writing its model (give a larger --steps to extend the run)`);
    log(`training: ${t.maxSteps} steps (${perEpoch} batches of ${f['batch-size']} per epoch, accumulation ${t.gradientAccumulationSteps})` +
      `${startStep ? `, resuming at step ${startStep} from ${resumeDir}` : ''}; output ${outDir}`);
    if (resumeDir) {
      // Checkpoints of OUT past the resumed step belong to the branch this run abandons.
      const abandoned = (await folder.checkpoints()).filter((c) => c.step > startStep && path.resolve(c.location) !== path.resolve(resumeDir!)).sort((a, b) => a.step - b.step);
      if (abandoned.length) {
        log(`note: ${abandoned.map((c) => c.name).join(', ')} in ${outDir} continue the earlier run past step ${startStep}; this run's checkpoints rank as newer ` +
          '(--resume of the folder continues this run) and --save-total-limit removes the abandoned ones first');
      }
    }

    // The disk must hold the final files and, when checkpoints are kept, the newest ones plus the one being written.
    const sizes = outputSizes(model, tok, !!lora);
    const keepsCheckpoints = f['save-every'] !== undefined || f['keep-checkpoints'];
    const nCkpt = keepsCheckpoints ? f['save-total-limit']! + 1 : 0;
    checkFreeSpace(outDir, sizes.final + nCkpt * sizes.checkpoint,
      `${lora ? 'adapter' : 'model'} ${MB(sizes.final)}${nCkpt ? ` + ${nCkpt} checkpoints of ${MB(sizes.checkpoint)}` : ''}`);

    // 5. Metrics, progress, loss curve.
    const metricsFile = path.join(outDir, METRICS_FILE);
    let metrics: MetricsLine[] = [];
    if (resumeDir) {
      // The checkpoint's own copy of the metrics up to its step (the --out copy may hold later, lost steps).
      metrics = readMetrics(path.join(resumeDir, METRICS_FILE)).filter((m) => m.step <= startStep);
    } else if (fs.existsSync(metricsFile)) {
      fs.rmSync(metricsFile);
    }
    writeAtomic(metricsFile, metrics.map((m) => JSON.stringify(m) + '\n').join(''));
    const metricsFd = fs.openSync(metricsFile, 'a');
    const record = (m: MetricsLine) => { metrics.push(m); fs.writeSync(metricsFd, JSON.stringify(m) + '\n'); };
    const title = `${f.model ? path.basename(path.resolve(f.model)) : `${f.preset} preset`}${lora ? ` + LoRA r=${lora.r}` : ''} on ${f.data}`;
    const writeSvg = () => {
      const trainPts: Point[] = metrics.filter((m) => m.type === 'step').map((m) => [m.step, m.loss as number]);
      const evalPts: Point[] = metrics.filter((m) => m.type === 'eval').map((m) => [m.step, m.eval_loss as number]);
      writeAtomic(path.join(outDir, 'loss.svg'), lossCurveSvg({ train: trainPts, eval: evalPts, title }));
    };
    const progress = new Progress({ total: t.maxSteps, tty, every: f['log-every'], startStep });

    /** checkpoint-<step> with the run's flags and metrics: written under a temporary name, renamed when complete, older ones pruned after. */
    const checkpointFiles = async (sink: FileSink) => {
      await saveTrainerCheckpoint(t, sink);
      await saveTokenizerFiles(sink, tok, template, config);
      await sink.write(METRICS_FILE, metrics.map((m) => JSON.stringify(m) + '\n').join(''));
    };
    const saveCheckpoint = async (): Promise<string> => {
      const c = await folder.saveCheckpoint(t.step, checkpointFiles, { keep: f['save-total-limit']!, record: { argv: argsToSave } });
      writeSvg();
      return c.location;
    };

    const saveEvery = f['save-every'];
    let pendingSave = false;
    let lastSaved: string | undefined;
    // A diverged run: --max-consecutive-skips steps in a row with a non-finite loss or gradient,
    // or a run whose last steps were skipped (its final weights give a non-finite loss).
    const maxSkips = f['max-consecutive-skips']!;
    let skipsInRow: Array<{ step: number; reason: string }> = [];
    let diverged = false;
    t.on((e: TrainerEvent) => {
      if (e.type === 'step') skipsInRow = [];
      if (e.type === 'skip') {
        skipsInRow.push({ step: e.step, reason: `${e.reason}: loss ${e.loss}, grad norm ${e.gradNorm}` });
        if (skipsInRow.length >= maxSkips && !diverged) { diverged = true; t.stop(); }
      }
      if (e.type === 'step') {
        record({ type: 'step', step: e.step, epoch: e.epoch, loss: e.loss, lr: e.lr, grad_norm: e.gradNorm, tokens_per_second: e.tokensPerSecond,
          tokens: e.tokens, trained_tokens: e.trainedTokens, elapsed_ms: e.elapsedMs });
        progress.step(e);
        if (saveEvery && e.step % saveEvery === 0 && e.step < t.maxSteps) pendingSave = true;
      } else if (e.type === 'skip') {
        record({ type: 'skip', step: e.step, epoch: e.epoch, reason: e.reason, loss: String(e.loss), grad_norm: String(e.gradNorm), lr: e.lr });
        progress.log(`step ${e.step}: skipped (${e.reason})`);
      } else if (e.type === 'eval') {
        record({ type: 'eval', step: e.step, epoch: e.epoch, eval_loss: e.evalLoss, perplexity: e.perplexity, token_accuracy: e.tokenAccuracy, eval_tokens: e.tokens });
        progress.evalResult(e.step, e.evalLoss, e.tokenAccuracy);
        writeSvg();
      }
    });

    // Steps one at a time so a checkpoint is saved between steps, never during one.
    const t0 = Date.now();
    while (t.step < t.maxSteps) {
      const status = await runUntilSave(t, () => pendingSave);
      if (pendingSave) {
        pendingSave = false;
        lastSaved = await saveCheckpoint();
        const dir = lastSaved;
        progress.log(`checkpoint: ${dir}`);
      }
      if (interrupted || diverged) break;
      if (status === 'done' || status === 'failed') break;
    }
    const problems = [...dataProblems(train.summary), ...(evalData ? dataProblems(evalData.summary) : [])];
    const report = () => reportProblems(problems, outDir);
    if (!interrupted && skipsInRow.length > 0) diverged = true;

    if (diverged) {
      progress.done();
      fs.closeSync(metricsFd);
      writeSvg();
      const lastGood = metrics.filter((m) => m.type === 'step').pop();
      const kept = await folder.latest();
      report();
      const [first, last] = [skipsInRow[0].step, skipsInRow[skipsInRow.length - 1].step];
      throw new CliError(`train: the run diverged: ${first === last ? `step ${first} was` : `steps ${first}-${last} were all`} skipped (${skipsInRow[0].reason})` +
        `${lastGood ? `; the last applied step was ${lastGood.step} (loss ${fmtLoss(lastGood.loss)}, grad norm ${fmtLoss(lastGood.grad_norm)})` : '; no step was applied (do the starting weights hold NaN?)'}. ` +
        `Nothing was written over the model in ${outDir}${kept ? `; the last checkpoint is ${kept.location}` : ''}; metrics.jsonl holds every step. ` +
        'Lower --lr, or clip gradients with --max-grad-norm (e.g. 1).');
    }

    if (interrupted && t.step < t.maxSteps) {
      progress.done();
      const dir = lastSaved === path.join(outDir, `checkpoint-${t.step}`) ? lastSaved : await saveCheckpoint();
      fs.closeSync(metricsFd);
      log(`interrupted (${interrupted}) at step ${t.step}/${t.maxSteps}: checkpoint saved to ${dir}`);
      log(`continue with: webtune train --resume ${dir}`);
      report();
      return signalExitCode(interrupted);
    }

    // 6. Final eval, model, tokenizer, curve.
    if (evalData && !metrics.some((m) => m.type === 'eval' && m.step === t.step)) await t.evaluate();
    progress.done();
    const bad = await firstNonFinite(model);
    if (bad) {
      fs.closeSync(metricsFd);
      writeSvg();
      report();
      throw new CliError(`train: after step ${t.step} weight '${bad}' holds NaN or Infinity: the model was not written to ${outDir} ` +
        `(${skippedSteps(metrics)} steps were skipped as non-finite; metrics.jsonl holds every step). Lower --lr, or clip gradients with --max-grad-norm (e.g. 1).`);
    }
    try {
      const sink = disk.sink(outDir);
      await saveModelFiles(model, sink, { adapter: 'only' });   // with LoRA: the PEFT adapter of the base model
      await saveTokenizerFiles(outDir, tok, template, config);
    } catch (e) {
      // Nothing is removed: the checkpoints and metrics stay; the trained weights go where they fit.
      fs.closeSync(metricsFd);
      report();
      const rescued = await rescueCheckpoint(outDir, sizes.checkpoint, (rescue) => rescue.saveCheckpoint(t.step, checkpointFiles, { record: { argv: argsToSave } }));
      const kept = await folder.latest();
      throw new CliError(`train: the final model could not be written: ${(e as Error).message}. Kept: ${outDir}/metrics.jsonl (every step)` +
        `${kept ? `, ${kept.location} (step ${kept.step})` : ''}` +
        `${rescued ? `, and the trained weights of step ${t.step} as a resumable checkpoint in ${rescued}: after freeing space, 'webtune train --resume ${rescued} --out ${outDir}' writes the model` : '; the trained weights could not be saved anywhere'}.`);
    }
    if (f['keep-checkpoints']) await saveCheckpoint();
    else await folder.removeCheckpoints();
    fs.closeSync(metricsFd);
    writeSvg();
    const steps = metrics.filter((m) => m.type === 'step');
    const lastLoss = steps.length ? (steps[steps.length - 1].loss as number) : NaN;
    const evals = metrics.filter((m) => m.type === 'eval');
    const elapsed = steps.length ? (steps[steps.length - 1].elapsed_ms as number) : Date.now() - t0;
    const skipped = skippedSteps(metrics);
    log(`done: ${t.step} steps${skipped ? ` (${skipped} skipped as non-finite)` : ''}, final loss ${lastLoss.toFixed(4)}${evals.length ? `, eval loss ${(evals[evals.length - 1].eval_loss as number).toFixed(4)}` : ''}, ` +
      `${(steps.length ? (steps[steps.length - 1].tokens as number) : 0).toLocaleString('en-US')} tokens, training time ${formatDuration(elapsed)}`);
    log(`wrote ${outDir}: ${lora ? 'adapter_config.json, adapter_model.safetensors (a PEFT adapter of the base model)' : 'config.json, model.safetensors'}, tokenizer.json, tokenizer_config.json, generation_config.json, metrics.jsonl, loss.svg`);
    report();
    return 0;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    trainer?.dispose();
    model?.dispose();
    lock?.release();
  }
}

/** The exit code of a run stopped by a signal, as shells report it: 128 + the signal's number. */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}

/** The first data problems on the terminal, all of them in OUT/data_problems.txt. */
function reportProblems(problems: string[], outDir: string): void {
  if (!problems.length) return;
  const file = path.join(outDir, PROBLEMS_FILE);
  let saved = false;
  try {
    writeAtomic(file, problems.join('\n') + '\n');
    saved = true;
  } catch { /* the list is shown below either way */ }
  const shown = problems.length > MAX_PROBLEMS_SHOWN ? problems.slice(0, MAX_PROBLEMS_SHOWN) : problems;
  console.error(`webtune train: ${problems.length} data problem${problems.length === 1 ? '' : 's'} (rows left out)${saved ? `, listed in ${file}` : ''}:`);
  for (const p of shown) console.error(`  ${p}`);
  if (shown.length < problems.length) console.error(`  ... and ${problems.length - shown.length} more${saved ? ` (see ${file})` : ''}`);
}

const fmtLoss = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : String(v));
const skippedSteps = (metrics: MetricsLine[]) => metrics.filter((m) => m.type === 'skip').length;

/** The name of the first weight (model parameter or trainable adapter) holding NaN or Infinity, or undefined. */
async function firstNonFinite(model: CausalLM): Promise<string | undefined> {
  const all = new Map<string, tf.Variable | tf.Tensor>([...model.params, ...model.trainableParams()]);
  for (const [name, v] of all) {
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(v))));
    const flag = (await bad.data())[0];
    bad.dispose();
    if (flag) return name;
  }
  return undefined;
}

/** Bytes of the final output (model or adapter, plus tokenizer files) and of one resumable checkpoint. */
function outputSizes(model: CausalLM, tok: Tokenizer, lora: boolean): { final: number; checkpoint: number } {
  const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const modelBytes = [...model.params.values()].reduce((n, v) => n + 4 * numel(v.shape), 0);
  const trainableBytes = [...model.trainableParams().values()].reduce((n, v) => n + 4 * numel(v.shape), 0);
  const tokenizerBytes = JSON.stringify(tok.files.tokenizerJson).length + JSON.stringify(tok.files.tokenizerConfig).length;
  const final = (lora ? trainableBytes : modelBytes) + tokenizerBytes;
  // model.safetensors + adapters beside it (LoRA) + the two AdamW moments; metrics and state are small.
  const checkpoint = modelBytes + (lora ? trainableBytes : 0) + 2 * trainableBytes + tokenizerBytes;
  return { final, checkpoint };
}

/**
 * After the final model could not be written to OUT (a full disk): saves the trained state as a
 * resumable checkpoint in the system's temporary folder when that disk has room. Returns its path.
 */
async function rescueCheckpoint(outDir: string, bytes: number, save: (rescue: RunFolder) => Promise<CheckpointEntry>): Promise<string | undefined> {
  const dir = path.join(os.tmpdir(), `webtune-rescue-${path.basename(path.resolve(outDir))}-${process.pid}`);
  try {
    if (disk.freeBytes(os.tmpdir()) < bytes) return undefined;
    return (await save(runFolder(dir))).location;
  } catch {
    return undefined;   // a failed save leaves nothing behind
  }
}

/** The flags saved in a checkpoint (webtune_train_args.json), or [] when it has none. */
function readSavedArgs(dir: string): string[] {
  const file = path.join(dir, ARGS_FILE);
  if (!fs.existsSync(file)) return [];
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`train: --resume: ${file}: not valid JSON (${(e as Error).message}); restore it from a copy, or start a new run with --model ${dir}`);
  }
  const argv = (json as { argv?: unknown })?.argv;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new CliError(`train: --resume: ${file}: field "argv" must be a list of strings (the run's flags)`);
  return argv as string[];
}

/** A resumed run trains what its checkpoint trained: flags that change that are refused, naming them. */
function checkSameMode(dir: string, saved: TrainFlags, merged: TrainFlags, given: Set<string>): void {
  for (const k of MODE_FLAGS) {
    if (!given.has(k) || String(saved[k]) === String(merged[k])) continue;
    const was = saved['lora-r'] !== undefined ? `a LoRA adapter of rank ${saved['lora-r']}` : 'every weight';
    throw new UsageError(`train: --${k}: this run's mode cannot change on resume (${dir} trained ${was}${saved[k] !== undefined && saved[k] !== false ? ` with --${k} ${String(saved[k])}` : ` without --${k}`}); ` +
      `to train differently, start a new run from its weights with --model ${dir}`);
  }
}

/**
 * Runs the trainer until it ends or `shouldPause()` turns true after a step (then stops it so
 * the caller can save between steps). Resolves with the trainer's status.
 */
async function runUntilSave(t: Trainer, shouldPause: () => boolean): Promise<string> {
  const off = t.on((e) => { if (e.type === 'step' && shouldPause()) t.stop(); });
  try {
    return await t.run();
  } finally {
    off();
  }
}
