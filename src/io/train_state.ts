/**
 * Training state saved beside a checkpoint, so that a resumed run continues exactly where it
 * stopped. Two files:
 *
 *   optimizer.safetensors   AdamW moments, F32, keys `<param>.exp_avg` and `<param>.exp_avg_sq`
 *                           (the parameter's Hugging Face name; torch's state names), metadata
 *                           {"format": "webtune-optimizer", "step": "<updates applied>"}
 *   trainer_state.json      {"format": "webtune-trainer-state", "version": 1,
 *                            "optimizer": {"file": "optimizer.safetensors", "step", "params"} | null,
 *                            "state": {...}}
 *
 * `state` is whatever the trainer needs (step, epoch, seed/rng state, data position, config,
 * metrics history...): this module only guarantees that it comes back as it went in. JSON cannot
 * hold NaN, Infinity, undefined or BigInt (JSON.stringify would silently turn a NaN loss into
 * null), so such values are refused on save with the path to the value.
 *
 * @example
 * await saveTrainState(sink, { trainerState: { step: 10, seed: 0 }, optimizer: { step: 10, expAvg, expAvgSq } });
 * const { trainerState, optimizer } = await loadTrainState(src);
 */
import { parseSafetensors, writeSafetensors, type WritableTensor } from './safetensors.js';
import { FileNotFoundError, type FileSink, type FileSource } from './files.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FORMAT = 'webtune-trainer-state';
const OPTIMIZER_FORMAT = 'webtune-optimizer';
const VERSION = 1;

/** A host-side float32 tensor. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** AdamW moments by parameter name (torch's exp_avg / exp_avg_sq) and the number of updates applied. */
export interface OptimizerMoments {
  step: number;
  expAvg: Map<string, HostTensor>;
  expAvgSq: Map<string, HostTensor>;
}

export interface TrainState {
  trainerState: Record<string, unknown>;
  optimizer?: OptimizerMoments; // absent: nothing saved (evaluation-only state, or a fresh optimizer is intended)
}

/** Throws, naming the path, at the first value JSON cannot carry exactly. */
function checkJsonValue(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`${TRAINER_STATE_FILE}: ${path} is ${value}, which JSON cannot hold (store it as a string or null explicitly)`);
      return;
    case 'object': {
      if (value === null) return;
      if (seen.has(value)) throw new Error(`${TRAINER_STATE_FILE}: ${path} is a circular reference`);
      seen.add(value);
      if (Array.isArray(value)) {
        value.forEach((v, i) => checkJsonValue(v, `${path}[${i}]`, seen));
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          throw new Error(`${TRAINER_STATE_FILE}: ${path} is a ${proto?.constructor?.name ?? 'non-plain object'}, not a plain object or array`);
        }
        for (const [k, v] of Object.entries(value)) checkJsonValue(v, `${path}.${k}`, seen);
      }
      seen.delete(value);
      return;
    }
    default:
      throw new Error(`${TRAINER_STATE_FILE}: ${path} is ${typeof value === 'bigint' ? 'a BigInt' : typeof value}, which JSON cannot hold`);
  }
}

function checkMoments(opt: OptimizerMoments): void {
  if (!Number.isSafeInteger(opt.step) || opt.step < 0) throw new Error(`${OPTIMIZER_FILE}: step must be a non-negative integer, got ${opt.step}`);
  for (const name of opt.expAvg.keys()) if (!opt.expAvgSq.has(name)) throw new Error(`${OPTIMIZER_FILE}: parameter "${name}" has exp_avg but no exp_avg_sq`);
  for (const name of opt.expAvgSq.keys()) if (!opt.expAvg.has(name)) throw new Error(`${OPTIMIZER_FILE}: parameter "${name}" has exp_avg_sq but no exp_avg`);
  for (const [name, m] of opt.expAvg) {
    const v = opt.expAvgSq.get(name)!;
    if (m.shape.join(',') !== v.shape.join(',')) {
      throw new Error(`${OPTIMIZER_FILE}: parameter "${name}": exp_avg shape [${m.shape}] differs from exp_avg_sq shape [${v.shape}]`);
    }
  }
}

/** Writes optimizer.safetensors (when `state.optimizer` is given) and trainer_state.json, in that order. */
export async function saveTrainState(sink: FileSink, state: TrainState): Promise<void> {
  checkJsonValue(state.trainerState, 'state', new Set());
  let optimizerInfo: Record<string, unknown> | null = null;
  if (state.optimizer) {
    const opt = state.optimizer;
    checkMoments(opt);
    const tensors = new Map<string, WritableTensor>();
    for (const [name, m] of opt.expAvg) {
      tensors.set(`${name}.exp_avg`, m);
      tensors.set(`${name}.exp_avg_sq`, opt.expAvgSq.get(name)!);
    }
    let bytes: Uint8Array;
    try {
      bytes = writeSafetensors(tensors, { format: OPTIMIZER_FORMAT, step: String(opt.step) });
    } catch (e) {
      throw new Error(`${OPTIMIZER_FILE}: ${(e as Error).message}`);
    }
    await sink.write(OPTIMIZER_FILE, bytes);
    optimizerInfo = { file: OPTIMIZER_FILE, step: opt.step, params: opt.expAvg.size };
  }
  // trainer_state.json last: it names the optimizer file, so a save interrupted before it leaves
  // the previous trainer state (and a missing or mismatched optimizer step is detected on load).
  const json = { format: STATE_FORMAT, version: VERSION, optimizer: optimizerInfo, state: state.trainerState };
  await sink.write(TRAINER_STATE_FILE, JSON.stringify(json, null, 2) + '\n');
}

/** Reads and validates what saveTrainState wrote. Errors name the file (source path included) and the field. */
export async function loadTrainState(src: FileSource): Promise<TrainState> {
  const where = `${src.name.replace(/\/$/, '')}/${TRAINER_STATE_FILE}`;
  let json: unknown;
  try {
    json = JSON.parse(await src.readText(TRAINER_STATE_FILE));
  } catch (e) {
    if (e instanceof FileNotFoundError) throw new Error(`${e.message}: not a resumable checkpoint (no ${TRAINER_STATE_FILE})`);
    if (e instanceof SyntaxError) throw new Error(`${where}: not valid JSON (${e.message})`);
    throw e;
  }
  const obj = json as Record<string, unknown>;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${where}: must be a JSON object`);
  if (obj.format !== STATE_FORMAT) throw new Error(`${where}: "format" is ${JSON.stringify(obj.format)}, expected "${STATE_FORMAT}"`);
  if (obj.version !== VERSION) throw new Error(`${where}: "version" ${JSON.stringify(obj.version)} is not supported (this build reads version ${VERSION})`);
  const trainerState = obj.state;
  if (typeof trainerState !== 'object' || trainerState === null || Array.isArray(trainerState)) throw new Error(`${where}: "state" must be an object`);
  const info = obj.optimizer;
  if (info === null || info === undefined) return { trainerState: trainerState as Record<string, unknown> };

  const inf = info as Record<string, unknown>;
  if (typeof info !== 'object' || Array.isArray(info)) throw new Error(`${where}: "optimizer" must be an object or null`);
  if (inf.file !== OPTIMIZER_FILE) throw new Error(`${where}: "optimizer.file" must be "${OPTIMIZER_FILE}", got ${JSON.stringify(inf.file)}`);
  if (!Number.isSafeInteger(inf.step) || (inf.step as number) < 0) throw new Error(`${where}: "optimizer.step" must be a non-negative integer`);
  if (!Number.isSafeInteger(inf.params) || (inf.params as number) < 0) throw new Error(`${where}: "optimizer.params" must be a non-negative integer`);

  const optWhere = `${src.name.replace(/\/$/, '')}/${OPTIMIZER_FILE}`;
  if (!(await src.exists(OPTIMIZER_FILE))) throw new Error(`${optWhere}: missing, but ${TRAINER_STATE_FILE} refers to it`);
  const { tensors, metadata } = parseSafetensors(await src.read(OPTIMIZER_FILE), optWhere);
  if (metadata.format !== OPTIMIZER_FORMAT) throw new Error(`${optWhere}: metadata "format" is ${JSON.stringify(metadata.format)}, expected "${OPTIMIZER_FORMAT}"`);
  if (metadata.step !== String(inf.step)) {
    throw new Error(`${optWhere}: saved at optimizer step ${metadata.step} but ${TRAINER_STATE_FILE} says ${inf.step}: the two files come from different saves`);
  }
  const expAvg = new Map<string, HostTensor>(), expAvgSq = new Map<string, HostTensor>();
  for (const [key, t] of tensors) {
    const m = /^(.+)\.(exp_avg|exp_avg_sq)$/.exec(key);
    if (!m) throw new Error(`${optWhere}: tensor "${key}": expected "<param>.exp_avg" or "<param>.exp_avg_sq"`);
    if (t.dtype !== 'F32') throw new Error(`${optWhere}: tensor "${key}": dtype ${t.dtype}, expected F32`);
    (m[2] === 'exp_avg' ? expAvg : expAvgSq).set(m[1], { shape: t.shape, data: t.data as Float32Array });
  }
  const optimizer: OptimizerMoments = { step: inf.step as number, expAvg, expAvgSq };
  try {
    checkMoments(optimizer);
  } catch (e) {
    throw new Error(`${optWhere}${(e as Error).message.slice(OPTIMIZER_FILE.length)}`);
  }
  if (expAvg.size !== inf.params) throw new Error(`${optWhere}: holds moments for ${expAvg.size} parameters but ${TRAINER_STATE_FILE} says ${inf.params}`);
  return { trainerState: trainerState as Record<string, unknown>, optimizer };
}
