/**
 * The `webtune` process as schedulers and scripts meet it: one spawned training run holds its
 * --out folder (a second run on it is refused while it lives), SIGTERM (timeout, docker stop)
 * saves a resumable checkpoint and exits 143 like Ctrl-C does with 130, and the exit codes: 2 for
 * a wrong command line (unknown command, bad flag value), 1 for a failure of the work.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as train } from '../../src/cli/train.js';
import { LOCK_FILE } from '../../src/cli/out_dir.js';
import { capture, spawnTrainUntilFirstStep } from '../helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-sigterm-'));
const data = path.join(tmp, 'data.jsonl');
fs.writeFileSync(data, fs.readFileSync('demo/data/train.jsonl', 'utf8').split('\n').slice(0, 6).join('\n') + '\n');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const common = ['--preset', 'nano', '--batch-size', '2', '--max-length', '32', '--backend', 'cpu', '--seed', '3'];
const webtune = (args: string[]) => [process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args]] as const;

describe('SIGTERM and a second run on the same folder', () => {
  it('refuses the second run while the first lives; SIGTERM saves a checkpoint, exits 143 and releases the folder', async () => {
    const out = path.join(tmp, 'run');
    const run = await spawnTrainUntilFirstStep(['--data', data, ...common, '--steps', '200', '--out', out]);
    const child = run.child;

    // A second run on the folder, while the first is training.
    const second = await capture(() => train(['--data', data, ...common, '--steps', '1', '--out', out])).then(() => undefined, (e: Error) => e);
    expect(second?.message).toContain(`--out ${out} is in use by another webtune train (pid ${child.pid} on ${os.hostname()}`);

    child.kill('SIGTERM');
    expect(await run.exited, run.stderr()).toBe(143);
    const ckpt = fs.readdirSync(out).find((n) => /^checkpoint-\d+$/.test(n));
    expect(ckpt, run.stdout()).toBeDefined();
    const step = Number(ckpt!.split('-')[1]);
    expect(run.stdout()).toContain(`interrupted (SIGTERM) at step ${step}/200: checkpoint saved to ${path.join(out, ckpt!)}`);
    expect(JSON.parse(fs.readFileSync(path.join(out, ckpt!, 'trainer_state.json'), 'utf8')).state.global_step).toBe(step);
    expect(fs.existsSync(path.join(out, LOCK_FILE))).toBe(false);
  });
});

describe('exit codes', () => {
  it('2 for a wrong command line, 1 for a failure of the work', () => {
    const code = (args: string[]) => {
      const [cmd, a] = webtune(args);
      const r = spawnSync(cmd, a, { encoding: 'utf8' });
      return { status: r.status, stderr: r.stderr };
    };
    const unknown = code(['bogus']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('webtune: unknown command \'bogus\'');
    const badValue = code(['train', '--data', data, '--preset', 'nano', '--lr', '0x10', '--out', tmp]);
    expect(badValue.status).toBe(2);
    expect(badValue.stderr).toContain('flag --lr must be a decimal number, got \'0x10\'');
    const missing = code(['train', '--data', path.join(tmp, 'missing.jsonl'), '--preset', 'nano', '--out', tmp]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no such file');
  });
});
