/**
 * `webtune eval --batch-size N`: batched decoding gives the same JSON and the same answers as
 * one row at a time (--batch-size 1), on the bundled base model and test split (CPU backend).
 */
import { describe, it, expect } from 'vitest';
import { run as evalCli } from '../../src/cli/eval.js';
import { capture } from '../helpers/cli.js';

const common = ['--model', 'models/base', '--data', 'demo/data/test.jsonl', '--limit', '40', '--backend', 'cpu', '--max-new-tokens', '24'];

/** The --json object without its wall time. */
async function json(batchSize: number): Promise<Record<string, unknown>> {
  const r = await capture(() => evalCli([...common, '--json', '--batch-size', String(batchSize)]));
  expect(r.code).toBe(0);
  const { seconds, ...rest } = JSON.parse(r.out.trim().split('\n').pop()!);
  expect(seconds).toBeGreaterThan(0);
  return rest;
}

/** The "expected ... got ..." lines of --show-errors (every wrong answer, in row order). */
async function wrongAnswers(batchSize: number): Promise<string[]> {
  const r = await capture(() => evalCli([...common, '--show-errors', '40', '--batch-size', String(batchSize)]));
  expect(r.code).toBe(0);
  return r.out.split('\n').filter((l) => / expected .* got /.test(l));
}

describe('webtune eval --batch-size', () => {
  it('--batch-size 8 prints the same JSON as --batch-size 1', async () => {
    const one = await json(1);
    expect(one.n).toBe(40);
    expect(await json(8)).toEqual(one);
  }, 180_000);

  it('--batch-size 8 gives the same answers as --batch-size 1, row by row', async () => {
    const one = await wrongAnswers(1);
    // The base model (not fine-tuned) answers almost none of them right: most rows' answers are listed.
    expect(one.length).toBeGreaterThan(30);
    expect(new Set(one.map((l) => l.split(' got ')[1])).size).toBeGreaterThan(5);
    expect(await wrongAnswers(8)).toEqual(one);
  }, 180_000);

  it('refuses a batch size that is not a positive integer', async () => {
    await expect(evalCli([...common, '--batch-size', '0'])).rejects.toThrow(/--batch-size must be a positive integer, got 0/);
    await expect(evalCli([...common, '--batch-size', '2.5'])).rejects.toThrow(/--batch-size must be a positive integer/);
  });
});
