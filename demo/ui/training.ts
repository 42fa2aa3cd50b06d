/**
 * Panel 5: training settings, start / pause / resume / stop, and progress with an ETA, the kernel
 * path and the GPU dispatches per step; the checkpoints a run saves to browser storage, and the
 * offer to resume a run a closed tab cut short.
 */
import { MODEL_FAMILIES, MODEL_TYPES, DEFAULT_TARGET_MODULES, isModelFamily, type KernelChoice, type KernelPath, type MaskMode, type ModelFamily } from '../../src/index.js';
import type { ModelInfo, TrainSettings } from '../protocol.js';
import { h, panel, field, fmt, fmtDuration, fmtCount, replace } from './dom.js';

const num = (id: string, value: number, attrs: Record<string, number | string> = {}) => h('input', { id, type: 'number', value, ...attrs }) as HTMLInputElement;

export function trainingPanel(kernelsDefault: KernelChoice, actions: { start(): void; pause(): void; resume(): void; stop(): void; resumeRun(): void; discardRun(): void }) {
  const preset = h('select', { id: 'set-model' }) as HTMLSelectElement;
  const family = h('select', { id: 'set-family' }, ...MODEL_TYPES.map((t) => h('option', { value: t }, MODEL_FAMILIES[t].label))) as HTMLSelectElement;
  const steps = num('set-steps', 300, { min: 0, step: 10 });
  const epochs = num('set-epochs', 1, { min: 0.1, step: 0.1 });
  const lr = num('set-lr', 0.003, { min: 0, step: 0.0001 });
  const batch = num('set-batch', 16, { min: 1, max: 256 });
  const warmup = num('set-warmup', 20, { min: 0 });
  const maxLen = num('set-maxlen', 80, { min: 16, max: 512, step: 8 });
  const evalEvery = num('set-eval-every', 25, { min: 0 });
  const saveEvery = num('set-save-every', 50, { min: 0 });
  const schedule = h('select', { id: 'set-schedule' }, ...['cosine', 'linear', 'constant'].map((s) => h('option', { value: s }, s))) as HTMLSelectElement;
  const mask = h('select', { id: 'set-mask' }, ...['assistant', 'last', 'unroll', 'completion', 'all'].map((s) => h('option', { value: s }, s))) as HTMLSelectElement;
  const loraOn = h('input', { id: 'set-lora', type: 'checkbox' }) as HTMLInputElement;
  const loraR = num('set-lora-r', 8, { min: 1, max: 256 });
  const loraAlpha = num('set-lora-alpha', 16, { min: 1 });
  const loraTargets = h('input', { id: 'set-lora-targets', value: 'c_attn', size: 24, title: 'module names (PEFT matching: a name matches every path ending in .name), globs such as h.*.attn.c_attn, or all-linear' }) as HTMLInputElement;
  // PEFT's default targets per family.
  family.addEventListener('change', () => { loraTargets.value = DEFAULT_TARGET_MODULES[family.value].join(', '); });
  const loraSave = h('input', { id: 'set-lora-save', value: '', size: 16, title: 'PEFT modules_to_save: modules trained in full and stored in the adapter, matched like target names (GPT-2: wte, lm_head; Llama: embed_tokens, lm_head)' }) as HTMLInputElement;
  // Models on the bundled vocabulary never learned the chat markers: their embedding and head
  // (PEFT names of the family's, e.g. wte, lm_head) train in full by default. A model from the Hub
  // usually knows its own chat tokens.
  let hubLoaded = false;
  let currentType = '';
  const bundledSave = (type: string): string => (isModelFamily(type) ? `${MODEL_FAMILIES[type].memory.embedding.split('.').at(-2)}, lm_head` : '');
  const defaultSave = (): string => {
    switch (preset.value) {
      case 'pretrained': return '';
      case 'base': return bundledSave('gpt2');   // models/base is a GPT-2
      case 'current': return hubLoaded ? '' : bundledSave(currentType);
      default: return bundledSave(family.value);
    }
  };
  const useDefaultSave = () => { loraSave.value = defaultSave(); };
  family.addEventListener('change', useDefaultSave);
  const kernels = h('select', { id: 'set-kernels', title: 'auto: the fused WGSL kernels on WebGPU, stock tfjs ops elsewhere; fused or stock to compare the two on this GPU' },
    ...(['auto', 'fused', 'stock'] as const).map((k) => h('option', { value: k, selected: k === kernelsDefault }, k === 'auto' ? 'auto (fused on WebGPU)' : k))) as HTMLSelectElement;
  const neftOn = h('input', { id: 'set-neftune', type: 'checkbox' }) as HTMLInputElement;
  const neftAlpha = num('set-neftune-alpha', 5, { min: 0, step: 1 });
  const gcOn = h('input', { id: 'set-gradient-checkpointing', type: 'checkbox' }) as HTMLInputElement;
  const fullWarning = h('p', { class: 'warn', id: 'full-ft-warning', hidden: true });
  let pretrainedParams = 0;
  const pretrainedOption = h('option', { value: 'pretrained', hidden: true, disabled: true }, 'the loaded base model') as HTMLOptionElement;
  // Full fine-tuning of a large model: gradients and AdamW state cost 12 bytes per parameter on top of the weights.
  const warnFull = () => {
    const large = preset.value === 'pretrained' && !loraOn.checked && pretrainedParams > 20e6;
    fullWarning.hidden = !large;
    fullWarning.textContent = large ? `Full fine-tuning trains all ${fmtCount(pretrainedParams)} parameters: gradients and AdamW state add about ${((pretrainedParams * 12) / 2 ** 30).toFixed(1)} GiB to the weights, and every step updates them all. LoRA trains a fraction of a percent of that and usually does as well: turn it on unless you need full fine-tuning.` : '';
  };
  preset.addEventListener('change', warnFull);
  // The family only matters for a fresh preset.
  const familyUse = () => { family.disabled = ['base', 'pretrained', 'current'].includes(preset.value); };
  preset.addEventListener('change', familyUse);
  preset.addEventListener('change', useDefaultSave);
  loraOn.addEventListener('change', warnFull);

  const start = h('button', { id: 'train-start', type: 'button', class: 'primary', onclick: () => actions.start(), disabled: true }, 'Start training');
  const pause = h('button', { id: 'train-pause', type: 'button', onclick: () => actions.pause(), disabled: true }, 'Pause');
  const resume = h('button', { id: 'train-resume', type: 'button', onclick: () => actions.resume(), disabled: true }, 'Resume');
  const stop = h('button', { id: 'train-stop', type: 'button', onclick: () => actions.stop(), disabled: true }, 'Stop');
  const bar = h('progress', { id: 'train-bar', max: 1, value: 0 }) as HTMLProgressElement;
  const progress = h('div', { id: 'train-progress', 'data-state': 'idle', 'data-step': 0, 'data-loss': '' }, 'Not started.');
  const modelLine = h('p', { id: 'model-info', class: 'muted' });
  const prep = h('p', { id: 'train-prep', class: 'muted' });
  const saved = h('p', { id: 'train-saved', class: 'muted' });
  const resumeRun = h('button', { id: 'train-resume-run', type: 'button', class: 'primary', onclick: () => { offer.hidden = true; actions.resumeRun(); } }, 'Resume the run');
  const discardRun = h('button', { id: 'train-discard-run', type: 'button', onclick: () => { offer.hidden = true; actions.discardRun(); } }, 'Discard it');
  const offerText = h('span', { id: 'train-interrupted-text' });
  const offer = h('div', { id: 'train-interrupted', class: 'warn', hidden: true }, offerText, ' ', resumeRun, ' ', discardRun);

  const { section } = panel('panel-training', '5 · Training', [
    h('p', {}, 'Supervised fine-tuning: the model reads each conversation and is nudged (AdamW) to give the trained tokens higher probability. The learning rate warms up, then decays.'),
    h('p', {}, 'A fresh preset starts from random weights, so it learns the format and the easy tasks first; the bundled base model, when present, starts from a checkpoint pretrained on plain text.'),
    h('p', {}, 'LoRA freezes the model and trains two thin matrices beside chosen layers (A is r×in, B is out×r, their product scaled by alpha/r is added to the frozen weight): far fewer trainable numbers, and an adapter file of a few kilobytes. NEFTune adds uniform noise of size alpha/√(L·d) to the input embeddings during training only, which tends to make answers less brittle.'),
    h('p', {}, 'While a run trains, it saves a checkpoint (model, optimizer state, data position and the charts\' history) to this browser\'s storage every "Save every" steps, keeping the newest two. If the tab is closed or crashes mid-run, the page offers to resume the run from its newest checkpoint when it is opened again; a run that ends removes them.'),
    h('p', { id: 'lora-save-note' }, 'Modules to save (PEFT\'s modules_to_save) train whole modules in full beside the adapter and go into the adapter file. The bundled base model never saw the chat markers <|im_start|> and <|im_end|>: their frozen embedding rows give a low-rank update nothing to learn from, and LoRA alone learns next to nothing. So for it the token embedding (wte) and the output layer (lm_head, which gets its own copy of the tied matrix) train in full by default. A model from the Hub usually knows its chat tokens already: the field starts empty there.'),
  ],
  h('div', { class: 'settings' },
    field('Model', preset), field('Family (fresh presets)', family),
    field('Steps (0: use epochs)', steps), field('Epochs', epochs),
    field('Learning rate', lr), field('Batch size', batch), field('Warmup steps', warmup), field('Schedule', schedule),
    field('Mask', mask), field('Max length (tokens)', maxLen), field('Eval every (steps, 0: never)', evalEvery), field('Save every (steps, 0: never)', saveEvery), field('Kernels', kernels),
    field('Gradient checkpointing (less memory, more compute)', gcOn)),
  h('fieldset', { class: 'settings' }, h('legend', {}, h('label', {}, loraOn, ' LoRA')), field('r', loraR), field('alpha', loraAlpha), field('target modules ("all-linear" for every layer but the head)', loraTargets),
    field('modules to save in full (empty: none)', loraSave)),
  h('fieldset', { class: 'settings' }, h('legend', {}, h('label', {}, neftOn, ' NEFTune')), field('noise alpha', neftAlpha)),
  fullWarning,
  offer,
  h('div', { class: 'buttons' }, start, pause, resume, stop),
  bar, progress, prep, saved, modelLine);

  let t0Step = 0;
  return {
    section,
    setup(presets: Record<string, { params: number }>, hasBase: boolean) {
      replace(preset,
        ...(hasBase ? [h('option', { value: 'base', selected: true }, 'bundled base model (models/base)')] : []),
        ...Object.entries(presets).map(([n, p]) => h('option', { value: n, selected: !hasBase && n === 'micro' }, `fresh ${n} (${fmtCount(p.params)} parameters)`)),
        pretrainedOption,
        h('option', { value: 'current' }, 'continue from the current model'));
      start.disabled = false;
      familyUse();
      useDefaultSave();
    },
    settings(): Omit<TrainSettings, 'template' | 'weights' | 'uploadWeight'> {
      return {
        model: preset.value, family: family.value as ModelFamily,
        steps: Math.max(0, Math.round(Number(steps.value))), epochs: Number(epochs.value) || 1,
        lr: Number(lr.value), batchSize: Math.max(1, Math.round(Number(batch.value))), warmupSteps: Math.max(0, Math.round(Number(warmup.value))),
        schedule: schedule.value as TrainSettings['schedule'], mask: mask.value as MaskMode, maxLength: Math.round(Number(maxLen.value)),
        evalEvery: Math.max(0, Math.round(Number(evalEvery.value))),
        lora: { enabled: loraOn.checked && !loraOn.disabled, r: Number(loraR.value), alpha: Number(loraAlpha.value), targets: loraTargets.value.split(',').map((s) => s.trim()).filter(Boolean),
          modulesToSave: loraSave.value.split(',').map((s) => s.trim()).filter(Boolean) },
        neftune: { enabled: neftOn.checked && !neftOn.disabled, alpha: Number(neftAlpha.value) },
        gradientCheckpointing: gcOn.checked,
        saveEvery: Math.max(0, Math.round(Number(saveEvery.value))),
        seed: 42,
        kernels: kernels.value as KernelChoice,
      };
    },
    state(state: string, step: number, maxSteps: number, detail?: string) {
      progress.dataset.state = state;
      const running = state === 'running';
      const paused = state === 'paused';
      const busy = running || paused || state === 'preparing' || state === 'idle-run';
      start.disabled = busy;
      pause.disabled = !running;
      resume.disabled = !paused;
      stop.disabled = !(running || paused);
      if (state === 'preparing') {
        t0Step = 0; bar.value = 0; progress.textContent = 'Preparing the data and the model…';
        offer.hidden = true;
        replace(prep);
        replace(saved);
        delete saved.dataset.step;
        // The path and dispatches of the new run come with its first step.
        delete progress.dataset.path; delete progress.dataset.dispatches; delete progress.dataset.tokensPerSecond;
      }
      else if (!running) progress.textContent = `${state[0].toUpperCase()}${state.slice(1)} at step ${step} of ${maxSteps}.${detail ? ` ${detail}` : ''}`;
    },
    step(step: number, maxSteps: number, loss: number, tokensPerSecond: number, elapsedMs: number, path: KernelPath, dispatches: number) {
      if (!t0Step) t0Step = step;
      bar.max = maxSteps;
      bar.value = step;
      progress.dataset.step = String(step);
      progress.dataset.loss = String(loss);
      progress.dataset.path = path;
      progress.dataset.dispatches = String(dispatches);
      progress.dataset.tokensPerSecond = String(tokensPerSecond);
      const eta = step > 0 ? (elapsedMs / step) * (maxSteps - step) : NaN;
      const gpu = `${path === 'fused' ? 'fused kernels' : 'stock ops'}${dispatches > 0 ? `, ${dispatches} GPU dispatches/step` : ''}`;
      progress.textContent = `Step ${step} / ${maxSteps} · loss ${fmt(loss)} · ${Math.round(tokensPerSecond)} tokens/s · ${gpu} · elapsed ${fmtDuration(elapsedMs)} · ETA ${fmtDuration(eta)}`;
    },
    /** A run whose tab was closed mid-run: its newest checkpoint is at `step`. */
    interrupted(step: number, maxSteps: number, model: string) {
      offer.hidden = false;
      offer.dataset.step = String(step);
      offerText.textContent = `Resume the interrupted run (step ${step} of ${maxSteps})? It trains ${model}; starting a new run discards it.`;
    },
    /** The run saved a checkpoint to browser storage. */
    saved(step: number, location: string) {
      saved.dataset.step = String(step);
      saved.textContent = `Checkpoint of step ${step} saved to ${location}.`;
    },
    /** One line per message of the run's preparation: the data summary first, then the plan and warm-up. */
    preparing(message: string) { prep.append(h('span', { class: 'prep-line' }, message)); },
    /** The worker turned gradient checkpointing on for this run (the estimate did not fit without it). */
    checkpointingOn() { gcOn.checked = true; },
    /** A base model was loaded: train it by default, with LoRA on the architecture's attention projections. */
    usePretrained(name: string, params: number, targets: string[], maxPositions: number) {
      pretrainedParams = params;
      pretrainedOption.hidden = false;
      pretrainedOption.disabled = false;
      pretrainedOption.textContent = `the loaded base model: ${name} (${fmtCount(params)} parameters)`;
      preset.value = 'pretrained';
      hubLoaded = true;
      familyUse();
      useDefaultSave();
      if (!loraOn.disabled) loraOn.checked = true;
      loraTargets.value = targets.join(', ');
      if (Number(maxLen.value) > maxPositions) maxLen.value = String(maxPositions);
      warnFull();
    },
    model(m: ModelInfo) {
      currentType = String(m.config.model_type ?? '');
      modelLine.dataset.evalLoss = m.evalLoss !== undefined ? String(m.evalLoss) : '';
      modelLine.textContent = `Current model: ${m.name} · ${fmtCount(m.params)} parameters (${fmtCount(m.trainableParams)} trainable)${m.evalLoss !== undefined ? ` · validation loss ${fmt(m.evalLoss, 4)}` : ''}${m.loraSummary ? ` · ${m.loraSummary}` : ''}`;
    },
  };
}
