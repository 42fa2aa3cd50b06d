/**
 * A run survives a closed tab, end to end in headless Chromium (WebGPU on SwiftShader) with the
 * browser's real IndexedDB: a 30-step run saves a checkpoint every 10 steps; the page is reloaded
 * mid-run (the run is lost with the tab); the reloaded page offers to resume from step 10, and the
 * resumed run reaches step 30 with the loss chart holding steps 1..30, the first 10 restored
 * with the losses the first page drew. A run that ended leaves nothing to resume.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Page } from 'playwright-core';
import { openDemo, screenshot, setTraining, slow, type Demo } from '../helpers/browser.js';

const STEPS = 30;
const SAVE_EVERY = 10;

describe('resuming an interrupted run (headless Chromium, IndexedDB)', () => {
  let demo: Demo;
  let page: Page;

  beforeAll(async () => {
    demo = await openDemo();
    page = demo.page;
    await demo.open();
  }, slow(300_000));

  afterAll(async () => { await demo?.close(); });

  const attr = async (selector: string, name: string) => page.getAttribute(selector, name);
  const step = async () => Number(await attr('#train-progress', 'data-step'));

  it('offers nothing to resume on a first visit', async () => {
    expect(await page.locator('#train-interrupted').isHidden()).toBe(true);
  });

  it('saves checkpoints while training, and after a reload resumes from the newest to the end with the chart\'s history', async () => {
    await setTraining(page, { model: 'nano', steps: STEPS, batch: 4, maxlen: 48, lr: 0.003, warmup: 2, 'eval-every': 0, 'save-every': SAVE_EVERY, schedule: 'constant' });
    await page.click('#train-start');

    await expect.poll(step, { timeout: slow(300_000), interval: 250 }).toBeGreaterThanOrEqual(12);
    // The trainer waits for a save before its next step: at step 12 the checkpoint of step 10 is stored.
    expect(await attr('#train-saved', 'data-step')).toBe(String(SAVE_EVERY));
    expect(await page.textContent('#train-saved')).toContain('browser storage/runs/current/checkpoint-10');
    await expect.poll(async () => attr('#chart-loss', 'data-steps'), { timeout: slow(5_000) }).toMatch(/^1-1\d$/);
    const headBefore = JSON.parse((await attr('#chart-loss', 'data-loss-head'))!) as number[];
    expect(headBefore).toHaveLength(3);

    // The tab goes away mid-run.
    await demo.reload();
    const offer = page.locator('#train-interrupted');
    expect(await offer.isVisible()).toBe(true);
    expect(await offer.getAttribute('data-step')).toBe(String(SAVE_EVERY));
    expect(await page.textContent('#train-interrupted-text')).toContain(`Resume the interrupted run (step ${SAVE_EVERY} of ${STEPS})`);
    expect(await attr('#train-progress', 'data-state')).toBe('idle');
    await page.locator('#panel-training').screenshot({ path: 'test-artifacts/resume-01-offer.png' });

    await page.click('#train-resume-run');
    expect(await offer.isHidden()).toBe(true);
    await page.waitForSelector('#train-progress[data-state="done"]', { timeout: slow(300_000) });
    expect(await step()).toBe(STEPS);
    // Steps 1..30, each once: 1..10 restored from the checkpoint, 11..30 trained after the reload.
    await expect.poll(async () => attr('#chart-loss', 'data-steps'), { timeout: slow(5_000) }).toBe(`1-${STEPS}`);
    expect(Number(await attr('#chart-loss', 'data-points'))).toBe(STEPS);
    // The restored points are the first page's: the same losses, to the last bit.
    expect(JSON.parse((await attr('#chart-loss', 'data-loss-head'))!)).toEqual(headBefore);
    // Checkpoints of the resumed run were saved at 20 (its own saves go on).
    expect(await attr('#train-saved', 'data-step')).toBe('20');
    // The run history holds the resumed run (the cut-short page never finished one), to its last step.
    await expect.poll(async () => page.locator('#runs-table tbody tr[data-run-id] td[data-col="last_step"]').allTextContents(), { timeout: slow(10_000) }).toEqual([String(STEPS)]);
    await screenshot(page, 'resume-02-done');
  }, slow(900_000));

  it('a run that ended leaves nothing to resume', async () => {
    await demo.reload();
    expect(await page.locator('#train-interrupted').isHidden()).toBe(true);
  }, slow(300_000));
});
