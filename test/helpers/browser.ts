/**
 * End-to-end harness: the demo served by Vite on loopback, driven in the system's headless
 * Chromium (playwright-core, executablePath /usr/bin/chromium) with WebGPU on SwiftShader.
 * A missing browser FAILS with the command that installs it; nothing is skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';

export const CHROMIUM = process.env.WEBTUNE_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox',
  '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader',
  // Without these Chromium keeps trying to reach the network from a closed machine.
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

/**
 * An end-to-end time limit: `ms` (about twice what the step takes on an idle 2-core machine with
 * SwiftShader) times a margin for a machine that is busy with other work. Limits only catch a
 * hung page; no end-to-end test asserts how long anything took. WEBTUNE_E2E_SLOWDOWN overrides
 * the margin.
 */
export const E2E_SLOWDOWN = Number(process.env.WEBTUNE_E2E_SLOWDOWN ?? 3);
export const slow = (ms: number): number => Math.round(ms * E2E_SLOWDOWN);

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}. Install it with \`sudo bash test/system/install-deps.sh\` ` +
      `(or \`sudo apt-get install chromium\`), or set WEBTUNE_CHROMIUM to a Chromium binary.`);
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** Starts the demo's Vite dev server on a free loopback port; returns its URL and a closer. */
export async function startDemoServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const { createServer } = await import('vite');
  const server = await createServer({
    configFile: path.resolve('vite.config.ts'),
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
    logLevel: 'warn',
  });
  await server.listen();
  const addr = server.httpServer?.address();
  if (!addr || typeof addr === 'string') throw new Error('Vite did not report a port.');
  return { url: `http://127.0.0.1:${addr.port}/`, close: () => server.close() };
}

/** The page's status line once the demo has loaded its backend and data. */
export const READY = '#status-line[data-state="ready"]';

export interface DemoOptions {
  /** Appended to the page's URL, e.g. `?hub=<endpoint>`. */
  query?: string;
  /** A script run in the page before its own (e.g. a recorder of the main thread). */
  initScript?: string;
  /** Print the page's and its workers' console errors and warnings in the test's output. */
  logConsole?: boolean;
}

/** The demo served by Vite and opened in headless Chromium: one per end-to-end test file. */
export interface Demo {
  page: Page;
  /** The page's URL, query included. */
  url: string;
  /** Uncaught errors of the page, in order. */
  errors: string[];
  /** Navigates to the page and waits until it is ready. */
  open(): Promise<void>;
  /** Reloads the page and waits until it is ready again. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the demo server and a browser page on it (not yet navigated: call `open()`). */
export async function openDemo(opts: DemoOptions = {}): Promise<Demo> {
  const server = await startDemoServer();
  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });   // downloads accepted (Playwright's default)
  if (opts.initScript) await page.addInitScript(opts.initScript);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (opts.logConsole) {
    const report = (where: string) => (m: ConsoleMessage) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`${where} ${m.type()}: ${m.text().slice(0, 400)}`); };
    page.on('console', report('page'));
    page.on('worker', (w) => w.on('console', report('worker')));
  }
  const url = server.url + (opts.query ?? '');
  const ready = () => page.waitForSelector(READY, { timeout: slow(240_000) }).then(() => undefined);
  return {
    page, url, errors,
    open: async () => { await page.goto(url); await ready(); },
    reload: async () => { await page.reload(); await ready(); },
    close: async () => { await browser.close(); await server.close(); },
  };
}

/** Saves a screenshot under test-artifacts/ (kept by CI as an artifact of the run). */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = path.resolve('test-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Sets the Training panel's fields, in the order given: each key is a field's id without "set-"
 * (model, steps, batch, maxlen, lr, warmup, eval-every, schedule...); a select is picked, an input filled.
 */
export async function setTraining(page: Page, fields: Record<string, string | number>): Promise<void> {
  for (const [key, value] of Object.entries(fields)) {
    const selector = `#set-${key}`;
    if (await page.locator(selector).evaluate((el) => el.tagName === 'SELECT')) await page.selectOption(selector, String(value));
    else await page.fill(selector, String(value));
  }
}
