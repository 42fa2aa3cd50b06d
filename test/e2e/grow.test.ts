/**
 * "Grow data" end to end in headless Chromium with WebGPU (SwiftShader): the bundled base model
 * writes instructions with Self-Instruct, every candidate is shown with its verdict and why, the
 * acceptance rate and the small-model warning are on the page, rows are kept (by the filters or
 * by hand), added to the training mixture with their own weight, and a run trains on them alone.
 * Screenshots go to test-artifacts/.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import { parseSafetensors } from '../../src/io/safetensors.js';
import type { Page } from 'playwright-core';
import { openDemo, screenshot, setTraining, slow, type Demo } from '../helpers/browser.js';

describe('Grow data panel (headless Chromium, WebGPU)', () => {
  let demo: Demo;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    demo = await openDemo();
    ({ page, errors } = demo);
    await demo.open();
  }, slow(300_000));

  afterAll(async () => { await demo?.close(); });

  it('generates candidates with verdicts, reasons and the acceptance rate, and warns about a tiny model', async () => {
    // The bundled base (plain text; its parameters counted from the stored tensors, the head tied): the warning says so; prompts are plain text.
    const { tensors } = parseSafetensors(new Uint8Array(fs.readFileSync('models/base/model.safetensors')), 'model.safetensors');
    const params = [...tensors.values()].reduce((n, t) => n + t.shape.reduce((x, y) => x * y, 1), 0);
    expect(await page.getAttribute('#grow-warning', 'data-params')).toBe(String(params));
    expect(await page.textContent('#grow-warning')).toMatch(/A model this small writes weak data/);
    expect(await page.inputValue('#grow-format')).toBe('completion');
    await page.selectOption('#grow-method', 'self-instruct');
    await page.fill('#grow-n', '1');
    await page.fill('#grow-max-prompts', '6');
    await page.fill('#grow-max-new', '64');
    await page.fill('#grow-answer-max', '16');
    await page.fill('#grow-seed', '1');
    await page.click('#grow-start');
    await page.waitForSelector('#grow-status[data-state="running"]', { timeout: slow(30_000) });
    // Progress while it runs: the status line and the counts so far.
    const t0 = Date.now();
    while (await page.getAttribute('#grow-status', 'data-state') === 'running' && Date.now() - t0 < 420_000) {
      await page.waitForTimeout(15_000);
      console.log(`grow after ${Math.round((Date.now() - t0) / 1000)} s: ${await page.textContent('#grow-stats') || '(no candidate yet)'}`);
    }
    expect(await page.getAttribute('#grow-status', 'data-state'), (await page.textContent('#grow-status'))!).toBe('done');

    const stats = page.locator('#grow-stats');
    const candidates = Number(await stats.getAttribute('data-candidates'));
    const kept = Number(await stats.getAttribute('data-kept'));
    expect(candidates).toBeGreaterThan(0);
    expect(await page.locator('.grow-candidate').count()).toBe(candidates);
    expect(await page.locator('.grow-candidate[data-kept="1"]').count()).toBe(kept);
    expect(Number(await stats.getAttribute('data-acceptance'))).toBeCloseTo(kept / candidates, 12);
    expect(await stats.textContent()).toMatch(/^Acceptance rate \d+\.\d%: \d+ of \d+ candidates kept by the filters/);
    expect(Number(await stats.getAttribute('data-malformed'))).toBe(await page.locator('.grow-candidate[data-verdict="parse"]').count());
    // Each dropped candidate says which filter dropped it and why.
    for (const card of await page.locator('.grow-candidate[data-kept="0"]').all()) {
      expect(await card.locator('.verdict').textContent()).toMatch(/^dropped: \w+$/);
      expect(await card.locator('.reason').textContent()).toMatch(/^ — \S/);
    }
    await page.locator('#panel-grow').screenshot({ path: 'test-artifacts/grow-01-candidates.png' });
  }, slow(480_000));

  it('adds the kept rows to the mixture with their own weight and trains on them alone', async () => {
    // Keep every candidate that has an answer (overruling the filters where they dropped one).
    const withRows = page.locator('.grow-candidate[data-has-row="1"] input.grow-keep');
    const n = await withRows.count();
    expect(n).toBeGreaterThan(0);
    for (const box of await withRows.all()) await box.check();
    expect(await page.locator('.grow-candidate[data-keep="1"]').count()).toBe(n);
    await page.fill('#grow-weight', '1');
    await page.click('#grow-use');
    await page.waitForSelector(`#grow-used[data-rows="${n}"]`, { timeout: slow(30_000) });

    // Train on the grown rows only: every family of the bundled set at weight 0.
    for (const w of await page.locator('#dataset-families input.weight').all()) await w.fill('0');
    await setTraining(page, { model: 'nano', steps: 3, batch: 2, maxlen: 96, 'eval-every': 0 });
    await page.click('#train-start');
    await page.waitForSelector('#train-progress[data-state="done"]', { timeout: slow(240_000) });
    // The prepared data is exactly the grown rows (one example each with the assistant mask).
    expect(await page.textContent('#train-prep')).toMatch(new RegExp(`^${n} examples, \\d+ trained tokens, 0 dropped`));
    expect(Number(await page.getAttribute('#chart-loss', 'data-points'))).toBe(3);
    const loss = Number(await page.getAttribute('#train-progress', 'data-loss'));
    expect(Number.isFinite(loss)).toBe(true);
    await screenshot(page, 'grow-02-trained');
    expect(errors).toEqual([]);
  }, slow(300_000));
});
