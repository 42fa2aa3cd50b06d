/** The feed-forward halves of the blocks: GPT-2 (GELU) and Llama (SwiGLU). */
import * as tf from '@tensorflow/tfjs';
import { ops } from './ops.js';
import type { Linear } from './linear.js';

/** c_proj(gelu(c_fc(x))). x [B, T, C] -> [B, T, C] through [B, T, n_inner]. */
export class GPT2MLP {
  constructor(readonly cFc: Linear, readonly cProj: Linear, readonly approximate: 'tanh' | 'erf') {}
  apply(x: tf.Tensor, training = false, seed?: number): tf.Tensor {
    return tf.tidy(() => this.cProj.apply(ops.gelu(this.cFc.apply(x, training, seed), this.approximate), training, seed));
  }
}

/** down_proj(silu(gate_proj(x)) * up_proj(x)). x [B, T, C] -> [B, T, C] through [B, T, intermediate]. */
export class LlamaMLP {
  constructor(readonly gate: Linear, readonly up: Linear, readonly down: Linear) {}
  apply(x: tf.Tensor, training = false, seed?: number): tf.Tensor {
    return tf.tidy(() => this.down.apply(ops.swiglu(this.gate.apply(x, training, seed), this.up.apply(x, training, seed)), training, seed));
  }
}
