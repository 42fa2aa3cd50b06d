import { describe, it, expect } from 'vitest';
import { MemoryFiles } from '../../src/io/files.js';
import { saveTrainState, loadTrainState, type OptimizerMoments, type TrainState } from '../../src/io/train_state.js';
import { parseSafetensors, writeSafetensors } from '../../src/io/safetensors.js';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function moments(): OptimizerMoments {
  const f = (vals: number[]) => new Float32Array(vals);
  return {
    step: 7,
    expAvg: new Map([
      ['transformer.wte.weight', { shape: [2, 2], data: f([0.1, -0, 1e-30, -3]) }],
      ['transformer.ln_f.bias', { shape: [2], data: new Float32Array(new Uint32Array([0x7fc00001, 0x00000001]).buffer) }],
    ]),
    expAvgSq: new Map([
      ['transformer.wte.weight', { shape: [2, 2], data: f([0.01, 0, 1e-38, 9]) }],
      ['transformer.ln_f.bias', { shape: [2], data: f([1, 2]) }],
    ]),
  };
}

const trainerState = {
  step: 7, epoch: 0.5, seed: 1234, rng: { state: [1, 2, 3, 4] }, data: { position: 42, order: 'shuffled' },
  config: { lr: 1e-3, schedule: 'cosine', lora: null }, metrics: [{ step: 1, loss: 2.5 }, { step: 2, loss: 2.25 }],
};

describe('train state', () => {
  it('round-trips trainer state and optimizer moments bit-exactly', async () => {
    const dir = new MemoryFiles(undefined, 'ckpt');
    await saveTrainState(dir, { trainerState, optimizer: moments() });
    expect([...dir.files.keys()]).toEqual(['optimizer.safetensors', 'trainer_state.json']);
    const { tensors, metadata } = parseSafetensors(dir.files.get('optimizer.safetensors')!, 'optimizer.safetensors');
    expect(metadata).toEqual({ format: 'webtune-optimizer', step: '7' });
    expect([...tensors.keys()].sort()).toEqual([
      'transformer.ln_f.bias.exp_avg', 'transformer.ln_f.bias.exp_avg_sq', 'transformer.wte.weight.exp_avg', 'transformer.wte.weight.exp_avg_sq',
    ]);
    const back = await loadTrainState(dir);
    expect(back.trainerState).toEqual(trainerState);
    const want = moments();
    expect(back.optimizer!.step).toBe(7);
    for (const kind of ['expAvg', 'expAvgSq'] as const) {
      expect([...back.optimizer![kind].keys()].sort()).toEqual([...want[kind].keys()].sort());
      for (const [name, t] of want[kind]) {
        expect(back.optimizer![kind].get(name)!.shape).toEqual(t.shape);
        expect(bits(back.optimizer![kind].get(name)!.data), `${kind} ${name}`).toEqual(bits(t.data));
      }
    }
  });

  it('saves without an optimizer', async () => {
    const dir = new MemoryFiles();
    await saveTrainState(dir, { trainerState: { step: 0 } });
    expect([...dir.files.keys()]).toEqual(['trainer_state.json']);
    expect(await loadTrainState(dir)).toEqual({ trainerState: { step: 0 } });
  });

  it('refuses values JSON cannot hold, naming the path', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ metrics: [{ loss: 1 }, { loss: NaN }] }, /state\.metrics\[1\]\.loss is NaN/],
      [{ lr: Infinity }, /state\.lr is Infinity/],
      [{ seed: 1n }, /state\.seed is a BigInt/],
      [{ cb: () => 1 }, /state\.cb is function/],
      [{ x: undefined }, /state\.x is undefined/],
      [{ when: new Date(0) }, /state\.when is a Date/],
      [{ data: new Float32Array(2) }, /state\.data is a Float32Array/],
    ];
    for (const [s, re] of cases) {
      const dir = new MemoryFiles();
      await expect(saveTrainState(dir, { trainerState: s })).rejects.toThrow(re);
      expect(dir.files.size).toBe(0);
    }
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(saveTrainState(new MemoryFiles(), { trainerState: circular })).rejects.toThrow(/state\.self is a circular reference/);
  });

  it('refuses inconsistent moments on save', async () => {
    const m = moments();
    m.expAvgSq.delete('transformer.ln_f.bias');
    await expect(saveTrainState(new MemoryFiles(), { trainerState: {}, optimizer: m })).rejects.toThrow('optimizer.safetensors: parameter "transformer.ln_f.bias" has exp_avg but no exp_avg_sq');
    const s = moments();
    s.expAvgSq.set('transformer.ln_f.bias', { shape: [1, 2], data: new Float32Array(2) });
    await expect(saveTrainState(new MemoryFiles(), { trainerState: {}, optimizer: s })).rejects.toThrow(/exp_avg shape \[2\] differs from exp_avg_sq shape \[1,2\]/);
  });

  describe('load validation names the file and the field', () => {
    async function saved(): Promise<MemoryFiles> {
      const dir = new MemoryFiles(undefined, 'run/checkpoint-7');
      await saveTrainState(dir, { trainerState, optimizer: moments() } satisfies TrainState);
      return dir;
    }
    const editJson = (dir: MemoryFiles, edit: (j: any) => void) => {
      const j = JSON.parse(new TextDecoder().decode(dir.files.get('trainer_state.json')!));
      edit(j);
      dir.files.set('trainer_state.json', new TextEncoder().encode(JSON.stringify(j)));
    };
    const cases: Array<[string, (dir: MemoryFiles) => void, RegExp | string]> = [
      ['no trainer_state.json', (d) => d.files.delete('trainer_state.json'), 'run/checkpoint-7/trainer_state.json: no such file: not a resumable checkpoint'],
      ['not JSON', (d) => d.files.set('trainer_state.json', new TextEncoder().encode('{')), /^run\/checkpoint-7\/trainer_state.json: not valid JSON/],
      ['wrong format', (d) => editJson(d, (j) => (j.format = 'other')), 'run/checkpoint-7/trainer_state.json: "format" is "other", expected "webtune-trainer-state"'],
      ['future version', (d) => editJson(d, (j) => (j.version = 2)), /"version" 2 is not supported/],
      ['state not an object', (d) => editJson(d, (j) => (j.state = [1])), /"state" must be an object/],
      ['optimizer file missing', (d) => d.files.delete('optimizer.safetensors'), 'run/checkpoint-7/optimizer.safetensors: missing, but trainer_state.json refers to it'],
      ['step mismatch', (d) => editJson(d, (j) => (j.optimizer.step = 8)), /optimizer.safetensors: saved at optimizer step 7 but trainer_state.json says 8/],
      ['param count mismatch', (d) => editJson(d, (j) => (j.optimizer.params = 3)), /holds moments for 2 parameters but trainer_state.json says 3/],
      ['corrupt optimizer file', (d) => d.files.set('optimizer.safetensors', d.files.get('optimizer.safetensors')!.subarray(0, 100)), /^run\/checkpoint-7\/optimizer.safetensors: header length \d+ runs past the end/],
      ['missing moment', (d) => {
        const { tensors } = parseSafetensors(d.files.get('optimizer.safetensors')!, 'x');
        tensors.delete('transformer.wte.weight.exp_avg_sq');
        d.files.set('optimizer.safetensors', writeSafetensors(new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])), { format: 'webtune-optimizer', step: '7' }));
      }, 'run/checkpoint-7/optimizer.safetensors: parameter "transformer.wte.weight" has exp_avg but no exp_avg_sq'],
      ['unexpected key', (d) => {
        d.files.set('optimizer.safetensors', writeSafetensors(new Map([['lr', { shape: [1], data: new Float32Array(1) }]]), { format: 'webtune-optimizer', step: '7' }));
      }, 'run/checkpoint-7/optimizer.safetensors: tensor "lr": expected "<param>.exp_avg" or "<param>.exp_avg_sq"'],
    ];
    for (const [title, corrupt, want] of cases) {
      it(title, async () => {
        const dir = await saved();
        corrupt(dir);
        await expect(loadTrainState(dir)).rejects.toThrow(want);
      });
    }
  });
});
