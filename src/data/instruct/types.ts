/**
 * Row and family types of the bundled instruction set. Rows are TRL "messages" rows with
 * provenance fields beside them; a dataset reader keeps the extra fields as metadata.
 */

/** One chat turn (the same shape as the dataset layer's Message). */
export interface InstructMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** An assistant's tool calls (the tool_use family). */
  tool_calls?: Array<{ type: 'function'; function: { name: string; arguments: Record<string, unknown> } }>;
  /** A tool message: the tool's name. */
  name?: string;
}

/**
 * What a row's final assistant answer must satisfy, read by src/eval's scorers.
 * - exact: the output, trimmed, equals `expected` (case-sensitive).
 * - normalized: equal after lower-casing and dropping punctuation and extra whitespace;
 *   `expected` may list several acceptable answers.
 * - json_fields: the output is one JSON object whose keys are exactly those of `expected`,
 *   each value equal (numbers as numbers, strings compared exactly).
 * - refusal: `expected: true` = the output refuses (phrase list in src/eval/scorers.ts);
 *   `expected: false` = it must not refuse.
 * - capitals: the output has letters and no lower-case letter; with `expected`, it must also
 *   equal `expected` after normalisation.
 * - number: the last number in the output equals `expected`.
 * - tool_call: the output calls a tool (`<tool_call>{"name", "arguments"}</tool_call>`, or such a
 *   JSON object alone) with exactly `expected.name` and `expected.arguments`.
 */
export type EvalSpec =
  | { kind: 'exact'; expected: string }
  | { kind: 'normalized'; expected: string | string[] }
  | { kind: 'json_fields'; expected: Record<string, string | number | boolean | null> }
  | { kind: 'refusal'; expected: boolean }
  | { kind: 'capitals'; expected?: string }
  | { kind: 'number'; expected: number }
  | { kind: 'tool_call'; expected: { name: string; arguments: Record<string, unknown> } };

export type EvalKind = EvalSpec['kind'];

export type Split = 'train' | 'valid' | 'test';

/** One row as written to train.jsonl / valid.jsonl / test.jsonl. */
export interface InstructRow {
  messages: InstructMessage[];
  /** Tool schemas the conversation may call (the tool_use family). */
  tools?: readonly object[];
  /** 'generator' (procedural) or 'human' (hand-written, src/data/instruct/human.ts). */
  source: 'generator' | 'human';
  family: FamilyName;
  /** `<family>/<template id>`; hand-written rows use `<family>/human`. */
  template: string;
  /** Seed the row was drawn from (regenerate with generateRow); null for hand-written rows. */
  seed: number | null;
  split: Split;
  /** Stable id within the set, e.g. `train-00042`. */
  id: string;
  /** Test rows only: 'seen' = a training phrasing on fresh inputs, 'unseen' = a held-out phrasing, 'human' = hand-written. */
  phrasing?: 'seen' | 'unseen' | 'human';
  /** Validation and test rows: how to score the final assistant turn. */
  eval?: EvalSpec;
}

export const FAMILY_NAMES = [
  'arithmetic', 'string', 'sorting', 'sentiment', 'extraction', 'qa', 'system', 'multiturn', 'refusal',
] as const;
/** The mixture's families, and tool_use, whose rows have files of their own (tools-*.jsonl). */
export type FamilyName = (typeof FAMILY_NAMES)[number] | 'tool_use';

/** What a family's template turns an input into: the conversation and how to score its last answer. */
export interface BuiltExample {
  messages: InstructMessage[];
  tools?: readonly object[];
  eval: EvalSpec;
}

/**
 * A task family: paraphrased instruction templates over procedurally drawn inputs.
 * `key(input)` names the input (e.g. `add:12:5`); the key decides which split an input may
 * appear in, so validation and test inputs never occur in training.
 */
export interface Family<I = unknown> {
  name: FamilyName;
  description: string;
  /** Template ids in a fixed order; `heldOut` ones appear only in the test split. */
  templates: readonly string[];
  heldOut: readonly string[];
  /** Default share of generated rows (all families sum to 1). */
  weight: number;
  draw(rng: import('../../utils/random.js').Rng): I;
  key(input: I): string;
  build(input: I, template: string, rng: import('../../utils/random.js').Rng): BuiltExample;
  /**
   * One plain-prose sentence for the pretraining corpus (no chat format). `draw` gives an input
   * of the training split: prose about computed answers (sums, reversals, sorted lists) never
   * states a validation or test input, so the test measures the skill, not recall. Facts are
   * the exception: the base model has to know them all (qa asks held-out facts).
   */
  prose(rng: import('../../utils/random.js').Rng, draw: () => I): string;
}
