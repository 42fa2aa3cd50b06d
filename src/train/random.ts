/**
 * Seeded randomness for training and sampling. Every random choice the trainer makes is a pure
 * function of (seed, step, ...), never of how many random numbers were drawn before, so a run
 * resumed at step k draws exactly what the uninterrupted run drew.
 *
 * @example
 *   const rng = new SeededRng(mixSeed(42, 7));
 *   rng.next();  // a float in [0, 1), the same on every platform
 */

/** Mixes integers into a 32-bit seed (murmur3-style finaliser over each part). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9 | 0;
  for (const part of parts) {
    // Split large integers (steps can exceed 2^32 in principle; seeds may be any safe integer).
    const lo = part >>> 0, hi = Math.floor(part / 4294967296) >>> 0;
    for (const word of [lo, hi]) {
      let k = Math.imul(word, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A small, fast PRNG (mulberry32): deterministic floats in [0, 1) from a 32-bit seed. */
export class SeededRng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Next float in [0, 1) with 32 bits of randomness. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** A permutation of 0..n-1 (Fisher-Yates) determined by the seed. */
export function permutation(n: number, seed: number): number[] {
  const rng = new SeededRng(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}
