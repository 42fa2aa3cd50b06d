// Determinism of the bundled instruction set: same seed, same bytes; the committed files in
// demo/data are exactly what `npm run data` writes.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apportion, buildInstructSet, instructFiles } from '../../src/data/instruct/index.js';
import { hash32, mulberry32, Rng } from '../../src/utils/random.js';
import { dataCommandLine, parseWeights, run } from '../../src/cli/data.js';

describe('prng', () => {
  it('mulberry32 matches the published one-liner', () => {
    // The widely circulated reference implementation, verbatim (different code, same algorithm).
    function reference(a: number) {
      return function () {
        a |= 0; a = a + 0x6D2B79F5 | 0;
        let t = Math.imul(a ^ a >>> 15, 1 | a);
        t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t;
        return ((t ^ t >>> 14) >>> 0) / 4294967296;
      };
    }
    const r = mulberry32(1);
    expect([r(), r(), r()].map((x) => Math.round(x * 4294967296))).toEqual([2693262067, 11749833, 2265367787]);
    for (const seed of [0, 42, 0xdeadbeef, 2 ** 32 - 1]) {
      const mine = mulberry32(seed);
      const ref = reference(seed);
      for (let i = 0; i < 50; i++) expect(mine()).toBe(ref());
    }
  });
  it('hash32 is stable and spreads near-identical strings', () => {
    expect(hash32('a')).toBe(hash32('a'));
    expect(hash32('a')).not.toBe(hash32('b'));
    expect(hash32('')).toBeGreaterThanOrEqual(0);
  });
  it('Rng.int covers its inclusive range and sample draws distinct items', () => {
    const rng = new Rng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(rng.int(2, 5));
    expect([...seen].sort()).toEqual([2, 3, 4, 5]);
    const s = rng.sample([1, 2, 3, 4, 5, 6], 4);
    expect(new Set(s).size).toBe(4);
  });
});

describe('apportion', () => {
  const cases: Array<[number[], number, number[]]> = [
    [[1, 1, 1], 10, [4, 3, 3]],
    [[0.5, 0.25, 0.25], 9, [5, 2, 2]],
    [[0, 1], 5, [0, 5]],
  ];
  it.each(cases)('apportion(%j, %i) = %j', (w, n, want) => {
    expect(apportion(w, n)).toEqual(want);
  });
});

describe('buildInstructSet', () => {
  it('same seed gives the same bytes, another seed other rows', () => {
    const a = instructFiles(buildInstructSet({ seed: 5, n: 300, pretrainDocs: 50 }));
    const b = instructFiles(buildInstructSet({ seed: 5, n: 300, pretrainDocs: 50 }));
    const c = instructFiles(buildInstructSet({ seed: 6, n: 300, pretrainDocs: 50 }));
    expect(a).toEqual(b);
    expect(c['train.jsonl']).not.toBe(a['train.jsonl']);
    expect(c['pretrain.jsonl']).not.toBe(a['pretrain.jsonl']);
  });

  it('n sets the generated rows; weights set the mixture', () => {
    const set = buildInstructSet({ seed: 1, n: 200, pretrainDocs: 10, weights: { refusal: 0, arithmetic: 1 } });
    const gen = set.train.filter((r) => r.source === 'generator');
    expect(gen.length).toBe(200);
    expect(gen.filter((r) => r.family === 'refusal').length).toBe(0);
    expect(set.manifest.mixtureWeights.refusal).toBe(0);
    const w = Object.values(set.manifest.mixtureWeights).reduce((s, x) => s + x, 0);
    expect(w).toBeCloseTo(1, 5);
    expect(set.valid.filter((r) => r.source === 'generator').length).toBe(20);
    expect(set.pretrain.length).toBe(10);
  });

  it('rejects bad options naming them', () => {
    expect(() => buildInstructSet({ n: 0 })).toThrow(/n must be a positive integer/);
    expect(() => buildInstructSet({ seed: -1 })).toThrow(/seed/);
    expect(() => buildInstructSet({ weights: { nosuch: 1 } as never })).toThrow(/unknown family 'nosuch'/);
  });
});

describe('webtune data', () => {
  it('the committed demo/data files are exactly what `npm run data` writes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'webtune-data-'));
    try {
      expect(await run(['--out', dir])).toBe(0);
      const names = (await readdir(dir)).sort();
      expect(names).toEqual(['README.md', 'manifest.json', 'pretrain.jsonl', 'test.jsonl', 'tools-test.jsonl', 'tools-train.jsonl', 'tools-valid.jsonl', 'train.jsonl', 'valid.jsonl']);
      for (const name of names) {
        const fresh = await readFile(join(dir, name));
        const committed = await readFile(join('demo/data', name));
        // On failure: the generator, the hand-written rows or the bundled tokenizer changed; run `npm run data`.
        expect(Buffer.compare(fresh, committed), `demo/data/${name} is stale: run npm run data`).toBe(0);
      }
      expect(await run(['--out', 'demo/data', '--check'])).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the committed set small, and the part the page downloads smaller', async () => {
    let total = 0;
    for (const name of await readdir('demo/data')) total += (await readFile(join('demo/data', name))).length;
    expect(total).toBeLessThan(2.6 * 1024 * 1024);
    // The page bundles train, valid and test (demo/worker.ts); the corpus and tool files stay on disk.
    let page = 0;
    for (const name of ['train.jsonl', 'valid.jsonl', 'test.jsonl']) page += (await readFile(join('demo/data', name))).length;
    expect(page).toBeLessThan(1.6 * 1024 * 1024);
  });

  it('--check reports a stale directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'webtune-data-'));
    try {
      expect(await run(['--out', dir, '--n', '50', '--pretrain-docs', '5', '--tokens=false'])).toBe(0);
      expect(await run(['--out', dir, '--n', '50', '--pretrain-docs', '5', '--tokens=false', '--check'])).toBe(0);
      expect(await run(['--out', dir, '--n', '51', '--pretrain-docs', '5', '--tokens=false', '--check'])).toBe(1);
      const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
      expect(manifest.lengths.tokens).toBeNull();
      const readme = await readFile(join(dir, 'README.md'), 'utf8');
      expect(readme).toContain('npx tsx src/cli/main.ts data --out DIR --n 50 --pretrain-docs 5 --tokens=false');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parses --weights and names bad entries', () => {
    expect(parseWeights('arithmetic=0.5, qa=2')).toEqual({ arithmetic: 0.5, qa: 2 });
    expect(() => parseWeights('maths=1')).toThrow(/unknown family 'maths'/);
    expect(() => parseWeights('qa=-1')).toThrow(/qa needs a non-negative number/);
    expect(() => parseWeights('qa')).toThrow(/qa needs a non-negative number/);
  });

  it('shows `npm run data` for the default flags whatever the output directory', () => {
    expect(dataCommandLine(['--out', 'demo/data'])).toBe('npm run data');
    expect(dataCommandLine(['--out=/tmp/x', '--check'])).toBe('npm run data');
    expect(dataCommandLine(['--out', 'x', '--seed', '7'])).toBe('npx tsx src/cli/main.ts data --out DIR --seed 7');
  });
});
