/** Token (and GPT-2 position) embeddings: a lookup table [num, dim]. */
import * as tf from '@tensorflow/tfjs';
import { sameShape } from './linear.js';

export class Embedding {
  constructor(
    readonly name: string,          // HF module path, e.g. 'transformer.wte'
    readonly num: number,           // rows (vocab size or positions)
    readonly dim: number,           // C
    public weight: tf.Variable,     // [num, dim]
  ) {
    if (!sameShape(weight.shape, [num, dim])) throw new Error(`${name}.weight: expected shape [${num},${dim}], got [${weight.shape}].`);
  }

  /** ids int32 [...] -> [..., dim]. Out-of-range ids are the caller's error (checked on the host by CausalLM.forward). */
  apply(ids: tf.Tensor): tf.Tensor {
    return tf.gather(this.weight, ids);
  }
}
