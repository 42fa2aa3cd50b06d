/** "Grow data": Self-Instruct / Evol-Instruct with the current model, seeded from bundled or uploaded rows. */
import { selfInstruct, evolInstruct, seedTaskFromExample, grownExamples, type GrowRun } from '../../../src/index.js';
import type { GrowSettings } from '../../protocol.js';
import { post, byFamily, roundRobin, type Handlers, type WorkerState } from '../state.js';

async function growData(s: WorkerState, id: number, g: GrowSettings): Promise<void> {
  const model = s.needModel('No model yet: load or train one first.');
  // Bundled seeds: `seedCount` training rows taken round-robin over the families, so every family seeds.
  const rows = g.seeds === 'upload' ? s.uploaded : roundRobin(byFamily(s.trainExamples).values(), g.seedCount);
  if (rows.length === 0) throw new Error(g.seeds === 'upload' ? 'No uploaded rows to seed from: upload a JSONL file in the Dataset panel first.' : 'No seed rows.');
  const seedTasks = rows.map(seedTaskFromExample).filter((t) => t.instruction);
  const abort = new AbortController();
  s.growAbort = abort;
  const common = {
    model, tokenizer: s.tokenizer, template: s.template, modelName: s.modelName, seedTasks, n: g.n, promptFormat: g.promptFormat, seed: g.seed, signal: abort.signal,
    answerSampling: { maxNewTokens: g.answerMaxNewTokens },
  };
  const sampling = { temperature: g.temperature, topP: g.topP, maxNewTokens: g.maxNewTokens };
  const run: GrowRun = g.method === 'self-instruct'
    ? selfInstruct({ ...common, fewShot: g.fewShot, maxPrompts: g.maxPrompts, instructionSampling: sampling })
    : evolInstruct({ ...common, operations: g.operations, rounds: g.rounds, evolSampling: sampling });
  post({ status: 'grow-started', id, model: s.modelName, params: model.numParams(), seeds: seedTasks.length });
  try {
    for await (const candidate of run) post({ status: 'grow-candidate', id, candidate, stats: run.stats });
    post({ status: 'grow-done', id, stats: run.stats, stopped: abort.signal.aborted });
  } finally {
    s.growAbort = undefined;
  }
}

export const growHandlers: Handlers<'grow' | 'grow-stop' | 'grow-use'> = {
  grow: (msg, s) => s.exclusive(() => growData(s, msg.id, msg.settings)),
  'grow-stop': (_msg, s) => s.growAbort?.abort(),
  'grow-use'(msg, s) {
    s.grown = grownExamples(msg.rows);
    post({ status: 'grow-used', id: msg.id, rows: s.grown.length });
  },
};
