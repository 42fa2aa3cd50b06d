/** `webtune forward`: files written, their contents, and errors naming file, field, row. */
import * as tf from '@tensorflow/tfjs';
import { describe, it, beforeAll, afterAll, expect } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { run } from '../../src/cli/forward.js';
import { saveModel, parseSafetensors } from '../../src/io/index.js';
import { CausalLM, parseConfig } from '../../models/index.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import * as R from './ref64.js';

const dir = mkdtempSync(join(tmpdir(), 'webtune-forward-'));
const CONFIG = parseConfig({ model_type: 'llama', vocab_size: 9, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1,
  num_attention_heads: 2, num_key_value_heads: 1, tie_word_embeddings: false, initializer_range: 0.5 });
const INPUTS = { input_ids: [[1, 2, 3, 4], [5, 6, 7, 0]], labels: [[-100, 2, 3, 4], [-100, -100, 7, -100]], attention_mask: [[1, 1, 1, 1], [1, 1, 1, 0]] };
let model: CausalLM;

function writeJson(name: string, value: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
}
const read = (p: string) => { const b = readFileSync(p); return parseSafetensors(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), p).tensors; };

describe('webtune forward', () => {
  beforeAll(async () => {
    await useBackend('cpu');
    model = CausalLM.create(CONFIG, { seed: 3 });
    await saveModel(model, join(dir, 'ckpt'));
  });
  afterAll(() => { model.dispose(); rmSync(dir, { recursive: true, force: true }); });

  it('writes logits, loss.json and grads.safetensors that match the library', async () => {
    const out = join(dir, 'out');
    expect(await run(['--model', join(dir, 'ckpt'), '--inputs', writeJson('in.json', INPUTS), '--out', out, '--grads', '--backend', 'cpu'])).toBe(0);
    const logits = read(join(out, 'logits.safetensors')).get('logits')!;
    expect(logits.shape).toEqual([2, 4, 9]);
    const t = (rows: number[][]) => tf.tensor2d(rows, [2, 4], 'int32');
    const direct = model.forward(t(INPUTS.input_ids), { attentionMask: t(INPUTS.attention_mask) });
    assertAllClose(logits.data as Float32Array, await direct.data(), { rtol: 1e-6, atol: 1e-7, label: 'logits' });

    // The loss file against the float64 loss of the written logits.
    const ref = R.maskedCrossEntropy64(Float64Array.from(logits.data as Float32Array), INPUTS.labels.flat(), 2, 4, 9);
    const loss = JSON.parse(readFileSync(join(out, 'loss.json'), 'utf8'));
    expect(loss.loss).toBeCloseTo(ref.loss, 5);
    expect(loss.rows.map((r: { count: number }) => r.count)).toEqual([3, 1]);
    expect(loss.rows[1].sum).toBeCloseTo(ref.rowSums[1], 5);

    const grads = read(join(out, 'grads.safetensors'));
    expect([...grads.keys()].sort()).toEqual([...model.params.keys()].sort());
    expect(grads.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([4, 8]);
    const v = model.params.get('lm_head.weight')!;
    const { grads: direct2 } = tf.variableGrads(() => maskedCrossEntropy(model.forward(t(INPUTS.input_ids), { attentionMask: t(INPUTS.attention_mask) }), t(INPUTS.labels)).loss, [v]);
    assertAllClose(grads.get('lm_head.weight')!.data as Float32Array, await direct2[v.name].data(), { rtol: 1e-6, atol: 1e-8, label: 'grad lm_head' });
  });

  it('without labels writes only the logits', async () => {
    const out = join(dir, 'out-nolabels');
    expect(await run(['--model', join(dir, 'ckpt'), '--inputs', writeJson('ids.json', { input_ids: [[1, 2]] }), '--out', out, '--backend', 'cpu'])).toBe(0);
    expect(existsSync(join(out, 'logits.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'loss.json'))).toBe(false);
  });

  const bad: Array<[string, unknown, string[], RegExp]> = [
    ['a ragged row', { input_ids: [[1, 2, 3], [1, 2]] }, [], /bad\.json: input_ids\[1\] has 2 entries, expected 3/],
    ['an id outside the vocabulary', { input_ids: [[1, 9]] }, [], /bad\.json: input_ids\[0\]\[1\] = 9: outside the vocabulary \[0, 9\)/],
    ['a bad label', { input_ids: [[1, 2]], labels: [[-100, -5]] }, [], /bad\.json: labels\[0\]\[1\] = -5: .*use -100/],
    ['an unknown field', { input_ids: [[1]], mask: [[1]] }, [], /bad\.json: unknown field "mask"/],
    ['labels with a different row count', { input_ids: [[1, 2]], labels: [[1, 2], [1, 2]] }, [], /field "labels" has 2 rows, input_ids has 1/],
    ['a non-integer', { input_ids: [[1, 'a']] }, [], /input_ids\[0\]\[1\] must be an integer, got "a"/],
    ['--grads without labels', { input_ids: [[1, 2]] }, ['--grads'], /--grads needs "labels"/],
    ['labels training nothing', { input_ids: [[1, 2], [3, 4]], labels: [[1, -100], [-100, -100]] }, [], /labels train no position \(rows 0, 1/],
    ['invalid JSON', '{"input_ids": [[1,', [], /bad\.json: not valid JSON/],
  ];
  for (const [what, json, extra, message] of bad) {
    it(`refuses ${what}, naming the field`, async () => {
      const p = writeJson('bad.json', json);
      await expect(run(['--model', join(dir, 'ckpt'), '--inputs', p, '--out', join(dir, 'never'), '--backend', 'cpu', ...extra])).rejects.toThrow(message);
      expect(existsSync(join(dir, 'never'))).toBe(false);
    });
  }

  it('through the CLI: exit 1 and the message on stderr', () => {
    const p = writeJson('bad2.json', { input_ids: [[1, 200]] });
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'forward', '--model', join(dir, 'ckpt'), '--inputs', p, '--out', join(dir, 'o2'), '--backend', 'cpu'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad2\.json: input_ids\[0\]\[1\] = 200: outside the vocabulary/);
  });
});
