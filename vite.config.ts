/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// One config for the demo (vite dev/build, rooted at demo/) and the test suite (vitest).
export default defineConfig({
  root: 'demo',
  base: './', // relative asset URLs: the built site works from any static host and sub-path
  publicDir: 'public',
  build: { outDir: '../dist', emptyOutDir: true, target: 'es2022' },
  worker: { format: 'es' },
  // The worker holds every library import (tfjs, the WebGPU backend initBackend imports on
  // demand, jinja, tokenizers): scan it with the page, so a fresh dev server bundles every
  // dependency up front instead of re-bundling (and reloading the page) mid-load.
  optimizeDeps: { entries: ['index.html', 'worker.ts'], include: ['@tensorflow/tfjs-backend-webgpu'] },
  server: { fs: { allow: ['..'] } },
  test: {
    root: '.',
    // Dawn (WebGPU in Node) holds native state per process: run files in separate processes.
    pool: 'forks',
    maxWorkers: 2,
    // Limits catch a hung test, never a slow one: about 5x what the slowest test takes on an idle
    // 2-core machine, so a busy machine does not turn them into failures.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default'],
    projects: [
      // Library, kernels, CLI: two files at a time.
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/e2e/**'], sequence: { groupOrder: 0 } } },
      // The page in Chromium: after every other file has finished, one file at a time, so that
      // the page's main thread and SwiftShader compete with no other test for the cores.
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
