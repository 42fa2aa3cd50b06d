/**
 * The experiments lab end to end in headless Chromium (WebGPU on SwiftShader), with tiny
 * settings: a two-arm experiment (NEFTune off vs on, one seed, 2 steps, 2 held-out prompts)
 * -> two rows in #runs-table with the differing setting highlighted -> two runs drawn on the
 * loss chart -> blind votes (run X vs run Y, before vs after) -> the win-rate table with its
 * Wilson interval -> CSV and JSON export -> an upload's validation split and test-split overlap,
 * the data tools' report -> reload: runs and votes still there. Also the template builder's
 * add_generation_prompt, and no request of the page answered 404 (favicon).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import type { Page } from 'playwright-core';
import { openDemo, screenshot, setTraining, slow, type Demo } from '../helpers/browser.js';

const ROWS = '#runs-table tbody tr[data-run-id]';

describe('experiments lab (headless Chromium, WebGPU)', () => {
  let demo: Demo;
  let page: Page;
  let errors: string[];
  const missing: string[] = [];

  beforeAll(async () => {
    demo = await openDemo();
    ({ page, errors } = demo);
    page.on('response', (r) => { if (r.status() === 404) missing.push(r.url()); });
    await demo.open();
  }, slow(300_000));

  afterAll(async () => { await demo?.close(); });

  it('the template builder shows the generation prompt on request', async () => {
    const out = page.locator('#tpl-output');
    await expect.poll(() => out.textContent(), { timeout: slow(20_000) }).toContain('<|im_start|>assistant\n24<|im_end|>');
    expect(await out.locator('.generation-prompt').count()).toBe(0);
    await page.check('#tpl-gen-prompt');
    await expect.poll(() => out.locator('.generation-prompt').allTextContents(), { timeout: slow(20_000) }).toEqual(['<|im_start|>', 'assistant\n']);
    expect(await out.textContent()).toMatch(/24<\|im_end\|>\n<\|im_start\|>assistant\n$/);
    await page.uncheck('#tpl-gen-prompt');
  }, slow(60_000));

  it('runs a two-arm experiment: two rows, the differing setting highlighted, two runs on the loss chart', async () => {
    await setTraining(page, { model: 'nano', batch: 4, maxlen: 48, warmup: 0 });
    await page.selectOption('#exp-pick', 'neftune');
    await page.fill('#exp-seeds', '1');
    await page.fill('#exp-steps', '2');
    await page.fill('#exp-prompts', '2');
    await page.fill('#exp-max-new', '6');
    await page.click('#exp-run');
    await page.waitForSelector('#exp-status[data-state="done"]', { timeout: slow(300_000) });

    expect(await page.locator(ROWS).count()).toBe(2);
    // NEFTune on/off is the setting that differs (the seed is the same: one seed per arm).
    const neft = await page.locator(`${ROWS} td.differs[data-col="neftune.enabled"]`).allTextContents();
    expect(neft).toEqual(['false', 'true']);
    expect(await page.locator('#runs-table thead th.differs').allTextContents()).toEqual(['neftune.enabled']);
    for (const cell of await page.locator(`${ROWS} td[data-col="eval_loss"]`).allTextContents()) expect(Number(cell)).toBeGreaterThan(0);
    expect(await page.locator(`${ROWS} td[data-col="last_step"]`).allTextContents()).toEqual(['2', '2']);
    // One seed per arm: no spread between seeds to judge the difference by.
    expect(await page.getAttribute('#exp-result', 'data-verdict')).toBe('no-spread');
    expect(await page.textContent('#exp-verdict')).toContain('one seed per arm');
    // Both runs drawn on the loss chart: a train series and an eval series each, named after the run.
    const chart = page.locator('#chart-loss');
    expect(await chart.getAttribute('data-run-series')).toBe('2');
    const legend = await chart.locator('.u-legend .u-series .u-label').allTextContents();
    expect(legend).toEqual(['step', 'neftune: off · seed 42', 'neftune: off · seed 42 (eval)', 'neftune: on (alpha 5) · seed 42', 'neftune: on (alpha 5) · seed 42 (eval)']);
    await screenshot(page, 'lab-01-experiment');
    for (const panel of ['runs', 'experiments', 'charts']) await page.locator(`#panel-${panel}`).screenshot({ path: `test-artifacts/lab-01-${panel}.png` });
  }, slow(360_000));

  it('blind votes: the order is revealed after each vote; the win-rate table has Wilson intervals', async () => {
    // Run X vs run Y on the same held-out prompt.
    await page.selectOption('#vote-mode', 'runs');
    await page.click('#vote-next');
    const [a1, a2] = [await page.textContent('#vote-answer-1'), await page.textContent('#vote-answer-2')];
    expect(a1).toMatch(/\S/);
    expect(a2).toMatch(/\S/);
    expect(await page.textContent('#vote-reveal')).toBe('');
    await page.click('#vote-1');
    const reveal = (await page.textContent('#vote-reveal'))!;
    expect(reveal).toMatch(/^Answer 1 was neftune: (off|on \(alpha 5\)) · seed 42; answer 2 was neftune: (off|on \(alpha 5\)) · seed 42\.$/);
    // X is the first run (NEFTune off): it won if it was shown as answer 1.
    const xWon = reveal.startsWith('Answer 1 was neftune: off');
    await page.click('#vote-next');
    await page.click('#vote-tie');
    // Before vs after of the first run.
    await page.selectOption('#vote-mode', 'before-after');
    await page.click('#vote-next');
    await page.click('#vote-2');

    const rows = page.locator('#winrate-table tbody tr');
    expect(await rows.count()).toBe(2);
    const cells = (i: number) => rows.nth(i).locator('td').allTextContents();
    const runs = await cells(0);
    expect(runs.slice(2, 6)).toEqual(['2', xWon ? '1' : '0', xWon ? '0' : '1', '1']);
    // One win and one tie of two: 1.5 / 2 = 75 %, Wilson [19.8 %, 97.3 %]; or 0.5 / 2 = 25 %, [2.7 %, 80.2 %].
    expect(runs.slice(6)).toEqual(xWon ? ['75.0 %', '19.8 % – 97.3 %'] : ['25.0 %', '2.7 % – 80.2 %']);
    const ba = await cells(1);
    expect(ba[0]).toBe('neftune: off · seed 42 · before');
    expect(ba.slice(2, 6).reduce((n, c) => n + Number(c), 0)).toBe(1 + 1); // 1 vote, 1 win
    // One vote, won or lost: 100 % [20.7 %, 100 %] or 0 % [0 %, 79.3 %].
    expect([['100.0 %', '20.7 % – 100.0 %'], ['0.0 %', '0.0 % – 79.3 %']]).toContainEqual(ba.slice(6));
    await page.locator('#panel-votes').screenshot({ path: 'test-artifacts/lab-02-votes.png' });
  }, slow(60_000));

  it('exports the table as CSV and everything as JSON', async () => {
    const text = async (button: string) => {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
      return fs.readFileSync((await dl.path())!, 'utf8');
    };
    // RFC 4180: quoted fields may hold commas ("wte,lm_head") and doubled quotes.
    const fields = (line: string) => [...line.matchAll(/(?:^|,)("(?:[^"]|"")*"|[^,]*)/g)].map((m) => m[1].replace(/^"|"$/g, '').replace(/""/g, '"'));
    const csv = (await text('#runs-export-csv')).trim().split('\r\n').map(fields);
    expect(csv).toHaveLength(3);
    const col = csv[0].indexOf('neftune.enabled');
    expect(col).toBeGreaterThan(0);
    expect(csv.slice(1).map((row) => row[col])).toEqual(['false', 'true']);
    expect(csv.slice(1).map((row) => row[csv[0].indexOf('lora.modulesToSave')])).toEqual(['wte,lm_head', 'wte,lm_head']);
    expect(new Set(csv.map((row) => row.length))).toEqual(new Set([csv[0].length]));
    const json = JSON.parse(await text('#runs-export-json'));
    expect(json.runs).toHaveLength(2);
    expect(json.runs[0].curves.step).toEqual([1, 2]);
    expect(json.runs[0].answers).toHaveLength(2);
    expect(json.runs[0].scores.after).toBeTypeOf('object');
    expect(json.votes).toHaveLength(3);
    expect(json.winRates.map((w: { n: number }) => w.n)).toEqual([2, 1]);
  }, slow(60_000));

  it('uploaded data: validation split and test-split overlap reported; the data tools say what they remove', async () => {
    const testRow = { messages: [{ role: 'user', content: 'What is the difference between 14 and 8?' }, { role: 'assistant', content: '6' }] };
    const jsonl = [testRow, testRow, testRow,
      { messages: [{ role: 'user', content: 'Zebra quantum lighthouse marmalade?' }, { role: 'assistant', content: 'Indeed.' }] },
      { prompt: 'Say yes.', completion: 'yes' }].map((r) => JSON.stringify(r)).join('\n');
    await page.fill('#dataset-valid-pct', '20');
    await page.setInputFiles('#dataset-upload', { name: 'overlap.jsonl', mimeType: 'application/json', buffer: Buffer.from(jsonl) });
    const check = page.locator('#dataset-upload-check');
    await check.waitFor({ timeout: slow(20_000) });
    // 20 % of 5 rows held out for eval loss; the three copies of test-00000's prompt overlap the test split.
    expect([await check.getAttribute('data-train'), await check.getAttribute('data-valid'), await check.getAttribute('data-overlap')]).toEqual(['4', '1', '3']);
    expect(await check.textContent()).toContain('3 rows repeat a prompt of the bundled test split (line 1 ~ test test-00000 (ROUGE-L 1.00)');
    // Exact dedup over the training rows: at least two copies of the test prompt stay in the upload's training part.
    await page.check('#dt-exact-dedup');
    await page.click('#dt-check');
    const summary = page.locator('#dt-summary');
    await summary.waitFor({ timeout: slow(30_000) });
    const bundled = Number(/^(\d+) training rows/.exec((await page.textContent('#panel-dataset .muted'))!)![1]);
    expect(Number(await summary.getAttribute('data-input'))).toBe(bundled + 4);
    const dedup = page.locator('#dt-report li[data-filter="exact_dedup"]');
    expect(Number(await dedup.getAttribute('data-removed'))).toBeGreaterThanOrEqual(1);
    expect(await dedup.textContent()).toMatch(/^exact_dedup: removed \d+ rows?, e\.g\. .*exact duplicate of/);
    await page.locator('#panel-dataset').screenshot({ path: 'test-artifacts/lab-03-data-tools.png' });
  }, slow(60_000));

  it('after a reload the runs and the votes are still there', async () => {
    await demo.reload();
    await expect.poll(() => page.locator(ROWS).count(), { timeout: slow(20_000) }).toBe(2);
    expect(await page.locator('#winrate-table tbody tr').count()).toBe(2);
    // Ticking both runs draws them again.
    for (const box of await page.locator(`${ROWS} input.run-select`).all()) await box.check();
    expect(await page.getAttribute('#chart-loss', 'data-run-series')).toBe('2');
    await screenshot(page, 'lab-04-reloaded');
    expect(missing).toEqual([]);
    expect(errors).toEqual([]);
  }, slow(300_000));
});
