/**
 * The demo's worker: every tensor lives here (backend, model, trainer, generation, storage),
 * so the page's main thread only draws. It speaks the protocol of protocol.ts: `{type}` in,
 * `{status}` out. The trainer yields to the event loop between steps, so pause/stop and the
 * template builder's requests are answered while a run goes on.
 */
import {
  initBackend, loadBundledTokenizer, loadDataset, prepareDataset, labelExample, countTrainedLabels, renderWithSpans, renderChat,
  BUILTIN_TEMPLATES, templateFromTokenizerConfig, isBuiltinTemplate, CausalLM, presetConfig, countParams, configToJSON,
  Trainer, evaluateLoss, saveModelFiles, loadModelFiles, familyOf, generateChat, evaluate, promptOf, parseJsonl, loadModel, MemoryFiles, filesSource, BrowserStore,
  MASK_MODES, IGNORE_INDEX, applyLora, loraState, loraTrainableReport, withAdaptersDisabled, saveAdapter, loadAdapter,
  ADAPTER_CONFIG_FILE, fetchHubModelInfo, loadFromHub, loadPretrainedFrom, checkFitsAdapter, planTraining,
  clearHubCache, dims, loadTokenizer, filtersFrom, filterReportLines, applyFilters, splitValidation, overlapWith, selectEngine, startGpuMeter, selfInstruct, evolInstruct, seedTaskFromExample, grownExamples, type GrowRun, type PretrainedModel, type MemoryEstimate, type HubOptions,
  type BackendInfo, type Tokenizer, type ChatTemplate, type Example, type Message, type Batch, type FileSource,
  type PresetName, type ModelConfig, type InstructMessage, type EvalRowInput, type TrainerOptions, type SaveModelOptions,
} from '../src/index.js';
import type {
  Request, Reply, TemplateSpec, TrainSettings, MaskView, ModelInfo, DatasetRowView, FamilyScore, HubRef, HubCheckInfo, EstimateView, PretrainedInfo, BackendView,
  GrowRequest, GrowSettings, DataToolSettings, UploadCheck,
} from './protocol.js';
import { zipStore, unzipStore } from './zip.js';
import trainText from './data/train.jsonl?raw';
import validText from './data/valid.jsonl?raw';
import testText from './data/test.jsonl?raw';
import manifest from './data/manifest.json';

// A tiny pretrained checkpoint may be bundled in models/base/ (config.json + model.safetensors);
// when it is there, training starts from it by default.
const BASE_FILES = import.meta.glob('../models/base/*.{json,safetensors}', { query: '?url', import: 'default', eager: true }) as Record<string, string>;
const hasBase = Object.keys(BASE_FILES).some((p) => p.endsWith('/config.json'));

const post = (reply: Reply, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(reply, transfer);

// ---------------------------------------------------------------------------------------------
// State

let backend: BackendInfo;
/** The tokenizer of the current model: the bundled one, or a loaded base model's own. */
let tokenizer: Tokenizer;
let bundledTokenizer: Tokenizer;
let trainExamples: Example[] = [];
let uploaded: Example[] = [];
/** The uploaded rows split into those trained on and those held out for eval loss (the validation split). */
let uploadedValid: Example[] = [];
let uploadedTrain: Example[] = [];
let validExamples: Example[] = [];
const testRows = parseJsonl<EvalRowInput & { family: string }>(testText, 'test.jsonl');

/** The model the page talks to (chat, compare, save): the one being trained or the last loaded. */
let model: CausalLM | undefined;
let modelName = '';
/**
 * The weights before the last full fine-tuning run, for the before/after comparison. A LoRA run
 * keeps none: its "before" is the same model with the adapter switched off (withAdaptersDisabled),
 * which saves a whole copy of the base (hundreds of MB for a Hub model).
 */
let baseSnapshot: MemoryFiles | undefined;
let trainer: Trainer | undefined;
/** The chat template of the last run (or the builder's default) for chat and evaluation. */
let template: ChatTemplate = BUILTIN_TEMPLATES.chatml;
let busy = false;

/**
 * A base model loaded from the Hub or from files, with its own tokenizer and chat template.
 * `pristine` is the loaded model while nothing has trained it: the first run starts from it;
 * later runs load the weights again from `source` (the Hub's files come from Cache Storage).
 */
let pretrained: { name: string; source: () => Promise<PretrainedModel>; tokenizer: Tokenizer; template?: ChatTemplate; config: ModelConfig; pristine?: CausalLM } | undefined;
/** Cancels the Hub download in flight. */
let hubAbort: AbortController | undefined;

/** A fixed slice of the validation split, so eval loss is comparable across runs and reloads. */
const EVAL_ROWS = 32;

function templateOf(spec: TemplateSpec): ChatTemplate {
  if (spec.kind === 'builtin') {
    if (!isBuiltinTemplate(spec.name)) throw new Error(`unknown built-in template '${spec.name}'`);
    return BUILTIN_TEMPLATES[spec.name];
  }
  if (spec.kind === 'model') {
    if (!pretrained) throw new Error('No base model is loaded: load one in "Bring your own base model" first.');
    if (!pretrained.template) throw new Error(`${pretrained.name} has no chat template (a base model, not an instruct one): pick a built-in template.`);
    return pretrained.template;
  }
  if (spec.kind === 'jinja') return { name: 'custom template', source: spec.source, bosToken: spec.bosToken, eosToken: spec.eosToken };
  return templateFromTokenizerConfig(spec.json, spec.fileName);
}

function modelInfo(m: CausalLM, name: string, evalLoss?: number): ModelInfo {
  const trainable = [...m.trainableParams().values()].reduce((n, v) => n + v.size, 0);
  const lora = loraState(m);
  return {
    name, params: m.numParams(), trainableParams: trainable, config: configToJSON(m.config), lora: !!lora, evalLoss,
    loraSummary: lora
      ? `LoRA r=${lora.r}, alpha=${lora.alpha} on ${lora.targets.length} modules${lora.modulesToSave ? `, modules to save: ${lora.modulesToSave.join(', ')}` : ''} · ${loraTrainableReport(m).line}`
      : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Data

async function parseRows(text: string, file: string): Promise<{ examples: Example[]; errors: import('../src/index.js').RowError[] }> {
  return loadDataset(new Blob([text]), { file });
}

function rowView(ex: Example): DatasetRowView {
  const text = (v: unknown) => (typeof v === 'string' ? v : (v as Message[] | undefined ?? []).map((m) => `${m.role}: ${m.content}`).join('\n'));
  if (ex.format === 'prompt_completion') return { messages: [], meta: ex.meta, parts: [['prompt', text(ex.prompt)], ['completion', text(ex.completion)]] };
  if (ex.format === 'text') return { messages: [], meta: ex.meta, parts: [['text', ex.text ?? '']] };
  return { messages: ex.messages ?? [], meta: ex.meta };
}

function datasetInfo() {
  const fams = manifest.families as Record<string, { description: string; weight: number }>;
  const counts: Record<string, number> = {};
  const samples: Record<string, DatasetRowView[]> = {};
  for (const ex of trainExamples) {
    const f = String(ex.meta.family ?? 'other');
    counts[f] = (counts[f] ?? 0) + 1;
    const s = (samples[f] ??= []);
    if (s.length < 4 && (s.length === 0 || ex.meta.source === 'human' || counts[f] % 97 === 0)) s.push(rowView(ex));
  }
  return {
    families: Object.entries(fams).map(([name, f]) => ({ name, description: f.description, weight: f.weight, rows: counts[name] ?? 0 })),
    samples, trainRows: trainExamples.length, validRows: validExamples.length, testRows: testRows.length,
  };
}

/** Splits the upload into training rows and the held-out validation rows; the test split's prompts it repeats are counted. */
function checkUpload(percent: number): UploadCheck {
  const split = splitValidation(uploaded, percent, 0);
  uploadedTrain = split.train;
  uploadedValid = split.valid;
  const test = testRows.map((r): Example => ({ format: 'messages', messages: r.messages as Message[], meta: { id: r.id, family: r.family } }));
  const overlap = overlapWith(uploaded, test);
  return {
    train: split.train.length, valid: split.valid.length, validationPercent: percent, overlap: overlap.length,
    overlapExamples: overlap.slice(0, 3).map((o) => `line ${String(o.row.meta.line)} ~ test ${String(o.test.meta.id ?? '')} (ROUGE-L ${o.score.toFixed(2)})`),
  };
}

/** The training sources: one per task family with a weight, the upload's training part, the grown rows. */
function trainSources(s: { weights: Record<string, number>; uploadWeight?: number; growWeight?: number }): Array<{ name: string; examples: Example[]; weight: number }> {
  const byFamily = new Map<string, Example[]>();
  for (const ex of trainExamples) {
    const f = String(ex.meta.family ?? 'other');
    if (!byFamily.has(f)) byFamily.set(f, []);
    byFamily.get(f)!.push(ex);
  }
  const sources = [...byFamily].filter(([f]) => (s.weights[f] ?? 0) > 0).map(([f, examples]) => ({ name: f, examples, weight: s.weights[f] }));
  if (uploadedTrain.length && (s.uploadWeight ?? 0) > 0) sources.push({ name: 'upload', examples: uploadedTrain, weight: s.uploadWeight! });
  if (grown.length && (s.growWeight ?? 0) > 0) sources.push({ name: 'grown', examples: grown, weight: s.growWeight! });
  return sources;
}

/** What the data tools remove from the training sources, without training. */
function dataCheck(tools: DataToolSettings, s: { weights: Record<string, number>; uploadWeight?: number }) {
  const rows = trainSources(s).flatMap((src) => src.examples);
  const { report } = applyFilters(rows, filtersFrom(tools));
  return { input: report.input, kept: report.kept, lines: filterReportLines(report), byFilter: report.byFilter };
}

/** Batches of the fixed eval slice (and the upload's validation split, when the run uses the upload) with the given template and mask. */
async function evalBatches(t: ChatTemplate, mask: TrainSettings['mask'], maxLength: number, withUpload = false): Promise<Batch[]> {
  const data = await prepareDataset({
    sources: [{ examples: validExamples.slice(0, EVAL_ROWS), name: 'valid' }, ...(withUpload && uploadedValid.length ? [{ examples: uploadedValid, name: 'upload-valid' }] : [])], template: t, tokenizer, mask,
    maxLength, seqLen: maxLength, onRowError: 'skip',
  });
  return [...data.batches({ batchSize: 8, shuffle: false })];
}

/** Mean loss of `m` on the fixed eval slice (chat template of the last run, assistant mask). */
async function evalLossOf(m: CausalLM): Promise<number> {
  return (await evaluateLoss(m, await evalBatches(template, 'assistant', Math.min(80, dims(m.config).maxPositions)))).evalLoss;
}

// ---------------------------------------------------------------------------------------------
// Template builder + masking visualiser

function specialRanges(text: string, t: ChatTemplate): Array<[number, number]> {
  const marks = new Set([...tokenizer.specialTokens, t.bosToken, t.eosToken].filter((s) => s));
  const out: Array<[number, number]> = [];
  for (const m of marks) for (let i = text.indexOf(m); i >= 0; i = text.indexOf(m, i + m.length)) out.push([i, i + m.length]);
  return out.sort((a, b) => a[0] - b[0]);
}

function render(id: number, spec: TemplateSpec, messages: Message[], tools?: Record<string, unknown>[], addGenerationPrompt = false): Reply {
  let t: ChatTemplate;
  try {
    t = templateOf(spec);
  } catch (e) {
    return { status: 'rendered', id, text: '', specials: [], turns: [], error: (e as Error).message, masks: [], templateName: '' };
  }
  let rendered;
  try {
    rendered = renderWithSpans(t, messages, { tools: tools ?? null });
  } catch (e) {
    return { status: 'rendered', id, text: '', specials: [], turns: [], error: (e as Error).message, masks: [], templateName: t.name };
  }
  const specials = new Set(tokenizer.specialTokens);
  const ex: Example = { format: 'messages', messages, ...(tools ? { tools } : {}), meta: {} };
  const masks: MaskView[] = MASK_MODES.map((mode) => {
    try {
      const r = labelExample(ex, t, tokenizer, { mask: mode });
      const view: MaskView = {
        mode,
        examples: r.examples.map((e) => ({
          tokens: e.inputIds.map((tid, i) => {
            const piece = tokenizer.idToToken(tid);
            return { id: tid, text: specials.has(piece) ? piece : tokenizer.decode([tid]), special: specials.has(piece), trained: e.labels[i] !== IGNORE_INDEX };
          }),
          trained: countTrainedLabels(e.labels), total: e.inputIds.length,
        })),
      };
      if (r.dropped.length) view.error = r.dropped.map((d) => `${d.reason}: ${d.detail}`).join('; ');
      return view;
    } catch (e) {
      return { mode, examples: [], error: (e as Error).message };
    }
  });
  // add_generation_prompt only appends to the training rendering: its spans stay where they are.
  let text = rendered.text;
  let generationPrompt: [number, number] | undefined;
  if (addGenerationPrompt) {
    try {
      const full = renderChat(t, messages, { tools: tools ?? null, addGenerationPrompt: true });
      if (full.startsWith(text)) { generationPrompt = [text.length, full.length]; text = full; }
    } catch { /* the template rendered without it; keep that */ }
  }
  return { status: 'rendered', id, text, specials: specialRanges(text, t), turns: rendered.turns, masks, templateName: t.name, generationPrompt };
}

// ---------------------------------------------------------------------------------------------
// Models

async function baseSource(): Promise<FileSource> {
  const files = new Map<string, Uint8Array>();
  for (const [path, url] of Object.entries(BASE_FILES)) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    files.set(path.split('/').pop()!, new Uint8Array(await res.arrayBuffer()));
  }
  return new MemoryFiles(files, 'models/base');
}

async function startingModel(s: TrainSettings): Promise<{ m: CausalLM; name: string }> {
  if (s.model === 'current') {
    if (!model) throw new Error('There is no current model yet: pick a preset or the base model.');
    return { m: model, name: modelName };
  }
  if (s.model === 'base') return { m: await loadModel(await baseSource()), name: 'models/base' };
  if (s.model === 'pretrained') {
    if (!pretrained) throw new Error('No base model is loaded: load one in "Bring your own base model" first.');
    if (pretrained.pristine && pretrained.pristine === model) {
      const m = pretrained.pristine;
      pretrained.pristine = undefined; // training changes it from here on
      return { m, name: pretrained.name };
    }
    return { m: (await pretrained.source()).model, name: pretrained.name };
  }
  const config: ModelConfig = presetConfig(s.model as PresetName, { vocabSize: tokenizer.vocabSize, family: s.family });
  return { m: CausalLM.create(config, { seed: s.seed }), name: `${s.family} ${s.model} (fresh)` };
}

function setModel(m: CausalLM, name: string): void {
  // The same weights on another engine (withEngine) are not a new model: keep them.
  if (model && model !== m && model.params !== m.params) model.dispose();
  model = m;
  modelName = name;
}

// ---------------------------------------------------------------------------------------------
// Training

async function train(s: TrainSettings): Promise<void> {
  if (trainer && (trainer.status === 'running' || trainer.status === 'paused')) throw new Error('A run is already going: stop it first.');
  post({ status: 'train-status', state: 'preparing', step: 0, maxSteps: 0 });
  // A loaded base model reads with its own tokenizer; fresh presets and models/base with the bundled one.
  if (s.model === 'pretrained') {
    if (!pretrained) throw new Error('No base model is loaded: load one in "Bring your own base model" first.');
    tokenizer = pretrained.tokenizer;
  } else if (s.model !== 'current') tokenizer = bundledTokenizer;
  const maxPositions = s.model === 'pretrained' ? dims(pretrained!.config).maxPositions : s.model === 'current' && model ? dims(model.config).maxPositions : Infinity;
  if (s.maxLength > maxPositions) throw new Error(`Max length ${s.maxLength} is longer than the model reads (${maxPositions} positions): lower it.`);
  const t = templateOf(s.template);
  // One source per task family, weighted: the mixture the dataset panel shows. The upload's
  // validation split is held out of training (its eval loss is measured with the bundled slice).
  ({ train: uploadedTrain, valid: uploadedValid } = splitValidation(uploaded, s.validationPercent ?? 0, 0));
  const sources = trainSources(s);
  if (sources.length === 0) throw new Error('Every mixture weight is 0: give at least one family a weight.');
  const data = await prepareDataset({
    sources, template: t, tokenizer, mask: s.mask, maxLength: s.maxLength, seqLen: s.maxLength, onRowError: 'skip', seed: s.seed,
    filters: s.dataTools ? filtersFrom(s.dataTools) : undefined, curriculum: s.dataTools?.curriculum,
  });
  post({ status: 'preparing', message: `${data.examples.length} examples, ${data.summary.trainedTokens} trained tokens, ${data.summary.dropped.total} dropped` });
  if (data.summary.filters) for (const line of filterReportLines(data.summary.filters)) post({ status: 'preparing', message: line });
  const batchesPerEpoch = Math.ceil(data.examples.length / s.batchSize);

  const start = await startingModel(s);
  // The run's engine: the backend's (fused kernels on WebGPU) unless the page asks for a path to compare.
  const engine = selectEngine(backend.backend, s.kernels);
  const m = start.m.engine === engine ? start.m : start.m.withEngine(engine);
  const startName = start.name;
  let name = startName;
  // Full fine-tuning changes the weights in place: "before" needs a snapshot of them. (A model that
  // already carries an adapter is saved as its base weights + that adapter.) LoRA leaves the base
  // weights alone: "before" is the model with its adapter switched off, no copy needed.
  baseSnapshot = s.lora.enabled ? undefined : await filesOf(m);
  if (s.lora.enabled) {
    if (loraState(m)) throw new Error('The current model already carries a LoRA adapter: start from a preset or the base model to train a new one.');
    // No targets given: applyLora uses the family's default (PEFT's).
    const state = applyLora(m, {
      r: s.lora.r, alpha: s.lora.alpha, targetModules: s.lora.targets.length ? s.lora.targets : undefined, modulesToSave: s.lora.modulesToSave, seed: s.seed,
      baseModelNameOrPath: s.model === 'pretrained' ? startName : null,
    });
    name = `${startName} + LoRA r=${state.r}`;
  }
  setModel(m, name);
  template = t;

  // Memory planned before the first dispatch: refuse what cannot be bound, checkpoint what would not fit.
  const plan = planTraining(m.config, {
    batchSize: s.batchSize, seqLen: Math.min(s.maxLength, dims(m.config).maxPositions), gradientCheckpointing: s.gradientCheckpointing,
    lora: s.lora.enabled ? { r: s.lora.r, targets: 'all-linear' } : undefined, path: backend.backend === 'webgpu' ? 'fused' : 'stock',
  }, { limits: backend.limits });
  if (plan.refusal) throw new Error(`This run cannot start on this GPU: ${plan.refusal}`);
  if (plan.reason) post({ status: 'preparing', message: `Gradient checkpointing turned on: ${plan.reason}.`, gradientCheckpointing: true });

  const options: TrainerOptions = {
    gradientCheckpointing: plan.gradientCheckpointing,
    train: (epoch: number) => data.batches({ batchSize: s.batchSize, firstEpoch: epoch, seed: s.seed }),
    batchesPerEpoch,
    eval: s.evalEvery > 0 ? await evalBatches(t, s.mask, s.maxLength, (s.uploadWeight ?? 0) > 0) : undefined,
    evalEvery: s.evalEvery,
    lr: s.lr, schedule: s.schedule, warmupSteps: s.warmupSteps, seed: s.seed,
    forwardOptions: s.neftune.enabled && s.neftune.alpha > 0 ? { neftune: { alpha: s.neftune.alpha } } : undefined,
    ...(s.steps > 0 ? { maxSteps: s.steps } : { epochs: s.epochs }),
  };
  trainer?.dispose();
  post({ status: 'preparing', message: `Compiling the ${engine.path} path's shaders for this model…` });
  await m.engine.warmUp(m.config);
  const tr = new Trainer(m, options);
  trainer = tr;
  const maxSteps = tr.maxSteps;
  // GPU dispatches per step: the meter's count since the previous step (evaluations left out).
  const meter = startGpuMeter();
  let counted = 0;
  const dispatchesSince = () => { const d = meter.read().dispatches; const n = d - counted; counted = d; return n; };
  tr.on((e) => {
    if (e.type === 'step') {
      post({ status: 'step', step: e.step, maxSteps, epoch: e.epoch, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: e.tokensPerSecond, elapsedMs: e.elapsedMs,
        path: m.engine.path, dispatches: dispatchesSince() });
    } else if (e.type === 'eval') {
      dispatchesSince();
      post({ status: 'eval', step: e.step, evalLoss: e.evalLoss, tokenAccuracy: e.tokenAccuracy });
    } else if (e.type === 'status') {
      if (e.status === 'running') dispatchesSince();   // nothing done while paused counts toward the next step
      const done = e.status === 'done' || e.status === 'stopped' || e.status === 'failed';
      post({ status: 'train-status', state: e.status, step: e.step, maxSteps, reason: e.reason, error: e.error, model: done ? modelInfo(m, modelName) : undefined });
    } else if (e.type === 'skip') {
      post({ status: 'preparing', message: `step ${e.step} skipped: ${e.reason}` });
    }
  });
  post({ status: 'train-status', state: 'idle', step: 0, maxSteps, model: modelInfo(m, name) });
  try {
    await tr.run();
  } finally {
    meter.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Before / after

/** Up to `limit` test rows, taken round-robin over the families so each one is represented. */
function pickTestRows(limit: number): Array<EvalRowInput & { family: string }> {
  const groups = new Map<string, Array<EvalRowInput & { family: string }>>();
  for (const r of testRows) {
    if (!groups.has(r.family)) groups.set(r.family, []);
    groups.get(r.family)!.push(r);
  }
  const out: Array<EvalRowInput & { family: string }> = [];
  for (let i = 0; out.length < limit; i++) {
    let added = false;
    for (const g of groups.values()) if (i < g.length && out.length < limit) { out.push(g[i]); added = true; }
    if (!added) break;
  }
  return out;
}

function scores(counts: Record<string, { n: number; correct: number }>): Record<string, FamilyScore> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, { n: v.n, correct: v.correct }]));
}

async function compare(id: number, limit: number, maxNewTokens: number): Promise<void> {
  if (!model) throw new Error('No model yet: train one or load one first.');
  const rows = pickTestRows(limit);
  const base = baseSnapshot ? await loadModelFiles(baseSnapshot) : undefined;
  // Without a snapshot, a model with an (unmerged) adapter answers "before" with the adapter off.
  const lora = loraState(model);
  const adapterOff = !base && !!lora && !lora.merged;
  try {
    const answer = (m: CausalLM) => async (messages: InstructMessage[], tools?: readonly object[]) =>
      (await generateChat(m, tokenizer, template, messages, { maxNewTokens, render: { tools: tools ? [...tools] : null } })).text;
    const total = rows.length * (base || adapterOff ? 2 : 1);
    let done = 0;
    const run = async (which: 'base' | 'tuned', m: CausalLM) => evaluate(rows, answer(m), {
      onRow: (r) => {
        done++;
        const prompt = promptOf(rows[r.index].messages!).map((msg) => `${msg.role}: ${msg.content}`).join('\n');
        post({ status: 'compare-row', id, which, done, total, row: { index: r.index, family: r.family, prompt, expected: JSON.stringify(r.expected), output: r.output, correct: r.correct } });
      },
    });
    const tuned = model;
    const baseResult = base ? await run('base', base) : adapterOff ? await withAdaptersDisabled(tuned, () => run('base', tuned)) : undefined;
    const tunedResult = await run('tuned', model);
    post({
      status: 'compare-done', id,
      base: baseResult ? scores(baseResult.familyCounts) : {}, tuned: scores(tunedResult.familyCounts),
      baseOverall: baseResult?.overall ?? NaN, tunedOverall: tunedResult.overall,
    });
  } finally {
    base?.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Keep your work

/** A model's files in memory (saveModelFiles): base weights, and its LoRA adapter beside them or merged in; with the tokenizer and chat template when given. */
async function filesOf(m: CausalLM, opts: SaveModelOptions = {}): Promise<MemoryFiles> {
  const dir = new MemoryFiles();
  await saveModelFiles(m, dir, opts);
  return dir;
}

/** The model as a Hugging Face directory (LoRA merged in): config.json, model.safetensors and the tokenizer files (chat_template = the template trained with). */
async function checkpointFiles(m: CausalLM): Promise<MemoryFiles> {
  return filesOf(m, { adapter: 'merged', tokenizer, template });
}

async function storeSave(name: string) {
  if (!model) throw new Error('No model to save yet.');
  const dir = await filesOf(model, { tokenizer, template });
  // The pre-training snapshot of a full fine-tuning run rides along so the before/after panel works
  // after a reload (a LoRA model needs none: its files hold the base weights and the adapter apart).
  if (baseSnapshot) for (const [f, b] of baseSnapshot.files) dir.files.set(`base/${f}`, b);
  const store = await BrowserStore.open();
  try {
    return await store.save(name, dir.files, { model: modelName, template: template.name, templateSource: template.source, params: model.numParams() });
  } finally {
    store.close();
  }
}

/**
 * Loads a model (and its base snapshot and chat template, when saved with it) from a set of
 * files. Files holding only a PEFT adapter are applied to the current model.
 */
async function loadFrom(src: MemoryFiles | FileSource, from: string): Promise<ModelInfo> {
  if (!(await src.exists('config.json')) && (await src.exists(ADAPTER_CONFIG_FILE))) {
    if (!model) throw new Error(`${from}: an adapter needs a base model; load or train one first`);
    if (loraState(model)) throw new Error(`${from}: the current model already carries an adapter; load its base model first`);
    baseSnapshot = undefined;   // "before" is the model with the adapter switched off
    await loadAdapter(model, src);
    modelName = `${modelName} + adapter ${from}`;
    trainer?.dispose();
    trainer = undefined;
    return modelInfo(model, modelName, await evalLossOf(model));
  }
  const m = await loadModelFiles(src);
  // A checkpoint with its own tokenizer files reads with them (a tuned Hub model); otherwise the bundled one.
  tokenizer = (await src.exists('tokenizer.json')) && (await src.exists('tokenizer_config.json')) ? await loadTokenizer(src) : bundledTokenizer;
  if (await src.exists('tokenizer_config.json')) {
    try {
      const t = templateFromTokenizerConfig(await src.readText('tokenizer_config.json'), 'tokenizer_config.json');
      template = { ...t, name: 'saved template' };
    } catch { /* no chat_template: keep the current one */ }
  }
  baseSnapshot = undefined;
  if (src instanceof MemoryFiles && src.files.has('base/config.json')) {
    baseSnapshot = new MemoryFiles(new Map([...src.files].filter(([f]) => f.startsWith('base/')).map(([f, b]) => [f.slice(5), b])), 'base snapshot');
  }
  trainer?.dispose();
  trainer = undefined;
  setModel(m, from);
  return modelInfo(m, from, await evalLossOf(m));
}

// ---------------------------------------------------------------------------------------------
// Bring your own base model (Hub or files)

/** LoRA targets the page suggests for a pretrained model: every attention projection of its family. */
function loraTargetsFor(config: ModelConfig): string[] {
  return [...familyOf(config).attentionProjections];
}

function hubOptions(hub: HubRef, extra: HubOptions = {}): HubOptions {
  return { revision: hub.revision || 'main', endpoint: hub.endpoint || undefined, token: hub.token || undefined, ...extra };
}

function estimateView(est: MemoryEstimate): EstimateView {
  const fit = backend.limits ? checkFitsAdapter(est, backend.limits) : { ok: true as const };
  return {
    trainableParams: est.trainableParams, weights: est.weights, gradients: est.gradients, optimizer: est.optimizer,
    activations: est.activations, total: est.total, largestBuffer: est.largestBuffer, refusal: fit.ok ? undefined : fit.message,
  };
}

/** config.json (and the size of the weights) only: what loading and training will cost, before any weight is fetched. */
async function hubCheck(hub: HubRef, batchSize: number, seqLen: number, r: number, targets: string[]): Promise<HubCheckInfo> {
  const info = await fetchHubModelInfo(hub.repo.trim(), hubOptions(hub));
  const d = dims(info.config);
  const T = Math.min(seqLen, d.maxPositions);
  const loraTargets = targets.length ? targets : loraTargetsFor(info.config);
  // The path that will run: fused kernels on WebGPU, chunked loss, and checkpointing where the run needs it to fit.
  const path = backend.backend === 'webgpu' ? 'fused' as const : 'stock' as const;
  const lora = planTraining(info.config, { batchSize, seqLen: T, lora: { r, targets: loraTargets }, path }).estimate;
  const full = planTraining(info.config, { batchSize, seqLen: T, path }).estimate;
  return {
    source: info.source.name, modelType: info.config.model_type, params: lora.params, weightFiles: info.weightFiles, downloadBytes: info.downloadBytes,
    batchSize, seqLen: T, loraTargets, loraR: r, lora: estimateView(lora), full: estimateView(full),
    limits: backend.limits ? { maxBufferSize: backend.limits.maxBufferSize, maxStorageBufferBindingSize: backend.limits.maxStorageBufferBindingSize } : undefined,
  };
}

/** Makes a loaded base model the current one: its tokenizer and chat template are used from now on. */
async function usePretrained(p: PretrainedModel, name: string, again: () => Promise<PretrainedModel>): Promise<{ model: ModelInfo; pretrained: PretrainedInfo }> {
  if (pretrained?.pristine && pretrained.pristine !== model) pretrained.pristine.dispose();
  pretrained = { name, source: again, tokenizer: p.tokenizer, template: p.template, config: p.config, pristine: p.model };
  tokenizer = p.tokenizer;
  if (p.template) template = p.template;
  baseSnapshot = undefined;
  trainer?.dispose();
  trainer = undefined;
  setModel(p.model, name);
  return {
    model: modelInfo(p.model, name, await evalLossOf(p.model)),
    pretrained: {
      name, modelType: p.config.model_type, params: p.model.numParams(), maxPositions: dims(p.config).maxPositions,
      template: p.template ? { name: p.template.name, source: p.template.source } : undefined,
      loraTargets: loraTargetsFor(p.config),
    },
  };
}

async function hubLoad(id: number, hub: HubRef): Promise<void> {
  if (trainer?.status === 'running' || trainer?.status === 'paused') throw new Error('A run is going: stop it before loading another model.');
  hubAbort?.abort();
  const ctrl = new AbortController();
  hubAbort = ctrl;
  // Progress at most every 100 ms per file (and always its first and last event), not per network chunk.
  const last = new Map<string, number>();
  const onProgress = (file: string, loaded: number, total: number | undefined) => {
    const now = performance.now();
    if (loaded !== 0 && loaded !== total && now - (last.get(file) ?? 0) < 100) return;
    last.set(file, now);
    post({ status: 'hub-progress', id, file, loaded, total });
  };
  const repo = hub.repo.trim();
  const opts = hubOptions(hub, { signal: ctrl.signal, onProgress });
  try {
    const p = await loadFromHub(repo, opts);
    const name = hub.revision && hub.revision !== 'main' ? `${repo}@${hub.revision}` : repo;
    const r = await usePretrained(p, name, () => loadFromHub(repo, hubOptions(hub)));
    post({ status: 'model-loaded', id, model: r.model, from: name, pretrained: r.pretrained });
  } finally {
    if (hubAbort === ctrl) hubAbort = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Grow data: Self-Instruct / Evol-Instruct with the current model

/** The rows kept in "Grow data": the "grown" source of the training mixture. */
let grown: Example[] = [];
let growAbort: AbortController | undefined;

/** `count` bundled training rows taken round-robin over the families, so every family seeds. */
function bundledSeeds(count: number): Example[] {
  const byFamily = new Map<string, Example[]>();
  for (const ex of trainExamples) {
    const f = String(ex.meta.family ?? 'other');
    if (!byFamily.has(f)) byFamily.set(f, []);
    byFamily.get(f)!.push(ex);
  }
  const out: Example[] = [];
  for (let i = 0; out.length < count; i++) {
    const before = out.length;
    for (const rows of byFamily.values()) if (i < rows.length && out.length < count) out.push(rows[i]);
    if (out.length === before) break;
  }
  return out;
}

async function growData(id: number, s: GrowSettings): Promise<void> {
  if (!model) throw new Error('No model yet: load or train one first.');
  const rows = s.seeds === 'upload' ? uploaded : bundledSeeds(s.seedCount);
  if (rows.length === 0) throw new Error(s.seeds === 'upload' ? 'No uploaded rows to seed from: upload a JSONL file in the Dataset panel first.' : 'No seed rows.');
  const seedTasks = rows.map(seedTaskFromExample).filter((t) => t.instruction);
  growAbort = new AbortController();
  const common = {
    model, tokenizer, template, modelName, seedTasks, n: s.n, promptFormat: s.promptFormat, seed: s.seed, signal: growAbort.signal,
    answerSampling: { maxNewTokens: s.answerMaxNewTokens },
  };
  const sampling = { temperature: s.temperature, topP: s.topP, maxNewTokens: s.maxNewTokens };
  const run: GrowRun = s.method === 'self-instruct'
    ? selfInstruct({ ...common, fewShot: s.fewShot, maxPrompts: s.maxPrompts, instructionSampling: sampling })
    : evolInstruct({ ...common, operations: s.operations, rounds: s.rounds, evolSampling: sampling });
  post({ status: 'grow-started', id, model: modelName, params: model.numParams(), seeds: seedTasks.length });
  try {
    for await (const candidate of run) post({ status: 'grow-candidate', id, candidate, stats: run.stats });
    post({ status: 'grow-done', id, stats: run.stats, stopped: growAbort.signal.aborted });
  } finally {
    growAbort = undefined;
  }
}

async function handleGrow(msg: GrowRequest): Promise<void> {
  switch (msg.type) {
    case 'grow': await exclusive(() => growData(msg.id, msg.settings)); return;
    case 'grow-stop': growAbort?.abort(); return;
    case 'grow-use':
      grown = grownExamples(msg.rows);
      post({ status: 'grow-used', id: msg.id, rows: grown.length });
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Messages

async function handle(msg: Request): Promise<void> {
  switch (msg.type) {
    case 'grow': case 'grow-stop': case 'grow-use': return handleGrow(msg);
    case 'init': {
      post({ status: 'init-progress', message: 'Starting the GPU backend…' });
      backend = await initBackend({ onFallback: () => undefined, kernels: msg.kernels });
      post({ status: 'init-progress', message: 'Loading the tokenizer and the bundled data…' });
      tokenizer = bundledTokenizer = await loadBundledTokenizer();
      trainExamples = (await parseRows(trainText, 'train.jsonl')).examples;
      validExamples = (await parseRows(validText, 'valid.jsonl')).examples;
      // Warm up: one training step and one generation on a tiny model compile the shaders the
      // real run needs, so the first visible step is not minutes of shader compilation.
      post({ status: 'init-progress', message: 'Warming up the shaders (one tiny training step and a few generated tokens)…' });
      const t0 = performance.now();
      const warm = CausalLM.create(presetConfig('nano', { vocabSize: tokenizer.vocabSize }), { seed: 0 });
      const wt = new Trainer(warm, { train: await evalBatches(template, 'assistant', 48), maxSteps: 1, lr: 1e-3 });
      await wt.run();
      wt.dispose();
      await generateChat(warm, tokenizer, template, [{ role: 'user', content: 'Hi' }], { maxNewTokens: 2 });
      warm.dispose();
      const warmupMs = performance.now() - t0;
      const presets = Object.fromEntries((['nano', 'micro', 'small'] as PresetName[]).map((p) => [p, { params: countParams(presetConfig(p, { vocabSize: tokenizer.vocabSize })) }]));
      const { m, name } = hasBase ? { m: await loadModel(await baseSource()), name: 'models/base' }
        : { m: CausalLM.create(presetConfig('micro', { vocabSize: tokenizer.vocabSize }), { seed: 0 }), name: 'gpt2 micro (fresh)' };
      setModel(m, name);
      const { engine, ...plain } = backend;
      const view: BackendView = { ...plain, kernels: engine.path };
      post({ status: 'ready', backend: view, warmupMs, dataset: datasetInfo(), presets, hasBase, model: modelInfo(m, name) });
      return;
    }
    case 'render':
      post(render(msg.id, msg.template, msg.messages, msg.tools, msg.addGenerationPrompt));
      return;
    case 'upload': {
      const { examples, errors } = await parseRows(msg.text, msg.name);
      uploaded = examples;
      const families: Record<string, number> = {};
      for (const ex of examples) families[String(ex.meta.family ?? 'upload')] = (families[String(ex.meta.family ?? 'upload')] ?? 0) + 1;
      post({ status: 'upload', id: msg.id, name: msg.name, rows: examples.length, errors, families, samples: examples.slice(0, 3).map(rowView), check: checkUpload(msg.validationPercent) });
      return;
    }
    case 'data-check':
      uploadedTrain = splitValidation(uploaded, msg.validationPercent, 0).train;
      post({ status: 'data-check', id: msg.id, ...dataCheck(msg.tools, msg) });
      return;
    case 'train':
      try {
        // A comparison may be running the model with its adapter switched off: train only after it.
        if (busy) throw new Error('Busy answering prompts: start training when that finishes.');
        await train(msg.settings);
      } catch (e) {
        post({ status: 'train-status', state: 'failed', step: trainer?.step ?? 0, maxSteps: trainer?.maxSteps ?? 0, reason: 'error', error: (e as Error).message });
      }
      return;
    case 'pause': trainer?.pause(); return;
    case 'resume':
      // A comparison may be running the model with its adapter switched off: train only after it.
      if (busy) throw new Error('Busy answering prompts: resume when that finishes.');
      trainer?.resume();
      return;
    case 'stop': trainer?.stop(); return;
    case 'compare': await exclusive(() => compare(msg.id, msg.limit, msg.maxNewTokens)); return;
    case 'chat': {
      if (!model) throw new Error('No model yet.');
      const t0 = performance.now();
      const out = await exclusive(() => generateChat(model!, tokenizer, template, msg.messages, {
        maxNewTokens: msg.maxNewTokens, temperature: msg.temperature, seed: 1,
        onToken: (_id, text) => { if (text) post({ status: 'chat-token', id: msg.id, text }); },
      }));
      post({ status: 'chat-done', id: msg.id, text: out.text, tokens: out.ids.length, ms: performance.now() - t0 });
      return;
    }
    case 'store-list': {
      const store = await BrowserStore.open();
      try {
        post({ status: 'store-list', id: msg.id, entries: await store.list() });
      } finally {
        store.close();
      }
      return;
    }
    case 'store-save': {
      const entry = await exclusive(() => storeSave(msg.name));
      post({ status: 'store-saved', id: msg.id, entry, evalLoss: await evalLossOf(model!) });
      return;
    }
    case 'store-load': {
      const store = await BrowserStore.open();
      try {
        const files = await store.load(msg.name);
        post({ status: 'model-loaded', id: msg.id, model: await exclusive(() => loadFrom(files, `browser storage/${msg.name}`)), from: msg.name });
      } finally {
        store.close();
      }
      return;
    }
    case 'store-delete': {
      const store = await BrowserStore.open();
      try {
        await store.delete(msg.name);
        post({ status: 'store-deleted', id: msg.id, name: msg.name });
      } finally {
        store.close();
      }
      return;
    }
    case 'export': {
      if (!model) throw new Error('No model to download yet.');
      const stem = modelName.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '');
      let dir: MemoryFiles;
      if (msg.what === 'adapter') {
        if (!loraState(model)) throw new Error('The current model has no LoRA adapter: train with LoRA on to get one.');
        dir = new MemoryFiles();
        await saveAdapter(model, dir);
      } else dir = await exclusive(() => checkpointFiles(model!));   // merges the adapter for a moment: not while a step runs
      const zip = zipStore([...dir.files].map(([name, bytes]) => ({ name, bytes })));
      post({ status: 'export', id: msg.id, files: [{ name: `${stem}-${msg.what === 'adapter' ? 'peft-adapter' : 'hf'}.zip`, bytes: zip }] }, [zip.buffer]);
      return;
    }
    case 'hub-check':
      post({ status: 'hub-info', id: msg.id, info: await hubCheck(msg.hub, msg.batchSize, msg.seqLen, msg.lora.r, msg.lora.targets) });
      return;
    case 'hub-load': await exclusive(() => hubLoad(msg.id, msg.hub)); return;
    case 'hub-cancel': hubAbort?.abort(); return;
    case 'hub-clear-cache': post({ status: 'hub-cache-cleared', id: msg.id, deleted: await clearHubCache() }); return;
    case 'pretrained-files': {
      const src = filesSource(msg.files);
      const r = await exclusive(async () => usePretrained(await loadPretrainedFrom(src), src.name, () => loadPretrainedFrom(filesSource(msg.files))));
      post({ status: 'model-loaded', id: msg.id, model: r.model, from: src.name, pretrained: r.pretrained });
      return;
    }
    case 'load-files': {
      let src: FileSource | MemoryFiles;
      const zips = msg.files.filter((f) => f.name.endsWith('.zip'));
      if (zips.length === 1 && msg.files.length === 1) src = new MemoryFiles(unzipStore(new Uint8Array(await zips[0].arrayBuffer()), zips[0].name), zips[0].name);
      else src = filesSource(msg.files);
      const name = msg.files.length === 1 ? msg.files[0].name : src.name;
      post({ status: 'model-loaded', id: msg.id, model: await exclusive(() => loadFrom(src, name)), from: name });
      return;
    }
  }
}

/** Generation, comparison and saving read the model: not while a training step writes it. */
async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  if (trainer?.status === 'running') throw new Error('Training is running: pause or stop it first.');
  if (busy) throw new Error('Busy with another request; try again when it finishes.');
  busy = true;
  try {
    return await fn();
  } finally {
    busy = false;
  }
}

self.onmessage = (e: MessageEvent<Request>) => {
  const msg = e.data;
  handle(msg).catch((err: unknown) => {
    const id = 'id' in msg ? msg.id : undefined;
    post({ status: 'error', id, message: err instanceof Error ? err.message : String(err) });
  });
};
