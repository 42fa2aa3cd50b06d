import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { useBackend } from '../helpers/backends.js';
import { compiledPipelineCount, flush } from '../../kernels/index.js';
import { fusedEngine } from '../../src/engine/index.js';
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig } from '../../models/config.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';

// Its own file, so this process has compiled nothing before the warm-up.
describe('the fused engine\'s warm-up (warmUpFusedKernels) [webgpu]', () => {
  beforeAll(async () => { await useBackend('webgpu'); });

  for (const packed of [true, false]) {
    it(`compiles every fused pipeline a training step uses (${packed ? 'packed rows' : 'causal only'}, GPT-2 then Llama)`, async () => {
      for (const family of ['gpt2', 'llama'] as const) {
        const config = presetConfig('nano', { vocabSize: 37, family });
        const model = CausalLM.create(config, { seed: 1, engine: fusedEngine });
        const compiled = await model.engine.warmUp(config);
        expect(compiled).toBe(compiledPipelineCount());
        expect(compiled).toBeGreaterThan(0);
        const B = 2, T = 6;
        const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 7) % 37), [B, T], 'int32');
        const mask = tf.tensor2d([1, 1, 2, 2, 2, 0, 1, 1, 1, 1, 1, 1], [B, T], 'int32');
        const params = model.trainableParams();
        const optimizer = model.engine.clipAdamw({ maxGradNorm: 1 });
        const state = optimizer.init(params);
        // A training step on the engine: its ops (forward and loss), its optimizer (clip + AdamW).
        const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, { attentionMask: packed ? mask : undefined, training: true }), ids, model.engine.ops).loss, [...params.values()]);
        const byVar = new Map([...params].map(([n, v]) => [v.name, n]));
        const named = new Map(Object.entries(grads).map(([k, g]) => [byVar.get(k)!, g]));
        const update = optimizer.update(named, state, params, { lr: 1e-3 });
        update.apply();
        expect(Number.isFinite((await update.gradNorm.data())[0])).toBe(true);
        update.dispose();
        tf.dispose([value, ...Object.values(grads)]);
        await flush();
        // Nothing new was compiled by the step.
        expect(compiledPipelineCount()).toBe(compiled);
        optimizer.dispose(state);
        model.dispose();
        tf.dispose([ids, mask]);
      }
    });
  }
});
