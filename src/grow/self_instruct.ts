/**
 * Self-Instruct (Wang et al. 2022): a model writes new instructions from a few-shot list of
 * existing ones, near-duplicates are filtered out with ROUGE-L, and the model answers the
 * survivors. As the paper's code does it:
 *
 *   prompt   "Come up with a series of tasks:\n1. {task}\n...\n8. {task}\n9." with 8 tasks: 2
 *            sampled from the instructions generated so far (when there are any) and the rest
 *            from the seed pool, shuffled
 *   sampling temperature 0.7, top-p 0.5, a plain continuation stops at a blank line
 *   parse    the continuation split at "\n<number>. "; a task cut off by the token limit is dropped
 *   filters  3 words or fewer, or over 150; keywords a text model cannot do (image, file, plot...);
 *            starting with "Write a program", punctuation or a non-ASCII character; ROUGE-L F1
 *            > 0.7 with any seed or earlier generated instruction
 *   answer   the instruction asked of the model, greedy (the paper generates instances at
 *            temperature 0)
 *
 * @example
 *   const run = selfInstruct({ model, tokenizer, template, seedTasks, n: 20, modelName: 'SmolLM2-135M-Instruct' });
 *   for await (const c of run) console.log(c.kept ? 'kept' : `dropped by ${c.verdict}: ${c.reason}`, c.instruction);
 *   run.stats;   // { prompts, answers, candidates, kept, malformed, dropped: {near_dedup: 3, ...}, acceptanceRate }
 */
import type { Message } from '../data/dataset.js';
import { nearDedup, type DatasetFilter, type FilterDecision } from '../data/filters.js';
import { Rng, mixSeed } from '../utils/random.js';
import { promptText, type GrowPrompt, type GrowSampling } from './generator.js';
import { instructionLength, keywordFilter, instructionFormat, answerLength } from './rules.js';
import {
  checkCount, commonSetup, growRun, judge, judgedRow, settle, verdictOf,
  type GrowCandidate, type GrowOptionsBase, type GrowRun,
} from './candidates.js';

export interface SelfInstructOptions extends GrowOptionsBase {
  /** Tasks in each prompt. Default 8. */
  fewShot?: number;
  /** Of those, how many come from the generated pool (once it has any). Default 2. */
  fewShotGenerated?: number;
  /** Settings of the instruction generation. Default temperature 0.7, top-p 0.5, 256 new tokens. */
  instructionSampling?: Partial<Omit<GrowSampling, 'seed'>>;
  /** Stop after this many instruction prompts even if fewer than n rows were kept. Default 4n + 10. */
  maxPrompts?: number;
  /** Self-Instruct's keyword list; default SELF_INSTRUCT_BLOCKLIST. */
  blocklist?: readonly string[];
}

export const SELF_INSTRUCT_SAMPLING: Omit<GrowSampling, 'seed'> = { temperature: 0.7, topP: 0.5, maxNewTokens: 256 };

/** The paper's prompt: a numbered list of tasks, ending with the next number for the model to continue. */
export function selfInstructPrompt(instructions: readonly string[]): string {
  let prompt = 'Come up with a series of tasks:\n';
  instructions.forEach((inst, i) => { prompt += `${i + 1}. ${inst.replace(/\s+/g, ' ').trim().replace(/:+$/, '')}\n`; });
  return prompt + `${instructions.length + 1}.`;
}

/** The chat form of the prompt: the same list in a user turn, asking for the continuation. */
export function selfInstructChatPrompt(instructions: readonly string[]): string {
  const list = selfInstructPrompt(instructions);
  return `${list.slice(0, list.lastIndexOf('\n'))}\n\nContinue the list with new, different tasks, one per line, numbered from ${instructions.length + 1}.`;
}

export interface ParsedTasks {
  tasks: string[];
  /** Why parts of the output were not tasks (no numbered task, an empty one, one cut off). */
  malformed: string[];
}

/**
 * Splits a model's continuation into tasks. `first` is the number the prompt ended with (the
 * plain continuation starts inside that task); chat replies number their own tasks, and text
 * before the first number is the reply's preamble. With `finish` 'length' the last task may be
 * cut off and is dropped.
 */
export function parseSelfInstructOutput(text: string, opts: { format: GrowPrompt['format']; first: number; finish: 'stop' | 'length' }): ParsedTasks {
  const full = opts.format === 'completion' ? `${opts.first}.${text}` : text;
  const parts = ('\n' + full).split(/\n[ \t]*\d+[ \t]?[.)][ \t]*/);
  const malformed: string[] = [];
  const tasks = parts.slice(1).map((p) => p.replace(/\s+/g, ' ').trim());
  if (tasks.length === 0) return { tasks: [], malformed: [`no numbered task in the output: ${JSON.stringify(text.slice(0, 80))}`] };
  if (opts.finish === 'length') {
    tasks.pop();
    malformed.push('the last task was cut off at the token limit');
  }
  const kept = tasks.filter((t) => t !== '');
  for (let i = kept.length; i < tasks.length; i++) malformed.push('an empty task');
  return { tasks: kept, malformed };
}

export function selfInstruct(opts: SelfInstructOptions): GrowRun {
  const who = 'selfInstruct';
  const { generator, format, answerSampling: ansSampling, rougeThreshold, seed, modelName, stats } = commonSetup(opts, who);
  const fewShot = opts.fewShot ?? 8;
  const fewShotGenerated = opts.fewShotGenerated ?? 2;
  checkCount(fewShot, 'fewShot', who);
  checkCount(fewShotGenerated, 'fewShotGenerated', who, 0);
  const maxPrompts = opts.maxPrompts ?? 4 * opts.n + 10;
  checkCount(maxPrompts, 'maxPrompts', who);
  const instSampling = { ...SELF_INSTRUCT_SAMPLING, ...opts.instructionSampling };

  // The instruction pool: seeds first, then every generated instruction that passes (as in the paper).
  const dedup = nearDedup({ threshold: rougeThreshold });
  for (const t of opts.seedTasks) dedup.check(judgedRow(t.id, t.instruction));
  const instructionFilters: DatasetFilter[] = [instructionLength(), keywordFilter(opts.blocklist), instructionFormat(), dedup];
  const answerFilters: DatasetFilter[] = [answerLength({ maxWords: opts.maxAnswerWords }), ...(opts.filters ?? [])];
  const generated: Array<{ id: string; instruction: string }> = [];
  const withOutputs = opts.seedTasks.filter((t) => t.output !== undefined);

  /** The answer prompt: the instruction in a user turn, or (plain text) a few seed tasks with answers first. */
  const answerPrompt = (instruction: string, rng: Rng): GrowPrompt => {
    if (format === 'chat') return { format, messages: [{ role: 'user', content: instruction }] };
    const shots = rng.sample(withOutputs, Math.min(3, withOutputs.length));
    const block = (t: { instruction: string; input?: string; output?: string }) =>
      `Task: ${t.instruction}${t.input ? `\nInput: ${t.input}` : ''}\nOutput:${t.output !== undefined ? ` ${t.output}` : ''}`;
    return { format, text: [...shots.map(block), block({ instruction })].join('\n\n') };
  };

  async function* body(): AsyncGenerator<GrowCandidate> {
    let next = 0;
    for (let p = 0; p < maxPrompts && stats.kept < opts.n; p++) {
      if (opts.signal?.aborted) return;
      const rng = new Rng(mixSeed(seed, p));
      const fromGenerated = rng.sample(generated, Math.min(fewShotGenerated, generated.length, fewShot));
      const fromSeeds = rng.sample(opts.seedTasks, Math.min(fewShot - fromGenerated.length, opts.seedTasks.length));
      const shots = rng.sample([...fromGenerated, ...fromSeeds], fromGenerated.length + fromSeeds.length);
      const list = shots.map((s) => s.instruction);
      const prompt: GrowPrompt = format === 'chat'
        ? { format, messages: [{ role: 'user', content: selfInstructChatPrompt(list) }] }
        : { format, text: selfInstructPrompt(list) };
      // A plain continuation ends at a blank line (the paper's stop); a chat reply at its end-of-turn token.
      const sampling: GrowSampling = { ...instSampling, seed: mixSeed(seed, p, 1), stop: format === 'completion' ? ['\n\n'] : undefined };
      const out = await generator(prompt, sampling);
      stats.prompts++;
      const parents = shots.map((s) => s.id);
      const base = { method: 'self-instruct' as const, raw: out.text, parents, prompt: promptText(prompt) };
      const parsed = parseSelfInstructOutput(out.text, { format, first: list.length + 1, finish: out.finish });
      for (const why of parsed.malformed) {
        const decisions: FilterDecision[] = [{ filter: 'parse', passed: false, reason: why }];
        yield settle(stats, { ...base, id: `self-instruct-${String(next++).padStart(4, '0')}`, instruction: '', kept: false, verdict: 'parse', reason: why, decisions });
      }
      for (const instruction of parsed.tasks) {
        if (stats.kept >= opts.n || opts.signal?.aborted) return;
        const id = `self-instruct-${String(next++).padStart(4, '0')}`;
        const decisions: FilterDecision[] = [{ filter: 'parse', passed: true }];
        if (!judge(judgedRow(id, instruction), instructionFilters, decisions)) {
          yield settle(stats, { ...base, id, instruction, decisions, ...verdictOf(decisions) });
          continue;
        }
        generated.push({ id, instruction });
        const aSampling: GrowSampling = { ...ansSampling, seed: mixSeed(seed, p, 2, next), stop: format === 'completion' ? ['\n\nTask:', '\nTask:'] : undefined };
        const answer = (await generator(answerPrompt(instruction, rng), aSampling)).text.trim();
        stats.answers++;
        judge(judgedRow(id, instruction, answer), answerFilters, decisions);
        const messages: Message[] = [{ role: 'user', content: instruction }, { role: 'assistant', content: answer }];
        const row = {
          messages, source: 'self-instruct' as const, id, parents, model: modelName, generation_prompt: base.prompt, prompt_format: format,
          sampling: { instruction: sampling, answer: aSampling }, filters: decisions,
        };
        yield settle(stats, { ...base, id, instruction, answer, decisions, ...verdictOf(decisions), row });
      }
    }
  }
  return growRun(stats, body);
}
