/**
 * Task accuracy of a model on an instruction set. The caller passes `generate`, which turns
 * a conversation prompt into the model's answer (greedy decoding in the trainer); evaluate()
 * feeds it each row's conversation without the final assistant turn and scores the answer
 * with the row's eval spec. Or the caller passes `{ batch }`, which answers every prompt in one
 * call (batched decoding, src/train/generate.ts generateChatBatch): the same scoring.
 *
 * @example
 * const rows = parseJsonl(testJsonlText, 'demo/data/test.jsonl');
 * const result = await evaluate(rows, async (messages) => myModelAnswer(messages));
 * console.log(formatEvalTable(result));
 * result.byFamily.arithmetic; // e.g. 0.42
 */
import type { EvalSpec, InstructMessage } from '../data/instruct/types.js';
import { parseEvalSpec, score } from './scorers.js';

/**
 * A row to evaluate: a bundled-set row (`eval`, `family`, ... at the top level) or a dataset
 * reader's example (the same fields under `meta`).
 */
export interface EvalRowInput {
  messages?: InstructMessage[];
  /** Tool schemas the prompt is rendered with (rows of the tool_use family). */
  tools?: readonly object[];
  family?: string;
  template?: string;
  id?: string;
  phrasing?: string;
  eval?: unknown;
  meta?: Record<string, unknown>;
}

/** Turns a prompt (and the row's tool schemas, to render with it) into the model's answer. */
export type GenerateFn = (messages: InstructMessage[], tools?: readonly object[]) => Promise<string>;

/** A row's prompt as a batch answerer receives it. */
export interface EvalPrompt {
  messages: InstructMessage[];
  tools?: readonly object[];
}

/**
 * Answers many prompts in one call: resolves to one answer per prompt, in order, and may call
 * `onAnswer` as each answer is known (in any order) so progress shows while it runs.
 */
export type GenerateBatchFn = (prompts: EvalPrompt[], onAnswer: (index: number, answer: string) => void) => Promise<string[]>;

/** How evaluate() gets answers: one prompt at a time, or all of them at once. */
export type Answerer = GenerateFn | { batch: GenerateBatchFn };

export interface RowResult {
  index: number;
  id?: string;
  family: string;
  template?: string;
  phrasing?: string;
  kind: EvalSpec['kind'];
  expected: unknown;
  output: string;
  correct: boolean;
  reason?: string;
}

export interface EvalResult {
  /** Fraction of rows answered correctly. */
  overall: number;
  correct: number;
  n: number;
  /** Accuracy per family. */
  byFamily: Record<string, number>;
  familyCounts: Record<string, { n: number; correct: number }>;
  /** Accuracy per phrasing group of the test split ('seen', 'unseen', 'human'), where rows say. */
  byPhrasing: Record<string, number>;
  phrasingCounts: Record<string, { n: number; correct: number }>;
  perRow: RowResult[];
}

export interface EvaluateOptions {
  /** Evaluate only the first `limit` rows. */
  limit?: number;
  /** Called after each row is scored, e.g. to show progress (with a batch answerer, in the order answers arrive). */
  onRow?: (result: RowResult, done: number, total: number) => void;
  /** Stops between rows when aborted (the rows done so far are lost: the promise rejects). */
  signal?: AbortSignal;
}

function field<T>(row: EvalRowInput, name: 'family' | 'template' | 'id' | 'phrasing' | 'eval'): T | undefined {
  return (row[name] ?? row.meta?.[name]) as T | undefined;
}

/** The prompt of a row: its messages without the final assistant turn (the reference answer). */
export function promptOf(messages: InstructMessage[]): InstructMessage[] {
  return messages.length && messages[messages.length - 1].role === 'assistant' ? messages.slice(0, -1) : messages.slice();
}

function where(row: EvalRowInput, index: number): string {
  const id = field<string>(row, 'id');
  const file = row.meta?.file;
  const line = row.meta?.line;
  return file !== undefined ? `${file}:${line ?? '?'}` : `row ${index}${id ? ` (${id})` : ''}`;
}

export async function evaluate(rows: readonly EvalRowInput[], generate: Answerer, opts: EvaluateOptions = {}): Promise<EvalResult> {
  const todo = opts.limit !== undefined ? rows.slice(0, opts.limit) : rows;
  if (todo.length === 0) throw new Error('evaluate: no rows to evaluate');
  // Validate every row before generating anything: a bad row late in the file should not waste a run.
  const prepared = todo.map((row, index) => {
    const at = where(row, index);
    if (!Array.isArray(row.messages) || row.messages.length === 0) throw new Error(`${at}: field messages must be a non-empty list`);
    const spec = parseEvalSpec(field(row, 'eval'), at);
    const prompt = promptOf(row.messages);
    if (!prompt.some((m) => m.role === 'user')) throw new Error(`${at}: field messages has no user turn to answer`);
    return { row, index, spec, prompt };
  });

  type Prepared = (typeof prepared)[number];
  const perRow: RowResult[] = [];
  const record = ({ row, index, spec }: Prepared, output: string): void => {
    const { correct, reason } = score(spec, output);
    const result: RowResult = {
      index, id: field(row, 'id'), family: field<string>(row, 'family') ?? 'unknown', template: field(row, 'template'),
      phrasing: field(row, 'phrasing'), kind: spec.kind, expected: 'expected' in spec ? spec.expected : undefined,
      output, correct, ...(reason ? { reason } : {}),
    };
    perRow.push(result);
    opts.onRow?.(result, perRow.length, prepared.length);
  };
  const checkAbort = () => { if (opts.signal?.aborted) throw new Error('evaluate: aborted'); };
  const copy = (prompt: InstructMessage[]) => prompt.map((m) => ({ ...m }));

  if (typeof generate === 'function') {
    for (const p of prepared) {
      checkAbort();
      record(p, await generate(copy(p.prompt), p.row.tools));
    }
    return summarize(perRow);
  }
  checkAbort();
  const answered = new Set<number>();
  const answers = await generate.batch(prepared.map((p) => ({ messages: copy(p.prompt), tools: p.row.tools })), (i, answer) => {
    checkAbort();
    if (answered.has(i)) return;
    answered.add(i);
    record(prepared[i], answer);
  });
  if (answers.length !== prepared.length) throw new Error(`evaluate: the batch answerer returned ${answers.length} answers for ${prepared.length} prompts`);
  prepared.forEach((p, i) => { if (!answered.has(i)) record(p, answers[i]); });
  return summarize(perRow.sort((a, b) => a.index - b.index));
}

/** Aggregates per-row results into overall, per-family and per-phrasing accuracy. */
export function summarize(perRow: RowResult[]): EvalResult {
  const tally = (key: (r: RowResult) => string | undefined) => {
    const counts: Record<string, { n: number; correct: number }> = {};
    for (const r of perRow) {
      const k = key(r);
      if (k === undefined) continue;
      const c = (counts[k] ??= { n: 0, correct: 0 });
      c.n++;
      if (r.correct) c.correct++;
    }
    const acc = Object.fromEntries(Object.entries(counts).map(([k, c]) => [k, c.correct / c.n]));
    return { counts, acc };
  };
  const fam = tally((r) => r.family);
  const phr = tally((r) => r.phrasing);
  const correct = perRow.filter((r) => r.correct).length;
  return {
    overall: perRow.length ? correct / perRow.length : 0,
    correct,
    n: perRow.length,
    byFamily: fam.acc,
    familyCounts: fam.counts,
    byPhrasing: phr.acc,
    phrasingCounts: phr.counts,
    perRow,
  };
}
