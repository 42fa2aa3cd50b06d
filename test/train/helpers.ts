/** Tiny models and hand-made batches for the trainer and generation tests. */
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig, type ModelConfig } from '../../models/config.js';
import type { Batch } from '../../src/data/batch.js';
import type { Engine } from '../../src/engine/index.js';

/** A 1-layer GPT-2 with C = 16 over a 32-token vocabulary: milliseconds per step on the CPU. */
export function tinyGPT2Config(overrides: Partial<ModelConfig> = {}): ModelConfig {
  const base = presetConfig('nano', { vocabSize: 32 });
  if (base.model_type !== 'gpt2') throw new Error('expected gpt2');
  return { ...base, n_embd: 16, n_layer: 1, n_head: 2, n_positions: 32, ...overrides } as ModelConfig;
}

export function tinyLlamaConfig(): ModelConfig {
  const base = presetConfig('nano', { vocabSize: 32, family: 'llama' });
  if (base.model_type !== 'llama') throw new Error('expected llama');
  return { ...base, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 32 };
}

/** Bound to `engine`, or by default to the engine of the active backend. */
export function tinyGPT2(seed = 0, engine?: Engine): CausalLM {
  return CausalLM.create(tinyGPT2Config(), { seed, engine });
}

/**
 * A batch from rows of ids (padded right with `pad` to the longest row). `trained(row, t)`
 * says which positions carry a label (default: every real token but the first).
 */
export function makeBatch(rows: number[][], opts: { trained?: (row: number, t: number) => boolean; pad?: number; seqLen?: number; meta?: Array<Array<Record<string, unknown>>> } = {}): Batch {
  const B = rows.length;
  const T = opts.seqLen ?? Math.max(...rows.map((r) => r.length));
  const pad = opts.pad ?? 0;
  const trained = opts.trained ?? ((_r: number, t: number) => t > 0);
  const inputIds = new Int32Array(B * T), labels = new Int32Array(B * T).fill(-100);
  const attentionMask = new Int32Array(B * T), positionIds = new Int32Array(B * T);
  rows.forEach((row, b) => {
    for (let t = 0; t < T; t++) {
      const real = t < row.length;
      inputIds[b * T + t] = real ? row[t] : pad;
      attentionMask[b * T + t] = real ? 1 : 0;
      positionIds[b * T + t] = real ? t : 0;
      if (real && trained(b, t)) labels[b * T + t] = row[t];
    }
  });
  return { inputIds, labels, attentionMask, positionIds, batchSize: B, seqLen: T, meta: opts.meta ?? rows.map(() => []) };
}

/** Deterministic pseudo-random rows of ids in [1, vocab). */
export function randomRows(n: number, len: number, vocab: number, seed: number): number[][] {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 8) % (vocab - 1) + 1;
  return Array.from({ length: n }, () => Array.from({ length: len }, next));
}

/** Every parameter's values on the host, by name: for bit-for-bit comparisons of two models. */
export async function paramValues(model: CausalLM): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, v] of model.params) out.set(n, (await v.data()) as Float32Array);
  return out;
}
