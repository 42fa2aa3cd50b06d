/** Float64 CPU references of the matrix products (kernels/matmul.ts) and of a linear layer with LoRA (kernels/linear.ts). */

/** C [M, N] = op(A) · op(B) (+ bias [N]); A is [M, K] or, transposed, [K, M]; B is [K, N] or, transposed, [N, K]. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number,
  transposeA: boolean, transposeB: boolean, bias?: ArrayLike<number>): Float64Array {
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let s = bias ? bias[n] : 0;
    for (let k = 0; k < K; k++) s += (transposeA ? a[k * M + m] : a[m * K + k]) * (transposeB ? b[n * K + k] : b[k * N + n]);
    c[m * N + n] = s;
  }
  return c;
}

/** The sum of each column of x [rows, cols]: [cols] (a bias gradient). */
export function columnSumRef(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c] += x[r * cols + c];
  return out;
}

/**
 * y [N, out] = x [N, in] · W (+ b) (+ scaling · (input · Aᵀ) · Bᵀ with LoRA A [r, in], B [out, r]);
 * W is [in, out] ('in_out', GPT-2's Conv1D) or [out, in] ('out_in', nn.Linear).
 */
export function linearRef(x: ArrayLike<number>, N: number, inF: number, outF: number, W: ArrayLike<number>, layout: 'in_out' | 'out_in',
  b?: ArrayLike<number>, lora?: { A: ArrayLike<number>; B: ArrayLike<number>; r: number; scaling: number; input?: ArrayLike<number> }): Float64Array {
  const y = matmulRef(x, W, N, inF, outF, false, layout === 'out_in', b);
  if (!lora) return y;
  const xa = matmulRef(lora.input ?? x, lora.A, N, inF, lora.r, false, true);     // [N, r]
  const xab = matmulRef(xa, lora.B, N, lora.r, outF, false, true);               // [N, out]
  for (let i = 0; i < y.length; i++) y[i] += lora.scaling * xab[i];
  return y;
}
