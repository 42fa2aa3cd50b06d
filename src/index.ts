/**
 * WebTune's public API. The demo and every user import from here, and only from here.
 */

// Backends: WebGPU first, announced fallbacks.
export * from './backend/index.js';
