/**
 * Seeded randomness, one module for the whole library: string hashes that name independent
 * streams, mulberry32 (a small fast PRNG with a 32-bit state), a seed mixer for keys such as
 * (seed, step, micro-batch), and a permutation. Every random choice WebTune makes (data
 * generation, shuffling, mixtures, initialisation, dropout, NEFTune noise, sampling) is a pure
 * function of such a key, never of how many numbers were drawn before, so runs reproduce on every
 * platform and a run resumed at step k draws exactly what the uninterrupted run drew.
 *
 * @example
 *   const rng = new Rng(mixSeed(42, 7));
 *   rng.int(1, 6);              // a die roll, the same on every machine
 *   hash32('arithmetic');       // a stable unsigned 32-bit integer
 *   deriveSeed(42, 'transformer.h.0.attn.c_attn.weight');  // the stream of one parameter
 */

/** FNV-1a over the UTF-16 code units of `s`, as an unsigned 32-bit integer (no final mixing). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's 32-bit finaliser: spreads nearby integers over [0, 2^32). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a followed by a final avalanche, so near-identical strings give unrelated seeds. */
export function hash32(s: string): number {
  return fmix32(fnv1a(s));
}

/** A seed for `name` derived from a base seed: an independent stream per parameter or layer. */
export function deriveSeed(seed: number, name: string): number {
  return (fnv1a(name) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}

/** Mixes integers (any safe integers, e.g. seed, step, micro-batch) into a 32-bit seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9 | 0;
  for (const part of parts) {
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
  return fmix32(h);
}

/** mulberry32: a function giving floats in [0, 1) with 32 bits of randomness, deterministic per seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Convenience draws over mulberry32. */
export class Rng {
  /** The next float in [0, 1). */
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** A float in [0, 1). */
  float(): number {
    return this.next();
  }
  /** An integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: empty array');
    return items[Math.floor(this.next() * items.length)];
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** `k` distinct elements of `items` in random order (partial Fisher-Yates). */
  sample<T>(items: readonly T[], k: number): T[] {
    if (k > items.length) throw new Error(`Rng.sample: asked for ${k} of ${items.length} items`);
    const a = items.slice();
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.next() * (a.length - i));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a.slice(0, k);
  }
}

/** A permutation of 0..n-1 (Fisher-Yates) determined by the seed. */
export function permutation(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}
