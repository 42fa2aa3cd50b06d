/**
 * Runs hand-written WGSL programs inside tfjs-backend-webgpu 4.22.0, on its device, its command
 * encoder and its buffer manager, so fused kernels interleave with stock tfjs kernels in the same
 * compute pass and their outputs are ordinary tfjs tensors.
 *
 * Why not `backend.runWebGPUProgram`: it binds exactly one output and marks every input
 * read-only. A fused backward pass (dx, dgamma, dbeta of a LayerNorm; p, m, v of AdamW) has
 * several outputs, and writing them from one dispatch is the whole point. `runProgram` records
 * a dispatch exactly the way the backend's `recordAndSubmit` does (same encoder, same pass,
 * same deferred-submit batching, same deferred disposal of buffers still owned by the queue),
 * with N read_write output bindings.
 *
 * Shader layout (cf. the backend's makeShader):
 *
 *   struct Uniforms { wgCount: u32, <program uniforms> }
 *   @binding(0..nOut-1)       var<storage, read_write> <output name>: array<f32|i32>
 *   @binding(nOut..)          var<storage, read>       <input name>:  array<f32|i32>
 *   @binding(last)            var<uniform>             uniforms: Uniforms
 *   <program.getUserCode(): defines fn main(wg: u32, lid: u32)>
 *   @compute @workgroup_size(WG) fn _start(...) -> main(flat workgroup index, local index)
 *
 * Every binding must be referenced by the user code (pipelines use layout 'auto').
 */
import * as tf from '@tensorflow/tfjs';

export type OutDtype = 'float32' | 'int32';
export type UniformType = 'i32' | 'u32' | 'f32';

/** A fused WebGPU program: the multi-output counterpart of the backend's WebGPUProgram. */
export interface KernelProgram {
  /** Pipeline cache key: the program name plus every compile-time constant its code depends on (never a runtime size). */
  shaderKey: string;
  /** Input bindings, in the order the tensors are passed. */
  variableNames: string[];
  /** Output bindings with their shapes; each becomes a new tensor. */
  outputs: Array<{ name: string; shape: number[]; dtype?: OutDtype }>;
  /** Scalar uniforms (name, WGSL type), values passed to runProgram in the same order. */
  uniforms: Array<[string, UniformType]>;
  /** Threads per workgroup (1-D). Available in WGSL as the constant WG. */
  workgroupSize: number;
  /** Number of workgroups to launch (flat; folded into 2-D past the per-dimension limit). */
  workgroups: number;
  /** WGSL that defines `fn main(wg: u32, lid: u32)`. */
  getUserCode(): string;
}

/** The active tfjs backend when it is tfjs-backend-webgpu, else undefined. */
export function webgpuBackend(): any | undefined {
  return tf.getBackend() === 'webgpu' ? (tf.backend() as any) : undefined;
}

const pipelines = new WeakMap<object, Map<string, GPUComputePipeline>>();

function wgslType(dtype: string): 'f32' | 'i32' {
  return dtype === 'float32' ? 'f32' : 'i32';
}

/** The full WGSL source of a program for the given input dtypes (exported for tests and debugging). */
export function makeShader(program: KernelProgram, inputDtypes: string[]): string {
  const fields = ['wgCount: u32', ...program.uniforms.map(([n, t]) => `${n}: ${t}`)].join(',\n  ');
  const outs = program.outputs.map((o, i) =>
    `@group(0) @binding(${i}) var<storage, read_write> ${o.name}: array<${wgslType(o.dtype ?? 'float32')}>;`);
  const ins = program.variableNames.map((n, i) =>
    `@group(0) @binding(${program.outputs.length + i}) var<storage, read> ${n}: array<${wgslType(inputDtypes[i])}>;`);
  const nBind = program.outputs.length + program.variableNames.length;
  return `
struct Uniforms {
  ${fields}
};
${outs.join('\n')}
${ins.join('\n')}
@group(0) @binding(${nBind}) var<uniform> uniforms: Uniforms;
const WG: u32 = ${program.workgroupSize}u;
${program.getUserCode()}
@compute @workgroup_size(${program.workgroupSize}, 1, 1)
fn _start(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  if (wg >= uniforms.wgCount) { return; }
  main(wg, lid);
}
`;
}

function getPipeline(backend: any, program: KernelProgram, inputDtypes: string[]): GPUComputePipeline {
  const device: GPUDevice = backend.device;
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, (cache = new Map()));
  const key = `${program.shaderKey}|${program.workgroupSize}|${inputDtypes.join(',')}|${program.outputs.map((o) => o.dtype ?? 'float32').join(',')}`;
  let pipeline = cache.get(key);
  if (!pipeline) {
    const code = makeShader(program, inputDtypes);
    const module = device.createShaderModule({ code, label: program.shaderKey });
    pipeline = device.createComputePipeline({ layout: 'auto', label: program.shaderKey, compute: { module, entryPoint: '_start' } });
    cache.set(key, pipeline);
  }
  return pipeline;
}

/** Number of pipelines compiled so far on this device (the warm-up reports it). */
export function compiledPipelineCount(): number {
  const b = webgpuBackend();
  return b ? pipelines.get(b.device)?.size ?? 0 : 0;
}

/**
 * Records one dispatch of `program` on the active webgpu backend and returns its outputs as
 * TensorInfos (hand them to the engine from a kernelFunc, or wrap them with `toTensors`).
 */
export function runProgram(program: KernelProgram, inputs: tf.TensorInfo[], uniformValues: number[]): tf.TensorInfo[] {
  const backend = webgpuBackend();
  if (!backend) throw new Error(`kernels: ${program.shaderKey} needs the webgpu backend (active: ${tf.getBackend()})`);
  if (uniformValues.length !== program.uniforms.length) {
    throw new Error(`kernels: ${program.shaderKey} expects ${program.uniforms.length} uniforms, got ${uniformValues.length}`);
  }
  if (inputs.length !== program.variableNames.length) {
    throw new Error(`kernels: ${program.shaderKey} expects ${program.variableNames.length} inputs, got ${inputs.length}`);
  }
  const storage = program.outputs.length + program.variableNames.length;
  if (storage > backend.device.limits.maxStorageBuffersPerShaderStage) {
    throw new Error(`kernels: ${program.shaderKey} binds ${storage} storage buffers; the device allows ${backend.device.limits.maxStorageBuffersPerShaderStage}`);
  }
  const outputs: tf.TensorInfo[] = program.outputs.map((o) => backend.makeTensorInfo(o.shape, o.dtype ?? 'float32'));
  for (const o of outputs) {
    if (tf.util.sizeFromShape(o.shape) === 0) throw new Error(`kernels: ${program.shaderKey} has an empty output [${o.shape}]`);
    backend.uploadToGPU(o.dataId);
  }
  if (program.workgroups === 0) return outputs;
  for (const t of inputs) backend.uploadToGPU(t.dataId);
  const inputDtypes = inputs.map((t) => backend.tensorMap.get(t.dataId).dtype as string);
  const pipeline = getPipeline(backend, program, inputDtypes);

  const device: GPUDevice = backend.device;
  const maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
  let dispatch: [number, number] = [program.workgroups, 1];
  if (program.workgroups > maxPerDim) {
    const x = Math.ceil(Math.sqrt(program.workgroups));
    dispatch = [x, Math.ceil(program.workgroups / x)];
  }
  const uniformData = [{ type: 'uint32', data: [program.workgroups] }, ...program.uniforms.map(([, t], i) => ({
    type: t === 'f32' ? 'float32' : t === 'i32' ? 'int32' : 'uint32', data: [uniformValues[i]],
  }))];
  const bindings = [
    ...outputs.map((t) => backend.tensorToBinding(t)),
    ...inputs.map((t) => backend.tensorToBinding(t)),
    backend.makeUniforms(uniformData),
  ];
  for (const t of inputs) backend.commandQueueOwnedIds.add(t.dataId);
  for (const t of outputs) backend.commandQueueOwnedIds.add(t.dataId);
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: bindings.map((resource, binding) => ({ binding, resource })),
  });

  // From here on, exactly the backend's recordAndSubmit.
  const timed = backend.activeTimers != null;
  backend.ensureCommandEncoderReady();
  if (timed && backend.supportTimestampQuery) {
    backend.endComputePassEncoder();
    if (backend.querySet == null) backend.querySet = device.createQuerySet({ type: 'timestamp', count: backend.querySetCount });
    backend.computePassEncoder = backend.commandEncoder.beginComputePass({
      timestampWrites: { querySet: backend.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
  } else if (!backend.computePassEncoder) {
    backend.computePassEncoder = backend.commandEncoder.beginComputePass({});
  }
  const pass: GPUComputePassEncoder = backend.computePassEncoder;
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(dispatch[0], dispatch[1], 1);
  backend.dispatchCountInPass++;
  if (timed || (tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= backend.dispatchCountInPass) {
    backend.endComputePassEncoder();
    if (timed) backend.activeTimers.push({ name: program.shaderKey, query: backend.getQueryTime() });
    else backend.submitQueue();
  }
  return outputs;
}

/** Wraps TensorInfos made by runProgram as tensors tracked by the engine (and the active tidy scope). */
export function toTensors(infos: tf.TensorInfo[]): tf.Tensor[] {
  const engine = tf.engine() as any;
  return infos.map((info) => engine.makeTensorFromTensorInfo(info) as tf.Tensor);
}

/** runProgram + toTensors, for code outside a kernelFunc (backward passes, the optimizer). */
export function run(program: KernelProgram, inputs: tf.TensorInfo[], uniformValues: number[]): tf.Tensor[] {
  return toTensors(runProgram(program, inputs, uniformValues));
}

/** Smallest power of two >= n, capped at `max` (workgroup sizes for row reductions). */
export function pow2AtMost(n: number, max: number, min = 32): number {
  let w = min;
  while (w < n && w < max) w *= 2;
  return w;
}

/** The WGSL of a tree reduction (sum) over a workgroup array `buf` of WG elements; leaves the total in buf[0]. */
export function treeSum(buf: string): string {
  return `
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${buf}[lid] = ${buf}[lid] + ${buf}[lid + s]; }
    workgroupBarrier();
  }`;
}
