/**
 * The data-tool flags of `webtune inspect` and `webtune train`: each removes the rows it should
 * (a hand-made file where every row is there for one filter), and the run reports how many rows
 * each filter removed, with examples, before it trains. --curriculum orders examples by length.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as inspect } from '../../src/cli/inspect.js';
import { run as train } from '../../src/cli/train.js';
import { UsageError } from '../../src/cli/args.js';
import { capture } from '../helpers/capture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-data-tools-'));
const data = path.join(tmp, 'data.jsonl');
const chat = (user: string, assistant: string) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }] });
const LONG = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');

beforeAll(() => {
  fs.writeFileSync(data, [
    chat('What is 2 plus 2?', '4'),                     // line 1: kept by everything
    chat('What is 2 plus 2?', '4'),                     // line 2: exact duplicate of line 1
    chat('What is 2 plus 3?', '5'),                     // line 3: ROUGE-L 4/5 = 0.8 with line 1 (near duplicate)
    chat(`Repeat these words: ${LONG}`, 'ok'),          // line 4: 3 + 60 + 1 = 64 words, over --max-words 40
    chat('Tell me something.', 'Here is how to make a pipe bomb.'), // line 5: unsafe output
    chat('Reverse the word cat.', 'tac'),               // line 6: kept by everything
    chat('Hi', 'Yo'),                                   // line 7: 2 words, under --min-words 3
  ].join('\n') + '\n');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const inspectLimit0 = (...flags: string[]) => capture(() => inspect(['--data', data, '--limit', '0', ...flags]));

describe('webtune inspect: data-tool flags', () => {
  it.each([
    [['--exact-dedup'], 'exact_dedup', 1, /^ {2}exact_dedup: removed 1 row, e\.g\. .*data\.jsonl:2 exact duplicate of .*data\.jsonl:1$/m],
    // The exact duplicate is also a near duplicate (F = 1); line 3 is one at 0.8.
    [['--near-dedup'], 'near_dedup', 2, /near_dedup: removed 2 rows, e\.g\. .*data\.jsonl:2 ROUGE-L 1\.000 > 0\.7 with .*data\.jsonl:1; .*data\.jsonl:3 ROUGE-L 0\.800 > 0\.7/],
    [['--near-dedup', '--near-dedup-threshold', '0.9'], 'near_dedup', 1, /near_dedup: removed 1 row, e\.g\. .*data\.jsonl:2 ROUGE-L 1\.000 > 0\.9/],
    [['--max-words', '40'], 'length', 1, /length: removed 1 row, e\.g\. .*data\.jsonl:4 64 words > max 40/],
    [['--min-words', '3'], 'length', 1, /length: removed 1 row, e\.g\. .*data\.jsonl:7 2 words < min 3/],
    [['--max-chars', '40'], 'length', 2, /length: removed 2 rows, e\.g\. .*data\.jsonl:4 \d+ characters > max 40; .*data\.jsonl:5 50 characters > max 40/],
    [['--safety-filter'], 'safety', 1, /safety: removed 1 row, e\.g\. .*data\.jsonl:5 matched .*'make a pipe bomb'/],
  ])('%s', async (flags, filter, removed, line) => {
    const r = await inspectLimit0(...flags);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`filters: 7 rows in, ${7 - removed} kept`);
    expect(r.out).toMatch(line);
    // The examples shown are the rows kept: one "--- example" header per kept row.
    expect(r.out.match(/^--- example/gm)?.length).toBe(7 - removed);
    // The same counts in the JSON summary.
    const j = await inspectLimit0(...flags, '--json');
    const summary = JSON.parse(j.out.trim().split('\n').at(-1)!).summary;
    expect(summary.filters.byFilter).toEqual({ [filter]: removed });
  });

  it('all filters together: each row removed by the first filter that rejects it', async () => {
    const r = await inspectLimit0('--exact-dedup', '--near-dedup', '--min-words', '3', '--max-words', '40', '--safety-filter');
    expect(r.out).toContain('filters: 7 rows in, 2 kept');
    expect(r.out).toMatch(/exact_dedup: removed 1 row/);
    expect(r.out).toMatch(/near_dedup: removed 1 row, e\.g\. .*data\.jsonl:3/);
    expect(r.out).toMatch(/length: removed 2 rows, e\.g\. .*data\.jsonl:4 .*; .*data\.jsonl:7 /);
    expect(r.out).toMatch(/safety: removed 1 row/);
  });

  it('--curriculum length orders the examples shortest first', async () => {
    const lengths = async (...flags: string[]) => (await inspectLimit0('--json', ...flags)).out.trim().split('\n').slice(0, -1)
      .map((l) => JSON.parse(l) as { input_ids: number[]; meta: { line: number } });
    const plain = await lengths();
    const ordered = await lengths('--curriculum', 'length');
    expect(plain.map((e) => e.meta.line)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const n = ordered.map((e) => e.input_ids.length);
    expect(n).toEqual([...n].sort((a, b) => a - b));
    expect(ordered[0].meta.line).toBe(7);          // "Hi" / "Yo"
    expect(ordered.at(-1)!.meta.line).toBe(4);     // the 60-word row
  });

  it('bad values are usage errors naming the flag', async () => {
    await expect(inspect(['--data', data, '--near-dedup-threshold', '1.5'])).rejects.toThrow(/--near-dedup-threshold must be in \(0, 1\]/);
    await expect(inspect(['--data', data, '--curriculum', 'random'])).rejects.toThrow(UsageError);
    await expect(inspect(['--data', data, '--max-words', '-1'])).rejects.toThrow(/--max-words must be a whole number/);
  });
});

describe('webtune train: data-tool flags', () => {
  it('reports each filter\'s removals before training, and trains on the rows kept', async () => {
    const out = path.join(tmp, 'run');
    const r = await capture(() => train(['--data', data, '--preset', 'nano', '--backend', 'cpu', '--batch-size', '2', '--max-length', '64',
      '--steps', '2', '--seed', '3', '--exact-dedup', '--near-dedup', '--min-words', '3', '--max-words', '40', '--safety-filter', '--curriculum', 'length', '--out', out]));
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(lines[at(/^filters:/)]).toBe('filters: 7 rows in, 2 kept');
    for (const re of [/^ {2}exact_dedup: removed 1 row/, /^ {2}near_dedup: removed 1 row/, /^ {2}length: removed 2 rows/, /^ {2}safety: removed 1 row/]) {
      expect(at(re), String(re)).toBeGreaterThan(at(/^filters:/));
      expect(at(re), String(re)).toBeLessThan(at(/^training:/));
    }
    expect(r.out).toMatch(/^data: 2 rows -> 2 examples/m);
    // The flags are saved with the run, defaults filled in, for `webtune compare`.
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'webtune_run.json'), 'utf8'));
    expect(saved.flags).toMatchObject({ 'exact-dedup': true, 'near-dedup': true, 'near-dedup-threshold': 0.7, 'min-words': 3, curriculum: 'length', mask: 'assistant' });
    expect(saved.argv).toContain('--safety-filter');
  });
});
