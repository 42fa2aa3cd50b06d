/**
 * `webtune train` in-process on the CPU backend: files written, one metrics line per step, the
 * loss curve, bad rows skipped and reported with file:line, exact --resume, flag validation.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as train, parseDataSpec } from '../../src/cli/train.js';
import { CliError } from '../../src/cli/args.js';
import { capture } from '../helpers/capture.js';
import { loadModel } from '../../src/io/checkpoint.js';
import { parseSafetensors } from '../../src/io/safetensors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-train-'));
const data = path.join(tmp, 'data.jsonl');


const stepLines = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l) as { type: string; step: number; loss: number }).filter((m) => m.type === 'step');

const common = ['--preset', 'nano', '--batch-size', '2', '--max-length', '40', '--backend', 'cpu', '--lr', '3e-3', '--seed', '7'];

beforeAll(() => {
  // 8 good rows from the bundled set, plus two bad ones at lines 3 and 7.
  const rows = fs.readFileSync('demo/data/train.jsonl', 'utf8').split('\n').slice(0, 8);
  rows.splice(2, 0, '{"messages": [{"role": "user", "content": "hi"}, ');                                     // line 3: not JSON
  rows.splice(6, 0, JSON.stringify({ messages: [{ role: 'bot', content: 'x' }, { role: 'assistant', content: 'y' }] })); // line 7: bad role
  fs.writeFileSync(data, rows.join('\n') + '\n');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('webtune train (cpu)', () => {
  const outA = path.join(tmp, 'a');
  const outB = path.join(tmp, 'b');
  let runA: { code: number; out: string; err: string };

  beforeAll(async () => {
    runA = await capture(() => train(['--data', data, ...common, '--steps', '6', '--save-every', '3', '--keep-checkpoints', '--save-total-limit', '2', '--out', outA]));
  });

  it('writes a Hugging Face checkpoint with the tokenizer and its chat template', async () => {
    expect(runA.code).toBe(0);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'metrics.jsonl', 'loss.svg']) {
      expect(fs.existsSync(path.join(outA, f)), f).toBe(true);
    }
    const tc = JSON.parse(fs.readFileSync(path.join(outA, 'tokenizer_config.json'), 'utf8'));
    expect(tc.chat_template).toContain('<|im_start|>');
    const config = JSON.parse(fs.readFileSync(path.join(outA, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'gpt2', n_embd: 64, n_layer: 2, vocab_size: 1024 });
    const model = await loadModel(outA);
    expect(model.numParams()).toBe(182_016); // the nano preset's documented size
    model.dispose();
  });

  it('logs one metrics line per step; the first loss is about ln(vocab) for a fresh model', () => {
    const steps = stepLines(outA);
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // Initial weights ~N(0, 0.02): the logits are nearly uniform over 1024 tokens.
    expect(Math.abs(steps[0].loss - Math.log(1024))).toBeLessThan(0.15);
    for (const s of steps) expect(Number.isFinite(s.loss)).toBe(true);
  });

  it('draws the loss curve with one point per step', () => {
    const svg = fs.readFileSync(path.join(outA, 'loss.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    const d = /<path id="train-loss" d="([^"]+)"/.exec(svg)![1];
    expect(d.split(/[ML]/).filter((s) => s.trim()).length).toBe(6);
  });

  it('skips bad rows and reports each with file:line and field at the end', () => {
    expect(runA.err).toContain(`${data}:3`);
    expect(runA.err).toContain(`${data}:7: field "messages[0].role"`);
    expect(runA.out).toMatch(/2 bad rows skipped/);
  });

  it('keeps the newest checkpoints, each resumable', () => {
    expect(fs.readdirSync(outA).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-3', 'checkpoint-6']);
    for (const f of ['trainer_state.json', 'optimizer.safetensors', 'model.safetensors', 'webtune_train_args.json', 'metrics.jsonl']) {
      expect(fs.existsSync(path.join(outA, 'checkpoint-3', f)), f).toBe(true);
    }
    expect(fs.readdirSync(outA).some((n) => n.includes('.partial'))).toBe(false);
  });

  it('--resume continues from the saved step with the same loss curve and the same final weights', async () => {
    const r = await capture(() => train(['--resume', path.join(outA, 'checkpoint-3'), '--out', outB]));
    expect(r.code).toBe(0);
    expect(r.out).toContain('resuming at step 3');
    const a = stepLines(outA), b = stepLines(outB);
    expect(b.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // CPU arithmetic is deterministic: the resumed run is bit for bit the uninterrupted one.
    expect(b.map((s) => s.loss)).toEqual(a.map((s) => s.loss));
    const wa = parseSafetensors(fs.readFileSync(path.join(outA, 'model.safetensors')), 'a').tensors;
    const wb = parseSafetensors(fs.readFileSync(path.join(outB, 'model.safetensors')), 'b').tensors;
    expect([...wb.keys()].sort()).toEqual([...wa.keys()].sort());
    for (const [k, t] of wa) expect(Array.from(wb.get(k)!.data as Float32Array), k).toEqual(Array.from(t.data as Float32Array));
  });

  it('--strict-data stops at the first bad row, naming file and line', async () => {
    await expect(capture(() => train(['--data', data, ...common, '--steps', '1', '--strict-data', '--out', path.join(tmp, 'strict')]))).rejects.toThrow(`${data}:3`);
  });
});

describe('webtune train --lora-r --lora-modules-to-save (cpu)', () => {
  it('trains the embedding in full beside the adapter and stores it under PEFT\'s key; the adapter loads back', async () => {
    const out = path.join(tmp, 'mts');
    const r = await capture(() => train(['--data', data, '--model', 'models/base', '--batch-size', '2', '--max-length', '40', '--backend', 'cpu', '--lr', '3e-3', '--seed', '7',
      '--steps', '2', '--lora-r', '2', '--lora-targets', 'c_attn', '--lora-modules-to-save', 'wte', '--out', out]));
    expect(r.code, r.err).toBe(0);
    // PEFT's count: L layers x (r·C + 3C·r) adapter on c_attn [C, 3C] + the V x C embedding; all = base + those.
    const { n_layer: L, n_embd: C, vocab_size: V } = JSON.parse(fs.readFileSync('models/base/config.json', 'utf8'));
    const baseParams = [...parseSafetensors(fs.readFileSync('models/base/model.safetensors'), 'base').tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const trainable = L * (2 * C + 3 * C * 2) + V * C;
    expect(r.out).toContain(`trainable params: ${trainable.toLocaleString('en-US')} || all params: ${(baseParams + trainable).toLocaleString('en-US')}`);
    expect(r.out).toContain('modules_to_save trained in full: transformer.wte');
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg.modules_to_save).toEqual(['wte']);
    expect(cfg.target_modules).toEqual(['c_attn']);
    const ad = parseSafetensors(fs.readFileSync(path.join(out, 'adapter_model.safetensors')), 'adapter').tensors;
    const layerKeys = Array.from({ length: L }, (_, i) => ['A', 'B'].map((m) => `base_model.model.transformer.h.${i}.attn.c_attn.lora_${m}.weight`)).flat();
    expect([...ad.keys()].sort()).toEqual([...layerKeys, 'base_model.model.transformer.wte.weight'].sort());
    const base = parseSafetensors(fs.readFileSync('models/base/model.safetensors'), 'base').tensors.get('transformer.wte.weight')!;
    const wte = ad.get('base_model.model.transformer.wte.weight')!;
    expect(wte.shape).toEqual([V, C]);
    // The rows of the chat markers (tokens the base never saw) moved; the base checkpoint did not.
    const tok = JSON.parse(fs.readFileSync(path.join(out, 'tokenizer.json'), 'utf8')) as { added_tokens: Array<{ id: number; content: string }> };
    const imStart = tok.added_tokens.find((t) => t.content === '<|im_start|>')!.id;
    const row = (d: ArrayLike<number>, i: number) => Array.from(d).slice(i * C, (i + 1) * C);
    expect(row(wte.data as Float32Array, imStart)).not.toEqual(row(base.data as Float32Array, imStart));
    expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(false);
    // Loaded on the base model, the stored embedding is the one the model reads.
    const m = await loadModel('models/base');
    const { loadAdapter } = await import('../../src/io/peft.js');
    await loadAdapter(m, out);
    expect(Array.from(await m.params.get('transformer.wte.weight')!.data())).toEqual(Array.from(wte.data as Float32Array));
    m.dispose();
  });
});

describe('webtune train flag validation', () => {
  const bad = async (argv: string[], message: RegExp) => {
    const err = await train([...argv]).then(() => undefined, (e: unknown) => e);
    expect(err, argv.join(' ')).toBeInstanceOf(CliError);
    expect((err as Error).message).toMatch(message);
  };

  it('refuses contradictory or incomplete flags with a clear message', async () => {
    await bad(['--data', data, '--preset', 'nano', '--steps', '5', '--epochs', '1', '--out', tmp], /--steps or --epochs, not both/);
    await bad(['--data', data, '--preset', 'nano', '--model', tmp, '--out', tmp], /--model or --preset, not both/);
    await bad(['--data', data, '--out', tmp], /give --model DIR .* or --preset NAME/);
    await bad(['--data', data, '--preset', 'nano'], /missing required flag --out/);
    await bad(['--preset', 'nano', '--out', tmp], /missing required flag --data/);
    await bad(['--data', data, '--preset', 'huge', '--out', tmp], /--preset must be one of nano, micro, small/);
    await bad(['--data', data, '--preset', 'nano', '--mask', 'some', '--out', tmp], /--mask must be one of assistant, last, unroll, completion, all/);
    await bad(['--data', data, '--preset', 'nano', '--family', 'qwen2', '--out', tmp], /--family must be gpt2 or llama, got 'qwen2'/);
    await bad(['--data', data, '--preset', 'nano', '--lora-alpha', '16', '--out', tmp], /--lora-alpha needs --lora-r/);
    await bad(['--data', data, '--preset', 'nano', '--lora-modules-to-save', 'wte', '--out', tmp], /--lora-modules-to-save needs --lora-r/);
    await bad(['--data', data, '--preset', 'nano', '--lora-r', '2', '--lora-modules-to-save', ' , ', '--out', tmp], /--lora-modules-to-save needs at least one module name/);
    await bad(['--data', data, '--preset', 'nano', '--lora-r', '2', '--lora-modules-to-save', 'embed_tokens', '--out', path.join(tmp, 'mts-bad')], /modules_to_save entry 'embed_tokens' matches no module; modules with parameters: .*wte/);
    await bad(['--data', data, '--preset', 'nano', '--eval-every', '10', '--out', tmp], /--eval-every needs --eval-data/);
    await bad(['--data', data, '--preset', 'nano', '--steps', '2.5', '--out', tmp], /--steps must be a positive integer/);
    await bad(['--data', data, '--preset', 'nano', '--batch-size', '0', '--out', tmp], /--batch-size must be a positive integer/);
    await bad(['--data', data, '--preset', 'nano', '--warmup', '2.5', '--out', tmp], /--warmup/);
    await bad(['--data', data, '--preset', 'nano', '--bogus', '--out', tmp], /unknown flag --bogus/);
    await bad(['--data', path.join(tmp, 'missing.jsonl'), '--preset', 'nano', '--out', tmp], /no such file/);
    await bad(['--resume', path.join(tmp, 'nowhere')], /no trainer_state\.json/);
  });

  it('parses FILE:weight mixtures', () => {
    expect(parseDataSpec(`${data}:2,${data}:0.5`)).toEqual([{ file: data, weight: 2 }, { file: data, weight: 0.5 }]);
    expect(parseDataSpec(data)).toEqual([{ file: data }]);
    expect(() => parseDataSpec(`${data}:2,${data}`)).toThrow(/every file of a mixture or to none/);
    expect(() => parseDataSpec(`${data}:0`)).toThrow(/positive number/);
  });
});
