/**
 * The page's run folder (demo/worker/page_run.ts) over browserFolder on a Map standing in for
 * IndexedDB: checkpoints every 2 steps keep the newest two; the interrupted run resumes at the
 * same step, with the same AdamW state and data position, and finishes bit for bit like a run
 * that was never interrupted; a finished run leaves nothing to resume.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { Trainer, resumeTrainer, browserFolder, applyLora, loadModel, type CausalLM, type Example } from '../../src/index.js';
import { PageRun, RUN_FOLDER, PAGE_RUN_FILE, type PageRunRecord } from '../../demo/worker/page_run.js';
import type { TrainSettings } from '../../demo/protocol.js';
import { MapStore } from '../helpers/map_store.js';
import { useBackend } from '../helpers/backends.js';
import { tinyGPT2, makeBatch, randomRows, paramValues } from '../train/helpers.js';

beforeAll(async () => {
  await useBackend('cpu');
});

/** 4 batches per epoch, 7 steps: the run crosses into its second epoch. */
const batches = [0, 1, 2, 3].map((i) => makeBatch(randomRows(2, 8, 32, 300 + i)));
const options = { train: batches, lr: 1e-2, schedule: 'cosine' as const, warmupSteps: 2, maxSteps: 7, seed: 11 };

const settings = {
  model: 'nano', family: 'gpt2', steps: 7, epochs: 1, lr: 1e-2, batchSize: 2, warmupSteps: 2, schedule: 'cosine', mask: 'assistant', maxLength: 8,
  evalEvery: 0, lora: { enabled: false, r: 8, alpha: 16, targets: [], modulesToSave: [] }, neftune: { enabled: false, alpha: 5 }, gradientCheckpointing: false,
  template: { kind: 'builtin', name: 'chatml' }, weights: { arithmetic: 1 }, uploadWeight: 1, saveEvery: 2, seed: 11, kernels: 'auto',
} satisfies TrainSettings;
const uploaded: Example[] = [{ format: 'messages', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }], meta: { line: 1 } }];
const record: PageRunRecord = { settings, startName: 'gpt2 nano (fresh)', maxSteps: 7, uploaded, grown: [] };

describe('the page\'s run folder (browserFolder on a stand-in store)', () => {
  it('keeps the newest 2 checkpoints, resumes the same step, optimizer state and data position, and ends like an uninterrupted run', async () => {
    // The reference: 7 steps without a break.
    const refModel = tinyGPT2(5);
    const ref = new Trainer(refModel, options);
    const refLosses: number[] = [];
    ref.on((e) => { if (e.type === 'step') refLosses.push(e.loss); });
    await ref.run();
    const refParams = await paramValues(refModel);

    // The page's run: a checkpoint every 2 steps; the tab is closed after step 7 began (its state is lost).
    const store = new MapStore();
    store.entries.set('my kept model', new Map());       // a saved model shares the store: never touched
    const run = new PageRun(browserFolder(store, RUN_FOLDER));
    await run.begin();
    const model = tinyGPT2(5);
    const first = new Trainer(model, options);
    const losses: number[] = [];
    first.on((e) => { if (e.type === 'step') losses.push(e.loss); });
    for (let step = 1; step <= 6; step++) {
      await first.trainStep();
      if (step % 2 === 0) await run.save(first, record);
    }
    const saved = first.progress();
    const savedM = new Map<string, number[]>(), savedV = new Map<string, number[]>();
    for (const [n, m] of saved.optimizer.m) {
      savedM.set(n, Array.from((await m.data()) as Float32Array));
      savedV.set(n, Array.from((await saved.optimizer.v.get(n)!.data()) as Float32Array));
    }
    const optimizerStep = saved.optimizer.step;
    first.dispose(); model.dispose();

    // Rotation: checkpoint-2 went when checkpoint-6 was written; entries are whole (no temporary names).
    expect([...store.entries.keys()].sort()).toEqual(['my kept model', `${RUN_FOLDER}/checkpoint-4`, `${RUN_FOLDER}/checkpoint-6`]);

    // After the reload: the newest checkpoint, with the record the page rebuilds the run from.
    const cut = await run.interrupted();
    expect(cut).toBeDefined();
    expect(cut!.step).toBe(6);
    expect(cut!.maxSteps).toBe(7);
    expect(cut!.location).toBe(`browser storage/${RUN_FOLDER}/checkpoint-6`);
    expect(cut!.record).toEqual(record);
    expect(await cut!.checkpoint.exists(PAGE_RUN_FILE)).toBe(true);

    const resumed = await resumeTrainer(cut!.checkpoint, options);
    const p = resumed.progress();
    expect(p.step).toBe(6);
    // 6 batches of 4 per epoch consumed: epoch 1, batch 2.
    expect(p.position).toEqual({ epoch: 1, batchIndex: 2 });
    expect(p.optimizer.step).toBe(optimizerStep);
    expect(p.optimizer.step).toBe(6);
    for (const [n, m] of p.optimizer.m) {
      expect(Array.from((await m.data()) as Float32Array), `${n} exp_avg`).toEqual(savedM.get(n));
      expect(Array.from((await p.optimizer.v.get(n)!.data()) as Float32Array), `${n} exp_avg_sq`).toEqual(savedV.get(n));
    }
    // The charts' history: the 6 steps before the checkpoint, with their losses.
    expect(resumed.history.filter((e) => 'loss' in e).map((e) => [e.step, e.loss])).toEqual(losses.map((l, i) => [i + 1, l]));

    resumed.on((e) => { if (e.type === 'step') losses.push(e.loss); });
    await resumed.run();
    expect(losses).toEqual(refLosses);                      // every step's loss, exactly
    const params = await paramValues(resumed.model as CausalLM);
    for (const [n, v] of refParams) expect(params.get(n), n).toEqual(v);

    // The run ended: nothing is left to resume; the saved model stays.
    await run.finish();
    expect(await run.interrupted()).toBeUndefined();
    expect([...store.entries.keys()]).toEqual(['my kept model']);
    resumed.dispose(); (resumed.model as CausalLM).dispose(); ref.dispose(); refModel.dispose();
  });

  it('resumes a LoRA run (modules to save included) as the page does: the checkpoint\'s base weights, the adapter attached again, its values restored', async () => {
    const lora = { r: 2, alpha: 4, targetModules: ['c_attn'], modulesToSave: ['wte', 'lm_head'], seed: 3 };
    const refModel = tinyGPT2(5);
    applyLora(refModel, lora);
    const ref = new Trainer(refModel, options);
    const refLosses: number[] = [];
    ref.on((e) => { if (e.type === 'step') refLosses.push(e.loss); });
    await ref.run();

    const store = new MapStore();
    const run = new PageRun(browserFolder(store, RUN_FOLDER));
    const model = tinyGPT2(5);
    applyLora(model, lora);
    const first = new Trainer(model, options);
    const losses: number[] = [];
    first.on((e) => { if (e.type === 'step') losses.push(e.loss); });
    for (let step = 1; step <= 4; step++) await first.trainStep();
    await run.save(first, { ...record, settings: { ...settings, lora: { enabled: true, r: 2, alpha: 4, targets: ['c_attn'], modulesToSave: ['wte', 'lm_head'] } } });
    first.dispose(); model.dispose();

    const cut = (await run.interrupted())!;
    expect(cut.record.settings.lora.enabled).toBe(true);
    const again = await loadModel(cut.checkpoint);
    applyLora(again, { ...lora, seed: 99 });            // another initialisation: the checkpoint's values replace it
    const resumed = await resumeTrainer(cut.checkpoint, options, again);
    expect(resumed.step).toBe(4);
    resumed.on((e) => { if (e.type === 'step') losses.push(e.loss); });
    await resumed.run();
    expect(losses).toEqual(refLosses);
    resumed.dispose(); again.dispose(); ref.dispose(); refModel.dispose();
  });

  it('a new run removes what an earlier one left, a cut-short save included', async () => {
    const store = new MapStore();
    const run = new PageRun(browserFolder(store, RUN_FOLDER));
    const model = tinyGPT2(1);
    const t = new Trainer(model, options);
    await t.trainStep();
    await run.save(t, record);
    store.entries.set(`${RUN_FOLDER}/.checkpoint-2.partial-abc`, new Map());   // a rename the closed tab never made
    expect((await run.interrupted())!.step).toBe(1);
    store.entries.set(`${RUN_FOLDER}/.checkpoint-2.partial-abc`, new Map());
    await run.begin();
    expect([...store.entries.keys()]).toEqual([]);
    expect(await run.interrupted()).toBeUndefined();
    t.dispose(); model.dispose();
  });
});
