/**
 * A linear layer that knows its Hugging Face module path and weight layout, with an optional
 * LoRA branch.
 *
 *   y = x·W (+ b)                                         GPT-2 Conv1D, weight [in, out]  ('in_out')
 *   y = x·Wᵀ (+ b)                                        nn.Linear,    weight [out, in]  ('out_in')
 *   y += scaling · dropout(x)·Aᵀ·Bᵀ                       when `lora` is set (A [r, in], B [out, r])
 *
 * @example
 *   const lin = new Linear({ name: 'lm_head', inFeatures: 4, outFeatures: 2, layout: 'out_in', weight: tf.variable(tf.ones([2, 4])) });
 *   lin.apply(tf.ones([1, 4]), { ops: stockOps }).print();   // [[4, 4]]
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from './init.js';
import type { LayerContext, LoraBranch } from './ops.js';

export type LinearLayout = 'in_out' | 'out_in';

/** A LoRA adapter on one Linear (PEFT layout and scaling). */
export interface LoraWeights {
  A: tf.Variable;       // [r, in]  (PEFT lora_A.weight)
  B: tf.Variable;       // [out, r] (PEFT lora_B.weight)
  scaling: number;      // alpha / r (alpha / sqrt(r) with rsLoRA)
  dropout: number;      // probability, applied to the branch's input in training only
}

export interface LinearInit {
  name: string;
  inFeatures: number;
  outFeatures: number;
  layout: LinearLayout;
  weight: tf.Variable;
  bias?: tf.Variable;
}

export class Linear {
  /** HF module path, e.g. 'transformer.h.0.attn.c_attn' or 'model.layers.0.self_attn.q_proj'. */
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly layout: LinearLayout;
  weight: tf.Variable;
  bias?: tf.Variable;
  lora?: LoraWeights;

  constructor(init: LinearInit) {
    this.name = init.name;
    this.inFeatures = init.inFeatures;
    this.outFeatures = init.outFeatures;
    this.layout = init.layout;
    this.weight = init.weight;
    this.bias = init.bias;
    const want = this.weightShape();
    if (!sameShape(init.weight.shape, want)) throw new Error(`${this.name}.weight: expected shape [${want}], got [${init.weight.shape}].`);
    if (init.bias && !sameShape(init.bias.shape, [this.outFeatures])) throw new Error(`${this.name}.bias: expected shape [${this.outFeatures}], got [${init.bias.shape}].`);
  }

  /** The weight shape this layout stores: [in, out] for Conv1D, [out, in] for nn.Linear. */
  weightShape(): [number, number] {
    return this.layout === 'in_out' ? [this.inFeatures, this.outFeatures] : [this.outFeatures, this.inFeatures];
  }

  /**
   * x [..., in] -> [..., out] through run.ops.linear. `run.training` turns on LoRA dropout;
   * `run.seed` makes that dropout reproducible (each module derives its own stream from it and its name).
   */
  apply(x: tf.Tensor, run: LayerContext): tf.Tensor {
    const { training = false, seed } = run;
    return tf.tidy(() => {
      const lead = x.shape.slice(0, -1);
      const x2 = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;                    // [N, in]
      const y = run.ops.linear(x2, this.weight as tf.Tensor2D, this.layout === 'out_in', this.bias as tf.Tensor1D | undefined, this.loraBranch(x2, training, seed));   // [N, out]
      return tf.reshape(y, [...lead, this.outFeatures]);
    });
  }

  /** The LoRA branch ops.linear adds for rows x2 [N, in] (its input after dropout in training), or undefined without LoRA. */
  loraBranch(x2: tf.Tensor2D, training = false, seed?: number): LoraBranch | undefined {
    if (!this.lora) return undefined;
    const { A, B, scaling, dropout } = this.lora;
    const input = training && dropout > 0
      ? tf.dropout(x2, dropout, undefined, seed === undefined ? undefined : deriveSeed(seed, this.name)) as tf.Tensor2D
      : x2;
    return { A: A as tf.Tensor2D, B: B as tf.Tensor2D, scaling, input };
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
