/**
 * Panel 8: keep your work. Save to / load from the browser's IndexedDB, download a Hugging Face
 * checkpoint (one .zip with config.json, model.safetensors, tokenizer.json and
 * tokenizer_config.json: unzip it and `AutoModelForCausalLM.from_pretrained(dir)` loads it), a
 * LoRA adapter in PEFT format, and load either back from files.
 */
import type { StoredEntry } from '../../src/index.js';
import { h, panel, replace, field } from './dom.js';

export function storagePanel(actions: { save(name: string): void; load(name: string): void; remove(name: string): void; download(what: 'model' | 'adapter'): void; loadFiles(files: File[]): void }) {
  const name = h('input', { id: 'store-name', value: 'my-tuned-model', size: 24 }) as HTMLInputElement;
  const save = h('button', { id: 'store-save', type: 'button', disabled: true, onclick: () => actions.save(name.value.trim() || 'model') }, 'Save to browser storage');
  const list = h('ul', { id: 'store-list', class: 'store-list' });
  const dlModel = h('button', { id: 'download-model', type: 'button', disabled: true, onclick: () => actions.download('model') }, 'Download model (Hugging Face .zip)');
  const dlAdapter = h('button', { id: 'download-adapter', type: 'button', disabled: true, onclick: () => actions.download('adapter') }, 'Download LoRA adapter (PEFT)');
  const files = h('input', { id: 'load-files', type: 'file', multiple: true, accept: '.zip,.json,.safetensors' }) as HTMLInputElement;
  files.addEventListener('change', () => { if (files.files?.length) actions.loadFiles([...files.files]); files.value = ''; });
  const status = h('p', { id: 'store-status', class: 'muted' });

  const { section } = panel('panel-storage', '8 · Keep your work', [
    h('p', {}, 'Browser storage (IndexedDB) keeps models on this computer, for this site, across reloads. The browser may clear it when disk space runs low.'),
    h('p', {}, 'The download is a standard Hugging Face checkpoint in one uncompressed .zip: config.json, model.safetensors (float32) and the tokenizer files, with the chat template you trained with. Unzip it and load it in Python with transformers\' from_pretrained, or pick the .zip (or the unzipped files) below to load it back here.'),
    h('p', {}, 'A LoRA adapter is a PEFT directory (adapter_config.json + adapter_model.safetensors) of a few kilobytes, loadable with peft\'s PeftModel.from_pretrained on top of the base model.'),
  ],
  h('div', { class: 'row' }, field('Name', name), save), status,
  h('h3', {}, 'Saved in this browser'), list,
  h('h3', {}, 'Files'), h('div', { class: 'buttons' }, dlModel, dlAdapter),
  field('Load a model from files (.zip, or config.json + model.safetensors)', files));

  return {
    section,
    enable(on: boolean, lora: boolean) { save.disabled = !on; dlModel.disabled = !on; dlAdapter.disabled = !(on && lora); },
    status(text: string, state = 'ok') { status.textContent = text; status.dataset.state = state; status.className = state === 'error' ? 'error' : 'muted'; },
    entries(entries: StoredEntry[]) {
      if (entries.length === 0) { replace(list, h('li', { class: 'muted' }, 'Nothing saved yet.')); return; }
      replace(list, ...entries.map((e) => h('li', { 'data-name': e.name },
        h('b', {}, e.name), ` · ${new Date(e.savedAt).toLocaleString()} · ${(e.bytes / 2 ** 20).toFixed(2)} MiB · ${String(e.meta.model ?? '')} `,
        h('button', { type: 'button', class: 'store-load', 'data-name': e.name, onclick: () => actions.load(e.name) }, 'Load'),
        h('button', { type: 'button', class: 'store-delete', 'data-name': e.name, onclick: () => actions.remove(e.name) }, 'Delete'))));
    },
  };
}
