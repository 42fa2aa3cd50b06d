/**
 * `webtune bench` in-process on the WebGPU adapter: a Hugging Face config.json measured as
 * published (random weights), and a shape whose tensors exceed the adapter's binding limit
 * refused before the first step (no dispatch, no validation error), naming the tensor, its size,
 * the limit and what to change.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run as bench } from '../../src/cli/bench.js';
import { startGpuMeter } from '../../kernels/index.js';
import { useBackend } from '../helpers/backends.js';
import { capture } from '../helpers/capture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-bench-'));


/** SmolLM2-135M's config.json with a smaller body (the fields as published, fewer and narrower layers). */
function smolLike(overrides: Record<string, unknown>): string {
  const config = JSON.parse(fs.readFileSync('test/hub/fixtures/smollm2-135m/config.json', 'utf8'));
  const file = path.join(tmp, `config-${Object.values(overrides).join('-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...config, ...overrides }));
  return file;
}

describe('webtune bench --config [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });   // so the meter below sees every dispatch
  it('measures a config.json as published (Llama family, tied embeddings) with and without checkpointing, and reports its estimate', async () => {
    const file = smolLike({ num_hidden_layers: 2, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512 });
    const { code, out } = await capture(() => bench(['--config', file, '--mode', 'lora', '--lora-targets', 'q_proj,k_proj,v_proj,o_proj', '--kernels', 'fused',
      '--compare-checkpointing', '--batch', '2', '--ctx', '16', '--steps', '1', '--json']));
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.backend).toBe('webgpu');
    expect(report.family).toBe('llama');
    expect(report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(report.results.map((r: { path: string; gradientCheckpointing: boolean }) => `${r.path}${r.gradientCheckpointing ? '+gc' : ''}`)).toEqual(['fused', 'fused+gc']);
    for (const r of report.results) {
      expect(r.mode).toBe('lora');
      expect(r.dispatchesPerStep).toBeGreaterThan(0);
      expect(r.peakBytes).toBeGreaterThan(0);
      expect(r.estimateBytes).toBeGreaterThan(0);
    }
    // Checkpointing runs each block's forward again: more dispatches for the same step.
    expect(report.results[1].dispatchesPerStep).toBeGreaterThan(report.results[0].dispatchesPerStep);
  });

  it('refuses, before the first dispatch, a model whose embedding matrix exceeds the binding limit', async () => {
    // [65536, 1024] float32 = 268,435,456 bytes: over lavapipe's (and WebGPU's default) 128 MiB.
    const file = smolLike({ num_hidden_layers: 1, hidden_size: 1024, intermediate_size: 64, num_attention_heads: 8, num_key_value_heads: 8, vocab_size: 65536 });
    const meter = startGpuMeter();
    const refused = bench(['--config', file, '--mode', 'lora', '--kernels', 'fused', '--batch', '1', '--ctx', '8', '--steps', '1']);
    await expect(refused).rejects.toThrow(/refused before the first step: model\.embed_tokens\.weight \(the embedding matrix\) \[65536, 1024\] float32 is 268,435,456 bytes \(256\.0 MiB\), over this GPU's (maxStorageBufferBindingSize|maxBufferSize) of [\d,]+ bytes .*: this model is too large for this GPU/);
    expect(meter.stop().dispatches).toBe(0);
  });

  it('names the file when --config cannot be read or parsed', async () => {
    await expect(bench(['--config', path.join(tmp, 'missing.json')])).rejects.toThrow(/--config .*missing\.json: cannot read it \(ENOENT\)/);
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(bad, '{"model_type": "llama", ');
    await expect(bench(['--config', bad])).rejects.toThrow(/--config .*bad\.json: not valid JSON/);
    const unsupported = path.join(tmp, 'bert.json');
    fs.writeFileSync(unsupported, JSON.stringify({ model_type: 'bert' }));
    await expect(bench(['--config', unsupported])).rejects.toThrow(/bert\.json.*model_type.*not supported/);
  });
});
