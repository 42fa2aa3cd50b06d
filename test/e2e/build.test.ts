/**
 * `npm run build` makes a static site in dist/ that works from any host and sub-path: the page,
 * its script, stylesheet and worker are all referenced by relative URLs.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { slow } from '../helpers/browser.js';

describe('demo build', () => {
  it('npm run build writes dist/index.html with relative asset paths only', () => {
    execFileSync('npm', ['run', 'build', '--silent'], { stdio: 'pipe', timeout: slow(120_000) });
    const html = fs.readFileSync('dist/index.html', 'utf8');
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    const assets = refs.filter((r) => !r.startsWith('#'));
    expect(assets.length).toBeGreaterThanOrEqual(2); // the page script and its stylesheet
    for (const r of assets) {
      expect(r, `${r} in dist/index.html`).toMatch(/^\.\//);
      expect(fs.existsSync(path.join('dist', r)), `${r} exists`).toBe(true);
    }
    // The scripts load the worker and the rest relative to themselves, never from the host root.
    const scripts = fs.readdirSync('dist/assets').filter((f) => f.endsWith('.js'));
    expect(scripts.some((f) => f.startsWith('worker-'))).toBe(true);
    for (const f of scripts) {
      const js = fs.readFileSync(path.join('dist/assets', f), 'utf8');
      expect(js.includes('"/assets/') || js.includes("'/assets/") || js.includes('`/assets/'), `absolute /assets/ path in ${f}`).toBe(false);
    }
    // No runtime the demo does not use rides along (the tokenizer once pulled in ONNX Runtime's ~27 MB .wasm).
    const wasm = fs.readdirSync('dist', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.wasm'));
    for (const f of wasm) expect(fs.statSync(path.join('dist', f)).size, `dist/${f}`).toBeLessThan(2 ** 20);
    expect(fs.readdirSync('dist/assets').some((f) => /onnxruntime|ort-wasm/i.test(f)), 'ONNX Runtime files in dist/assets').toBe(false);
  }, slow(150_000));
});
