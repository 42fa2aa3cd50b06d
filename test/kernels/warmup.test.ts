import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend } from '../helpers/backends.js';
import { useFusedOps, warmUpFusedKernels, compiledPipelineCount, fusedClipGradNorm, fusedAdamwUpdate, flush } from '../../kernels/index.js';
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig } from '../../models/config.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import { adamwInit, adamwDispose } from '../../src/train/optim.js';

// Its own file, so this process has compiled nothing before the warm-up.
describe('warmUpFusedKernels [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const packed of [true, false]) {
    it(`compiles every fused pipeline a training step uses (${packed ? 'packed rows' : 'causal only'}, GPT-2 then Llama)`, async () => {
      for (const family of ['gpt2', 'llama'] as const) {
        const config = presetConfig('nano', { vocabSize: 37, family });
        const model = CausalLM.create(config, { seed: 1 });
        const C = config.model_type === 'gpt2' ? config.n_embd : config.hidden_size;
        const heads = config.model_type === 'gpt2' ? config.n_head : config.num_attention_heads;
        const compiled = await warmUpFusedKernels({ hidden: C, vocab: 37, headDim: C / heads });
        expect(compiled).toBe(compiledPipelineCount());
        expect(compiled).toBeGreaterThan(0);
        const B = 2, T = 6;
        const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 7) % 37), [B, T], 'int32');
        const mask = tf.tensor2d([1, 1, 2, 2, 2, 0, 1, 1, 1, 1, 1, 1], [B, T], 'int32');
        const params = model.trainableParams();
        const state = adamwInit(params);
        const restore = useFusedOps();
        try {
          const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, { attentionMask: packed ? mask : undefined, training: true }), ids).loss, [...params.values()]);
          const byVar = new Map([...params].map(([n, v]) => [v.name, n]));
          const named = new Map(Object.entries(grads).map(([k, g]) => [byVar.get(k)!, g]));
          const clip = fusedClipGradNorm(named, 1);
          fusedAdamwUpdate(named, state, params, { lr: 1e-3 }, { clip });
          expect(Number.isFinite((await clip.totalNorm().data())[0])).toBe(true);
          clip.dispose();
          tf.dispose([value, ...Object.values(grads)]);
          await flush();
        } finally {
          restore();
        }
        // Nothing new was compiled by the step.
        expect(compiledPipelineCount()).toBe(compiled);
        adamwDispose(state);
        model.dispose();
        tf.dispose([ids, mask]);
      }
    });
  }
});
