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

describe('webtune bench custom sizes, from the family descriptors', () => {
  it('builds a custom Llama size: SwiGLU width 8/3 * C rounded up to 16, half the K/V heads when the heads are even', async () => {
    const { configFor } = await import('../../src/cli/bench.js');
    // 96 * 8 / 3 = 256 (already a multiple of 16); 3 heads (odd): no grouping.
    const odd = configFor('custom', { family: 'llama', dim: 96, heads: 3, layers: 2, vocab: 100, ctx: 64 }) as unknown as Record<string, unknown>;
    expect(odd).toMatchObject({ model_type: 'llama', hidden_size: 96, num_attention_heads: 3, num_key_value_heads: 3, head_dim: 32, num_hidden_layers: 2, intermediate_size: 256, vocab_size: 100, max_position_embeddings: 512 });
    // 80 * 8 / 3 = 213.3 -> 224; 4 heads -> 2 K/V heads; ctx beyond micro's 512 positions widens them.
    const even = configFor('custom', { family: 'llama', dim: 80, heads: 4, vocab: 100, ctx: 1000 }) as unknown as Record<string, unknown>;
    expect(even).toMatchObject({ hidden_size: 80, num_key_value_heads: 2, head_dim: 20, num_hidden_layers: 4, intermediate_size: 224, max_position_embeddings: 1000 });
    const gpt2 = configFor('custom', { family: 'gpt2', dim: 48, heads: 2, layers: 3, vocab: 100, ctx: 64 }) as unknown as Record<string, unknown>;
    expect(gpt2).toMatchObject({ model_type: 'gpt2', n_embd: 48, n_head: 2, n_layer: 3, n_positions: 512, vocab_size: 100 });
    expect(() => configFor('custom', { family: 'gpt2', dim: 50, heads: 4 })).toThrow(/--dim 50 is not a multiple of --heads 4/);
  });

  it('puts LoRA on every linear of a block, by PEFT name', async () => {
    const { configFor, benchLoraTargets } = await import('../../src/cli/bench.js');
    expect(benchLoraTargets(configFor('nano', { family: 'gpt2' })).sort()).toEqual(['c_attn', 'c_fc', 'c_proj']);
    expect(benchLoraTargets(configFor('nano', { family: 'llama' })).sort()).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
  });

  it('refuses a family it does not run, naming the ones it does', async () => {
    await expect(bench(['--family', 'qwen2'])).rejects.toThrow("bench: --family must be gpt2 or llama, got 'qwen2'.");
  });
});
