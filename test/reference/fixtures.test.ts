/**
 * The Hugging Face reference fixtures (test/fixtures/hf, made by test/reference/make_fixtures.py)
 * are well-formed: safetensors bytes exactly as the Python writer lays them out, tensor names and
 * shapes those transformers / PEFT use for each config.json, expected values consistent with the
 * inputs. Self-contained (its own tiny safetensors reader, shape tables written from the
 * transformers modules), so a broken fixture is told apart from a broken engine.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf');

type Json = Record<string, any>;
interface Tensor { dtype: string; shape: number[]; data: Float32Array }
interface File { tensors: Map<string, Tensor>; metadata: Record<string, string>; order: string[]; headerLength: number }

/** Strict safetensors reader: F32 only (all fixtures), offsets must tile the buffer in header order. */
function readSafetensors(path: string): File {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const text = bytes.subarray(8, 8 + n).toString('utf8');
  expect(/^\{.*\}\s*$/s.test(text), `${path}: header is one JSON object padded with spaces`).toBe(true);
  expect(text.trimEnd().length, `${path}: compact header, padding only at the end`).toBe(JSON.stringify(JSON.parse(text)).length);
  const header = JSON.parse(text) as Json;
  const data = bytes.subarray(8 + n);
  const tensors = new Map<string, Tensor>();
  const order: string[] = [];
  let pos = 0;
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets as [number, number];
    const numel = (info.shape as number[]).reduce((a, b) => a * b, 1);
    expect(info.dtype, `${path}: ${name}`).toBe('F32');
    expect(begin, `${path}: ${name} starts where the previous tensor ended`).toBe(pos);
    expect(end - begin, `${path}: ${name} byte length`).toBe(numel * 4);
    const copy = new Uint8Array(data.subarray(begin, end));
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data: new Float32Array(copy.buffer) });
    order.push(name);
    pos = end;
  }
  expect(pos, `${path}: no trailing bytes`).toBe(data.length);
  return { tensors, metadata: header.__metadata__, order, headerLength: n };
}

function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Parameter shapes of GPT2LMHeadModel (modeling_gpt2.py: Conv1D weights [in, out]). */
function gpt2Shapes(c: Json): Map<string, number[]> {
  const C = c.n_embd, inner = c.n_inner ?? 4 * C;
  const s = new Map<string, number[]>([['transformer.wte.weight', [c.vocab_size, C]], ['transformer.wpe.weight', [c.n_positions, C]]]);
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}`;
    for (const ln of ['ln_1', 'ln_2']) { s.set(`${p}.${ln}.weight`, [C]); s.set(`${p}.${ln}.bias`, [C]); }
    s.set(`${p}.attn.c_attn.weight`, [C, 3 * C]); s.set(`${p}.attn.c_attn.bias`, [3 * C]);
    s.set(`${p}.attn.c_proj.weight`, [C, C]); s.set(`${p}.attn.c_proj.bias`, [C]);
    s.set(`${p}.mlp.c_fc.weight`, [C, inner]); s.set(`${p}.mlp.c_fc.bias`, [inner]);
    s.set(`${p}.mlp.c_proj.weight`, [inner, C]); s.set(`${p}.mlp.c_proj.bias`, [C]);
  }
  s.set('transformer.ln_f.weight', [C]); s.set('transformer.ln_f.bias', [C]);
  return s;
}

/** Parameter shapes of LlamaForCausalLM (modeling_llama.py: nn.Linear weights [out, in]). */
function llamaShapes(c: Json): Map<string, number[]> {
  const C = c.hidden_size, I = c.intermediate_size, hd = c.head_dim ?? C / c.num_attention_heads;
  const q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  const s = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocab_size, C]]]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    s.set(`${p}.input_layernorm.weight`, [C]); s.set(`${p}.post_attention_layernorm.weight`, [C]);
    for (const [m, shape] of [['q_proj', [q, C]], ['k_proj', [kv, C]], ['v_proj', [kv, C]], ['o_proj', [C, q]]] as const) {
      s.set(`${p}.self_attn.${m}.weight`, [...shape]);
      if (c.attention_bias) s.set(`${p}.self_attn.${m}.bias`, [shape[0]]);
    }
    for (const [m, shape] of [['gate_proj', [I, C]], ['up_proj', [I, C]], ['down_proj', [C, I]]] as const) {
      s.set(`${p}.mlp.${m}.weight`, [...shape]);
      if (c.mlp_bias) s.set(`${p}.mlp.${m}.bias`, [shape[0]]);
    }
  }
  s.set('model.norm.weight', [C]);
  if (!c.tie_word_embeddings) s.set('lm_head.weight', [c.vocab_size, C]);
  return s;
}

const shapesOf = (c: Json) => (c.model_type === 'gpt2' ? gpt2Shapes(c) : llamaShapes(c));
const sortedEntries = (m: Map<string, number[]>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
const mapOfShapes = (f: File) => new Map([...f.tensors].map(([k, t]) => [k, t.shape]));

/** Shift-aware trained-token count per row: labels[t + 1] != -100 for t < T - 1. */
function trainedPerRow(labels: number[][]): number[] {
  return labels.map((row) => row.slice(1).filter((l) => l !== -100).length);
}

function allSafetensors(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...allSafetensors(p));
    else if (e.endsWith('.safetensors')) out.push(p);
  }
  return out;
}

describe('safetensors files are laid out as the Python writer does', () => {
  const files = allSafetensors(ROOT);
  it('finds every fixture file', () => {
    // The committed set, by path: a fixture that goes missing or appears unannounced fails here.
    expect(files.map((f) => f.slice(ROOT.length + 1).split(sep).join('/')).sort()).toEqual([
      'gpt2-tiny-original/model.safetensors',
      'gpt2-tiny-v5/model.safetensors',
      'gpt2-tiny/expected.safetensors',
      'gpt2-tiny/model.safetensors',
      'llama-tiny-sharded/model-00001-of-00002.safetensors',
      'llama-tiny-sharded/model-00002-of-00002.safetensors',
      'llama-tiny-v5/model.safetensors',
      'llama-tiny-variant/expected.safetensors',
      'llama-tiny-variant/model.safetensors',
      'llama-tiny/expected.safetensors',
      'llama-tiny/model.safetensors',
      'lora/gpt2-tiny-c_attn/adapter_model.safetensors',
      'lora/gpt2-tiny-c_attn/expected.safetensors',
      'lora/llama-tiny-qv-rslora/adapter_model.safetensors',
      'lora/llama-tiny-qv-rslora/expected.safetensors',
      'lora/llama-tiny-qv/adapter_model.safetensors',
      'lora/llama-tiny-qv/expected.safetensors',
      'lora/webtune/gpt2-all-linear-lm_head/adapter_model.safetensors',
      'lora/webtune/gpt2-all-linear-lm_head/expected.safetensors',
      'lora/webtune/gpt2-all-linear-lm_head/merged/model.safetensors',
      'lora/webtune/llama-regex-rslora-embed/adapter_model.safetensors',
      'lora/webtune/llama-regex-rslora-embed/expected.safetensors',
      'lora/webtune/llama-regex-rslora-embed/merged/model.safetensors',
      'lora/webtune/llama-variant-glob-tied-embed/adapter_model.safetensors',
      'lora/webtune/llama-variant-glob-tied-embed/expected.safetensors',
      'lora/webtune/llama-variant-glob-tied-embed/merged/model.safetensors',
      'packed/gpt2-tiny/expected.safetensors',
      'packed/llama-tiny/expected.safetensors',
    ]);
  });
  it.each(files.map((f) => [f.slice(ROOT.length + 1), f]))('%s', (_rel, path) => {
    const f = readSafetensors(path);
    expect((8 + f.headerLength) % 8).toBe(0);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.order).toEqual([...f.order].sort());   // one dtype: tensors by name
    for (const [name, t] of f.tensors) expect(t.data.every(Number.isFinite), name).toBe(true);
  });
});

describe('checkpoints: names and shapes follow config.json', () => {
  const cases: Array<[string, string]> = [
    ['gpt2-tiny', 'model.safetensors'], ['gpt2-tiny-v5', 'model.safetensors'], ['llama-tiny', 'model.safetensors'],
    ['llama-tiny-v5', 'model.safetensors'], ['llama-tiny-variant', 'model.safetensors'],
  ];
  it.each(cases)('%s', (dir, file) => {
    const config = readJson(join(ROOT, dir, 'config.json'));
    const f = readSafetensors(join(ROOT, dir, file));
    expect(sortedEntries(mapOfShapes(f))).toEqual(sortedEntries(shapesOf(config)));
  });

  it('v4 and v5 configs describe the same models', () => {
    for (const name of ['gpt2-tiny', 'llama-tiny']) {
      const v4 = readJson(join(ROOT, name, 'config.json'));
      const v5 = readJson(join(ROOT, `${name}-v5`, 'config.json'));
      expect(v4.torch_dtype).toBe('float32');
      expect(v5.dtype).toBe('float32');
      expect(v5.torch_dtype).toBeUndefined();
      expect(shapesOf(v5)).toEqual(shapesOf(v4));
      if (name === 'llama-tiny') {
        expect(v5.rope_parameters).toEqual({ rope_theta: v4.rope_theta, rope_type: 'default' });
        expect(v5.rope_theta).toBeUndefined();
      }
      expect(readFileSync(join(ROOT, name, 'model.safetensors')).equals(readFileSync(join(ROOT, `${name}-v5`, 'model.safetensors')))).toBe(true);
    }
  });

  it('the tiny configs have the sizes the fixtures promise', () => {
    const g = readJson(join(ROOT, 'gpt2-tiny', 'config.json'));
    expect([g.model_type, g.n_embd, g.n_layer, g.n_head, g.n_positions, g.vocab_size, g.activation_function, g.layer_norm_epsilon, g.tie_word_embeddings])
      .toEqual(['gpt2', 16, 2, 2, 32, 37, 'gelu_new', 1e-5, true]);
    const l = readJson(join(ROOT, 'llama-tiny', 'config.json'));
    expect([l.model_type, l.hidden_size, l.intermediate_size, l.num_hidden_layers, l.num_attention_heads, l.num_key_value_heads, l.head_dim,
      l.rms_norm_eps, l.rope_theta, l.vocab_size, l.tie_word_embeddings, l.attention_bias, l.mlp_bias])
      .toEqual(['llama', 16, 40, 2, 4, 2, 4, 1e-6, 10000, 37, false, false, false]);
    const v = readJson(join(ROOT, 'llama-tiny-variant', 'config.json'));
    expect(v.head_dim * v.num_attention_heads).not.toBe(v.hidden_size);   // head_dim is not hidden / heads
  });

  it('gpt2-tiny-original: original GPT-2 keys (no transformer. prefix) plus attn.bias buffers, same values', () => {
    const config = readJson(join(ROOT, 'gpt2-tiny-original', 'config.json'));
    expect(config.n_ctx).toBe(32);
    expect(config.tie_word_embeddings).toBeUndefined();
    const orig = readSafetensors(join(ROOT, 'gpt2-tiny-original', 'model.safetensors'));
    const hf = readSafetensors(join(ROOT, 'gpt2-tiny', 'model.safetensors'));
    for (const [name, t] of hf.tensors) {
      const o = orig.tensors.get(name.slice('transformer.'.length));
      expect(o?.shape, name).toEqual(t.shape);
      expect(Array.from(o!.data)).toEqual(Array.from(t.data));
    }
    for (let i = 0; i < config.n_layer; i++) {
      const bias = orig.tensors.get(`h.${i}.attn.bias`)!;
      expect(bias.shape).toEqual([1, 1, 32, 32]);
      expect(bias.data[0 * 32 + 1]).toBe(0);   // tril: row 0 sees only column 0
      expect(bias.data[1 * 32 + 0]).toBe(1);
    }
    expect(orig.tensors.size).toBe(hf.tensors.size + config.n_layer);
  });

  it('llama-tiny-sharded: the index covers both shards and equals the single file', () => {
    const dir = join(ROOT, 'llama-tiny-sharded');
    const index = readJson(join(dir, 'model.safetensors.index.json'));
    const single = readSafetensors(join(ROOT, 'llama-tiny', 'model.safetensors'));
    const shards = [...new Set(Object.values(index.weight_map as Record<string, string>))].sort();
    expect(shards).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    let bytes = 0;
    const seen = new Set<string>();
    for (const shard of shards) {
      const f = readSafetensors(join(dir, shard));
      for (const [name, t] of f.tensors) {
        expect(index.weight_map[name]).toBe(shard);
        expect(Array.from(t.data)).toEqual(Array.from(single.tensors.get(name)!.data));
        bytes += t.data.length * 4;
        seen.add(name);
      }
    }
    expect([...seen].sort()).toEqual([...single.tensors.keys()].sort());
    expect(index.metadata.total_size).toBe(bytes);
  });
});

describe('expected values agree with the inputs', () => {
  for (const name of ['gpt2-tiny', 'llama-tiny', 'llama-tiny-variant']) {
    it(`${name}: logits [B, T, V], a gradient per parameter, loss = sum / count`, () => {
      const config = readJson(join(ROOT, name, 'config.json'));
      const inputs = readJson(join(ROOT, name, 'inputs.json'));
      const exp = readSafetensors(join(ROOT, name, 'expected.safetensors'));
      const json = readJson(join(ROOT, name, 'expected.json'));
      const [B, T] = [inputs.input_ids.length, inputs.input_ids[0].length];
      expect(exp.tensors.get('logits')!.shape).toEqual([B, T, config.vocab_size]);
      for (const key of ['labels', 'attention_mask']) expect(inputs[key].map((r: number[]) => r.length)).toEqual(Array(B).fill(T));
      for (const row of inputs.input_ids) for (const id of row) expect(id >= 0 && id < config.vocab_size).toBe(true);
      const grads = new Map([...exp.tensors].filter(([k]) => k.startsWith('grad.')).map(([k, t]) => [k.slice(5), t.shape]));
      expect(sortedEntries(grads)).toEqual(sortedEntries(shapesOf(config)));
      expect(json.rows.map((r: Json) => r.count)).toEqual(trainedPerRow(inputs.labels));
      const sum = json.rows.reduce((a: number, r: Json) => a + r.sum, 0);
      expect(json.loss).toBeCloseTo(sum / json.count, 12);
      // padding carries no label and sits at the end of the row
      inputs.attention_mask.forEach((m: number[], b: number) => m.forEach((v, t) => { if (v === 0) expect(inputs.labels[b][t]).toBe(-100); }));
      expect(json.float32_max_abs_logit_gap).toBeLessThan(1e-5);
    });
  }

  for (const name of ['gpt2-tiny', 'llama-tiny']) {
    it(`packed/${name}: two segments with restarting positions, first label of each -100`, () => {
      const dir = join(ROOT, 'packed', name);
      const inputs = readJson(join(dir, 'inputs.json'));
      const json = readJson(join(dir, 'expected.json'));
      const exp = readSafetensors(join(dir, 'expected.safetensors'));
      const config = readJson(join(ROOT, name, 'config.json'));
      expect(inputs.attention_mask).toEqual([[1, 1, 1, 2, 2, 2, 0]]);
      expect(inputs.position_ids).toEqual([[0, 1, 2, 0, 1, 2, 0]]);
      expect([inputs.labels[0][0], inputs.labels[0][3], inputs.labels[0][6]]).toEqual([-100, -100, -100]);
      expect(exp.tensors.get('logits')!.shape).toEqual([1, 7, config.vocab_size]);
      expect(json.segments.map((s: Json) => s.count)).toEqual([2, 2]);
      expect(json.loss).toBeCloseTo((json.segments[0].sum + json.segments[1].sum) / 4, 12);
      const grads = new Map([...exp.tensors].filter(([k]) => k.startsWith('grad.')).map(([k, t]) => [k.slice(5), t.shape]));
      expect(sortedEntries(grads)).toEqual(sortedEntries(shapesOf(config)));
    });
  }
});

describe('PEFT LoRA adapters', () => {
  const cases: Array<[string, string, string[], boolean, number]> = [
    ['gpt2-tiny-c_attn', 'gpt2-tiny', ['c_attn'], false, 2],
    ['llama-tiny-qv', 'llama-tiny', ['q_proj', 'v_proj'], false, 2],
    ['llama-tiny-qv-rslora', 'llama-tiny', ['q_proj', 'v_proj'], true, 4],
  ];
  it.each(cases)('%s: adapter_config.json, PEFT keys, A [r, in], B [out, r], expected grads', (name, base, targets, rslora, scaling) => {
    const dir = join(ROOT, 'lora', name);
    const cfg = readJson(join(dir, 'adapter_config.json'));
    expect([cfg.peft_type, cfg.task_type, cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.bias, cfg.modules_to_save, cfg.use_rslora, cfg.use_dora])
      .toEqual(['LORA', 'CAUSAL_LM', 4, 8, 0, 'none', null, rslora, false]);
    expect([...cfg.target_modules].sort()).toEqual(targets);
    expect(cfg.fan_in_fan_out).toBe(base.startsWith('gpt2'));
    expect(cfg.lora_alpha / (rslora ? Math.sqrt(cfg.r) : cfg.r)).toBe(scaling);
    expect(readJson(join(dir, 'expected.json')).scaling).toBe(scaling);

    const baseShapes = shapesOf(readJson(join(ROOT, base, 'config.json')));
    const adapter = readSafetensors(join(dir, 'adapter_model.safetensors'));
    const modules = [...baseShapes.keys()].filter((k) => targets.some((t) => k.endsWith(`.${t}.weight`))).map((k) => k.slice(0, -'.weight'.length));
    const want = new Map<string, number[]>();
    for (const m of modules) {
      const w = baseShapes.get(`${m}.weight`)!;
      const [inF, outF] = cfg.fan_in_fan_out ? [w[0], w[1]] : [w[1], w[0]];   // Conv1D stores [in, out]
      want.set(`base_model.model.${m}.lora_A.weight`, [cfg.r, inF]);
      want.set(`base_model.model.${m}.lora_B.weight`, [outF, cfg.r]);
    }
    expect(sortedEntries(mapOfShapes(adapter))).toEqual(sortedEntries(want));
    for (const [k, t] of adapter.tensors) if (k.includes('lora_B')) expect(t.data.some((x) => x !== 0), `${k} is non-zero`).toBe(true);

    const exp = readSafetensors(join(dir, 'expected.safetensors'));
    const grads = new Map([...exp.tensors].filter(([k]) => k.startsWith('grad.')).map(([k, t]) => [k.slice(5), t.shape]));
    expect(sortedEntries(grads)).toEqual(sortedEntries(want));
    const merged = new Map([...exp.tensors].filter(([k]) => k.startsWith('merged.')).map(([k, t]) => [k.slice(7), t.shape]));
    expect(sortedEntries(merged)).toEqual(sortedEntries(new Map(modules.map((m) => [`${m}.weight`, baseShapes.get(`${m}.weight`)!]))));
    expect(exp.tensors.get('logits')!.shape).toEqual(exp.tensors.get('logits_merged')!.shape);
  });
});
