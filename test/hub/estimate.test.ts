/**
 * The training-memory estimate against numbers computed by hand, real configs of the Hub
 * models users will type (SmolLM2-135M-Instruct, openai-community/gpt2) parsed as they are,
 * the adapter-limit refusal, and the activation count against the bytes tfjs really holds
 * at the peak of one training step (tf.profile).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../helpers/backends.js';
import { estimateTrainingMemory, estimateFromConfigJson, checkFitsAdapter, loraParamCount, formatBytes } from '../../src/train/memory.js';
import { parseConfig, presetConfig, type ModelConfig } from '../../models/config.js';
import { CausalLM } from '../../models/causal_lm.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';

// config.json of HuggingFaceTB/SmolLM2-135M-Instruct, field for field.
const SMOLLM2_135M_INSTRUCT = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 1, eos_token_id: 2,
  hidden_act: 'silu', hidden_size: 576, initializer_range: 0.041666666666666664, intermediate_size: 1536,
  is_llama_config: true, max_position_embeddings: 8192, mlp_bias: false, model_type: 'llama', num_attention_heads: 9,
  num_hidden_layers: 30, num_key_value_heads: 3, pad_token_id: 2, pretraining_tp: 1, rms_norm_eps: 1e-05,
  rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16',
  'transformers.js_config': { kv_cache_dtype: { q4f16: 'float16', fp16: 'float16' } },
  transformers_version: '4.42.3', use_cache: true, vocab_size: 49152,
};

// config.json of openai-community/gpt2, field for field.
const GPT2_124M = {
  activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1,
  eos_token_id: 50256, initializer_range: 0.02, layer_norm_epsilon: 1e-05, model_type: 'gpt2', n_ctx: 1024, n_embd: 768,
  n_head: 12, n_layer: 12, n_positions: 1024, resid_pdrop: 0.1, summary_activation: null, summary_first_dropout: 0.1,
  summary_proj_to_labels: true, summary_type: 'cls_index', summary_use_proj: true,
  task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } }, vocab_size: 50257,
};

describe('real Hub configs parse', () => {
  it('SmolLM2-135M-Instruct: accepted, 134,515,008 parameters with tied embeddings', () => {
    const c = parseConfig(SMOLLM2_135M_INSTRUCT, 'config.json');
    expect(c.model_type).toBe('llama');
    if (c.model_type !== 'llama') return;
    expect([c.head_dim, c.num_key_value_heads, c.rope_theta, c.tie_word_embeddings]).toEqual([64, 3, 100000, true]);
    // By hand: embed 49152*576 = 28,311,552; per layer q 576*576 = 331,776, k and v 576*192 = 110,592 each,
    // o 331,776, gate/up/down 576*1536 = 884,736 each, two norms 576 each: 3,540,096; 30 layers
    // 106,202,880; final norm 576. Total 28,311,552 + 106,202,880 + 576.
    const est = estimateTrainingMemory(c, { batchSize: 1, seqLen: 16 });
    expect(est.params).toBe(134_515_008);
    expect(28_311_552 + 30 * (331_776 + 2 * 110_592 + 331_776 + 3 * 884_736 + 2 * 576) + 576).toBe(134_515_008);
  });

  it('openai-community/gpt2: accepted (n_ctx, summary_*, task_specific_params), 124,439,808 parameters', () => {
    const c = parseConfig(GPT2_124M, 'config.json');
    // wte 50257*768 + wpe 1024*768 + 12 * (ln 1536*2 + c_attn 768*2304+2304 + c_proj 768*768+768 + c_fc 768*3072+3072
    // + mlp.c_proj 3072*768+768) + ln_f 1536: the 124M of the model card.
    const perLayer = 2 * 1536 + (768 * 2304 + 2304) + (768 * 768 + 768) + (768 * 3072 + 3072) + (3072 * 768 + 768);
    expect(50257 * 768 + 1024 * 768 + 12 * perLayer + 1536).toBe(124_439_808);
    expect(estimateTrainingMemory(c, { batchSize: 1, seqLen: 8 }).params).toBe(124_439_808);
  });
});

describe('estimateTrainingMemory, by hand', () => {
  // GPT-2, V = 10, positions 8, C = 4, 1 layer, 2 heads, MLP width I = 16, tied.
  const tiny = parseConfig({ model_type: 'gpt2', vocab_size: 10, n_positions: 8, n_embd: 4, n_layer: 1, n_head: 2 });

  it('full fine-tuning, B = 2, T = 3, stock path', () => {
    // Parameters: wte 40, wpe 32, ln_1 8, c_attn 48+12, attn.c_proj 16+4, ln_2 8, c_fc 64+16, mlp.c_proj 64+4, ln_f 8.
    const params = 40 + 32 + 8 + 60 + 20 + 8 + 80 + 68 + 8; // 324
    // Activations, N = 6 tokens, A = 2*2*3*3 = 36 scores. Layer: linear weights 4*12 + 4*4 + 2*4*16 = 192,
    // 1.5 * (28*C + 10*I) * N = 1.5 * 272 * 6 = 2448, 4*A = 144: 2784 floats. Outside: 2*N*C = 48,
    // 2*V*C = 80, 7*N*V = 420: 548. Forward tape 3332 floats, doubled for the backward pass.
    const activations = 2 * (2784 + 548) * 4; // 26,656 bytes
    const est = estimateTrainingMemory(tiny, { batchSize: 2, seqLen: 3, path: 'stock' });
    expect(est).toMatchObject({
      params, trainableParams: params, weights: params * 4, gradients: params * 4, optimizer: params * 8, activations,
      total: 1296 + 1296 + 2592 + 26_656,
    });
    // Largest single tensor: the MLP activations [2, 3, 16] = 384 bytes (logits [2, 3, 10] are 240).
    expect(est.largestBuffer).toEqual({ name: 'MLP activations', shape: [2, 3, 16], bytes: 384 });
  });

  it('fused path, with and without gradient checkpointing, B = 2, T = 3', () => {
    // Fused layer: 2.1 * (10*C + 2*I) * N = 2.1 * 72 * 6 = 907.2 floats. Outside: 2*N*C = 48, whole logits 2*N*V = 120.
    const plain = estimateTrainingMemory(tiny, { batchSize: 2, seqLen: 3 });
    expect(plain.activations).toBeCloseTo((907.2 + 48 + 120) * 4, 6);
    // Checkpointing: each block's input and output (2*N*C = 48 per layer) and, for GPT-2, two blocks' activations.
    const ckpt = estimateTrainingMemory(tiny, { batchSize: 2, seqLen: 3, gradientCheckpointing: true });
    expect(ckpt.activations).toBeCloseTo((48 + 2 * 907.2 + 48 + 120) * 4, 6);
    // The fused attention stores no [T, S] scores, so they are not among its buffers.
    expect(plain.buffers.map((b) => b.name)).not.toContain('attention scores');
  });

  it('LoRA: gradients and moments for the adapters only; PEFT target matching', () => {
    // c_attn: r * (4 + 12) = 32; "c_proj" matches attn.c_proj r*(4+4) = 16 and mlp.c_proj r*(16+4) = 40.
    expect(loraParamCount(tiny, { r: 2, targets: ['c_attn'] })).toBe(32);
    expect(loraParamCount(tiny, { r: 2, targets: ['c_proj'] })).toBe(56);
    expect(loraParamCount(tiny, { r: 2, targets: ['attn.c_proj'] })).toBe(16);
    expect(loraParamCount(tiny, { r: 2, targets: 'all-linear' })).toBe(32 + 16 + 2 * (4 + 16) + 40);
    const est = estimateTrainingMemory(tiny, { batchSize: 2, seqLen: 3, lora: { r: 2, targets: ['c_attn'] } });
    expect([est.trainableParams, est.gradients, est.optimizer, est.weights]).toEqual([32, 128, 256, 1296]);
    expect(() => loraParamCount(tiny, { r: 2, targets: ['q_proj'] })).toThrow(/"q_proj" matches no linear module of gpt2 \(its modules: c_attn, c_proj, c_fc, lm_head\)/);
  });

  it('SmolLM2-135M-Instruct with LoRA r = 8 on q_proj, v_proj', () => {
    const est = estimateFromConfigJson(JSON.stringify(SMOLLM2_135M_INSTRUCT), { batchSize: 4, seqLen: 256, lora: { r: 8, targets: ['q_proj', 'v_proj'] } });
    // q: 8 * (576 + 576) = 9216, v: 8 * (576 + 192) = 6144, per layer 15,360, 30 layers.
    expect(est.trainableParams).toBe(460_800);
    expect(est.weights).toBe(538_060_032);
    expect(est.gradients + est.optimizer).toBe(460_800 * 12);
    // The loss never holds the logits [4, 256, 49152] (201,326,592 bytes): 7 chunks of 147 rows, 28,901,376
    // bytes each. The largest tensor is the embedding matrix.
    expect(est.largestBuffer).toEqual({ name: 'model.embed_tokens.weight (the embedding matrix)', shape: [49152, 576], bytes: 113_246_208 });
    expect(est.buffers[1]).toEqual({ name: 'logits chunk', shape: [147, 49152], bytes: 28_901_376 });
    // With the whole logits (a budget that holds them), they are the largest tensor.
    const whole = estimateFromConfigJson(SMOLLM2_135M_INSTRUCT, { batchSize: 4, seqLen: 256, lora: { r: 8, targets: ['q_proj', 'v_proj'] }, logitsChunkBytes: Infinity });
    expect(whole.largestBuffer).toEqual({ name: 'logits', shape: [4, 256, 49152], bytes: 201_326_592 });
    expect(() => estimateFromConfigJson(SMOLLM2_135M_INSTRUCT, { batchSize: 1, seqLen: 9000 })).toThrow(/max_position_embeddings = 8192/);
  });
});

describe('checkFitsAdapter', () => {
  const smol = parseConfig(SMOLLM2_135M_INSTRUCT);
  const webgpuDefaults = { maxBufferSize: 268_435_456, maxStorageBufferBindingSize: 134_217_728 };

  it('the chunked loss fits the 135M shape at batch 4 x 256 under the default binding limit', () => {
    expect(checkFitsAdapter(estimateTrainingMemory(smol, { batchSize: 4, seqLen: 256, lora: { r: 8, targets: 'all-linear' } }), webgpuDefaults).ok).toBe(true);
    expect(checkFitsAdapter(estimateTrainingMemory(smol, { batchSize: 4, seqLen: 256, lora: { r: 8, targets: 'all-linear' }, path: 'stock' }), webgpuDefaults).ok).toBe(true);
  });

  it('refuses whole logits over the binding limit, naming the tensor, the limit and the largest batch that fits', () => {
    const fit = checkFitsAdapter(estimateTrainingMemory(smol, { batchSize: 4, seqLen: 256, lora: { r: 8, targets: 'all-linear' }, logitsChunkBytes: Infinity }), webgpuDefaults);
    expect(fit.ok).toBe(false);
    if (fit.ok) return;
    expect(fit.message).toBe(
      'logits [4, 256, 49152] float32 is 201,326,592 bytes (192.0 MiB), over this GPU\'s maxStorageBufferBindingSize of 134,217,728 bytes (128.0 MiB): '
      + 'use a smaller batch size or sequence length: batchSize x seqLen must be at most 682 (now 4 x 256 = 1024).');
    // 682 tokens: 682 * 49152 * 4 = 134,086,656 <= 134,217,728 < 683 * 49152 * 4.
    expect(checkFitsAdapter(estimateTrainingMemory(smol, { batchSize: 2, seqLen: 341, logitsChunkBytes: Infinity }), webgpuDefaults).ok).toBe(true);
    expect(checkFitsAdapter(estimateTrainingMemory(smol, { batchSize: 1, seqLen: 683, logitsChunkBytes: Infinity }), webgpuDefaults).ok).toBe(false);
  });

  it('refuses a model whose embedding matrix cannot be bound, whatever the batch', () => {
    const fit = checkFitsAdapter(estimateTrainingMemory(smol, { batchSize: 1, seqLen: 16 }), { maxBufferSize: 100_000_000, maxStorageBufferBindingSize: 134_217_728 });
    expect(fit.ok).toBe(false);
    if (fit.ok) return;
    expect(fit.limitName).toBe('maxBufferSize');
    expect(fit.message).toMatch(/^model\.embed_tokens\.weight \(the embedding matrix\) \[49152, 576\] float32 is 113,246,208 bytes \(108\.0 MiB\), over this GPU's maxBufferSize of 100,000,000 bytes .*: this model is too large for this GPU: choose a smaller model/);
    expect(formatBytes(512)).toBe('512 B');
  });
});

describe('the activation count is close to what tfjs holds', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });
  const cases: Array<[string, ModelConfig]> = [
    ['gpt2', { ...presetConfig('nano', { vocabSize: 256 }), n_positions: 64 } as ModelConfig],
    ['llama', presetConfig('nano', { vocabSize: 256, family: 'llama' })],
  ];
  for (const [name, config] of cases) {
    for (const T of [16, 64]) {
      it(`${name}, T = ${T}: weights + gradients + activations within 20% of tf.profile's peak of one forward + backward`, async () => {
        const B = 2;
        const model = CausalLM.create(config, { seed: 1 });
        const ids = tf.tensor2d(Array.from({ length: B * T }, (_, i) => (i * 7) % 256), [B, T], 'int32');
        const start = tf.memory().numBytes; // the weights (and the ids) before the step
        const info = await tf.profile(() => {
          const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, { training: true }), ids).loss);
          value.dispose();
          tf.dispose(grads);
        });
        const est = estimateTrainingMemory(config, { batchSize: B, seqLen: T, fullFineTune: true, path: 'stock' });
        const measured = info.peakBytes - start + est.weights;
        const predicted = est.weights + est.gradients + est.activations;
        const ratio = predicted / measured;
        expect(ratio, `predicted ${predicted} measured ${measured}`).toBeGreaterThan(0.8);
        expect(ratio, `predicted ${predicted} measured ${measured}`).toBeLessThan(1.2);
        ids.dispose();
        model.dispose();
      });
    }
  }
});
