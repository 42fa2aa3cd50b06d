import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { adamwInit, adamwUpdate, adamwDispose, clipGradNorm, defaultDecayFilter, globalNorm, chain, clipByGlobalNorm, adamw, clipAdamw } from '../../src/train/optim.js';
import { learningRate, scheduleFactor, warmupStepsFromRatio, type ScheduleConfig } from '../../src/train/schedule.js';
import { useBackend, assertAllClose } from '../helpers/backends.js';

/** torch.optim.AdamW (single-tensor path) written out in float64, one parameter. */
function torchAdamW(p0: number[], gradsPerStep: number[][], hp: { lr: number[]; beta1: number; beta2: number; eps: number; wd: number }): number[][] {
  let p = p0.slice();
  let m = p.map(() => 0), v = p.map(() => 0);
  const out: number[][] = [];
  gradsPerStep.forEach((g, i) => {
    const step = i + 1, lr = hp.lr[i];
    p = p.map((x) => x * (1 - lr * hp.wd));                                         // param.mul_(1 - lr * wd)
    m = m.map((x, j) => x + (g[j] - x) * (1 - hp.beta1));                             // exp_avg.lerp_(grad, 1 - beta1)
    v = v.map((x, j) => x * hp.beta2 + (1 - hp.beta2) * g[j] * g[j]);                 // exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)
    const bc1 = 1 - hp.beta1 ** step, bc2sqrt = Math.sqrt(1 - hp.beta2 ** step);
    const stepSize = lr / bc1;
    p = p.map((x, j) => x - stepSize * m[j] / (Math.sqrt(v[j]) / bc2sqrt + hp.eps)); // addcdiv_(exp_avg, denom, -step_size)
    out.push(p.slice());
  });
  return out;
}

beforeAll(async () => {
  await useBackend('cpu');
});

describe('adamwUpdate', () => {
  it('matches torch AdamW formulas over 3 steps (float64 reference), with a changing lr', async () => {
    const p0 = [0.5, -1.25, 2.0, 0.003, -0.7, 1e-3];
    const gs = [
      [0.1, -0.2, 0.3, -0.4, 0.05, 0.0],
      [-0.3, 0.1, 0.2, 0.0, 1.5, -2.0],
      [0.02, 0.02, -0.5, 0.7, -0.05, 0.3],
    ];
    const hp = { lr: [1e-2, 5e-3, 2e-2], beta1: 0.8, beta2: 0.95, eps: 1e-6, wd: 0.1 };
    const expected = torchAdamW(p0, gs, hp);
    const w = tf.variable(tf.tensor2d(p0, [2, 3]));
    const params = new Map([['transformer.h.0.attn.c_attn.weight', w]]);
    const state = adamwInit(params);
    expect(state.decay.get('transformer.h.0.attn.c_attn.weight')).toBe(true);
    for (let i = 0; i < 3; i++) {
      const g = tf.tensor2d(gs[i], [2, 3]);
      adamwUpdate(new Map([['transformer.h.0.attn.c_attn.weight', g]]), state, params, { lr: hp.lr[i], beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: hp.wd });
      g.dispose();
      assertAllClose(await w.data(), expected[i], { rtol: 2e-6, atol: 1e-7, label: `step ${i + 1}` });
    }
    expect(state.step).toBe(3);
    // Literal check of step 1: m_hat = g, v_hat = g^2, so p1 = p0 (1 - lr wd) - lr g / (|g| + eps).
    const p1 = p0.map((x, j) => x * (1 - 1e-2 * 0.1) - (1e-2 * gs[0][j]) / (Math.abs(gs[0][j]) + 1e-6));
    assertAllClose(expected[0], p1, { rtol: 1e-12, atol: 1e-15, label: 'reference step 1' });
    expect(p1[0]).toBeCloseTo(0.5 * 0.999 - 0.01 * 0.1 / 0.100001, 12);
    adamwDispose(state);
    w.dispose();
  });

  it('excludes norms, biases and embeddings from weight decay by name and shape', async () => {
    const cases: Array<[string, number[], boolean]> = [
      ['transformer.h.0.attn.c_attn.weight', [4, 12], true],
      ['transformer.h.0.attn.c_attn.bias', [12], false],
      ['transformer.h.0.ln_1.weight', [4], false],
      ['transformer.ln_f.bias', [4], false],
      ['transformer.wte.weight', [10, 4], false],
      ['transformer.wpe.weight', [8, 4], false],
      ['model.embed_tokens.weight', [10, 4], false],
      ['model.layers.0.input_layernorm.weight', [4], false],
      ['model.norm.weight', [4], false],
      ['model.layers.0.self_attn.q_proj.weight', [4, 4], true],
      ['model.layers.0.mlp.down_proj.weight', [4, 8], true],
      ['lm_head.weight', [10, 4], true],
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [2, 4], true],
      ['some.vector', [7], false], // 1-D: no decay whatever the name
    ];
    for (const [name, shape, decays] of cases) expect(defaultDecayFilter(name, shape), name).toBe(decays);

    // With lr*wd large and a zero gradient, a decayed weight shrinks by (1 - lr wd); the others do not move.
    const w = tf.variable(tf.ones([2, 2]));
    const b = tf.variable(tf.ones([2]));
    const e = tf.variable(tf.ones([3, 2]));
    const params = new Map([['h.0.mlp.c_fc.weight', w], ['h.0.mlp.c_fc.bias', b], ['transformer.wte.weight', e]]);
    const state = adamwInit(params);
    const grads = new Map([...params].map(([n, p]) => [n, tf.zerosLike(p)] as [string, tf.Tensor]));
    adamwUpdate(grads, state, params, { lr: 0.1, weightDecay: 0.5 });
    assertAllClose(await w.data(), [0.95, 0.95, 0.95, 0.95], { label: 'decayed' });
    assertAllClose(await b.data(), [1, 1], { label: 'bias' });
    assertAllClose(await e.data(), [1, 1, 1, 1, 1, 1], { label: 'embedding' });
    // 'all' decays every parameter.
    const stateAll = adamwInit(params, { decay: 'all' });
    adamwUpdate(grads, stateAll, params, { lr: 0.1, weightDecay: 0.5 });
    assertAllClose(await b.data(), [0.95, 0.95], { label: 'bias with decay all' });
    for (const g of grads.values()) g.dispose();
    adamwDispose(state); adamwDispose(stateAll);
    for (const p of params.values()) p.dispose();
  });

  it('leaves parameters without a gradient and their moments alone; updates in place without leaking', async () => {
    const a = tf.variable(tf.tensor1d([1, 2]));
    const c = tf.variable(tf.tensor1d([3, 4]));
    const params = new Map([['a', a], ['c', c]]);
    const state = adamwInit(params);
    const g = tf.tensor1d([1, -1]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) adamwUpdate(new Map([['a', g]]), state, params, { lr: 0.1 });
    expect(tf.memory().numTensors).toBe(before);
    assertAllClose(await c.data(), [3, 4], { label: 'c untouched' });
    assertAllClose(await state.m.get('c')!.data(), [0, 0], { label: 'c moments' });
    expect(() => adamwUpdate(new Map([['nope', g]]), state, params, { lr: 0.1 })).toThrow(/nope/);
    g.dispose(); adamwDispose(state); a.dispose(); c.dispose();
  });
});

describe('clipGradNorm', () => {
  it('computes the global norm and scales by max_norm / (norm + 1e-6) only when that is < 1', async () => {
    // norms: |[3, 4]| = 5, |[12]| = 12 -> total sqrt(25 + 144) = 13
    const grads = new Map<string, tf.Tensor>([['w', tf.tensor1d([3, 4])], ['b', tf.tensor1d([12])]]);
    const { grads: clipped, totalNorm } = clipGradNorm(grads, 1.0);
    expect((await totalNorm.data())[0]).toBeCloseTo(13, 5);
    const coef = 1 / (13 + 1e-6);
    assertAllClose(await clipped.get('w')!.data(), [3 * coef, 4 * coef], { label: 'w clipped' });
    assertAllClose(await clipped.get('b')!.data(), [12 * coef], { label: 'b clipped' });
    // max_norm above the norm: unchanged, bit for bit.
    const { grads: same, totalNorm: n2 } = clipGradNorm(grads, 100);
    expect(Array.from(await same.get('w')!.data())).toEqual([3, 4]);
    expect(Array.from(await same.get('b')!.data())).toEqual([12]);
    // Reported norm is the pre-clip norm; a global norm of the clipped grads is ~max_norm.
    const after = globalNorm(clipped);
    expect((await after.data())[0]).toBeCloseTo(1.0, 5);
    for (const t of [...grads.values(), ...clipped.values(), ...same.values(), totalNorm, n2, after]) t.dispose();
  });
});

describe('chain(clipByGlobalNorm, adamw)', () => {
  // Two parameters: 'w' [1, 2] (2-D: decayed) and 'b' [1] (1-D: not decayed); lr 0.1, weight decay 0.5,
  // betas (0.9, 0.999), eps 1e-8, clipping at 1.0.
  //
  // Step 1, grads w [3, 0], b [4]: pre-clip norm sqrt(9 + 16) = 5, coef = 1 / (5 + 1e-6), so the
  // clipped grads are w [0.6c, 0], b [0.8c] with c = 5 / (5 + 1e-6). At t = 1, m_hat = g and
  // v_hat = g^2, so each entry moves by lr g / (|g| + eps):
  //   w = [1 (1 - 0.05) - 0.1 * 0.6c / (0.6c + 1e-8), -1 (1 - 0.05)] = [0.8500000016666669, -0.95]
  //   b = 0.5 - 0.1 * 0.8c / (0.8c + 1e-8)                            = 0.40000000125000024
  // Step 2, grads w [0, 0.3], b [-0.4]: norm 0.5 < 1, nothing clipped (coef min(1, 1 / 0.500001) = 1).
  //   m = 0.9 m1 + 0.1 g, v = 0.999 v1 + 0.001 g^2, p = p (1 - lr wd) - (lr / (1 - 0.9^2)) m / (sqrt(v) / sqrt(1 - 0.999^2) + eps)
  //   m_b = 0.9 * 0.08c - 0.04 = 0.0319999856,  v_b = 0.999 * 0.00064 c^2 + 0.00016 = 0.000799359744256
  //   w = [0.7404941777494175, -0.9769136788496808], b = 0.37336630542976607
  // Without the clip, b after step 2 would be 0.3407351490331401 (its step-1 moments 5x larger).
  const hp = { weightDecay: 0.5 };
  const steps: Array<{ w: number[]; b: number[]; norm: number; after: { w: number[]; b: number[] } }> = [
    { w: [3, 0], b: [4], norm: 5, after: { w: [0.8500000016666669, -0.95], b: [0.40000000125000024] } },
    { w: [0, 0.3], b: [-0.4], norm: 0.5, after: { w: [0.7404941777494175, -0.9769136788496808], b: [0.37336630542976607] } },
  ];
  const makeParams = () => new Map<string, tf.Variable>([['w', tf.variable(tf.tensor2d([[1, -1]]))], ['b', tf.variable(tf.tensor1d([0.5]))]]);
  const gradsOf = (s: { w: number[]; b: number[] }) => new Map<string, tf.Tensor>([['w', tf.tensor2d([s.w])], ['b', tf.tensor1d(s.b)]]);

  for (const [name, opt] of [['chain(clipByGlobalNorm(1), adamw(...))', chain(clipByGlobalNorm(1.0), adamw(hp))], ['clipAdamw (the engine\'s stock chain)', clipAdamw({ maxGradNorm: 1.0, ...hp })]] as const) {
    it(`${name}: two steps equal the hand computation and report the pre-clip norm`, async () => {
      const params = makeParams();
      const state = opt.init(params);
      expect(state[0]).toEqual({});
      expect(state[1].step).toBe(0);
      expect(state[1].decay.get('w')).toBe(true);
      expect(state[1].decay.get('b')).toBe(false);
      for (const [i, s] of steps.entries()) {
        const grads = gradsOf(s);
        const u = opt.update(grads, state, params, { lr: 0.1 });
        expect((await u.gradNorm!.data())[0]).toBeCloseTo(s.norm, 5);
        u.apply();
        u.dispose();
        assertAllClose(await params.get('w')!.data(), s.after.w, { rtol: 1e-6, atol: 1e-7, label: `w after step ${i + 1}` });
        assertAllClose(await params.get('b')!.data(), s.after.b, { rtol: 1e-6, atol: 1e-7, label: `b after step ${i + 1}` });
        tf.dispose([...grads.values()]);
      }
      expect(state[1].step).toBe(2);
      assertAllClose(await state[1].m.get('b')!.data(), [0.0319999856], { rtol: 1e-6, label: 'm_b' });
      assertAllClose(await state[1].v.get('b')!.data(), [0.000799359744256], { rtol: 1e-6, label: 'v_b' });
      opt.dispose(state);
      tf.dispose([...params.values()]);
    });
  }

  it('an update that is not applied changes nothing (the trainer\'s skip), and frees what it made', async () => {
    const opt = chain(clipByGlobalNorm(1.0), adamw(hp));
    const params = makeParams();
    const state = opt.init(params);
    const grads = gradsOf(steps[0]);
    const before = tf.memory().numTensors;
    const u = opt.update(grads, state, params, { lr: 0.1 });
    expect(u.grads.get('b')).not.toBe(grads.get('b'));   // clipped copies handed on
    assertAllClose(await u.grads.get('b')!.data(), [4 / (5 + 1e-6)], { label: 'clipped b' });
    u.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(state[1].step).toBe(0);
    expect(Array.from(await params.get('w')!.data())).toEqual([1, -1]);
    expect(Array.from(await state[1].m.get('w')!.data())).toEqual([0, 0]);
    // The gradients given are the caller's: still there.
    expect(Array.from(await grads.get('b')!.data())).toEqual([4]);
    opt.dispose(state);
    tf.dispose([...grads.values(), ...params.values()]);
  });

  it('clipByGlobalNorm(0) reports the norm and hands the gradients on unscaled; adamw alone measures no norm', async () => {
    const grads = gradsOf(steps[0]);
    const measured = clipByGlobalNorm(0).update(grads, {}, new Map(), { lr: 0.1 });
    expect((await measured.gradNorm!.data())[0]).toBeCloseTo(5, 5);
    expect(measured.grads).toBe(grads);
    measured.dispose();
    // No clipping: step 1 of b is then lr * 4 / (4 + eps), the same sign step; step 2 differs from the clipped run.
    const opt = clipAdamw({ maxGradNorm: 0, ...hp });
    const params = makeParams();
    const state = opt.init(params);
    for (const s of steps) {
      const g = gradsOf(s);
      const u = opt.update(g, state, params, { lr: 0.1 });
      u.apply(); u.dispose();
      tf.dispose([...g.values()]);
    }
    assertAllClose(await params.get('b')!.data(), [0.3407351490331401], { rtol: 1e-6, label: 'b unclipped' });
    opt.dispose(state);
    const alone = adamw(hp);
    const st = alone.init(params);
    const u = alone.update(grads, st, params, { lr: 0.1 });
    expect(u.gradNorm).toBeUndefined();
    expect(u.grads).toBe(grads);
    u.dispose(); alone.dispose(st);
    tf.dispose([...grads.values(), ...params.values()]);
  });

  it('an error in a later transformation frees what the earlier ones made', () => {
    const opt = chain(clipByGlobalNorm(1.0), adamw(hp));
    const params = makeParams();
    const state = opt.init(params);
    const failing = chain(clipByGlobalNorm(1.0), { ...adamw(hp), update: () => { throw new Error('boom'); } });
    const grads = gradsOf(steps[0]);
    const before = tf.memory().numTensors;
    expect(() => failing.update(grads, state, params, { lr: 0.1 })).toThrow(/boom/);
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose(state);
    tf.dispose([...grads.values(), ...params.values()]);
  });
});

describe('schedules (transformers get_*_schedule_with_warmup)', () => {
  const table: Array<[ScheduleConfig, number, number]> = [
    // [config, step, expected lr]
    [{ kind: 'constant', lr: 0.1 }, 0, 0.1],
    [{ kind: 'constant', lr: 0.1 }, 1000, 0.1],
    [{ kind: 'constant', lr: 0.1, warmupSteps: 4 }, 0, 0],
    [{ kind: 'constant', lr: 0.1, warmupSteps: 4 }, 1, 0.025],
    [{ kind: 'constant', lr: 0.1, warmupSteps: 4 }, 4, 0.1],
    [{ kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 }, 0, 0],
    [{ kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 }, 5, 5e-4],
    [{ kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 }, 10, 1e-3],
    [{ kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 }, 60, 5e-4],     // (110-60)/100
    [{ kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 }, 109, 1e-5],
    [{ kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 }, 110, 0],
    [{ kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 }, 200, 0],       // clamped at 0
    [{ kind: 'linear', lr: 2, totalSteps: 4 }, 1, 1.5],                              // no warmup: (4-1)/4
    [{ kind: 'cosine', lr: 1, warmupSteps: 2, totalSteps: 10 }, 1, 0.5],
    [{ kind: 'cosine', lr: 1, warmupSteps: 2, totalSteps: 10 }, 2, 1],
    [{ kind: 'cosine', lr: 1, warmupSteps: 2, totalSteps: 10 }, 4, 0.5 * (1 + Math.cos(Math.PI * 0.25))], // progress 2/8
    [{ kind: 'cosine', lr: 1, warmupSteps: 2, totalSteps: 10 }, 6, 0.5],             // halfway
    [{ kind: 'cosine', lr: 1, warmupSteps: 2, totalSteps: 10 }, 10, 0],
    [{ kind: 'cosine', lr: 1, warmupSteps: 0, totalSteps: 4, numCycles: 1 }, 2, 0],  // full cycle: bottom at half
    [{ kind: 'cosine', lr: 1, warmupSteps: 0, totalSteps: 4, numCycles: 1 }, 4, 1],  // and back up
    [{ kind: 'cosine', lr: 3e-4, totalSteps: 3 }, 1, 3e-4 * 0.75],                   // 0.5(1+cos(pi/3)) = 0.75
  ];
  for (const [config, step, expected] of table) {
    it(`${config.kind} ${JSON.stringify(config)} at step ${step} = ${expected}`, () => {
      expect(learningRate(config, step)).toBeCloseTo(expected, 12);
    });
  }
  it('refuses decay schedules without totalSteps, and computes warmup from a ratio like transformers', () => {
    expect(() => scheduleFactor({ kind: 'cosine', lr: 1 }, 3)).toThrow(/totalSteps/);
    expect(warmupStepsFromRatio(100, 0.03)).toBe(3);
    expect(warmupStepsFromRatio(10, 0.05)).toBe(1); // ceil(0.5)
  });
});
