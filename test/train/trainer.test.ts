import * as tf from '@tensorflow/tfjs';
import { describe, it, expect, beforeAll } from 'vitest';
import { Trainer, evaluateLoss, batchSourceFrom, type StepEvent, type TrainerEvent } from '../../src/train/trainer.js';
import { saveTrainerCheckpoint, resumeTrainer } from '../../src/io/trainer_checkpoint.js';
import { MemoryFiles } from '../../src/io/files.js';
import { CausalLM } from '../../models/causal_lm.js';
import { useBackend, assertAllClose } from '../helpers/backends.js';
import { tinyGPT2, tinyGPT2Config, makeBatch, randomRows, paramValues } from './helpers.js';

beforeAll(async () => {
  await useBackend('cpu');
});

/** Float64 log-softmax cross-entropy and argmax accuracy from host logits: an independent eval reference. */
function referenceEval(logits: Float32Array, labels: Int32Array, B: number, T: number, V: number): { loss: number; acc: number; n: number } {
  let sum = 0, hits = 0, n = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const y = labels[b * T + t + 1];
      if (y === -100) continue;
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      let max = -Infinity, arg = 0;
      for (let v = 0; v < V; v++) if (row[v] > max) { max = row[v]; arg = v; }
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(row[v] - max);
      sum += Math.log(z) + max - row[y];
      hits += arg === y ? 1 : 0;
      n++;
    }
  }
  return { loss: sum / n, acc: hits / n, n };
}

describe('Trainer on a tiny GPT-2 (CPU)', () => {
  it('overfits a fixed batch to near-zero loss, emitting step events with every metric', async () => {
    const model = tinyGPT2(1);
    const batch = makeBatch(randomRows(2, 10, 32, 7));
    const trainer = new Trainer(model, { train: [batch], lr: 5e-2, schedule: 'constant', maxSteps: 60, seed: 3 });
    const steps: StepEvent[] = [];
    const statuses: string[] = [];
    trainer.on((e) => {
      if (e.type === 'step') steps.push(e);
      if (e.type === 'status') statuses.push(e.status);
    });
    expect(await trainer.run()).toBe('done');
    expect(statuses).toEqual(['running', 'done']);
    expect(steps.length).toBe(60);
    expect(steps[0].loss).toBeGreaterThan(3.0);                 // ~ln 32 at init
    expect(steps.at(-1)!.loss).toBeLessThan(0.05);
    const e = steps.at(-1)!;
    expect(e.step).toBe(60);
    expect(e.epoch).toBe(60);                                   // one batch per epoch
    expect(e.lr).toBe(5e-2);
    expect(e.gradNorm).toBeGreaterThan(0);
    expect(e.trainedTokens).toBe(18);                           // 2 rows x 9 predicted positions
    expect(e.trainedFraction).toBeCloseTo(18 / 20, 12);
    expect(e.tokens).toBe(60 * 20);
    expect(e.tokensPerSecond).toBeGreaterThan(0);
    expect(e.elapsedMs).toBeGreaterThan(0);
    // Evaluation on the same batch agrees with an independent float64 computation from the logits.
    const ev = await trainer.evaluate([batch]);
    const logits = model.forward(tf.tensor2d(batch.inputIds, [2, 10], 'int32'));
    const ref = referenceEval((await logits.data()) as Float32Array, batch.labels, 2, 10, 32);
    logits.dispose();
    expect(ev.tokens).toBe(ref.n);
    expect(ev.evalLoss).toBeCloseTo(ref.loss, 5);
    expect(ev.perplexity).toBeCloseTo(Math.exp(ref.loss), 5);
    expect(ev.tokenAccuracy).toBe(ref.acc);
    expect(ev.tokenAccuracy).toBe(1);
    trainer.dispose(); model.dispose();
  });

  it('keeps tf.memory() flat over 200 steps (with accumulation, clipping, eval)', async () => {
    const model = tinyGPT2(2);
    const batches = [makeBatch(randomRows(2, 8, 32, 1)), makeBatch(randomRows(2, 6, 32, 2), { seqLen: 8 }), makeBatch(randomRows(1, 8, 32, 3))];
    const trainer = new Trainer(model, { train: batches, eval: [batches[0]], evalEvery: 50, lr: 1e-3, schedule: 'cosine', warmupSteps: 5, maxSteps: 200, gradientAccumulationSteps: 2, maxGradNorm: 0.5, weightDecay: 0.1, shuffle: true });
    const snapshots = new Map<number, { numTensors: number; numBytes: number }>();
    trainer.on((e) => {
      if (e.type === 'step' && (e.step === 10 || e.step === 200)) snapshots.set(e.step, { numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes });
    });
    await trainer.run();
    expect(snapshots.get(10)).toBeDefined();
    expect(snapshots.get(200)).toEqual(snapshots.get(10));
    const before = tf.memory().numTensors;
    trainer.dispose();
    // What persists is the model plus two moments per trainable parameter.
    expect(before - tf.memory().numTensors).toBe(2 * model.trainableParams().size);
    model.dispose();
  });

  it('resumed at step k reproduces the uninterrupted loss curve bit for bit', async () => {
    const batches = [0, 1, 2, 3, 4].map((i) => makeBatch(randomRows(2, 8, 32, 100 + i)));
    const opts = { train: batches, lr: 5e-3, schedule: 'cosine' as const, warmupSteps: 2, maxSteps: 12, gradientAccumulationSteps: 2, shuffle: true, weightDecay: 0.05, seed: 11 };
    const full = tinyGPT2(5);
    const ref = new Trainer(full, opts);
    const refLoss: number[] = [];
    ref.on((e) => { if (e.type === 'step') refLoss.push(e.loss); });
    await ref.run();
    const refParams = await paramValues(full);

    const model = tinyGPT2(5);
    const first = new Trainer(model, opts);
    const losses: number[] = [];
    first.on((e) => {
      if (e.type === 'step') { losses.push(e.loss); if (e.step === 5) first.stop(); }
    });
    expect(await first.run()).toBe('stopped');
    expect(first.step).toBe(5);                                  // mid-epoch (3 steps per epoch)
    const files = new MemoryFiles();
    await saveTrainerCheckpoint(first, files);
    expect([...files.files.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    first.dispose(); model.dispose();

    const resumed = await resumeTrainer(files, opts);
    expect(resumed.step).toBe(5);
    resumed.on((e) => { if (e.type === 'step') losses.push(e.loss); });
    await resumed.run();
    expect(losses).toEqual(refLoss);                            // exact equality of every float
    const params = await paramValues(resumed.model as CausalLM);
    for (const [n, v] of refParams) expect(Array.from(params.get(n)!), n).toEqual(Array.from(v));
    const state = JSON.parse(new TextDecoder().decode(files.files.get('trainer_state.json')!));
    expect(state.state.global_step).toBe(5);
    expect(state.state.log_history.length).toBe(5);
    resumed.dispose(); (resumed.model as CausalLM).dispose(); ref.dispose(); full.dispose();
  });

  it('resumes a LoRA run (frozen base, seeded LoRA dropout) exactly: adapters are saved beside the model', async () => {
    const attachLora = (model: CausalLM) => {
      for (const v of model.params.values()) v.trainable = false;
      let k = 0;
      for (const [name, lin] of model.linearModules()) {
        if (name === 'lm_head') continue;
        const r = 2;
        lin.lora = {
          A: tf.variable(tf.randomNormal([r, lin.inFeatures], 0, 0.1, 'float32', 100 + k++)),
          B: tf.variable(tf.zeros([lin.outFeatures, r])),
          scaling: 8 / r, dropout: 0.2,
        };
      }
      return model;
    };
    const batches = [0, 1, 2].map((i) => makeBatch(randomRows(2, 8, 32, 200 + i)));
    const opts = { train: batches, lr: 1e-2, schedule: 'linear' as const, maxSteps: 8, seed: 4 };
    const full = attachLora(tinyGPT2(7));
    expect([...full.trainableParams().keys()]).toContain('transformer.h.0.attn.c_attn.lora_A.weight');
    const ref = new Trainer(full, opts);
    const refLoss: number[] = [];
    ref.on((e) => { if (e.type === 'step') refLoss.push(e.loss); });
    await ref.run();

    const first = attachLora(tinyGPT2(7));
    const t1 = new Trainer(first, opts);
    const losses: number[] = [];
    t1.on((e) => { if (e.type === 'step') { losses.push(e.loss); if (e.step === 4) t1.stop(); } });
    await t1.run();
    const files = new MemoryFiles();
    await saveTrainerCheckpoint(t1, files);
    expect(files.files.has('trainable_params.safetensors')).toBe(true);
    t1.dispose(); first.dispose();

    // A fresh base with adapters attached (their initial values are overwritten from the checkpoint).
    const second = attachLora(tinyGPT2(7));
    const t2 = await resumeTrainer(files, opts, second);
    t2.on((e) => { if (e.type === 'step') losses.push(e.loss); });
    await t2.run();
    expect(losses).toEqual(refLoss);
    // Without the same adapters the checkpoint is refused, naming the parameter.
    await expect(resumeTrainer(files, opts, tinyGPT2(7))).rejects.toThrow(/lora_A\.weight' is not a trainable parameter/);
    t2.dispose(); ref.dispose(); second.dispose(); full.dispose();
  });

  it('token-weighted accumulation of K micro-batches equals one batch holding them all', async () => {
    // Different numbers of trained positions per micro-batch, so a mean of micro-batch means would differ.
    const rowsA = randomRows(2, 8, 32, 21), rowsB = randomRows(2, 8, 32, 22);
    const trainedA = (_r: number, t: number) => t >= 6;            // 2 per row
    const trainedB = (_r: number, t: number) => t >= 1;            // 7 per row
    const a = makeBatch(rowsA, { trained: trainedA });
    const b = makeBatch(rowsB, { trained: trainedB });
    const both = makeBatch([...rowsA, ...rowsB], { trained: (r, t) => (r < 2 ? trainedA(r, t) : trainedB(r, t)) });
    // eps well above float32 noise: the key bias has an exactly-zero true gradient (softmax is
    // shift-invariant), and Adam with eps 1e-8 would turn its rounding noise into full-size steps.
    const common = { lr: 1e-2, schedule: 'constant' as const, maxGradNorm: 0, maxSteps: 3, eps: 1e-4 };

    const m1 = tinyGPT2(9), m2 = tinyGPT2(9);
    const t1 = new Trainer(m1, { ...common, train: [a, b], gradientAccumulationSteps: 2 });
    const t2 = new Trainer(m2, { ...common, train: [both] });
    const e1: StepEvent[] = [], e2: StepEvent[] = [];
    t1.on((e) => { if (e.type === 'step') e1.push(e); });
    t2.on((e) => { if (e.type === 'step') e2.push(e); });
    await t1.run(); await t2.run();
    expect(e1.map((e) => e.trainedTokens)).toEqual([18, 18, 18]);
    for (let i = 0; i < 3; i++) {
      expect(e1[i].loss).toBeCloseTo(e2[i].loss, 5);
      expect(e1[i].gradNorm).toBeCloseTo(e2[i].gradNorm, 5);
    }
    const p1 = await paramValues(m1), p2 = await paramValues(m2);
    for (const [n, v] of p1) assertAllClose(v, p2.get(n)!, { rtol: 1e-4, atol: 1e-6, label: n });

    // The weighting matters here: the micro-batch-mean alternative is far from the token mean.
    const fresh = tinyGPT2(9);
    const la = await evaluateLoss(fresh, [a]), lb = await evaluateLoss(fresh, [b]), lab = await evaluateLoss(fresh, [both]);
    expect(lab.evalLoss).toBeCloseTo((la.evalLoss * 4 + lb.evalLoss * 14) / 18, 5);
    expect(e1[0].loss).toBeCloseTo(lab.evalLoss, 5);
    expect(Math.abs((la.evalLoss + lb.evalLoss) / 2 - lab.evalLoss)).toBeGreaterThan(1e-3);
    for (const x of [t1, t2]) x.dispose();
    for (const m of [m1, m2, fresh]) m.dispose();
  });

  it('skips a step with a non-finite loss: no update, weights stay finite, the run goes on or stops by option', async () => {
    const batch = makeBatch(randomRows(2, 8, 32, 5));
    for (const onNonFinite of ['skip', 'stop'] as const) {
      const model = tinyGPT2(4);
      // A huge learning rate: step 1 moves every weight by ~1e37, the next forward overflows.
      const trainer = new Trainer(model, { train: [batch], lr: 1e37, schedule: 'constant', maxSteps: 4, maxGradNorm: 0, onNonFinite });
      const events: TrainerEvent[] = [];
      trainer.on((e) => events.push(e));
      const status = await trainer.run();
      const skips = events.filter((e) => e.type === 'skip');
      expect(skips.length).toBeGreaterThan(0);
      expect(skips[0].type === 'skip' && skips[0].reason).toMatch(/non-finite (loss|gradient norm)/);
      for (const [n, v] of await paramValues(model)) expect(v.every(Number.isFinite), n).toBe(true);
      if (onNonFinite === 'skip') {
        expect(status).toBe('done');
        expect(trainer.step).toBe(4);
      } else {
        expect(status).toBe('stopped');
        expect(events.at(-1)).toMatchObject({ type: 'status', status: 'stopped', reason: 'non-finite' });
        expect(skips.length).toBe(1);
        expect(trainer.step).toBe(skips[0].step);                 // stopped right after the first skip
      }
      // trainer_state.json cannot hold NaN: the skipped entries are still saved.
      const files = new MemoryFiles();
      await saveTrainerCheckpoint(trainer, files, { saveModel: false });
      trainer.dispose(); model.dispose();
    }
  });

  it('refuses a batch with no trained position, naming the rows and their source lines', async () => {
    const model = tinyGPT2(0);
    const bad = makeBatch(randomRows(3, 6, 32, 9), {
      trained: (r, t) => r === 1 && t === 0,                      // only position 0 of row 1: never predicted
      meta: [[{ file: 'train.jsonl', line: 4 }], [{ file: 'train.jsonl', line: 5 }], [{ file: 'train.jsonl', line: 9 }]],
    });
    const trainer = new Trainer(model, { train: [bad], maxSteps: 1 });
    const statuses: string[] = [];
    trainer.on((e) => { if (e.type === 'status') statuses.push(e.status); });
    await expect(trainer.run()).rejects.toThrow(/no trained positions in rows 0 \(train\.jsonl:4\), 1 \(train\.jsonl:5\), 2 \(train\.jsonl:9\)/);
    expect(statuses).toEqual(['running', 'failed']);
    expect(trainer.step).toBe(0);
    trainer.dispose(); model.dispose();
  });

  it('pauses, resumes and stops between steps; events() iterates until the run ends; evals every N steps', async () => {
    const model = tinyGPT2(6);
    const batch = makeBatch(randomRows(2, 8, 32, 8));
    const trainer = new Trainer(model, { train: [batch], eval: [batch], evalEvery: 2, lr: 1e-3, maxSteps: 50 });
    const seen: TrainerEvent[] = [];
    const consumer = (async () => { for await (const e of trainer.events()) seen.push(e); })();
    trainer.on((e) => {
      if (e.type === 'step' && e.step === 3) trainer.pause();
      if (e.type === 'status' && e.status === 'paused') setTimeout(() => trainer.resume(), 20);
      if (e.type === 'step' && e.step === 6) trainer.stop();
    });
    expect(await trainer.run()).toBe('stopped');
    await consumer;
    const kinds = seen.map((e) => (e.type === 'status' ? `${e.status}` : `${e.type}${e.step}`));
    expect(kinds).toEqual(['running', 'step1', 'step2', 'eval2', 'step3', 'paused', 'running', 'step4', 'eval4', 'step5', 'step6', 'eval6', 'stopped']);
    const ev = seen.find((e) => e.type === 'eval')!;
    expect(ev.type === 'eval' && ev.perplexity).toBeCloseTo(Math.exp((ev as { evalLoss: number }).evalLoss), 10);
    expect(trainer.history.filter((h) => 'eval_loss' in h).length).toBe(3);
    trainer.dispose(); model.dispose();
  });

  it('trains over epochs of tokenized examples (batchSourceFrom), reporting fractional epochs', async () => {
    const examples = randomRows(6, 7, 32, 77).map((ids, i) => ({ inputIds: ids, labels: ids.map((x, t) => (t < 2 ? -100 : x)), meta: { line: i + 1 } }));
    const { train, batchesPerEpoch } = batchSourceFrom(examples, { batchSize: 2, padTokenId: 0, seed: 1 });
    expect(batchesPerEpoch).toBe(3);
    const firstRows = (epoch: number) => [...train(epoch)].map((b) => b.meta.map((m) => m[0].line));
    expect(firstRows(0)).toEqual(firstRows(0));                          // deterministic per epoch
    expect(firstRows(1)).not.toEqual(firstRows(0));                      // reshuffled each epoch
    expect(firstRows(0).flat().sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const model = tinyGPT2(1);
    const trainer = new Trainer(model, { train, batchesPerEpoch, epochs: 2, lr: 1e-3 });
    expect(trainer.maxSteps).toBe(6);
    const epochs: number[] = [];
    trainer.on((e) => { if (e.type === 'step') epochs.push(e.epoch); });
    await trainer.run();
    epochs.forEach((e, i) => expect(e).toBeCloseTo((i + 1) / 3, 12));
    trainer.dispose(); model.dispose();
  });

  it('trains only the trainable parameters', async () => {
    const model = CausalLM.create(tinyGPT2Config(), { seed: 3 });
    const frozen = model.params.get('transformer.wte.weight')!;
    frozen.trainable = false;
    const before = Array.from(await frozen.data());
    const changed = model.params.get('transformer.h.0.mlp.c_fc.weight')!;
    const before2 = Array.from(await changed.data());
    const trainer = new Trainer(model, { train: [makeBatch(randomRows(2, 8, 32, 1))], lr: 1e-2, maxSteps: 2 });
    await trainer.run();
    expect(Array.from(await frozen.data())).toEqual(before);
    expect(Array.from(await changed.data())).not.toEqual(before2);
    trainer.dispose(); model.dispose();
  });
});
