/**
 * Start-up: the backend, the bundled tokenizer and data, a warm-up that compiles the shaders
 * the first run needs, the first current model (models/base when bundled, else a fresh one), and
 * the offer to resume a run that a closed or crashed tab cut short.
 */
import { initBackend, loadBundledTokenizer, CausalLM, presetConfig, countParams, Trainer, generateChat, type PresetName } from '../../../src/index.js';
import type { BackendView, InterruptedRunInfo } from '../../protocol.js';
import { post, parseRows, hasBase, loadBase, type Handlers } from '../state.js';
import { datasetInfo } from './data.js';
import { openPageRun } from '../page_run.js';
import trainText from '../../data/train.jsonl?raw';
import validText from '../../data/valid.jsonl?raw';

export const initHandlers: Handlers<'init'> = {
  async init(msg, s) {
    post({ status: 'init-progress', message: 'Starting the GPU backend…' });
    s.backend = await initBackend({ onFallback: () => undefined, kernels: msg.kernels });
    post({ status: 'init-progress', message: 'Loading the tokenizer and the bundled data…' });
    s.tokenizer = s.bundledTokenizer = await loadBundledTokenizer();
    s.trainExamples = (await parseRows(trainText, 'train.jsonl')).examples;
    s.validExamples = (await parseRows(validText, 'valid.jsonl')).examples;
    // Warm up: one training step and one generation on a tiny model compile the shaders the
    // real run needs, so the first visible step is not minutes of shader compilation.
    post({ status: 'init-progress', message: 'Warming up the shaders (one tiny training step and a few generated tokens)…' });
    const t0 = performance.now();
    const warm = CausalLM.create(presetConfig('nano', { vocabSize: s.tokenizer.vocabSize }), { seed: 0 });
    const wt = new Trainer(warm, { train: await s.evalBatches(s.template, 'assistant', 48), maxSteps: 1, lr: 1e-3 });
    await wt.run();
    wt.dispose();
    await generateChat(warm, s.tokenizer, s.template, [{ role: 'user', content: 'Hi' }], { maxNewTokens: 2 });
    warm.dispose();
    const warmupMs = performance.now() - t0;
    const presets = Object.fromEntries((['nano', 'micro', 'small'] as PresetName[]).map((p) => [p, { params: countParams(presetConfig(p, { vocabSize: s.tokenizer.vocabSize })) }]));
    const { m, name } = hasBase ? { m: await loadBase(), name: 'models/base' }
      : { m: CausalLM.create(presetConfig('micro', { vocabSize: s.tokenizer.vocabSize }), { seed: 0 }), name: 'gpt2 micro (fresh)' };
    s.setModel(m, name);
    const { engine, ...plain } = s.backend;
    const view: BackendView = { ...plain, kernels: engine.path };
    post({ status: 'ready', backend: view, warmupMs, dataset: datasetInfo(s), presets, hasBase, model: s.modelInfo(m, name), interrupted: await interruptedRun() });
  },
};

/** A run whose tab was closed mid-run (its checkpoints are still in the page's run folder), if any. */
async function interruptedRun(): Promise<InterruptedRunInfo | undefined> {
  let opened: Awaited<ReturnType<typeof openPageRun>> | undefined;
  try {
    opened = await openPageRun();
    const cut = await opened.run.interrupted();
    return cut && { step: cut.step, maxSteps: cut.maxSteps, model: cut.record.startName, location: cut.location, settings: cut.record.settings };
  } catch (e) {
    post({ status: 'init-progress', message: `An interrupted run could not be read: ${(e as Error).message}` });
    return undefined;
  } finally {
    opened?.close();
  }
}
