/**
 * Panel 1b: bring your own base model. A Hub repo id (or local files) in; first what it will
 * cost (config.json only: parameters, download size, training memory for LoRA and for full
 * fine-tuning against this GPU's buffer limits), then the download with a progress bar per file,
 * cancellation, and Cache Storage so that a second visit loads offline. The worker does the work;
 * this panel only draws. The access token stays in this page's memory and goes to the worker
 * with each request; it is never stored.
 */
import { isModelFamily, MODEL_FAMILIES } from '../../src/index.js';
import type { EstimateView, HubCheckInfo, HubRef } from '../protocol.js';
import { h, panel, replace, field, fmtCount } from './dom.js';

export const DEFAULT_HUB = 'https://huggingface.co';

/** '1.5 GiB', '108.0 MiB', '512 B'. */
export function fmtBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return 'unknown';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export interface HubActions {
  check(ref: HubRef): void;
  load(ref: HubRef): void;
  cancel(): void;
  clearCache(): void;
  loadFiles(files: File[]): void;
}

export function hubPanel(actions: HubActions, endpoint: string) {
  const repo = h('input', { id: 'hub-repo', value: 'HuggingFaceTB/SmolLM2-135M-Instruct', size: 38, spellcheck: false, autocomplete: 'off' }) as HTMLInputElement;
  const revision = h('input', { id: 'hub-revision', value: 'main', size: 12, spellcheck: false }) as HTMLInputElement;
  const token = h('input', { id: 'hub-token', type: 'password', size: 24, autocomplete: 'off', placeholder: 'hf_… (gated repos only)' }) as HTMLInputElement;
  const hub = h('input', { id: 'hub-endpoint', value: endpoint, size: 30, spellcheck: false }) as HTMLInputElement;
  const ref = (): HubRef => ({ repo: repo.value.trim(), revision: revision.value.trim() || 'main', endpoint: hub.value.trim() || DEFAULT_HUB, token: token.value.trim() || undefined });

  const check = h('button', { id: 'hub-check', type: 'button', disabled: true, onclick: () => actions.check(ref()) }, 'Check (config.json only)');
  const load = h('button', { id: 'hub-load', type: 'button', class: 'primary', disabled: true, onclick: () => actions.load(ref()) }, 'Load');
  const cancel = h('button', { id: 'hub-cancel', type: 'button', disabled: true, onclick: () => actions.cancel() }, 'Cancel');
  const clear = h('button', { id: 'hub-clear-cache', type: 'button', disabled: true, onclick: () => actions.clearCache() }, 'Clear downloaded models');
  const files = h('input', { id: 'hub-files', type: 'file', multiple: true, accept: '.json,.safetensors,.jinja' }) as HTMLInputElement;
  const folder = h('input', { id: 'hub-folder', type: 'file', webkitdirectory: true }) as HTMLInputElement;
  for (const input of [files, folder]) {
    input.addEventListener('change', () => { if (input.files?.length) actions.loadFiles([...input.files]); input.value = ''; });
  }

  const status = h('p', { id: 'hub-status', class: 'muted', 'data-state': 'idle' });
  const estimate = h('div', { id: 'hub-estimate', 'data-state': 'none' });
  const total = h('progress', { id: 'hub-progress-total', max: 1, value: 0, 'data-percent': '0' }) as HTMLProgressElement;
  const totalText = h('span', { id: 'hub-progress-text', class: 'muted' });
  const fileList = h('ul', { id: 'hub-files-progress', class: 'hub-files' });
  const progressBox = h('div', { class: 'hub-progress', hidden: true }, h('div', { class: 'row' }, total, totalText), fileList);
  // cached: the file's first event was already complete (a download reports 0 bytes first).
  const bars = new Map<string, { bar: HTMLProgressElement; text: HTMLElement; li: HTMLElement; loaded: number; total?: number; cached: boolean }>();
  let expectedBytes: number | undefined;

  const { section } = panel('panel-hub', '1b · Bring your own base model', [
    h('p', {}, 'Fine-tune a real pretrained model instead of the tiny bundled one: a GPT-2 or Llama-family checkpoint (SmolLM2, TinyLlama…) in safetensors, from the Hugging Face Hub or from files on this computer. Its own tokenizer and chat template are used everywhere on this page once it is loaded.'),
    h('p', {}, '"Check" reads config.json only (a few kB) and says what training will cost before anything large is downloaded: the weights (float32 once loaded), the gradients and the AdamW state (12 bytes per trainable parameter), and the activations the backward pass needs at the batch size and max length of the Training panel. WebGPU keeps every tensor in one buffer, so a tensor larger than this GPU\'s buffer limit cannot work however much memory the card has.'),
    h('p', {}, 'Downloads are kept in the browser\'s Cache Storage, so the next visit loads without the network. An access token (for gated repos) stays in this tab\'s memory and is never saved.'),
  ],
  h('div', { class: 'row' }, field('Repo id (owner/name)', repo), field('Revision', revision), field('Access token (optional)', token)),
  h('details', { class: 'advanced' }, h('summary', {}, 'Advanced'), field('Hub endpoint (a mirror, or ?hub=URL in the address)', hub)),
  h('div', { class: 'buttons' }, check, load, cancel, clear),
  status, estimate, progressBox,
  h('h3', {}, 'Or from files on this computer'),
  h('div', { class: 'row' },
    field('Pick the files (config.json, *.safetensors or the index and its shards, tokenizer.json, tokenizer_config.json)', files),
    field('…or the whole folder', folder)));

  const setStatus = (text: string, state: string) => {
    status.textContent = text;
    status.dataset.state = state;
    status.className = state === 'error' ? 'error' : state === 'warn' ? 'warn' : 'muted';
  };

  const drawTotal = () => {
    let loaded = 0, known = 0;
    for (const b of bars.values()) { loaded += b.loaded; known += b.total ?? b.loaded; }
    const denom = Math.max(known, expectedBytes ?? 0, 1);
    const allDone = bars.size > 0 && [...bars.values()].every((b) => b.total !== undefined && b.loaded >= b.total);
    const pct = allDone && status.dataset.state === 'loaded' ? 100 : Math.min(99, Math.floor((100 * loaded) / denom));
    total.max = 100;
    total.value = pct;
    total.dataset.percent = String(pct);
    totalText.textContent = `${pct}% · ${fmtBytes(loaded)} of ${expectedBytes !== undefined ? `about ${fmtBytes(Math.max(expectedBytes, known))}` : fmtBytes(known)}`;
  };

  function estimateTable(info: HubCheckInfo) {
    const rows: Array<[string, (e: EstimateView) => string]> = [
      ['trainable parameters', (e) => fmtCount(e.trainableParams)],
      ['weights (float32)', (e) => fmtBytes(e.weights)],
      ['gradients', (e) => fmtBytes(e.gradients)],
      ['optimizer state (AdamW)', (e) => fmtBytes(e.optimizer)],
      [`activations (batch ${info.batchSize} × ${info.seqLen} tokens)`, (e) => fmtBytes(e.activations)],
      ['total', (e) => fmtBytes(e.total)],
      ['largest single tensor', (e) => `${e.largestBuffer.name.replace(/ \(.*\)$/, '')} [${e.largestBuffer.shape.join(', ')}] ${fmtBytes(e.largestBuffer.bytes)}`],
    ];
    return h('table', { class: 'estimate' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, `LoRA r=${info.loraR} (${info.loraTargets.join(', ')})`), h('th', {}, 'full fine-tuning'))),
      h('tbody', {}, ...rows.map(([label, f]) => h('tr', { class: label === 'total' ? 'total' : undefined }, h('th', {}, label),
        h('td', { 'data-col': 'lora' }, f(info.lora)), h('td', { 'data-col': 'full' }, f(info.full))))));
  }

  return {
    section,
    ref,
    enable(ready: boolean) { for (const b of [check, load, clear]) b.disabled = !ready; },
    status: setStatus,
    checking() { setStatus(`Reading ${repo.value.trim()}/config.json…`, 'checking'); estimate.dataset.state = 'checking'; },
    checked(info: HubCheckInfo) {
      estimate.dataset.state = 'shown';
      estimate.dataset.params = String(info.params);
      estimate.dataset.loraFits = info.lora.refusal ? '0' : '1';
      estimate.dataset.fullFits = info.full.refusal ? '0' : '1';
      expectedBytes = info.downloadBytes;
      const refusals = [info.lora.refusal && `With LoRA: ${info.lora.refusal}`, info.full.refusal && `Full fine-tuning: ${info.full.refusal}`].filter(Boolean) as string[];
      replace(estimate,
        h('p', { id: 'hub-summary' },
          h('b', {}, isModelFamily(info.modelType) ? MODEL_FAMILIES[info.modelType].label : info.modelType), ` · ${fmtCount(info.params)} parameters (${info.params.toLocaleString('en-US')}) · download ${fmtBytes(info.downloadBytes)} in ${info.weightFiles.length} weight file${info.weightFiles.length === 1 ? '' : 's'}`,
          info.limits ? ` · this GPU: maxBufferSize ${fmtBytes(info.limits.maxBufferSize)}, maxStorageBufferBindingSize ${fmtBytes(info.limits.maxStorageBufferBindingSize)}` : ' · buffer limits unknown (no WebGPU)'),
        estimateTable(info),
        ...refusals.map((r) => h('p', { class: 'error hub-refusal' }, r)),
        refusals.length === 0 ? h('p', { class: 'ok', id: 'hub-fits' }, 'Every tensor fits this GPU\'s buffer limits, for LoRA and for full fine-tuning. The totals are estimates (±25%) of GPU memory, which the browser does not report.') : null);
      setStatus(info.lora.refusal ? 'Checked: this model cannot be trained here at these settings (see below).' : 'Checked: press Load to download it.', info.lora.refusal ? 'warn' : 'checked');
    },
    loading(what: string) {
      bars.clear();
      replace(fileList);
      progressBox.hidden = false;
      cancel.disabled = false;
      load.disabled = true;
      setStatus(`Loading ${what}…`, 'loading');
      drawTotal();
    },
    progress(file: string, loaded: number, fileTotal: number | undefined) {
      let b = bars.get(file);
      if (!b) {
        const bar = h('progress', { max: 1, value: 0 }) as HTMLProgressElement;
        const text = h('span', { class: 'muted' });
        const li = h('li', { 'data-file': file }, h('code', {}, file), ' ', bar, ' ', text);
        fileList.append(li);
        b = { bar, text, li, loaded: 0, cached: loaded > 0 && loaded === fileTotal };
        bars.set(file, b);
      }
      b.loaded = loaded;
      b.total = fileTotal;
      b.bar.max = fileTotal ?? Math.max(loaded, 1);
      b.bar.value = loaded;
      const done = fileTotal !== undefined && loaded >= fileTotal;
      b.li.dataset.done = done ? '1' : '0';
      b.li.dataset.cached = b.cached ? '1' : '0';
      b.text.textContent = `${fmtBytes(loaded)}${fileTotal !== undefined ? ` of ${fmtBytes(fileTotal)}` : ''}${done ? (b.cached ? ' ✓ from the cache' : ' ✓') : ''}`;
      drawTotal();
    },
    loaded(name: string) {
      cancel.disabled = true;
      load.disabled = false;
      const cached = bars.size > 0 && [...bars.values()].every((b) => b.cached);
      setStatus(`Loaded ${name}${cached ? ' from this browser\'s cache (nothing downloaded)' : ''}. Its tokenizer and chat template are now used by the template builder, the masking view, training and chat.`, 'loaded');
      drawTotal();
    },
    failed(message: string, cancelled: boolean) {
      cancel.disabled = true;
      load.disabled = false;
      setStatus(cancelled ? 'Cancelled: nothing partial was kept (files that finished are cached).' : message, cancelled ? 'cancelled' : 'error');
    },
    fileCount: () => bars.size,
  };
}
