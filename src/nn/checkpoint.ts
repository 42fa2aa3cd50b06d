/**
 * Gradient checkpointing (activation recomputation, Chen et al. 2016; transformers'
 * gradient_checkpointing): a block's forward keeps only its input; the backward pass runs the
 * block's forward again under its own tape and takes the gradients from there.
 *
 *   forward   y = fn(x)                   nothing fn makes inside is recorded (only x and y live on)
 *   backward  dx, dθ = vjp(fn, x, θ)(dy)  fn(x) recomputed, then differentiated with dy upstream
 *
 * θ are the trainable variables fn reads (the block's weights, LoRA adapters); they are given to
 * checkpoint() so tfjs routes their gradients through this op. With deterministic randomness
 * (LoRA dropout seeded per step and module) the recomputation is the same forward, so the
 * gradients equal those of the plain forward.
 *
 * @example
 *   const y = checkpoint((xi, [mask]) => block(xi, mask), x, [mask], blockVariables);   // [B, T, C] -> [B, T, C]
 */
import * as tf from '@tensorflow/tfjs';
import type { Linear } from './linear.js';

/**
 * Gradients of f at xs with `dy` upstream, taken while tfjs is running an outer backward pass
 * (from a tf.customGrad gradient function). tfjs 4.22 keeps one tape in its engine state: a
 * nested engine.gradients() starts a fresh one and, when it ends at depth 0, sets the state's
 * tape to null, which the outer gradients() still reads to free its saved tensors. So the outer
 * tape is put back afterwards. Returns one gradient per x (null where f does not use it); f's
 * value is disposed.
 */
export function vjp(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): Array<tf.Tensor | null> {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const outer = state.activeTape;
  try {
    const { value, grads } = tf.engine().gradients(f, xs, dy, true);
    value.dispose();
    return grads as Array<tf.Tensor | null>;
  } finally {
    state.activeTape = outer;
  }
}

/**
 * fn(x, context) with only x and `context` kept for the backward pass. `context` holds the other
 * tensors fn reads (masks, rotary tables): tensors made in the caller's forward are freed when it
 * ends, so fn must read them from its argument (their saved copies in the backward pass), never
 * from a closure. `variables` are the weights fn reads; the trainable ones get gradients.
 */
export function checkpoint(fn: (x: tf.Tensor, context: tf.Tensor[]) => tf.Tensor, x: tf.Tensor, context: tf.Tensor[], variables: tf.Variable[]): tf.Tensor {
  const trainable = variables.filter((v) => v.trainable);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const op = tf.customGrad(((...args: any[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const xi = args[0] as tf.Tensor;
    save([xi, ...context]);
    return {
      value: fn(xi, context),
      gradFunc: (dy: tf.Tensor, [xs, ...kept]: tf.Tensor[]) => {
        // A variable fn does not read (allowed) gets a zero gradient.
        return vjp(() => fn(xs, kept), [xs, ...trainable], dy).map((g, i) => g ?? tf.zerosLike(i === 0 ? xs : trainable[i - 1]));
      },
    };
  }) as any);
  return op(x, ...trainable) as tf.Tensor;
}

/**
 * Every variable under the module path `prefix` ('model.layers.3'): its parameters by HF name,
 * and its linears' weights, biases and LoRA adapters (which may be attached after the model was built).
 */
export function moduleVariables(prefix: string, params: Map<string, tf.Variable>, linears: Map<string, Linear>): tf.Variable[] {
  const out = new Set<tf.Variable>();
  const under = (name: string) => name.startsWith(`${prefix}.`);
  for (const [name, v] of params) if (under(name)) out.add(v);
  for (const [name, lin] of linears) {
    if (!under(name)) continue;
    out.add(lin.weight);
    if (lin.bias) out.add(lin.bias);
    if (lin.lora) { out.add(lin.lora.A); out.add(lin.lora.B); }
  }
  return [...out];
}
