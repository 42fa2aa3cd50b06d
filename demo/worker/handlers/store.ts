/**
 * "Keep your work": the model saved to and loaded from browser storage, downloaded as a ZIP
 * (Hugging Face directory, or the PEFT adapter alone), and loaded from picked files.
 */
import {
  BrowserStore, MemoryFiles, filesSource, loadModelFiles, loadAdapter, saveAdapter, loadTokenizer, loraState, templateFromTokenizerConfig,
  ADAPTER_CONFIG_FILE, type FileSource, type StoredEntry,
} from '../../../src/index.js';
import type { ModelInfo } from '../../protocol.js';
import { zipStore, unzipStore } from '../../zip.js';
import { post, filesOf, type Handlers, type WorkerState } from '../state.js';
import { RUN_FOLDER } from '../page_run.js';

async function withStore<T>(fn: (store: BrowserStore) => Promise<T>): Promise<T> {
  const store = await BrowserStore.open();
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** The current model with its adapter beside the base weights, the tokenizer and chat template, and the snapshot "before" needs. */
async function storeSave(s: WorkerState, name: string): Promise<StoredEntry> {
  const model = s.needModel('No model to save yet.');
  const dir = await filesOf(model, { tokenizer: s.tokenizer, template: s.template });
  // The pre-training snapshot of a full fine-tuning run rides along so the before/after panel works
  // after a reload (a LoRA model needs none: its files hold the base weights and the adapter apart).
  if (s.baseSnapshot) for (const [f, b] of s.baseSnapshot.files) dir.files.set(`base/${f}`, b);
  return withStore((store) => store.save(name, dir.files, { model: s.modelName, template: s.template.name, templateSource: s.template.source, params: model.numParams() }));
}

/**
 * Loads a model (and its base snapshot and chat template, when saved with it) from a set of
 * files. Files holding only a PEFT adapter are applied to the current model.
 */
async function loadFrom(s: WorkerState, src: MemoryFiles | FileSource, from: string): Promise<ModelInfo> {
  if (!(await src.exists('config.json')) && (await src.exists(ADAPTER_CONFIG_FILE))) {
    const model = s.needModel(`${from}: an adapter needs a base model; load or train one first`);
    if (loraState(model)) throw new Error(`${from}: the current model already carries an adapter; load its base model first`);
    s.baseSnapshot = undefined;   // "before" is the model with the adapter switched off
    await loadAdapter(model, src);
    s.modelName = `${s.modelName} + adapter ${from}`;
    s.dropTrainer();
    return s.modelInfo(model, s.modelName, await s.evalLossOf(model));
  }
  const m = await loadModelFiles(src);
  // A checkpoint with its own tokenizer files reads with them (a tuned Hub model); otherwise the bundled one.
  s.tokenizer = (await src.exists('tokenizer.json')) && (await src.exists('tokenizer_config.json')) ? await loadTokenizer(src) : s.bundledTokenizer;
  if (await src.exists('tokenizer_config.json')) {
    try {
      const t = templateFromTokenizerConfig(await src.readText('tokenizer_config.json'), 'tokenizer_config.json');
      s.template = { ...t, name: 'saved template' };
    } catch { /* no chat_template: keep the current one */ }
  }
  s.baseSnapshot = undefined;
  if (src instanceof MemoryFiles && src.files.has('base/config.json')) {
    s.baseSnapshot = new MemoryFiles(new Map([...src.files].filter(([f]) => f.startsWith('base/')).map(([f, b]) => [f.slice(5), b])), 'base snapshot');
  }
  s.dropTrainer();
  s.setModel(m, from);
  return s.modelInfo(m, from, await s.evalLossOf(m));
}

export const storeHandlers: Handlers<'store-list' | 'store-save' | 'store-load' | 'store-delete' | 'export' | 'load-files'> = {
  async 'store-list'(msg) {
    // The running run's checkpoints (the page's run folder) are not kept models.
    const entries = (await withStore((store) => store.list())).filter((e) => !e.name.startsWith(`${RUN_FOLDER}/`));
    post({ status: 'store-list', id: msg.id, entries });
  },
  async 'store-save'(msg, s) {
    const entry = await s.exclusive(() => storeSave(s, msg.name));
    post({ status: 'store-saved', id: msg.id, entry, evalLoss: await s.evalLossOf(s.needModel()) });
  },
  async 'store-load'(msg, s) {
    const files = await withStore((store) => store.load(msg.name));
    post({ status: 'model-loaded', id: msg.id, model: await s.exclusive(() => loadFrom(s, files, `browser storage/${msg.name}`)), from: msg.name });
  },
  async 'store-delete'(msg) {
    await withStore((store) => store.delete(msg.name));
    post({ status: 'store-deleted', id: msg.id, name: msg.name });
  },
  async export(msg, s) {
    const model = s.needModel('No model to download yet.');
    const stem = s.modelName.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '');
    let dir: MemoryFiles;
    if (msg.what === 'adapter') {
      if (!loraState(model)) throw new Error('The current model has no LoRA adapter: train with LoRA on to get one.');
      dir = new MemoryFiles();
      await saveAdapter(model, dir);
    } else {
      // The model as a Hugging Face directory, LoRA merged in, with the tokenizer files (chat_template = the template trained with).
      // Merging changes the weights for a moment: not while a step runs.
      dir = await s.exclusive(() => filesOf(model, { adapter: 'merged', tokenizer: s.tokenizer, template: s.template }));
    }
    const zip = zipStore([...dir.files].map(([name, bytes]) => ({ name, bytes })));
    post({ status: 'export', id: msg.id, files: [{ name: `${stem}-${msg.what === 'adapter' ? 'peft-adapter' : 'hf'}.zip`, bytes: zip }] }, [zip.buffer]);
  },
  async 'load-files'(msg, s) {
    const zips = msg.files.filter((f) => f.name.endsWith('.zip'));
    const src = zips.length === 1 && msg.files.length === 1
      ? new MemoryFiles(unzipStore(new Uint8Array(await zips[0].arrayBuffer()), zips[0].name), zips[0].name)
      : filesSource(msg.files);
    const name = msg.files.length === 1 ? msg.files[0].name : src.name;
    post({ status: 'model-loaded', id: msg.id, model: await s.exclusive(() => loadFrom(s, src, name)), from: name });
  },
};
