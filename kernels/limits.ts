/**
 * tfjs-backend-webgpu 4.22.0 creates its device with the default limit of 8 storage buffers per
 * shader stage (it raises only workgroup, buffer-size and dispatch limits). Fused kernels that
 * touch many tensors at once (AdamW over several parameters, the grouped gradient norm) do more
 * per dispatch when the device allows more, and most adapters do (lavapipe and desktop GPUs
 * report 16 or more). useAdapterStorageLimit re-creates the 'webgpu' backend on a device that
 * also requests the adapter's maxStorageBuffersPerShaderStage.
 *
 * Call it right after the backend is initialised and before any tensor is made: re-creating the
 * backend drops every tensor of the old one. The kernels read the limit from the device, so
 * they work with either device.
 *
 * @example
 *   await initBackend({ prefer: 'webgpu' });
 *   await useAdapterStorageLimit();   // -> 16 on lavapipe
 */
import * as tf from '@tensorflow/tfjs';

/** Returns the storage-buffer limit of the (possibly new) device; 0 off WebGPU. */
export async function useAdapterStorageLimit(): Promise<number> {
  if (tf.getBackend() !== 'webgpu') return 0;
  const current: GPUDevice = (tf.backend() as any).device;
  const gpu: GPU | undefined = (globalThis as any).navigator?.gpu;
  const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return current.limits.maxStorageBuffersPerShaderStage;
  const want = adapter.limits.maxStorageBuffersPerShaderStage;
  if (want <= current.limits.maxStorageBuffersPerShaderStage) return current.limits.maxStorageBuffersPerShaderStage;
  // The same features and limits tfjs requests, plus the storage-buffer limit.
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has('timestamp-query')) requiredFeatures.push('timestamp-query');
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: want,
    },
  });
  // Imported here, not at the top: the backend module registers itself only if navigator.gpu
  // exists when it loads, which in Node is after initBackend has installed Dawn.
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const info = (adapter as any).info;
  const flags = { cpuForward: tf.env().get('WEBGPU_CPU_FORWARD') };
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', async () => new WebGPUBackend(device, info), 3);
  if (!(await tf.setBackend('webgpu'))) throw new Error('useAdapterStorageLimit: the webgpu backend did not initialise on the new device');
  await tf.ready();
  tf.env().set('WEBGPU_CPU_FORWARD', flags.cpuForward);
  return device.limits.maxStorageBuffersPerShaderStage;
}
