/**
 * The demo's training speed in headless Chromium, fused path next to stock path, in one page on
 * one adapter: the page's default run (bundled base model and default settings, or what the
 * flags change) for a few steps with the Kernels control on auto (the fused kernels on WebGPU),
 * then the same run with it on stock. Prints, per path, the tokens/s and GPU dispatches of each
 * step as the progress line shows them, and the median over the steps after the first (which
 * includes shader compilation).
 *
 *   npx tsx test/bench/demo_speed.ts [--steps 4] [--batch 16] [--maxlen 80] [--model base] [--json]
 *
 * Not a test: timings of a software adapter (SwiftShader) on a shared machine are only
 * comparable as a ratio between the two paths of the same run.
 */
import { launchChromium, startDemoServer } from '../helpers/browser.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const STEPS = Number(arg('steps', '4'));
const BATCH = arg('batch', '');
const MAXLEN = arg('maxlen', '');
const MODEL = arg('model', '');
const JSON_OUT = process.argv.includes('--json');

interface StepSeen { step: number; tokensPerSecond: number; dispatches: number; path: string }

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

async function main(): Promise<void> {
  const server = await startDemoServer();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.waitForSelector('#status-line[data-state="ready"]', { timeout: 600_000 });
    const adapter = await page.getAttribute('#status-line', 'data-adapter');
    const results: Record<string, { steps: StepSeen[]; median: number; dispatches: number }> = {};
    for (const kernels of ['auto', 'stock'] as const) {
      if (MODEL) await page.selectOption('#set-model', MODEL);
      if (BATCH) await page.fill('#set-batch', BATCH);
      if (MAXLEN) await page.fill('#set-maxlen', MAXLEN);
      await page.fill('#set-steps', String(STEPS));
      await page.fill('#set-eval-every', '0');
      await page.selectOption('#set-kernels', kernels);
      const settings = { model: await page.inputValue('#set-model'), batch: await page.inputValue('#set-batch'), maxlen: await page.inputValue('#set-maxlen') };
      await page.click('#train-start');
      const steps: StepSeen[] = [];
      let last = 0;
      for (;;) {
        await page.waitForFunction((prev) => {
          const p = document.querySelector('#train-progress') as HTMLElement;
          return Number(p.dataset.step) > prev || ['done', 'failed', 'stopped'].includes(p.dataset.state ?? '');
        }, last, { timeout: 1_800_000, polling: 200 });
        const d = await page.evaluate(() => ({ ...(document.querySelector('#train-progress') as HTMLElement).dataset }));
        if (d.state === 'failed') throw new Error(`the ${kernels} run failed: ${await page.textContent('#train-progress')}`);
        const step = Number(d.step);
        if (step > last && d.path) {
          steps.push({ step, tokensPerSecond: Number(d.tokensPerSecond), dispatches: Number(d.dispatches), path: d.path });
          last = step;
          if (!JSON_OUT) console.error(`${kernels}: step ${step}: ${Number(d.tokensPerSecond).toFixed(1)} tokens/s, ${d.dispatches} dispatches (${d.path}; ${JSON.stringify(settings)})`);
        }
        if (step >= STEPS && d.state === 'done') break;
        if (d.state === 'done' || d.state === 'stopped') break;
      }
      const timed = steps.length > 1 ? steps.slice(1) : steps;
      results[steps[0]?.path ?? kernels] = { steps, median: median(timed.map((s) => s.tokensPerSecond)), dispatches: median(timed.map((s) => s.dispatches)) };
    }
    if (JSON_OUT) console.log(JSON.stringify({ adapter, results }, null, 2));
    else {
      console.log(`adapter: ${adapter} (headless Chromium)`);
      for (const [path, r] of Object.entries(results)) console.log(`${path.padEnd(5)}  ${r.median.toFixed(1)} tokens/s (median of steps 2..${r.steps.length})  ${r.dispatches} dispatches/step`);
      if (results.fused && results.stock) console.log(`fused/stock: ${(results.fused.median / results.stock.median).toFixed(2)}x tokens/s, ${(results.fused.dispatches / results.stock.dispatches).toFixed(3)}x dispatches`);
    }
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
