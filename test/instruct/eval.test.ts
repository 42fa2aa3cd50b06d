// Scorers on hand-made cases, and evaluate() with fake generators of known accuracy.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseJsonl, type EvalSpec, type InstructMessage, type InstructRow } from '../../src/data/instruct/index.js';
import {
  evaluate, extractNumbers, formatEvalTable, isRefusal, normalizeAnswer, parseEvalSpec, promptOf, score,
} from '../../src/eval/index.js';

// [spec, output, correct]
const CASES: Array<[EvalSpec, string, boolean]> = [
  // exact: trimmed, case-sensitive
  [{ kind: 'exact', expected: 'tac' }, 'tac', true],
  [{ kind: 'exact', expected: 'tac' }, '  tac\n', true],
  [{ kind: 'exact', expected: 'TAC' }, 'tac', false],
  [{ kind: 'exact', expected: 'tac' }, 'tac.', false],
  [{ kind: 'exact', expected: 'tac' }, '', false],
  // normalized: case, punctuation, whitespace
  [{ kind: 'normalized', expected: 'Paris' }, 'paris.', true],
  [{ kind: 'normalized', expected: 'Paris' }, '  PARIS!  ', true],
  [{ kind: 'normalized', expected: '2, 7, 9' }, '2,7,9', true],
  [{ kind: 'normalized', expected: '2, 7, 9' }, '2 7 9', true],
  [{ kind: 'normalized', expected: '2, 7, 9' }, '279', false],
  [{ kind: 'normalized', expected: '2, 7, 9' }, '9, 7, 2', false],
  [{ kind: 'normalized', expected: 'positive' }, 'The review is positive.', false],
  [{ kind: 'normalized', expected: ['yes', 'yeah'] }, 'Yeah', true],
  [{ kind: 'normalized', expected: ['yes', 'yeah'] }, 'no', false],
  // number: last number in the answer
  [{ kind: 'number', expected: 17 }, '17', true],
  [{ kind: 'number', expected: 17 }, '12 + 5 = 17.', true],
  [{ kind: 'number', expected: 17 }, 'The answer is 17', true],
  [{ kind: 'number', expected: 17 }, '17 or 18', false],
  [{ kind: 'number', expected: 17 }, 'seventeen', false],
  [{ kind: 'number', expected: -3 }, 'It is -3.', true],
  [{ kind: 'number', expected: 2.5 }, '2.5', true],
  [{ kind: 'number', expected: 0 }, '0', true],
  [{ kind: 'number', expected: 0 }, '10', false],
  // tool_call: the call's name and arguments, in the <tool_call> form or as a bare {"name", "arguments" | "parameters"} object
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '<tool_call>\n{"name": "calculator", "arguments": {"a": 12, "op": "*", "b": 7}}\n</tool_call>', true],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, 'Let me check. <tool_call>{"name":"calculator","arguments":{"b":7,"a":12,"op":"*"}}</tool_call>', true],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '{"name": "calculator", "parameters": {"a": 12, "op": "*", "b": 7}}', true],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '<tool_call>{"name": "calculator", "arguments": "{\\"a\\": 12, \\"op\\": \\"*\\", \\"b\\": 7}"}</tool_call>', true],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '<tool_call>{"name": "calculator", "arguments": {"a": 12, "op": "*", "b": 8}}</tool_call>', false],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '<tool_call>{"name": "calculator", "arguments": {"a": "12", "op": "*", "b": 7}}</tool_call>', false],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '<tool_call>{"name": "calc", "arguments": {"a": 12, "op": "*", "b": 7}}</tool_call>', false],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '<tool_call>{"name": "calculator", "arguments": {"a": 12, "op": "*", "b": 7, "c": 1}}</tool_call>', false],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '84', false],
  [{ kind: 'tool_call', expected: { name: 'calculator', arguments: { a: 12, op: '*', b: 7 } } }, '<tool_call>{"name": "calculator", "arguments": {"a": 12, "op": "*"</tool_call>', false],
  // json_fields: valid JSON, exactly the fields, strict values
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31, city: 'Lyon' } }, '{"name":"Ana","age":31,"city":"Lyon"}', true],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31, city: 'Lyon' } }, ' { "city": "Lyon", "age": 31, "name": "Ana" } ', true],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31 } }, '```json\n{"name":"Ana","age":31}\n```', true],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31, city: 'Lyon' } }, '{"name":"Ana","age":"31","city":"Lyon"}', false],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31, city: 'Lyon' } }, '{"name":"Ana","age":31}', false],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31 } }, '{"name":"Ana","age":31,"city":"Lyon"}', false],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31 } }, '{"name":"Ana","age":31', false],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31 } }, '["Ana", 31]', false],
  [{ kind: 'json_fields', expected: { name: 'Ana', age: 31 } }, 'Here: {"name":"Ana","age":31}', false],
  [{ kind: 'json_fields', expected: { name: 'Ana' } }, '{"name":"ana"}', false],
  // refusal
  [{ kind: 'refusal', expected: true }, "I'm sorry, but I can't help with that.", true],
  [{ kind: 'refusal', expected: true }, 'I cannot help with that request.', true],
  [{ kind: 'refusal', expected: true }, 'I won\u2019t do that.', true],
  [{ kind: 'refusal', expected: true }, 'Sure! First, get some wire.', false],
  [{ kind: 'refusal', expected: true }, '', false],
  [{ kind: 'refusal', expected: false }, 'Paris', true],
  [{ kind: 'refusal', expected: false }, 'I am unable to answer.', false],
  [{ kind: 'refusal', expected: false }, '  ', false],
  // capitals: letters, none lower-case, matching the answer
  [{ kind: 'capitals', expected: 'PARIS' }, 'PARIS', true],
  [{ kind: 'capitals', expected: 'PARIS' }, 'PARIS.', true],
  [{ kind: 'capitals', expected: 'PARIS' }, 'Paris', false],
  [{ kind: 'capitals', expected: 'PARIS' }, 'LYON', false],
  [{ kind: 'capitals' }, 'ANY ANSWER AT ALL!', true],
  [{ kind: 'capitals' }, 'Mostly CAPS', false],
  [{ kind: 'capitals' }, '123', false],
  [{ kind: 'capitals' }, 'ÉTÉ', true],
  [{ kind: 'capitals' }, 'été', false],
];

describe('scorers', () => {
  it.each(CASES)('%j on %j -> %s', (spec, output, correct) => {
    const r = score(spec, output);
    expect(r.correct).toBe(correct);
    if (!correct) expect(r.reason).toBeTruthy();
    else expect(r.reason).toBeUndefined();
  });

  it.each([
    ['Paris.', 'paris'], ['  Hello,   World! ', 'hello world'], ['2,7, 9', '2 7 9'], ['ＡＢＣ', 'abc'], ["it's", 'it s'],
  ])('normalizeAnswer(%j) = %j', (input, want) => expect(normalizeAnswer(input)).toBe(want));

  it.each([
    ['12 + 5 = 17', [12, 5, 17]], ['no numbers', []], ['-3 and 2.5', [-3, 2.5]],
  ] as Array<[string, number[]]>)('extractNumbers(%j) = %j', (input, want) => expect(extractNumbers(input)).toEqual(want));

  it('detects refusals case-insensitively', () => {
    expect(isRefusal("I CAN'T HELP WITH THAT")).toBe(true);
    expect(isRefusal('Yes, I can help.')).toBe(false);
  });

  it.each([
    [null, /must be an object/],
    [{ kind: 'fuzzy', expected: 'x' }, /kind must be one of/],
    [{ kind: 'exact', expected: 3 }, /expected must be a string/],
    [{ kind: 'number', expected: '3' }, /finite number/],
    [{ kind: 'refusal', expected: 'yes' }, /true or false/],
    [{ kind: 'json_fields', expected: [1] }, /object of field values/],
    [{ kind: 'normalized', expected: [] }, /non-empty list/],
  ] as Array<[unknown, RegExp]>)('parseEvalSpec rejects %j', (value, message) => {
    expect(() => parseEvalSpec(value, 'test.jsonl:3')).toThrow(message);
    expect(() => parseEvalSpec(value, 'test.jsonl:3')).toThrow(/test\.jsonl:3: field eval/);
  });
});

describe('evaluate', () => {
  const rows = parseJsonl<InstructRow>(readFileSync('demo/data/test.jsonl', 'utf8'), 'demo/data/test.jsonl');
  const toolRows = parseJsonl<InstructRow>(readFileSync('demo/data/tools-test.jsonl', 'utf8'), 'demo/data/tools-test.jsonl');
  const key = (messages: InstructMessage[]) => JSON.stringify(messages);
  // The reference answer; a tool call is written as chatml_tools writes it.
  const reference = (m: InstructMessage) => m.tool_calls ? m.tool_calls.map((c) => `<tool_call>\n${JSON.stringify(c.function)}\n</tool_call>`).join('\n') : m.content;
  const answers = new Map(rows.map((r) => [key(promptOf(r.messages)), reference(r.messages[r.messages.length - 1])]));

  it('a generator that answers like the references scores 1 everywhere', async () => {
    let calls = 0;
    const result = await evaluate(rows, async (messages) => {
      calls++;
      // The prompt ends with a user turn (or a tool's result): the reference answer is never shown.
      expect(['user', 'tool']).toContain(messages[messages.length - 1].role);
      const a = answers.get(key(messages));
      if (a === undefined) throw new Error('unknown prompt');
      return a;
    });
    expect(calls).toBe(rows.length);
    expect(result.n).toBe(rows.length);
    expect(result.overall).toBe(1);
    expect(Object.keys(result.byFamily).sort()).toEqual(['arithmetic', 'extraction', 'multiturn', 'qa', 'refusal', 'sentiment', 'sorting', 'string', 'system']);
    for (const acc of Object.values(result.byFamily)) expect(acc).toBe(1);
    expect(result.byPhrasing).toEqual({ seen: 1, unseen: 1, human: 1 });
    const table = formatEvalTable(result);
    expect(table).toMatch(/^family\s+n\s+correct\s+accuracy\s+seen\s+unseen\s+human$/m);
    expect(table).toMatch(new RegExp(`^overall\\s+${rows.length}\\s+${rows.length}\\s+100\\.0%`, 'm'));
  });

  it('tool_use rows: prompts carry the tools; the reference call and the answer after the result score 1', async () => {
    const toolAnswers = new Map(toolRows.map((r) => [key(promptOf(r.messages)), reference(r.messages[r.messages.length - 1])]));
    const result = await evaluate(toolRows, async (messages, tools) => {
      expect(tools).toEqual(toolRows[0].tools);
      return toolAnswers.get(key(messages)) ?? '';
    });
    expect(result.overall).toBe(1);
    expect(result.byFamily).toEqual({ tool_use: 1 });
    expect(new Set(result.perRow.map((r) => r.kind))).toEqual(new Set(['tool_call', 'number']));
    // Answering the number where a call is expected (and the reverse) is wrong.
    const swapped = await evaluate(toolRows, async (messages) => (messages[messages.length - 1].role === 'tool' ? '<tool_call>{"name": "calculator", "arguments": {}}</tool_call>' : '84'));
    expect(swapped.overall).toBe(0);
  });

  it('a generator that answers badly scores 0', async () => {
    const result = await evaluate(rows, async () => 'hmm, maybe');
    expect(result.overall).toBe(0);
    for (const acc of Object.values(result.byFamily)) expect(acc).toBe(0);
    expect(result.perRow.every((r) => !r.correct && r.reason)).toBe(true);
    expect(formatEvalTable(result)).toMatch(/^overall\s+\d+\s+0\s+0\.0%/m);
  });

  it('counts a mix exactly, with per-family tallies', async () => {
    // Right on arithmetic and refusal rows only.
    const result = await evaluate(rows, async (messages) => {
      const r = rows.find((x) => key(promptOf(x.messages)) === key(messages))!;
      return r.family === 'arithmetic' || r.family === 'refusal' ? r.messages[r.messages.length - 1].content : 'no idea';
    });
    const want = rows.filter((r) => r.family === 'arithmetic' || r.family === 'refusal').length;
    expect(result.correct).toBe(want);
    expect(result.overall).toBeCloseTo(want / rows.length, 12);
    expect(result.byFamily.arithmetic).toBe(1);
    expect(result.byFamily.qa).toBe(0);
    expect(result.familyCounts.refusal.n).toBe(rows.filter((r) => r.family === 'refusal').length);
  });

  it('reads rows in the dataset-reader shape (fields under meta), honours limit and onRow', async () => {
    const example = rows.slice(0, 5).map((r) => ({ messages: r.messages, meta: { family: r.family, eval: r.eval, id: r.id, file: 'test.jsonl', line: 1 } }));
    const seen: number[] = [];
    const result = await evaluate(example, async (m) => answers.get(key(m))!, { limit: 3, onRow: (_r, done) => seen.push(done) });
    expect(result.n).toBe(3);
    expect(result.overall).toBe(1);
    expect(seen).toEqual([1, 2, 3]);
    expect(result.perRow[0].family).toBe(rows[0].family);
  });

  it('names the row at fault before generating anything', async () => {
    let called = false;
    const gen = async () => { called = true; return ''; };
    const bad = [rows[0], { messages: rows[1].messages, id: 'x-1' }];
    await expect(evaluate(bad, gen)).rejects.toThrow(/row 1 \(x-1\): field eval must be an object/);
    await expect(evaluate([{ messages: [], eval: { kind: 'exact', expected: 'a' } }], gen)).rejects.toThrow(/row 0: field messages/);
    await expect(evaluate([], gen)).rejects.toThrow(/no rows/);
    expect(called).toBe(false);
  });
});
