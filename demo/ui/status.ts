/** Panel 1: which backend, GPU adapter and kernel path the worker trains on, and what a fallback costs. */
import type { BackendView } from '../protocol.js';
import { h, panel, replace } from './dom.js';

export function statusPanel() {
  const state = h('p', { id: 'status-line', 'data-state': 'loading' }, 'Starting the worker…');
  const details = h('dl', { id: 'backend-details', class: 'kv' });
  const notes = h('div', { id: 'backend-notes' });
  const { section } = panel('panel-status', '1 · Status', [
    h('p', {}, 'Everything runs on your machine. Training, evaluation and generation happen in a Web Worker, so this page stays responsive while the GPU works.'),
    h('p', {}, 'WebTune asks for WebGPU first. Without it, it falls back to WebGL (stock tfjs kernels, several times slower), then to the CPU (one to two orders of magnitude slower) and says so here.'),
  ], state, details, notes);

  return {
    section,
    progress(message: string) {
      state.textContent = message;
    },
    ready(info: BackendView, warmupMs: number) {
      state.dataset.state = 'ready';
      state.dataset.backend = info.backend;
      state.dataset.kernels = info.kernels;
      state.dataset.adapter = info.adapter?.description || info.adapter?.vendor || '';
      state.className = info.backend === 'webgpu' ? 'ok' : 'warn';
      const path = info.kernels === 'fused' ? 'fused WGSL kernels' : 'stock tfjs ops';
      state.textContent = `Ready: training on ${info.backend.toUpperCase()}${info.adapter ? ` (${info.adapter.description || info.adapter.vendor || 'unnamed adapter'})` : ''} with ${path}. Shaders warmed up in ${(warmupMs / 1000).toFixed(1)} s.`;
      const a = info.adapter;
      replace(details,
        h('dt', {}, 'Backend'), h('dd', { id: 'backend-name' }, info.backend),
        h('dt', {}, 'Kernels'), h('dd', { id: 'backend-kernels', 'data-path': info.kernels }, info.kernels === 'fused'
          ? 'fused WGSL kernels (attention, norms, loss, AdamW in a few dispatches per step)'
          : `stock tfjs ops${info.backend === 'webgpu' ? ' (asked for with ?kernels=stock, for comparison)' : ''}`),
        ...(a ? [
          h('dt', {}, 'Adapter'), h('dd', { id: 'adapter-name' }, [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(no description)'),
          h('dt', {}, 'Kind'), h('dd', {}, a.isSoftware ? 'software renderer (correct, but far slower than a GPU)' : 'hardware GPU'),
        ] : []),
        ...(info.limits ? [h('dt', {}, 'Max buffer'), h('dd', {}, `${(info.limits.maxBufferSize / 2 ** 20).toFixed(0)} MiB`)] : []),
      );
      replace(notes);
      if (info.backend !== 'webgpu') {
        notes.append(h('p', { class: 'warn' }, 'WebGPU is not available in this browser, so WebTune fell back:'));
        notes.append(h('ul', {}, ...info.fallbacks.map((f) => h('li', {}, f))));
        notes.append(h('p', {}, info.backend === 'webgl'
          ? 'WebGL works, with the stock tfjs kernels: expect several times fewer tokens per second. Use the nano preset.'
          : 'The CPU backend works but is one to two orders of magnitude slower than a GPU: use the nano preset and few steps.'));
      } else if (a?.isSoftware) {
        notes.append(h('p', { class: 'warn' }, 'This adapter is a software renderer: numbers are right, timings say little about a GPU.'));
      }
    },
    failed(message: string) {
      state.dataset.state = 'failed';
      state.className = 'error';
      state.textContent = `The worker failed to start: ${message}`;
    },
  };
}
