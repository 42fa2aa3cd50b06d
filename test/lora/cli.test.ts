import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run as exportRun } from '../../src/cli/export.js';
import { run as forwardRun } from '../../src/cli/forward.js';
import { parseSafetensors } from '../../src/io/index.js';
import { assertAllClose } from '../helpers/backends.js';

const HF = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf');
const st = (p: string) => parseSafetensors(new Uint8Array(readFileSync(p)), p).tensors;

describe('webtune export / forward --adapter', () => {
  it('export --merge writes a checkpoint whose logits are the fixture logits_merged; forward --adapter --grads names grads as PEFT', async () => {
    const dir = join(HF, 'lora', 'llama-tiny-qv');
    const out = mkdtempSync(join(tmpdir(), 'webtune-export-'));
    expect(await exportRun(['--model', join(HF, 'llama-tiny'), '--adapter', dir, '--merge', '--out', join(out, 'merged')])).toBe(0);
    expect(existsSync(join(out, 'merged', 'config.json'))).toBe(true);
    expect(await forwardRun(['--model', join(out, 'merged'), '--inputs', join(dir, 'inputs.json'), '--out', join(out, 'fwd'), '--backend', 'cpu'])).toBe(0);
    const expected = st(join(dir, 'expected.safetensors'));
    const mask = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8')).attention_mask.flat() as number[];
    const realOnly = (d: ArrayLike<number>) => Array.from(d).filter((_, i) => mask[Math.floor(i / 37)] === 1);
    assertAllClose(realOnly(st(join(out, 'fwd', 'logits.safetensors')).get('logits')!.data as Float32Array), realOnly(expected.get('logits_merged')!.data as Float32Array), { rtol: 1e-4, atol: 1e-5 });

    expect(await forwardRun(['--model', join(HF, 'llama-tiny'), '--adapter', dir, '--inputs', join(dir, 'inputs.json'), '--out', join(out, 'fwd2'), '--grads', '--backend', 'cpu'])).toBe(0);
    const grads = st(join(out, 'fwd2', 'grads.safetensors'));
    expect([...grads.keys()].sort()).toEqual([...expected.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5)).sort());
    for (const [k, g] of grads) assertAllClose(g.data as Float32Array, expected.get(`grad.${k}`)!.data as Float32Array, { rtol: 1e-4, atol: 2e-6, label: k });

    expect(await exportRun(['--model', join(HF, 'llama-tiny'), '--adapter', dir, '--out', join(out, 'norm')])).toBe(0);
    expect(readFileSync(join(out, 'norm', 'adapter_model.safetensors')).equals(readFileSync(join(dir, 'adapter_model.safetensors')))).toBe(true);
  });
});
