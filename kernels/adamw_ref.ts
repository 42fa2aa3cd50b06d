/** Float64 CPU reference of one AdamW step (torch semantics) with a clip coefficient, and of the global norm. */

export function globalNormRef(grads: ArrayLike<number>[]): number {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** Returns new p, m, v for step t (1-based); g is multiplied by coef first. */
export function adamwRef(p: ArrayLike<number>, g: ArrayLike<number>, m: ArrayLike<number>, v: ArrayLike<number>, t: number,
  hp: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; decay: boolean }, coef = 1): { p: Float64Array; m: Float64Array; v: Float64Array } {
  const n = p.length;
  const out = { p: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  const bc1 = 1 - hp.beta1 ** t, bc2 = 1 - hp.beta2 ** t;
  for (let i = 0; i < n; i++) {
    const gi = g[i] * coef;
    const p0 = hp.decay ? p[i] * (1 - hp.lr * hp.weightDecay) : p[i];
    out.m[i] = hp.beta1 * m[i] + (1 - hp.beta1) * gi;
    out.v[i] = hp.beta2 * v[i] + (1 - hp.beta2) * gi * gi;
    out.p[i] = p0 - (hp.lr / bc1) * out.m[i] / (Math.sqrt(out.v[i]) / Math.sqrt(bc2) + hp.eps);
  }
  return out;
}
