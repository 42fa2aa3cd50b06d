/**
 * Seeded randomness for the instruction-set generator: a 32-bit string hash (FNV-1a) to
 * derive seeds from names, and mulberry32, a small fast PRNG with a 32-bit state. Every row
 * is drawn from its own generator seeded by hash32(`${seed}:${split}:${family}:${index}:${attempt}`),
 * so a row can be regenerated from the seed stored with it.
 *
 * @example
 * const rng = new Rng(42);
 * rng.int(1, 6);            // a die roll, the same on every machine
 * hash32('arithmetic');     // 0x... a stable unsigned 32-bit integer
 */

/** FNV-1a over the UTF-16 code units of `s`, as an unsigned 32-bit integer. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche (from murmur3's fmix32) so near-identical strings spread over [0, 2^32).
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: returns a function giving floats in [0, 1), deterministic for a given seed. */
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
  private readonly next: () => number;
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
