/**
 * The page: builds the panels and connects them to the worker. No tensor work happens here
 * (the library is imported by the worker only); the main thread draws and forwards clicks.
 */
import './style.css';
import type { KernelChoice, Message } from '../src/index.js';
import { WorkerClient } from './client.js';
import type { Reply, TrainSettings, InterruptedRunInfo } from './protocol.js';
import { statusPanel } from './ui/status.js';
import { templatePanel, type TemplateState } from './ui/template.js';
import { maskingPanel } from './ui/masking.js';
import { datasetPanel } from './ui/dataset.js';
import { trainingPanel } from './ui/training.js';
import { chartsPanel } from './ui/charts.js';
import { comparePanel } from './ui/compare.js';
import { storagePanel } from './ui/storage.js';
import { quizPanel } from './ui/quiz.js';
import { hubPanel, DEFAULT_HUB } from './ui/hub.js';
import { growPanel } from './ui/grow.js';
import { throttle } from './ui/dom.js';
import { labPanels } from './ui/lab.js';

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
// ?kernels=stock (or fused) starts the page on that kernel path, for comparisons; default auto (fused on WebGPU).
const kernelsParam = new URLSearchParams(location.search).get('kernels');
const kernels: KernelChoice = kernelsParam === 'fused' || kernelsParam === 'stock' ? kernelsParam : 'auto';
const client = new WorkerClient(worker);

const status = statusPanel();
const masking = maskingPanel();
let renderId = 0;
const template = templatePanel(() => requestRender());
const dataset = datasetPanel(async (file) => {
  try {
    const r = await client.request({ type: 'upload', name: file.name, text: await file.text(), validationPercent: dataset.validationPercent() }, ['upload']);
    dataset.showUpload(r.name, r.rows, r.errors, r.families, r.samples, r.check);
  } catch (e) {
    dataset.showUpload(file.name, 0, [{ file: file.name, line: 0, field: '(file)', message: (e as Error).message }], {}, []);
  }
}, async () => {
  const tools = dataset.tools() ?? {};
  dataset.showCheck(await client.request({ type: 'data-check', tools, weights: dataset.weights(), uploadWeight: dataset.uploadWeight(), validationPercent: dataset.validationPercent() }, ['data-check']));
});
/** Everything a run needs: the Training panel's settings, the template, the mixture. */
const fullSettings = (): TrainSettings => ({
  ...training.settings(), template: template.state().template, weights: dataset.weights(), uploadWeight: dataset.uploadWeight(), growWeight: grow.weight(),
  dataTools: dataset.tools(), validationPercent: dataset.validationPercent(),
});
function startTraining(settings: TrainSettings) {
  charts.reset();
  training.state('preparing', 0, 0);
  client.send({ type: 'train', settings });
}
const training = trainingPanel(kernels, {
  start() {
    interrupted = undefined;   // the worker discards it: a new run takes the run folder
    const settings = fullSettings();
    lab.trainStarted(settings);
    startTraining(settings);
  },
  pause: () => client.send({ type: 'pause' }),
  resume: () => client.send({ type: 'resume' }),
  stop: () => client.send({ type: 'stop' }),
  resumeRun() {
    // The run history records the resumed run, its steps before the checkpoint included ('train-history').
    if (interrupted) lab.trainStarted(interrupted.settings);
    interrupted = undefined;
    charts.reset();
    training.state('preparing', 0, 0);
    client.send({ type: 'resume-run' });
  },
  discardRun() {
    interrupted = undefined;
    client.send({ type: 'discard-run' });
  },
});
const charts = chartsPanel();
const grow = growPanel({
  async start(settings) {
    try {
      const r = await client.request({ type: 'grow', settings }, ['grow-done']);
      grow.done(r.stats, r.stopped);
    } catch (e) {
      grow.failed((e as Error).message);
    }
  },
  stop: () => client.send({ type: 'grow-stop' }),
  async use(rows) {
    try {
      grow.used((await client.request({ type: 'grow-use', rows }, ['grow-used'])).rows);
    } catch (e) {
      grow.failed((e as Error).message);
    }
  },
});
let chatHistory: Message[] = [];
let chatId = -1;
const compare = comparePanel({
  async compare(limit, maxNewTokens) {
    compare.started(limit);
    try {
      await client.request({ type: 'compare', limit, maxNewTokens }, ['compare-done']);
    } catch (e) {
      compare.failed((e as Error).message);
    }
  },
  async chat(text, maxNewTokens, temperature) {
    chatHistory.push({ role: 'user', content: text });
    compare.chatUser(text);
    const sys = template.state().messages.find((m) => m.role === 'system');
    try {
      const p = client.request({ type: 'chat', messages: [...(sys ? [sys] : []), ...chatHistory], maxNewTokens, temperature }, ['chat-done']);
      const r = await p;
      chatHistory.push({ role: 'assistant', content: r.text });
    } catch (e) {
      chatHistory.pop();
      compare.chatError((e as Error).message);
    }
  },
  clearChat() { chatHistory = []; },
});
const storage = storagePanel({
  async save(name) {
    storage.status(`Saving ${name}…`, 'busy');
    try {
      const r = await client.request({ type: 'store-save', name }, ['store-saved']);
      storage.status(`Saved "${r.entry.name}" (${(r.entry.bytes / 2 ** 20).toFixed(2)} MiB, validation loss ${r.evalLoss.toFixed(4)}).`, 'saved');
      document.getElementById('store-status')!.dataset.evalLoss = String(r.evalLoss);
      refreshStore();
    } catch (e) {
      storage.status((e as Error).message, 'error');
    }
  },
  async load(name) {
    storage.status(`Loading ${name}…`, 'busy');
    try {
      const r = await client.request({ type: 'store-load', name }, ['model-loaded']);
      loaded(r);
    } catch (e) {
      storage.status((e as Error).message, 'error');
    }
  },
  async remove(name) {
    try {
      await client.request({ type: 'store-delete', name }, ['store-deleted']);
      refreshStore();
    } catch (e) {
      storage.status((e as Error).message, 'error');
    }
  },
  async download(what) {
    storage.status('Preparing the download…', 'busy');
    try {
      const r = await client.request({ type: 'export', what }, ['export']);
      for (const f of r.files) {
        const url = URL.createObjectURL(new Blob([f.bytes as BlobPart]));
        const a = Object.assign(document.createElement('a'), { href: url, download: f.name });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      }
      storage.status(`Downloaded ${r.files.map((f) => f.name).join(', ')}.`);
    } catch (e) {
      storage.status((e as Error).message, 'error');
    }
  },
  async loadFiles(files) {
    storage.status(`Loading ${files.map((f) => f.name).join(', ')}…`, 'busy');
    try {
      loaded(await client.request({ type: 'load-files', files }, ['model-loaded']));
    } catch (e) {
      storage.status((e as Error).message, 'error');
    }
  },
});
const quiz = quizPanel();
// Run history, experiments and blind votes (demo/ui/lab.ts).
const lab = labPanels({
  client, settings: fullSettings, startTraining, overlay: (runs) => charts.overlay(runs),
  async compare(limit, maxNewTokens) {
    compare.started(limit);
    await client.request({ type: 'compare', limit, maxNewTokens }, ['compare-done']);
  },
});

// The Hub endpoint: ?hub=URL (a mirror, or a local test server), else huggingface.co.
const hubParam = new URLSearchParams(location.search).get('hub');
const hub = hubPanel({
  async check(ref) {
    hub.checking();
    try {
      const s = training.settings();
      const r = await client.request({ type: 'hub-check', hub: ref, batchSize: s.batchSize, seqLen: s.maxLength, lora: { r: s.lora.r, targets: [] } }, ['hub-info']);
      hub.checked(r.info);
    } catch (e) {
      hub.status((e as Error).message, 'error');
    }
  },
  async load(ref) {
    hub.loading(ref.repo);
    try {
      pretrainedLoaded(await client.request({ type: 'hub-load', hub: ref }, ['model-loaded']));
    } catch (e) {
      hub.failed((e as Error).message, /cancelled|abort/i.test((e as Error).message));
    }
  },
  cancel: () => client.send({ type: 'hub-cancel' }),
  async clearCache() {
    try {
      const r = await client.request({ type: 'hub-clear-cache' }, ['hub-cache-cleared']);
      hub.status(r.deleted ? 'Downloaded models cleared from this browser\'s cache.' : 'The cache was already empty.', 'cleared');
    } catch (e) {
      hub.status((e as Error).message, 'error');
    }
  },
  async loadFiles(files) {
    hub.loading(`${files.length} file${files.length === 1 ? '' : 's'}`);
    try {
      pretrainedLoaded(await client.request({ type: 'pretrained-files', files }, ['model-loaded']));
    } catch (e) {
      hub.failed((e as Error).message, false);
    }
  },
}, hubParam || DEFAULT_HUB);

function pretrainedLoaded(r: Extract<Reply, { status: 'model-loaded' }>) {
  const p = r.pretrained!;
  hub.loaded(r.from);
  template.useModel(p.name, p.template);
  training.usePretrained(p.name, p.params, p.loraTargets, p.maxPositions);
  training.model(r.model);
  grow.useModel(p.name, p.params, !!p.template);
  modelLora = r.model.lora;
  chatHistory = [];
  compare.enable(true);
  storage.enable(true, modelLora);
  storage.status(`Current model: ${r.from} (validation loss ${r.model.evalLoss?.toFixed(4) ?? '—'}).`, 'loaded');
}

let modelLora = false;
/** The run a closed tab cut short, offered until it is resumed, discarded or replaced by a new run. */
let interrupted: InterruptedRunInfo | undefined;
function loaded(r: Extract<Reply, { status: 'model-loaded' }>) {
  training.model(r.model);
  grow.useModel(r.from, r.model.params, false);
  modelLora = r.model.lora;
  storage.status(`Loaded "${r.from}" (validation loss ${r.model.evalLoss?.toFixed(4) ?? '—'}).`, 'loaded');
  const el = document.getElementById('store-status')!;
  el.dataset.evalLoss = String(r.model.evalLoss ?? '');
  compare.enable(true);
  storage.enable(true, r.model.lora);
}

async function refreshStore() {
  try {
    storage.entries((await client.request({ type: 'store-list' }, ['store-list'])).entries);
  } catch (e) {
    storage.status(`Browser storage is not available: ${(e as Error).message}`, 'error');
  }
}

// Rendering follows typing, but at most every 150 ms, and a late answer never replaces a newer one.
let lastShown = 0;
const requestRender = throttle(async () => {
  const s: TemplateState = template.state();
  const id = ++renderId;
  try {
    const r = await client.request({ type: 'render', template: s.template, messages: s.messages, tools: s.tools, addGenerationPrompt: s.addGenerationPrompt }, ['rendered']);
    if (id < lastShown) return;
    lastShown = id;
    template.show(r);
    masking.show(r);
  } catch (e) {
    template.show({ status: 'rendered', id, text: '', specials: [], turns: [], masks: [], templateName: '', error: (e as Error).message });
  }
}, 150);

// Streamed replies.
let lastTrainState = 'idle';
client.on((r) => {
  lab.onReply(r);
  switch (r.status) {
    case 'init-progress': status.progress(r.message); break;
    case 'ready':
      status.ready(r.backend, r.warmupMs);
      document.body.dataset.ready = '1';
      dataset.show(r.dataset);
      training.setup(r.presets, r.hasBase);
      hub.enable(true);
      training.model(r.model);
      interrupted = r.interrupted;
      if (interrupted) training.interrupted(interrupted.step, interrupted.maxSteps, interrupted.model);
      grow.useModel(r.model.name, r.model.params, false);
      grow.enable(true);
      modelLora = r.model.lora;
      compare.enable(true);
      storage.enable(true, modelLora);
      requestRender();
      refreshStore();
      void lab.ready();
      break;
    case 'train-status': {
      lastTrainState = r.state;
      training.state(r.state, r.step, r.maxSteps, r.error ? `Error: ${r.error}` : undefined);
      if (r.model) { training.model(r.model); grow.useModel(r.model.name, r.model.params); modelLora = r.model.lora; }
      const running = r.state === 'running' || r.state === 'preparing';
      compare.enable(!running);
      grow.enable(!running);
      storage.enable(!running, modelLora);
      break;
    }
    case 'preparing': training.preparing(r.message); if (r.gradientCheckpointing) training.checkpointingOn(); break;
    case 'hub-progress': hub.progress(r.file, r.loaded, r.total); break;
    case 'step':
      training.step(r.step, r.maxSteps, r.loss, r.tokensPerSecond, r.elapsedMs, r.path, r.dispatches);
      charts.step(r.step, r.loss, r.lr, r.gradNorm, r.tokensPerSecond);
      break;
    case 'eval': charts.evalPoint(r.step, r.evalLoss); break;
    case 'run-saved': training.saved(r.step, r.location); break;
    case 'train-history': charts.restore(r.steps, r.evals); break;
    case 'compare-row': compare.row(r.which, r.row, r.done, r.total); break;
    case 'compare-done': compare.done(r.base, r.tuned, r.baseOverall, r.tunedOverall); break;
    case 'chat-token': compare.chatToken(r.text); break;
    case 'chat-done': compare.chatDone(r.text, r.tokens, r.ms); break;
    case 'grow-started': grow.started(r.model, r.seeds); break;
    case 'grow-candidate': grow.candidate(r.candidate, r.stats); break;
    case 'error':
      if (r.id === undefined) status.progress(`Error: ${r.message}`);
      if (document.body.dataset.ready !== '1') status.failed(r.message);
      break;
  }
  void lastTrainState; void chatId;
});

const app = document.getElementById('app')!;
app.append(status.section, hub.section, template.section, masking.section, dataset.section, grow.section, training.section, charts.section, compare.section, ...lab.sections, storage.section, quiz.section);
client.send({ type: 'init', kernels });
