/**
 * The page's state in the worker: the backend, the tokenizer, the data, the model the page talks
 * to and the run that trains it. Every handler (handlers/*.ts) reads and changes this one object;
 * nothing else in the worker holds state.
 */
import {
  BUILTIN_TEMPLATES, templateFromTokenizerConfig, isBuiltinTemplate, configToJSON, loraState, loraTrainableReport, prepareDataset,
  evaluateLoss, dims, splitValidation, parseJsonl, loadDataset, MemoryFiles, loadModel, saveModelFiles, type SaveModelOptions,
  type BackendInfo, type Tokenizer, type ChatTemplate, type Example, type Batch, type CausalLM, type Trainer, type PretrainedModel,
  type ModelConfig, type EvalRowInput, type RowError,
} from '../../src/index.js';
import type { Request, Reply, TemplateSpec, TrainSettings, ModelInfo } from '../protocol.js';
import testText from '../data/test.jsonl?raw';

export const post = (reply: Reply, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(reply, transfer);

export type RequestOf<T extends Request['type']> = Extract<Request, { type: T }>;
/** One panel's handlers: for each request type it answers, what to do with the message. */
export type Handlers<K extends Request['type']> = { [T in K]: (msg: RequestOf<T>, s: WorkerState) => Promise<void> | void };

/** A held-out test row of the bundled data, with its task family. */
export type TestRow = EvalRowInput & { family: string };

/** A fixed slice of the validation split, so eval loss is comparable across runs and reloads. */
const EVAL_ROWS = 32;

// A tiny pretrained checkpoint may be bundled in models/base/ (config.json + model.safetensors);
// when it is there, training starts from it by default.
const BASE_FILES = import.meta.glob('../../models/base/*.{json,safetensors}', { query: '?url', import: 'default', eager: true }) as Record<string, string>;
export const hasBase = Object.keys(BASE_FILES).some((p) => p.endsWith('/config.json'));

/** The bundled models/base checkpoint. */
export async function loadBase(): Promise<CausalLM> {
  const files = new Map<string, Uint8Array>();
  for (const [path, url] of Object.entries(BASE_FILES)) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    files.set(path.split('/').pop()!, new Uint8Array(await res.arrayBuffer()));
  }
  return loadModel(new MemoryFiles(files, 'models/base'));
}

/** A model's files in memory (saveModelFiles): base weights, and its LoRA adapter beside them or merged in; with the tokenizer and chat template when given. */
export async function filesOf(m: CausalLM, opts: SaveModelOptions = {}): Promise<MemoryFiles> {
  const dir = new MemoryFiles();
  await saveModelFiles(m, dir, opts);
  return dir;
}

export async function parseRows(text: string, file: string): Promise<{ examples: Example[]; errors: RowError[] }> {
  return loadDataset(new Blob([text]), { file });
}

/** `examples` grouped by their task family (meta.family), in first-seen order. */
export function byFamily<T extends { meta?: Record<string, unknown>; family?: string }>(examples: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const ex of examples) {
    const f = String(ex.family ?? ex.meta?.family ?? 'other');
    if (!groups.has(f)) groups.set(f, []);
    groups.get(f)!.push(ex);
  }
  return groups;
}

/** Up to `limit` items taken round-robin over the groups, so each group is represented. */
export function roundRobin<T>(groups: Iterable<T[]>, limit: number): T[] {
  const lists = [...groups];
  const out: T[] = [];
  for (let i = 0; out.length < limit; i++) {
    const before = out.length;
    for (const g of lists) if (i < g.length && out.length < limit) out.push(g[i]);
    if (out.length === before) break;
  }
  return out;
}

/**
 * A base model loaded from the Hub or from files, with its own tokenizer and chat template.
 * `pristine` is the loaded model while nothing has trained it: the first run starts from it;
 * later runs load the weights again from `source` (the Hub's files come from Cache Storage).
 */
export interface Pretrained { name: string; source: () => Promise<PretrainedModel>; tokenizer: Tokenizer; template?: ChatTemplate; config: ModelConfig; pristine?: CausalLM }

export class WorkerState {
  backend!: BackendInfo;
  /** The tokenizer of the current model: the bundled one, or a loaded base model's own. */
  tokenizer!: Tokenizer;
  bundledTokenizer!: Tokenizer;
  trainExamples: Example[] = [];
  validExamples: Example[] = [];
  readonly testRows = parseJsonl<TestRow>(testText, 'test.jsonl');
  /** The rows of the uploaded file (all of them: the validation split is uploadSplit's). */
  uploaded: Example[] = [];
  /** The rows kept in "Grow data": the "grown" source of the training mixture. */
  grown: Example[] = [];

  /** The model the page talks to (chat, compare, save): the one being trained or the last loaded. */
  model: CausalLM | undefined;
  modelName = '';
  /**
   * The weights before the last full fine-tuning run, for the before/after comparison. A LoRA run
   * keeps none: its "before" is the same model with the adapter switched off (withAdaptersDisabled),
   * which saves a whole copy of the base (hundreds of MB for a Hub model).
   */
  baseSnapshot: MemoryFiles | undefined;
  trainer: Trainer | undefined;
  /** The chat template of the last run (or the builder's default) for chat and evaluation. */
  template: ChatTemplate = BUILTIN_TEMPLATES.chatml;
  pretrained: Pretrained | undefined;
  /** Cancel the Hub download / the data growing in flight. */
  hubAbort: AbortController | undefined;
  /** The user asked the run to pause (a checkpoint save pauses it too, unasked, and goes on after). */
  pauseAsked = false;
  /** The checkpoint save in flight, while the run waits for it. */
  runSave: Promise<void> | undefined;
  growAbort: AbortController | undefined;
  private busy = false;
  private split: { rows: Example[]; percent: number; train: Example[]; valid: Example[] } | undefined;

  /**
   * The upload split into the rows trained on and those held out for eval loss: one seeded split
   * per (upload, percent), the same in the upload check, the data check and the run.
   */
  uploadSplit(percent = 0): { train: Example[]; valid: Example[] } {
    if (this.split?.rows !== this.uploaded || this.split.percent !== percent) this.split = { rows: this.uploaded, percent, ...splitValidation(this.uploaded, percent, 0) };
    return this.split;
  }

  /** Makes `m` the current model; the one it replaces is disposed (unless it is the same weights on another engine). */
  setModel(m: CausalLM, name: string): void {
    if (this.model && this.model !== m && this.model.params !== m.params) this.model.dispose();
    this.model = m;
    this.modelName = name;
  }

  /** The run is over for the current model (another was loaded): its trainer goes. */
  dropTrainer(): void {
    this.trainer?.dispose();
    this.trainer = undefined;
  }

  get training(): boolean {
    return this.trainer?.status === 'running' || this.trainer?.status === 'paused';
  }

  /** Generation, comparison and saving read the model: not while a training step writes it, nor two at once. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.trainer?.status === 'running') throw new Error('Training is running: pause or stop it first.');
    if (this.busy) throw new Error('Busy with another request; try again when it finishes.');
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  /** Training reads nothing the busy requests write, but a comparison may run the model with its adapter switched off. */
  checkNotBusy(what: string): void {
    if (this.busy) throw new Error(`Busy answering prompts: ${what} when that finishes.`);
  }

  templateOf(spec: TemplateSpec): ChatTemplate {
    if (spec.kind === 'builtin') {
      if (!isBuiltinTemplate(spec.name)) throw new Error(`unknown built-in template '${spec.name}'`);
      return BUILTIN_TEMPLATES[spec.name];
    }
    if (spec.kind === 'model') {
      const p = this.needPretrained();
      if (!p.template) throw new Error(`${p.name} has no chat template (a base model, not an instruct one): pick a built-in template.`);
      return p.template;
    }
    if (spec.kind === 'jinja') return { name: 'custom template', source: spec.source, bosToken: spec.bosToken, eosToken: spec.eosToken };
    return templateFromTokenizerConfig(spec.json, spec.fileName);
  }

  needModel(why = 'No model yet: train one or load one first.'): CausalLM {
    if (!this.model) throw new Error(why);
    return this.model;
  }

  needPretrained(): Pretrained {
    if (!this.pretrained) throw new Error('No base model is loaded: load one in "Bring your own base model" first.');
    return this.pretrained;
  }

  modelInfo(m: CausalLM, name: string, evalLoss?: number): ModelInfo {
    const trainable = [...m.trainableParams().values()].reduce((n, v) => n + v.size, 0);
    const lora = loraState(m);
    return {
      name, params: m.numParams(), trainableParams: trainable, config: configToJSON(m.config), lora: !!lora, evalLoss,
      loraSummary: lora
        ? `LoRA r=${lora.r}, alpha=${lora.alpha} on ${lora.targets.length} modules${lora.modulesToSave ? `, modules to save: ${lora.modulesToSave.join(', ')}` : ''} · ${loraTrainableReport(m).line}`
        : undefined,
    };
  }

  /** Batches of the fixed eval slice (and the upload's validation split, when the run uses the upload) with the given template and mask. */
  async evalBatches(t: ChatTemplate, mask: TrainSettings['mask'], maxLength: number, opts: { uploadValid?: readonly Example[] } = {}): Promise<Batch[]> {
    const upload = opts.uploadValid ?? [];
    const data = await prepareDataset({
      sources: [{ examples: this.validExamples.slice(0, EVAL_ROWS), name: 'valid' }, ...(upload.length ? [{ examples: [...upload], name: 'upload-valid' }] : [])],
      template: t, tokenizer: this.tokenizer, mask, maxLength, seqLen: maxLength, onRowError: 'skip',
    });
    return [...data.batches({ batchSize: 8, shuffle: false })];
  }

  /** Mean loss of `m` on the fixed eval slice (chat template of the last run, assistant mask). */
  async evalLossOf(m: CausalLM): Promise<number> {
    return (await evaluateLoss(m, await this.evalBatches(this.template, 'assistant', Math.min(80, dims(m.config).maxPositions)))).evalLoss;
  }
}
