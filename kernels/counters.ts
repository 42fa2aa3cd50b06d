/**
 * What a training step costs on the GPU: compute dispatches and peak buffer memory.
 *
 * Dispatches are counted at the lowest level there is, `GPUComputePassEncoder.dispatchWorkgroups`
 * (patched on the prototype, so stock tfjs programs and the fused kernels of runtime.ts are
 * counted alike, and nothing that is not a dispatch is). Counting `runWebGPUProgram` calls
 * instead would miss the fused kernels, which record their dispatches directly.
 *
 * Memory is tfjs-backend-webgpu's BufferManager.numBytesUsed (the bytes of the buffers handed
 * out and not yet released: tensors, uniforms, staging), sampled on every acquireBuffer, so the
 * peak inside a step is seen and not only the level after it. numBytesAllocated, the size of the
 * pool including free buffers kept for reuse, is reported beside it.
 *
 * @example
 *   const meter = startGpuMeter();
 *   trainStep();
 *   await flush();
 *   const { dispatches, peakBytes } = meter.stop();   // e.g. { dispatches: 162, peakBytes: 9437184, ... }
 */
import * as tf from '@tensorflow/tfjs';

export interface GpuMeterReading {
  /** Compute dispatches recorded while the meter ran. */
  dispatches: number;
  /** Highest BufferManager.numBytesUsed seen while the meter ran (0 off WebGPU). */
  peakBytes: number;
  /** BufferManager.numBytesAllocated when the meter stopped (the pool, free buffers included). */
  allocatedBytes: number;
}

export interface GpuMeter {
  /** Current reading without stopping. */
  read(): GpuMeterReading;
  /** Stops counting (restores the patched functions when no other meter runs) and returns the reading. */
  stop(): GpuMeterReading;
}

let active = 0;
let dispatches = 0;
let peak = 0;
let restoreFns: Array<() => void> = [];

function install(): void {
  const proto = (globalThis as any).GPUComputePassEncoder?.prototype;
  if (proto?.dispatchWorkgroups) {
    const orig = proto.dispatchWorkgroups;
    proto.dispatchWorkgroups = function (this: unknown, ...args: unknown[]) {
      dispatches++;
      return orig.apply(this, args);
    };
    restoreFns.push(() => { proto.dispatchWorkgroups = orig; });
  }
  const backend = tf.getBackend() === 'webgpu' ? (tf.backend() as any) : undefined;
  const bm = backend?.bufferManager;
  if (bm) {
    const orig = bm.acquireBuffer;
    bm.acquireBuffer = function (this: any, ...args: unknown[]) {
      const buf = orig.apply(this, args);
      if (this.numBytesUsed > peak) peak = this.numBytesUsed;
      return buf;
    };
    restoreFns.push(() => { bm.acquireBuffer = orig; });
  }
}

function reading(): GpuMeterReading {
  const bm = tf.getBackend() === 'webgpu' ? (tf.backend() as any).bufferManager : undefined;
  return { dispatches, peakBytes: peak, allocatedBytes: bm?.numBytesAllocated ?? 0 };
}

/** Starts counting dispatches and tracking peak GPU memory. Meters may nest; each sees totals since its start. */
export function startGpuMeter(): GpuMeter {
  if (active === 0) install();
  active++;
  const d0 = dispatches;
  const bm = tf.getBackend() === 'webgpu' ? (tf.backend() as any).bufferManager : undefined;
  // The peak of this meter starts at the level in use now.
  const base = bm?.numBytesUsed ?? 0;
  const savedPeak = peak;
  peak = base;
  let stopped: GpuMeterReading | undefined;
  const read = (): GpuMeterReading => {
    const r = reading();
    return { ...r, dispatches: r.dispatches - d0 };
  };
  return {
    read: () => stopped ?? read(),
    stop: () => {
      if (stopped) return stopped;
      stopped = read();
      peak = Math.max(savedPeak, peak);
      active--;
      if (active === 0) {
        for (const f of restoreFns.reverse()) f();
        restoreFns = [];
      }
      return stopped;
    },
  };
}

/** Submits what the backend has recorded and waits until the GPU has finished it (no dispatch of its own). */
export async function flush(): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  const backend = tf.backend() as any;
  backend.endComputePassEncoder();
  if (backend.commandEncoder) backend.submitQueue();
  await (backend.device as GPUDevice).queue.onSubmittedWorkDone();
}
