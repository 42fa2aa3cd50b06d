/**
 * `webtune train` when things go wrong, in-process on the CPU backend with the nano preset: a
 * folder another run holds, what a killed run left behind, resuming from an older checkpoint, a
 * diverging run, weights holding NaN, a full disk (before the run and at the final save), a
 * corrupt saved-flags file, a changed mode on resume, bad flag values, and the cap on the list of
 * data problems. Each failure must say what happened and keep what was done.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { run as train, latestCheckpoint } from '../../src/cli/train.js';
import { CliError, UsageError } from '../../src/cli/args.js';
import { disk, LOCK_FILE } from '../../src/cli/out_dir.js';
import { nodeDirSink } from '../../src/io/files.js';
import { saveModel } from '../../src/io/checkpoint.js';
import { parseSafetensors } from '../../src/io/safetensors.js';
import { CausalLM } from '../../models/causal_lm.js';
import { capture } from '../helpers/cli.js';
import { presetConfig } from '../../models/config.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-faults-'));
const data = path.join(tmp, 'data.jsonl');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The error a command throws (console output swallowed). */
const failure = (argv: string[]) => capture(() => train(argv)).then(() => { throw new Error('expected the command to fail'); }, (e: unknown) => e as Error);

const common = ['--preset', 'nano', '--batch-size', '2', '--max-length', '32', '--backend', 'cpu', '--seed', '7'];
const lines = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
const metricTypes = (dir: string) => lines(path.join(dir, 'metrics.jsonl')).map((l) => JSON.parse(l) as { type: string; step: number });

beforeAll(() => {
  fs.writeFileSync(data, fs.readFileSync('demo/data/train.jsonl', 'utf8').split('\n').slice(0, 6).join('\n') + '\n');
});

describe('two runs on one --out', () => {
  it('a folder a live run holds is refused, naming the run, and nothing in it is touched', async () => {
    const out = path.join(tmp, 'held');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'metrics.jsonl'), 'the first run\'s metrics\n');
    fs.writeFileSync(path.join(out, LOCK_FILE), JSON.stringify({ pid: process.pid, host: os.hostname(), started: '2026-01-01T00:00:00Z' }));
    const e = await failure(['--data', data, ...common, '--steps', '1', '--out', out]);
    expect(e).toBeInstanceOf(CliError);
    expect(e.message).toContain(`--out ${out} is in use by another webtune train (pid ${process.pid} on ${os.hostname()}, started 2026-01-01T00:00:00Z)`);
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')).toBe('the first run\'s metrics\n');
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(true); // still the other run's
  });

  it('a lock left by a killed run is taken over, half-written leftovers go, the lock is released; data problems are capped', async () => {
    const out = path.join(tmp, 'stale');
    fs.mkdirSync(path.join(out, '.checkpoint-3.partial-4242'), { recursive: true });
    fs.writeFileSync(path.join(out, '.checkpoint-3.partial-4242', 'model.safetensors'), 'half');
    fs.writeFileSync(path.join(out, 'model.safetensors.partial-kz81x0a'), 'half');
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // a process that has exited
    fs.writeFileSync(path.join(out, LOCK_FILE), JSON.stringify({ pid: dead, host: os.hostname(), started: 'then' }));
    // 25 bad rows (more than the 20 shown) and one row with special-token text in a message.
    const noisy = path.join(tmp, 'noisy.jsonl');
    const forged = JSON.stringify({ messages: [{ role: 'user', content: 'end it <|im_end|>' }, { role: 'assistant', content: 'no' }] });
    fs.writeFileSync(noisy, [fs.readFileSync(data, 'utf8').trim(), forged, ...Array.from({ length: 25 }, (_, i) => `{"text": ${i}}`)].join('\n') + '\n');

    const r = await capture(() => train(['--data', noisy, ...common, '--steps', '1', '--out', out]));
    expect(r.code).toBe(0);
    expect(r.out).toContain(`note: ${out} was locked by a run that is gone (pid ${dead}, started then); taking it over`);
    expect(r.out).toContain('removed what an interrupted run left half-written');
    expect(fs.readdirSync(out).filter((n) => n.includes('.partial') || n === LOCK_FILE)).toEqual([]);
    // Problems: 20 on the terminal, all 25 in data_problems.txt.
    expect(r.err).toContain(`25 data problems (rows left out), listed in ${path.join(out, 'data_problems.txt')}`);
    expect(r.err.split('\n').filter((l) => l.startsWith(`  ${noisy}:`))).toHaveLength(20);
    expect(r.err).toContain('... and 5 more');
    expect(lines(path.join(out, 'data_problems.txt'))).toHaveLength(25);
    expect(lines(path.join(out, 'data_problems.txt'))[24]).toBe(`${noisy}:32: field "text": expected a string, got number`);
    // Special-token text typed in a message is trained as the special token only with a warning.
    expect(r.err).toContain(`warning: 1 row holds special-token text inside a message (<|im_end|>; ${noisy}:7)`);
  });
});

describe('resuming from an older checkpoint in the same folder', () => {
  const out = path.join(tmp, 'branch');
  beforeAll(async () => {
    const r = await capture(() => train(['--data', data, ...common, '--steps', '4', '--save-every', '1', '--save-total-limit', '4', '--keep-checkpoints', '--out', out]));
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-1', 'checkpoint-2', 'checkpoint-3', 'checkpoint-4']);
  });

  it('never rotates away the checkpoint just written; --resume OUT continues the newest run', async () => {
    const r = await capture(() => train(['--resume', path.join(out, 'checkpoint-1'), '--steps', '2', '--save-total-limit', '2']));
    expect(r.code).toBe(0);
    expect(r.out).toContain(`note: checkpoint-2, checkpoint-3, checkpoint-4 in ${out} continue the earlier run past step 1`);
    // The new checkpoint-2 (this run's final one) and the newest-written abandoned one are kept.
    expect(fs.readdirSync(out).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-2', 'checkpoint-4']);
    const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint-2', 'trainer_state.json'), 'utf8'));
    expect(state.state.log_history.map((h: { step: number }) => h.step)).toEqual([1, 2]);
    expect(await latestCheckpoint(out)).toBe(path.join(out, 'checkpoint-2'));
    const again = await capture(() => train(['--resume', out]));
    expect(again.code).toBe(0);
    expect(again.out).toContain('the checkpoint is at the run\'s last step 2: writing its model');
  });

  it('refuses to change the run\'s mode on resume, naming the flag', async () => {
    const e = await failure(['--resume', path.join(out, 'checkpoint-2'), '--lora-r', '2']);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toContain('--lora-r: this run\'s mode cannot change on resume');
    expect(e.message).toContain('trained every weight without --lora-r');
  });

  it('names the corrupt saved-flags file', async () => {
    const bad = path.join(tmp, 'corrupt-ckpt');
    fs.cpSync(path.join(out, 'checkpoint-2'), bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'webtune_train_args.json'), '{"argv": ["--steps", "2');
    const e = await failure(['--resume', bad]);
    expect(e.message).toMatch(new RegExp(`^train: --resume: ${path.join(bad, 'webtune_train_args.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON`));
  });
});

describe('a diverging run', () => {
  it('stops after --max-consecutive-skips non-finite steps with an error saying what diverged; nothing is written over the model', async () => {
    const out = path.join(tmp, 'diverge');
    const e = await failure(['--data', data, ...common, '--lr', '1e30', '--max-grad-norm', '0', '--steps', '20', '--max-consecutive-skips', '2', '--out', out]);
    expect(e).toBeInstanceOf(CliError);
    expect(e.message).toMatch(/^train: the run diverged: steps 2-3 were all skipped \(non-finite (loss|gradient norm)/);
    expect(e.message).toContain('the last applied step was 1');
    expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(false);
    expect(metricTypes(out).map((m) => `${m.type}${m.step}`)).toEqual(['step1', 'skip2', 'skip3']);
  });

  it('fails a run whose last steps were skipped (fewer than the limit)', async () => {
    const out = path.join(tmp, 'diverge-end');
    const e = await failure(['--data', data, ...common, '--lr', '1e30', '--max-grad-norm', '0', '--steps', '2', '--out', out]);
    expect(e.message).toMatch(/^train: the run diverged: step 2 was skipped \(non-finite/);
    expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(false);
  });

  it('checks the weights are finite before writing them', async () => {
    const out = path.join(tmp, 'inf-weights');
    // A learning rate beyond float32's range: step 1 is applied (finite loss and norm) and leaves Inf / NaN weights.
    const e = await failure(['--data', data, ...common, '--lr', '1e39', '--steps', '1', '--out', out]);
    expect(e.message).toMatch(/^train: after step 1 weight '[\w.]+' holds NaN or Infinity: the model was not written/);
    expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(false);
    expect(metricTypes(out).map((m) => `${m.type}${m.step}`)).toEqual(['step1']);
  });

  it('refuses to start from weights that hold a NaN', async () => {
    const dir = path.join(tmp, 'nan-model');
    const model = CausalLM.create(presetConfig('nano', { vocabSize: 1024 }), { seed: 1 });
    const [name, v] = [...model.params][3];
    tf.tidy(() => v.assign(tf.fill(v.shape, NaN)));
    await saveModel(model, dir);
    model.dispose();
    const e = await failure(['--data', data, '--model', dir, '--batch-size', '2', '--max-length', '32', '--backend', 'cpu', '--steps', '1', '--out', path.join(tmp, 'from-nan')]);
    expect(e.message).toBe(`train: ${dir}: weight '${name}' holds NaN or Infinity; training cannot start from it (every step would be skipped)`);
  });
});

describe('a full disk', () => {
  const { freeBytes, sink } = disk;
  afterEach(() => Object.assign(disk, { freeBytes, sink }));

  it('is refused before the first step when the outputs cannot fit', async () => {
    disk.freeBytes = () => 100_000;
    const out = path.join(tmp, 'small-disk');
    const e = await failure(['--data', data, ...common, '--steps', '2', '--save-every', '1', '--out', out]);
    // nano: 182,016 F32 parameters = 0.73 MB, and two checkpoints of model + two moments.
    expect(e.message).toMatch(/^train: --out .*: 0\.10 MB free on its disk, but the run writes about \d\.\d\d MB \(model 0\.7\d MB \+ 2 checkpoints of 2\.\d\d MB\)/);
    expect(fs.existsSync(path.join(out, 'metrics.jsonl'))).toBe(false);
  });

  it('at the final save keeps metrics and the trained weights (as a resumable checkpoint elsewhere) and says where', async () => {
    const out = path.join(tmp, 'enospc');
    disk.sink = (dir: string) => {
      const real = nodeDirSink(dir);
      return {
        write: async (file: string, bytes: Uint8Array | string) => {
          if (file === 'model.safetensors') throw Object.assign(new Error(`${path.join(dir, file)}: cannot write (ENOSPC: no space left on device, write)`), { code: 'ENOSPC' });
          return real.write(file, bytes);
        },
      };
    };
    const e = await failure(['--data', data, ...common, '--steps', '2', '--out', out]);
    expect(e.message).toContain('train: the final model could not be written: ');
    expect(e.message).toContain('ENOSPC: no space left on device');
    expect(e.message).toContain(`Kept: ${out}/metrics.jsonl (every step)`);
    const rescued = /as a resumable checkpoint in (\S+):/.exec(e.message)?.[1];
    expect(rescued, e.message).toBeDefined();
    expect(metricTypes(out).map((m) => m.step)).toEqual([1, 2]);
    expect(fs.existsSync(path.join(out, 'model.safetensors'))).toBe(false);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);

    // Space is back: resuming the rescued checkpoint writes the model it holds.
    Object.assign(disk, { freeBytes, sink });
    const r = await capture(() => train(['--resume', rescued!, '--out', out]));
    expect(r.code).toBe(0);
    const a = parseSafetensors(fs.readFileSync(path.join(rescued!, 'model.safetensors')), 'rescued').tensors;
    const b = parseSafetensors(fs.readFileSync(path.join(out, 'model.safetensors')), 'out').tensors;
    for (const [k, t] of a) expect(Array.from(b.get(k)!.data as Float32Array), k).toEqual(Array.from(t.data as Float32Array));
    fs.rmSync(path.dirname(rescued!), { recursive: true, force: true });
  });
});

describe('flag values and data paths', () => {
  it('takes decimal numbers only, and names a directory given as --data', async () => {
    for (const [value, shown] of [['0x10', '0x10'], ['', ''], ['0b11', '0b11'], [' ', ' ']]) {
      const e = await failure(['--data', data, ...common, '--lr', value, '--out', path.join(tmp, 'x')]);
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toBe(`train: flag --lr must be a decimal number, got '${shown}'.`);
    }
    const e = await failure(['--data', tmp, ...common, '--out', path.join(tmp, 'x')]);
    expect(e.message).toBe(`train: --data: '${tmp}' is a directory; give the data file (.jsonl or .json) inside it`);
  });
});
