/** Float64 CPU references of LayerNorm / RMSNorm over the last axis, forward and backward. */

export interface NormRefResult {
  y: Float64Array;
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;   // zeros for RMS
}

/** x [rows*C], gamma/beta [C], dy [rows*C]. kind 'layer' centres; 'rms' does not and has no beta. */
export function normRef(kind: 'layer' | 'rms', x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number> | null,
  dy: ArrayLike<number>, rows: number, C: number, eps: number): NormRefResult {
  const y = new Float64Array(rows * C), dx = new Float64Array(rows * C);
  const dgamma = new Float64Array(C), dbeta = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let mean = 0;
    if (kind === 'layer') { for (let c = 0; c < C; c++) mean += x[o + c]; mean /= C; }
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[o + c] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / C + eps);
    let sg = 0, sgx = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (x[o + c] - mean) * rstd;
      y[o + c] = xhat * gamma[c] + (beta ? beta[c] : 0);
      const g = dy[o + c] * gamma[c];
      sg += g; sgx += g * xhat;
      dgamma[c] += dy[o + c] * xhat;
      dbeta[c] += dy[o + c];
    }
    for (let c = 0; c < C; c++) {
      const xhat = (x[o + c] - mean) * rstd;
      const g = dy[o + c] * gamma[c];
      dx[o + c] = rstd * (g - (kind === 'layer' ? sg / C : 0) - xhat * sgx / C);
    }
  }
  return { y, dx, dgamma, dbeta: kind === 'layer' ? dbeta : new Float64Array(C) };
}
