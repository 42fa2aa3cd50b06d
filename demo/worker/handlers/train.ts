/**
 * The training panel: a run from the page's settings (the starting model, the mixture, LoRA or
 * full fine-tuning, the memory plan), streamed step by step, with pause, resume and stop. Every
 * `saveEvery` steps the run saves a resumable checkpoint into the page's run folder
 * (page_run.ts); a run a closed tab cut short continues from there ('resume-run').
 */
import {
  CausalLM, Trainer, prepareDataset, filtersFrom, filterReportLines, presetConfig, dims, applyLora, loraState, planTraining, selectEngine,
  startGpuMeter, loadModel, loadTokenizer, resumeTrainer, type ModelConfig, type PresetName, type TrainerOptions, type TrainerStatus, type LogEntry,
} from '../../../src/index.js';
import type { TrainSettings, TemplateSpec, ReplyOf } from '../../protocol.js';
import { post, loadBase, filesOf, type Handlers, type WorkerState } from '../state.js';
import { openPageRun, type PageRun, type PageRunRecord, type InterruptedRun } from '../page_run.js';
import { trainSources } from './data.js';

/** The model a run starts from: the current one, models/base, the loaded base model, or a fresh preset. */
async function startingModel(st: WorkerState, s: TrainSettings): Promise<{ m: CausalLM; name: string }> {
  if (s.model === 'current') return { m: st.needModel('There is no current model yet: pick a preset or the base model.'), name: st.modelName };
  if (s.model === 'base') return { m: await loadBase(), name: 'models/base' };
  if (s.model === 'pretrained') {
    const p = st.needPretrained();
    if (p.pristine && p.pristine === st.model) {
      const m = p.pristine;
      p.pristine = undefined; // training changes it from here on
      return { m, name: p.name };
    }
    return { m: (await p.source()).model, name: p.name };
  }
  const config: ModelConfig = presetConfig(s.model as PresetName, { vocabSize: st.tokenizer.vocabSize, family: s.family });
  return { m: CausalLM.create(config, { seed: s.seed }), name: `${s.family} ${s.model} (fresh)` };
}

/** The model and tokenizer an interrupted run continues with: its checkpoint's weights (adapters are attached and restored later), its own tokenizer if it saved one. */
async function resumedModel(st: WorkerState, cut: InterruptedRun): Promise<{ m: CausalLM; name: string }> {
  st.tokenizer = (await cut.checkpoint.exists('tokenizer.json')) ? await loadTokenizer(cut.checkpoint) : st.bundledTokenizer;
  st.uploaded = cut.record.uploaded;
  st.grown = cut.record.grown;
  return { m: await loadModel(cut.checkpoint), name: cut.record.startName };
}

/** A history's steps and evaluations for the charts (numbers JSON could not hold were saved as strings). */
function chartHistory(history: readonly LogEntry[]): ReplyOf<'train-history'> {
  return {
    status: 'train-history',
    steps: history.filter((e) => 'loss' in e).map((e) => ({ step: Number(e.step), loss: Number(e.loss), lr: Number(e.learning_rate), gradNorm: Number(e.grad_norm) })),
    evals: history.filter((e) => 'eval_loss' in e).map((e) => ({ step: Number(e.step), evalLoss: Number(e.eval_loss) })),
  };
}

/** A template as a record keeps it: a built-in by name, any other as its source (a model's own needs that model loaded). */
const savedTemplate = (spec: TemplateSpec, t: { source: string; bosToken: string; eosToken: string }): TemplateSpec =>
  spec.kind === 'builtin' ? spec : { kind: 'jinja', source: t.source, bosToken: t.bosToken, eosToken: t.eosToken };

/**
 * A run from the page's settings, or (`cut`) the interrupted run continued from its newest
 * checkpoint with the settings and rows it was started with.
 */
async function train(st: WorkerState, s: TrainSettings, cut?: InterruptedRun, pageRun?: PageRun): Promise<void> {
  if (st.training) throw new Error('A run is already going: stop it first.');
  post({ status: 'train-status', state: 'preparing', step: 0, maxSteps: 0 });
  if (!cut) {
    // A loaded base model reads with its own tokenizer; fresh presets and models/base with the bundled one.
    if (s.model === 'pretrained') st.tokenizer = st.needPretrained().tokenizer;
    else if (s.model !== 'current') st.tokenizer = st.bundledTokenizer;
    const maxPositions = s.model === 'pretrained' ? dims(st.needPretrained().config).maxPositions : s.model === 'current' && st.model ? dims(st.model.config).maxPositions : Infinity;
    if (s.maxLength > maxPositions) throw new Error(`Max length ${s.maxLength} is longer than the model reads (${maxPositions} positions): lower it.`);
  }
  const start = cut ? await resumedModel(st, cut) : undefined;
  const t = st.templateOf(s.template);
  // One source per task family, weighted: the mixture the dataset panel shows. The upload's
  // validation split is held out of training (its eval loss is measured with the bundled slice).
  const sources = trainSources(st, s);
  if (sources.length === 0) throw new Error('Every mixture weight is 0: give at least one family a weight.');
  const data = await prepareDataset({
    sources, template: t, tokenizer: st.tokenizer, mask: s.mask, maxLength: s.maxLength, seqLen: s.maxLength, onRowError: 'skip', seed: s.seed,
    filters: s.dataTools ? filtersFrom(s.dataTools) : undefined, curriculum: s.dataTools?.curriculum,
  });
  post({ status: 'preparing', message: `${data.examples.length} examples, ${data.summary.trainedTokens} trained tokens, ${data.summary.dropped.total} dropped` });
  if (data.summary.filters) for (const line of filterReportLines(data.summary.filters)) post({ status: 'preparing', message: line });
  const batchesPerEpoch = Math.ceil(data.examples.length / s.batchSize);

  const { m: startModel, name: startName } = start ?? await startingModel(st, s);
  // The run's engine: the backend's (fused kernels on WebGPU) unless the page asks for a path to compare.
  const engine = selectEngine(st.backend.backend, s.kernels);
  const m = startModel.engine === engine ? startModel : startModel.withEngine(engine);
  let name = startName;
  // Full fine-tuning changes the weights in place: "before" needs a snapshot of them. (A model that
  // already carries an adapter is saved as its base weights + that adapter.) LoRA leaves the base
  // weights alone: "before" is the model with its adapter switched off, no copy needed. (A resumed
  // run's weights are already trained: it has no "before".)
  st.baseSnapshot = s.lora.enabled || cut ? undefined : await filesOf(m);
  if (s.lora.enabled) {
    if (loraState(m)) throw new Error('The current model already carries a LoRA adapter: start from a preset or the base model to train a new one.');
    // No targets given: applyLora uses the family's default (PEFT's).
    const state = applyLora(m, {
      r: s.lora.r, alpha: s.lora.alpha, targetModules: s.lora.targets.length ? s.lora.targets : undefined, modulesToSave: s.lora.modulesToSave, seed: s.seed,
      baseModelNameOrPath: s.model === 'pretrained' ? startName : null,
    });
    name = `${startName} + LoRA r=${state.r}`;
  }
  st.setModel(m, name);
  st.template = t;

  // Memory planned before the first dispatch: refuse what cannot be bound, checkpoint what would not fit.
  const plan = planTraining(m.config, {
    batchSize: s.batchSize, seqLen: Math.min(s.maxLength, dims(m.config).maxPositions), gradientCheckpointing: s.gradientCheckpointing,
    lora: s.lora.enabled ? { r: s.lora.r, targets: 'all-linear' } : undefined, path: st.backend.backend === 'webgpu' ? 'fused' : 'stock',
  }, { limits: st.backend.limits });
  if (plan.refusal) throw new Error(`This run cannot start on this GPU: ${plan.refusal}`);
  if (plan.reason) post({ status: 'preparing', message: `Gradient checkpointing turned on: ${plan.reason}.`, gradientCheckpointing: true });

  const usesUpload = (s.uploadWeight ?? 0) > 0;
  const options: TrainerOptions = {
    gradientCheckpointing: plan.gradientCheckpointing,
    train: (epoch: number) => data.batches({ batchSize: s.batchSize, firstEpoch: epoch, seed: s.seed }),
    batchesPerEpoch,
    eval: s.evalEvery > 0 ? await st.evalBatches(t, s.mask, s.maxLength, { uploadValid: usesUpload ? st.uploadSplit(s.validationPercent).valid : [] }) : undefined,
    evalEvery: s.evalEvery,
    lr: s.lr, schedule: s.schedule, warmupSteps: s.warmupSteps, seed: s.seed,
    forwardOptions: s.neftune.enabled && s.neftune.alpha > 0 ? { neftune: { alpha: s.neftune.alpha } } : undefined,
    ...(s.steps > 0 ? { maxSteps: s.steps } : { epochs: s.epochs }),
  };
  st.dropTrainer();
  post({ status: 'preparing', message: `Compiling the ${engine.path} path's shaders for this model…` });
  await m.engine.warmUp(m.config);
  // A resumed run: its adapters, AdamW moments, step, data position and history from the checkpoint.
  const tr = cut ? await resumeTrainer(cut.checkpoint, options, m) : new Trainer(m, options);
  st.trainer = tr;
  st.pauseAsked = false;
  const maxSteps = tr.maxSteps;
  if (cut) post(chartHistory(tr.history));

  // Checkpoints into the page's run folder: a new run replaces what an earlier one left.
  const saveEvery = pageRun ? s.saveEvery : 0;
  if (pageRun && !cut) await pageRun.begin();
  const record: PageRunRecord = {
    settings: { ...s, template: savedTemplate(s.template, t) }, startName, maxSteps,
    uploaded: usesUpload ? st.uploaded : [], grown: (s.growWeight ?? 0) > 0 ? st.grown : [],
  };
  const own = st.tokenizer !== st.bundledTokenizer ? { tokenizer: st.tokenizer, template: t, config: m.config } : undefined;
  const save = async () => {
    try {
      const c = await pageRun!.save(tr, record, own);
      post({ status: 'run-saved', step: c.step, location: c.location });
    } catch (e) {
      post({ status: 'preparing', message: `Checkpoint of step ${tr.step} not saved: ${(e as Error).message}` });
    }
  };
  // A save waits for the step to end: the trainer pauses for it (the page is not told) and goes on
  // after, unless the user paused meanwhile.
  let saveDue = false;
  const saveThenGoOn = async () => {
    await save();
    st.runSave = undefined;
    if (!st.pauseAsked) tr.resume();
    else if (tr.status === 'paused') post({ status: 'train-status', state: 'paused', step: tr.step, maxSteps });
  };
  // The run's last status goes to the page after its folder is settled: a page that sees "done" finds nothing to resume.
  let ended: { state: TrainerStatus; step: number; reason?: string; error?: string } | undefined;
  // GPU dispatches per step: the meter's count since the previous step (evaluations left out).
  const meter = startGpuMeter();
  let counted = 0;
  const dispatchesSince = () => { const d = meter.read().dispatches; const n = d - counted; counted = d; return n; };
  tr.on((e) => {
    if (e.type === 'step') {
      post({ status: 'step', step: e.step, maxSteps, epoch: e.epoch, loss: e.loss, lr: e.lr, gradNorm: e.gradNorm, tokensPerSecond: e.tokensPerSecond, elapsedMs: e.elapsedMs,
        path: m.engine.path, dispatches: dispatchesSince() });
      if (saveEvery > 0 && e.step % saveEvery === 0 && e.step < maxSteps) {
        saveDue = true;
        tr.pause();
      }
    } else if (e.type === 'status' && e.status === 'paused' && saveDue) {
      saveDue = false;
      st.runSave = saveThenGoOn();
    } else if (e.type === 'status' && (e.status === 'done' || e.status === 'stopped' || e.status === 'failed')) {
      ended = { state: e.status, step: e.step, reason: e.reason, error: e.error };
    } else if (e.type === 'eval') {
      dispatchesSince();
      post({ status: 'eval', step: e.step, evalLoss: e.evalLoss, tokenAccuracy: e.tokenAccuracy });
    } else if (e.type === 'status') {
      if (e.status === 'running') dispatchesSince();   // nothing done while paused counts toward the next step
      post({ status: 'train-status', state: e.status, step: e.step, maxSteps, reason: e.reason, error: e.error });
    } else if (e.type === 'skip') {
      post({ status: 'preparing', message: `step ${e.step} skipped: ${e.reason}` });
    }
  });
  post({ status: 'train-status', state: 'idle', step: tr.step, maxSteps, model: st.modelInfo(m, name) });
  try {
    await tr.run();
  } finally {
    meter.stop();
    await st.runSave;
    // A run that ended leaves nothing to resume; a failed one keeps its checkpoints.
    if (pageRun && (ended?.state === 'done' || ended?.state === 'stopped')) await pageRun.finish().catch(() => undefined);
    if (ended) post({ status: 'train-status', state: ended.state, step: ended.step, maxSteps, reason: ended.reason, error: ended.error, model: st.modelInfo(m, st.modelName) });
  }
}

/** A run with the page's run folder open (checkpoints off, with a note, where browser storage is not available). */
async function withRunFolder(fn: (run: PageRun | undefined) => Promise<void>): Promise<void> {
  const opened = await openPageRun().catch((e: Error) => {
    post({ status: 'preparing', message: `Checkpoints are off: ${e.message}` });
    return undefined;
  });
  try {
    await fn(opened?.run);
  } finally {
    opened?.close();
  }
}

/** What the page shows as "failed" when a run could not start or broke. */
function failed(s: WorkerState, e: unknown): void {
  post({ status: 'train-status', state: 'failed', step: s.trainer?.step ?? 0, maxSteps: s.trainer?.maxSteps ?? 0, reason: 'error', error: (e as Error).message });
}

export const trainHandlers: Handlers<'train' | 'pause' | 'resume' | 'stop' | 'resume-run' | 'discard-run'> = {
  async train(msg, s) {
    try {
      // A comparison may be running the model with its adapter switched off: train only after it.
      s.checkNotBusy('start training');
      await withRunFolder((run) => train(s, msg.settings, undefined, run));
    } catch (e) {
      failed(s, e);
    }
  },
  async 'resume-run'(_msg, s) {
    try {
      s.checkNotBusy('resume the run');
      const opened = await openPageRun();
      try {
        const cut = await opened.run.interrupted();
        if (!cut) throw new Error('There is no interrupted run to resume.');
        await train(s, cut.record.settings, cut, opened.run);
      } finally {
        opened.close();
      }
    } catch (e) {
      failed(s, e);
    }
  },
  async 'discard-run'() {
    const opened = await openPageRun();
    try {
      await opened.run.finish();
    } finally {
      opened.close();
    }
  },
  pause(_msg, s) {
    s.pauseAsked = true;
    s.trainer?.pause();
  },
  resume(_msg, s) {
    s.checkNotBusy('resume');
    s.pauseAsked = false;
    // A checkpoint being saved goes on with the run when it is written.
    if (!s.runSave) s.trainer?.resume();
  },
  stop: (_msg, s) => s.trainer?.stop(),
};
