/**
 * tool_use: arithmetic on numbers too large to do in the head, answered by calling a calculator
 * tool and then using its result, in the tool-calling row format TRL trains on:
 *
 *   tools: [calculator]
 *   user:       What is 37 times 23?
 *   assistant:  (tool call) calculator {"a": 37, "op": "*", "b": 23}
 *   tool:       851
 *   assistant:  851
 *
 * Half the inputs stop at the call (scored on the call's name and arguments: `tool_call`),
 * half go on to the answer (scored on the number, which only the tool's result gives).
 * Kept apart from families.ts: it is the one family whose rows carry tools.
 */
import type { Rng } from '../../utils/random.js';
import type { BuiltExample, Family, InstructMessage } from './types.js';

/** The calculator's JSON schema, as a row's `tools` carries it. */
export const CALCULATOR_TOOL = {
  type: 'function',
  function: {
    name: 'calculator',
    description: 'a op b',
    // As small as a JSON schema gets: the bundled model reads 256 tokens at most.
    parameters: { type: 'object', properties: { a: { type: 'integer' }, op: { enum: ['+', '-', '*'] }, b: { type: 'integer' } } },
  },
} as const;

export interface ToolUseInput { op: '+' | '-' | '*'; a: number; b: number; stage: 'call' | 'answer' }
type Phrase = Record<ToolUseInput['op'], (a: number, b: number) => string>;

const PHRASES: Record<string, Phrase> = {
  'what-is': { '+': (a, b) => `What is ${a} plus ${b}?`, '-': (a, b) => `What is ${a} minus ${b}?`, '*': (a, b) => `What is ${a} times ${b}?` },
  calculate: { '+': (a, b) => `Calculate ${a} + ${b}.`, '-': (a, b) => `Calculate ${a} - ${b}.`, '*': (a, b) => `Calculate ${a} * ${b}.` },
  'use-calculator': {
    '+': (a, b) => `Use the calculator to add ${a} and ${b}.`, '-': (a, b) => `Use the calculator to subtract ${b} from ${a}.`,
    '*': (a, b) => `Use the calculator to multiply ${a} by ${b}.`,
  },
  'how-much': { '+': (a, b) => `How much is ${a} + ${b}?`, '-': (a, b) => `How much is ${a} - ${b}?`, '*': (a, b) => `How much is ${a} * ${b}?` },
  'of-and': {
    '+': (a, b) => `What is the sum of ${a} and ${b}?`, '-': (a, b) => `What is ${b} less than ${a}?`,
    '*': (a, b) => `What is the product of ${a} and ${b}?`,
  },
  symbols: { '+': (a, b) => `${a} + ${b} = ?`, '-': (a, b) => `${a} - ${b} = ?`, '*': (a, b) => `${a} * ${b} = ?` },
  'i-need': { '+': (a, b) => `I need ${a} added to ${b}.`, '-': (a, b) => `I need ${a} take away ${b}.`, '*': (a, b) => `I need ${a} multiplied by ${b}.` },
  'work-out': { '+': (a, b) => `Please work out ${a} plus ${b}.`, '-': (a, b) => `Please work out ${a} minus ${b}.`, '*': (a, b) => `Please work out ${a} times ${b}.` },
};
const HELD_OUT = ['i-need', 'work-out'] as const;

const apply = ({ op, a, b }: ToolUseInput) => (op === '+' ? a + b : op === '-' ? a - b : a * b);

/** The assistant message that calls the calculator. */
export function calculatorCall(a: number, op: ToolUseInput['op'], b: number): InstructMessage {
  return { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'calculator', arguments: { a, op, b } } }] };
}

export const toolUseFamily: Family<ToolUseInput> = {
  name: 'tool_use',
  description: 'Add, subtract or multiply numbers too large to work out in the head by calling a calculator tool, then answer with its result.',
  weight: 0.08,
  templates: Object.keys(PHRASES),
  heldOut: HELD_OUT,
  draw(rng: Rng): ToolUseInput {
    const op = rng.pick(['+', '-', '*'] as const);
    const a = op === '*' ? rng.int(12, 99) : rng.int(100, 999);
    const b = op === '*' ? rng.int(12, 99) : op === '-' ? rng.int(100, a) : rng.int(100, 999);
    return { op, a, b, stage: rng.chance(0.5) ? 'call' : 'answer' };
  },
  key: ({ op, a, b }) => `calc:${a}${op}${b}`,
  build(input, template): BuiltExample {
    const phrase = PHRASES[template];
    if (!phrase) throw new Error(`instruct: family 'tool_use' has no template '${template}' (known: ${Object.keys(PHRASES).join(', ')})`);
    const { op, a, b } = input;
    const call = calculatorCall(a, op, b);
    const question: InstructMessage = { role: 'user', content: phrase[op](a, b) };
    if (input.stage === 'call') {
      return { messages: [question, call], tools: [CALCULATOR_TOOL], eval: { kind: 'tool_call', expected: { name: 'calculator', arguments: { a, op, b } } } };
    }
    const c = apply(input);
    return {
      messages: [question, call, { role: 'tool', name: 'calculator', content: String(c) }, { role: 'assistant', content: String(c) }],
      tools: [CALCULATOR_TOOL],
      eval: { kind: 'number', expected: c },
    };
  },
  prose(rng) {
    const input = this.draw(rng);
    const word = input.op === '+' ? 'plus' : input.op === '-' ? 'minus' : 'times';
    return rng.pick([`The calculator says ${input.a} ${word} ${input.b} is ${apply(input)}.`, `${input.a} ${input.op} ${input.b} = ${apply(input)}, by the calculator.`]);
  },
};
