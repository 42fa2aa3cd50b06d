/**
 * Talking to the model: the chat panel, and the before/after comparison on held-out test rows
 * (the model before the last run: its snapshot, or the same model with its adapter switched off).
 */
import { generateChat, evaluate, chatAnswerer, promptOf, loadModelFiles, loraState, withAdaptersDisabled, type CausalLM } from '../../../src/index.js';
import type { FamilyScore } from '../../protocol.js';
import { post, byFamily, roundRobin, type Handlers, type WorkerState } from '../state.js';

function scores(counts: Record<string, { n: number; correct: number }>): Record<string, FamilyScore> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, { n: v.n, correct: v.correct }]));
}

/** Rows decoded together in the comparison. */
const COMPARE_BATCH = 16;

async function compare(s: WorkerState, id: number, limit: number, maxNewTokens: number): Promise<void> {
  const tuned = s.needModel();
  // Up to `limit` test rows, taken round-robin over the families so each one is represented.
  const rows = roundRobin(byFamily(s.testRows).values(), limit);
  const base = s.baseSnapshot ? await loadModelFiles(s.baseSnapshot) : undefined;
  // Without a snapshot, a model with an (unmerged) adapter answers "before" with the adapter off.
  const lora = loraState(tuned);
  const adapterOff = !base && !!lora && !lora.merged;
  try {
    // Greedy answers, rows of equal prompt length decoded together (the same answers as one by one).
    const answer = (m: CausalLM) => chatAnswerer(m, s.tokenizer, s.template, { maxNewTokens, batchSize: COMPARE_BATCH });
    const total = rows.length * (base || adapterOff ? 2 : 1);
    let done = 0;
    const run = async (which: 'base' | 'tuned', m: CausalLM) => evaluate(rows, answer(m), {
      onRow: (r) => {
        done++;
        const prompt = promptOf(rows[r.index].messages!).map((msg) => `${msg.role}: ${msg.content}`).join('\n');
        post({ status: 'compare-row', id, which, done, total, row: { index: r.index, family: r.family, prompt, expected: JSON.stringify(r.expected), output: r.output, correct: r.correct } });
      },
    });
    const baseResult = base ? await run('base', base) : adapterOff ? await withAdaptersDisabled(tuned, () => run('base', tuned)) : undefined;
    const tunedResult = await run('tuned', tuned);
    post({
      status: 'compare-done', id,
      base: baseResult ? scores(baseResult.familyCounts) : {}, tuned: scores(tunedResult.familyCounts),
      baseOverall: baseResult?.overall ?? NaN, tunedOverall: tunedResult.overall,
    });
  } finally {
    base?.dispose();
  }
}

export const generateHandlers: Handlers<'chat' | 'compare'> = {
  async chat(msg, s) {
    const model = s.needModel('No model yet.');
    const t0 = performance.now();
    const out = await s.exclusive(() => generateChat(model, s.tokenizer, s.template, msg.messages, {
      maxNewTokens: msg.maxNewTokens, temperature: msg.temperature, seed: 1,
      onToken: (_id, text) => { if (text) post({ status: 'chat-token', id: msg.id, text }); },
    }));
    post({ status: 'chat-done', id: msg.id, text: out.text, tokens: out.ids.length, ms: performance.now() - t0 });
  },
  compare: (msg, s) => s.exclusive(() => compare(s, msg.id, msg.limit, msg.maxNewTokens)),
};
