/**
 * Blind pairwise human votes: two answers to the same held-out prompt (before vs after, or run X
 * vs run Y), shown in an order the voter cannot know, with a tie option; then win rates with a
 * Wilson interval. This is the pairwise comparison human raters give instruction-tuned models,
 * and the one evaluation open-ended answers of a tiny model can get without a judge model.
 *
 *   const order = blindOrder(sessionSeed, voteIndex);          // false: X is shown left; true: Y is
 *   votes.push({ x: 'before', y: 'after', prompt, winner: 'y' });
 *   winRates(votes) // [{ x: 'before', y: 'after', n: 1, xWins: 0, yWins: 1, ties: 0, rate: 1, lo: 0.207, hi: 1 }]
 */
import { mixSeed, mulberry32 } from '../utils/random.js';
import { wilson } from './stats.js';

/** One vote: which of the two contestants (x, y: run ids or 'before' / 'after') answered better. */
export interface PairVote {
  x: string;
  y: string;
  /** The held-out prompt both answered. */
  prompt: string;
  winner: 'x' | 'y' | 'tie';
  /** Whether y was shown on the left (kept so the order can be audited after the fact). */
  swapped?: boolean;
  at?: number;
}

/** Whether the pair's second contestant is shown first: a fair coin per (seed, index), reproducible. */
export function blindOrder(seed: number, index: number): boolean {
  return mulberry32(mixSeed(seed, index))() < 0.5;
}

export interface WinRate {
  /** The pair, in the order first met (x's wins are counted). */
  x: string;
  y: string;
  n: number;
  xWins: number;
  yWins: number;
  ties: number;
  /** x's win rate with ties as half a win: (xWins + ties / 2) / n, and its 95 % Wilson interval. */
  rate: number;
  lo: number;
  hi: number;
}

/** Win rates per pair of contestants (x vs y and y vs x are one pair), in the order pairs first appear. */
export function winRates(votes: readonly PairVote[]): WinRate[] {
  const pairs = new Map<string, WinRate>();
  for (const v of votes) {
    const key = [v.x, v.y].sort().join('\u0000');
    let w = pairs.get(key);
    if (!w) { w = { x: v.x, y: v.y, n: 0, xWins: 0, yWins: 0, ties: 0, rate: NaN, lo: 0, hi: 1 }; pairs.set(key, w); }
    w.n++;
    const winner = v.winner === 'tie' ? 'tie' : v.winner === 'x' ? v.x : v.y;
    if (winner === 'tie') w.ties++;
    else if (winner === w.x) w.xWins++;
    else w.yWins++;
  }
  return [...pairs.values()].map((w) => {
    const ci = wilson(w.xWins + w.ties / 2, w.n);
    return { ...w, rate: ci.p, lo: ci.lo, hi: ci.hi };
  });
}
