/** Float64 CPU reference of the additive attention mask (ops.attentionMask), from the one rule in src/nn/visibility.ts. */
import { attends } from '../src/nn/visibility.js';

/**
 * mask [Bm, 1, T, S] row-major: 0 where query i (absolute position offset + i) sees key j, else
 * `hidden`. segQ [B*T] and segK [B*S] segment ids (Bm = B), or both null for causal only (Bm = 1).
 */
export function attentionMaskRef(segQ: ArrayLike<number> | null, segK: ArrayLike<number> | null, B: number, T: number, S: number, offset: number, hidden: number): Float64Array {
  const Bm = segQ && segK ? B : 1;
  const out = new Float64Array(Bm * T * S);
  for (let b = 0; b < Bm; b++) for (let i = 0; i < T; i++) for (let j = 0; j < S; j++) {
    const ok = segQ && segK ? attends(offset + i, j, segQ[b * T + i], segK[b * S + j]) : attends(offset + i, j);
    out[(b * T + i) * S + j] = ok ? 0 : hidden;
  }
  return out;
}
