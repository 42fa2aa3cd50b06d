/**
 * WebTune computes what transformers computes: each reference checkpoint in test/fixtures/hf is
 * loaded with loadModel, run forward, scored with maskedCrossEntropy and differentiated, on CPU
 * and on WebGPU (Dawn), and compared with the values transformers / PEFT give on the same files
 * (made by test/reference/make_fixtures.py, checked against transformers 5.18 and PEFT 0.21 by
 * verify_with_transformers.py; see test/fixtures/hf/README.md).
 *
 * Logits are compared at real positions only (the contract leaves padding queries undefined).
 * The expected values are float64 results stored as float32; an exact float32 engine lands
 * within ~4e-6 of them, so rtol 1e-4 leaves room for summation order and GPU math.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it, expect } from 'vitest';
import { describeEachBackend, assertAllClose } from '../helpers/backends.js';
import { loadModel, parseSafetensors } from '../../src/io/index.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import type { CausalLM } from '../../models/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf');
const LOGITS = { rtol: 1e-4, atol: 1e-5 };
const GRADS = { rtol: 1e-4, atol: 2e-6 };

type Json = Record<string, any>;
interface Inputs { input_ids: number[][]; labels: number[][]; attention_mask: number[][]; position_ids?: number[][] }

const readJson = (path: string): Json => JSON.parse(readFileSync(path, 'utf8'));

/** expected.safetensors as name -> Float32Array. */
function readExpected(dir: string): Map<string, Float32Array> {
  const file = join(dir, 'expected.safetensors');
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(file)), file);
  return new Map([...tensors].map(([k, r]) => [k, r.data as Float32Array]));
}

const int2d = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');

/** Entries of logits [B, T, V] at positions whose attention_mask is not 0. */
function realPositions(logits: ArrayLike<number>, mask: number[][], V: number): number[] {
  const out: number[] = [];
  const T = mask[0].length;
  mask.forEach((row, b) => row.forEach((m, t) => {
    if (m !== 0) for (let v = 0; v < V; v++) out.push(logits[(b * T + t) * V + v]);
  }));
  return out;
}

interface Run { logits: Float32Array; loss: number; rowSums: Float32Array; rowCounts: Float32Array; grads: Map<string, Float32Array> }

/** Forward + loss, and gradients of the loss w.r.t. `params` (name -> variable). */
async function forwardBackward(model: CausalLM, inputs: Inputs, params: Map<string, tf.Variable>): Promise<Run> {
  const ids = int2d(inputs.input_ids), mask = int2d(inputs.attention_mask), labels = int2d(inputs.labels);
  const pos = inputs.position_ids ? int2d(inputs.position_ids) : undefined;
  const opts = { attentionMask: mask, positionIds: pos };
  const logits = model.forward(ids, opts);
  const ce = maskedCrossEntropy(logits, labels);
  const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, opts), labels).loss, [...params.values()]);
  const g = new Map<string, Float32Array>();
  for (const [name, v] of params) g.set(name, await grads[v.name].data() as Float32Array);
  const run: Run = {
    logits: await logits.data() as Float32Array, loss: (await ce.loss.data())[0],
    rowSums: await ce.rowSums.data() as Float32Array, rowCounts: await ce.rowCounts.data() as Float32Array, grads: g,
  };
  expect(Math.abs((await value.data())[0] - run.loss)).toBeLessThan(1e-5);
  tf.dispose([ids, mask, labels, logits, ce.loss, ce.rowSums, ce.rowCounts, value, ...Object.values(grads)]);
  if (pos) pos.dispose();
  return run;
}

function compareLossAndLogits(label: string, run: Run, expected: Map<string, Float32Array>, json: Json, inputs: Inputs, V: number): void {
  assertAllClose(realPositions(run.logits, inputs.attention_mask, V), realPositions(expected.get('logits')!, inputs.attention_mask, V), { ...LOGITS, label: `${label} logits` });
  assertAllClose([run.loss], [json.loss], { rtol: 1e-5, atol: 1e-6, label: `${label} loss` });
  assertAllClose(run.rowSums, json.rows.map((r: Json) => r.sum), { rtol: 1e-5, atol: 1e-5, label: `${label} row sums` });
  expect(Array.from(run.rowCounts)).toEqual(json.rows.map((r: Json) => r.count));
}

function compareGrads(label: string, run: Run, expected: Map<string, Float32Array>, key: (name: string) => string): void {
  const stored = [...expected.keys()].filter((k) => k.startsWith('grad.'));
  expect([...run.grads.keys()].map((n) => `grad.${key(n)}`).sort()).toEqual(stored.sort());
  for (const [name, g] of run.grads) assertAllClose(g, expected.get(`grad.${key(name)}`)!, { ...GRADS, label: `${label} grad ${name}` });
}

/** Attaches a PEFT adapter directory to the model's Linear modules (dropout 0, as in the fixture). */
function attachLora(model: CausalLM, dir: string): Map<string, tf.Variable> {
  const cfg = readJson(join(dir, 'adapter_config.json'));
  const file = join(dir, 'adapter_model.safetensors');
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(file)), file);
  const scaling = cfg.use_rslora ? cfg.lora_alpha / Math.sqrt(cfg.r) : cfg.lora_alpha / cfg.r;
  const vars = new Map<string, tf.Variable>();
  for (const [key, rec] of tensors) {
    const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(key);
    if (!m) continue;
    const lin = model.linearModules().get(m[1]);
    if (!lin) throw new Error(`${file}: no Linear '${m[1]}' in the model`);
    const b = tensors.get(`base_model.model.${m[1]}.lora_B.weight`)!;
    const A = tf.variable(tf.tensor(rec.data as Float32Array, rec.shape), true);
    const B = tf.variable(tf.tensor(b.data as Float32Array, b.shape), true);
    lin.lora = { A, B, scaling, dropout: 0 };
    vars.set(`base_model.model.${m[1]}.lora_A.weight`, A);
    vars.set(`base_model.model.${m[1]}.lora_B.weight`, B);
  }
  return vars;
}

describeEachBackend('transformers parity', () => {
  for (const name of ['gpt2-tiny', 'llama-tiny', 'llama-tiny-variant']) {
    it(`${name}: logits, loss, per-row sums and every parameter gradient`, async () => {
      const dir = join(ROOT, name);
      const model = await loadModel(dir);
      const inputs = readJson(join(dir, 'inputs.json')) as Inputs;
      const expected = readExpected(dir);
      const run = await forwardBackward(model, inputs, model.trainableParams());
      compareLossAndLogits(name, run, expected, readJson(join(dir, 'expected.json')), inputs, model.config.vocab_size);
      compareGrads(name, run, expected, (n) => n);
      model.dispose();
    });
  }

  for (const name of ['gpt2-tiny', 'llama-tiny']) {
    it(`packed/${name}: a packed row equals its examples run alone (logits, loss, gradients)`, async () => {
      const dir = join(ROOT, 'packed', name);
      const model = await loadModel(join(ROOT, name));
      const inputs = readJson(join(dir, 'inputs.json')) as Inputs;
      const expected = readExpected(dir);
      const run = await forwardBackward(model, inputs, model.trainableParams());
      compareLossAndLogits(`packed/${name}`, run, expected, readJson(join(dir, 'expected.json')), inputs, model.config.vocab_size);
      compareGrads(`packed/${name}`, run, expected, (n) => n);
      model.dispose();
    });
  }

  for (const [name, base] of [['gpt2-tiny-c_attn', 'gpt2-tiny'], ['llama-tiny-qv', 'llama-tiny'], ['llama-tiny-qv-rslora', 'llama-tiny']]) {
    it(`lora/${name}: PEFT adapter logits, loss and lora_A / lora_B gradients`, async () => {
      const dir = join(ROOT, 'lora', name);
      const model = await loadModel(join(ROOT, base));
      const adapters = attachLora(model, dir);
      const inputs = readJson(join(dir, 'inputs.json')) as Inputs;
      const expected = readExpected(dir);
      const run = await forwardBackward(model, inputs, adapters);
      compareLossAndLogits(`lora/${name}`, run, expected, readJson(join(dir, 'expected.json')), inputs, model.config.vocab_size);
      compareGrads(`lora/${name}`, run, expected, (n) => n);
      tf.dispose([...adapters.values()]);
      model.dispose();
    });
  }
});

describeEachBackend('checkpoint layouts load to the same model', () => {
  for (const [name, ref] of [['gpt2-tiny-v5', 'gpt2-tiny'], ['gpt2-tiny-original', 'gpt2-tiny'], ['llama-tiny-v5', 'llama-tiny'], ['llama-tiny-sharded', 'llama-tiny']]) {
    it(`${name}: logits of ${ref}`, async () => {
      const model = await loadModel(join(ROOT, name));
      const inputs = readJson(join(ROOT, ref, 'inputs.json')) as Inputs;
      const ids = int2d(inputs.input_ids), mask = int2d(inputs.attention_mask);
      const logits = model.forward(ids, { attentionMask: mask });
      const V = model.config.vocab_size;
      const expected = readExpected(join(ROOT, ref));
      assertAllClose(realPositions(await logits.data(), inputs.attention_mask, V), realPositions(expected.get('logits')!, inputs.attention_mask, V), { ...LOGITS, label: name });
      // every parameter of the reference model, no more (buffers and the tied head are not parameters)
      const gradSizes = [...expected].filter(([k]) => k.startsWith('grad.')).map(([, g]) => g.length);
      expect(model.numParams()).toBe(gradSizes.reduce((a, b) => a + b, 0));
      tf.dispose([ids, mask, logits]);
      model.dispose();
    });
  }
}, ['cpu']);
