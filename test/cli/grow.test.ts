/**
 * `webtune grow` in-process on the CPU with the bundled base model: rows written with their
 * provenance and readable by the dataset reader, dropped candidates with their reasons, the
 * --json counts, and flag and seed-file errors that name the flag, file, line and field.
 */
import { describe, it, expect, afterAll, vi } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as grow } from '../../src/cli/grow.js';
import { loadDataset } from '../../src/data/dataset.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-grow-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err.push(String(s)); return true; });
  try {
    return { code: await fn(), out: out.join('\n'), err: err.join('') };
  } finally {
    log.mockRestore(); error.mockRestore(); write.mockRestore();
  }
}

const seeds = path.join(tmp, 'seeds.jsonl');
fs.writeFileSync(seeds, fs.readFileSync('demo/data/train.jsonl', 'utf8').split('\n').slice(18, 30).join('\n') + '\n');

describe('webtune grow (cpu, models/base)', () => {
  it('writes kept rows with provenance, dropped candidates with reasons, and the counts', async () => {
    const out = path.join(tmp, 'grown.jsonl');
    const dropped = path.join(tmp, 'dropped.jsonl');
    const r = await capture(() => grow(['--model', 'models/base', '--seed-tasks', seeds, '--method', 'self-instruct', '--n', '1', '--out', out,
      '--backend', 'cpu', '--prompt-format', 'completion', '--max-new-tokens', '40', '--answer-max-new-tokens', '12', '--max-prompts', '18',
      '--dropped', dropped, '--json']));
    expect(r.code).toBe(0);
    const counts = JSON.parse(r.out);
    expect(Object.keys(counts)).toEqual(['kept', 'candidates', 'acceptanceRate', 'malformed', 'prompts', 'answers', 'dropped', 'out']);
    expect(counts.kept).toBe(1);   // measured: the 16th candidate of seed 0 passes every filter
    expect(counts.acceptanceRate).toBeCloseTo(counts.kept / counts.candidates, 12);
    // Plain progress lines on stderr, ending at the kept count.
    expect(r.err).toMatch(/kept 1\/1 \d+ candidates, \d+% accepted, \d+ malformed elapsed/);
    const { examples, errors } = await loadDataset(out);
    expect(errors).toEqual([]);
    expect(examples).toHaveLength(1);
    expect(examples[0].meta).toMatchObject({ source: 'self-instruct', model: 'base', prompt_format: 'completion' });
    expect(examples[0].meta.parents).toHaveLength(8);
    expect(String(examples[0].meta.generation_prompt)).toMatch(/^Come up with a series of tasks:\n1\. /);
    const drops = fs.readFileSync(dropped, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(drops).toHaveLength(counts.candidates - counts.kept);
    for (const d of drops) {
      expect(d.kept).toBe(false);
      expect(d.reason).toMatch(/\S/);
      expect(counts.dropped[d.verdict]).toBeGreaterThan(0);
    }
    expect(drops.filter((d) => d.verdict === 'parse')).toHaveLength(counts.malformed);
  }, 300_000);

  it('refuses bad flags and bad seed rows, naming what is wrong', async () => {
    const base = ['--model', 'models/base', '--seed-tasks', seeds, '--n', '1', '--out', path.join(tmp, 'x.jsonl')];
    await expect(grow([...base, '--method', 'alpaca'])).rejects.toThrow("grow: --method must be self-instruct or evol-instruct, got 'alpaca'");
    await expect(grow([...base, '--method', 'evol-instruct', '--operations', 'deepen,widen'])).rejects.toThrow(/--operations: unknown operation 'widen'/);
    await expect(grow([...base, '--method', 'self-instruct', '--top-p', '0'])).rejects.toThrow(/--top-p must be in \(0, 1\], got 0/);
    const bad = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(bad, '{"instruction": "Say hi.", "instances": [{"input": "", "output": "hi"}]}\n{"messages": [{"role": "robot", "content": "x"}]}\n');
    await expect(grow(['--model', 'models/base', '--seed-tasks', bad, '--n', '1', '--out', path.join(tmp, 'x.jsonl'), '--method', 'self-instruct']))
      .rejects.toThrow(`grow: ${bad}:2: field "messages[0].role": unknown role "robot"`);
  });
});
