/**
 * "Bring your own base model" end to end, in headless Chromium with WebGPU on SwiftShader, with
 * the Hub replaced by the fake hub of test/hub on 127.0.0.1 (the page is opened with
 * ?hub=<its URL>; nothing reaches the network): type a repo id -> check (config.json only: the
 * memory estimate) -> load (a progress bar per file, to 100%) -> the model's own chat template
 * in the template builder -> a few LoRA steps on the architecture's default targets -> download
 * the PEFT adapter -> stop the hub, reload, load the same repo again from Cache Storage.
 *
 * The checkpoint is the tiny Llama of test/hub/fixtures/llama-bf16 (SmolLM2's config fields,
 * BF16 weights saved by transformers) with the bundled tokenizer and SmolLM2's chat template.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { openDemo, setTraining, slow, type Demo } from '../helpers/browser.js';
import { FakeHub } from '../hub/fake_hub.js';
import { unzipStore } from '../../demo/zip.js';
import { parseSafetensors } from '../../src/io/safetensors.js';

const LOAD_ENDED = '#hub-status:is([data-state="loaded"], [data-state="error"], [data-state="cancelled"])';
const REPO = 'webtune-test/tiny-smollm2';
const FIXTURE = path.resolve('test/hub/fixtures/llama-bf16');
const TOKENIZER = path.resolve('models/tokenizer');
// SmolLM2-Instruct's template: a default system prompt when the conversation has none.
const SMOLLM2_TEMPLATE = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function repoFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const f of fs.readdirSync(FIXTURE)) if (f !== 'expected.safetensors') files.set(f, new Uint8Array(fs.readFileSync(path.join(FIXTURE, f))));
  files.set('tokenizer.json', new Uint8Array(fs.readFileSync(path.join(TOKENIZER, 'tokenizer.json'))));
  const cfg = JSON.parse(fs.readFileSync(path.join(TOKENIZER, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  files.set('tokenizer_config.json', new TextEncoder().encode(JSON.stringify({ ...cfg, eos_token: '<|im_end|>', chat_template: SMOLLM2_TEMPLATE })));
  return files;
}

describe('bring your own base model (fake hub, headless Chromium, WebGPU)', () => {
  const hub = new FakeHub();
  let demo: Demo;
  let page: Page;
  let errors: string[];
  const files = repoFiles();
  // Parameters counted independently of the library: the elements of every stored tensor (the head is tied, so not stored).
  const { tensors } = parseSafetensors(files.get('model.safetensors')!, 'model.safetensors');
  const storedParams = [...tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);

  beforeAll(async () => {
    // model.safetensors arrives in 4 KiB chunks, so the page draws its progress bar moving.
    hub.repos.set(REPO, { files, slow: new Set(['model.safetensors']) });
    const endpoint = await hub.start();
    demo = await openDemo({ query: `?hub=${encodeURIComponent(endpoint)}` });
    ({ page, errors } = demo);
  }, slow(60_000));

  afterAll(async () => {
    await demo?.close();
    await hub.stop();
  });

  it('checks a repo from config.json alone: parameters, download size, memory for LoRA and full fine-tuning', async () => {
    await demo.open();
    expect(await page.inputValue('#hub-endpoint')).toBe(hub.endpoint);
    await page.fill('#hub-repo', REPO);
    await page.click('#hub-check');
    const est = page.locator('#hub-estimate[data-state="shown"]');
    await est.waitFor({ timeout: slow(30_000) });
    expect(Number(await est.getAttribute('data-params'))).toBe(storedParams);
    expect(await est.getAttribute('data-lora-fits')).toBe('1');
    expect(await page.textContent('#hub-summary')).toContain(`download ${(files.get('model.safetensors')!.byteLength / 1024).toFixed(1)} KiB`);
    const lora = await page.locator('#hub-estimate td[data-col="lora"]').allTextContents();
    const full = await page.locator('#hub-estimate td[data-col="full"]').allTextContents();
    expect(lora).toHaveLength(7);
    // LoRA on q,k,v,o of 2 layers (hidden 32, 4 heads, 2 KV heads of 8): r * (in + out) = 8 * (64 + 48 + 48 + 64) * 2.
    expect(lora[0]).toBe('3.6 k');
    expect(full[1]).toBe(lora[1]); // the same weights either way
    expect(await page.textContent('#hub-estimate thead')).toContain('q_proj, k_proj, v_proj, o_proj');
    // config.json and a HEAD for the weights: no weight was downloaded.
    expect(hub.count('model.safetensors', 'GET')).toBe(0);
    await page.locator('#panel-hub').screenshot({ path: 'test-artifacts/hub-01-checked.png' });
  }, slow(300_000));

  it('loads with a progress bar per file reaching 100%, then uses the model\'s tokenizer and chat template', async () => {
    await page.click('#hub-load');
    await page.waitForSelector(LOAD_ENDED, { timeout: slow(60_000) });
    expect(await page.getAttribute('#hub-status', 'data-state'), (await page.textContent('#hub-status'))!).toBe('loaded');
    expect(await page.getAttribute('#hub-progress-total', 'data-percent')).toBe('100');
    const rows = page.locator('#hub-files-progress li');
    const names = await rows.evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.file));
    expect(names).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']));
    expect(await page.locator('#hub-files-progress li[data-done="0"]').count()).toBe(0);
    expect(hub.count('model.safetensors', 'GET')).toBe(1);
    await page.locator('#panel-hub').screenshot({ path: 'test-artifacts/hub-02-loaded.png' });

    // The template builder switched to the model's own template: with no system prompt it adds SmolLM2's.
    expect(await page.inputValue('#tpl-builtin')).toBe('model');
    await page.fill('#tpl-system', '');
    const out = page.locator('#tpl-output');
    await expect.poll(() => out.textContent(), { timeout: slow(20_000) }).toContain('<|im_start|>system\nYou are a helpful AI assistant named SmolLM');
    expect(await page.getAttribute('#tpl-name', 'data-template')).toContain('tokenizer_config.json');
    const trained = await page.locator('.mask-mode[data-mode="assistant"] .tok[data-trained="1"]').allTextContents();
    expect(trained.join('')).toBe('12<|im_end|>24<|im_end|>');
    expect(await page.textContent('#model-info')).toContain(REPO);
    await page.locator('#panel-template').screenshot({ path: 'test-artifacts/hub-03-template.png' });
  }, slow(120_000));

  it('trains a few LoRA steps on the loaded model and downloads a PEFT adapter', async () => {
    expect(await page.inputValue('#set-model')).toBe('pretrained');
    expect(await page.isChecked('#set-lora')).toBe(true);
    expect(await page.inputValue('#set-lora-targets')).toBe('q_proj, k_proj, v_proj, o_proj');
    await setTraining(page, { steps: 4, batch: 2, maxlen: 48, warmup: 0, 'eval-every': 0 });
    await page.click('#train-start');
    await page.waitForSelector('#train-progress[data-state="done"]', { timeout: slow(180_000) });
    expect(Number(await page.getAttribute('#chart-loss', 'data-points'))).toBe(4);
    // PEFT's report line: 3,584 adapter parameters beside the frozen base.
    expect(await page.textContent('#model-info')).toMatch(new RegExp(`trainable params: 3,584 \\|\\| all params: ${(storedParams + 3584).toLocaleString('en-US')} \\|\\|`));
    await page.locator('#panel-training').screenshot({ path: 'test-artifacts/hub-04-trained.png' });

    const [download] = await Promise.all([page.waitForEvent('download', { timeout: slow(30_000) }), page.click('#download-adapter')]);
    const zip = new Uint8Array(fs.readFileSync((await download.path())!));
    const entries = unzipStore(zip, download.suggestedFilename());
    expect([...entries.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const config = JSON.parse(new TextDecoder().decode(entries.get('adapter_config.json')!)) as Record<string, unknown>;
    expect(config.peft_type).toBe('LORA');
    expect(config.base_model_name_or_path).toBe(REPO);
    expect((config.target_modules as string[]).slice().sort()).toEqual(['k_proj', 'o_proj', 'q_proj', 'v_proj']);
    const keys = [...parseSafetensors(entries.get('adapter_model.safetensors')!, 'adapter_model.safetensors').tensors.keys()];
    expect(keys).toHaveLength(2 * 4 * 2);
    expect(keys).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(keys).toContain('base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight');
  }, slow(240_000));

  it('loads the same repo again after a reload with the hub stopped (Cache Storage)', async () => {
    await hub.stop();
    await demo.reload();
    await page.fill('#hub-repo', REPO);
    await page.click('#hub-load');
    await page.waitForSelector(LOAD_ENDED, { timeout: slow(60_000) });
    expect(await page.getAttribute('#hub-status', 'data-state'), (await page.textContent('#hub-status'))!).toBe('loaded');
    expect(await page.getAttribute('#hub-progress-total', 'data-percent')).toBe('100');
    expect(await page.textContent('#hub-status')).toContain('from this browser\'s cache');
    expect(await page.locator('#hub-files-progress li[data-cached="0"]').count()).toBe(0);
    expect(await page.inputValue('#tpl-builtin')).toBe('model');
    expect(await page.textContent('#model-info')).toContain(REPO);
    await page.locator('#panel-hub').screenshot({ path: 'test-artifacts/hub-05-offline.png' });

    await page.click('#hub-clear-cache');
    await page.waitForSelector('#hub-status[data-state="cleared"]', { timeout: slow(10_000) });
  }, slow(300_000));

  it('loads the same checkpoint from local files (the file picker)', async () => {
    await page.setInputFiles('#hub-files', [...files].map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })));
    await page.waitForSelector(LOAD_ENDED, { timeout: slow(60_000) });
    expect(await page.getAttribute('#hub-status', 'data-state'), (await page.textContent('#hub-status'))!).toBe('loaded');
    expect(await page.textContent('#model-info')).toContain('selected files');
    expect(await page.inputValue('#set-model')).toBe('pretrained');
    expect(await page.inputValue('#tpl-builtin')).toBe('model');
    await page.fill('#tpl-system', '');
    await expect.poll(() => page.textContent('#tpl-output'), { timeout: slow(20_000) }).toContain('named SmolLM');
    expect(await page.getAttribute('#tpl-name', 'data-template')).toContain('selected files');
    expect(errors).toEqual([]);
  }, slow(120_000));
});
