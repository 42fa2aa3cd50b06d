/**
 * Mixtures of datasets and curriculum ordering.
 *
 * A mixture draws each example's source with probability proportional to the source's
 * weight, from a seeded stream, and takes the next example of that source (each source is
 * reshuffled with its own seed whenever it runs out, so a small source is repeated rather
 * than exhausted). The order is a pure function of (seed, sources).
 *
 * Curriculum: order examples by length (tokens) or by a numeric `difficulty` meta field,
 * easiest first, ties kept in input order; batch them with shuffle: false.
 *
 * @example
 * const order = mixExamples([{ name: 'chat', examples: a, weight: 3 }, { name: 'code', examples: b, weight: 1 }], { seed: 1, total: 1000 });
 * // about 750 from 'chat' and 250 from 'code', interleaved
 */
import { rngFor, shuffled } from './batch.js';
import type { TokenizedExample } from './labels.js';

export interface MixtureSource<T = TokenizedExample> { name: string; examples: readonly T[]; weight: number }

/**
 * Draws `total` examples (default: all sources' sizes added) from weighted sources. Each
 * returned example's meta gets `mixtureSource` (the source name) when T is a TokenizedExample.
 */
export function mixExamples<T extends { meta: Record<string, unknown> }>(sources: readonly MixtureSource<T>[], opts: { seed: number; total?: number }): T[] {
  const live = sources.filter((s) => s.examples.length > 0 && s.weight > 0);
  for (const s of sources) {
    if (!(s.weight >= 0) || !Number.isFinite(s.weight)) throw new Error(`mixture source '${s.name}': weight must be a finite number >= 0, got ${s.weight}`);
  }
  if (live.length === 0) throw new Error('mixture: no source has both examples and a positive weight');
  const total = opts.total ?? sources.reduce((n, s) => n + s.examples.length, 0);
  const sumW = live.reduce((n, s) => n + s.weight, 0);
  const cumulative = live.map(((acc) => (s: MixtureSource<T>) => (acc += s.weight / sumW))(0));
  const pick = rngFor(opts.seed, 'mixture:pick');
  const streams = live.map((s) => ({ s, order: shuffled(s.examples, opts.seed, 0), pos: 0, pass: 0 }));
  const out: T[] = [];
  for (let i = 0; i < total; i++) {
    const u = pick();
    let k = cumulative.findIndex((c) => u < c);
    if (k < 0) k = live.length - 1; // u within rounding of 1
    const st = streams[k];
    if (st.pos === st.order.length) {
      st.pass++;
      st.order = shuffled(st.s.examples, opts.seed, st.pass);
      st.pos = 0;
    }
    const ex = st.order[st.pos++];
    out.push({ ...ex, meta: { ...ex.meta, mixtureSource: st.s.name } });
  }
  return out;
}

export type CurriculumKey = 'length' | 'difficulty';

/** Easiest first: by token count, or by meta.difficulty (a number; rows without it are an error naming the row). Stable. */
export function curriculumOrder<T extends { inputIds?: readonly number[]; meta: Record<string, unknown> }>(examples: readonly T[], by: CurriculumKey): T[] {
  const keyed = examples.map((ex, i) => {
    let key: number;
    if (by === 'length') key = ex.inputIds?.length ?? 0;
    else {
      const d = ex.meta.difficulty;
      if (typeof d !== 'number' || !Number.isFinite(d)) {
        throw new Error(`curriculum by difficulty: example ${String(ex.meta.id ?? `${String(ex.meta.file ?? '')}:${String(ex.meta.line ?? i)}`)} has no numeric 'difficulty' field`);
      }
      key = d;
    }
    return { ex, key, i };
  });
  keyed.sort((a, b) => a.key - b.key || a.i - b.i);
  return keyed.map((k) => k.ex);
}
