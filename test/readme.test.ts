/**
 * The README's quick-start example, run exactly as written (only the package name is mapped
 * to this checkout's src/index.ts), so the documentation cannot drift from the API.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it, expect, vi } from 'vitest';

function readmeBlock(tag: string): string {
  const text = fs.readFileSync(path.resolve('README.md'), 'utf8');
  const at = text.indexOf(`<!-- tested: ${tag} -->`);
  if (at < 0) throw new Error(`README.md has no block tagged '${tag}'`);
  const m = /```ts\n([\s\S]*?)```/.exec(text.slice(at));
  if (!m) throw new Error(`README.md: no \`\`\`ts block after the '${tag}' tag`);
  return m[1];
}

/** Runs a tagged block as written (the package name mapped to this checkout's src/index.ts); its console.log lines. */
async function runBlock(tag: string): Promise<string[]> {
  const code = readmeBlock(tag);
  expect(code).toContain("from 'webtune'");
  const file = path.resolve(`test/.readme-${tag}.generated.ts`);
  const entry = path.resolve('src/index.js').replace(/\\/g, '/');
  fs.writeFileSync(file, code.replace("from 'webtune'", `from '${entry}'`) + '\nexport {};\n');
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  try {
    await import(/* @vite-ignore */ file);
  } finally {
    log.mockRestore();
    fs.rmSync(file, { force: true });
  }
  return lines;
}

describe('README quick start', () => {
  it('runs as written: prepares the bundled data, LoRA-trains a nano model, generates a reply', async () => {
    const lines = await runBlock('quickstart');
    const out = lines.join('\n');
    expect(out).toMatch(/^webgpu on .+/m);                                     // describeBackend
    expect(out).toMatch(/trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: [\d.]+/);
    const losses = [...out.matchAll(/^step (\d+) loss ([\d.]+)$/gm)].map((m) => Number(m[2]));
    expect(losses).toHaveLength(10);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(lines.at(-1)).toBeTypeOf('string');                                 // the generated reply
  });
});

describe('README grow example', () => {
  it('runs as written: candidates with verdicts, then the counts', async () => {
    const lines = await runBlock('grow');
    const stats = JSON.parse(lines.at(-1)!);
    const verdicts = lines.slice(0, -1).filter((l) => /^(kept: |dropped by \w+: )/.test(l));
    expect(verdicts).toHaveLength(stats.candidates);
    expect(stats.prompts).toBeLessThanOrEqual(2);
    expect(stats.acceptanceRate).toBeCloseTo(stats.kept / stats.candidates, 12);
  }, 300_000);
});
