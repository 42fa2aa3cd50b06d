/**
 * The experiments lab's arithmetic against hand-computed values: seed statistics and the
 * "larger than the seed spread" verdict, Wilson intervals (checked against the closed form
 * worked by hand and in float64), win rates with ties, the comparison table, CSV quoting, and
 * experiment plans.
 */
import { describe, it, expect } from 'vitest';
import {
  seedStats, compareArms, describeComparison, wilson, winRates, blindOrder, flattenSettings, differingSettings,
  comparisonTable, toCsv, formatTable, planExperiment, experimentResult, emptyCurves, type RunRecord, type PairVote, type Experiment,
} from '../../src/index.js';

const run = (id: string, settings: Record<string, unknown>, seed: number, extra: Partial<RunRecord> = {}): RunRecord =>
  ({ id, name: id, createdAt: 0, settings, seed, curves: emptyCurves(), ...extra });

describe('seed statistics', () => {
  it('mean and sample standard deviation (n - 1)', () => {
    // mean 1.1; deviations -0.2, 0, 0.2: (0.04 + 0 + 0.04) / 2 = 0.04, sqrt = 0.2.
    const s = seedStats([0.9, 1.1, 1.3]);
    expect(s.n).toBe(3);
    expect(s.mean).toBeCloseTo(1.1, 12);
    expect(s.std).toBeCloseTo(0.2, 12);
    expect([s.min, s.max]).toEqual([0.9, 1.3]);
    expect(seedStats([5]).std).toBe(0);
    expect(seedStats([]).mean).toBeNaN();
  });

  it('the difference is larger than the spread, within it, or there is no spread', () => {
    // A: mean 2, std sqrt(2); B: mean 5, std sqrt(2). |3| > 2 sqrt(2) = 2.828.
    const larger = compareArms([1, 3], [4, 6]);
    expect(larger.diff).toBe(3);
    expect(larger.spread).toBeCloseTo(2 * Math.SQRT2, 12);
    expect(larger.verdict).toBe('larger');
    expect(describeComparison(larger)).toBe('B - A = +3.000, larger than the seed spread 2.828 (2 + 2 seeds)');
    // B: mean 3; |1| < 2.828.
    expect(compareArms([1, 3], [2, 4]).verdict).toBe('within');
    const one = compareArms([1], [2]);
    expect(one.verdict).toBe('no-spread');
    expect(describeComparison(one)).toMatch(/^B - A = \+1\.000; one seed per arm/);
  });
});

describe('Wilson interval', () => {
  // p = s/n, c = (p + z²/2n) / (1 + z²/n), h = z/(1 + z²/n) · sqrt(p(1-p)/n + z²/4n²), z = 1.96.
  it.each([
    [8, 10, 0.8, 0.490157, 0.943319],   // c = 0.99208 / 1.38416 = 0.716738, h = 0.226581
    [0, 5, 0, 0, 0.434491],             // c = h = 0.217245: the interval starts at 0
    [1, 1, 1, 0.206543, 1],             // c = 2.9208 / 4.8416 = 0.603272, h = 0.396728
    [1.5, 5, 0.3, 0.072582, 0.701214],  // a tie counted as half a win
  ])('%s of %s', (s, n, p, lo, hi) => {
    const w = wilson(s, n);
    expect(w.p).toBeCloseTo(p, 12);
    expect(w.lo).toBeCloseTo(lo, 5);
    expect(w.hi).toBeCloseTo(hi, 5);
  });
  it('no votes: p is NaN and the interval is all of [0, 1]', () => {
    expect(wilson(0, 0)).toEqual({ p: NaN, lo: 0, hi: 1 });
  });
});

describe('blind pairwise votes', () => {
  it('win rates per pair, ties as half a win, the pair met in either order', () => {
    const v = (x: string, y: string, winner: PairVote['winner']): PairVote => ({ x, y, prompt: 'p', winner });
    const votes = [v('before', 'after', 'y'), v('before', 'after', 'y'), v('before', 'after', 'tie'), v('before', 'after', 'x'),
      v('after', 'before', 'x'), v('run-1', 'run-2', 'x')];
    const [ba, r12] = winRates(votes);
    // before: 1 win, 1 tie of 5 votes -> 1.5 / 5 = 0.3; after won 3.
    expect(ba).toMatchObject({ x: 'before', y: 'after', n: 5, xWins: 1, yWins: 3, ties: 1 });
    expect(ba.rate).toBeCloseTo(0.3, 12);
    expect(ba.lo).toBeCloseTo(0.072582, 5);
    expect(ba.hi).toBeCloseTo(0.701214, 5);
    expect(r12).toMatchObject({ x: 'run-1', y: 'run-2', n: 1, xWins: 1, yWins: 0, ties: 0, rate: 1 });
  });

  it('the order is a reproducible fair coin per vote', () => {
    const flips = Array.from({ length: 1000 }, (_, i) => blindOrder(7, i));
    expect(flips).toEqual(Array.from({ length: 1000 }, (_, i) => blindOrder(7, i)));
    const heads = flips.filter(Boolean).length;
    // A fair coin: 1000 flips land within 500 ± 4.4 sigma (sigma = 15.8) for any reasonable hash.
    expect(heads).toBeGreaterThan(430);
    expect(heads).toBeLessThan(570);
    expect(flips.slice(0, 20)).not.toEqual(Array.from({ length: 20 }, (_, i) => blindOrder(8, i)));
  });
});

describe('comparison table', () => {
  it('flattens nested settings to dotted keys', () => {
    expect(flattenSettings({ lr: 0.001, lora: { enabled: true, targets: ['c_attn', 'c_proj'] }, gone: undefined }))
      .toEqual({ lr: 0.001, 'lora.enabled': true, 'lora.targets': 'c_attn,c_proj' });
  });

  it('a setting differs when its values differ or one run lacks it', () => {
    expect(differingSettings([{ a: 1, b: 2 }, { a: 1, b: 3 }, { a: 1, b: 2 }])).toEqual(['b']);
    expect(differingSettings([{ a: 1 }, { a: 1, c: 'x' }])).toEqual(['c']);
    expect(differingSettings([{ a: 1 }, { a: 1 }])).toEqual([]);
  });

  const runs = [
    run('r1', { lr: 0.002, mask: 'assistant', neftune: { enabled: false } }, 1, {
      curves: { step: [1, 2], loss: [3, 2.5], lr: [0.001, 0.002], evalStep: [2], evalLoss: [2.75] },
      scores: { after: { math: { n: 4, correct: 1 }, json: { n: 4, correct: 2 } } },
    }),
    run('r2', { lr: 0.002, mask: 'all', neftune: { enabled: false } }, 2, { finalLoss: 2.25, evalLoss: 2.5, steps: 2 }),
  ];

  it('one row per run with its settings, seed and results; differing settings listed', () => {
    const t = comparisonTable(runs);
    expect(t.columns).toEqual(['name', 'lr', 'mask', 'neftune.enabled', 'seed', 'last_step', 'final_loss', 'eval_loss', 'accuracy_before', 'accuracy_after']);
    expect(t.differing).toEqual(['mask', 'seed']);
    expect(t.rows[0]).toEqual({ id: 'r1', cells: { name: 'r1', lr: 0.002, mask: 'assistant', 'neftune.enabled': false, seed: 1, last_step: 2, final_loss: 2.5, eval_loss: 2.75, accuracy_before: null, accuracy_after: 3 / 8 } });
    expect(t.rows[1].cells).toMatchObject({ mask: 'all', seed: 2, last_step: 2, final_loss: 2.25, eval_loss: 2.5, accuracy_after: null });
    expect(comparisonTable(runs, { onlyDiffering: true }).columns).toEqual(['name', 'mask', 'seed', 'last_step', 'final_loss', 'eval_loss', 'accuracy_before', 'accuracy_after']);
  });

  it('CSV quotes fields with commas and quotes (RFC 4180); text marks differing columns', () => {
    const t = comparisonTable([run('a', { note: 'x, "y"' }, 1), run('b', { note: 'plain' }, 1)]);
    expect(toCsv(t)).toBe('name,note,seed,last_step,final_loss,eval_loss,accuracy_before,accuracy_after\r\n' +
      'a,"x, ""y""",1,,,,,\r\nb,plain,1,,,,,\r\n');
    const text = formatTable(comparisonTable(runs, { onlyDiffering: true }));
    expect(text.split('\n')[0]).toBe('name  mask*      seed*  last_step  final_loss  eval_loss  accuracy_before  accuracy_after');
    expect(text.split('\n')[2]).toBe('r1    assistant  1      2          2.5000      2.7500                      0.3750');
    expect(text).toContain('* differs between runs: mask, seed');
  });
});

describe('experiments', () => {
  const exp: Experiment = {
    id: 'neft', title: 'NEFTune off vs on', setting: 'neftune.enabled',
    arms: [{ label: 'off', set: { 'neftune.enabled': false } }, { label: 'on', set: { 'neftune.enabled': true, 'neftune.alpha': 5 } }],
  };

  it('plans arm-major runs, one per (arm, seed), each a patched copy', () => {
    const base = { lr: 1, seed: 0, neftune: { enabled: false, alpha: 1 } };
    const plan = planExperiment(exp, base, [11, 12]);
    expect(plan.map((p) => `${p.arm}/${p.seed}`)).toEqual(['off/11', 'off/12', 'on/11', 'on/12']);
    expect(plan[3].settings).toEqual({ lr: 1, seed: 12, neftune: { enabled: true, alpha: 5 } });
    expect(plan[0].settings).toEqual({ lr: 1, seed: 11, neftune: { enabled: false, alpha: 1 } });
    expect(base).toEqual({ lr: 1, seed: 0, neftune: { enabled: false, alpha: 1 } });
    expect(() => planExperiment({ ...exp, arms: exp.arms.slice(0, 1) }, base, [1])).toThrow(/two arms/);
  });

  it('per-arm statistics of a metric over the experiment\'s runs', () => {
    const tag = (arm: string) => ({ experiment: { id: 'neft', title: exp.title, arm, setting: exp.setting } });
    const runs = [
      run('a1', {}, 1, { evalLoss: 3.0, ...tag('off') }), run('a2', {}, 2, { evalLoss: 3.2, ...tag('off') }),
      run('b1', {}, 1, { evalLoss: 2.0, ...tag('on') }), run('b2', {}, 2, { evalLoss: 2.2, ...tag('on') }),
      run('other', {}, 1, { evalLoss: 9 }),
    ];
    const r = experimentResult(exp, runs, 'eval_loss');
    expect(r.arms.map((a) => a.runs)).toEqual([['a1', 'a2'], ['b1', 'b2']]);
    expect(r.arms[0].stats.mean).toBeCloseTo(3.1, 12);
    // diff -1.0; each std = 0.1 * sqrt(2) = 0.141421; spread 0.282843.
    expect(r.comparison.diff).toBeCloseTo(-1, 12);
    expect(r.comparison.spread).toBeCloseTo(0.2 * Math.SQRT2, 12);
    expect(r.comparison.verdict).toBe('larger');
  });
});
