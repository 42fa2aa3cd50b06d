/**
 * Backend selection: WebGPU first, then announced fallbacks.
 *
 *   browser: webgpu -> webgl -> cpu
 *   Node:    webgpu (Dawn, the `webgpu` package) -> cpu
 *
 * A fallback is never silent: the returned BackendInfo carries `fallbacks`, one line per
 * backend that was tried and refused, and `onFallback` is called for each.
 *
 * The backend gives the engine models run on (src/engine): the fused WGSL kernels on WebGPU,
 * stock tfjs ops on WebGL and the CPU; `kernels: 'stock'` asks for the stock ops on WebGPU too,
 * for comparisons.
 *
 * @example
 *   const info = await initBackend();
 *   console.log(info.backend, info.adapter?.description);  // 'webgpu' 'llvmpipe (LLVM 19.1.7, 256 bits)'
 *   console.log(info.engine.path);                         // 'fused'
 */
import * as tf from '@tensorflow/tfjs';
import { selectEngine, stockEngine, describeEngine, type Engine, type KernelChoice } from '../engine/index.js';

export type BackendName = 'webgpu' | 'webgl' | 'cpu';

/** What a GPU adapter says about itself (GPUAdapterInfo, copied to a plain object). */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters (lavapipe, SwiftShader): their timings say little about a GPU. */
  isSoftware: boolean;
}

export interface BackendInfo {
  backend: BackendName;
  adapter?: AdapterInfo;
  /** One message per backend that was tried before this one and failed, in order. */
  fallbacks: string[];
  /** Limits of the device, where known (WebGPU). */
  limits?: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxStorageBuffersPerShaderStage: number };
  /** The engine models made on this backend are bound to (fused kernels on WebGPU unless `kernels: 'stock'`). */
  engine: Engine;
}

export interface InitBackendOptions {
  /** Start the chain here (e.g. 'cpu' to force the CPU). Default 'webgpu'. */
  prefer?: BackendName;
  /** Called once for every fallback, with the reason. Default: console.warn. */
  onFallback?: (message: string) => void;
  /** Fail instead of falling back (tests and benchmarks that need a particular backend). */
  strict?: boolean;
  /** Which ops the engine runs: 'auto' (default; fused on WebGPU), 'fused' (refused off WebGPU) or 'stock'. */
  kernels?: KernelChoice;
}

export const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

let current: BackendInfo | undefined;

/** The backend chosen by the last initBackend() call, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

/**
 * The engine a model gets when none is given: the one the last initBackend() chose, while its
 * backend is still the active one; otherwise the 'auto' engine of the active tfjs backend.
 */
export function currentEngine(): Engine {
  const active = tf.getBackend() as BackendName | undefined;
  if (current && current.backend === active) return current.engine;
  return active === 'webgpu' || active === 'webgl' || active === 'cpu' ? selectEngine(active) : stockEngine;
}

const HOW_TO_GET_AN_ADAPTER =
  'On Linux without a GPU install a software Vulkan driver: ' +
  '`sudo bash test/system/install-deps.sh` (Mesa lavapipe from bookworm-backports), ' +
  'or point VK_ICD_FILENAMES at an ICD json (e.g. /usr/share/vulkan/icd.d/lvp_icd.json).';

/** Installs Dawn's WebGPU into Node's globals, once. Must run before tfjs-backend-webgpu is imported. */
async function installNodeWebGPU(): Promise<void> {
  const g = globalThis as any;
  if (g.navigator?.gpu) return;
  // A default software driver when none is chosen and lavapipe is installed.
  if (!process.env.VK_ICD_FILENAMES) {
    const fs = await import('node:fs');
    const lvp = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
    const lvp2 = '/usr/share/vulkan/icd.d/lvp_icd.json';
    const hasHardware = fs.existsSync('/usr/share/vulkan/icd.d/nvidia_icd.json') || fs.existsSync('/etc/vulkan/icd.d/nvidia_icd.json');
    if (!hasHardware) {
      if (fs.existsSync(lvp)) process.env.VK_ICD_FILENAMES = lvp;
      else if (fs.existsSync(lvp2)) process.env.VK_ICD_FILENAMES = lvp2;
    }
  }
  const webgpu: any = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create([]);
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else g.navigator = { gpu };
}

function adapterInfoOf(info: any): AdapterInfo {
  const vendor = String(info?.vendor ?? '');
  const architecture = String(info?.architecture ?? '');
  const device = String(info?.device ?? '');
  const description = String(info?.description ?? '');
  const all = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  return {
    vendor, architecture, device, description,
    isSoftware: /llvmpipe|lavapipe|swiftshader|software|cpu/.test(all),
  };
}

let ownFactoryRegistered = false;

/**
 * The device the 'webgpu' backend runs on: the features and limits tfjs-backend-webgpu 4.22.0
 * requests (timestamp queries, the adapter's workgroup, dispatch and buffer-size limits) plus the
 * adapter's maxStorageBuffersPerShaderStage. tfjs leaves that one at WebGPU's default of 8; the
 * fused kernels (AdamW over several parameters, grouped norms) do more per dispatch with the
 * 16 or more that lavapipe and desktop GPUs report. Every caller of initBackend (trainer, demo,
 * bench, tests) gets this same device.
 */
async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  if (adapter.features.has('bgra8unorm-storage')) requiredFeatures.push('bgra8unorm-storage');
  const a = adapter.limits;
  return adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    },
  });
}

async function tryWebGPU(): Promise<BackendInfo> {
  if (isNode) await installNodeWebGPU();
  const gpu = (globalThis as any).navigator?.gpu as GPU | undefined;
  if (!gpu) throw new Error('navigator.gpu is not available (this browser has no WebGPU).');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(`navigator.gpu.requestAdapter() returned null: no WebGPU adapter. ${isNode ? HOW_TO_GET_AN_ADAPTER : ''}`.trim());
  const info = adapterInfoOf((adapter as any).info ?? {});
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  if (!ownFactoryRegistered && !tf.findBackend('webgpu')) {
    // The module registered its own factory when it loaded; replace it (once, before the
    // backend is first created) with one that asks for the adapter's storage-buffer limit too.
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', async () => new WebGPUBackend(await requestDevice(adapter), (adapter as any).info), 3);
    ownFactoryRegistered = true;
  }
  const ok = await tf.setBackend('webgpu');
  if (!ok) throw new Error('tfjs could not initialise its webgpu backend.');
  await tf.ready();
  const device: GPUDevice | undefined = (tf.backend() as any).device;
  return {
    backend: 'webgpu',
    engine: stockEngine,       // chosen by initBackend
    adapter: info,
    fallbacks: [],
    limits: device ? {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
    } : undefined,
  };
}

async function tryWebGL(): Promise<BackendInfo> {
  if (isNode) throw new Error('WebGL is not available in Node.');
  const ok = await tf.setBackend('webgl');
  if (!ok) throw new Error('WebGL could not be initialised.');
  await tf.ready();
  return { backend: 'webgl', engine: stockEngine, fallbacks: [] };
}

async function tryCPU(): Promise<BackendInfo> {
  await tf.setBackend('cpu');
  await tf.ready();
  return { backend: 'cpu', engine: stockEngine, fallbacks: [] };
}

const COST: Record<BackendName, string> = {
  webgpu: '',
  webgl: 'WebGL trains with the stock tfjs kernels, typically several times slower than WebGPU',
  cpu: 'the CPU backend is one to two orders of magnitude slower than a GPU; use the nano preset',
};

/** Chooses and initialises a tfjs backend, announcing every fallback. */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const chain: BackendName[] = isNode ? ['webgpu', 'cpu'] : ['webgpu', 'webgl', 'cpu'];
  const start = chain.indexOf(opts.prefer ?? 'webgpu');
  if (start < 0) throw new Error(`Backend '${opts.prefer}' is not available here; choose one of ${chain.join(', ')}.`);
  const onFallback = opts.onFallback ?? ((m: string) => console.warn(m));
  const kernels = opts.kernels ?? 'auto';
  const tried: BackendName[] = chain.slice(start);
  const fallbacks: string[] = [];
  for (let i = 0; i < tried.length; i++) {
    const name = tried[i];
    let info: BackendInfo;
    try {
      info = name === 'webgpu' ? await tryWebGPU() : name === 'webgl' ? await tryWebGL() : await tryCPU();
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const next = tried[i + 1];
      if (opts.strict || !next) throw new Error(`Backend '${name}' failed: ${reason}`);
      const msg = `WebTune: backend '${name}' unavailable (${reason}); falling back to '${next}'. ${COST[next]}.`;
      fallbacks.push(msg);
      onFallback(msg);
      continue;
    }
    info.engine = selectEngine(info.backend, kernels);   // 'fused' off WebGPU is refused here, naming the backend
    info.fallbacks = fallbacks;
    current = info;
    return info;
  }
  throw new Error('unreachable');
}

/** One line naming the backend, the adapter and the engine's kernels, for logs and benchmark tables. */
export function describeBackend(info: BackendInfo): string {
  const engine = describeEngine(info.engine);
  if (!info.adapter) return `${info.backend}, ${engine}`;
  const a = info.adapter;
  const name = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ');
  return `${info.backend} on ${name}${a.isSoftware ? ' (software adapter)' : ''}, ${engine}`;
}
