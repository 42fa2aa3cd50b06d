/**
 * Evol-Instruct (WizardLM, Xu et al. 2023): a model rewrites an instruction to be harder, in
 * depth (add a constraint, deepen, concretize, ask for more reasoning steps) or in breadth (a new,
 * rarer instruction of the same domain), answers it, and failed evolutions are eliminated. As the
 * paper does it:
 *
 *   prompts   the paper's rewriter / creator prompts (below), one operation drawn per instruction
 *   sampling  temperature 1, top-p 0.95
 *   rounds    every instruction of the pool is evolved once per round (4 rounds in the paper); a
 *             successful evolution replaces its parent in the pool, a failed one leaves the parent
 *   eliminate no change from the parent; the rewrite copies the evolving prompt's words ("given
 *             prompt", "#Rewritten Prompt#"...); the answer is a refusal ("sorry" in under 80
 *             words); the answer is only punctuation and stop words
 *
 * On top of those, the rewrite must be 4 to 150 words (Self-Instruct's length rule) and not a
 * ROUGE-L > 0.7 near duplicate of an earlier evolved instruction. (Parents are left out of that
 * comparison: a rewrite adds 10 to 20 words to its parent, so it overlaps it by design.)
 *
 * @example
 *   const run = evolInstruct({ model, tokenizer, template, seedTasks, n: 20, operations: ['constraints', 'breadth'] });
 *   for await (const c of run) console.log(c.operation, c.kept ? 'kept' : `${c.verdict}: ${c.reason}`, c.instruction);
 */
import type { Example, Message } from '../data/dataset.js';
import { nearDedup, type DatasetFilter, type FilterDecision } from '../data/filters.js';
import { Rng, mixSeed } from '../utils/random.js';
import { promptText, type GrowPrompt, type GrowSampling } from './generator.js';
import { answerLength, copiedPrompt, instructionLength, noChange, refusal, tooShort } from './rules.js';
import {
  checkCount, commonSetup, growRun, judge, judgedRow, settle, verdictOf,
  type GrowCandidate, type GrowOptionsBase, type GrowRun,
} from './candidates.js';

export const EVOL_OPERATIONS = ['constraints', 'deepen', 'concretize', 'reasoning', 'breadth'] as const;
export type EvolOperation = (typeof EVOL_OPERATIONS)[number];

/** The in-depth methods, in the paper's words. */
const DEPTH_METHODS: Record<Exclude<EvolOperation, 'breadth'>, string> = {
  constraints: 'Please add one more constraints/requirements into #The Given Prompt#',
  deepen: 'If #The Given Prompt# contains inquiries about certain issues, the depth and breadth of the inquiry can be increased.',
  concretize: 'Please replace general concepts with more specific concepts.',
  reasoning: 'If #The Given Prompt# can be solved with just a few simple thinking processes, you can rewrite it to explicitly request multiple-step reasoning.',
};

/** The paper's evolving prompt for `op` applied to `instruction`. */
export function evolPrompt(op: EvolOperation, instruction: string): string {
  if (op === 'breadth') {
    return [
      'I want you act as a Prompt Creator.',
      'Your goal is to draw inspiration from the #Given Prompt# to create a brand new prompt.',
      'This new prompt should belong to the same domain as the #Given Prompt# but be even more rare.',
      'The LENGTH and complexity of the #Created Prompt# should be similar to that of the #Given Prompt#.',
      'The #Created Prompt# must be reasonable and must be understood and responded by humans.',
      "'#Given Prompt#', '#Created Prompt#', 'given prompt' and 'created prompt' are not allowed to appear in #Created Prompt#",
      '#Given Prompt#:',
      instruction,
      '#Created Prompt#:',
      '',
    ].join('\n');
  }
  return [
    'I want you act as a Prompt Rewriter.',
    'Your objective is to rewrite a given prompt into a more complex version to make those famous AI systems (e.g., ChatGPT and GPT4) a bit harder to handle.',
    'But the rewritten prompt must be reasonable and must be understood and responded by humans.',
    'Your rewriting cannot omit the non-text parts such as the table and code in #The Given Prompt#:. Also, please do not omit the input in #The Given Prompt#.',
    'You SHOULD complicate the given prompt using the following method:',
    DEPTH_METHODS[op],
    'You should try your best not to make the #Rewritten Prompt# become verbose, #Rewritten Prompt# can only add 10 to 20 words into #The Given Prompt#.',
    "'#The Given Prompt#', '#Rewritten Prompt#', 'given prompt' and 'rewritten prompt' are not allowed to appear in #Rewritten Prompt#",
    '#The Given Prompt#:',
    instruction,
    '#Rewritten Prompt#:',
    '',
  ].join('\n');
}

/**
 * The evolved instruction in a model's output: a repeated "#Rewritten Prompt#:" label is removed,
 * and text after a following "#...#" header is not part of it. Empty: malformed.
 */
export function parseEvolOutput(text: string): { instruction: string } | { malformed: string } {
  let s = text.replace(/^\s*#*\s*(the\s+)?(rewritten|created)\s+prompt\s*#*\s*:?/i, '');
  const header = s.search(/\n\s*#[^#\n]+#/);
  if (header >= 0) s = s.slice(0, header);
  s = s.trim();
  return s ? { instruction: s } : { malformed: `no rewritten instruction in the output: ${JSON.stringify(text.slice(0, 80))}` };
}

export interface EvolInstructOptions extends GrowOptionsBase {
  /** Operations drawn from (uniformly). Default all five. */
  operations?: readonly EvolOperation[];
  /** Rounds of evolution over the pool. Default 4 (the paper's). */
  rounds?: number;
  /** Settings of the rewrite generation. Default temperature 1, top-p 0.95, 128 new tokens. */
  evolSampling?: Partial<Omit<GrowSampling, 'seed'>>;
}

export const EVOL_INSTRUCT_SAMPLING: Omit<GrowSampling, 'seed'> = { temperature: 1, topP: 0.95, maxNewTokens: 128 };

export function evolInstruct(opts: EvolInstructOptions): GrowRun {
  const who = 'evolInstruct';
  const { generator, format, answerSampling: ansSampling, rougeThreshold, seed, modelName, stats } = commonSetup(opts, who);
  const operations = opts.operations ?? EVOL_OPERATIONS;
  if (operations.length === 0) throw new Error(`${who}: operations is empty (choose from ${EVOL_OPERATIONS.join(', ')})`);
  for (const op of operations) if (!EVOL_OPERATIONS.includes(op)) throw new Error(`${who}: unknown operation '${op}' (choose from ${EVOL_OPERATIONS.join(', ')})`);
  const rounds = opts.rounds ?? 4;
  checkCount(rounds, 'rounds', who);
  const evolSampling = { ...EVOL_INSTRUCT_SAMPLING, ...opts.evolSampling };

  const parentText = new Map<string, string>();   // candidate id -> its parent's instruction
  const parentOf = (ex: Example) => parentText.get(String(ex.meta.id));
  const instructionFilters: DatasetFilter[] = [noChange(parentOf), copiedPrompt(), instructionLength(), nearDedup({ threshold: rougeThreshold })];
  const answerFilters: DatasetFilter[] = [refusal(), tooShort(), answerLength({ maxWords: opts.maxAnswerWords }), ...(opts.filters ?? [])];

  async function* body(): AsyncGenerator<GrowCandidate> {
    const pool = opts.seedTasks.map((t) => ({ id: t.id, instruction: t.instruction }));
    let next = 0;
    for (let round = 1; round <= rounds; round++) {
      for (let i = 0; i < pool.length; i++) {
        if (stats.kept >= opts.n || opts.signal?.aborted) return;
        const parent = pool[i];
        const call = next++;
        const id = `evol-instruct-${String(call).padStart(4, '0')}`;
        const op = new Rng(mixSeed(seed, call)).pick(operations);
        const text = evolPrompt(op, parent.instruction);
        const prompt: GrowPrompt = format === 'chat' ? { format, messages: [{ role: 'user', content: text }] } : { format, text };
        const sampling: GrowSampling = { ...evolSampling, seed: mixSeed(seed, call, 1) };
        const out = await generator(prompt, sampling);
        stats.prompts++;
        const base = { id, method: 'evol-instruct' as const, raw: out.text, parents: [parent.id], prompt: promptText(prompt), operation: op, round };
        const parsed = parseEvolOutput(out.text);
        if ('malformed' in parsed) {
          const decisions: FilterDecision[] = [{ filter: 'parse', passed: false, reason: parsed.malformed }];
          yield settle(stats, { ...base, instruction: '', kept: false, verdict: 'parse', reason: parsed.malformed, decisions });
          continue;
        }
        const instruction = parsed.instruction;
        parentText.set(id, parent.instruction);
        const decisions: FilterDecision[] = [{ filter: 'parse', passed: true }];
        if (!judge(judgedRow(id, instruction), instructionFilters, decisions)) {
          yield settle(stats, { ...base, instruction, decisions, ...verdictOf(decisions) });
          continue;
        }
        const aPrompt: GrowPrompt = format === 'chat' ? { format, messages: [{ role: 'user', content: instruction }] } : { format, text: `${instruction}\n` };
        const aSampling: GrowSampling = { ...ansSampling, seed: mixSeed(seed, call, 2) };
        const answer = (await generator(aPrompt, aSampling)).text.trim();
        stats.answers++;
        const kept = judge(judgedRow(id, instruction, answer), answerFilters, decisions);
        const messages: Message[] = [{ role: 'user', content: instruction }, { role: 'assistant', content: answer }];
        const row = {
          messages, source: 'evol-instruct' as const, id, parents: [parent.id], model: modelName, generation_prompt: base.prompt, prompt_format: format,
          sampling: { instruction: sampling, answer: aSampling }, filters: decisions, operation: op, round,
        };
        if (kept) pool[i] = { id, instruction };   // the next round evolves the evolved instruction
        yield settle(stats, { ...base, instruction, answer, decisions, ...verdictOf(decisions), row });
      }
    }
  }
  return growRun(stats, body);
}
