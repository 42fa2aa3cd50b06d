/**
 * "Bring your own base model": a model from the Hub (its size and memory estimate first, then a
 * download with progress and cancel) or from picked files, with its own tokenizer and chat template.
 */
import {
  fetchHubModelInfo, loadFromHub, loadPretrainedFrom, filesSource, clearHubCache, checkFitsAdapter, planTraining, familyOf, dims,
  type PretrainedModel, type MemoryEstimate, type HubOptions, type ModelConfig,
} from '../../../src/index.js';
import type { HubRef, HubCheckInfo, EstimateView, ModelInfo, PretrainedInfo } from '../../protocol.js';
import { post, type Handlers, type WorkerState } from '../state.js';

/** LoRA targets the page suggests for a pretrained model: every attention projection of its family. */
export function loraTargetsFor(config: ModelConfig): string[] {
  return [...familyOf(config).attentionProjections];
}

function hubOptions(hub: HubRef, extra: HubOptions = {}): HubOptions {
  return { revision: hub.revision || 'main', endpoint: hub.endpoint || undefined, token: hub.token || undefined, ...extra };
}

function estimateView(s: WorkerState, est: MemoryEstimate): EstimateView {
  const fit = s.backend.limits ? checkFitsAdapter(est, s.backend.limits) : { ok: true as const };
  return {
    trainableParams: est.trainableParams, weights: est.weights, gradients: est.gradients, optimizer: est.optimizer,
    activations: est.activations, total: est.total, largestBuffer: est.largestBuffer, refusal: fit.ok ? undefined : fit.message,
  };
}

/** config.json (and the size of the weights) only: what loading and training will cost, before any weight is fetched. */
async function hubCheck(s: WorkerState, hub: HubRef, batchSize: number, seqLen: number, r: number, targets: string[]): Promise<HubCheckInfo> {
  const info = await fetchHubModelInfo(hub.repo.trim(), hubOptions(hub));
  const d = dims(info.config);
  const T = Math.min(seqLen, d.maxPositions);
  const loraTargets = targets.length ? targets : loraTargetsFor(info.config);
  // The path that will run: fused kernels on WebGPU, chunked loss, and checkpointing where the run needs it to fit.
  const path = s.backend.backend === 'webgpu' ? 'fused' as const : 'stock' as const;
  const lora = planTraining(info.config, { batchSize, seqLen: T, lora: { r, targets: loraTargets }, path }).estimate;
  const full = planTraining(info.config, { batchSize, seqLen: T, path }).estimate;
  return {
    source: info.source.name, modelType: info.config.model_type, params: lora.params, weightFiles: info.weightFiles, downloadBytes: info.downloadBytes,
    batchSize, seqLen: T, loraTargets, loraR: r, lora: estimateView(s, lora), full: estimateView(s, full),
    limits: s.backend.limits ? { maxBufferSize: s.backend.limits.maxBufferSize, maxStorageBufferBindingSize: s.backend.limits.maxStorageBufferBindingSize } : undefined,
  };
}

/** Makes a loaded base model the current one: its tokenizer and chat template are used from now on. */
async function usePretrained(s: WorkerState, p: PretrainedModel, name: string, again: () => Promise<PretrainedModel>): Promise<{ model: ModelInfo; pretrained: PretrainedInfo }> {
  if (s.pretrained?.pristine && s.pretrained.pristine !== s.model) s.pretrained.pristine.dispose();
  s.pretrained = { name, source: again, tokenizer: p.tokenizer, template: p.template, config: p.config, pristine: p.model };
  s.tokenizer = p.tokenizer;
  if (p.template) s.template = p.template;
  s.baseSnapshot = undefined;
  s.dropTrainer();
  s.setModel(p.model, name);
  return {
    model: s.modelInfo(p.model, name, await s.evalLossOf(p.model)),
    pretrained: {
      name, modelType: p.config.model_type, params: p.model.numParams(), maxPositions: dims(p.config).maxPositions,
      template: p.template ? { name: p.template.name, source: p.template.source } : undefined,
      loraTargets: loraTargetsFor(p.config),
    },
  };
}

async function hubLoad(s: WorkerState, id: number, hub: HubRef): Promise<void> {
  if (s.training) throw new Error('A run is going: stop it before loading another model.');
  s.hubAbort?.abort();
  const ctrl = new AbortController();
  s.hubAbort = ctrl;
  // Progress at most every 100 ms per file (and always its first and last event), not per network chunk.
  const last = new Map<string, number>();
  const onProgress = (file: string, loaded: number, total: number | undefined) => {
    const now = performance.now();
    if (loaded !== 0 && loaded !== total && now - (last.get(file) ?? 0) < 100) return;
    last.set(file, now);
    post({ status: 'hub-progress', id, file, loaded, total });
  };
  const repo = hub.repo.trim();
  try {
    const p = await loadFromHub(repo, hubOptions(hub, { signal: ctrl.signal, onProgress }));
    const name = hub.revision && hub.revision !== 'main' ? `${repo}@${hub.revision}` : repo;
    const r = await usePretrained(s, p, name, () => loadFromHub(repo, hubOptions(hub)));
    post({ status: 'model-loaded', id, model: r.model, from: name, pretrained: r.pretrained });
  } finally {
    if (s.hubAbort === ctrl) s.hubAbort = undefined;
  }
}

export const hubHandlers: Handlers<'hub-check' | 'hub-load' | 'hub-cancel' | 'hub-clear-cache' | 'pretrained-files'> = {
  async 'hub-check'(msg, s) {
    post({ status: 'hub-info', id: msg.id, info: await hubCheck(s, msg.hub, msg.batchSize, msg.seqLen, msg.lora.r, msg.lora.targets) });
  },
  'hub-load': (msg, s) => s.exclusive(() => hubLoad(s, msg.id, msg.hub)),
  'hub-cancel': (_msg, s) => s.hubAbort?.abort(),
  async 'hub-clear-cache'(msg) {
    post({ status: 'hub-cache-cleared', id: msg.id, deleted: await clearHubCache() });
  },
  async 'pretrained-files'(msg, s) {
    const src = filesSource(msg.files);
    const r = await s.exclusive(async () => usePretrained(s, await loadPretrainedFrom(src), src.name, () => loadPretrainedFrom(filesSource(msg.files))));
    post({ status: 'model-loaded', id: msg.id, model: r.model, from: src.name, pretrained: r.pretrained });
  },
};
