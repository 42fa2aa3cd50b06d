/**
 * Elementwise activation programs: GELU (tanh approximation, optionally with the bias add fused
 * in) and SwiGLU, one dispatch each way.
 *
 *   gelu(z) = 0.5 z (1 + tanh(c (z + 0.044715 z^3))), c = sqrt(2 / pi), z = x [+ bias]
 *   gelu'(z) = 0.5 (1 + t) + 0.5 z (1 - t^2) c (1 + 3 * 0.044715 z^2)
 *   swiglu(g, u) = silu(g) u;  d/dg = dy u s (1 + g (1 - s)), d/du = dy silu(g), s = sigmoid(g)
 *
 * The biased GELU backward has two kinds of workgroups in one dispatch: elementwise dx, and
 * column workgroups that sum dbias over rows (as the norm backward does).
 */
import type { KernelProgram } from './runtime.js';

const GELU = `
fn geluT(z: f32) -> f32 {
  // tanh of a clamped argument: some drivers return NaN for tanh of large |u|.
  return tanh(clamp(0.7978845608028654 * (z + 0.044715 * z * z * z), -15.0, 15.0));
}
fn gelu(z: f32) -> f32 { return 0.5 * z * (1.0 + geluT(z)); }
fn geluGrad(z: f32) -> f32 {
  let t = geluT(z);
  return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 0.134145 * z * z);
}`;

export const ELEMWISE_WG = 256;
const LANES = 4;

export function geluForwardProgram(bias: boolean, shape: number[]): KernelProgram {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    shaderKey: `webtune_gelu_fwd${bias ? '_bias' : ''}`,
    variableNames: ['x', ...(bias ? ['bias'] : [])],
    outputs: [{ name: 'y', shape }],
    uniforms: [['n', 'u32'], ['C', 'u32']],
    workgroupSize: ELEMWISE_WG,
    workgroups: Math.ceil(n / ELEMWISE_WG),
    getUserCode: () => `${GELU}
fn main(wg: u32, lid: u32) {
  let i = wg * WG + lid;
  if (i >= uniforms.n) { return; }
  y[i] = gelu(x[i]${bias ? ' + bias[i % uniforms.C]' : ''});
}`,
  };
}

export function geluBackwardProgram(bias: boolean, shape: number[]): KernelProgram {
  const n = shape.reduce((a, b) => a * b, 1);
  const C = shape[shape.length - 1];
  const cols = ELEMWISE_WG / LANES;
  const flat = Math.ceil(n / ELEMWISE_WG);
  return {
    shaderKey: `webtune_gelu_bwd${bias ? '_bias' : ''}`,
    variableNames: ['x', ...(bias ? ['bias'] : []), 'dy'],
    outputs: [{ name: 'dx', shape }, ...(bias ? [{ name: 'dbias', shape: [C] }] : [])],
    uniforms: [['n', 'u32'], ['C', 'u32'], ['flat', 'u32']],
    workgroupSize: ELEMWISE_WG,
    workgroups: flat + (bias ? Math.ceil(C / cols) : 0),
    getUserCode: () => `${GELU}
${bias ? `var<workgroup> red: array<f32, WG>;
const COLS: u32 = ${cols}u;
const LANES: u32 = ${LANES}u;` : ''}
fn main(wg: u32, lid: u32) {
  if (wg < uniforms.flat) {
    let i = wg * WG + lid;
    if (i < uniforms.n) { dx[i] = dy[i] * geluGrad(x[i]${bias ? ' + bias[i % uniforms.C]' : ''}); }
    return;
  }${bias ? `
  let C = uniforms.C;
  let col = lid % COLS;
  let lane = lid / COLS;
  let c = (wg - uniforms.flat) * COLS + col;
  let rows = uniforms.n / C;
  var s = 0.0;
  if (c < C) {
    for (var r = lane; r < rows; r = r + LANES) { s = s + dy[r * C + c] * geluGrad(x[r * C + c] + bias[c]); }
  }
  red[lid] = s;
  workgroupBarrier();
  if (lane == 0u && c < C) {
    var t = 0.0;
    for (var l = 0u; l < LANES; l = l + 1u) { t = t + red[l * COLS + col]; }
    dbias[c] = t;
  }` : ''}
}`,
  };
}

const SILU = `
fn sigm(g: f32) -> f32 { return 1.0 / (1.0 + exp(-g)); }`;

export function swigluForwardProgram(shape: number[]): KernelProgram {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    shaderKey: 'webtune_swiglu_fwd',
    variableNames: ['gate', 'up'],
    outputs: [{ name: 'y', shape }],
    uniforms: [['n', 'u32']],
    workgroupSize: ELEMWISE_WG,
    workgroups: Math.ceil(n / ELEMWISE_WG),
    getUserCode: () => `${SILU}
fn main(wg: u32, lid: u32) {
  let i = wg * WG + lid;
  if (i >= uniforms.n) { return; }
  let g = gate[i];
  y[i] = g * sigm(g) * up[i];
}`,
  };
}

export function swigluBackwardProgram(shape: number[]): KernelProgram {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    shaderKey: 'webtune_swiglu_bwd',
    variableNames: ['gate', 'up', 'dy'],
    outputs: [{ name: 'dgate', shape }, { name: 'dup', shape }],
    uniforms: [['n', 'u32']],
    workgroupSize: ELEMWISE_WG,
    workgroups: Math.ceil(n / ELEMWISE_WG),
    getUserCode: () => `${SILU}
fn main(wg: u32, lid: u32) {
  let i = wg * WG + lid;
  if (i >= uniforms.n) { return; }
  let g = gate[i];
  let s = sigm(g);
  let d = dy[i];
  dgate[i] = d * up[i] * s * (1.0 + g * (1.0 - s));
  dup[i] = d * g * s;
}`,
  };
}
