/**
 * Fused GELU (tanh approximation; with the bias add folded in when given) and SwiGLU:
 * registrations and ops. fusedGelu has ops.gelu's signature ('erf' runs the stock
 * composition: WGSL has no erf), fusedSwiglu has ops.swiglu's.
 *
 * @example
 *   const h = fusedBiasGelu(xW, bias);   // gelu_new(xW + bias), [..., C]
 */
import * as tf from '@tensorflow/tfjs';
import { geluBackwardProgram, geluForwardProgram, swigluBackwardProgram, swigluForwardProgram } from './activations_webgpu.js';
import { defineKernel, fusedKernelsAvailable, runFused } from './registry.js';
import { run, runProgram } from './runtime.js';

const GELU = 'WebTuneGelu';
const BIAS_GELU = 'WebTuneBiasGelu';
const SWIGLU = 'WebTuneSwiglu';

for (const bias of [false, true]) {
  const kernelName = bias ? BIAS_GELU : GELU;
  defineKernel({
    kernel: {
      kernelName,
      backendName: 'webgpu',
      kernelFunc: ({ inputs }) => {
        const x = inputs.x as tf.TensorInfo;
        const C = x.shape[x.shape.length - 1];
        return runProgram(geluForwardProgram(bias, x.shape), bias ? [x, inputs.bias as tf.TensorInfo] : [x], [tf.util.sizeFromShape(x.shape), C]);
      },
    },
    gradient: {
      kernelName,
      inputsToSave: bias ? ['x', 'bias'] : ['x'],
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [x, b] = saved;
        const C = x.shape[x.shape.length - 1];
        const prog = geluBackwardProgram(bias, x.shape);
        const [dx, db] = run(prog, bias ? [x, b, dy as tf.Tensor] : [x, dy as tf.Tensor], [x.size, C, Math.ceil(x.size / 256)]);
        const out: Record<string, () => tf.Tensor> = { x: () => dx };
        if (bias) out.bias = () => db;
        return out;
      },
    },
  });
}

defineKernel({
  kernel: {
    kernelName: SWIGLU,
    backendName: 'webgpu',
    kernelFunc: ({ inputs }) => {
      const { gate, up } = inputs as Record<string, tf.TensorInfo>;
      return runProgram(swigluForwardProgram(gate.shape), [gate, up], [tf.util.sizeFromShape(gate.shape)]);
    },
  },
  gradient: {
    kernelName: SWIGLU,
    inputsToSave: ['gate', 'up'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [gate, up] = saved;
      const [dgate, dup] = run(swigluBackwardProgram(gate.shape), [gate, up, dy as tf.Tensor], [gate.size]);
      return { gate: () => dgate, up: () => dup };
    },
  },
});

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Stock composition of GELU (both approximations). */
export function stockGelu(x: tf.Tensor, approximate: 'tanh' | 'erf'): tf.Tensor {
  return tf.tidy(() => {
    if (approximate === 'erf') return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  });
}

export function stockSwiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up));
}

function useFused(x: tf.Tensor): boolean {
  return fusedKernelsAvailable() && x.size > 0 && x.dtype === 'float32';
}

/** GELU; 'tanh' runs fused on WebGPU. */
export function fusedGelu(x: tf.Tensor, approximate: 'tanh' | 'erf'): tf.Tensor {
  if (approximate !== 'tanh' || !useFused(x)) return stockGelu(x, approximate);
  return runFused(GELU, { x })[0];
}

/** gelu_tanh(x + bias), bias [C] over the last axis; one dispatch each way (dbias included). */
export function fusedBiasGelu(x: tf.Tensor, bias: tf.Tensor1D): tf.Tensor {
  if (!useFused(x)) return tf.tidy(() => stockGelu(tf.add(x, bias), 'tanh'));
  if (bias.shape[0] !== x.shape[x.rank - 1]) throw new Error(`fusedBiasGelu: bias [${bias.shape}] does not match the last axis of x [${x.shape}]`);
  return runFused(BIAS_GELU, { x, bias })[0];
}

/** silu(gate) * up. */
export function fusedSwiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (!useFused(gate) || !tf.util.arraysEqual(gate.shape, up.shape)) return stockSwiglu(gate, up);
  return runFused(SWIGLU, { gate, up })[0];
}
