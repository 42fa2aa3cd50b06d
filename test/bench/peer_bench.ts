/**
 * WebTune against @genai-fi/nanogpt (TensorFlow.js GPTs with their own fused WebGPU kernels) on
 * the same WebGPU adapter, same model size and batch: one training step each, timed as medians
 * of interleaved repeats after warm-up, with GPU compute dispatches per step.
 *
 * The peer is not a dependency of the repository. Install it without touching package.json,
 * then run:
 *
 *   npm install --no-save @genai-fi/nanogpt
 *   npx tsx test/bench/peer_bench.ts --layers 4 --heads 4 --dim 128 --ctx 128 --batch 8 --vocab 512 --steps 5
 *
 * (NANOGPT_MODULE=/path/to/nanogpt/dist/main.js points at a copy installed elsewhere.)
 *
 * Each library runs in its own child process: the peer bundles its own copy of tfjs-core and
 * registers its own 'webgpu' backend factory, and tfjs keeps one engine per process, so the two
 * cannot share one. Both children install Dawn (the `webgpu` package of this repository) the same
 * way src/backend does and get the same adapter (lavapipe when no GPU exists). The parent asks
 * one child at a time for a step, so the steps never overlap and the interleaving cancels drift.
 *
 * Steps measured:
 *   peer   NanoGPTV2 (its default model type) through its own trainer step: forward (training,
 *          dropout 0), its masked sparse cross-entropy, gradients of every variable, global-norm
 *          clipping (1.0) and its fused AdamW; ends with one readback of the loss.
 *   fused  WebTune GPT-2 (or Llama with --family llama) as `webtune bench` measures it: forward,
 *          masked CE, gradients, fusedClipGradNorm (1.0) and fusedAdamwUpdate, one readback.
 *   stock  the same model and step with the stock tfjs ops, clipGradNorm and adamwUpdate.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Cfg { layers: number; heads: number; dim: number; ctx: number; batch: number; vocab: number; steps: number; family: 'gpt2' | 'llama' }
type Path = 'peer' | 'fused' | 'stock';
type Msg = { id: number; cmd: 'init'; cfg: Cfg } | { id: number; cmd: 'step'; path: Path; count?: boolean } | { id: number; cmd: 'exit' };

function parseArgs(argv: string[]): Cfg {
  const cfg: Cfg = { layers: 4, heads: 4, dim: 128, ctx: 128, batch: 8, vocab: 512, steps: 5, family: 'gpt2' };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (key === 'worker' || key === 'json') { if (key === 'worker') i++; continue; }
    if (!(key in cfg)) throw new Error(`peer_bench: unknown flag '${argv[i]}'`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`peer_bench: flag '--${key}' needs a value`);
    if (key === 'family') {
      if (v !== 'gpt2' && v !== 'llama') throw new Error(`peer_bench: --family must be gpt2 or llama, got '${v}'`);
      cfg.family = v;
    } else {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`peer_bench: --${key} must be a positive integer, got '${v}'`);
      (cfg as any)[key] = n;
    }
  }
  return cfg;
}

// ---------------------------------------------------------------- child side

/** Counts compute dispatches at GPUComputePassEncoder.dispatchWorkgroups, the same in both children. */
let dispatches = 0;
function installDispatchCounter(): void {
  const proto = (globalThis as any).GPUComputePassEncoder?.prototype;
  if (!proto?.dispatchWorkgroups) throw new Error('peer_bench: GPUComputePassEncoder.dispatchWorkgroups not found');
  const orig = proto.dispatchWorkgroups;
  proto.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) { dispatches++; return orig.apply(this, a); };
}

/** Dawn into Node's globals, as src/backend/index.ts does (lavapipe when no hardware ICD exists). */
async function installDawn(): Promise<void> {
  if (!process.env.VK_ICD_FILENAMES) {
    const fs = await import('node:fs');
    const hasHardware = fs.existsSync('/usr/share/vulkan/icd.d/nvidia_icd.json') || fs.existsSync('/etc/vulkan/icd.d/nvidia_icd.json');
    for (const f of ['/usr/share/vulkan/icd.d/lvp_icd.x86_64.json', '/usr/share/vulkan/icd.d/lvp_icd.json']) {
      if (!hasHardware && fs.existsSync(f)) { process.env.VK_ICD_FILENAMES = f; break; }
    }
  }
  const webgpu: any = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create([]);
  const g = globalThis as any;
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else g.navigator = { gpu };
}

async function adapterLine(): Promise<string> {
  const a = await (globalThis as any).navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  const i = a?.info ?? {};
  return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' / ');
}

function tokens(cfg: Cfg): Int32Array {
  // The same ids in both children (what `webtune bench` uses).
  return Int32Array.from({ length: cfg.batch * cfg.ctx }, (_, i) => (i * 7919 + 13) % cfg.vocab);
}

async function peerWorker(cfg: Cfg) {
  await installDawn();
  installDispatchCounter();
  const spec = process.env.NANOGPT_MODULE ?? '@genai-fi/nanogpt';
  let main: string;
  try {
    main = spec.startsWith('/') ? spec : createRequire(import.meta.url).resolve(spec);
  } catch {
    throw new Error("peer_bench: @genai-fi/nanogpt is not installed; run `npm install --no-save @genai-fi/nanogpt` (or set NANOGPT_MODULE)");
  }
  // The peer ships a browser build: its bundled tfjs-core, seeing Node, would build the Node
  // platform from a stubbed-out `util` module and throw. A WorkerGlobalScope makes it take the
  // browser platform instead (fetch, performance.now, TextEncoder: all in Node); the flag is
  // evaluated once, at import, and the global is removed right after.
  const g = globalThis as any;
  const hadScope = 'WorkerGlobalScope' in g;
  if (!hadScope) g.WorkerGlobalScope = class WorkerGlobalScope {};
  let nano: any;
  try {
    nano = await import(pathToFileURL(main).href);
  } finally {
    if (!hadScope) delete g.WorkerGlobalScope;
  }
  // Its trainer (with the training step) is not exported from the package root; load it by file.
  const BasicTrainer = (await import(pathToFileURL(join(dirname(main), 'training', 'BasicTrainer.js')).href)).default;
  await nano.TeachableLLM.selectBackend('webgpu');
  const engine = (globalThis as any)._tfengine;                 // the peer's bundled tfjs-core engine
  engine.ENV.set('WEBGPU_CPU_FORWARD', false);
  const model = new nano.models.NanoGPTV2({
    modelType: 'GenAI_NanoGPT_v2', vocabSize: cfg.vocab, blockSize: cfg.ctx, nLayer: cfg.layers, nHead: cfg.heads, nEmbed: cfg.dim, mlpFactor: 4,
  });
  const trainer = new BasicTrainer(model, null, { learningRate: 1e-4, weightDecay: 0, clipNorm: 1.0, warmupSteps: 0 });
  trainer.setLossMasking();
  const ids = tokens(cfg);
  const xs = engine.makeTensor(ids, [cfg.batch, cfg.ctx], 'int32');
  const ys = engine.makeTensor(ids.map((_, i) => ids[(i + 1) % ids.length]), [cfg.batch, cfg.ctx], 'int32'); // next tokens (the peer's labels are pre-shifted)
  const step = async (): Promise<{ ms: number; loss: number }> => {
    const t0 = performance.now();
    const loss = trainer.trainStep({}, { xs, ys });
    const [l] = await loss.data();
    loss.dispose();
    if (!Number.isFinite(l)) throw new Error('peer_bench: non-finite loss on the peer path');
    return { ms: performance.now() - t0, loss: l };
  };
  return { step: (_p: Path) => step(), params: model.getNumParams() as number, note: `NanoGPTV2, backend ${engine.backendName}` };
}

async function webtuneWorker(cfg: Cfg) {
  const tf = await import('@tensorflow/tfjs');
  const { initBackend } = await import('../../src/backend/index.js');
  const { CausalLM } = await import('../../models/causal_lm.js');
  // The very step `webtune bench` times (same token ids, loss, clipping and AdamW).
  const { configFor, makeStep } = await import('../../src/cli/bench.js');
  await initBackend({ prefer: 'webgpu', strict: true });
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  installDispatchCounter();
  const config = configFor('custom', { family: cfg.family, layers: cfg.layers, heads: cfg.heads, dim: cfg.dim, vocab: cfg.vocab, ctx: cfg.ctx });
  const model = CausalLM.create(config, { seed: 0 });
  const { step } = makeStep(model, cfg.batch, cfg.ctx, cfg.vocab);
  return { step: (p: Path) => step(p === 'stock' ? 'stock' : 'fused'), params: model.numParams(), note: `CausalLM ${cfg.family}` };
}

async function worker(kind: 'peer' | 'webtune') {
  let impl: { step: (p: Path) => Promise<{ ms: number; loss: number }>; params: number; note: string } | undefined;
  process.on('message', async (m: Msg) => {
    try {
      if (m.cmd === 'init') {
        impl = kind === 'peer' ? await peerWorker(m.cfg) : await webtuneWorker(m.cfg);
        process.send!({ id: m.id, ok: true, adapter: await adapterLine(), params: impl.params, note: impl.note });
      } else if (m.cmd === 'step') {
        const d0 = dispatches;
        const { ms, loss } = await impl!.step(m.path);
        process.send!({ id: m.id, ok: true, ms, loss, dispatches: dispatches - d0 });
      } else {
        process.send!({ id: m.id, ok: true }, () => process.exit(0));
      }
    } catch (e) {
      process.send!({ id: m.id, ok: false, error: (e as Error)?.stack ?? String(e) });
    }
  });
}

// ---------------------------------------------------------------- parent side

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function spawnWorker(kind: 'peer' | 'webtune') {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--worker', kind], { stdio: ['inherit', 'pipe', 'inherit', 'ipc'] });
  child.stdout!.on('data', (d) => process.stderr.write(`[${kind}] ${d}`));   // the peer logs to stdout; keep ours clean
  let next = 0;
  const pending = new Map<number, (r: any) => void>();
  child.on('message', (r: any) => { pending.get(r.id)?.(r); pending.delete(r.id); });
  const call = (m: Record<string, unknown>) => new Promise<any>((resolve, reject) => {
    const id = next++;
    pending.set(id, (r) => (r.ok ? resolve(r) : reject(new Error(`${kind} worker: ${r.error}`))));
    child.send({ ...m, id });
  });
  child.on('exit', (code) => { for (const [, r] of pending) r({ ok: false, error: `exited with code ${code}` }); });
  return { call, kill: () => child.kill() };
}

async function main(argv: string[]): Promise<number> {
  const cfg = parseArgs(argv);
  const json = argv.includes('--json');
  const peer = spawnWorker('peer');
  const ours = spawnWorker('webtune');
  const by: Record<Path, ReturnType<typeof spawnWorker>> = { peer, fused: ours, stock: ours };
  const paths: Path[] = ['peer', 'fused', 'stock'];
  try {
    const [pi, wi] = [await peer.call({ cmd: 'init', cfg }), await ours.call({ cmd: 'init', cfg })];
    if (pi.adapter !== wi.adapter) throw new Error(`peer_bench: the two processes got different adapters: '${pi.adapter}' vs '${wi.adapter}'`);
    const first: Record<string, number> = {};
    const losses: Record<string, number[]> = { peer: [], fused: [], stock: [] };
    const stepOf = async (p: Path) => { const r = await by[p].call({ cmd: 'step', path: p }); losses[p].push(r.loss); return r; };
    for (const p of paths) first[p] = (await stepOf(p)).ms;                              // pipeline compilation
    for (const p of paths) await stepOf(p);                                               // one more warm-up each
    const disp: Record<string, number> = {};
    for (const p of paths) disp[p] = (await stepOf(p)).dispatches;
    const times: Record<string, number[]> = { peer: [], fused: [], stock: [] };
    for (let i = 0; i < cfg.steps; i++) {
      const order = paths.slice(i % 3).concat(paths.slice(0, i % 3));                  // rotate who goes first
      for (const p of order) times[p].push((await stepOf(p)).ms);
    }
    const tok = cfg.batch * cfg.ctx;
    const rows = paths.map((p) => ({
      path: p, tokensPerSecond: tok / (median(times[p]) / 1000), msPerStep: median(times[p]), dispatchesPerStep: disp[p], firstStepMs: first[p],
      params: p === 'peer' ? pi.params : wi.params, firstLoss: losses[p][0], lastLoss: losses[p][losses[p].length - 1], model: p === 'peer' ? pi.note : wi.note,
    }));
    if (json) {
      console.log(JSON.stringify({ adapter: wi.adapter, cfg, results: rows, times }, null, 2));
    } else {
      console.log(`adapter: ${wi.adapter}`);
      console.log(`layers ${cfg.layers}, heads ${cfg.heads}, dim ${cfg.dim}, batch ${cfg.batch} x ctx ${cfg.ctx}, vocab ${cfg.vocab}; median of ${cfg.steps} interleaved steps after warm-up`);
      console.log('');
      const head = ['path', 'model', 'params', 'tokens/s', 'ms/step', 'dispatches', 'first step ms', 'loss first -> last'];
      const body = rows.map((r) => [r.path, r.model, String(r.params), r.tokensPerSecond.toFixed(0), r.msPerStep.toFixed(1), String(r.dispatchesPerStep), r.firstStepMs.toFixed(0), `${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)}`]);
      const w = head.map((_, i) => Math.max(...[head, ...body].map((r) => r[i].length)));
      for (const r of [head, w.map((n) => '-'.repeat(n)), ...body]) console.log(r.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
      const pr = rows[0];
      for (const r of rows.slice(1)) console.log(`${r.path}/peer: ${(r.tokensPerSecond / pr.tokensPerSecond).toFixed(2)}x tokens/s, ${(r.dispatchesPerStep / pr.dispatchesPerStep).toFixed(2)}x dispatches`);
    }
    await Promise.all([peer.call({ cmd: 'exit' }), ours.call({ cmd: 'exit' })]);
    return 0;
  } finally {
    peer.kill();
    ours.kill();
  }
}

const wi = process.argv.indexOf('--worker');
if (wi >= 0) {
  void worker(process.argv[wi + 1] as 'peer' | 'webtune');
} else {
  main(process.argv.slice(2)).then((c) => process.exit(c), (e) => { console.error((e as Error).message ?? e); process.exit(1); });
}
