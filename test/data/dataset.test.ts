/**
 * Dataset reading: every format normalised, every kind of bad row reported with file:line and
 * field, 'stop' vs 'skip', streaming from a path, a Blob, a ReadableStream and lines, and a
 * file larger than one read chunk.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetError, loadDataset, parseLine, parseRow, readDataset, type Example, type RowError } from '../../src/data/dataset.js';

const where = { file: 'data.jsonl', line: 17 };
const dir = mkdtempSync(join(tmpdir(), 'webtune-ds-'));

async function* linesOf(lines: string[]): AsyncGenerator<string> {
  for (const l of lines) yield l;
}
async function collect(reader: AsyncIterable<Example>): Promise<Example[]> {
  const out: Example[] = [];
  for await (const ex of reader) out.push(ex);
  return out;
}

describe('parseRow: formats', () => {
  it.each([
    ['messages', { messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }], id: 7 },
      { format: 'messages', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }], meta: { id: 7, file: 'data.jsonl', line: 17 } }],
    ['messages keeps extra fields (ultrachat has prompt + messages)', { prompt: 'p', prompt_id: 'x1', messages: [{ role: 'user', content: 'p' }] },
      { format: 'messages', messages: [{ role: 'user', content: 'p' }], meta: { prompt: 'p', prompt_id: 'x1', file: 'data.jsonl', line: 17 } }],
    ['prompt/completion strings', { prompt: '2 + 2 =', completion: ' 4', source: 'math' },
      { format: 'prompt_completion', prompt: '2 + 2 =', completion: ' 4', meta: { source: 'math', file: 'data.jsonl', line: 17 } }],
    ['prompt/completion messages', { prompt: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }], completion: [{ role: 'assistant', content: 'a' }] },
      { format: 'prompt_completion', prompt: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }], completion: [{ role: 'assistant', content: 'a' }], meta: { file: 'data.jsonl', line: 17 } }],
    ['text', { text: 'Once upon a time', task: 'lm' }, { format: 'text', text: 'Once upon a time', meta: { task: 'lm', file: 'data.jsonl', line: 17 } }],
    ['alpaca with input', { instruction: 'Translate to French', input: 'cat', output: 'chat', family: 'x' },
      { format: 'messages', messages: [{ role: 'user', content: 'Translate to French\n\ncat' }, { role: 'assistant', content: 'chat' }], meta: { family: 'x', file: 'data.jsonl', line: 17 } }],
    ['alpaca without input, with system', { instruction: 'Say hi', input: '', output: 'hi', system: 'Be brief' },
      { format: 'messages', messages: [{ role: 'system', content: 'Be brief' }, { role: 'user', content: 'Say hi' }, { role: 'assistant', content: 'hi' }], meta: { file: 'data.jsonl', line: 17 } }],
    ['a row\'s own file/line fields are kept apart from provenance', { text: 't', file: 'orig.txt', line: 3 },
      { format: 'text', text: 't', meta: { row_file: 'orig.txt', row_line: 3, file: 'data.jsonl', line: 17 } }],
  ])('%s', (_, row, expected) => {
    expect(parseRow(row, where)).toEqual({ example: expected });
  });
});

describe('parseRow: tool use (TRL\'s tool-calling rows)', () => {
  it('keeps tools, tool_calls, tool messages and every extra message key; a call-only message with no content reads as ""', () => {
    const row = {
      tools: [{ type: 'function', function: { name: 'add', parameters: { type: 'object' } } }],
      messages: [
        { role: 'user', content: 'What is 2 + 3?' },
        { role: 'assistant', content: null, tool_calls: [{ type: 'function', id: 'c1', function: { name: 'add', arguments: { a: 2, b: 3 } } }] },
        { role: 'tool', tool_call_id: 'c1', name: 'add', content: '5' },
        { role: 'assistant', content: '5', reasoning_content: '2 + 3 = 5', weight: 1 },
        { role: 'user', content: 'ok', tool_calls: null },
      ],
      source: 'x',
    };
    const r = parseRow(row, where);
    expect(r.error).toBeUndefined();
    expect(r.example!.tools).toEqual(row.tools);
    expect(r.example!.messages).toEqual([
      row.messages[0],
      { ...row.messages[1], content: '' },
      row.messages[2],
      row.messages[3],
      { role: 'user', content: 'ok' }, // tool_calls: null is no calls (not a key the template would see)
    ]);
    expect(r.example!.meta).toEqual({ source: 'x', file: 'data.jsonl', line: 17 });
  });
});

describe('parseRow / parseLine: bad rows name file:line and field', () => {
  it.each([
    ['unknown role', '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "bot", "content": "c"}]}',
      'messages[2].role', 'data.jsonl:17: field "messages[2].role": unknown role "bot" (expected system, user, assistant, tool)'],
    ['missing content', '{"messages": [{"role": "user"}]}', 'messages[0].content', 'data.jsonl:17: field "messages[0].content": missing content'],
    ['missing role', '{"messages": [{"content": "x"}]}', 'messages[0].role', 'data.jsonl:17: field "messages[0].role": missing role'],
    ['content of the wrong type', '{"messages": [{"role": "user", "content": 42}]}', 'messages[0].content', 'data.jsonl:17: field "messages[0].content": expected a string, got number'],
    ['null content', '{"messages": [{"role": "user", "content": null}]}', 'messages[0].content', 'data.jsonl:17: field "messages[0].content": expected a string, got null'],
    ['role of the wrong type', '{"messages": [{"role": 1, "content": "x"}]}', 'messages[0].role', 'data.jsonl:17: field "messages[0].role": expected a string, got number'],
    ['message not an object', '{"messages": ["hi"]}', 'messages[0]', 'data.jsonl:17: field "messages[0]": expected a message object {"role", "content"}, got string'],
    ['empty conversation', '{"messages": []}', 'messages', 'data.jsonl:17: field "messages": empty conversation'],
    ['messages not a list', '{"messages": "hi"}', 'messages', 'data.jsonl:17: field "messages": expected a list of messages, got string'],
    ['invalid JSON', '{"messages": [', '', 'data.jsonl:17: invalid JSON: '],
    ['not an object', '[1, 2]', '', 'data.jsonl:17: expected a JSON object, got array'],
    ['unknown format', '{"question": "q", "answer": "a"}', '',
      'data.jsonl:17: unknown format: a row needs "messages", "prompt" + "completion", "text", or "instruction" + "output" (found "question", "answer")'],
    ['prompt without completion', '{"prompt": "p"}', 'completion', 'data.jsonl:17: field "completion": missing (a "prompt" row needs a "completion"; prompt-only rows are for RL, not SFT)'],
    ['completion without prompt', '{"completion": "c"}', 'prompt', 'data.jsonl:17: field "prompt": missing (a "completion" row needs a "prompt")'],
    ['prompt string, completion list', '{"prompt": "p", "completion": [{"role": "assistant", "content": "a"}]}', 'completion',
      'data.jsonl:17: field "completion": expected a string like "prompt", got array'],
    ['prompt of the wrong type', '{"prompt": 3, "completion": "c"}', 'prompt', 'data.jsonl:17: field "prompt": expected a string or a list of messages, got number'],
    ['bad role inside a prompt list', '{"prompt": [{"role": "ipython", "content": "x"}], "completion": [{"role": "assistant", "content": "a"}]}', 'prompt[0].role',
      'data.jsonl:17: field "prompt[0].role": unknown role "ipython" (expected system, user, assistant, tool)'],
    ['tool_calls not a list', '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": {"name": "f"}}]}', 'messages[1].tool_calls',
      'data.jsonl:17: field "messages[1].tool_calls": expected a list of tool calls, got object'],
    ['tool call without a name', '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"arguments": {}}}]}]}',
      'messages[1].tool_calls[0].function.name', 'data.jsonl:17: field "messages[1].tool_calls[0].function.name": missing'],
    ['tool call arguments of the wrong type', '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": 3}}]}]}',
      'messages[1].tool_calls[0].function.arguments', 'data.jsonl:17: field "messages[1].tool_calls[0].function.arguments": expected an object or a JSON string, got number'],
    ['tool call of another type', '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "code", "function": {"name": "f", "arguments": {}}}]}]}',
      'messages[1].tool_calls[0].type', 'data.jsonl:17: field "messages[1].tool_calls[0].type": expected "function", got "code"'],
    ['tool calls from a user', '{"messages": [{"role": "user", "content": "q", "tool_calls": []}]}', 'messages[0].tool_calls',
      'data.jsonl:17: field "messages[0].tool_calls": only assistant messages make tool calls (this one is "user")'],
    ['tool_call_id of the wrong type', '{"messages": [{"role": "tool", "content": "5", "tool_call_id": 7}]}', 'messages[0].tool_call_id',
      'data.jsonl:17: field "messages[0].tool_call_id": expected a string, got number'],
    ['reasoning_content of the wrong type', '{"messages": [{"role": "assistant", "content": "a", "reasoning_content": ["r"]}]}', 'messages[0].reasoning_content',
      'data.jsonl:17: field "messages[0].reasoning_content": expected a string, got array'],
    ['tools not a list', '{"tools": {"type": "function"}, "messages": [{"role": "user", "content": "q"}]}', 'tools',
      'data.jsonl:17: field "tools": expected a list of tool schemas, got object'],
    ['function tool without a name', '{"tools": [{"type": "function", "function": {"parameters": {}}}], "messages": [{"role": "user", "content": "q"}]}', 'tools[0].function.name',
      'data.jsonl:17: field "tools[0].function.name": missing (a function tool needs {"function": {"name", "parameters"}})'],
    ['text of the wrong type', '{"text": ["a"]}', 'text', 'data.jsonl:17: field "text": expected a string, got array'],
    ['alpaca without output', '{"instruction": "i"}', 'output', 'data.jsonl:17: field "output": missing'],
    ['alpaca input of the wrong type', '{"instruction": "i", "input": 5, "output": "o"}', 'input', 'data.jsonl:17: field "input": expected a string, got number'],
  ])('%s', (_, line, field, message) => {
    const r = parseLine(line, where);
    expect(r.example).toBeUndefined();
    const err = r.error as RowError;
    expect([err.file, err.line, err.field]).toEqual(['data.jsonl', 17, field]);
    if (message.endsWith(': ')) expect(err.message.startsWith(message)).toBe(true); // JSON.parse's own wording follows
    else expect(err.message).toBe(message);
  });
});

const MIXED = [
  '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}', // 1
  '', // 2 (blank: skipped, still counted)
  '{"text": "t1"}', // 3
  '{"messages": [{"role": "bot", "content": "x"}]}', // 4 bad
  '{"prompt": "p", "completion": "c"}', // 5
  'not json', // 6 bad
  '{"instruction": "i", "output": "o"}', // 7
];

describe('readDataset', () => {
  it("'skip' yields every good row and collects every error with its line", async () => {
    const seen: RowError[] = [];
    const reader = readDataset(linesOf(MIXED), { file: 'mixed.jsonl', onError: 'skip', onRowError: (e) => seen.push(e) });
    const examples = await collect(reader);
    expect(examples.map((e) => [e.format, e.meta.line])).toEqual([['messages', 1], ['text', 3], ['prompt_completion', 5], ['messages', 7]]);
    expect(reader.errors.map((e) => [e.line, e.field])).toEqual([[4, 'messages[0].role'], [6, '']]);
    expect(reader.errors[0].message).toBe('mixed.jsonl:4: field "messages[0].role": unknown role "bot" (expected system, user, assistant, tool)');
    expect(seen).toEqual(reader.errors);
  });

  it("'skip' returns a summary as the generator's return value", async () => {
    const reader = readDataset(linesOf(MIXED), { onError: 'skip' });
    let r = await reader.next();
    while (!r.done) r = await reader.next();
    expect(r.value.rows).toBe(6);
    expect(r.value.examples).toBe(4);
    expect(r.value.errors.map((e) => e.message.slice(0, 10))).toEqual(['<input>:4:', '<input>:6:']);
  });

  it("'stop' yields the good rows before the first bad one, then throws a DatasetError carrying it", async () => {
    const reader = readDataset(linesOf(MIXED), { file: 'mixed.jsonl', onError: 'stop' });
    const got: number[] = [];
    let thrown: unknown;
    try {
      for await (const ex of reader) got.push(ex.meta.line as number);
    } catch (e) {
      thrown = e;
    }
    expect(got).toEqual([1, 3]);
    expect(thrown).toBeInstanceOf(DatasetError);
    expect((thrown as DatasetError).error).toEqual({ file: 'mixed.jsonl', line: 4, field: 'messages[0].role', message: 'mixed.jsonl:4: field "messages[0].role": unknown role "bot" (expected system, user, assistant, tool)' });
    expect((thrown as DatasetError).message).toBe((thrown as DatasetError).error.message);
  });

  it('reads a JSON array file, numbering rows by the line their element starts on', async () => {
    const path = join(dir, 'rows.json');
    writeFileSync(path, '\uFEFF[\n  {"text": "a, [b] {c}"},\n  {"messages": [\n    {"role": "user", "content": "q\\"]"}]},\n  {"messages": []},\n  {"prompt": "p", "completion": "c"}\n]\n');
    const { examples, errors } = await loadDataset(path);
    expect(examples.map((e) => [e.format, e.meta.file, e.meta.line])).toEqual([['text', path, 2], ['messages', path, 3], ['prompt_completion', path, 6]]);
    expect(examples[0].text).toBe('a, [b] {c}');
    expect(examples[1].messages).toEqual([{ role: 'user', content: 'q"]' }]);
    expect(errors.map((e) => [e.line, e.field])).toEqual([[5, 'messages']]);
  });

  it('reports a truncated JSON array', async () => {
    const { examples, errors } = await loadDataset(new Blob(['[{"text": "a"},\n{"text": "b"']), { file: 'cut.json' });
    expect(examples.map((e) => e.text)).toEqual(['a']);
    expect(errors.map((e) => e.message)).toEqual(['cut.json:2: unterminated JSON array (missing "]")']);
  });

  it('streams a file larger than one read chunk from a path, a Blob and a ReadableStream', async () => {
    // ~1.3 MB, well over Node's 64 KiB stream chunk; multi-byte characters straddle chunk boundaries,
    // lines end in CRLF or LF, and one bad row sits in the middle.
    const rows: string[] = [];
    for (let i = 1; i <= 3000; i++) {
      if (i === 1500) rows.push('{"messages": [{"role": "user"}]}');
      else rows.push(JSON.stringify({ messages: [{ role: 'user', content: `q${i} ${'é👋'.repeat(i % 97)}` }, { role: 'assistant', content: 'x'.repeat(300) }], id: i }));
    }
    const text = rows.map((r, i) => r + (i % 2 ? '\r\n' : '\n')).join('');
    expect(text.length).toBeGreaterThan(1_000_000);
    const path = join(dir, 'big.jsonl');
    writeFileSync(path, text);
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let o = 0; o < bytes.length; o += 4093) c.enqueue(bytes.slice(o, o + 4093)); // odd sizes split UTF-8 sequences
        c.close();
      },
    });
    for (const source of [path, new File([text], 'big.jsonl'), stream]) {
      const reader = readDataset(source, { onError: 'skip' });
      const examples = await collect(reader);
      expect(examples.length).toBe(2999);
      expect(examples.every((e) => e.meta.line === e.meta.id)).toBe(true);
      expect(examples[1000].messages?.[0].content).toBe(`q1001 ${'é👋'.repeat(1001 % 97)}`);
      const file = source === path ? path : source === stream ? '<input>' : 'big.jsonl'; // a File names itself
      expect(reader.errors.map((e) => [e.file, e.line, e.field])).toEqual([[file, 1500, 'messages[0].content']]);
    }
  });

  it('refuses a source it cannot read', async () => {
    await expect(readDataset(42 as unknown as string, { onError: 'skip' }).next()).rejects.toThrow(/expected a file path, a Blob\/File/);
  });
});
