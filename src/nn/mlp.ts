/** The feed-forward halves of the blocks: GPT-2 (GELU) and Llama (SwiGLU). */
import * as tf from '@tensorflow/tfjs';
import type { LayerContext } from './ops.js';
import type { Linear } from './linear.js';

/** c_proj(gelu(c_fc(x))). x [B, T, C] -> [B, T, C] through [B, T, n_inner]. */
export class GPT2MLP {
  constructor(readonly cFc: Linear, readonly cProj: Linear, readonly approximate: 'tanh' | 'erf') {}
  apply(x: tf.Tensor, run: LayerContext): tf.Tensor {
    return tf.tidy(() => {
      const fc = this.cFc, ops = run.ops;
      // Without a LoRA branch, the bias add goes into the activation (one fused op where the
      // ops table has one): Linear.apply's ops.linear without the bias, then gelu(xW + b).
      const h = fc.bias && !fc.lora
        ? ops.biasGelu(tf.reshape(ops.linear(tf.reshape(x, [-1, fc.inFeatures]) as tf.Tensor2D, fc.weight as tf.Tensor2D, fc.layout === 'out_in'), [...x.shape.slice(0, -1), fc.outFeatures]),
          fc.bias as tf.Tensor1D, this.approximate)
        : ops.gelu(fc.apply(x, run), this.approximate);
      return this.cProj.apply(h, run);
    });
  }
}

/** down_proj(silu(gate_proj(x)) * up_proj(x)). x [B, T, C] -> [B, T, C] through [B, T, intermediate]. */
export class LlamaMLP {
  constructor(readonly gate: Linear, readonly up: Linear, readonly down: Linear) {}
  apply(x: tf.Tensor, run: LayerContext): tf.Tensor {
    return tf.tidy(() => this.down.apply(run.ops.swiglu(this.gate.apply(x, run), this.up.apply(x, run)), run));
  }
}
