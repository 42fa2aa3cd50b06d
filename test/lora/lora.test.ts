import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { CausalLM, parseConfig } from '../../models/index.js';
import { loadModel, loadAdapter, saveAdapter, MemoryFiles, parseSafetensors, writeSafetensors, adapterConfigText } from '../../src/io/index.js';
import { applyLora, resolveTargets, matchesEntry, mergeLora, unmergeLora, mergeAndUnload, loraTrainableReport, loraState, loraTensors } from '../../src/nn/lora.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import { adamwInit, adamwUpdate } from '../../src/train/optim.js';
import { CASES, buildCase } from '../reference/webtune_adapters.js';

const HF = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf');
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const readST = (p: string) => parseSafetensors(new Uint8Array(readFileSync(p)), p).tensors;
const inputs = readJson(join(HF, 'lora', 'llama-tiny-qv', 'inputs.json')) as { input_ids: number[][]; attention_mask: number[][]; labels: number[][] };
const B = 2, T = 9;
const t2 = (rows: number[][]) => tf.tensor2d(rows.flat(), [B, T], 'int32');
/** Values at real (attention_mask 1) positions only: padding logits are not defined by the contract. */
function real(data: ArrayLike<number>, V: number): number[] {
  const out: number[] = [];
  inputs.attention_mask.flat().forEach((m, i) => { if (m) for (let v = 0; v < V; v++) out.push(data[i * V + v]); });
  return out;
}
async function logitsOf(model: CausalLM, opts: { training?: boolean; seed?: number } = {}): Promise<Float32Array> {
  const ids = t2(inputs.input_ids), mask = t2(inputs.attention_mask);
  const l = model.forward(ids, { attentionMask: mask, ...opts });
  const d = (await l.data()) as Float32Array;
  tf.dispose([ids, mask, l]);
  return d;
}
async function snapshot(vars: Map<string, tf.Variable>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of vars) out.set(k, (await v.data()).slice() as Float32Array);
  return out;
}
const llamaTiny = () => loadModel(join(HF, 'llama-tiny'));
const gpt2Tiny = () => loadModel(join(HF, 'gpt2-tiny'));

beforeAll(async () => { await useBackend('cpu'); });

describe('applyLora', () => {
  it('leaves outputs exactly unchanged at initialisation (B = 0), freezes the base, A as PEFT initialises it', async () => {
    for (const [make, targets] of [[gpt2Tiny, ['c_attn', 'c_fc']], [llamaTiny, 'all-linear']] as const) {
      const model = await make();
      const before = await logitsOf(model);
      const state = applyLora(model, { r: 4, alpha: 8, targetModules: targets as string[] | string, seed: 5 });
      expect(Array.from(await logitsOf(model))).toEqual(Array.from(before));
      expect([...model.params.values()].every((v) => !v.trainable)).toBe(true);
      const names = [...model.trainableParams().keys()];
      expect(names.length).toBe(2 * state.targets.length);
      expect(names.every((n) => /\.lora_[AB]\.weight$/.test(n))).toBe(true);
      for (const path of state.targets) {
        const lin = model.linearModules().get(path)!;
        const A = await lin.lora!.A.data(), Bm = await lin.lora!.B.data();
        expect(lin.lora!.A.shape).toEqual([4, lin.inFeatures]);
        expect(lin.lora!.B.shape).toEqual([lin.outFeatures, 4]);
        expect(Bm.every((x) => x === 0)).toBe(true);
        // kaiming_uniform_(a=sqrt(5)) on [r, in]: U(-1/sqrt(in), 1/sqrt(in)); the sample spans most of it.
        const bound = 1 / Math.sqrt(lin.inFeatures);
        expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(bound);
        expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.8 * bound);
      }
      model.dispose();
    }
  });

  it("'gaussian' init draws A from normal(0, 1/r); the same seed gives the same A", async () => {
    const a = CausalLM.create(parseConfig(readJson(join(HF, 'llama-tiny', 'config.json'))), { seed: 0 });
    applyLora(a, { r: 2, targetModules: 'all-linear', init: 'gaussian', seed: 9 });
    const values = [...loraTensors(a)].filter(([n]) => n.endsWith('lora_A.weight')).flatMap(([, v]) => Array.from(v.dataSync()));
    const mean = values.reduce((s, x) => s + x, 0) / values.length;
    const std = Math.sqrt(values.reduce((s, x) => s + (x - mean) ** 2, 0) / values.length);
    expect(values.length).toBeGreaterThan(400);
    expect(Math.abs(std - 0.5)).toBeLessThan(0.05);
    const b = CausalLM.create(a.config, { seed: 0 });
    applyLora(b, { r: 2, targetModules: 'all-linear', init: 'gaussian', seed: 9 });
    const q = 'model.layers.1.mlp.down_proj.lora_A.weight';
    expect(Array.from(b.trainableParams().get(q)!.dataSync())).toEqual(Array.from(a.trainableParams().get(q)!.dataSync()));
    a.dispose(); b.dispose();
  });

  it('matches targets as PEFT does: names by suffix, globs, full-match regex, all-linear without lm_head', () => {
    const gpt2 = ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_fc', 'transformer.h.0.mlp.c_proj',
      'transformer.h.1.attn.c_attn', 'transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_fc', 'transformer.h.1.mlp.c_proj', 'lm_head'];
    const table: Array<[string[] | string, string[]]> = [
      [['c_attn'], ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']],
      [['c_proj'], ['transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_proj']],
      [['attn.c_proj'], ['transformer.h.0.attn.c_proj', 'transformer.h.1.attn.c_proj']],
      [['transformer.h.1.mlp.c_fc'], ['transformer.h.1.mlp.c_fc']],
      [['h.1.*.c_proj'], ['transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_proj']],
      [['**.mlp.c_fc'], ['transformer.h.0.mlp.c_fc', 'transformer.h.1.mlp.c_fc']],
      ['.*\\.0\\.attn\\..*', ['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj']],
      ['c_attn', []],   // a string is a regex with full match: 'c_attn' matches no whole path
      ['all-linear', gpt2.filter((n) => n !== 'lm_head').sort()],
      [['lm_head'], ['lm_head']],
    ];
    for (const [targets, want] of table) {
      if (want.length === 0) expect(() => resolveTargets(targets, gpt2)).toThrow(/'c_attn'.*matches no linear module; available linear modules: c_attn, c_proj, c_fc, lm_head/);
      else expect(resolveTargets(targets, gpt2)).toEqual(want);
    }
    expect(matchesEntry('model.layers.0.self_attn.q_proj', 'q_proj')).toBe(true);
    expect(matchesEntry('model.layers.0.self_attn.qq_proj', 'q_proj')).toBe(false);   // '.<name>' suffix, not any suffix
    expect(() => resolveTargets(['q_proj'], gpt2)).toThrow(/entry 'q_proj' matches no linear module; available linear modules: c_attn, c_proj, c_fc, lm_head/);
  });

  it('reports trainable parameters in the exact words and numbers PEFT prints', async () => {
    // PEFT 0.21 print_trainable_parameters on this model and config (checked with the real library):
    const model = await llamaTiny();
    expect(loraTrainableReport(model).line).toBe('trainable params: 6,640 || all params: 6,640 || trainable%: 100.0000');
    applyLora(model, { r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] });
    expect(loraTrainableReport(model).line).toBe('trainable params: 448 || all params: 7,088 || trainable%: 6.3205');
    model.dispose();
    const g = await gpt2Tiny();
    applyLora(g, { r: 4, alpha: 8, targetModules: ['c_attn'], modulesToSave: ['lm_head'] });
    expect(loraTrainableReport(g)).toMatchObject({ trainable: 1104, all: 8800, line: 'trainable params: 1,104 || all params: 8,800 || trainable%: 12.5455' });
    g.dispose();
  });

  it('trains only A, B and the modules to save; base weights stay bit-identical; the optimizer holds state for those alone', async () => {
    const model = await gpt2Tiny();
    const base = await snapshot(model.params);
    applyLora(model, { r: 2, alpha: 4, dropout: 0.1, targetModules: ['c_attn', 'mlp.c_proj'], modulesToSave: ['ln_f'] });
    const params = model.trainableParams();
    expect([...params.keys()].sort()).toEqual([
      'transformer.h.0.attn.c_attn.lora_A.weight', 'transformer.h.0.attn.c_attn.lora_B.weight', 'transformer.h.0.mlp.c_proj.lora_A.weight', 'transformer.h.0.mlp.c_proj.lora_B.weight',
      'transformer.h.1.attn.c_attn.lora_A.weight', 'transformer.h.1.attn.c_attn.lora_B.weight', 'transformer.h.1.mlp.c_proj.lora_A.weight', 'transformer.h.1.mlp.c_proj.lora_B.weight',
      'transformer.ln_f.bias', 'transformer.ln_f.weight']);
    const before = await snapshot(params);
    const opt = adamwInit(params);
    // Optimizer memory: two moments per trainable tensor, nothing for the frozen base.
    const stateBytes = [...opt.m.values(), ...opt.v.values()].reduce((s, v) => s + 4 * v.size, 0);
    const trainable = [...params.values()].reduce((s, v) => s + v.size, 0);
    expect(opt.m.size + opt.v.size).toBe(2 * params.size);
    expect(stateBytes).toBe(8 * trainable);
    expect(trainable).toBeLessThan(model.numParams() / 5);
    const ids = t2(inputs.input_ids), mask = t2(inputs.attention_mask), labels = t2(inputs.labels);
    for (let step = 0; step < 3; step++) {
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, { attentionMask: mask, training: true, seed: step }), labels).loss, [...params.values()]);
      const byName = new Map([...params].map(([n, v]) => [n, grads[v.name]]));
      adamwUpdate(byName, opt, params, { lr: 1e-2 });
      tf.dispose([value, ...Object.values(grads)]);
    }
    const after = await snapshot(params);
    for (const [n, v] of after) expect(Array.from(v), n).not.toEqual(Array.from(before.get(n)!));
    const baseAfter = await snapshot(model.params);
    for (const [n, v] of base) {
      if (n.startsWith('transformer.ln_f.')) continue;   // modules_to_save: trained in full
      expect(Array.from(baseAfter.get(n)!), n).toEqual(Array.from(v));
    }
    tf.dispose([ids, mask, labels, ...opt.m.values(), ...opt.v.values()]);
    model.dispose();
  });

  it('applies dropout in training only: eval output is deterministic and equals the dropout-free model', async () => {
    const a = await llamaTiny(), b = await llamaTiny();
    applyLora(a, { r: 4, dropout: 0.5, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    applyLora(b, { r: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    for (const m of [a, b]) for (const [n, v] of loraTensors(m)) if (n.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 3));
    const evalA = await logitsOf(a);
    expect(Array.from(await logitsOf(a))).toEqual(Array.from(evalA));
    expect(Array.from(evalA)).toEqual(Array.from(await logitsOf(b)));
    expect(Array.from(await logitsOf(b, { training: true, seed: 2 }))).toEqual(Array.from(evalA));   // p = 0: training changes nothing
    const trainA = await logitsOf(a, { training: true, seed: 2 });
    expect(Array.from(trainA)).not.toEqual(Array.from(evalA));
    expect(Array.from(await logitsOf(a, { training: true, seed: 2 }))).toEqual(Array.from(trainA));   // seeded
    a.dispose(); b.dispose();
  });

  it('uses scaling alpha / r, or alpha / sqrt(r) with rsLoRA', async () => {
    const m = await llamaTiny();
    expect(applyLora(m, { r: 16, alpha: 8, targetModules: ['q_proj'] }).scaling).toBe(0.5);
    m.dispose();
    const n = await llamaTiny();
    const s = applyLora(n, { r: 16, alpha: 8, targetModules: ['q_proj'], useRslora: true });
    expect(s.scaling).toBe(2);
    expect(n.linearModules().get('model.layers.0.self_attn.q_proj')!.lora!.scaling).toBe(2);
    n.dispose();
  });

  it('merge keeps outputs (float32 tolerance), unmerge restores W, merge_and_unload leaves a plain trainable model', async () => {
    const model = await gpt2Tiny();
    const w0 = await snapshot(model.params);
    applyLora(model, { r: 4, alpha: 8, targetModules: 'all-linear' });
    for (const [n, v] of loraTensors(model)) if (n.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 4));
    const unmerged = await logitsOf(model);
    mergeLora(model);
    assertAllClose(await logitsOf(model), unmerged, { rtol: 1e-4, atol: 1e-5, label: 'merged' });
    unmergeLora(model);
    const w1 = await snapshot(model.params);
    for (const [n, v] of w0) assertAllClose(w1.get(n)!, v, { rtol: 0, atol: 1e-6, label: `unmerged ${n}` });
    assertAllClose(await logitsOf(model), unmerged, { rtol: 1e-5, atol: 1e-5, label: 'unmerged' });
    mergeAndUnload(model);
    expect(loraState(model)).toBeUndefined();
    expect([...model.linearModules().values()].some((l) => l.lora)).toBe(false);
    expect(model.trainableParams().size).toBe(model.params.size);
    assertAllClose(await logitsOf(model), unmerged, { rtol: 1e-4, atol: 1e-5, label: 'merge_and_unload' });
    model.dispose();
  });

  it('refuses a modules_to_save entry that matches nothing, and a second adapter', async () => {
    const m = await llamaTiny();
    expect(() => applyLora(m, { r: 2, modulesToSave: ['wte'] })).toThrow(/modules_to_save entry 'wte' matches no module; modules with parameters: embed_tokens/);
    expect([...m.params.values()].every((v) => v.trainable)).toBe(true);   // untouched after the error
    applyLora(m, { r: 2 });
    expect(loraState(m)!.targets).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj']);
    expect(() => applyLora(m, { r: 2 })).toThrow(/already has a LoRA adapter/);
    m.dispose();
  });
});

describe('PEFT adapters (src/io/peft.ts)', () => {
  for (const [name, base] of [['gpt2-tiny-c_attn', 'gpt2-tiny'], ['llama-tiny-qv', 'llama-tiny'], ['llama-tiny-qv-rslora', 'llama-tiny']]) {
    it(`lora/${name} made by PEFT loads and reproduces logits, loss, lora gradients, merged weights and merged logits`, async () => {
      const dir = join(HF, 'lora', name);
      const expected = readST(join(dir, 'expected.safetensors'));
      const meta = readJson(join(dir, 'expected.json'));
      const model = await loadModel(join(HF, base));
      const V = model.config.vocab_size;
      await loadAdapter(model, dir);
      expect(loraState(model)!.scaling).toBe(meta.scaling);
      assertAllClose(real(await logitsOf(model), V), real(expected.get('logits')!.data as Float32Array, V), { rtol: 1e-4, atol: 1e-5, label: `${name} logits` });
      const params = model.trainableParams();
      const ids = t2(inputs.input_ids), mask = t2(inputs.attention_mask), labels = t2(inputs.labels);
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, { attentionMask: mask }), labels).loss, [...params.values()]);
      expect((await value.data())[0]).toBeCloseTo(meta.loss, 5);
      expect(params.size).toBe([...expected.keys()].filter((k) => k.startsWith('grad.')).length);
      for (const [n, v] of params) {
        const want = expected.get(`grad.base_model.model.${n}`);
        expect(want, n).toBeDefined();
        assertAllClose(await grads[v.name].data(), want!.data as Float32Array, { rtol: 1e-4, atol: 2e-6, label: `grad ${n}` });
      }
      tf.dispose([ids, mask, labels, value, ...Object.values(grads)]);
      mergeAndUnload(model);
      for (const [k, rec] of expected) {
        if (!k.startsWith('merged.')) continue;
        assertAllClose(await model.params.get(k.slice('merged.'.length))!.data(), rec.data as Float32Array, { rtol: 1e-5, atol: 1e-6, label: k });
      }
      assertAllClose(real(await logitsOf(model), V), real(expected.get('logits_merged')!.data as Float32Array, V), { rtol: 1e-4, atol: 1e-5, label: `${name} logits_merged` });
      model.dispose();
    });
  }

  it('normalising a PEFT adapter gives back its files (safetensors byte for byte; config as PEFT writes it, no trailing newline)', async () => {
    for (const [name, base] of [['gpt2-tiny-c_attn', 'gpt2-tiny'], ['llama-tiny-qv-rslora', 'llama-tiny']]) {
      const model = await loadModel(join(HF, base));
      await loadAdapter(model, join(HF, 'lora', name));
      const out = new MemoryFiles();
      await saveAdapter(model, out);
      expect(Buffer.from(out.files.get('adapter_model.safetensors')!).equals(readFileSync(join(HF, 'lora', name, 'adapter_model.safetensors')))).toBe(true);
      expect(new TextDecoder().decode(out.files.get('adapter_config.json')!)).toBe(readFileSync(join(HF, 'lora', name, 'adapter_config.json'), 'utf8').replace(/\n$/, ''));
      expect(adapterConfigText(model)).toContain(`"fan_in_fan_out": ${base === 'gpt2-tiny'}`);
      model.dispose();
    }
  });

  it('save / load round trip is exact, with PEFT key names and shapes for GPT-2 and Llama', async () => {
    for (const [make, targets, keys] of [
      [gpt2Tiny, ['c_attn'], [['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', [4, 16]], ['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight', [48, 4]], ['base_model.model.lm_head.weight', [37, 16]]]],
      [llamaTiny, ['k_proj', 'down_proj'], [['base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight', [4, 16]], ['base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight', [8, 4]],
        ['base_model.model.model.layers.0.mlp.down_proj.lora_A.weight', [4, 40]], ['base_model.model.model.layers.0.mlp.down_proj.lora_B.weight', [16, 4]], ['base_model.model.lm_head.weight', [37, 16]]]],
    ] as const) {
      const a = await make();
      applyLora(a, { r: 4, alpha: 16, dropout: 0.1, targetModules: [...targets], modulesToSave: ['lm_head'], seed: 3 });
      for (const [n, v] of loraTensors(a)) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.2, 'float32', n.length)));
      const files = new MemoryFiles();
      await saveAdapter(a, files);
      const stored = parseSafetensors(files.files.get('adapter_model.safetensors')!, 'adapter').tensors;
      for (const [k, shape] of keys) expect(stored.get(k)?.shape, k).toEqual(shape);
      const b = await make();
      const cfg = await loadAdapter(b, files);
      expect(cfg).toMatchObject({ r: 4, alpha: 16, dropout: 0.1, modulesToSave: ['lm_head'] });
      const sa = await snapshot(loraTensors(a)), sb = await snapshot(loraTensors(b));
      expect([...sb.keys()].sort()).toEqual([...sa.keys()].sort());
      for (const [n, v] of sa) expect(Array.from(sb.get(n)!), n).toEqual(Array.from(v));
      expect(Array.from(await logitsOf(b))).toEqual(Array.from(await logitsOf(a)));
      const again = new MemoryFiles();
      await saveAdapter(b, again);
      for (const f of ['adapter_config.json', 'adapter_model.safetensors']) expect(Buffer.from(again.files.get(f)!).equals(Buffer.from(files.files.get(f)!)), f).toBe(true);
      a.dispose(); b.dispose();
    }
  });

  it('keeps writing the adapters PEFT 0.21 was shown to load (test/fixtures/hf/lora/webtune, verification.txt)', async () => {
    const verification = readFileSync(join(HF, 'lora', 'webtune', 'verification.txt'), 'utf8');
    expect(verification).toMatch(/^0 failure\(s\)$/m);
    for (const c of CASES) {
      const { files, report } = await buildCase(c);
      const dir = join(HF, 'lora', 'webtune', c.name);
      for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'merged/config.json']) {
        expect(Buffer.from(files.get(f)!).equals(readFileSync(join(dir, f))), `${c.name}/${f}`).toBe(true);
      }
      expect(verification).toContain(`ok   ${c.name}: print_trainable_parameters '${report}'`);
      const ours = parseSafetensors(files.get('expected.safetensors')!, 'expected').tensors;
      const stored = readST(join(dir, 'expected.safetensors'));
      for (const k of ['logits', 'logits_merged']) assertAllClose(ours.get(k)!.data as Float32Array, stored.get(k)!.data as Float32Array, { rtol: 1e-5, atol: 1e-5, label: `${c.name} ${k}` });
    }
  });

  describe('refuses bad adapters, naming the file and the key or field', () => {
    const fixture = join(HF, 'lora', 'llama-tiny-qv');
    const baseFiles = () => new MemoryFiles([
      ['adapter_config.json', new Uint8Array(readFileSync(join(fixture, 'adapter_config.json')))],
      ['adapter_model.safetensors', new Uint8Array(readFileSync(join(fixture, 'adapter_model.safetensors')))],
    ], 'adapter');
    const withConfig = (patch: Record<string, unknown>) => {
      const f = baseFiles();
      f.files.set('adapter_config.json', new TextEncoder().encode(JSON.stringify({ ...readJson(join(fixture, 'adapter_config.json')), ...patch })));
      return f;
    };
    const withTensors = (edit: (m: Map<string, { shape: number[]; data: Float32Array }>) => void) => {
      const f = baseFiles();
      const m = new Map([...readST(join(fixture, 'adapter_model.safetensors'))].map(([k, r]) => [k, { shape: r.shape, data: r.data as Float32Array }]));
      edit(m);
      f.files.set('adapter_model.safetensors', writeSafetensors(m, { format: 'pt' }));
      return f;
    };
    const cases: Array<[string, () => MemoryFiles, RegExp]> = [
      ['use_dora', () => withConfig({ use_dora: true }), /adapter\/adapter_config\.json: field "use_dora" = true: DoRA is not implemented/],
      ['bias', () => withConfig({ bias: 'lora_only' }), /field "bias" = "lora_only"/],
      ['rank_pattern', () => withConfig({ rank_pattern: { q_proj: 8 } }), /field "rank_pattern"/],
      ['layers_to_transform', () => withConfig({ layers_to_transform: [0] }), /field "layers_to_transform"/],
      ['peft_type', () => withConfig({ peft_type: 'IA3' }), /field "peft_type" = "IA3"/],
      ['ensure_weight_tying with modules_to_save', () => withConfig({ ensure_weight_tying: true, modules_to_save: ['embed_tokens'] }), /field "ensure_weight_tying" = true: one shared trained matrix/],
      ['unknown target', () => withConfig({ target_modules: ['q_proj', 'wq'] }), /entry 'wq' matches no linear module; available linear modules: q_proj, k_proj/],
      ['wrong shape', () => withTensors((m) => { const k = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'; m.set(k, { shape: [4, 12], data: new Float32Array(48) }); }),
        /tensor "base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight": expected shape \[4, 16\]/],
      ['unknown module', () => withTensors((m) => m.set('base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight', { shape: [4, 16], data: new Float32Array(64) })),
        /"base_model\.model\.model\.layers\.7\.self_attn\.q_proj\.lora_A\.weight": the base model has no linear module 'model\.layers\.7\.self_attn\.q_proj'/],
      ['untargeted module', () => withTensors((m) => m.set('base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight', { shape: [4, 16], data: new Float32Array(64) })),
        /module 'model\.layers\.0\.self_attn\.k_proj' is not selected by target_modules/],
      ['missing tensor', () => withTensors((m) => m.delete('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight')),
        /missing tensor "base_model\.model\.model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight"/],
      ['adapter-named key', () => withTensors((m) => { const k = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'; m.set(k.replace('lora_A.', 'lora_A.default.'), m.get(k)!); m.delete(k); }),
        /lora_A\.default\.weight.*not how PEFT saves/],
    ];
    for (const [what, files, message] of cases) {
      it(what, async () => {
        const model = await llamaTiny();
        await expect(loadAdapter(model, files())).rejects.toThrow(message);
        expect(loraState(model)).toBeUndefined();   // nothing applied
        model.dispose();
      });
    }
  });
});
