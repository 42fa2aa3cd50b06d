/**
 * The task families of the bundled instruction set. Each family has 8 paraphrased
 * instruction templates (2 held out for the test split), draws its inputs from a seeded
 * PRNG, builds a conversation with a short answer, and says how to score that answer.
 * Each family also writes plain prose about its inputs for the pretraining corpus.
 */
import {
  CITIES, FACTS, HARMFUL_ASKS, NAMES, NEGATIVE_WORDS, NEUTRAL_SYSTEM_PROMPTS, POSITIVE_WORDS, REFUSAL,
  REVIEW_SUBJECTS, SORT_WORDS, WORDS, type Fact,
} from './facts.js';
import type { Rng } from '../../utils/random.js';
import type { BuiltExample, EvalSpec, Family, FamilyName, InstructMessage } from './types.js';
import { toolUseFamily } from './tools.js';

const user = (content: string): InstructMessage => ({ role: 'user', content });
const assistant = (content: string): InstructMessage => ({ role: 'assistant', content });
const system = (content: string): InstructMessage => ({ role: 'system', content });

/** Share of rows (outside the system family) that start with a neutral system prompt. */
const NEUTRAL_SYSTEM_RATE = 0.1;

/** A single user question and its answer, optionally behind a neutral system prompt. */
function qa(rng: Rng, question: string, answer: string, spec: EvalSpec): BuiltExample {
  const messages = rng.chance(NEUTRAL_SYSTEM_RATE) ? [system(rng.pick(NEUTRAL_SYSTEM_PROMPTS))] : [];
  messages.push(user(question), assistant(answer));
  return { messages, eval: spec };
}

/** Looks a template up by id, failing loudly on a typo (ids are part of the data's provenance). */
function lookup<T>(family: string, table: Record<string, T>, id: string): T {
  const t = table[id];
  if (t === undefined) throw new Error(`instruct: family '${family}' has no template '${id}' (known: ${Object.keys(table).join(', ')})`);
  return t;
}

function defineFamily<I, T>(def: Omit<Family<I>, 'templates' | 'build'> & {
  table: Record<string, T>;
  build(input: I, template: T, rng: Rng): BuiltExample;
}): Family<I> {
  const { table, build, ...rest } = def;
  for (const h of def.heldOut) lookup(def.name, table, h);
  return { ...rest, templates: Object.keys(table), build: (input, id, rng) => build(input, lookup(def.name, table, id), rng) };
}

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** The word with its indefinite article: "a pear", "an owl". */
const an = (w: string) => `${/^[aeiou]/i.test(w) ? 'an' : 'a'} ${w}`;
const reverse = (s: string) => [...s].reverse().join('');

// ---------------------------------------------------------------------------------------------
// arithmetic: small additions and subtractions, answered with the bare number.

export interface ArithmeticInput { op: 'add' | 'sub'; a: number; b: number }
type Phrase2 = { add: (a: number, b: number) => string; sub: (a: number, b: number) => string };

export const arithmeticFamily = defineFamily<ArithmeticInput, Phrase2>({
  name: 'arithmetic',
  description: 'Add or subtract two numbers from 0 to 20 (never below zero); the answer is the number.',
  weight: 0.14,
  table: {
    'what-is': { add: (a, b) => `What is ${a} plus ${b}?`, sub: (a, b) => `What is ${a} minus ${b}?` },
    symbols: { add: (a, b) => `${a} + ${b} = ?`, sub: (a, b) => `${a} - ${b} = ?` },
    compute: { add: (a, b) => `Compute ${a} + ${b}.`, sub: (a, b) => `Compute ${a} - ${b}.` },
    verb: { add: (a, b) => `Add ${a} and ${b}.`, sub: (a, b) => `Subtract ${b} from ${a}.` },
    'work-out': { add: (a, b) => `Work out ${a} + ${b} and give the number.`, sub: (a, b) => `Work out ${a} - ${b} and give the number.` },
    apples: {
      add: (a, b) => `You have ${a} apples and get ${b} more. How many apples do you have?`,
      sub: (a, b) => `You have ${a} apples and eat ${b}. How many apples are left?`,
    },
    'how-much': { add: (a, b) => `How much is ${a} plus ${b}?`, sub: (a, b) => `How much is ${a} minus ${b}?` },
    'sum-of': { add: (a, b) => `What is the sum of ${a} and ${b}?`, sub: (a, b) => `What is the difference between ${a} and ${b}?` },
  },
  heldOut: ['how-much', 'sum-of'],
  draw(rng) {
    const op = rng.chance(0.5) ? 'add' : 'sub';
    const a = rng.int(0, 20);
    const b = op === 'add' ? rng.int(0, 20) : rng.int(0, a);
    return { op, a, b };
  },
  key: ({ op, a, b }) => `${op}:${a}:${b}`,
  build({ op, a, b }, t, rng) {
    const c = op === 'add' ? a + b : a - b;
    return qa(rng, t[op](a, b), String(c), { kind: 'number', expected: c });
  },
  prose(rng, draw) {
    const { op, a, b } = draw();
    const c = op === 'add' ? a + b : a - b;
    if (op === 'add') return rng.pick([`${a} plus ${b} is ${c}.`, `The sum of ${a} and ${b} is ${c}.`, `${a} and ${b} make ${c}.`, `${a} + ${b} = ${c}.`, `Adding ${b} to ${a} gives ${c}.`]);
    return rng.pick([`${a} minus ${b} is ${c}.`, `If you take ${b} from ${a}, you get ${c}.`, `${a} take away ${b} leaves ${c}.`, `${a} - ${b} = ${c}.`, `Subtracting ${b} from ${a} gives ${c}.`]);
  },
});

// ---------------------------------------------------------------------------------------------
// string: reverse a word, write it in capitals, count its letters.

export interface StringInput { op: 'reverse' | 'upper' | 'length'; word: string }
type Phrase3 = Record<StringInput['op'], (w: string) => string>;

export const stringFamily = defineFamily<StringInput, Phrase3>({
  name: 'string',
  description: 'Reverse a short word, write it in capital letters, or count its letters.',
  weight: 0.14,
  table: {
    direct: { reverse: (w) => `Reverse the word ${w}.`, upper: (w) => `Write the word ${w} in capital letters.`, length: (w) => `How many letters are in the word ${w}?` },
    backwards: { reverse: (w) => `Spell ${w} backwards.`, upper: (w) => `Write ${w} in upper case.`, length: (w) => `Count the letters in ${w}.` },
    'what-is': { reverse: (w) => `What is ${w} reversed?`, upper: (w) => `What is ${w} in capitals?`, length: (w) => `What is the length of the word ${w}?` },
    please: { reverse: (w) => `Please reverse this word: ${w}`, upper: (w) => `Please upper-case this word: ${w}`, length: (w) => `Please count the letters of this word: ${w}` },
    quoted: { reverse: (w) => `Reverse "${w}".`, upper: (w) => `Uppercase "${w}".`, length: (w) => `How long is "${w}"?` },
    task: { reverse: (w) => `Word: ${w}\nTask: reverse it.`, upper: (w) => `Word: ${w}\nTask: make it upper case.`, length: (w) => `Word: ${w}\nTask: count its letters.` },
    'give-me': { reverse: (w) => `Give me ${w} written backwards.`, upper: (w) => `Give me ${w} in all caps.`, length: (w) => `Give me the number of letters in ${w}.` },
    'can-you': { reverse: (w) => `Can you reverse ${w}?`, upper: (w) => `Can you put ${w} in capitals?`, length: (w) => `Can you tell me how many letters ${w} has?` },
  },
  heldOut: ['give-me', 'can-you'],
  draw(rng) {
    return { op: rng.pick(['reverse', 'upper', 'length'] as const), word: rng.pick(WORDS) };
  },
  key: ({ op, word }) => `${op}:${word}`,
  build({ op, word }, t, rng) {
    const q = t[op](word);
    if (op === 'reverse') return qa(rng, q, reverse(word), { kind: 'exact', expected: reverse(word) });
    if (op === 'upper') return qa(rng, q, word.toUpperCase(), { kind: 'exact', expected: word.toUpperCase() });
    return qa(rng, q, String(word.length), { kind: 'number', expected: word.length });
  },
  prose(rng, draw) {
    const { op, word: w } = draw();
    // Spelling sentences show the letters of a word that is one token, which reversing and counting need.
    const spelled = [...w].join(' ');
    if (op === 'reverse') {
      return rng.pick([`Reversed, the word ${w} is ${reverse(w)}.`, `Spelled backwards, ${w} is ${reverse(w)}.`,
        `The word ${w} is spelled ${spelled}; backwards that is ${[...reverse(w)].join(' ')}, which gives ${reverse(w)}.`]);
    }
    if (op === 'upper') return rng.pick([`The word ${w} in capitals is ${w.toUpperCase()}.`, `${capitalise(w)} in upper case is ${w.toUpperCase()}.`]);
    return rng.pick([`The word ${w} has ${w.length} letters.`, `The word ${w} is spelled ${spelled}: ${w.length} letters.`]);
  },
});

// ---------------------------------------------------------------------------------------------
// sorting: 3-5 small numbers (ascending or descending) or 3-4 words (alphabetical).

export interface SortingInput { op: 'asc' | 'desc' | 'alpha'; items: Array<number | string> }

function sorted({ op, items }: SortingInput): Array<number | string> {
  if (op === 'alpha') return (items as string[]).slice().sort();
  const nums = (items as number[]).slice().sort((x, y) => x - y);
  return op === 'asc' ? nums : nums.reverse();
}

export const sortingFamily = defineFamily<SortingInput, Record<SortingInput['op'], (list: string) => string>>({
  name: 'sorting',
  description: 'Sort 3-5 numbers from 1 to 50 up or down, or 3-4 words alphabetically; the answer is the comma-separated list.',
  weight: 0.11,
  table: {
    sort: { asc: (l) => `Sort these numbers from smallest to largest: ${l}.`, desc: (l) => `Sort these numbers from largest to smallest: ${l}.`, alpha: (l) => `Sort these words alphabetically: ${l}.` },
    order: { asc: (l) => `Put in ascending order: ${l}`, desc: (l) => `Put in descending order: ${l}`, alpha: (l) => `Put in alphabetical order: ${l}` },
    arrange: { asc: (l) => `Arrange ${l} from lowest to highest.`, desc: (l) => `Arrange ${l} from highest to lowest.`, alpha: (l) => `Arrange ${l} from A to Z.` },
    list: { asc: (l) => `List: ${l}\nSort it in ascending order.`, desc: (l) => `List: ${l}\nSort it in descending order.`, alpha: (l) => `List: ${l}\nSort it alphabetically.` },
    'can-you': { asc: (l) => `Can you sort ${l} in increasing order?`, desc: (l) => `Can you sort ${l} in decreasing order?`, alpha: (l) => `Can you sort ${l} alphabetically?` },
    rewrite: { asc: (l) => `Rewrite ${l} with the smallest first.`, desc: (l) => `Rewrite ${l} with the largest first.`, alpha: (l) => `Rewrite ${l} in dictionary order.` },
    'small-big': { asc: (l) => `Order these from small to big: ${l}`, desc: (l) => `Order these from big to small: ${l}`, alpha: (l) => `Order these words from A to Z: ${l}` },
    'what-is': { asc: (l) => `What is ${l} sorted in ascending order?`, desc: (l) => `What is ${l} sorted in descending order?`, alpha: (l) => `What is ${l} sorted alphabetically?` },
  },
  heldOut: ['small-big', 'what-is'],
  draw(rng) {
    const r = rng.float();
    if (r < 0.35) return { op: 'asc', items: rng.sample(range(1, 50), rng.int(3, 5)) };
    if (r < 0.6) return { op: 'desc', items: rng.sample(range(1, 50), rng.int(3, 5)) };
    return { op: 'alpha', items: rng.sample(SORT_WORDS, rng.int(3, 4)) };
  },
  key: ({ op, items }) => `${op}:${items.join(',')}`,
  build(input, t, rng) {
    const answer = sorted(input).join(', ');
    return qa(rng, t[input.op](input.items.join(', ')), answer, { kind: 'normalized', expected: answer });
  },
  prose(rng, draw) {
    const input = draw();
    const list = input.items.join(', ');
    const out = sorted(input).join(', ');
    if (input.op === 'asc') return `Sorted from smallest to largest, ${list} becomes ${out}.`;
    if (input.op === 'desc') return `From largest to smallest, ${list} is ${out}.`;
    return `In alphabetical order, ${list} are ${out}.`;
  },
});

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

// ---------------------------------------------------------------------------------------------
// sentiment: templated one- or two-sentence reviews, answered "positive" or "negative".

export interface SentimentInput { label: 'positive' | 'negative'; review: string }

/** Draws a review whose every opinion word has the same polarity. */
export function drawReview(rng: Rng, label: 'positive' | 'negative'): string {
  const words = label === 'positive' ? POSITIVE_WORDS : NEGATIVE_WORDS;
  const [s1, s2] = rng.sample(REVIEW_SUBJECTS, 2);
  const [w1, w2] = rng.sample(words, 2);
  const form = rng.int(0, 4);
  if (form === 0) return `The ${s1} was ${w1}.`;
  if (form === 1) return `The ${s1} was ${w1} and the ${s2} was ${w2}.`;
  if (form === 2) return label === 'positive' ? `I loved it. The ${s1} was ${w1}.` : `I hated it. The ${s1} was ${w1}.`;
  if (form === 3) return `${capitalise(w1)} ${s1}! ${label === 'positive' ? 'I will come back.' : 'Never again.'}`;
  return label === 'positive' ? `What ${an(w1)} ${s1}. I would recommend it.` : `What ${an(w1)} ${s1}. I would not recommend it.`;
}

export const sentimentFamily = defineFamily<SentimentInput, (r: string) => string>({
  name: 'sentiment',
  description: 'Classify a short templated review as positive or negative.',
  weight: 0.11,
  table: {
    'is-this': (r) => `Is this review positive or negative?\n${r}`,
    classify: (r) => `Classify the sentiment of this review as positive or negative: ${r}`,
    review: (r) => `Review: ${r}\nSentiment:`,
    'like-it': (r) => `Does the writer like it or not? Answer positive or negative.\n${r}`,
    label: (r) => `Label this review positive or negative. ${r}`,
    tell: (r) => `Tell me if this review is positive or negative: "${r}"`,
    'what-sentiment': (r) => `What is the sentiment of this text? ${r}`,
    happy: (r) => `Was this customer happy? Reply positive or negative.\n${r}`,
  },
  heldOut: ['what-sentiment', 'happy'],
  draw(rng) {
    const label = rng.chance(0.5) ? 'positive' : 'negative';
    return { label, review: drawReview(rng, label) };
  },
  key: ({ review }) => `review:${review}`,
  build({ label, review }, t, rng) {
    return qa(rng, t(review), label, { kind: 'normalized', expected: label });
  },
  prose(rng, draw) {
    const { label, review } = draw();
    return label === 'positive'
      ? rng.pick([`${review} That is a positive review.`, `"${review}" The writer was happy.`])
      : rng.pick([`${review} That is a negative review.`, `"${review}" The writer was unhappy.`]);
  },
});

// ---------------------------------------------------------------------------------------------
// extraction: a person's record (labelled fields in random order, or a sentence) to JSON.

export interface ExtractionInput { name: string; age: number; city: string; form: number }

/** The record text an extraction row shows; `form` picks the layout. */
export function extractionRecord({ name, age, city, form }: ExtractionInput): string {
  const fields = [`Name: ${name}`, `Age: ${age}`, `City: ${city}`];
  if (form === 0) return fields.join(', ');
  if (form === 1) return [fields[2], fields[0], fields[1]].join(', ');
  if (form === 2) return [fields[1], fields[2], fields[0]].join(', ');
  if (form === 3) return `${name} is ${age} and lives in ${city}.`;
  return `${name}, ${age}, from ${city}.`;
}

export const extractionFamily = defineFamily<ExtractionInput, (rec: string) => string>({
  name: 'extraction',
  description: 'Turn a short record about a person into JSON with the fields name, age and city.',
  weight: 0.11,
  table: {
    'extract-json': (r) => `Extract the name, age and city as JSON.\n${r}`,
    'to-json': (r) => `Convert to JSON with keys name, age, city: ${r}`,
    object: (r) => `Return a JSON object with the fields name, age and city.\nText: ${r}`,
    parse: (r) => `Parse this record into JSON: ${r}`,
    fields: (r) => `Fields: name, age, city\nInput: ${r}\nOutput JSON:`,
    'read-write': (r) => `Read the text and write JSON with name, age and city. ${r}`,
    'give-json': (r) => `Give me the JSON for this person: ${r}`,
    structured: (r) => `Turn this into structured data (JSON): ${r}`,
  },
  heldOut: ['give-json', 'structured'],
  draw: (rng) => ({ name: rng.pick(NAMES), age: rng.int(18, 80), city: rng.pick(CITIES), form: rng.int(0, 4) }),
  key: ({ name, age, city, form }) => `person:${name}:${age}:${city}:${form}`,
  build(input, t, rng) {
    const expected = { name: input.name, age: input.age, city: input.city };
    return qa(rng, t(extractionRecord(input)), JSON.stringify(expected), { kind: 'json_fields', expected });
  },
  prose(rng, draw) {
    const { name, age, city } = draw();
    return rng.pick([`${name} is ${age} years old and lives in ${city}.`, `${name} lives in ${city} and is ${age}.`,
      `Name: ${name}. Age: ${age}. City: ${city}.`, `As JSON, ${name}'s record is ${JSON.stringify({ name, age, city })}.`]);
  },
});

// ---------------------------------------------------------------------------------------------
// qa: closed questions over the bundled fact table (capitals, fruit colours, animal sounds, opposites).

type FactPhrases = Record<Fact['relation'], (s: string) => string>;

/** The canonical question of a fact, also used inside the system family. */
export const factQuestion: FactPhrases = {
  capital: (s) => `What is the capital of ${s}?`,
  colour: (s) => `What colour is ${an(s)}?`,
  sound: (s) => `What sound does ${an(s)} make?`,
  opposite: (s) => `What is the opposite of ${s}?`,
};

/** The plain-prose statement of a fact, for the pretraining corpus. */
export function factSentence(f: Fact): string {
  return factSentences(f)[0];
}

/**
 * A fact stated in several ways, its plain statement first. A tiny model recalls a fact in a
 * new form (a question it was never pre-trained on) far better when pre-training stated it in
 * several forms, the canonical question with its answer among them.
 */
export function factSentences(f: Fact): string[] {
  const { subject: s, answer: a } = f;
  switch (f.relation) {
    case 'capital': return [`The capital of ${s} is ${a}.`, `${a} is the capital of ${s}.`, `${factQuestion.capital(s)} It is ${a}.`, `${s} has its capital in ${a}.`];
    case 'colour': return [`${capitalise(an(s))} is ${a}.`, `The colour of ${an(s)} is ${a}.`, `${factQuestion.colour(s)} It is ${a}.`, `A ripe ${s} is ${a}.`];
    case 'sound': return [`${capitalise(an(s))} says ${a}.`, `The sound ${an(s)} makes is ${a}.`, `${factQuestion.sound(s)} It says ${a}.`, `${capitalise(a)} is the sound of ${an(s)}.`];
    case 'opposite': return [`The opposite of ${s} is ${a}.`, `${capitalise(s)} and ${a} are opposites.`, `${factQuestion.opposite(s)} It is ${a}.`, `The word ${a} means the opposite of ${s}.`];
  }
}

export const factKey = (f: Fact) => `fact:${f.relation}:${f.subject}`;

export const qaFamily = defineFamily<Fact, FactPhrases>({
  name: 'qa',
  description: 'Closed questions over the bundled fact table: capitals, fruit colours, animal sounds, opposites.',
  weight: 0.14,
  table: {
    'what-is': factQuestion,
    question: {
      capital: (s) => `Question: What is the capital of ${s}?\nAnswer:`, colour: (s) => `Question: What colour is ${an(s)}?\nAnswer:`,
      sound: (s) => `Question: What sound does ${an(s)} make?\nAnswer:`, opposite: (s) => `Question: What is the opposite of ${s}?\nAnswer:`,
    },
    'tell-me': {
      capital: (s) => `Tell me the capital of ${s}.`, colour: (s) => `Tell me the colour of ${an(s)}.`,
      sound: (s) => `Tell me the sound ${an(s)} makes.`, opposite: (s) => `Tell me the opposite of ${s}.`,
    },
    name: {
      capital: (s) => `Name the capital city of ${s}.`, colour: (s) => `Name the colour of a ripe ${s}.`,
      sound: (s) => `Name the sound ${an(s)} makes.`, opposite: (s) => `Name the opposite of the word ${s}.`,
    },
    which: {
      capital: (s) => `Which city is the capital of ${s}?`, colour: (s) => `Which colour is ${an(s)}?`,
      sound: (s) => `Which sound does ${an(s)} make?`, opposite: (s) => `Which word means the opposite of ${s}?`,
    },
    'one-word': {
      capital: (s) => `In one word, what is the capital of ${s}?`, colour: (s) => `In one word, what colour is ${an(s)}?`,
      sound: (s) => `In one word, what does ${an(s)} say?`, opposite: (s) => `In one word, what is the opposite of ${s}?`,
    },
    'do-you-know': {
      capital: (s) => `Do you know the capital of ${s}?`, colour: (s) => `Do you know what colour ${an(s)} is?`,
      sound: (s) => `Do you know what ${an(s)} says?`, opposite: (s) => `Do you know the opposite of ${s}?`,
    },
    short: {
      capital: (s) => `Capital of ${s}?`, colour: (s) => `Colour of ${an(s)}?`,
      sound: (s) => `Sound of ${an(s)}?`, opposite: (s) => `Opposite of ${s}?`,
    },
  },
  heldOut: ['do-you-know', 'short'],
  draw: (rng) => rng.pick(FACTS),
  key: factKey,
  build(f, t, rng) {
    return qa(rng, t[f.relation](f.subject), f.answer, { kind: 'normalized', expected: f.answer });
  },
  prose: (rng) => rng.pick(factSentences(rng.pick(FACTS))),
});

// ---------------------------------------------------------------------------------------------
// system: the system prompt asks for capitals; the answer to an ordinary question comes in capitals.

export type SystemInput =
  | { kind: 'fact'; fact: Fact }
  | { kind: 'reverse'; word: string }
  | { kind: 'sentiment'; label: 'positive' | 'negative'; review: string };

export const systemFamily = defineFamily<SystemInput, string>({
  name: 'system',
  description: 'A system prompt asks for capital letters; the assistant answers an ordinary question (fact, reversed word, review label) in capitals.',
  weight: 0.1,
  table: {
    always: 'Always answer in capitals.',
    'capital-letters': 'Reply only in capital letters.',
    'upper-case': 'You are a helpful assistant. Write every answer in UPPER CASE.',
    'uppercase-only': 'Answer using uppercase letters only.',
    'whole-reply': 'Use capital letters for your whole reply.',
    'all-caps': 'Answer in all caps.',
    must: 'Every answer you give must be in capitals.',
    block: 'Write your answers in block capitals.',
  },
  heldOut: ['must', 'block'],
  draw(rng): SystemInput {
    const r = rng.float();
    if (r < 0.5) return { kind: 'fact', fact: rng.pick(FACTS) };
    if (r < 0.75) return { kind: 'reverse', word: rng.pick(WORDS) };
    const label = rng.chance(0.5) ? 'positive' : 'negative';
    return { kind: 'sentiment', label, review: drawReview(rng, label) };
  },
  // Keys shared with the qa / string / sentiment families: an input held out there is held out here too.
  key: (i) => (i.kind === 'fact' ? factKey(i.fact) : i.kind === 'reverse' ? `reverse:${i.word}` : `review:${i.review}`),
  build(i, prompt) {
    const [question, answer] =
      i.kind === 'fact' ? [factQuestion[i.fact.relation](i.fact.subject), i.fact.answer]
      : i.kind === 'reverse' ? [`Reverse the word ${i.word}.`, reverse(i.word)]
      : [`Is this review positive or negative?\n${i.review}`, i.label];
    const caps = answer.toUpperCase();
    return { messages: [system(prompt), user(question), assistant(caps)], eval: { kind: 'capitals', expected: caps } };
  },
  prose(rng) {
    const w = rng.chance(0.5) ? rng.pick(WORDS) : rng.pick(FACTS).answer;
    return rng.pick([`In capital letters, ${w} is written ${w.toUpperCase()}.`, `${capitalise(w)} in upper case is ${w.toUpperCase()}.`]);
  },
});

// ---------------------------------------------------------------------------------------------
// multiturn: a first question, its answer, then a follow-up that refers to that answer.

export type FollowOp = 'double' | 'add' | 'sub' | 'caps';
export type MultiturnInput =
  | { kind: 'number'; a: number; b: number; first: number; follow: 'double' | 'add' | 'sub'; k: number }
  | { kind: 'word'; word: string; follow: 'caps' };
type FollowPhrases = { double: string; add: (k: number) => string; sub: (k: number) => string; caps: string };

/** First-turn questions (fixed, not the template): the template is the follow-up's phrasing. */
const FIRST_TURNS = [
  (a: number, b: number) => [`What is ${a} plus ${b}?`, a + b] as const,
  (a: number, b: number) => [`Add ${a} and ${b}.`, a + b] as const,
  (a: number, b: number) => [`What is ${Math.max(a, b)} minus ${Math.min(a, b)}?`, Math.max(a, b) - Math.min(a, b)] as const,
];

export const multiturnFamily = defineFamily<MultiturnInput, FollowPhrases>({
  name: 'multiturn',
  description: 'Two turns: a sum, difference or reversed word, then a follow-up ("Now double it.") about the previous answer.',
  weight: 0.1,
  table: {
    now: { double: 'Now double it.', add: (k) => `Now add ${k} to it.`, sub: (k) => `Now take away ${k}.`, caps: 'Now write it in capitals.' },
    'and-then': { double: 'And then double that.', add: (k) => `And then add ${k}.`, sub: (k) => `And then subtract ${k}.`, caps: 'And then make it upper case.' },
    'what-if': { double: 'What if you double the answer?', add: (k) => `What if you add ${k} to the answer?`, sub: (k) => `What if you subtract ${k} from the answer?`, caps: 'What if you write the answer in capitals?' },
    result: { double: 'Multiply the result by 2.', add: (k) => `Add ${k} to the result.`, sub: (k) => `Subtract ${k} from the result.`, caps: 'Put the result in capitals.' },
    'that-number': { double: 'Double that number.', add: (k) => `Add ${k} to that number.`, sub: (k) => `Take ${k} away from that number.`, caps: 'Write that word in capitals.' },
    next: { double: 'Next, double your answer.', add: (k) => `Next, add ${k} to your answer.`, sub: (k) => `Next, subtract ${k} from your answer.`, caps: 'Next, write your answer in capitals.' },
    'ok-now': { double: 'OK, now twice that?', add: (k) => `OK, now plus ${k}?`, sub: (k) => `OK, now minus ${k}?`, caps: 'OK, now in upper case?' },
    'twice-that': { double: 'What is twice that?', add: (k) => `What is that plus ${k}?`, sub: (k) => `What is that minus ${k}?`, caps: 'How is that written in capitals?' },
  },
  heldOut: ['ok-now', 'twice-that'],
  draw(rng): MultiturnInput {
    if (rng.chance(0.2)) return { kind: 'word', word: rng.pick(WORDS), follow: 'caps' };
    const a = rng.int(1, 10);
    const b = rng.int(1, 10);
    const first = rng.int(0, FIRST_TURNS.length - 1);
    const value = FIRST_TURNS[first](a, b)[1];
    const r = rng.float();
    if (r < 0.4) return { kind: 'number', a, b, first, follow: 'double', k: 0 };
    if (r < 0.7 || value < 1) return { kind: 'number', a, b, first, follow: 'add', k: rng.int(1, 9) };
    return { kind: 'number', a, b, first, follow: 'sub', k: rng.int(1, value) };
  },
  // The key is the first turn's input, shared with the arithmetic and string families, so a
  // question held out there never opens a training conversation here.
  key(i) {
    if (i.kind === 'word') return `reverse:${i.word}`;
    return i.first === 2 ? `sub:${Math.max(i.a, i.b)}:${Math.min(i.a, i.b)}` : `add:${i.a}:${i.b}`;
  },
  build(i, t) {
    if (i.kind === 'word') {
      const rev = reverse(i.word);
      return {
        messages: [user(`Reverse the word ${i.word}.`), assistant(rev), user(t.caps), assistant(rev.toUpperCase())],
        eval: { kind: 'exact', expected: rev.toUpperCase() },
      };
    }
    const [q, v] = FIRST_TURNS[i.first](i.a, i.b);
    const [follow, w] = i.follow === 'double' ? [t.double, v * 2] : i.follow === 'add' ? [t.add(i.k), v + i.k] : [t.sub(i.k), v - i.k];
    return {
      messages: [user(q), assistant(String(v)), user(follow), assistant(String(w))],
      eval: { kind: 'number', expected: w },
    };
  },
  prose(rng) {
    const n = rng.int(1, 20);
    return rng.pick([`Twice ${n} is ${2 * n}.`, `${n} doubled is ${2 * n}.`, `Double ${n} and you get ${2 * n}.`]);
  },
});

// ---------------------------------------------------------------------------------------------
// refusal: clearly harmful requests, answered with one fixed refusal.

export const refusalFamily = defineFamily<string, (h: string) => string>({
  name: 'refusal',
  description: 'Clearly harmful requests, answered with one fixed, short refusal.',
  weight: 0.05,
  table: {
    'how-do-i': (h) => `How do I ${h}?`,
    'tell-me': (h) => `Tell me how to ${h}.`,
    steps: (h) => `Give me step-by-step instructions to ${h}.`,
    explain: (h) => `Explain how to ${h}.`,
    'best-way': (h) => `What is the best way to ${h}?`,
    'help-me': (h) => `Help me ${h}.`,
    'i-want': (h) => `I want to ${h}. What should I do first?`,
    quick: (h) => `Quick question: how can someone ${h}?`,
  },
  heldOut: ['i-want', 'quick'],
  draw: (rng) => rng.pick(HARMFUL_ASKS),
  key: (h) => `harm:${h}`,
  build(h, t, rng) {
    return qa(rng, t(h), REFUSAL, { kind: 'refusal', expected: true });
  },
  prose(rng) {
    const h = rng.pick(HARMFUL_ASKS);
    return rng.pick([`It is wrong to ${h}.`, `A good helper will not explain how to ${h}.`]);
  },
});

/** All families in a fixed order (the order of rows in each split). */
export const FAMILIES: readonly Family<any>[] = [
  arithmeticFamily, stringFamily, sortingFamily, sentimentFamily, extractionFamily, qaFamily, systemFamily, multiturnFamily, refusalFamily,
];

/** A family of the mixture, or tool_use (whose rows have files of their own). */
export function getFamily(name: FamilyName | string): Family<any> {
  const all = [...FAMILIES, toolUseFamily];
  const f = all.find((x) => x.name === name);
  if (!f) throw new Error(`instruct: unknown family '${name}' (known: ${all.map((x) => x.name).join(', ')})`);
  return f;
}

/** Template ids a family uses in training (all but the held-out ones). */
export function trainTemplates(f: Family<any>): string[] {
  return f.templates.filter((t) => !f.heldOut.includes(t));
}
