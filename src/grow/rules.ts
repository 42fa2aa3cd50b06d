/**
 * The filters a grown row must pass, as DatasetFilters (src/data/filters.ts) so they compose
 * with the library's own: Self-Instruct's length, keyword and format rules on a new instruction,
 * and Evol-Instruct's elimination rules on an evolved one and its answer.
 *
 * The row they see is a chat row `[user: instruction]` while the instruction is judged, and
 * `[user: instruction, assistant: answer]` once it has an answer.
 */
import type { Example } from '../data/dataset.js';
import { instructionText, lengthFilter, regexFilter, rougeTokens, type DatasetFilter } from '../data/filters.js';

/** The row's answer: its last assistant message ('' when it has none yet). */
export function answerText(ex: Example): string {
  return ex.messages?.filter((m) => m.role === 'assistant').at(-1)?.content ?? '';
}

/** Self-Instruct drops instructions of 3 words or fewer, or over 150. */
export function instructionLength(opts: { minWords?: number; maxWords?: number } = {}): DatasetFilter {
  return lengthFilter({ name: 'instruction_length', text: instructionText, minWords: opts.minWords ?? 4, maxWords: opts.maxWords ?? 150 });
}

/** An answer must have some text and at most `maxWords` words. */
export function answerLength(opts: { minWords?: number; maxWords?: number } = {}): DatasetFilter {
  return lengthFilter({ name: 'answer_length', text: answerText, minWords: opts.minWords ?? 1, maxWords: opts.maxWords ?? 400 });
}

/**
 * Self-Instruct's keyword rule: tasks a text-only model cannot do (images, files, maps, plots...),
 * whole words, case-insensitive.
 */
export const SELF_INSTRUCT_BLOCKLIST: readonly string[] = [
  'image', 'images', 'graph', 'graphs', 'picture', 'pictures', 'file', 'files', 'map', 'maps', 'draw', 'plot', 'go to',
];

export function keywordFilter(words: readonly string[] = SELF_INSTRUCT_BLOCKLIST): DatasetFilter {
  const f = regexFilter('keywords', words);
  return { name: f.name, check: (ex) => f.check(userOnly(ex)) };
}

/**
 * Self-Instruct's format rules on an instruction: it must not start with "Write a program"
 * (a habit the model over-produces), with punctuation, or with a non-ASCII character.
 */
export function instructionFormat(): DatasetFilter {
  return {
    name: 'format',
    check(ex) {
      const s = instructionText(ex);
      if (s.startsWith('Write a program')) return 'starts with "Write a program"';
      if (/^[!-/:-@[-`{-~]/.test(s)) return `starts with punctuation '${s[0]}'`;
      if (/^[^\x00-\x7F]/.test(s)) return `starts with a non-ASCII character '${s[0]}'`;
      return null;
    },
  };
}

const normalised = (s: string) => rougeTokens(s).join(' ');

/** Evol-Instruct: an evolution that returns its parent (same words, ignoring case and punctuation) failed. */
export function noChange(parentOf: (ex: Example) => string | undefined): DatasetFilter {
  return {
    name: 'no_change',
    check(ex) {
      const parent = parentOf(ex);
      return parent !== undefined && normalised(parent) === normalised(instructionText(ex)) ? 'the rewrite is the parent instruction unchanged' : null;
    },
  };
}

/** Words of the evolving prompts themselves; an evolved instruction that repeats them copied the prompt. */
export const EVOL_PROMPT_PHRASES: readonly string[] = ['given prompt', 'rewritten prompt', 'created prompt', '#given prompt#', '#rewritten prompt#', '#created prompt#', 'prompt rewriter', 'prompt creator'];

export function copiedPrompt(phrases: readonly string[] = EVOL_PROMPT_PHRASES): DatasetFilter {
  return {
    name: 'copied_prompt',
    check(ex) {
      const s = instructionText(ex).toLowerCase();
      const hit = phrases.find((p) => s.includes(p));
      return hit ? `repeats the evolving prompt's words '${hit}'` : null;
    },
  };
}

/** Evol-Instruct: an answer that says "sorry" in under 80 words is a refusal; the evolution made the task unanswerable. */
export function refusal(opts: { maxWords?: number } = {}): DatasetFilter {
  const maxWords = opts.maxWords ?? 80;
  return {
    name: 'refusal',
    check(ex) {
      const a = answerText(ex);
      const words = a.split(/\s+/).filter(Boolean).length;
      return /\bsorry\b/i.test(a) && words < maxWords ? `the answer says "sorry" in ${words} words (< ${maxWords})` : null;
    },
  };
}

/** English stop words (NLTK's most common); an answer made only of these and punctuation says nothing. */
export const STOP_WORDS: ReadonlySet<string> = new Set((
  'i me my we our you your he him his she her it its they them their what which who whom this that these those am is are ' +
  'was were be been being have has had do does did a an the and but if or because as until while of at by for with about ' +
  'to from in out on off over under again then once here there when where why how all any both each few more most other ' +
  'some such no nor not only own same so than too very s t can will just don should now'
).split(' '));

/** Evol-Instruct: an answer with nothing but punctuation and stop words is too short. */
export function tooShort(): DatasetFilter {
  return {
    name: 'too_short',
    check(ex) {
      const content = rougeTokens(answerText(ex)).filter((w) => !STOP_WORDS.has(w));
      return content.length === 0 ? 'the answer holds only punctuation and stop words' : null;
    },
  };
}

function userOnly(ex: Example): Example {
  return { ...ex, messages: ex.messages?.filter((m) => m.role === 'user') };
}
