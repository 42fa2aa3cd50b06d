/**
 * `webtune eval` (--json shape, --adapter), LoRA output of `webtune train`, and Ctrl-C: one
 * spawned training process gets SIGINT after its first metrics line, saves a resumable
 * checkpoint and exits 130; the checkpoint then resumes in-process.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as train } from '../../src/cli/train.js';
import { run as evalCli } from '../../src/cli/eval.js';
import { CliError } from '../../src/cli/args.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { capture, spawnTrainUntilFirstStep } from '../helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-eval-'));
const data = path.join(tmp, 'data.jsonl');
const testRows = path.join(tmp, 'test.jsonl');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const common = ['--preset', 'nano', '--batch-size', '2', '--max-length', '40', '--backend', 'cpu', '--seed', '3'];

beforeAll(() => {
  fs.writeFileSync(data, fs.readFileSync('demo/data/train.jsonl', 'utf8').split('\n').slice(0, 10).join('\n') + '\n');
  fs.writeFileSync(testRows, fs.readFileSync('demo/data/test.jsonl', 'utf8').split('\n').slice(0, 4).join('\n') + '\n');
});

describe('webtune train --lora-r and webtune eval', () => {
  const base = path.join(tmp, 'base');
  const adapter = path.join(tmp, 'adapter');

  beforeAll(async () => {
    expect((await capture(() => train(['--data', data, ...common, '--steps', '1', '--out', base]))).code).toBe(0);
    const r = await capture(() => train(['--data', data, '--model', base, '--lora-r', '4', '--lora-alpha', '8', '--lora-targets', 'c_attn,c_proj',
      '--batch-size', '2', '--max-length', '40', '--backend', 'cpu', '--lr', '1e-2', '--steps', '2', '--out', adapter]));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/trainable params: [\d,]+ \|\| all params/);
  });

  it('writes a PEFT adapter directory (and the tokenizer), not the base weights', () => {
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'metrics.jsonl', 'loss.svg']) {
      expect(fs.existsSync(path.join(adapter, f)), f).toBe(true);
    }
    expect(fs.existsSync(path.join(adapter, 'model.safetensors'))).toBe(false);
    const cfg = JSON.parse(fs.readFileSync(path.join(adapter, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, base_model_name_or_path: base });
    const { tensors } = parseSafetensors(fs.readFileSync(path.join(adapter, 'adapter_model.safetensors')), 'adapter');
    // nano: 2 layers x (c_attn, attn.c_proj, mlp.c_proj) x (A, B); names as PEFT writes them.
    expect(tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')?.shape).toEqual([4, 64]);
    expect(tensors.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')?.shape).toEqual([192, 4]);
    expect(tensors.size).toBe(2 * 3 * 2);
    // B starts at 0 and two steps of lr 1e-2 moved it.
    const B = tensors.get('base_model.model.transformer.h.1.attn.c_attn.lora_B.weight')!.data as Float32Array;
    expect(B.some((x) => x !== 0)).toBe(true);
  });

  it('eval --json prints overall, byFamily and n first, consistent with each other', async () => {
    const r = await capture(() => evalCli(['--model', base, '--data', testRows, '--json', '--backend', 'cpu', '--max-new-tokens', '3']));
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out.trim().split('\n').pop()!);
    expect(Object.keys(j).slice(0, 3)).toEqual(['overall', 'byFamily', 'n']);
    expect(j.n).toBe(4);
    const families = fs.readFileSync(testRows, 'utf8').trim().split('\n').map((l) => JSON.parse(l).family as string);
    expect(Object.keys(j.byFamily).sort()).toEqual([...new Set(families)].sort());
    // overall is the row-weighted mean of the per-family accuracies.
    const weighted = Object.entries(j.byFamily as Record<string, number>).reduce((s, [f, acc]) => s + acc * families.filter((x) => x === f).length, 0) / 4;
    expect(j.overall).toBeCloseTo(weighted, 12);
    expect(j.overall).toBeGreaterThanOrEqual(0);
    expect(j.overall).toBeLessThanOrEqual(1);
  });

  it('eval --adapter applies the adapter; --limit and the table', async () => {
    const r = await capture(() => evalCli(['--model', base, '--adapter', adapter, '--data', testRows, '--limit', '2', '--backend', 'cpu', '--max-new-tokens', '2']));
    expect(r.code).toBe(0);
    expect(r.out).toContain(`+ adapter ${adapter}`);
    expect(r.out).toMatch(/^overall\s+2\s/m);
  });

  it('eval refuses bad flags clearly', async () => {
    const err = (argv: string[]) => evalCli(argv).then(() => undefined, (e: unknown) => e as Error);
    const e1 = await err(['--model', tmp, '--data', testRows]);
    expect(e1).toBeInstanceOf(CliError);
    expect(e1!.message).toMatch(/no config\.json/);
    expect((await err(['--model', base, '--data', path.join(tmp, 'nope.jsonl')]))!.message).toMatch(/no such file/);
    expect((await err(['--model', base, '--data', testRows, '--limit', '0']))!.message).toMatch(/--limit must be a positive integer/);
    expect((await err(['--model', base, '--adapter', base, '--data', testRows]))!.message).toMatch(/no adapter_config\.json/);
    expect((await err(['--data', testRows]))!.message).toMatch(/missing required flag --model/);
  });
});

describe('Ctrl-C during webtune train', () => {
  it('saves a resumable checkpoint, exits 130, and the checkpoint resumes', async () => {
    const out = path.join(tmp, 'sigint');
    const run = await spawnTrainUntilFirstStep(['--data', data, ...common, '--steps', '200', '--out', out]);
    run.child.kill('SIGINT');
    const code = await run.exited;
    expect(code, run.stderr()).toBe(130);
    const ckpt = fs.readdirSync(out).find((n) => /^checkpoint-\d+$/.test(n));
    expect(ckpt, run.stdout()).toBeDefined();
    const step = Number(ckpt!.split('-')[1]);
    expect(step).toBeGreaterThanOrEqual(1);
    expect(step).toBeLessThan(200);
    expect(run.stdout()).toContain(`continue with: webtune train --resume ${path.join(out, ckpt!)}`);
    const state = JSON.parse(fs.readFileSync(path.join(out, ckpt!, 'trainer_state.json'), 'utf8'));
    expect(state.state.global_step).toBe(step);

    // Resume it for one more step (a shorter run than the saved 200 steps, to keep the test quick).
    const r = await capture(() => train(['--resume', path.join(out, ckpt!), '--steps', String(step + 1)]));
    expect(r.code).toBe(0);
    const steps = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.type === 'step');
    expect(steps.map((m: { step: number }) => m.step)).toEqual(Array.from({ length: step + 1 }, (_, i) => i + 1));
  });
});
