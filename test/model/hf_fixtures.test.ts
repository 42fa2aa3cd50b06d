/**
 * WebTune against Hugging Face: every checkpoint under test/fixtures/hf (made by
 * test/reference/, checked against transformers) loads, and reproduces the stored logits (real
 * positions), loss, per-row sums and every parameter gradient; on CPU and WebGPU. Packed rows
 * reproduce the logits of each example run alone.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, it, expect } from 'vitest';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describeEachBackend, assertAllClose } from '../helpers/backends.js';
import { loadModel, parseSafetensors, type TensorRecord } from '../../src/io/index.js';
import { maskedCrossEntropy } from '../../src/train/loss.js';
import { run as forwardCli } from '../../src/cli/forward.js';

const ROOT = 'test/fixtures/hf';

interface Inputs { input_ids: number[][]; labels: number[][]; attention_mask?: number[][]; position_ids?: number[][] }
interface Expected { loss: number; count: number; rows: Array<{ sum: number; count: number }>; model?: string }

function readTensors(path: string): Map<string, TensorRecord> {
  const b = readFileSync(path);
  return parseSafetensors(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), path).tensors;
}

const CASES: Array<{ dir: string; model: string }> = [
  ...['gpt2-tiny', 'gpt2-tiny-v5', 'gpt2-tiny-original', 'llama-tiny', 'llama-tiny-v5', 'llama-tiny-sharded', 'llama-tiny-variant'].map((d) => ({ dir: d, model: d })),
  { dir: 'packed/gpt2-tiny', model: 'gpt2-tiny' },
  { dir: 'packed/llama-tiny', model: 'llama-tiny' },
];

/** Which expected files a directory shares: the -v5, -original, -sharded copies reuse their base's values. */
function expectedDir(dir: string): string {
  return dir.replace(/-(v5|original|sharded)$/, '');
}

describeEachBackend('transformers fixtures', (backend) => {
  for (const { dir, model: modelDir } of CASES) {
    it(`${dir}: logits, loss, rows and every gradient`, async () => {
      const base = join(ROOT, expectedDir(dir));
      const inputs: Inputs = JSON.parse(readFileSync(join(base, 'inputs.json'), 'utf8'));
      const expected: Expected = JSON.parse(readFileSync(join(base, 'expected.json'), 'utf8'));
      const want = readTensors(join(base, 'expected.safetensors'));
      const model = await loadModel(join(ROOT, modelDir));
      const B = inputs.input_ids.length, T = inputs.input_ids[0].length;
      const t = (rows: number[][]) => tf.tensor2d(rows, [B, T], 'int32');
      const ids = t(inputs.input_ids), labels = t(inputs.labels);
      const fwd = { attentionMask: inputs.attention_mask && t(inputs.attention_mask), positionIds: inputs.position_ids && t(inputs.position_ids) };

      const logits = model.forward(ids, fwd);
      const got = await logits.data();
      const ref = want.get('logits')!.data as Float32Array;
      const V = logits.shape[2];
      const real: number[] = [], refReal: number[] = [];
      for (let p = 0; p < B * T; p++) {
        if (inputs.attention_mask && inputs.attention_mask[Math.floor(p / T)][p % T] === 0) continue;   // padding logits are not defined
        for (let v = 0; v < V; v++) { real.push(got[p * V + v]); refReal.push(ref[p * V + v]); }
      }
      assertAllClose(real, refReal, { rtol: 1e-4, atol: 2e-5, label: `${dir} logits [${backend}]` });

      const ce = maskedCrossEntropy(logits, labels);
      expect((await ce.loss.data())[0]).toBeCloseTo(expected.loss, 4);
      assertAllClose(await ce.rowSums.data(), expected.rows.map((r) => r.sum), { rtol: 1e-4, label: `${dir} row sums` });
      expect(Array.from(await ce.rowCounts.data())).toEqual(expected.rows.map((r) => r.count));

      const params = model.trainableParams();
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(ids, fwd), labels).loss, [...params.values()]);
      const gradKeys = [...want.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5)).sort();
      expect([...params.keys()].sort()).toEqual(gradKeys);
      for (const [name, v] of params) {
        const g = await grads[v.name].data();
        const r = want.get(`grad.${name}`)!.data as Float32Array;
        const scale = r.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        assertAllClose(g, r, { rtol: 1e-3, atol: 1e-5 * Math.max(1, scale), label: `${dir} grad ${name} [${backend}]` });
      }
      tf.dispose([ids, labels, logits, ce.loss, ce.rowSums, ce.rowCounts, value, ...Object.values(grads), ...[fwd.attentionMask, fwd.positionIds].filter((x): x is tf.Tensor2D => !!x)]);
      model.dispose();
    });
  }
}, ['cpu', 'webgpu']);

describe('webtune forward on a transformers fixture', () => {
  it('writes the logits, loss and gradients transformers computes (gpt2-tiny, CPU)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'webtune-fixture-'));
    try {
      expect(await forwardCli(['--model', join(ROOT, 'gpt2-tiny'), '--inputs', join(ROOT, 'gpt2-tiny/inputs.json'), '--out', out, '--grads', '--backend', 'cpu'])).toBe(0);
      const expected: Expected = JSON.parse(readFileSync(join(ROOT, 'gpt2-tiny/expected.json'), 'utf8'));
      const loss = JSON.parse(readFileSync(join(out, 'loss.json'), 'utf8'));
      expect(loss.loss).toBeCloseTo(expected.loss, 4);
      const want = readTensors(join(ROOT, 'gpt2-tiny/expected.safetensors'));
      const grads = readTensors(join(out, 'grads.safetensors'));
      for (const [name, g] of grads) assertAllClose(g.data as Float32Array, want.get(`grad.${name}`)!.data as Float32Array, { rtol: 1e-3, atol: 1e-5, label: `grad ${name}` });
      expect(grads.size).toBe([...want.keys()].filter((k) => k.startsWith('grad.')).length);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
