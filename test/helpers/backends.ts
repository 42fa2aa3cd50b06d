/**
 * Runs a suite once per backend (CPU and WebGPU through Dawn), the way jax-js runs its tests
 * per device. WebGPU is required: when no adapter can be found the suite FAILS with a message
 * that says how to get one; it never skips.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, beforeAll } from 'vitest';
import { initBackend, type BackendName, type BackendInfo } from '../../src/backend/index.js';

export const BACKENDS: BackendName[] = ['cpu', 'webgpu'];

/** Switches tfjs to `name` (initialising it on first use) and returns its info. */
export async function useBackend(name: BackendName): Promise<BackendInfo> {
  const info = await initBackend({ prefer: name, strict: true });
  // Keep small ops on the GPU so the WebGPU path is what is tested.
  if (name === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  return info;
}

/** describe.each over backends; the body runs after the backend is active. */
export function describeEachBackend(title: string, body: (backend: BackendName) => void, backends = BACKENDS): void {
  for (const backend of backends) {
    describe(`${title} [${backend}]`, () => {
      beforeAll(async () => {
        await useBackend(backend);
      });
      body(backend);
    });
  }
}

/** Element-wise closeness like numpy.allclose; throws a message naming the worst index. */
export function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, { rtol = 1e-5, atol = 1e-6, label = '' } = {}): void {
  if (actual.length !== expected.length) throw new Error(`${label}: length ${actual.length} != ${expected.length}`);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i; worstErr = err;
      if (Number.isNaN(err)) break;
    }
  }
  if (worst >= 0) throw new Error(`${label}: not close at [${worst}]: actual ${actual[worst]} expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
}
