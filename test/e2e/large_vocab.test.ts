/**
 * A model with SmolLM2's 49,152-token vocabulary trains end to end in the page (headless
 * Chromium, WebGPU on SwiftShader), first on the engine the backend gives (the fused kernels),
 * then on the stock ops chosen with the Kernels control, from the same checkpoint.
 *
 * The checkpoint is served by the fake hub of test/hub: a 2-layer Llama of width 32 with
 * vocab_size 49152 (tied head) and seeded random weights, with the bundled tokenizer (1024
 * tokens: the model's vocabulary is larger than the tokenizer's, as padded vocabularies are).
 * Batch 2 x 32 keeps the logits at 64 x 49152 floats (12 MiB), far under the 128 MiB binding limit.
 *
 * Independent reference: the tied embedding has std 0.0005 (the other weights 0.02), so every
 * logit is within a few hundredths of 0 (a token's own logit, the largest, is about
 * 32 * 0.0005^2 / sqrt(0.0005^2 + 1e-5) = 0.003 after RMSNorm), the softmax is uniform to that
 * precision, and the first step's loss is ln(49152) = 10.80 within 0.01, on either path.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { openDemo, screenshot, setTraining, slow, type Demo } from '../helpers/browser.js';
import { FakeHub } from '../hub/fake_hub.js';
import { writeSafetensors, type WritableTensor } from '../../src/io/safetensors.js';
import { paramSpecs } from '../../models/causal_lm.js';
import { parseConfig } from '../../models/config.js';

const LOAD_ENDED = '#hub-status:is([data-state="loaded"], [data-state="error"], [data-state="cancelled"])';
const REPO = 'webtune-test/tiny-49k-vocab';
const VOCAB = 49152;
const STEPS = 3;
const TOKENIZER = path.resolve('models/tokenizer');

const CONFIG = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: VOCAB, hidden_size: 32, intermediate_size: 64,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-5,
  rope_theta: 10000, tie_word_embeddings: true, attention_bias: false, mlp_bias: false, hidden_act: 'silu',
  initializer_range: 0.02, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32',
};

/** Seeded normal weights (std 0.0005 for the embedding, 0.02 elsewhere; ones for the norms), by the parameter list of the config. */
function weights(): Uint8Array {
  let s = 12345;
  const uniform = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const tensors = new Map<string, WritableTensor>();
  for (const spec of paramSpecs(parseConfig(CONFIG))) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const std = spec.name === 'model.embed_tokens.weight' ? 0.0005 : 0.02;
    const data = spec.init.kind === 'ones' ? new Float32Array(n).fill(1) : Float32Array.from({ length: n }, () => std * normal());
    tensors.set(spec.name, { shape: spec.shape, data });
  }
  return writeSafetensors(tensors);
}

function repoFiles(): Map<string, Uint8Array> {
  const enc = new TextEncoder();
  const cfg = JSON.parse(fs.readFileSync(path.join(TOKENIZER, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  return new Map([
    ['config.json', enc.encode(JSON.stringify(CONFIG))],
    ['model.safetensors', weights()],
    ['tokenizer.json', new Uint8Array(fs.readFileSync(path.join(TOKENIZER, 'tokenizer.json')))],
    ['tokenizer_config.json', enc.encode(JSON.stringify({ ...cfg, eos_token: '<|im_end|>' }))],
  ]);
}

interface Run { path: string; dispatches: number; tokensPerSecond: number; head: number[]; last: number }

describe('a 49,152-token vocabulary trains in the page (fake hub, headless Chromium, WebGPU)', () => {
  const hub = new FakeHub();
  let demo: Demo;
  let page: Page;
  let errors: string[];
  const runs: Run[] = [];

  beforeAll(async () => {
    hub.repos.set(REPO, { files: repoFiles() });
    const endpoint = await hub.start();
    // Errors and warnings of the page and its worker go to the test's output: a run that never
    // starts then says why.
    demo = await openDemo({ query: `?hub=${encodeURIComponent(endpoint)}`, logConsole: true });
    ({ page, errors } = demo);
  }, slow(120_000));

  afterAll(async () => {
    await demo?.close();
    await hub.stop();
  });

  /** Trains STEPS LoRA steps of the loaded model on `kernels`; returns what the progress line carried. */
  async function train(kernels: 'auto' | 'stock'): Promise<Run> {
    await setTraining(page, { model: 'pretrained', kernels, steps: STEPS, batch: 2, maxlen: 32, warmup: 0, 'eval-every': 0 });
    await page.click('#train-start');
    // While it trains, the progress line names the path (set with the first step).
    const progress = page.locator('#train-progress');
    // A run that fails before its first step ends the wait too, and says why.
    await page.waitForSelector('#train-progress:is([data-state="running"][data-path], [data-state="failed"])', { timeout: slow(300_000) });
    expect(await progress.getAttribute('data-state'), (await progress.textContent())!).toBe('running');
    const during = (await progress.getAttribute('data-path'))!;
    await page.waitForSelector('#train-progress:is([data-state="done"], [data-state="failed"])', { timeout: slow(300_000) });
    expect(await progress.getAttribute('data-state'), (await progress.textContent())!).toBe('done');
    expect(Number(await progress.getAttribute('data-step'))).toBe(STEPS);
    expect(await progress.getAttribute('data-path')).toBe(during);
    return {
      path: during,
      dispatches: Number(await progress.getAttribute('data-dispatches')),
      tokensPerSecond: Number(await progress.getAttribute('data-tokens-per-second')),
      head: JSON.parse((await page.getAttribute('#chart-loss', 'data-loss-head'))!) as number[],
      last: Number(await progress.getAttribute('data-loss')),
    };
  }

  it('loads the checkpoint on the fused engine: status and model line say so', async () => {
    await demo.open();
    expect(await page.getAttribute('#status-line', 'data-kernels')).toBe('fused');
    expect(await page.getAttribute('#backend-kernels', 'data-path')).toBe('fused');
    await page.fill('#hub-repo', REPO);
    await page.click('#hub-load');
    await page.waitForSelector(LOAD_ENDED, { timeout: slow(120_000) });
    expect(await page.getAttribute('#hub-status', 'data-state'), (await page.textContent('#hub-status'))!).toBe('loaded');
    expect(await page.inputValue('#set-model')).toBe('pretrained');
  }, slow(300_000));

  it('trains on the fused path by default: loss starts at ln(49152) and the run completes', async () => {
    const run = await train('auto');
    runs.push(run);
    expect(run.path).toBe('fused');
    expect(run.dispatches).toBeGreaterThan(0);
    expect(run.head).toHaveLength(STEPS);
    expect(Math.abs(run.head[0] - Math.log(VOCAB))).toBeLessThan(0.01);
    for (const l of run.head) expect(Number.isFinite(l)).toBe(true);
    await screenshot(page, 'large-vocab-01-fused');
  }, slow(600_000));

  it('trains the same checkpoint on the stock path when asked: same first loss, more dispatches', async () => {
    const run = await train('stock');
    runs.push(run);
    const [fused, stock] = runs;
    expect(stock.path).toBe('stock');
    // The same checkpoint and the same first batch: the same loss within float32 tolerance.
    expect(Math.abs(stock.head[0] - fused.head[0])).toBeLessThan(1e-3);
    expect(fused.dispatches).toBeLessThan(stock.dispatches);
    console.log(`49,152-token vocabulary, batch 2 x 32, in the page: fused ${fused.tokensPerSecond.toFixed(0)} tokens/s and ${fused.dispatches} dispatches/step; ` +
      `stock ${stock.tokensPerSecond.toFixed(0)} tokens/s and ${stock.dispatches} dispatches/step`);
    await screenshot(page, 'large-vocab-02-stock');
    expect(errors).toEqual([]);
  }, slow(600_000));
});
