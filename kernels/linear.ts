/**
 * ops.linear on the fused path: the matmuls of kernels/matmul.ts (no transpose materialised,
 * the bias added in the same dispatch) and fewer [N, out] tensors alive during a step.
 *
 * Every tensor made in the forward of a step stays alive until its backward has run (the tape
 * holds it), so the peak memory of a step is mostly the sum of the forward's intermediates. The
 * stock entry makes two [N, out] tensors per linear (matMul, bias add) and three more with LoRA
 * (the branch's matMul, its scaling, the sum). Here each linear is one tf.customGrad op whose
 * forward keeps only its output (and, with LoRA, the rank-r activation [N, r]):
 *
 *   y = x·op(W) + b                          gradients of x, and of W and b unless frozen
 *   y = x·op(W) + b + s·(input·Aᵀ)·Bᵀ        LoRA over a frozen base (the usual case): gradients
 *                                            of x (and the dropped-out input), A and B only;
 *                                            no gradient of W ([in, out] over all N rows) is made.
 *   LoRA with a trainable base (rare): the stock entry.
 *
 * Frozen = a tf.Variable with trainable false; a frozen W or bias is read from the closure, not
 * passed as an input, so tfjs never asks for its gradient. Off WebGPU the same math runs on
 * tf.matMul (kernels/matmul.ts falls back by itself).
 */
import * as tf from '@tensorflow/tfjs';
import { stockOps, type LoraBranch } from '../src/nn/ops.js';
import { matmul2d, columnSum } from './matmul.js';

const frozen = (t?: tf.Tensor): boolean => !t || (t instanceof tf.Variable && !t.trainable);

/** dL/dW of y = x·op(W): op(W) = W -> xᵀ·dy [in, out]; op(W) = Wᵀ -> dyᵀ·x [out, in]. */
function weightGrad(x: tf.Tensor2D, dy: tf.Tensor2D, transposeB: boolean): tf.Tensor2D {
  return transposeB ? matmul2d(dy, x, true, false) : matmul2d(x, dy, true, false);
}

/** ops.linear: x [N, in] -> [N, out]. */
export function fusedLinear(x: tf.Tensor2D, weight: tf.Tensor2D, transposeB: boolean, bias?: tf.Tensor1D, lora?: LoraBranch): tf.Tensor2D {
  if (lora) return loraLinear(x, weight, transposeB, bias, lora);
  const wIn = !frozen(weight), bIn = !!bias && !frozen(bias);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const op = tf.customGrad(((...args: any[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xi = args[0] as tf.Tensor2D;
    const w = (wIn ? args[1] : weight) as tf.Tensor2D;
    save([xi, w]);
    return {
      value: matmul2d(xi, w, false, transposeB, bias),                                   // [N, out]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as tf.Tensor2D[];
        const d = dy as tf.Tensor2D;
        const grads: tf.Tensor[] = [matmul2d(d, ws, false, !transposeB)];                // dx [N, in]
        if (wIn) grads.push(weightGrad(xs, d, transposeB));
        if (bIn) grads.push(columnSum(d));                                                 // db [out]
        return grads;
      },
    };
  }) as any);
  const inputs: tf.Tensor[] = [x];
  if (wIn) inputs.push(weight);
  if (bIn) inputs.push(bias!);
  return op(...inputs) as tf.Tensor2D;
}

function loraLinear(x: tf.Tensor2D, weight: tf.Tensor2D, transposeB: boolean, bias: tf.Tensor1D | undefined, lora: LoraBranch): tf.Tensor2D {
  if (!frozen(weight) || !frozen(bias)) return stockOps.linear(x, weight, transposeB, bias, lora);
  const { scaling } = lora;
  const sameInput = lora.input === x;
  // Inputs: x (and the dropped-out input when it differs), A, B.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const op = tf.customGrad(((...args: any[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xi, inp, A, B] = (sameInput ? [args[0], args[0], args[1], args[2]] : args) as tf.Tensor2D[];
    const low = tf.tidy(() => tf.mul(matmul2d(inp, A, false, true), scaling)) as tf.Tensor2D;   // [N, r], scaled
    const y = tf.tidy(() => tf.add(matmul2d(xi, weight, false, transposeB, bias), matmul2d(low, B, false, true)));   // [N, out]
    save([inp, A, B, low]);
    return {
      value: y,
      // tfjs calls a custom gradFunc outside any tidy scope: without this tidy, dLow, dBase and
      // dInp would stay alive until the whole backward pass ends.
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => {
        const [i2, a, b, lo] = saved as tf.Tensor2D[];
        const d = dy as tf.Tensor2D;
        const dLow = tf.mul(matmul2d(d, b, false, false), scaling) as tf.Tensor2D;         // [N, r] (of the unscaled low)
        const dBase = matmul2d(d, weight, false, !transposeB);                             // [N, in]
        const dInp = matmul2d(dLow, a, false, false);                                       // [N, in]
        const dA = matmul2d(dLow, i2, true, false);                                         // [r, in]
        const dB = matmul2d(d, lo, true, false);                                            // [out, r]
        return sameInput ? [tf.add(dBase, dInp), dA, dB] : [dBase, dInp, dA, dB];
      }),
    };
  }) as any);
  return (sameInput ? op(x, lora.A, lora.B) : op(x, lora.input, lora.A, lora.B)) as tf.Tensor2D;
}
