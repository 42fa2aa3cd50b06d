/**
 * Statistics of an experiment: the same setting changed, each arm repeated over seeds.
 *
 *   seedStats([2.1, 2.3, 2.2])       -> { n: 3, mean: 2.2, std: 0.1, min: 2.1, max: 2.3 }   (sample std, n - 1)
 *   compareArms(a, b)                -> the difference of the means, the seed spread, and whether
 *                                       the difference is larger than that spread
 *   wilson(successes, n)             -> the Wilson score interval of a proportion (95 % by default)
 *
 * "Larger than the spread between seeds" is a rule of thumb, not a significance test: the
 * difference of the arms' means is compared with the sum of their sample standard deviations
 * over seeds. With one seed in an arm there is no spread to compare with, and the verdict says so.
 */

export interface SeedStats { n: number; mean: number; std: number; min: number; max: number }

/** Mean, sample standard deviation (divisor n - 1; 0 for one value), min and max of per-seed results. */
export function seedStats(xs: readonly number[]): SeedStats {
  const n = xs.length;
  if (n === 0) return { n: 0, mean: NaN, std: NaN, min: NaN, max: NaN };
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const ss = xs.reduce((s, x) => s + (x - mean) ** 2, 0);
  return { n, mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0, min: Math.min(...xs), max: Math.max(...xs) };
}

export type ArmVerdict = 'larger' | 'within' | 'no-spread';

export interface ArmComparison {
  a: SeedStats;
  b: SeedStats;
  /** mean(b) - mean(a). */
  diff: number;
  /** std(a) + std(b): how far seeds alone move the two means apart. */
  spread: number;
  /** 'larger': |diff| > spread; 'within': not; 'no-spread': an arm has fewer than two seeds. */
  verdict: ArmVerdict;
}

/** Arm B against arm A on one metric (e.g. final eval loss per seed). */
export function compareArms(a: readonly number[], b: readonly number[]): ArmComparison {
  const sa = seedStats(a), sb = seedStats(b);
  const diff = sb.mean - sa.mean;
  const spread = sa.std + sb.std;
  const verdict: ArmVerdict = sa.n < 2 || sb.n < 2 ? 'no-spread' : Math.abs(diff) > spread ? 'larger' : 'within';
  return { a: sa, b: sb, diff, spread, verdict };
}

/** The verdict in words, e.g. "B - A = -0.120, larger than the seed spread 0.050 (2 + 2 seeds)". */
export function describeComparison(c: ArmComparison, digits = 3): string {
  const d = `B - A = ${c.diff >= 0 ? '+' : ''}${c.diff.toFixed(digits)}`;
  if (c.verdict === 'no-spread') return `${d}; one seed per arm: no spread between seeds to compare it with (run more seeds)`;
  return `${d}, ${c.verdict === 'larger' ? 'larger than' : 'within'} the seed spread ${c.spread.toFixed(digits)} (${c.a.n} + ${c.b.n} seeds)`;
}

export interface Interval { p: number; lo: number; hi: number }

/**
 * Wilson score interval for `successes` out of `n` (z = 1.96: 95 %). Unlike p ± z·sqrt(p(1-p)/n)
 * it stays inside [0, 1] and is honest for small n, which human votes always are.
 * `successes` may be fractional (a tie counted as half a win). n = 0 gives p = NaN, [0, 1].
 */
export function wilson(successes: number, n: number, z = 1.96): Interval {
  if (n <= 0) return { p: NaN, lo: 0, hi: 1 };
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { p, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half) };
}
