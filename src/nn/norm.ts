/** LayerNorm (GPT-2) and RMSNorm (Llama), both through the engine's ops table. */
import * as tf from '@tensorflow/tfjs';
import type { LayerContext } from './ops.js';

export class LayerNorm {
  constructor(readonly name: string, public weight: tf.Variable /* [C] */, public bias: tf.Variable /* [C] */, readonly eps: number) {}
  apply(x: tf.Tensor, run: LayerContext): tf.Tensor {
    return run.ops.layerNorm(x, this.weight as tf.Tensor1D, this.bias as tf.Tensor1D, this.eps);
  }
  /** sum = x + residual and y = LayerNorm(sum) (one fused op where the ops table has one). */
  applyAdd(x: tf.Tensor, residual: tf.Tensor, run: LayerContext): { sum: tf.Tensor; y: tf.Tensor } {
    return run.ops.addLayerNorm(x, residual, this.weight as tf.Tensor1D, this.bias as tf.Tensor1D, this.eps);
  }
}

export class RMSNorm {
  constructor(readonly name: string, public weight: tf.Variable /* [C] */, readonly eps: number) {}
  apply(x: tf.Tensor, run: LayerContext): tf.Tensor {
    return run.ops.rmsNorm(x, this.weight as tf.Tensor1D, this.eps);
  }
  /** sum = x + residual and y = RMSNorm(sum). */
  applyAdd(x: tf.Tensor, residual: tf.Tensor, run: LayerContext): { sum: tf.Tensor; y: tf.Tensor } {
    return run.ops.addRmsNorm(x, residual, this.weight as tf.Tensor1D, this.eps);
  }
}
