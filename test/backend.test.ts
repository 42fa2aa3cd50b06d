import * as tf from '@tensorflow/tfjs';
import { describe, it, expect } from 'vitest';
import { useBackend } from './helpers/backends.js';
import { describeBackend } from '../src/backend/index.js';

describe('backend selection', () => {
  it('finds a real WebGPU adapter through Dawn (fails with install instructions otherwise)', async () => {
    const info = await useBackend('webgpu');
    expect(info.backend).toBe('webgpu');
    expect(info.adapter?.description ?? '').not.toBe('');
    expect(tf.getBackend()).toBe('webgpu');
    console.log(describeBackend(info));
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])));
    expect(Array.from(await y.data())).toEqual([17, 39]);
    y.dispose();
  });

  it('CPU backend is available and announced as the chosen one', async () => {
    const info = await useBackend('cpu');
    expect(info.backend).toBe('cpu');
    expect(info.fallbacks).toEqual([]);
  });
});
