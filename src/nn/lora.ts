/**
 * LoRA (Hu et al. 2021) exactly as PEFT defines it (peft/tuners/lora): on each targeted linear
 * layer, y = x·Wᵀ + b + scaling · dropout(x)·Aᵀ·Bᵀ with A [r, in] and B [out, r] (PEFT's
 * `lora_A.weight` / `lora_B.weight`, whatever the base layout), scaling = alpha / r, or
 * alpha / sqrt(r) with rsLoRA. The base weights are frozen; only A, B and the modules listed in
 * `modulesToSave` train.
 *
 * Target matching follows PEFT's `check_target_module_exists`:
 *   - a list: a module matches when its path equals an entry or ends with `.<entry>`
 *     ('q_proj' matches 'model.layers.0.self_attn.q_proj'). Entries may also be globs
 *     ('h.*.attn.c_attn', '*.q_proj'): `*` matches within one dotted component, `**` across
 *     components, matched against the path or any dotted suffix of it (a WebTune extension; the
 *     saved adapter lists the matched paths, which PEFT reads as exact names);
 *   - a string: a regular expression that must match the whole path (`re.fullmatch`);
 *   - 'all-linear': every linear layer except the output layer `lm_head`.
 *
 * modules_to_save (PEFT): whole modules trained in full beside the adapter and stored in it under
 * their own names (`base_model.model.transformer.wte.weight`). The usual case is the token
 * embedding when the data uses tokens the base model never learned (chat markers such as
 * `<|im_start|>`): their frozen rows carry nothing a low-rank update can use. With tied
 * embeddings (GPT-2, small Llamas) WebTune does what PEFT does by default (ensure_weight_tying
 * false; huggingface/peft#2777): each listed module trains its OWN copy and the tie is
 * broken. ['wte'] / ['embed_tokens'] trains the input embedding while the output layer keeps
 * reading the original values; ['lm_head'] trains a copy of the output layer while the input
 * embedding stays frozen; both trains two separate matrices (the adapter then stores both keys,
 * and a merged model is saved untied). PEFT's `ensure_weight_tying=True` (one shared trained
 * matrix) and `trainable_token_indices` (only some embedding rows) are not implemented.
 *
 * `withAdaptersDisabled(model, fn)` runs the base model without a copy of it (PEFT's
 * `disable_adapter()`), e.g. for the "before" side of a before/after comparison.
 *
 * @example
 *   const model = CausalLM.create(presetConfig('nano'));
 *   applyLora(model, { r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'], seed: 0 });
 *   loraTrainableReport(model).line;   // 'trainable params: ... || all params: ... || trainable%: ...'
 *   mergeAndUnload(model);             // W += scaling·B·A, adapters gone: a plain model to save
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from './init.js';
import type { Linear, LoraWeights } from './linear.js';

/** What LoRA needs of a model (CausalLM satisfies it). */
export interface LoraModel {
  readonly config: { model_type: string; tie_word_embeddings: boolean };
  /** The model's family (models/family.ts): its default target_modules. */
  readonly family?: { readonly defaultLoraTargets: readonly string[] };
  readonly params: Map<string, tf.Variable>;
  linearModules(): Map<string, Linear>;
  numParams(): number;
}

export interface LoraConfig {
  /** Rank. PEFT's default is 8. */
  r: number;
  /** lora_alpha. PEFT's default is 8. */
  alpha?: number;
  /** lora_dropout on the branch's input, training only. Default 0. */
  dropout?: number;
  /** Module names, globs, a full-match regex string, or 'all-linear'. Default: PEFT's per-family default (the family's defaultLoraTargets: GPT-2 ['c_attn'], Llama ['q_proj', 'v_proj']). */
  targetModules?: string[] | string;
  /** scaling = alpha / sqrt(r) instead of alpha / r. */
  useRslora?: boolean;
  /** 'default' (PEFT init_lora_weights=true): A Kaiming-uniform a=sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)); B = 0. 'gaussian': A normal(0, 1/r); B = 0. */
  init?: 'default' | 'gaussian';
  /** Modules trained in full and saved in the adapter (e.g. ['lm_head'], ['embed_tokens']); matched like list targets. */
  modulesToSave?: string[];
  /** Seed for A's initialisation (each module draws its own stream). Default 0. */
  seed?: number;
  /** Written as base_model_name_or_path in adapter_config.json. */
  baseModelNameOrPath?: string | null;
}

/** The LoRA state of a model after applyLora. */
export interface LoraState {
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  scaling: number;
  init: 'default' | 'gaussian';
  /** target_modules as PEFT saves them: the regex string, or a sorted list (names as given; resolved paths for globs and all-linear). */
  targetModules: string[] | string;
  /** Module paths that carry an adapter, sorted. */
  targets: string[];
  /** modules_to_save as given (null when none). */
  modulesToSave: string[] | null;
  /** Module path -> its trained parameters by their HF names ('lm_head' -> {'lm_head.weight': var}). */
  savedModules: Map<string, Map<string, tf.Variable>>;
  /** Variables made here that are not in model.params (a tied head's copy or frozen clone): disposed with the adapters. */
  extra: tf.Variable[];
  /** True for GPT-2's Conv1D layers (weights stored [in, out]), as PEFT sets fan_in_fan_out. */
  fanInFanOut: boolean;
  baseModelNameOrPath: string | null;
  /** Adapters folded into the base weights by mergeLora, by module path. */
  merged: Map<string, LoraWeights> | null;
  /**
   * Frozen copies of the base values of the modules to save that train in place (the variable the
   * model's own module reads), so `withAdaptersDisabled` can run the base model: PEFT likewise keeps
   * the original module beside the trained copy. Disposed with the adapters.
   */
  originals: Map<tf.Variable, tf.Variable>;
  /** The variable a tied lm_head read before it got its own trained copy (modules_to_save lm_head), else null. */
  tiedHeadBase: tf.Variable | null;
  /** True while `withAdaptersDisabled` runs. */
  disabled: boolean;
  /** The adapters taken off their layers while disabled, by module path. */
  parked?: Map<string, LoraWeights>;
}

const STATE = new WeakMap<object, LoraState>();

/** The LoRA state of `model`, or undefined when no adapter is applied. */
export function loraState(model: object): LoraState | undefined {
  return STATE.get(model);
}

function globToRegExp(glob: string): RegExp {
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '*' && glob[i + 1] === '*') { src += '.*'; i++; }
    else if (ch === '*') src += '[^.]*';
    else if (ch === '?') src += '[^.]';
    else src += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^(?:${src})$`);
}

const isGlob = (s: string) => /[*?]/.test(s);

/** Does one list entry (a name or a glob) match a module path, PEFT style (equal, or a `.<entry>` suffix)? */
export function matchesEntry(path: string, entry: string): boolean {
  if (!isGlob(entry)) return path === entry || path.endsWith(`.${entry}`);
  const re = globToRegExp(entry);
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) if (re.test(parts.slice(i).join('.'))) return true;
  return false;
}

/**
 * The module paths that `targets` selects among `linears` (sorted). Throws naming the target when
 * an entry matches nothing, listing the available module names.
 */
export function resolveTargets(targets: string[] | string, linears: Iterable<string>): string[] {
  const names = [...linears];
  const available = () => {
    const leaves = [...new Set(names.map((n) => n.slice(n.lastIndexOf('.') + 1)))];
    return `available linear modules: ${leaves.join(', ')} (full paths like '${names[0]}')`;
  };
  if (typeof targets === 'string') {
    if (targets === 'all-linear') return names.filter((n) => n !== 'lm_head').sort();
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets})$`);
    } catch (e) {
      throw new Error(`LoRA target_modules '${targets}': not a valid regular expression (${(e as Error).message}).`);
    }
    const hit = names.filter((n) => re.test(n)).sort();
    if (hit.length === 0) throw new Error(`LoRA target_modules '${targets}' (a regular expression, matched against whole module paths) matches no linear module; ${available()}.`);
    return hit;
  }
  if (!Array.isArray(targets) || targets.length === 0) throw new Error('LoRA target_modules must be a non-empty list, a regular expression string, or "all-linear".');
  const out = new Set<string>();
  for (const t of targets) {
    if (typeof t !== 'string' || t === '') throw new Error(`LoRA target_modules entry ${JSON.stringify(t)}: must be a non-empty string.`);
    const hit = names.filter((n) => matchesEntry(n, t));
    if (hit.length === 0) throw new Error(`LoRA target_modules entry '${t}' matches no linear module; ${available()}.`);
    hit.forEach((h) => out.add(h));
  }
  return [...out].sort();
}

/** Module paths of a model's parameters ('model.layers.0.input_layernorm.weight' -> 'model.layers.0.input_layernorm'), lm_head included. */
function moduleParams(model: LoraModel): Map<string, Map<string, tf.Variable>> {
  const out = new Map<string, Map<string, tf.Variable>>();
  for (const [name, v] of model.params) {
    const dot = name.lastIndexOf('.');
    const mod = name.slice(0, dot);
    if (!out.has(mod)) out.set(mod, new Map());
    out.get(mod)!.set(name, v);
  }
  const head = model.linearModules().get('lm_head');
  if (head && !out.has('lm_head')) out.set('lm_head', new Map([['lm_head.weight', head.weight]]));
  return out;
}

function checkNumber(field: string, v: unknown, ok: (n: number) => boolean, want: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`LoRA ${field}: must be ${want}, got ${JSON.stringify(v)}.`);
  return v;
}

/**
 * Adds a LoRA adapter to every targeted linear layer and freezes the base model: afterwards
 * `model.trainableParams()` holds only lora_A / lora_B (and the modules to save), so an optimizer
 * built from it keeps state for those alone. At initialisation B = 0, so outputs are unchanged.
 */
export function applyLora(model: LoraModel, config: LoraConfig): LoraState {
  if (STATE.has(model)) throw new Error('applyLora: this model already has a LoRA adapter (merge or unload it first).');
  const r = checkNumber('r', config.r, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const alpha = checkNumber('lora_alpha', config.alpha ?? 8, (n) => n > 0, 'a positive number');
  const dropout = checkNumber('lora_dropout', config.dropout ?? 0, (n) => n >= 0 && n < 1, 'in [0, 1)');
  const init = config.init ?? 'default';
  if (init !== 'default' && init !== 'gaussian') throw new Error(`LoRA init: must be 'default' or 'gaussian', got ${JSON.stringify(init)}.`);
  const useRslora = config.useRslora ?? false;
  const scaling = useRslora ? alpha / Math.sqrt(r) : alpha / r;
  const seed = config.seed ?? 0;
  const linears = model.linearModules();

  const requested = config.targetModules ?? (model.family && [...model.family.defaultLoraTargets]);
  if (requested === undefined) throw new Error(`LoRA target_modules: no default for model_type '${model.config.model_type}'; name the modules.`);
  const targets = resolveTargets(requested, linears.keys());
  const savedTargets: string[] | string = typeof requested === 'string'
    ? (requested === 'all-linear' ? targets : requested)
    : requested.some(isGlob) ? targets : [...new Set(requested)].sort();

  // modules_to_save: resolved before anything changes, so a bad name leaves the model untouched.
  const modules = moduleParams(model);
  const mts = config.modulesToSave && config.modulesToSave.length > 0 ? [...config.modulesToSave] : null;
  const savePaths: string[] = [];
  for (const name of mts ?? []) {
    const hit = [...modules.keys()].filter((m) => matchesEntry(m, name));
    if (hit.length === 0) throw new Error(`LoRA modules_to_save entry '${name}' matches no module; modules with parameters: ${[...new Set([...modules.keys()].map((n) => n.slice(n.lastIndexOf('.') + 1)))].join(', ')}.`);
    for (const h of hit) {
      if (targets.includes(h)) throw new Error(`LoRA modules_to_save entry '${name}': module '${h}' is also a LoRA target; a module is either adapted or saved in full.`);
      if (!savePaths.includes(h)) savePaths.push(h);
    }
  }

  for (const v of model.params.values()) v.trainable = false;
  const state: LoraState = {
    r, alpha, dropout, useRslora, scaling, init, targetModules: savedTargets, targets, modulesToSave: mts,
    savedModules: new Map(), extra: [], fanInFanOut: false, baseModelNameOrPath: config.baseModelNameOrPath ?? null, merged: null,
    originals: new Map(), tiedHeadBase: null, disabled: false,
  };

  // A tied output layer shares its weight with the input embedding. PEFT's modules_to_save trains a
  // COPY of the module, so: lm_head saved -> it gets its own trainable copy; the embedding saved
  // (trained in place) -> a frozen lm_head keeps reading the original values.
  const head = linears.get('lm_head');
  const tiedHead = head !== undefined && !model.params.has('lm_head.weight') ? head : undefined;   // tied: its weight is the embedding's variable
  for (const path of savePaths.sort()) {
    if (path === 'lm_head' && tiedHead) {
      const copy = tf.variable(tiedHead.weight.clone(), true);
      state.tiedHeadBase = tiedHead.weight;
      tiedHead.weight = copy;
      state.extra.push(copy);
      state.savedModules.set(path, new Map([['lm_head.weight', copy]]));
      continue;
    }
    const vars = modules.get(path)!;
    for (const v of vars.values()) {
      v.trainable = true;
      state.originals.set(v, tf.variable(v.clone(), false));
    }
    state.savedModules.set(path, vars);
  }
  if (tiedHead && !state.savedModules.has('lm_head') && tiedHead.weight.trainable) {
    const frozen = tf.variable(tiedHead.weight.clone(), false);
    tiedHead.weight = frozen;
    state.extra.push(frozen);
  }

  for (const path of targets) {
    const lin = linears.get(path)!;
    if (lin.lora) throw new Error(`applyLora: module '${path}' already carries a LoRA adapter.`);
    const s = deriveSeed(seed, `${path}.lora_A`);
    const A = tf.tidy(() => {
      const a = init === 'gaussian'
        ? tf.randomNormal([r, lin.inFeatures], 0, 1 / r, 'float32', s)
        // kaiming_uniform_(a=sqrt(5)) on [r, in]: gain sqrt(2 / (1 + 5)), bound gain·sqrt(3 / fan_in) = 1 / sqrt(in)
        : tf.randomUniform([r, lin.inFeatures], -1 / Math.sqrt(lin.inFeatures), 1 / Math.sqrt(lin.inFeatures), 'float32', s);
      return tf.variable(a, true);
    });
    const B = tf.variable(tf.zeros([lin.outFeatures, r]), true);
    lin.lora = { A, B, scaling, dropout };
    if (lin.layout === 'in_out') state.fanInFanOut = true;
  }
  STATE.set(model, state);
  return state;
}

/**
 * The adapter's tensors under PEFT's names: `<path>.lora_A.weight` [r, in], `<path>.lora_B.weight`
 * [out, r] and the full parameters of each module to save under their own names, WITHOUT the
 * `base_model.model.` prefix (src/io/peft.ts adds it). Merged adapters are included.
 */
export function loraTensors(model: LoraModel): Map<string, tf.Variable> {
  const state = requireState(model, 'loraTensors');
  // Inside withAdaptersDisabled the matrices are off the layers and the modules to save hold base values.
  if (state.disabled) throw new Error('loraTensors: the adapters are disabled (inside withAdaptersDisabled); save or read them after it returns.');
  return adapterVariables(model, state);
}

function adapterVariables(model: LoraModel, state: LoraState): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  const linears = model.linearModules();
  for (const path of state.targets) {
    const w = linears.get(path)!.lora ?? state.merged?.get(path) ?? state.parked?.get(path);
    if (!w) continue;
    out.set(`${path}.lora_A.weight`, w.A);
    out.set(`${path}.lora_B.weight`, w.B);
  }
  for (const vars of state.savedModules.values()) for (const [name, v] of vars) out.set(name, v);
  return out;
}

function requireState(model: LoraModel, what: string): LoraState {
  const state = STATE.get(model);
  if (!state) throw new Error(`${what}: the model has no LoRA adapter (applyLora or loadAdapter first).`);
  return state;
}

/** Trainable vs all parameters, as PEFT's `print_trainable_parameters` counts and prints them. */
export interface TrainableReport {
  trainable: number;
  all: number;
  percent: number;
  /** `trainable params: 1,234 || all params: 5,678 || trainable%: 21.7324` */
  line: string;
}

const thousands = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/**
 * PEFT's count: all = base parameters (a tied head once) + adapters + one more copy of each module
 * to save (PEFT keeps the original beside the trained copy); trainable = adapters + modules to save.
 * Without an adapter: every parameter of the model, all trainable.
 */
export function loraTrainableReport(model: LoraModel): TrainableReport {
  const state = STATE.get(model);
  let trainable = 0, all = model.numParams();
  if (!state) trainable = all;
  else {
    for (const v of adapterVariables(model, state).values()) trainable += v.size;
    all += trainable;
  }
  const percent = (100 * trainable) / all;
  return { trainable, all, percent, line: `trainable params: ${thousands(trainable)} || all params: ${thousands(all)} || trainable%: ${percent.toFixed(4)}` };
}

/** scaling · B·A in the base weight's layout: [out, in], transposed to [in, out] for Conv1D (fan_in_fan_out). */
function delta(lin: Linear, w: LoraWeights): tf.Tensor2D {
  return tf.tidy(() => {
    const d = tf.mul(tf.matMul(w.B as tf.Tensor2D, w.A as tf.Tensor2D), w.scaling) as tf.Tensor2D;   // [out, in]
    return lin.layout === 'in_out' ? tf.transpose(d) : d;
  });
}

/** W += scaling·B·A on every adapted layer (PEFT `merge`); the branch is then off, so outputs are unchanged up to rounding. */
export function mergeLora(model: LoraModel): void {
  const state = requireState(model, 'mergeLora');
  if (state.merged) throw new Error('mergeLora: the adapters are already merged.');
  if (state.disabled) throw new Error('mergeLora: the adapters are disabled (inside withAdaptersDisabled).');
  const linears = model.linearModules();
  state.merged = new Map();
  for (const path of state.targets) {
    const lin = linears.get(path)!;
    const w = lin.lora!;
    tf.tidy(() => lin.weight.assign(tf.add(lin.weight, delta(lin, w))));
    state.merged.set(path, w);
    lin.lora = undefined;
  }
}

/** W -= scaling·B·A (PEFT `unmerge`): the base weights again, up to float32 rounding, and the branch back on. */
export function unmergeLora(model: LoraModel): void {
  const state = requireState(model, 'unmergeLora');
  if (!state.merged) throw new Error('unmergeLora: the adapters are not merged.');
  const linears = model.linearModules();
  for (const [path, w] of state.merged) {
    const lin = linears.get(path)!;
    tf.tidy(() => lin.weight.assign(tf.sub(lin.weight, delta(lin, w))));
    lin.lora = w;
  }
  state.merged = null;
}

/**
 * Merges the adapters into the base weights, drops them and unfreezes the model (PEFT
 * `merge_and_unload`): a plain model whose outputs equal the adapted one's. Modules to save keep
 * their trained values. A tied output layer that was saved on its own (modules_to_save lm_head)
 * stays a separate weight on the lm_head Linear: save such a model with `saveMerged`
 * (src/io/peft.ts), which writes it untied. Returns the model.
 */
export function mergeAndUnload<M extends LoraModel>(model: M): M {
  const state = requireState(model, 'mergeAndUnload');
  if (!state.merged) mergeLora(model);
  for (const w of state.merged!.values()) { w.A.dispose(); w.B.dispose(); }
  for (const v of model.params.values()) v.trainable = true;
  const head = model.linearModules().get('lm_head');
  for (const v of state.extra) {
    if (head && head.weight === v) v.trainable = true;   // an untied copy of a tied head: it is the head now
    else v.dispose();
  }
  for (const v of state.originals.values()) v.dispose();
  STATE.delete(model);
  return model;
}

/** Drops the adapters without merging and disposes them (the base weights stay frozen until the caller unfreezes them). */
export function disposeLora(model: LoraModel): void {
  const state = STATE.get(model);
  if (!state) return;
  const linears = model.linearModules();
  for (const path of state.targets) {
    const lin = linears.get(path)!;
    const w = lin.lora ?? state.merged?.get(path);
    if (w) { w.A.dispose(); w.B.dispose(); }
    lin.lora = undefined;
  }
  for (const v of state.originals.values()) v.dispose();
  STATE.delete(model);
}

/**
 * Runs `fn` on the base model: every LoRA branch off and the modules to save back at their base
 * values, as PEFT's `with model.disable_adapter():` does. Afterwards (also when `fn` throws or its
 * promise rejects) the adapter is exactly as before. No copy of the base weights is needed, so a
 * before/after comparison of a LoRA run costs no extra memory (beyond the modules to save, whose
 * base values are kept anyway). `fn` may be async: the adapter comes back when its promise settles,
 * so nothing else may run the model (or train it) meanwhile. While disabled, the adapter's matrices
 * are not on the model's layers (`trainableParams()` omits them). Nested calls just run `fn`.
 * Merged adapters are refused (unmerge first): the base weights then hold the update.
 *
 * @example
 *   const before = await withAdaptersDisabled(model, () => generateChat(model, tok, template, messages));
 *   const after = await generateChat(model, tok, template, messages);
 */
export function withAdaptersDisabled<T>(model: LoraModel, fn: () => T): T {
  const state = requireState(model, 'withAdaptersDisabled');
  if (state.disabled) return fn();
  if (state.merged) throw new Error('withAdaptersDisabled: the adapters are merged into the base weights; call unmergeLora first.');
  const linears = model.linearModules();
  const removed: Array<[Linear, LoraWeights]> = [];
  const swappedHeads: Array<[Linear, tf.Variable]> = [];
  const trained: Array<[tf.Variable, tf.Tensor]> = [];
  const restore = () => {
    for (const [v, t] of trained) { v.assign(t); t.dispose(); }
    for (const [lin, w] of swappedHeads) lin.weight = w;
    for (const [lin, w] of removed) lin.lora = w;
    state.parked = undefined;
    state.disabled = false;
  };
  try {
    state.disabled = true;
    state.parked = new Map();
    for (const path of state.targets) {
      const lin = linears.get(path)!;
      if (lin.lora) { removed.push([lin, lin.lora]); state.parked.set(path, lin.lora); lin.lora = undefined; }
    }
    // A tied head's own trained copy (modules_to_save lm_head): read the embedding again.
    // (When the embedding trains in place too, it holds its base values below while disabled.)
    const head = linears.get('lm_head');
    if (head && state.tiedHeadBase && head.weight !== state.tiedHeadBase) {
      swappedHeads.push([head, head.weight]);
      head.weight = state.tiedHeadBase;
    }
    // Modules to save trained in place: their base values in, the trained ones kept aside.
    for (const [v, orig] of state.originals) {
      trained.push([v, tf.clone(v)]);
      v.assign(orig);
    }
  } catch (e) {
    restore();
    throw e;
  }
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
