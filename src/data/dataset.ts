/**
 * Datasets: JSONL (or a JSON array) in the formats users bring from TRL and Alpaca, validated
 * row by row and normalised to `Example`s, streamed so a large file is never held whole.
 *
 *   {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
 *   {"prompt": "2 + 2 =", "completion": " 4"}                       (or message lists)
 *   {"text": "Once upon a time"}
 *   {"instruction": "Translate", "input": "chat", "output": "cat", "system": "..."}  (Alpaca)
 *
 *   const ds = readDataset('data.jsonl', { onError: 'skip' });
 *   for await (const ex of ds) train(ex);
 *   ds.errors   // every bad row: { file: 'data.jsonl', line: 17, field: 'messages[2].role',
 *               //   message: 'data.jsonl:17: field "messages[2].role": unknown role "bot" (expected system, user, assistant)' }
 *
 * Every field a row carries besides its format's own is kept in `meta`, with the row's
 * provenance { file, line } (1-based physical line; for a JSON array, the line its element starts on).
 *
 * Tool use, as TRL reads it: a row may carry `tools` (JSON schemas, passed to the chat template),
 * an assistant message may carry `tool_calls` ([{"type": "function", "function": {"name",
 * "arguments"}}]) and `reasoning_content`, and a `tool` message carries a result (with
 * `tool_call_id` / `name` where the template reads them). Every other key of a message is kept and
 * passed to the template, as transformers passes the message dicts.
 *
 *   {"tools": [{"type": "function", "function": {"name": "add", "parameters": {...}}}],
 *    "messages": [{"role": "user", "content": "What is 2 + 3?"},
 *                 {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
 *                 {"role": "tool", "name": "add", "content": "5"},
 *                 {"role": "assistant", "content": "5"}]}
 */

export type Role = 'system' | 'user' | 'assistant' | 'tool';
export const ROLES: readonly Role[] = ['system', 'user', 'assistant', 'tool'];
/** A call the assistant makes: `arguments` is an object (or a JSON string, as OpenAI writes it). */
export interface ToolCall { type: 'function'; function: { name: string; arguments: Record<string, unknown> | string }; id?: string }
export interface Message {
  role: Role;
  content: string;
  tool_calls?: ToolCall[];
  /** On a tool message: the call it answers, and the tool's name. */
  tool_call_id?: string;
  name?: string;
  reasoning_content?: string;
  // Any other key a message carries is kept (untyped) and passed to the template unchanged.
}
export interface Example {
  format: 'messages' | 'prompt_completion' | 'text';
  /** Tool schemas of the row (the template's `tools` variable). */
  tools?: Record<string, unknown>[];
  messages?: Message[]; // 'messages' rows and Alpaca rows (instruction [+ input] -> user, output -> assistant, optional system)
  prompt?: Message[] | string;
  completion?: Message[] | string;
  text?: string;
  meta: Record<string, unknown>; // every extra field, plus { file, line }
}
export interface RowError { file: string; line: number; field: string; message: string }
export interface Where { file: string; line: number }

/** A bad row, thrown when reading with onError: 'stop' (and by parseRowOrThrow). */
export class DatasetError extends Error {
  override name = 'DatasetError';
  constructor(readonly error: RowError) {
    super(error.message);
  }
}

function rowError(where: Where, field: string, detail: string): RowError {
  const at = field ? `field "${field}": ` : '';
  return { file: where.file, line: where.line, field, message: `${where.file}:${where.line}: ${at}${detail}` };
}

// ---------------------------------------------------------------------------------------------
// One row

/** A bad field, thrown by the validators (parseMessages) and turned into a RowError by parseRow. */
export class FieldError extends Error {
  override name = 'FieldError';
  constructor(readonly field: string, detail: string) {
    super(detail);
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectString(v: unknown, field: string, what = 'a string'): string {
  if (v === undefined) throw new FieldError(field, 'missing');
  if (typeof v !== 'string') throw new FieldError(field, `expected ${what}, got ${typeName(v)}`);
  return v;
}

/** Validates a list of messages; `field` names the list ("messages", "prompt").
 * Throws a FieldError naming the element ("messages[2].role", "messages[1].tool_calls[0].function.name"). */
export function parseMessages(list: unknown, field: string): Message[] {
  if (!Array.isArray(list)) throw new FieldError(field, `expected a list of messages, got ${typeName(list)}`);
  if (list.length === 0) throw new FieldError(field, 'empty conversation');
  return list.map((m, i) => {
    const f = `${field}[${i}]`;
    if (!isObject(m)) throw new FieldError(f, `expected a message object {"role", "content"}, got ${typeName(m)}`);
    if (m.role === undefined) throw new FieldError(`${f}.role`, 'missing role');
    if (typeof m.role !== 'string') throw new FieldError(`${f}.role`, `expected a string, got ${typeName(m.role)}`);
    if (!(ROLES as readonly string[]).includes(m.role)) throw new FieldError(`${f}.role`, `unknown role "${m.role}" (expected ${ROLES.join(', ')})`);
    const calls = m.tool_calls === undefined || m.tool_calls === null ? undefined : parseToolCalls(m.tool_calls, `${f}.tool_calls`);
    if (calls && m.role !== 'assistant') throw new FieldError(`${f}.tool_calls`, `only assistant messages make tool calls (this one is "${m.role}")`);
    // A message that only calls tools often has no content (or null): it renders as the empty string.
    const content = calls && (m.content === undefined || m.content === null) ? '' : m.content;
    if (content === undefined) throw new FieldError(`${f}.content`, 'missing content');
    if (typeof content !== 'string') throw new FieldError(`${f}.content`, `expected a string, got ${typeName(content)}`);
    for (const key of ['tool_call_id', 'name', 'reasoning_content'] as const) {
      if (m[key] !== undefined && m[key] !== null && typeof m[key] !== 'string') throw new FieldError(`${f}.${key}`, `expected a string, got ${typeName(m[key])}`);
    }
    const out: Message = { ...m, role: m.role as Role, content };
    if (calls) out.tool_calls = calls;
    else delete out.tool_calls; // null: no calls (a template testing `'tool_calls' in message` sees none)
    return out;
  });
}

function parseToolCalls(v: unknown, field: string): ToolCall[] {
  if (!Array.isArray(v)) throw new FieldError(field, `expected a list of tool calls, got ${typeName(v)}`);
  return v.map((c, k) => {
    const f = `${field}[${k}]`;
    if (!isObject(c)) throw new FieldError(f, `expected {"type": "function", "function": {"name", "arguments"}}, got ${typeName(c)}`);
    if (c.type !== undefined && c.type !== 'function') throw new FieldError(`${f}.type`, `expected "function", got ${JSON.stringify(c.type)}`);
    if (!isObject(c.function)) throw new FieldError(`${f}.function`, c.function === undefined ? 'missing' : `expected {"name", "arguments"}, got ${typeName(c.function)}`);
    expectString(c.function.name, `${f}.function.name`);
    const args = c.function.arguments;
    if (args === undefined) throw new FieldError(`${f}.function.arguments`, 'missing');
    if (!isObject(args) && typeof args !== 'string') throw new FieldError(`${f}.function.arguments`, `expected an object or a JSON string, got ${typeName(args)}`);
    if (c.id !== undefined && typeof c.id !== 'string') throw new FieldError(`${f}.id`, `expected a string, got ${typeName(c.id)}`);
    return { ...c, type: 'function' } as ToolCall;
  });
}

/** Validates a row's `tools`: a list of JSON-schema objects ({"type": "function", "function": {"name", ...}}). */
export function parseTools(v: unknown, field = 'tools'): Record<string, unknown>[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new FieldError(field, `expected a list of tool schemas, got ${typeName(v)}`);
  return v.map((t, k) => {
    if (!isObject(t)) throw new FieldError(`${field}[${k}]`, `expected a tool schema object, got ${typeName(t)}`);
    if (t.type === 'function' && !(isObject(t.function) && typeof t.function.name === 'string')) {
      throw new FieldError(`${field}[${k}].function.name`, 'missing (a function tool needs {"function": {"name", "parameters"}})');
    }
    return t;
  });
}

function stringOrMessages(v: unknown, field: string): string | Message[] {
  if (v === undefined) throw new FieldError(field, 'missing');
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return parseMessages(v, field);
  throw new FieldError(field, `expected a string or a list of messages, got ${typeName(v)}`);
}

/** Fields a format consumes; the rest of the row goes to meta. */
const FORMAT_FIELDS = {
  messages: ['messages'],
  prompt_completion: ['prompt', 'completion'],
  alpaca: ['instruction', 'input', 'output', 'system'],
  text: ['text'],
} as const;

function normalise(obj: Record<string, unknown>): { example: Omit<Example, 'meta'>; used: readonly string[] } {
  // Precedence when a row has several: messages > prompt/completion > Alpaca > text
  // (e.g. ultrachat rows carry both "prompt" and "messages": the conversation is the data).
  if ('messages' in obj) return { example: { format: 'messages', messages: parseMessages(obj.messages, 'messages') }, used: FORMAT_FIELDS.messages };
  if ('prompt' in obj || 'completion' in obj) {
    if (!('completion' in obj)) throw new FieldError('completion', 'missing (a "prompt" row needs a "completion"; prompt-only rows are for RL, not SFT)');
    if (!('prompt' in obj)) throw new FieldError('prompt', 'missing (a "completion" row needs a "prompt")');
    const prompt = stringOrMessages(obj.prompt, 'prompt');
    const completion = stringOrMessages(obj.completion, 'completion');
    if (typeof prompt !== typeof completion) {
      throw new FieldError('completion', `expected ${typeof prompt === 'string' ? 'a string' : 'a list of messages'} like "prompt", got ${typeName(obj.completion)}`);
    }
    return { example: { format: 'prompt_completion', prompt, completion }, used: FORMAT_FIELDS.prompt_completion };
  }
  if ('instruction' in obj || 'output' in obj) {
    const instruction = expectString(obj.instruction, 'instruction');
    const output = expectString(obj.output, 'output');
    const input = obj.input === undefined || obj.input === null ? '' : expectString(obj.input, 'input');
    const system = obj.system === undefined || obj.system === null ? '' : expectString(obj.system, 'system');
    const messages: Message[] = [];
    if (system) messages.push({ role: 'system', content: system });
    // The usual Alpaca convention: the input follows the instruction after a blank line.
    messages.push({ role: 'user', content: input ? `${instruction}\n\n${input}` : instruction });
    messages.push({ role: 'assistant', content: output });
    return { example: { format: 'messages', messages }, used: FORMAT_FIELDS.alpaca };
  }
  if ('text' in obj) return { example: { format: 'text', text: expectString(obj.text, 'text') }, used: FORMAT_FIELDS.text };
  const keys = Object.keys(obj);
  throw new FieldError('', `unknown format: a row needs "messages", "prompt" + "completion", "text", or "instruction" + "output" ` +
    `(found ${keys.length ? keys.map((k) => `"${k}"`).join(', ') : 'no fields'})`);
}

export type ParseResult = { example: Example; error?: undefined } | { example?: undefined; error: RowError };

/** Validates and normalises one parsed row. Never throws. */
export function parseRow(obj: unknown, where: Where): ParseResult {
  if (!isObject(obj)) return { error: rowError(where, '', `expected a JSON object, got ${typeName(obj)}`) };
  try {
    const { example, used } = normalise(obj);
    const tools = parseTools(obj.tools);
    const meta: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) if (!used.includes(k) && k !== 'tools') meta[k === 'file' || k === 'line' ? `row_${k}` : k] = v;
    if (tools) example.tools = tools;
    meta.file = where.file;
    meta.line = where.line;
    return { example: { ...example, meta } };
  } catch (err) {
    if (err instanceof FieldError) return { error: rowError(where, err.field, err.message) };
    throw err;
  }
}

/** parseRow on the text of one JSONL line (the demo's editor). Never throws. */
export function parseLine(text: string, where: Where): ParseResult {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    return { error: rowError(where, '', `invalid JSON: ${err instanceof Error ? err.message : String(err)}`) };
  }
  return parseRow(obj, where);
}

// ---------------------------------------------------------------------------------------------
// Streaming sources -> text chunks -> rows

export type DatasetSource = string | Blob | ReadableStream<Uint8Array> | AsyncIterable<string>;

export interface ReadOptions {
  /** Name used in messages and meta.file (default: the path, the File's name, or "<input>"). */
  file?: string;
  /** 'stop': throw a DatasetError at the first bad row (after every good row before it);
   * 'skip': leave bad rows out and collect them in `errors`. */
  onError: 'stop' | 'skip';
  /** Called for every bad row as it is met (both modes). */
  onRowError?: (error: RowError) => void;
}

export interface ReadSummary { rows: number; examples: number; errors: RowError[] }

/** The examples as an async generator (its return value is the summary), with the bad rows
 * met so far in `errors`. */
export type DatasetReader = AsyncGenerator<Example, ReadSummary, undefined> & { readonly errors: RowError[]; readonly file: string };

async function* streamBytes(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function* nodeFileBytes(path: string): AsyncGenerator<Uint8Array> {
  const fsName = 'node:fs';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  try {
    yield* fs.createReadStream(path) as AsyncIterable<Uint8Array>;
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new Error(`${path}: cannot read${code === 'EISDIR' ? ': it is a directory, not a data file' : ` (${(e as Error).message})`}`);
  }
}

/**
 * Bytes -> text, one whole line per chunk (split at '\n' bytes, which never occur inside a
 * multi-byte character), each decoded strictly: a line that is not valid UTF-8 is decoded with
 * U+FFFD for the bad bytes and its 1-based number recorded in `badLines`, so the row is reported
 * rather than trained with replaced characters.
 */
async function* utf8Lines(bytes: AsyncIterable<Uint8Array>, badLines: Set<number>): AsyncGenerator<string> {
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const lenient = new TextDecoder('utf-8', { ignoreBOM: true });
  let line = 1;
  let pending: Uint8Array[] = [];
  const decode = (parts: Uint8Array[]): string => {
    const buf = parts.length === 1 ? parts[0] : concatBytes(parts);
    try {
      return strict.decode(buf);
    } catch {
      badLines.add(line);
      return lenient.decode(buf);
    }
  };
  for await (const chunk of bytes) {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      pending.push(chunk.subarray(from, nl + 1));
      yield decode(pending);
      pending = [];
      line++;
      from = nl + 1;
    }
    if (from < chunk.length) pending.push(chunk.subarray(from));
  }
  if (pending.length) yield decode(pending);
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Text chunks of any source. An AsyncIterable<string> yields lines (a newline is added after each).
 * Byte sources record the lines that are not valid UTF-8 in `badLines`. */
function chunksOf(source: DatasetSource, badLines: Set<number>): AsyncIterable<string> {
  if (typeof source === 'string') return utf8Lines(nodeFileBytes(source), badLines);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return utf8Lines(streamBytes(source.stream() as ReadableStream<Uint8Array>), badLines);
  if (typeof ReadableStream !== 'undefined' && source instanceof ReadableStream) return utf8Lines(streamBytes(source), badLines);
  if (typeof (source as AsyncIterable<string>)[Symbol.asyncIterator] === 'function') {
    return (async function* () {
      for await (const line of source as AsyncIterable<string>) yield line.endsWith('\n') ? line : `${line}\n`;
    })();
  }
  throw new TypeError('readDataset: expected a file path, a Blob/File, a ReadableStream<Uint8Array> or an AsyncIterable<string> of lines');
}

interface RawRow { text: string; line: number }
type Piece = RawRow | { error: RowError };

/** Splits JSONL text into lines (CRLF or LF), numbered from 1; blank lines are skipped. */
async function* jsonlRows(first: string, rest: AsyncIterator<string>): AsyncGenerator<RawRow> {
  let buf = first;
  let line = 1;
  for (;;) {
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (text.trim()) yield { text, line };
      line++;
    }
    const next = await rest.next();
    if (next.done) break;
    buf += next.value;
  }
  if (buf.trim()) yield { text: buf.replace(/\r$/, ''), line };
}

/** Splits a JSON array (`[ {...}, {...} ]`) into element texts without parsing it whole,
 * numbering each by the line its element starts on. */
async function* jsonArrayRows(first: string, rest: AsyncIterator<string>, file: string): AsyncGenerator<Piece> {
  let depth = 0; // 1 inside the top-level array
  let inString = false;
  let escaped = false;
  let line = 1;
  let elem: string[] = [];
  let elemLine = 0;
  let started = false;
  let closed = false;
  const structural = (detail: string): Piece => ({ error: rowError({ file, line }, '', detail) });
  let chunk: string | undefined = first;
  while (chunk !== undefined) {
    let from = 0; // start of the element text not yet copied into elem
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i];
      if (ch === '\n') line++;
      if (inString) {
        if (escaped) escaped = false;
        else if (ch === '\\') escaped = true;
        else if (ch === '"') inString = false;
        continue;
      }
      if (closed) {
        if (!/\s/.test(ch)) { yield structural(`unexpected text after the closing "]" of the JSON array`); return; }
        continue;
      }
      if (!started) {
        if (ch === '[') { started = true; depth = 1; from = i + 1; elemLine = 0; }
        else if (!/\s/.test(ch) && ch !== '\uFEFF') { yield structural('expected a JSON array'); return; }
        continue;
      }
      if (ch === '"') inString = true;
      if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') depth--;
      if (depth === 0 || (depth === 1 && ch === ',')) {
        elem.push(chunk.slice(from, i));
        const text = elem.join('');
        elem = [];
        from = i + 1;
        if (text.trim()) yield { text, line: elemLine || line };
        else if (ch === ',') { yield structural('empty element in the JSON array'); return; }
        elemLine = 0;
        if (depth === 0) closed = true;
        continue;
      }
      if (depth < 0) { yield structural('unbalanced brackets in the JSON array'); return; }
      if (!elemLine && !/\s/.test(ch)) elemLine = line;
    }
    if (started && !closed) elem.push(chunk.slice(from));
    const next = await rest.next();
    chunk = next.done ? undefined : next.value;
  }
  if (!started) yield structural('empty input: expected JSONL rows or a JSON array');
  else if (!closed) yield structural('unterminated JSON array (missing "]")');
}

/** Rows of a source: JSON array if its first non-blank character is '[', JSONL otherwise. */
async function* rawRows(source: DatasetSource, file: string, badLines: Set<number>): AsyncGenerator<Piece> {
  const it = chunksOf(source, badLines)[Symbol.asyncIterator]();
  let first = '';
  // Read until the first non-blank character decides the layout.
  for (;;) {
    const next = await it.next();
    if (next.done) break;
    first += next.value;
    if (/\S/.test(first.replace(/^\uFEFF/, ''))) break;
  }
  first = first.replace(/^\uFEFF/, '');
  if (/^\s*\[/.test(first)) yield* jsonArrayRows(first, it, file);
  else yield* jsonlRows(first, it);
}

function defaultName(source: DatasetSource, file?: string): string {
  if (file) return file;
  if (typeof source === 'string') return source;
  if (typeof Blob !== 'undefined' && source instanceof Blob && typeof (source as File).name === 'string' && (source as File).name) return (source as File).name;
  return '<input>';
}

/**
 * Streams the examples of a dataset. Good rows are never lost: with onError 'stop' every good
 * row before the first bad one is yielded, then a DatasetError is thrown; with 'skip' bad rows
 * are collected in `reader.errors` (and the generator's return value) and reading goes on.
 */
export function readDataset(source: DatasetSource, opts: ReadOptions): DatasetReader {
  const file = defaultName(source, opts.file);
  const errors: RowError[] = [];
  async function* run(): AsyncGenerator<Example, ReadSummary, undefined> {
    let rows = 0;
    let examples = 0;
    const bad = (e: RowError) => {
      errors.push(e);
      opts.onRowError?.(e);
      if (opts.onError === 'stop') throw new DatasetError(e);
    };
    const badUtf8 = new Set<number>();
    for await (const piece of rawRows(source, file, badUtf8)) {
      if ('error' in piece) {
        bad(piece.error);
        break; // a broken array structure ends the input
      }
      rows++;
      const where = { file, line: piece.line };
      const lastLine = piece.line + (piece.text.match(/\n/g)?.length ?? 0);
      const badLine = [...badUtf8].find((l) => l >= piece.line && l <= lastLine);
      const r: ParseResult = badLine !== undefined
        ? { error: rowError({ file, line: badLine }, '', 'not valid UTF-8 text (re-encode the file as UTF-8)') }
        : parseLine(piece.text, where);
      if (r.error) bad(r.error);
      else {
        examples++;
        yield r.example;
      }
    }
    return { rows, examples, errors };
  }
  return Object.assign(run(), { errors, file });
}

/** Reads a whole dataset into memory: the examples and every bad row (never throws for bad rows). */
export async function loadDataset(source: DatasetSource, opts: Omit<ReadOptions, 'onError'> = {}): Promise<{ examples: Example[]; errors: RowError[] }> {
  const reader = readDataset(source, { ...opts, onError: 'skip' });
  const examples: Example[] = [];
  for await (const ex of reader) examples.push(ex);
  return { examples, errors: reader.errors };
}
