/**
 * Float64 CPU reference of the masked (shifted) softmax cross-entropy and its gradient, the
 * specification the WebGPU kernel is tested against.
 */

export interface MaskedCeReference {
  loss: number;
  rowSums: Float64Array;   // [B]
  rowCounts: Float64Array; // [B]
  /** d loss / d logits, [B*T*V] (of `loss` alone, i.e. dLoss = 1, dRowSums = 0 unless given). */
  dlogits: Float64Array;
}

/**
 * logits [B*T*V] row-major, labels [B*T] (-100 or any value outside [0, V) = ignored).
 * Position (b, t) is scored against labels[b, t + 1]. loss = sum / count (0 when count is 0).
 * Upstream gradients dLoss (scalar) and dRowSums ([B]) default to 1 and 0.
 */
export function maskedCrossEntropyRef(
  logits: ArrayLike<number>, labels: ArrayLike<number>, B: number, T: number, V: number,
  dLoss = 1, dRowSums?: ArrayLike<number>,
): MaskedCeReference {
  const rowSums = new Float64Array(B);
  const rowCounts = new Float64Array(B);
  const lse = new Float64Array(B * T);
  const target = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const lab = labels[b * T + t + 1];
      if (!(lab >= 0 && lab < V)) continue;
      const base = (b * T + t) * V;
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, logits[base + v]);
      let s = 0;
      for (let v = 0; v < V; v++) s += Math.exp(logits[base + v] - m);
      lse[b * T + t] = m + Math.log(s);
      target[b * T + t] = lab;
      rowSums[b] += lse[b * T + t] - logits[base + lab];
      rowCounts[b] += 1;
    }
  }
  let sum = 0, count = 0;
  for (let b = 0; b < B; b++) { sum += rowSums[b]; count += rowCounts[b]; }
  const loss = count > 0 ? sum / count : 0;
  const dlogits = new Float64Array(B * T * V);
  for (let r = 0; r < B * T; r++) {
    const lab = target[r];
    if (lab < 0) continue;
    const g = (count > 0 ? dLoss / count : 0) + (dRowSums ? dRowSums[Math.floor(r / T)] : 0);
    for (let v = 0; v < V; v++) {
      dlogits[r * V + v] = (Math.exp(logits[r * V + v] - lse[r]) - (v === lab ? 1 : 0)) * g;
    }
  }
  return { loss, rowSums, rowCounts, dlogits };
}

/** Per-row cross-entropy -log softmax(logits[n])[targets[n]] and its gradient for upstream dy. */
export function rowCrossEntropyRef(logits: ArrayLike<number>, targets: ArrayLike<number>, N: number, V: number, dy?: ArrayLike<number>): { nll: Float64Array; dlogits: Float64Array } {
  const nll = new Float64Array(N);
  const dlogits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const base = n * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[base + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[base + v] - m);
    const l = m + Math.log(s);
    nll[n] = l - logits[base + targets[n]];
    const g = dy ? dy[n] : 1;
    for (let v = 0; v < V; v++) dlogits[base + v] = (Math.exp(logits[base + v] - l) - (v === targets[n] ? 1 : 0)) * g;
  }
  return { nll, dlogits };
}
