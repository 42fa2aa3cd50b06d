/**
 * `webtune compare`: two real `webtune train` runs (cpu, nano, 3 steps) that differ in --mask,
 * plus one written before runs saved webtune_run.json (flags from its checkpoint). The table's
 * rows, the differing settings and the results are checked against the run directories' own
 * files (metrics.jsonl, eval.json).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as train } from '../../src/cli/train.js';
import { run as compare } from '../../src/cli/compare.js';
import { UsageError, CliError } from '../../src/cli/args.js';
import { capture } from '../helpers/capture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-compare-'));
const data = path.join(tmp, 'train.jsonl');
const evalData = path.join(tmp, 'valid.jsonl');
const [a, b, legacy] = ['a', 'b', 'legacy'].map((n) => path.join(tmp, n));
const common = ['--data', data, '--eval-data', evalData, '--preset', 'nano', '--backend', 'cpu', '--batch-size', '2', '--max-length', '48', '--steps', '3', '--seed', '5'];

const lastOf = (dir: string, type: 'step' | 'eval', key: string): number => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l)).filter((m) => m.type === type).at(-1)[key];

beforeAll(async () => {
  fs.writeFileSync(data, fs.readFileSync('demo/data/train.jsonl', 'utf8').split('\n').slice(0, 8).join('\n') + '\n');
  fs.writeFileSync(evalData, fs.readFileSync('demo/data/valid.jsonl', 'utf8').split('\n').slice(0, 4).join('\n') + '\n');
  for (const [out, extra] of [[a, ['--keep-checkpoints']], [b, ['--mask', 'all']]] as const) {
    const r = await capture(() => train([...common, ...extra, '--out', out]));
    expect(r.code, r.err).toBe(0);
  }
  // A run from before webtune_run.json: only its checkpoint's argv says what it was.
  fs.cpSync(a, legacy, { recursive: true });
  fs.rmSync(path.join(legacy, 'webtune_run.json'));
  // `webtune eval --json > b/eval.json`: 3 of 8 right.
  fs.writeFileSync(path.join(b, 'eval.json'), JSON.stringify({ overall: 0.375, byFamily: {}, n: 8, correct: 3 }));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('webtune compare', () => {
  it('--json: one row per run, the differing setting named, results from each run\'s files', async () => {
    const r = await capture(() => compare([a, b, '--json']));
    expect(r.code).toBe(0);
    const { table, runs } = JSON.parse(r.out);
    expect(table.differing).toEqual(['mask']);
    expect(table.columns).toEqual(['name', 'mask', 'last_step', 'final_loss', 'eval_loss', 'accuracy_before', 'accuracy_after']);
    expect(table.rows.map((row: { cells: Record<string, unknown> }) => row.cells)).toEqual([
      { name: 'a', mask: 'assistant', last_step: 3, final_loss: lastOf(a, 'step', 'loss'), eval_loss: lastOf(a, 'eval', 'eval_loss'), accuracy_before: null, accuracy_after: null },
      { name: 'b', mask: 'all', last_step: 3, final_loss: lastOf(b, 'step', 'loss'), eval_loss: lastOf(b, 'eval', 'eval_loss'), accuracy_before: null, accuracy_after: 0.375 },
    ]);
    expect(runs[0].curves.step).toEqual([1, 2, 3]);
    expect(runs[0].seed).toBe(5);
    expect(runs[0].settings).toMatchObject({ lr: 0.001, 'batch-size': 2, preset: 'nano', mask: 'assistant' });
  });

  it('text: the differing settings marked, every setting with --all-settings', async () => {
    const r = await capture(() => compare([a, b]));
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^name +mask\* +last_step +final_loss +eval_loss +accuracy_before +accuracy_after$/);
    expect(lines[2]).toMatch(new RegExp(`^a +assistant +3 +${lastOf(a, 'step', 'loss').toFixed(4)} +${lastOf(a, 'eval', 'eval_loss').toFixed(4)}$`));
    expect(lines[3]).toMatch(/^b +all +3 .* 0\.3750$/);
    expect(r.out).toContain('* differs between runs: mask');
    const all = await capture(() => compare([a, b, '--all-settings']));
    expect(all.out.split('\n')[0]).toMatch(/^name +data +eval-data +preset .* steps .* mask\* .* lr .* last_step /);
  });

  it('a run without webtune_run.json: flags from its checkpoint, defaults filled in', async () => {
    const { table } = JSON.parse((await capture(() => compare([a, legacy, '--json']))).out);
    // Same flags as a: nothing differs, the results are a's.
    expect(table.differing).toEqual([]);
    expect(table.rows[1].cells).toMatchObject({ name: 'legacy', final_loss: lastOf(a, 'step', 'loss') });
  });

  it('refuses a missing directory and a call without directories', async () => {
    await expect(compare([path.join(tmp, 'nope')])).rejects.toThrow(CliError);
    await expect(compare(['--json'])).rejects.toThrow(UsageError);
    await expect(compare([tmp])).rejects.toThrow(/not a 'webtune train' run directory/);
  });
});
