/**
 * Float64 CPU reference of attention with GQA, forward and backward, layout [B, H, T, D].
 * `allowed(b, i, j)` says whether query i sees key j; `bias(b, i, j)` is added to its score.
 * A query that sees no key gets out = 0 and contributes no gradient.
 */
export interface AttentionRef { out: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array }

export function attentionRef(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dO: ArrayLike<number>,
  B: number, H: number, Hkv: number, T: number, S: number, D: number, scale: number,
  allowed: (b: number, i: number, j: number) => boolean, bias: (b: number, i: number, j: number) => number = () => 0,
): AttentionRef {
  const out = new Float64Array(B * H * T * D), dq = new Float64Array(B * H * T * D);
  const dk = new Float64Array(B * Hkv * S * D), dv = new Float64Array(B * Hkv * S * D);
  const G = H / Hkv;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < T; i++) {
    const hk = Math.floor(h / G);
    const qo = ((b * H + h) * T + i) * D;
    const p = new Float64Array(S);
    let m = -Infinity;
    for (let j = 0; j < S; j++) {
      if (!allowed(b, i, j)) { p[j] = NaN; continue; }
      const ko = ((b * Hkv + hk) * S + j) * D;
      let s = 0;
      for (let d = 0; d < D; d++) s += q[qo + d] * k[ko + d];
      p[j] = s * scale + bias(b, i, j);
      m = Math.max(m, p[j]);
    }
    if (m === -Infinity) continue;
    let z = 0;
    for (let j = 0; j < S; j++) { p[j] = Number.isNaN(p[j]) ? 0 : Math.exp(p[j] - m); z += p[j]; }
    for (let j = 0; j < S; j++) p[j] /= z;
    for (let j = 0; j < S; j++) {
      const ko = ((b * Hkv + hk) * S + j) * D;
      for (let d = 0; d < D; d++) out[qo + d] += p[j] * v[ko + d];
    }
    // backward: dP_j = dO·v_j, dS_j = p_j (dP_j - Σ p dP)
    const dp = new Float64Array(S);
    let sum = 0;
    for (let j = 0; j < S; j++) {
      const ko = ((b * Hkv + hk) * S + j) * D;
      for (let d = 0; d < D; d++) dp[j] += dO[qo + d] * v[ko + d];
      sum += p[j] * dp[j];
    }
    for (let j = 0; j < S; j++) {
      const ko = ((b * Hkv + hk) * S + j) * D;
      const ds = p[j] * (dp[j] - sum) * scale;
      for (let d = 0; d < D; d++) {
        dq[qo + d] += ds * k[ko + d];
        dk[ko + d] += ds * q[qo + d];
        dv[ko + d] += p[j] * dO[qo + d];
      }
    }
  }
  return { out, dq, dk, dv };
}
