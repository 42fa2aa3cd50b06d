/**
 * Resumable training checkpoints: the model as a Hugging Face directory (saveModel), the
 * trainable variables the model files do not hold (LoRA adapters), the AdamW moments and
 * trainer_state.json (step, data position, seed, schedule, options, log history, as
 * transformers' Trainer names them). The Trainer only reports and restores its progress
 * (Trainer.progress / restoreProgress); the files are written and read here.
 *
 * @example
 *   await saveTrainerCheckpoint(trainer, 'out/checkpoint-100');
 *   const resumed = await resumeTrainer('out/checkpoint-100', options);   // continues at step 101, bit for bit on the CPU
 */
import * as tf from '@tensorflow/tfjs';
import { openSink, openSource, type FileSink, type FileSource } from './files.js';
import { saveTrainState, loadTrainState, type HostTensor } from './train_state.js';
import { saveModel, loadModel } from './checkpoint.js';
import { parseSafetensors, writeSafetensors } from './safetensors.js';
import { Trainer, type TrainerOptions, type TrainableModel, type LogEntry, type DataPosition } from '../train/trainer.js';
import type { CausalLM } from '../../models/causal_lm.js';

const STATE_KIND = 'webtune-trainer';
/** Trainable variables that model.safetensors does not hold (LoRA adapters), F32 by trainer name. */
export const TRAINABLE_FILE = 'trainable_params.safetensors';

/**
 * Writes a resumable checkpoint: the model as a Hugging Face directory (config.json +
 * model.safetensors, via saveModel), trainable variables the model files do not hold
 * (trainable_params.safetensors: LoRA adapters; every trainable variable with
 * { saveModel: false }), the AdamW moments (optimizer.safetensors) and trainer_state.json
 * (step, data position, seed, schedule, options, log history). Call it between steps (e.g.
 * from a step listener or after pause()).
 */
export async function saveTrainerCheckpoint(trainer: Trainer, sink: FileSink | string, opts: { saveModel?: boolean } = {}): Promise<void> {
  const p = trainer.progress();   // throws while a step is in progress
  const out = openSink(sink);
  const savedByModel = new Set<tf.Variable>();
  if (opts.saveModel !== false) {
    if (!isCausalLM(trainer.model)) throw new Error('saveTrainerCheckpoint: the model is not a CausalLM; pass { saveModel: false } and save it yourself');
    await saveModel(trainer.model, out);
    for (const v of trainer.model.params.values()) savedByModel.add(v);
  }
  // Trainable variables the model files do not hold (LoRA adapters, or everything when the
  // model is not saved) go to their own file, so a resume restores them exactly.
  const extra = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of p.params) if (!savedByModel.has(v)) extra.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
  if (extra.size > 0) await out.write(TRAINABLE_FILE, writeSafetensors(extra, { format: 'webtune-trainable' }));
  const expAvg = new Map<string, HostTensor>(), expAvgSq = new Map<string, HostTensor>();
  for (const [name, m] of p.optimizer.m) {
    expAvg.set(name, { shape: m.shape, data: (await m.data()) as Float32Array });
    expAvgSq.set(name, { shape: m.shape, data: (await p.optimizer.v.get(name)!.data()) as Float32Array });
  }
  const o = trainer.options;
  const trainerState = {
    kind: STATE_KIND,
    global_step: p.step,
    max_steps: trainer.maxSteps,
    epoch: trainer.epoch,
    seed: trainer.seed,
    data_position: { ...p.position },
    schedule: { ...trainer.schedule },
    gradient_accumulation_steps: trainer.gradientAccumulationSteps,
    optimizer: { beta1: o.beta1 ?? 0.9, beta2: o.beta2 ?? 0.999, eps: o.eps ?? 1e-8, weight_decay: o.weightDecay ?? 0 },
    max_grad_norm: o.maxGradNorm ?? 1.0,
    shuffle: o.shuffle ?? false,
    num_tokens: p.tokensSeen,
    skipped_steps: p.skipped,
    elapsed_ms: p.elapsedMs,
    log_history: p.logHistory.map(jsonSafeEntry),
  };
  await saveTrainState(out, { trainerState, optimizer: { step: p.optimizer.step, expAvg, expAvgSq } });
}

/**
 * Restores a checkpoint written by saveCheckpoint and returns a trainer positioned after its
 * last step. `options` must describe the same run (same train data, seed and accumulation;
 * the run may be extended with a larger maxSteps). The model is loaded from the checkpoint
 * unless one is given (e.g. the base model with the same LoRA adapters attached); either way
 * the variables in trainable_params.safetensors, when present, are restored into it by name.
 */
export async function resumeTrainer(checkpoint: FileSource | string, options: TrainerOptions, model?: TrainableModel): Promise<Trainer> {
  const src = openSource(checkpoint);
  const { trainerState: s, optimizer } = await loadTrainState(src);
  const where = `${src.name}/trainer_state.json`;
  if (s.kind !== STATE_KIND) throw new Error(`${where}: "state.kind" is ${JSON.stringify(s.kind)}, expected "${STATE_KIND}"`);
  const num = (field: string): number => {
    const v = s[field];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${where}: "state.${field}" must be a number`);
    return v;
  };
  const seed = num('seed'), step = num('global_step'), accum = num('gradient_accumulation_steps');
  if (options.seed !== undefined && options.seed !== seed) throw new Error(`${where}: saved with seed ${seed}, but options.seed is ${options.seed}; a resumed run must use the same seed`);
  if ((options.gradientAccumulationSteps ?? 1) !== accum) throw new Error(`${where}: saved with gradient_accumulation_steps ${accum}, but options.gradientAccumulationSteps is ${options.gradientAccumulationSteps ?? 1}`);
  const pos = s.data_position as DataPosition | undefined;
  if (!pos || !Number.isInteger(pos.epoch) || !Number.isInteger(pos.batchIndex)) throw new Error(`${where}: "state.data_position" must be {epoch, batchIndex} integers`);
  const m = model ?? (await loadModel(src));
  if (await src.exists(TRAINABLE_FILE)) {
    const file = `${src.name}/${TRAINABLE_FILE}`;
    const { tensors } = parseSafetensors(await src.read(TRAINABLE_FILE), file);
    const params = m.trainableParams();
    for (const [name, rec] of tensors) {
      const v = params.get(name);
      if (!v) throw new Error(`${file}: '${name}' is not a trainable parameter of the model (attach the same adapters before resuming)`);
      if (rec.shape.join(',') !== v.shape.join(',')) throw new Error(`${file}: '${name}' has shape [${rec.shape}], the parameter [${v.shape}]`);
      tf.tidy(() => v.assign(tf.tensor(rec.data as Float32Array, rec.shape, 'float32')));
    }
  }
  const trainer = new Trainer(m, { ...options, seed });
  trainer.restoreProgress({
    step, position: { epoch: pos.epoch, batchIndex: pos.batchIndex }, tokensSeen: num('num_tokens'), skipped: num('skipped_steps'),
    elapsedMs: num('elapsed_ms'), logHistory: Array.isArray(s.log_history) ? (s.log_history as LogEntry[]) : [],
  });
  if (optimizer) {
    const st = trainer.progress().optimizer;
    for (const name of st.m.keys()) if (!optimizer.expAvg.has(name)) throw new Error(`${src.name}/optimizer.safetensors: no moments for trainable parameter '${name}'`);
    for (const name of optimizer.expAvg.keys()) if (!st.m.has(name)) throw new Error(`${src.name}/optimizer.safetensors: moments for '${name}', which is not a trainable parameter of the model`);
    for (const [name, mv] of st.m) {
      const saved = optimizer.expAvg.get(name)!;
      if (saved.shape.join(',') !== mv.shape.join(',')) throw new Error(`${src.name}/optimizer.safetensors: '${name}' has shape [${saved.shape}], the parameter [${mv.shape}]`);
      tf.tidy(() => {
        mv.assign(tf.tensor(saved.data, saved.shape, 'float32'));
        st.v.get(name)!.assign(tf.tensor(optimizer.expAvgSq.get(name)!.data, saved.shape, 'float32'));
      });
    }
    st.step = optimizer.step;
  }
  return trainer;
}

/** Whether a trainable model is a CausalLM (saved as a model directory with the checkpoint). */
function isCausalLM(model: TrainableModel): model is CausalLM {
  const m = model as Partial<CausalLM>;
  return typeof m.linearModules === 'function' && m.params instanceof Map && typeof m.config === 'object';
}

/** History entries with non-finite numbers written as strings, since JSON cannot hold them. */
function jsonSafeEntry(e: LogEntry): LogEntry {
  const out: LogEntry = {};
  for (const [k, v] of Object.entries(e)) out[k] = typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
  return out;
}
