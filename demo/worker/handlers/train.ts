/**
 * The training panel: a run from the page's settings (the starting model, the mixture, LoRA or
 * full fine-tuning, the memory plan), streamed step by step, with pause, resume and stop.
 */
import {
  CausalLM, Trainer, prepareDataset, filtersFrom, filterReportLines, presetConfig, dims, applyLora, loraState, planTraining, selectEngine,
  startGpuMeter, type ModelConfig, type PresetName, type TrainerOptions,
} from '../../../src/index.js';
import type { TrainSettings } from '../../protocol.js';
import { post, loadBase, filesOf, type Handlers, type WorkerState } from '../state.js';
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

async function train(st: WorkerState, s: TrainSettings): Promise<void> {
  if (st.training) throw new Error('A run is already going: stop it first.');
  post({ status: 'train-status', state: 'preparing', step: 0, maxSteps: 0 });
  // A loaded base model reads with its own tokenizer; fresh presets and models/base with the bundled one.
  if (s.model === 'pretrained') st.tokenizer = st.needPretrained().tokenizer;
  else if (s.model !== 'current') st.tokenizer = st.bundledTokenizer;
  const maxPositions = s.model === 'pretrained' ? dims(st.needPretrained().config).maxPositions : s.model === 'current' && st.model ? dims(st.model.config).maxPositions : Infinity;
  if (s.maxLength > maxPositions) throw new Error(`Max length ${s.maxLength} is longer than the model reads (${maxPositions} positions): lower it.`);
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

  const start = await startingModel(st, s);
  // The run's engine: the backend's (fused kernels on WebGPU) unless the page asks for a path to compare.
  const engine = selectEngine(st.backend.backend, s.kernels);
  const m = start.m.engine === engine ? start.m : start.m.withEngine(engine);
  let name = start.name;
  // Full fine-tuning changes the weights in place: "before" needs a snapshot of them. (A model that
  // already carries an adapter is saved as its base weights + that adapter.) LoRA leaves the base
  // weights alone: "before" is the model with its adapter switched off, no copy needed.
  st.baseSnapshot = s.lora.enabled ? undefined : await filesOf(m);
  if (s.lora.enabled) {
    if (loraState(m)) throw new Error('The current model already carries a LoRA adapter: start from a preset or the base model to train a new one.');
    // No targets given: applyLora uses the family's default (PEFT's).
    const state = applyLora(m, {
      r: s.lora.r, alpha: s.lora.alpha, targetModules: s.lora.targets.length ? s.lora.targets : undefined, modulesToSave: s.lora.modulesToSave, seed: s.seed,
      baseModelNameOrPath: s.model === 'pretrained' ? start.name : null,
    });
    name = `${start.name} + LoRA r=${state.r}`;
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
  const tr = new Trainer(m, options);
  st.trainer = tr;
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
      post({ status: 'train-status', state: e.status, step: e.step, maxSteps, reason: e.reason, error: e.error, model: done ? st.modelInfo(m, st.modelName) : undefined });
    } else if (e.type === 'skip') {
      post({ status: 'preparing', message: `step ${e.step} skipped: ${e.reason}` });
    }
  });
  post({ status: 'train-status', state: 'idle', step: 0, maxSteps, model: st.modelInfo(m, name) });
  try {
    await tr.run();
  } finally {
    meter.stop();
  }
}

export const trainHandlers: Handlers<'train' | 'pause' | 'resume' | 'stop'> = {
  async train(msg, s) {
    try {
      // A comparison may be running the model with its adapter switched off: train only after it.
      s.checkNotBusy('start training');
      await train(s, msg.settings);
    } catch (e) {
      post({ status: 'train-status', state: 'failed', step: s.trainer?.step ?? 0, maxSteps: s.trainer?.maxSteps ?? 0, reason: 'error', error: (e as Error).message });
    }
  },
  pause: (_msg, s) => s.trainer?.pause(),
  resume(_msg, s) {
    s.checkNotBusy('resume');
    s.trainer?.resume();
  },
  stop: (_msg, s) => s.trainer?.stop(),
};
