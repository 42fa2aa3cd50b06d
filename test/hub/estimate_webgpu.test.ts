/**
 * estimateTrainingMemory for the fused path against the peak GPU memory of a real training step
 * on the software adapter (the GPU meter's peak of BufferManager bytes in use: weights, optimizer
 * state, activations, gradients), with and without gradient checkpointing, in both families.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend } from '../helpers/backends.js';
import { flush, startGpuMeter } from '../../kernels/index.js';
import { CausalLM, parseConfig, type ModelConfig } from '../../models/index.js';
import { applyLora } from '../../src/nn/lora.js';
import { makeStep } from '../../src/cli/bench.js';
import { estimateTrainingMemory } from '../../src/train/memory.js';

const SHAPES: Array<[string, Record<string, unknown>, number, number, boolean]> = [
  ['llama, LoRA on q/k/v/o', { model_type: 'llama', vocab_size: 2048, hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true }, 4, 64, false],
  ['llama, LoRA on q/k/v/o, gradient checkpointing', { model_type: 'llama', vocab_size: 2048, hidden_size: 128, intermediate_size: 352, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: true }, 4, 64, true],
  ['gpt2, LoRA on c_attn', { model_type: 'gpt2', vocab_size: 2048, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 }, 4, 64, false],
];

describe('the fused-path estimate is within 25% of the measured peak [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const [name, json, B, T, gc] of SHAPES) {
    it(`${name}, batch ${B} x ${T}`, async () => {
      const config = parseConfig(json) as ModelConfig;
      const model = CausalLM.create(config, { seed: 0 });
      const targets = config.model_type === 'llama' ? ['q_proj', 'k_proj', 'v_proj', 'o_proj'] : ['c_attn'];
      applyLora(model, { r: 8, alpha: 16, targetModules: targets });
      const { step, dispose } = makeStep(model, B, T, config.vocab_size, { gradientCheckpointing: gc });
      try {
        await step('fused');                           // compiles; later steps reuse the buffer pool
        await flush();
        const meter = startGpuMeter();
        await step('fused');
        const { peakBytes } = meter.stop();
        const est = estimateTrainingMemory(config, { batchSize: B, seqLen: T, lora: { r: 8, targets }, gradientCheckpointing: gc });
        const ratio = est.total / peakBytes;
        console.log(`${name}: estimate ${(est.total / 2 ** 20).toFixed(1)} MiB, measured ${(peakBytes / 2 ** 20).toFixed(1)} MiB, ratio ${ratio.toFixed(2)}`);
        expect(ratio, `estimate ${est.total} measured ${peakBytes}`).toBeGreaterThan(0.75);
        expect(ratio, `estimate ${est.total} measured ${peakBytes}`).toBeLessThan(1.25);
      } finally {
        dispose();
        model.dispose();
      }
    });
  }
});
