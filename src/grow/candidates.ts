/**
 * What both pipelines stream: candidates, each with its verdict, the reasons, and (once it has
 * an answer) the JSONL row it becomes, carrying its provenance. Running statistics (acceptance
 * rate, malformed outputs, drops per filter) are kept beside the stream.
 *
 * A row:
 *   {"messages": [{"role": "user", ...}, {"role": "assistant", ...}],
 *    "source": "self-instruct", "id": "self-instruct-0003", "parents": ["seed-1", ...], "model": "models/base",
 *    "generation_prompt": "Come up with a series of tasks:\n1. ...", "prompt_format": "completion",
 *    "sampling": {"instruction": {...}, "answer": {...}}, "filters": [{"filter": "instruction_length", "passed": true}, ...]}
 * (Evol-Instruct rows add "operation" and "round".) Every field but "messages" is metadata to
 * the dataset reader, so the file trains as it is.
 */
import type { Example, Message } from '../data/dataset.js';
import { runFilters, type DatasetFilter, type FilterDecision } from '../data/filters.js';
import type { GrowPrompt, GrowSampling, TextGenerator } from './generator.js';
import { modelTextGenerator } from './generator.js';
import type { SeedTask } from './seeds.js';
import type { GenerativeModel } from '../train/generate.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { ChatTemplate } from '../data/template.js';

export type GrowMethod = 'self-instruct' | 'evol-instruct';

export interface GrownRow {
  messages: Message[];
  source: GrowMethod;
  id: string;
  parents: string[];
  model: string;
  generation_prompt: string;
  prompt_format: GrowPrompt['format'];
  sampling: { instruction: Omit<GrowSampling, 'seed'> & { seed: number }; answer: Omit<GrowSampling, 'seed'> & { seed: number } };
  filters: FilterDecision[];
  operation?: string;
  round?: number;
}

export interface GrowCandidate {
  id: string;
  method: GrowMethod;
  /** The new instruction ('' when the model's output could not be parsed into one). */
  instruction: string;
  /** Its answer, when it got that far. */
  answer?: string;
  /** The model's text this candidate was parsed from. */
  raw: string;
  kept: boolean;
  /** 'kept', or the filter that dropped it ('parse' for malformed output). */
  verdict: string;
  /** Why it was dropped ('' when kept). */
  reason: string;
  /** Every filter verdict, in order. */
  decisions: FilterDecision[];
  parents: string[];
  /** The prompt the instruction came from (plain text, or the user message of a chat prompt). */
  prompt: string;
  operation?: string;
  round?: number;
  /** The row it is (or would be, had it been kept: the user may still keep it), once it has an answer. */
  row?: GrownRow;
}

export interface GrowStats {
  /** Generation calls that asked for new instructions (Self-Instruct) or rewrites (Evol-Instruct). */
  prompts: number;
  /** Generation calls that answered an instruction. */
  answers: number;
  candidates: number;
  kept: number;
  /** Outputs that could not be parsed (no task, empty, cut off), counted among the drops as 'parse'. */
  malformed: number;
  /** Dropped candidates per filter. */
  dropped: Record<string, number>;
  /** kept / candidates (0 before any candidate). */
  acceptanceRate: number;
}

/** A stream of candidates; `stats` is updated as it is read. */
export interface GrowRun extends AsyncIterable<GrowCandidate> {
  readonly stats: GrowStats;
}

/** Options both pipelines take. */
export interface GrowOptionsBase {
  /** The model's generation; or give model + tokenizer + template. */
  generator?: TextGenerator;
  model?: GenerativeModel;
  tokenizer?: Tokenizer;
  template?: ChatTemplate;
  /** The generating model's name, recorded in every row. Default 'model'. */
  modelName?: string;
  seedTasks: readonly SeedTask[];
  /** Rows to keep. */
  n: number;
  /**
   * 'chat' puts each prompt in a user turn of the model's chat template (instruct models);
   * 'completion' lets the model continue the prompt as plain text (base models, as the papers'
   * GPT-3 did). Default 'chat'.
   */
  promptFormat?: GrowPrompt['format'];
  /** Settings of the answer generation. Default greedy (temperature 0), 128 new tokens. */
  answerSampling?: Partial<Omit<GrowSampling, 'seed'>>;
  /** Limit on answer length in words. Default 400. */
  maxAnswerWords?: number;
  /** ROUGE-L F1 above which a new instruction is a near duplicate. Default 0.7 (Self-Instruct). */
  rougeThreshold?: number;
  /** Extra filters on the finished row (instruction + answer), after the built-in ones. */
  filters?: DatasetFilter[];
  /** Seed of every draw (few-shot choice, operations, sampling). Default 0. */
  seed?: number;
  signal?: AbortSignal;
}

export const DEFAULT_ANSWER_SAMPLING: Omit<GrowSampling, 'seed'> = { temperature: 0, topP: 1, maxNewTokens: 128 };

/** The settings both pipelines resolve the same way, after checking n and the seed tasks. */
export function commonSetup(o: GrowOptionsBase, who: string) {
  checkCount(o.n, 'n', who);
  if (o.seedTasks.length === 0) throw new Error(`${who}: seedTasks is empty (give at least one seed task)`);
  let generator = o.generator;
  if (!generator) {
    if (!o.model || !o.tokenizer || !o.template) throw new Error(`${who}: give either generator, or model + tokenizer + template`);
    generator = modelTextGenerator(o.model, o.tokenizer, o.template);
  }
  return {
    generator,
    format: o.promptFormat ?? 'chat',
    answerSampling: { ...DEFAULT_ANSWER_SAMPLING, ...o.answerSampling },
    rougeThreshold: o.rougeThreshold ?? 0.7,
    seed: o.seed ?? 0,
    modelName: o.modelName ?? 'model',
    stats: newStats(),
  };
}

export function checkCount(n: number, field: string, who: string, min = 1): void {
  if (!Number.isInteger(n) || n < min) throw new Error(`${who}: ${field} must be an integer >= ${min}, got ${n}`);
}

export function newStats(): GrowStats {
  return { prompts: 0, answers: 0, candidates: 0, kept: 0, malformed: 0, dropped: {}, acceptanceRate: 0 };
}

/** A chat row [user: instruction (+ assistant: answer)] for the filters to judge. */
export function judgedRow(id: string, instruction: string, answer?: string): Example {
  const messages: Message[] = [{ role: 'user', content: instruction }];
  if (answer !== undefined) messages.push({ role: 'assistant', content: answer });
  return { format: 'messages', messages, meta: { id } };
}

/** Runs `filters` on the row; whether it passed, with the decisions appended to `into`. */
export function judge(row: Example, filters: readonly DatasetFilter[], into: FilterDecision[]): boolean {
  const d = runFilters(row, filters);
  into.push(...d);
  return d.every((x) => x.passed);
}

/** Counts a finished candidate into the stats and returns it. */
export function settle(stats: GrowStats, c: GrowCandidate): GrowCandidate {
  stats.candidates++;
  if (c.kept) stats.kept++;
  else {
    stats.dropped[c.verdict] = (stats.dropped[c.verdict] ?? 0) + 1;
    if (c.verdict === 'parse') stats.malformed++;
  }
  stats.acceptanceRate = stats.kept / stats.candidates;
  return c;
}

/** Verdict and reason from the decisions (the last failed one, if any). */
export function verdictOf(decisions: readonly FilterDecision[]): { kept: boolean; verdict: string; reason: string } {
  const failed = decisions.find((d) => !d.passed);
  return failed ? { kept: false, verdict: failed.filter, reason: failed.reason ?? '' } : { kept: true, verdict: 'kept', reason: '' };
}

/** Rows a training mixture reads: the kept candidates' rows as dataset Examples. */
export function grownExamples(rows: readonly GrownRow[]): Example[] {
  return rows.map((r) => {
    const { messages, ...meta } = r;
    return { format: 'messages' as const, messages: messages.map((m) => ({ ...m })), meta: { ...meta } };
  });
}

/** Wraps an async generator function so its stats are readable while it runs. */
export function growRun(stats: GrowStats, body: () => AsyncGenerator<GrowCandidate>): GrowRun {
  return { stats, [Symbol.asyncIterator]: body };
}
