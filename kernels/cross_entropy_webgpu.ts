/**
 * Softmax cross-entropy programs: one workgroup per logits row, one pass over the row with an
 * online max and sum (no log-softmax, no one-hot is ever stored).
 *
 *   mode 'shifted': rows are the B*T positions of [B, T, V] logits; row (b, t) is scored against
 *                   labels[b, t + 1] (the Hugging Face shift); t = T - 1 and labels outside
 *                   [0, V) (-100) are ignored. Ignored rows read nothing and write zeros.
 *   mode 'rows':    row n is scored against targets[n] (ops.crossEntropy).
 */
import type { KernelProgram } from './runtime.js';

export type CeMode = 'shifted' | 'rows';

/** WGSL that sets `label` (i32, workgroup-uniform; -1 when ignored) for row `row`. */
function labelSnippet(mode: CeMode): string {
  const pick = mode === 'shifted'
    ? `let t = row % uniforms.T;
    var lab = -1;
    if (t + 1u < uniforms.T) { lab = labels[row + 1u]; }`
    : `var lab = labels[row];`;
  return `
  if (lid == 0u) {
    ${pick}
    if (lab < 0 || lab >= i32(uniforms.V)) { lab = -1; }
    rowLabel = lab;
  }
  let label = workgroupUniformLoad(&rowLabel);`;
}

/** Forward over rows: nll[row] = lse - logits[row, label]; lse[row] kept for the backward pass. */
export function ceForwardProgram(mode: CeMode, rows: number, wg: number): KernelProgram {
  return {
    shaderKey: `webtune_ce_fwd_${mode}`,
    variableNames: ['logits', 'labels'],
    outputs: [{ name: 'nll', shape: [rows] }, { name: 'lse', shape: [rows] }],
    uniforms: [['T', 'u32'], ['V', 'u32']],
    workgroupSize: wg,
    workgroups: rows,
    getUserCode: () => `
var<workgroup> rowLabel: i32;
var<workgroup> redM: array<f32, WG>;
var<workgroup> redS: array<f32, WG>;
fn main(row: u32, lid: u32) {
  ${labelSnippet(mode)}
  if (label < 0) {
    if (lid == 0u) { nll[row] = 0.0; lse[row] = 0.0; }
    return;
  }
  let V = uniforms.V;
  let base = row * V;
  // Online softmax statistics of this thread's slice: running max m and sum of exp(x - m).
  var m = -3.0e38;
  var s = 0.0;
  for (var v = lid; v < V; v = v + WG) {
    let x = logits[base + v];
    if (x > m) { s = s * exp(m - x) + 1.0; m = x; } else { s = s + exp(x - m); }
  }
  redM[lid] = m;
  redS[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      let m1 = redM[lid]; let m2 = redM[lid + k];
      let mm = max(m1, m2);
      redS[lid] = redS[lid] * exp(m1 - mm) + redS[lid + k] * exp(m2 - mm);
      redM[lid] = mm;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let l = redM[0] + log(redS[0]);
    lse[row] = l;
    nll[row] = l - logits[base + u32(label)];
  }
}`,
  };
}

/** Per-batch-row sums and counts of the shifted nll, and the mean loss (0 when nothing is trained). */
export function ceReduceProgram(B: number): KernelProgram {
  return {
    shaderKey: 'webtune_ce_reduce',
    variableNames: ['nll', 'labels'],
    outputs: [{ name: 'loss', shape: [] }, { name: 'rowSums', shape: [B] }, { name: 'rowCounts', shape: [B] }],
    uniforms: [['B', 'u32'], ['T', 'u32'], ['V', 'u32']],
    workgroupSize: 64,
    workgroups: 1,
    getUserCode: () => `
var<workgroup> sums: array<f32, WG>;
var<workgroup> counts: array<f32, WG>;
fn main(wg: u32, lid: u32) {
  let T = uniforms.T;
  var mySum = 0.0;
  var myCount = 0.0;
  // One thread per batch row, positions summed in order (deterministic).
  for (var b = lid; b < uniforms.B; b = b + WG) {
    var s = 0.0;
    var c = 0.0;
    for (var t = 0u; t + 1u < T; t = t + 1u) {
      let lab = labels[b * T + t + 1u];
      if (lab >= 0 && lab < i32(uniforms.V)) { s = s + nll[b * T + t]; c = c + 1.0; }
    }
    rowSums[b] = s;
    rowCounts[b] = c;
    mySum = mySum + s;
    myCount = myCount + c;
  }
  sums[lid] = mySum;
  counts[lid] = myCount;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (lid < k) { sums[lid] = sums[lid] + sums[lid + k]; counts[lid] = counts[lid] + counts[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { loss[0] = select(0.0, sums[0] / counts[0], counts[0] > 0.0); }
}`,
  };
}

/**
 * Backward over rows: dlogits[row, v] = (softmax(row)[v] - [v == label]) * g(row), where
 *   shifted: g = dLoss / count + dRowSums[b]   (loss = sum / count, rowSums[b] = sum over row b)
 *   rows:    g = dy[row]
 * Ignored rows only write zeros.
 */
export function ceBackwardProgram(mode: CeMode, rows: number, V: number, wg: number): KernelProgram {
  const scale = mode === 'shifted'
    ? `var count = 0.0;
  for (var b = 0u; b < uniforms.B; b = b + 1u) { count = count + rowCounts[b]; }
  let g = select(0.0, dLoss[0] / count, count > 0.0) + dRowSums[row / uniforms.T];`
    : `let g = dy[row];`;
  return {
    shaderKey: `webtune_ce_bwd_${mode}`,
    variableNames: mode === 'shifted' ? ['logits', 'labels', 'lse', 'rowCounts', 'dLoss', 'dRowSums'] : ['logits', 'labels', 'lse', 'dy'],
    outputs: [{ name: 'dlogits', shape: [rows, V] }],
    uniforms: [['B', 'u32'], ['T', 'u32'], ['V', 'u32']],
    workgroupSize: wg,
    workgroups: rows,
    getUserCode: () => `
var<workgroup> rowLabel: i32;
fn main(row: u32, lid: u32) {
  ${labelSnippet(mode)}
  let V = uniforms.V;
  let base = row * V;
  if (label < 0) {
    for (var v = lid; v < V; v = v + WG) { dlogits[base + v] = 0.0; }
    return;
  }
  ${scale}
  let l = lse[row];
  for (var v = lid; v < V; v = v + WG) {
    var p = exp(logits[base + v] - l);
    if (i32(v) == label) { p = p - 1.0; }
    dlogits[base + v] = p * g;
  }
}`,
  };
}
