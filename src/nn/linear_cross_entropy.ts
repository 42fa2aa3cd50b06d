/**
 * The lm_head and the masked cross-entropy in one op that never holds the logits.
 *
 * A causal LM's loss is usually logits = hidden·Wᵀ [B·T, V] followed by a softmax
 * cross-entropy. With a 49k vocabulary that tensor (and its gradient) is the largest thing in a
 * training step: [1024, 49152] float32 is 201 MB, over WebGPU's usual 128 MiB binding limit. As
 * in Liger Kernel's fused linear cross-entropy and "Cut Your Losses in Large-Vocabulary Language
 * Models" (Wijmans et al. 2024), the rows are taken `chunkRows` at a time:
 *
 *   forward   for each chunk c of rows: logits_c = linear(x_c) [R, V] -> nll_c [R]; logits_c freed
 *   backward  for each chunk c: logits_c recomputed, d nll_c = dy_c, and the gradients of x_c, of
 *             the head's trainable weights (W unless frozen, bias, LoRA A and B) from the chunk's
 *             own small graph; dW accumulated over chunks, dx_c concatenated.
 *
 * So at most one [R, V] logits chunk and its gradient are alive at a time, at the price of one
 * more head matmul per step (the recomputation, as Cut Cross-Entropy does). The per-row nll is
 * the op's only output; the label shift, the mask, the row sums and the mean are plain ops on
 * [B, T] around it, so loss, rowSums and rowCounts follow src/train/loss.ts exactly.
 *
 * The op is built from a `linear` and a `crossEntropy` (the entries of an ops table), so the
 * stock table and the fused one each get their own: makeLinearCrossEntropy(parts).
 */
import * as tf from '@tensorflow/tfjs';
import type { LoraBranch } from './ops.js';
import { vjp } from './checkpoint.js';
import { IGNORE_INDEX } from '../data/labels.js';

/** The head as ops.linear takes it: weight [V, C] (transposeB) or [C, V], optional bias [V] and LoRA branch. */
export interface LinearHead {
  weight: tf.Tensor2D;
  transposeB: boolean;
  bias?: tf.Tensor1D;
  lora?: LoraBranch;   // lora.input [N, C]: x, or x after LoRA dropout
}

export interface LinearCrossEntropyParts {
  linear(x: tf.Tensor2D, weight: tf.Tensor2D, transposeB: boolean, bias?: tf.Tensor1D, lora?: LoraBranch): tf.Tensor2D;
  crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D;
}

export type LinearCrossEntropy = (hidden: tf.Tensor3D, head: LinearHead, labels: tf.Tensor2D, chunkRows: number) =>
  { loss: tf.Scalar; rowSums: tf.Tensor1D; rowCounts: tf.Tensor1D };

/** A variable with trainable false gets no gradient: it is read from the closure, not passed as an input. */
const frozen = (t: tf.Tensor): boolean => t instanceof tf.Variable && !t.trainable;

/**
 * Chunked head + masked cross-entropy (see the file comment). hidden [B, T, C], labels int32
 * [B, T] unshifted with -100 ignored, chunkRows >= 1 rows of B·T per chunk.
 */
export function makeLinearCrossEntropy(parts: LinearCrossEntropyParts): LinearCrossEntropy {
  return (hidden, head, labels, chunkRows) => {
    const [B, T, C] = hidden.shape;
    const N = B * T;
    if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new Error(`linearCrossEntropy: chunkRows must be a positive integer, got ${chunkRows}.`);
    return tf.tidy(() => {
      // targets[t] = labels[t + 1]; the last position predicts nothing (as maskedCrossEntropy).
      const shifted = tf.concat([tf.slice(labels, [0, 1], [B, T - 1]), tf.fill([B, 1], IGNORE_INDEX, 'int32')], 1);   // [B, T]
      const trained = tf.notEqual(shifted, tf.scalar(IGNORE_INDEX, 'int32'));
      const targets = tf.reshape(tf.where(trained, shifted, tf.zerosLike(shifted)), [N]) as tf.Tensor1D;   // any valid id where ignored
      const weights = tf.cast(trained, 'float32') as tf.Tensor2D;                                            // [B, T]
      const x = tf.reshape(hidden, [N, C]) as tf.Tensor2D;
      const nll = chunkedNll(parts, x, head, targets, chunkRows);                                             // [N]
      const perToken = tf.mul(tf.reshape(nll, [B, T]), weights);
      const rowSums = tf.sum(perToken, 1) as tf.Tensor1D;
      const rowCounts = tf.sum(weights, 1) as tf.Tensor1D;
      const loss = tf.div(tf.sum(rowSums), tf.maximum(tf.sum(rowCounts), 1)) as tf.Scalar;
      return { loss, rowSums, rowCounts };
    });
  };
}

/** nll [N] = crossEntropy(linear(x), targets), differentiable in x and the head's trainable tensors. */
function chunkedNll(parts: LinearCrossEntropyParts, x: tf.Tensor2D, head: LinearHead, targets: tf.Tensor1D, chunkRows: number): tf.Tensor1D {
  const N = x.shape[0];
  const lora = head.lora;
  const separateLoraInput = !!lora && lora.input !== x;
  // The inputs tfjs differentiates: x, then whichever of these are not frozen.
  const named: Array<[string, tf.Tensor]> = [['x', x]];
  if (separateLoraInput) named.push(['loraInput', lora!.input]);
  if (!frozen(head.weight)) named.push(['weight', head.weight]);
  if (head.bias && !frozen(head.bias)) named.push(['bias', head.bias]);
  if (lora && !frozen(lora.A)) named.push(['A', lora.A]);
  if (lora && !frozen(lora.B)) named.push(['B', lora.B]);

  /** nll of rows [start, start + R) given the (possibly substituted) tensors. */
  const chunk = (t: Map<string, tf.Tensor>, xc: tf.Tensor2D, lc: tf.Tensor2D | undefined, tc: tf.Tensor1D): tf.Tensor1D => {
    const w = (t.get('weight') ?? head.weight) as tf.Tensor2D;
    const b = (t.get('bias') ?? head.bias) as tf.Tensor1D | undefined;
    const branch: LoraBranch | undefined = lora && {
      A: (t.get('A') ?? lora.A) as tf.Tensor2D, B: (t.get('B') ?? lora.B) as tf.Tensor2D, scaling: lora.scaling, input: lc ?? xc,
    };
    return parts.crossEntropy(parts.linear(xc, w, head.transposeB, b, branch), tc);    // logits_c [R, V] -> [R]
  };
  const starts: number[] = [];
  for (let s = 0; s < N; s += chunkRows) starts.push(s);
  const rowsOf = (s: number) => Math.min(chunkRows, N - s);

  const headNames = named.map(([name]) => name).filter((name) => name !== 'x' && name !== 'loraInput');

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const op = tf.customGrad(((...args: any[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const given = new Map(named.map(([name], i) => [name, args[i] as tf.Tensor]));
    const xi = given.get('x') as tf.Tensor2D;
    const li = given.get('loraInput') as tf.Tensor2D | undefined;
    // Tensors made inside the caller's forward are freed after it unless saved: all the backward reads again.
    save([targets, ...named.map((_, i) => args[i] as tf.Tensor)]);
    const rows = (t: tf.Tensor, s: number) => tf.slice(t, s, rowsOf(s)) as never;   // rows [s, s + R) of a [N] or [N, C] tensor
    const value = tf.concat(starts.map((s) => tf.tidy(() => chunk(given, rows(xi, s), li && rows(li, s), rows(targets, s)))));   // [N]
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const ts = saved[0] as tf.Tensor1D;
        const kept = new Map(named.map(([name], i) => [name, saved[i + 1]]));
        const xs = kept.get('x') as tf.Tensor2D, ls = kept.get('loraInput') as tf.Tensor2D | undefined;
        const sums = new Map<string, tf.Tensor>();            // gradients of the head's tensors, summed over chunks
        const dxs: tf.Tensor[] = [], dls: tf.Tensor[] = [];
        for (const s of starts) {
          const xc: tf.Tensor2D = rows(xs, s), lc: tf.Tensor2D | undefined = ls && rows(ls, s);
          const tc: tf.Tensor1D = rows(ts, s), dyc: tf.Tensor = rows(dy, s);
          const wrt = [xc, ...(lc ? [lc] : []), ...headNames.map((name) => kept.get(name)!)];
          // The chunk's own graph: logits_c [R, V] recomputed, then its gradients with dy_c upstream.
          const grads = vjp(() => chunk(kept, xc, lc, tc), wrt, dyc) as tf.Tensor[];
          dxs.push(grads[0]);
          if (lc) dls.push(grads[1]);
          headNames.forEach((name, k) => {
            const g = grads[(lc ? 2 : 1) + k];
            const prev = sums.get(name);
            if (prev) { sums.set(name, tf.add(prev, g)); prev.dispose(); g.dispose(); } else sums.set(name, g);
          });
          tf.dispose([xc, tc, dyc, ...(lc ? [lc] : [])]);
        }
        const join = (ts: tf.Tensor[]) => { if (ts.length === 1) return ts[0]; const j = tf.concat(ts); tf.dispose(ts); return j; };
        const out: tf.Tensor[] = [join(dxs)];                    // dx [N, C]
        if (separateLoraInput) out.push(join(dls));             // d loraInput [N, C]
        for (const name of headNames) out.push(sums.get(name)!);
        return out;
      },
    };
  }) as any);
  return op(...named.map(([, t]) => t)) as tf.Tensor1D;
}

/**
 * Rows per chunk for N rows over a vocabulary of V: as few chunks as keep one chunk's logits
 * [R, V] float32 within `budgetBytes`, of balanced size. At least 1.
 */
export function logitsChunkRows(N: number, V: number, budgetBytes: number): number {
  const most = Math.max(1, Math.floor(budgetBytes / (V * 4)));
  return Math.ceil(N / Math.ceil(N / most));
}
