import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../helpers/backends.js';
import { CausalLM } from '../../models/causal_lm.js';
import { presetConfig, parseConfig, type ModelConfig } from '../../models/config.js';
import { MemoryFiles, FileNotFoundError } from '../../src/io/files.js';
import { parseSafetensors, writeSafetensors, float16ToFloat32, type WritableTensor } from '../../src/io/safetensors.js';
import { loadModel, saveModel, loadCheckpointTensors, copyTokenizerFiles, modelTensors } from '../../src/io/checkpoint.js';

// Tiny models: the nano presets with a 32-token vocabulary (a few tens of thousands of parameters).
const gpt2 = (): ModelConfig => ({ ...presetConfig('nano', { vocabSize: 32 }), n_positions: 16 } as ModelConfig);
const llama = (tied: boolean): ModelConfig => ({ ...presetConfig('nano', { vocabSize: 32, family: 'llama' }), tie_word_embeddings: tied } as ModelConfig);

const u32 = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Every parameter of `b` has the bits of the same parameter of `a`, and the names agree. */
async function expectSameParams(a: CausalLM, b: CausalLM): Promise<void> {
  expect([...b.params.keys()].sort()).toEqual([...a.params.keys()].sort());
  for (const [name, v] of a.params) {
    const w = b.params.get(name)!;
    expect(w.shape, name).toEqual(v.shape);
    const x = u32((await v.data()) as Float32Array), y = u32((await w.data()) as Float32Array);
    expect(Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(x.buffer, x.byteOffset, x.byteLength)), name).toBe(true);
  }
}

async function logits(model: CausalLM): Promise<Float32Array> {
  const ids = tf.tensor2d([[1, 5, 7, 2], [3, 3, 0, 31]], [2, 4], 'int32');
  const out = model.forward(ids);
  const data = (await out.data()) as Float32Array;
  ids.dispose();
  out.dispose();
  return data;
}

/** A safetensors file with tensors of any dtype given as raw bytes, laid out in the given order. */
function rawSafetensors(entries: Array<{ name: string; dtype: string; shape: number[]; bytes: Uint8Array }>): Uint8Array {
  let off = 0;
  const header: Record<string, unknown> = {};
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + off);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  let pos = 8 + h.length;
  for (const e of entries) {
    out.set(e.bytes, pos);
    pos += e.bytes.length;
  }
  return out;
}

beforeAll(async () => {
  await useBackend('cpu');
});

const models: CausalLM[] = [];
afterAll(() => models.forEach((m) => m.dispose()));
const keep = (m: CausalLM) => (models.push(m), m);

describe('saveModel / loadModel round trip', () => {
  const cases: Array<[string, () => ModelConfig, string[]]> = [
    ['GPT-2 (tied)', gpt2, ['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.h.0.attn.c_attn.weight', 'transformer.h.1.mlp.c_proj.bias', 'transformer.ln_f.weight']],
    ['Llama (tied)', () => llama(true), ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.1.mlp.down_proj.weight', 'model.norm.weight']],
    ['Llama (untied)', () => llama(false), ['model.embed_tokens.weight', 'lm_head.weight', 'model.layers.1.post_attention_layernorm.weight']],
  ];
  for (const [title, makeConfig, someKeys] of cases) {
    it(`${title}: bit-exact parameters and logits, HF file layout`, async () => {
      const config = makeConfig();
      const model = keep(CausalLM.create(config, { seed: 3 }));
      const dir = new MemoryFiles(undefined, 'out');
      await saveModel(model, dir);
      expect([...dir.files.keys()].sort()).toEqual(['config.json', 'model.safetensors']);

      // The weights file: HF names and shapes, float32, {"format": "pt"}, lm_head only when untied.
      const { tensors, metadata } = parseSafetensors(dir.files.get('model.safetensors')!, 'model.safetensors');
      expect(metadata).toEqual({ format: 'pt' });
      expect([...tensors.keys()].sort()).toEqual([...model.params.keys()].sort());
      for (const k of someKeys) expect(tensors.has(k), k).toBe(true);
      expect(tensors.has('lm_head.weight')).toBe(!config.tie_word_embeddings);
      for (const [k, t] of tensors) {
        expect(t.dtype, k).toBe('F32');
        expect(t.shape, k).toEqual(model.params.get(k)!.shape);
      }
      if (config.model_type === 'gpt2') {
        expect(tensors.get('transformer.h.0.attn.c_attn.weight')!.shape).toEqual([64, 192]); // Conv1D: [in, out]
      } else {
        expect(tensors.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([32, 64]); // Linear: [out, in], 1 KV head of 32
      }

      // config.json parses back to the same config.
      const json = JSON.parse(new TextDecoder().decode(dir.files.get('config.json')!));
      expect(json.architectures).toEqual([config.model_type === 'gpt2' ? 'GPT2LMHeadModel' : 'LlamaForCausalLM']);
      expect(parseConfig(json)).toEqual(config);

      const back = keep(await loadModel(dir));
      expect(back.config).toEqual(config);
      await expectSameParams(model, back);
      expect(u32(await logits(back))).toEqual(u32(await logits(model)));
    });
  }

  it('works through a Node directory given as a path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'webtune-io-ckpt-'));
    try {
      const model = keep(CausalLM.create(gpt2(), { seed: 1 }));
      await saveModel(model, join(dir, 'ckpt'));
      expect((await readdir(join(dir, 'ckpt'))).sort()).toEqual(['config.json', 'model.safetensors']);
      await expectSameParams(model, keep(await loadModel(join(dir, 'ckpt'))));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('loading other layouts', () => {
  it('loads original GPT-2 keys (no "transformer." prefix) and skips the attn.bias buffers', async () => {
    const config = gpt2();
    const model = keep(CausalLM.create(config, { seed: 5 }));
    const stored = new Map<string, WritableTensor>();
    for (const [name, t] of await modelTensors(model)) stored.set(name.replace(/^transformer\./, ''), t);
    for (let i = 0; i < 2; i++) {
      stored.set(`h.${i}.attn.bias`, { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) });
      stored.set(`h.${i}.attn.masked_bias`, { shape: [], data: new Float32Array([-1e4]) });
    }
    const dir = new MemoryFiles(undefined, 'gpt2-original');
    await dir.write('config.json', JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 32, n_positions: 16, n_ctx: 16, n_embd: 64, n_layer: 2, n_head: 2, bos_token_id: 0, eos_token_id: 0 }));
    await dir.write('model.safetensors', writeSafetensors(stored));
    expect(parseSafetensors(dir.files.get('model.safetensors')!, 'x').tensors.has('wte.weight')).toBe(true);
    await expectSameParams(model, keep(await loadModel(dir)));
  });

  it('loads BF16 and F16 weights as float32', async () => {
    // Parameters stored alternately as float16 (rounded to multiples of 2^-10, which float16
    // holds exactly in this range; bits found through the decoder tested in safetensors.test.ts)
    // and bfloat16 (the top half of the float32 bits: truncation).
    const halfBits = new Map<number, number>();
    float16ToFloat32(new Uint16Array(65536).map((_, i) => i)).forEach((v, i) => { if (!halfBits.has(v) && Number.isFinite(v)) halfBits.set(v, i); });
    const config = llama(true);
    const model = keep(CausalLM.create(config, { seed: 9 }));
    const entries: Array<{ name: string; dtype: string; shape: number[]; bytes: Uint8Array }> = [];
    const expected = new Map<string, Float32Array>();
    let i = 0;
    for (const [name, t] of await modelTensors(model)) {
      const half = i++ % 2 === 0;
      const bits = new Uint16Array(t.data.length);
      const want = new Float32Array(t.data.length);
      const data = t.data as Float32Array;
      const words = u32(data);
      data.forEach((x, j) => {
        if (half) {
          want[j] = Math.round(x * 1024) / 1024 + 0; // + 0: no -0 (the bits map keys +0 and -0 alike)
          bits[j] = halfBits.get(want[j])!;
        } else {
          bits[j] = words[j] >>> 16;
          u32(want)[j] = (words[j] >>> 16) << 16;
        }
      });
      entries.push({ name, dtype: half ? 'F16' : 'BF16', shape: t.shape, bytes: new Uint8Array(bits.buffer) });
      expected.set(name, want);
    }
    const dir = new MemoryFiles(undefined, 'llama-bf16');
    await dir.write('config.json', (await saveAndGet(model)).get('config.json')!);
    await dir.write('model.safetensors', rawSafetensors(entries));
    const back = keep(await loadModel(dir));
    for (const [name, want] of expected) {
      expect(u32((await back.params.get(name)!.data()) as Float32Array), name).toEqual(u32(want));
    }
  });
});

async function saveAndGet(model: CausalLM): Promise<Map<string, Uint8Array>> {
  const dir = new MemoryFiles();
  await saveModel(model, dir);
  return dir.files;
}

describe('sharded checkpoints (model.safetensors.index.json)', () => {
  let files: Map<string, Uint8Array>;
  let model: CausalLM;
  const shardA = 'model-00001-of-00002.safetensors', shardB = 'model-00002-of-00002.safetensors';

  beforeAll(async () => {
    model = keep(CausalLM.create(llama(false), { seed: 11 }));
    const all = await modelTensors(model);
    const names = [...all.keys()].sort();
    const a = new Map(names.slice(0, 5).map((n) => [n, all.get(n)!]));
    const b = new Map(names.slice(5).map((n) => [n, all.get(n)!]));
    const weightMap = Object.fromEntries([...names.slice(0, 5).map((n) => [n, shardA]), ...names.slice(5).map((n) => [n, shardB])]);
    files = new Map([
      ['config.json', (await saveAndGet(model)).get('config.json')!],
      [shardA, writeSafetensors(a, { format: 'pt' })],
      [shardB, writeSafetensors(b, { format: 'pt' })],
      ['model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }))],
    ]);
  });

  const copy = () => new MemoryFiles(new Map(files), 'sharded');
  const editIndex = (dir: MemoryFiles, edit: (index: any) => void) => {
    const index = JSON.parse(new TextDecoder().decode(dir.files.get('model.safetensors.index.json')!));
    edit(index);
    dir.files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify(index)));
  };

  it('loads every shard', async () => {
    const { files: read, tensors } = await loadCheckpointTensors(copy());
    expect(read).toEqual([shardA, shardB]);
    expect(tensors.size).toBe(model.params.size);
    await expectSameParams(model, keep(await loadModel(copy())));
  });

  const errors: Array<[string, (d: MemoryFiles) => void, string | RegExp]> = [
    ['missing shard', (d) => d.files.delete(shardB), new RegExp(`^sharded/${shardB}: missing shard \\(named in model.safetensors.index.json for tensor "model\\.`)],
    ['index not JSON', (d) => d.files.set('model.safetensors.index.json', new TextEncoder().encode('{"weight_map": ')), /^sharded\/model.safetensors.index.json: not valid JSON/],
    ['no weight_map', (d) => editIndex(d, (i) => delete i.weight_map), 'sharded/model.safetensors.index.json: must be an object with a "weight_map" object'],
    ['shard name escaping the directory', (d) => editIndex(d, (i) => (i.weight_map['model.norm.weight'] = '../x.safetensors')), /weight_map\["model.norm.weight"\]: "\.\.\/x.safetensors": must not contain/],
    ['tensor mapped to the wrong shard', (d) => editIndex(d, (i) => {
      const name = Object.keys(i.weight_map).find((k) => i.weight_map[k] === shardB)!;
      i.weight_map[name] = shardA;
    }), new RegExp(`^sharded/model.safetensors.index.json: tensor ".*" is mapped to ${shardA}, which does not contain it`)],
    ['tensor in the wrong shard', (d) => editIndex(d, (i) => {
      const name = Object.keys(i.weight_map).find((k) => i.weight_map[k] === shardA)!;
      i.weight_map[name] = shardB;
    }), new RegExp(`^sharded/${shardA}: tensor ".*" is mapped to ${shardB} by model.safetensors.index.json: the index and the shards disagree`)],
    ['tensor missing from the index', (d) => editIndex(d, (i) => delete i.weight_map['model.norm.weight']), `sharded/${shardB}: tensor "model.norm.weight" is not in model.safetensors.index.json: the index and the shards disagree`],
    ['index names a tensor no shard has', (d) => editIndex(d, (i) => (i.weight_map['model.extra.weight'] = shardA)), `sharded/model.safetensors.index.json: tensor "model.extra.weight" is mapped to ${shardA}, which does not contain it`],
    ['corrupt shard', (d) => d.files.set(shardA, d.files.get(shardA)!.subarray(0, d.files.get(shardA)!.length - 4)), new RegExp(`^sharded/${shardA}: tensor ".*": data_offsets .* run past the end`)],
  ];
  for (const [title, corrupt, want] of errors) {
    it(`error: ${title}`, async () => {
      const dir = copy();
      corrupt(dir);
      await expect(loadModel(dir)).rejects.toThrow(want);
    });
  }
});

describe('checkpoint errors name the file', () => {
  it('missing config.json, missing weights, a pickle-only directory', async () => {
    const none = new MemoryFiles(undefined, 'empty');
    const err = await loadModel(none).catch((e) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err.message).toBe('empty/config.json: missing: a checkpoint directory needs config.json');
    await none.write('config.json', '{"model_type": "gpt2"}');
    await expect(loadModel(none)).rejects.toThrow('empty/model.safetensors: missing, and there is no model.safetensors.index.json either');
    await none.write('pytorch_model.bin', new Uint8Array(4));
    await expect(loadModel(none)).rejects.toThrow(/it has pytorch_model.bin: PyTorch pickles are not read/);
  });

  it('a wrong shape names the weights file and the key (via CausalLM.fromTensors)', async () => {
    const model = keep(CausalLM.create(gpt2(), { seed: 2 }));
    const files = await saveAndGet(model);
    const dir = new MemoryFiles(files, 'ckpt');
    const json = JSON.parse(new TextDecoder().decode(files.get('config.json')!));
    json.n_embd = 32; // the weights no longer match
    await dir.write('config.json', JSON.stringify(json));
    await expect(loadModel(dir)).rejects.toThrow(/^ckpt\/model.safetensors: .*tensor 'transformer\./);
  });

  it('an invalid config names config.json', async () => {
    const dir = new MemoryFiles(await saveAndGet(keep(CausalLM.create(gpt2()))), 'ckpt');
    await dir.write('config.json', '{"model_type": "bert"}');
    await expect(loadModel(dir)).rejects.toThrow(/^ckpt\/config.json: /);
    await dir.write('config.json', '[1]');
    await expect(loadModel(dir)).rejects.toThrow('ckpt/config.json: must be a JSON object');
  });
});

describe('copyTokenizerFiles', () => {
  it('copies the tokenizer files that exist, byte for byte', async () => {
    const src = new MemoryFiles(new Map([
      ['tokenizer.json', new Uint8Array([1, 2, 3])],
      ['tokenizer_config.json', new TextEncoder().encode('{"chat_template": "x"}')],
      ['generation_config.json', new TextEncoder().encode('{}')],
      ['model.safetensors', new Uint8Array(8)],
    ]));
    const sink = new MemoryFiles();
    expect(await copyTokenizerFiles(src, sink)).toEqual(['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']);
    expect([...sink.files.keys()]).toEqual(['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']);
    expect(Array.from(sink.files.get('tokenizer.json')!)).toEqual([1, 2, 3]);
  });
});
