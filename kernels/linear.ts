/**
 * ops.linear with fewer [N, out] tensors alive during a training step.
 *
 * Every tensor made in the forward of a step stays alive until its backward has run (the tape
 * holds it), so the peak memory of a step is mostly the sum of the forward's intermediates. The
 * stock entry makes two [N, out] tensors per linear (matMul, bias add) and three more with LoRA
 * (the branch's matMul, its scaling, the sum).
 *
 *   no LoRA:   tf.fused.matMul with the bias: one [N, out] tensor, one dispatch fewer; gradients
 *              of x, W and the bias are tfjs's own.
 *   LoRA over a frozen base (the usual case): one tf.customGrad op whose forward keeps only its
 *              output [N, out] and the low-rank activation [N, r]; its backward returns the
 *              gradients of x, A and B only. The frozen W and bias are not inputs of the op, so no
 *              gradient of W ([in, out], a matmul over all N rows) is ever computed.
 *   LoRA with a trainable base (rare): the stock entry.
 *
 * Same math as the stock entry: x·W + b + scaling·(input·Aᵀ)·Bᵀ, in float32.
 */
import * as tf from '@tensorflow/tfjs';
import { stockOps, type LoraBranch } from '../src/nn/ops.js';

/** ops.linear: x [N, in] -> [N, out]. */
export function fusedLinear(x: tf.Tensor2D, weight: tf.Tensor2D, transposeB: boolean, bias?: tf.Tensor1D, lora?: LoraBranch): tf.Tensor2D {
  if (!lora) return tf.fused.matMul({ a: x, b: weight, transposeB, bias }) as tf.Tensor2D;
  const frozen = (t?: tf.Tensor) => !t || (t instanceof tf.Variable && !t.trainable);
  if (!frozen(weight) || !frozen(bias)) return stockOps.linear(x, weight, transposeB, bias, lora);
  const { scaling } = lora;
  const sameInput = lora.input === x;
  // Inputs: x (and the dropped-out input when it differs), A, B. W and the bias are read from the closure.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const op = tf.customGrad(((...args: any[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xi, inp, A, B] = sameInput ? [args[0], args[0], args[1], args[2]] : args as tf.Tensor2D[];
    const low = tf.mul(tf.matMul(inp, A, false, true), scaling);                         // [N, r], scaled
    const base = tf.fused.matMul({ a: xi, b: weight, transposeB, bias });               // [N, out]
    const y = tf.fused.matMul({ a: low, b: B, transposeB: true, bias: base });            // [N, out]
    save([inp, A, B, low]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [i2, a, b, lo] = saved as tf.Tensor2D[];
        const dLow = tf.mul(tf.matMul(dy as tf.Tensor2D, b), scaling);                    // [N, r]
        const dBase = tf.matMul(dy as tf.Tensor2D, weight, false, !transposeB);           // [N, in]
        const dInp = tf.matMul(dLow, a);                                                   // [N, in]
        const dA = tf.matMul(dLow, i2, true, false);                                       // [r, in]
        const dB = tf.matMul(dy as tf.Tensor2D, lo, true, false);                          // [out, r]
        return sameInput ? [tf.add(dBase, dInp), dA, dB] : [dBase, dInp, dA, dB];
      },
    };
  }) as any);
  return (sameInput ? op(x, lora.A, lora.B) : op(x, lora.input, lora.A, lora.B)) as tf.Tensor2D;
}
