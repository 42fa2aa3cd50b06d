/**
 * Chat templates: Hugging Face Jinja chat templates rendered as transformers'
 * `apply_chat_template` renders them, plus the character span of every message in the result
 * (what assistant-only loss masks are built from).
 *
 *   const { text, turns } = renderWithSpans(BUILTIN_TEMPLATES.chatml, [
 *     { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }]);
 *   // text  === '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n'
 *   // turns[1] = { role: 'assistant', start: 52, end: 58, trainStart: 52, trainEnd: 68 }
 *   //            text.slice(52, 68) === 'Hello!<|im_end|>'
 *
 * Rendering uses @huggingface/jinja, set up like transformers' Jinja environment
 * (trim_blocks and lstrip_blocks on, `raise_exception`, `strftime_now`, a `tojson` that does not
 * HTML-escape and takes indent / separators / sort_keys / ensure_ascii), with Python's string
 * methods and jinja2's undefined-attribute error (templates/python.ts). Known differences from
 * Python jinja2 are listed in test/data/template.test.ts, which compares every built-in and
 * reference template with renders made by jinja2.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import type { Message } from './dataset.js';
import { CHATML, CHATML_TOOLS, GEMMA, LLAMA3, MISTRAL, PHI3, TULU, ZEPHYR } from './templates/builtin.js';
import { installPythonSemantics } from './templates/python.js';

/** UTF-16 offsets into the rendered text. [start, end) is the message content as rendered (a
 * template that trims content renders the trimmed content); [trainStart, trainEnd) is the content
 * plus the end-of-turn marker the template writes after it (`<|im_end|>`, `<|eot_id|>`, `</s>`),
 * without the whitespace before the next turn. For an assistant message with `tool_calls` or
 * `reasoning_content`, both spans cover everything the message writes after the generation
 * prompt (reasoning, content, calls), [start, end) without the end-of-turn marker. `foldedInto` is set when the template writes this
 * message inside another message's turn (a system prompt folded into a user turn, as Gemma and
 * Mistral do); such a span has no marker of its own (trainEnd === end). */
export interface TurnSpan { role: string; start: number; end: number; trainStart: number; trainEnd: number; foldedInto?: number }
export interface RenderedConversation { text: string; turns: TurnSpan[] }
/** A turn locateTurns could not place in the text, and why. */
export interface UnlocatedTurn { role: string; located: false; reason: string }
/** locateTurns' result: the text, every turn it could place, and (when the template rewrites
 * earlier turns) the refusal training would give. */
export interface LocatedConversation { text: string; turns: Array<TurnSpan | UnlocatedTurn>; refusal?: string }
/** A chat template with the special tokens it is rendered with. An empty bosToken / eosToken
 * means the tokenizer has none (None in tokenizer_config.json): the variable is then left
 * undefined, as transformers leaves it. `specialTokens` adds other variables the template may
 * read (pad_token, unk_token, ...). */
export interface ChatTemplate { name: string; source: string; bosToken: string; eosToken: string; specialTokens?: Record<string, string> }
export type BuiltinTemplateName = 'chatml' | 'chatml_tools' | 'zephyr' | 'tulu' | 'llama3' | 'mistral' | 'gemma' | 'phi3';

function builtin(name: BuiltinTemplateName, t: { source: string; bosToken: string; eosToken: string }): ChatTemplate {
  return Object.freeze({ name, source: t.source, bosToken: t.bosToken, eosToken: t.eosToken });
}
export const BUILTIN_TEMPLATES: Readonly<Record<BuiltinTemplateName, ChatTemplate>> = Object.freeze({
  chatml: builtin('chatml', CHATML),
  chatml_tools: builtin('chatml_tools', CHATML_TOOLS),
  zephyr: builtin('zephyr', ZEPHYR),
  tulu: builtin('tulu', TULU),
  llama3: builtin('llama3', LLAMA3),
  mistral: builtin('mistral', MISTRAL),
  gemma: builtin('gemma', GEMMA),
  phi3: builtin('phi3', PHI3),
});

/** Raised for every template failure. For `raise_exception(...)` in the template, `message` is the
 * template's own message verbatim and `raised` is true; otherwise the message says what failed.
 * `turn` is the message index when the failure concerns one message (renderWithSpans). */
export class TemplateError extends Error {
  override name = 'TemplateError';
  constructor(message: string, readonly template: string, readonly raised = false, readonly turn?: number) {
    super(message);
  }
}

export interface RenderOptions {
  addGenerationPrompt?: boolean;
  /** Override the template's special tokens. */
  bosToken?: string;
  eosToken?: string;
  /** Tool schemas (the `tools` variable; transformers passes None when there are none). */
  tools?: unknown[] | null;
  documents?: unknown[] | null;
  /** Further template variables (template kwargs such as `date_string`, `enable_thinking`). */
  variables?: Record<string, unknown>;
  /** The clock `strftime_now` reads (default: the current local time, as Python's datetime.now()). */
  now?: Date;
}

export interface SpanOptions extends RenderOptions {
  /** Throw (default) when rendering the conversation up to a turn is not a prefix of the whole
   * rendering: the template then rewrites or moves earlier text (drops past reasoning, moves the
   * system prompt), so the model would be trained on context it never sees when generating that
   * turn. False computes the spans of the whole rendering anyway. */
  requireVerbatimTurns?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Rendering

const compiled = new Map<string, Template>();
function compile(t: ChatTemplate): Template {
  let tpl = compiled.get(t.source);
  if (!tpl) {
    try {
      tpl = new Template(t.source);
      markLoopBodies(tpl.parsed);
    } catch (err) {
      throw new TemplateError(`template '${t.name}' could not be parsed: ${errorMessage(err)}`, t.name);
    }
    if (compiled.size > 64) compiled.delete(compiled.keys().next().value as string);
    compiled.set(t.source, tpl);
  }
  return tpl;
}

/** Parses the template (cached), throwing a TemplateError with the parser's own message when it
 * cannot be: call it once before rendering many rows, so a broken template is one clear error. */
export function checkTemplate(t: ChatTemplate): void {
  compile(t);
}

/** Template.render with our globals. @huggingface/jinja declares raise_exception and
 * strftime_now itself and refuses to redeclare them, so the environment is set up here, with the
 * same globals its setupGlobals declares (plus `namespace`, which Environment always has). */
function run(tpl: Template, variables: Record<string, unknown>): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    range: (start: number, stop?: number, step = 1) => pythonRange(start, stop, step),
    ...variables,
  };
  for (const [k, v] of Object.entries(globals)) env.set(k, v);
  const result = new LoopControlInterpreter(env).run(tpl.parsed) as { value: string };
  return result.value;
}

// @huggingface/jinja implements {% break %} / {% continue %} (the loopcontrols extension that
// transformers enables) by throwing out of the loop body, which drops the text the body already
// wrote in that iteration: `{% for m in [1,2,3] %}{{ m }}{% if m == 2 %}{% break %}{% endif %}{% endfor %}`
// renders "1" where jinja2 renders "12". The blocks below carry that text along with the control
// exception, and a loop body hands it back to the loop as its output for the iteration; a break is
// then replayed at the start of the next iteration, which ends the loop as before.

type RuntimeValue = { type: string; value: unknown; toString(): string };
type Block = (this: unknown, statements: object[], env: Environment) => RuntimeValue;
type LoopControl = Error & { partial?: string };
const interpreterProto = Interpreter.prototype as unknown as { evaluateBlock: Block; evaluate(this: unknown, s: object, e: Environment): RuntimeValue };
const loopBodies = new WeakSet<object>();
const pendingBreak = new WeakMap<object, LoopControl>();
/** The classes the interpreter throws for {% break %} / {% continue %} (not exported: caught once
 * here, so a minified bundle that renames them still works). */
function controlClass(type: 'Break' | 'Continue'): Function | undefined {
  try {
    const env = new Environment();
    interpreterProto.evaluate.call(new Interpreter(env), { type }, env);
  } catch (err) {
    return (err as Error).constructor;
  }
  return undefined;
}
const BreakControl = controlClass('Break');
const ContinueControl = controlClass('Continue');
const isLoopControl = (err: unknown): err is LoopControl =>
  err instanceof Error && (err.constructor === BreakControl || err.constructor === ContinueControl);

class LoopControlInterpreter extends Interpreter {}
(LoopControlInterpreter.prototype as unknown as { evaluateBlock: Block }).evaluateBlock = function (statements, env) {
  const empty = interpreterProto.evaluateBlock.call(this, [], env); // a StringValue, whose class is not exported
  const StringValue = empty.constructor as new (v: string) => RuntimeValue;
  const isBody = loopBodies.has(statements);
  if (isBody) {
    const loop = env.lookupVariable('loop') as unknown as { value: Map<string, { value: unknown }> };
    if (loop?.value?.get?.('index0')?.value === 0) pendingBreak.delete(statements);
    const replay = pendingBreak.get(statements);
    if (replay) {
      pendingBreak.delete(statements);
      replay.partial = '';
      throw replay;
    }
  }
  let result = '';
  for (const statement of statements) {
    let v: RuntimeValue;
    try {
      v = interpreterProto.evaluate.call(this, statement, env);
    } catch (err) {
      if (!isLoopControl(err)) throw err;
      const partial = result + (err.partial ?? '');
      if (!isBody) {
        err.partial = partial;
        throw err;
      }
      if (err.constructor === BreakControl) pendingBreak.set(statements, err);
      return new StringValue(partial);
    }
    if (v.type !== 'NullValue' && v.type !== 'UndefinedValue') result += v.toString();
  }
  return new StringValue(result);
};

installPythonSemantics(LoopControlInterpreter);

function markLoopBodies(node: unknown, seen = new Set<unknown>()): void {
  if (!node || typeof node !== 'object' || seen.has(node)) return;
  seen.add(node);
  if ((node as { type?: unknown }).type === 'For') loopBodies.add((node as { body: object }).body);
  for (const v of Object.values(node)) markLoopBodies(v, seen);
}

/** Python's range; own because @huggingface/jinja installs its range only through setupGlobals, which run() cannot call (see there). */
function pythonRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

/** Thrown by the template's raise_exception; carries its message through the interpreter. */
class RaisedByTemplate extends Error {}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Special-token variables as transformers passes them (special_tokens_map: absent when None). */
function tokenVariables(t: ChatTemplate, opts: RenderOptions): Record<string, string> {
  const vars: Record<string, string> = { ...(t.specialTokens ?? {}) };
  const bos = opts.bosToken ?? t.bosToken;
  const eos = opts.eosToken ?? t.eosToken;
  if (bos) vars.bos_token = bos;
  if (eos) vars.eos_token = eos;
  return vars;
}

function renderRaw(t: ChatTemplate, messages: readonly Message[], opts: RenderOptions, tokens: Record<string, string>): string {
  const tpl = compile(t);
  const now = opts.now;
  const variables: Record<string, unknown> = {
    ...tokens,
    ...(opts.variables ?? {}),
    messages: messages.map((m) => ({ ...m })),
    tools: opts.tools ?? null,
    documents: opts.documents ?? null,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    raise_exception: (message: unknown) => {
      throw new RaisedByTemplate(String(message));
    },
    strftime_now: (format: unknown) => strftime(now ?? new Date(), String(format)),
  };
  try {
    return run(tpl, variables);
  } catch (err) {
    if (err instanceof RaisedByTemplate) throw new TemplateError(err.message, t.name, true);
    throw new TemplateError(`template '${t.name}' failed to render: ${errorMessage(err)}`, t.name);
  }
}

/** Renders a conversation, exactly as transformers' apply_chat_template(tokenize=False) would. */
export function renderChat(t: ChatTemplate, messages: readonly Message[], opts: RenderOptions = {}): string {
  return renderRaw(t, messages, opts, tokenVariables(t, opts));
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's datetime.strftime in the C locale, for the directives chat templates use
 * (`%d %b %Y`, `%d %B %Y`, ...). Unknown directives are written unchanged, as glibc does.
 * Own because @huggingface/jinja's strftime names months in the runtime's locale (not Python's
 * C locale) and knows eight directives. */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const hour12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  const startOfYear = new Date(date.getFullYear(), 0, 1);
  const dayOfYear = Math.round((new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime() - startOfYear.getTime()) / 86_400_000) + 1;
  const fields: Record<string, [number | string, number]> = {
    d: [date.getDate(), 2], m: [date.getMonth() + 1, 2], Y: [date.getFullYear(), 4], y: [date.getFullYear() % 100, 2],
    H: [date.getHours(), 2], I: [hour12, 2], M: [date.getMinutes(), 2], S: [date.getSeconds(), 2], j: [dayOfYear, 3],
    b: [MONTHS[date.getMonth()].slice(0, 3), 0], B: [MONTHS[date.getMonth()], 0],
    a: [DAYS[date.getDay()].slice(0, 3), 0], A: [DAYS[date.getDay()], 0],
    p: [date.getHours() < 12 ? 'AM' : 'PM', 0], e: [String(date.getDate()).padStart(2, ' '), 0],
  };
  return format.replace(/%(-?)([a-zA-Z%])/g, (whole, noPad: string, d: string) => {
    if (d === '%') return noPad ? whole : '%';
    const f = fields[d];
    if (!f) return whole;
    const [v, width] = f;
    return typeof v === 'string' ? v : noPad ? String(v) : pad(v, width);
  });
}

// ---------------------------------------------------------------------------------------------
// Spans
//
// Three facts about a template are read off renderings of the same conversation:
// 1. Where each message's content sits: the conversation is rendered once more with every
//    content replaced by a unique placeholder, which gives the template's own text between
//    contents ("skeleton"); the real rendering is matched against it.
// 2. Whether earlier turns are reproduced verbatim: rendering messages[0..i] must be a prefix
//    of the whole rendering, up to a closing suffix the template writes after the last turn
//    (Phi-3 ends with eos when no generation prompt is asked for).
// 3. The end-of-turn marker after message i: the longest common prefix of the template text that
//    follows the content when the conversation stops at message i and when it goes on; the
//    part they share is the turn's own ending, minus trailing whitespace.
// Special tokens are rendered as same-length private-use placeholders while measuring, so an eos
// written after the last turn (Phi-3) cannot be mistaken for the start of the next turn header
// that happens to begin with the same characters. Offsets are unaffected (same lengths).

const PUA = /[\uE000-\uE1FF]/;
const contentSlot = (i: number) => `\uE100${i}\uE101`;
const SLOT_RE = /\uE100(\d+)\uE101/g;

interface Skeleton { literals: string[]; slots: number[] } // literals.length === slots.length + 1

function parseSkeleton(rendered: string): Skeleton {
  const literals: string[] = [];
  const slots: number[] = [];
  let last = 0;
  for (const m of rendered.matchAll(SLOT_RE)) {
    literals.push(rendered.slice(last, m.index));
    slots.push(Number(m[1]));
    last = (m.index ?? 0) + m[0].length;
  }
  literals.push(rendered.slice(last));
  return { literals, slots };
}

const isBlank = (s: string) => /^\s*$/.test(s);

/** Matches the real rendering against the skeleton: returns the [start, end) of every slot, or
 * null. A slot renders its content verbatim or with leading/trailing whitespace removed (trim,
 * lstrip, rstrip); literals are the template's own text. Backtracks over ambiguous cut points
 * (content that itself contains the following literal). */
function matchSkeleton(text: string, sk: Skeleton, contents: readonly string[], wildcards: ReadonlySet<number> = new Set()): Array<[number, number]> | null {
  const spans: Array<[number, number]> = [];
  const failed = new Set<string>(); // (slot, position) pairs already known not to lead to a match
  const rec = (k: number, pos: number): boolean => {
    const key = `${k}:${pos}`;
    if (failed.has(key)) return false;
    const ok = tryAt(k, pos);
    if (!ok) failed.add(key);
    return ok;
  };
  const tryAt = (k: number, pos: number): boolean => {
    const lit = sk.literals[k];
    if (!text.startsWith(lit, pos)) return false;
    pos += lit.length;
    if (k === sk.slots.length) return pos === text.length;
    if (wildcards.has(sk.slots[k])) {
      // A message whose content the template rewrites: any text, shortest first.
      for (let end = pos; end <= text.length; end++) {
        spans[k] = [pos, end];
        if (rec(k + 1, end)) return true;
      }
      return false;
    }
    const c = contents[sk.slots[k]];
    const minLen = c.trim().length;
    for (let len = Math.min(c.length, text.length - pos); len >= minLen; len--) {
      const rendered = text.slice(pos, pos + len);
      const at = len === 0 ? 0 : c.indexOf(rendered);
      if (at < 0 || !isBlank(c.slice(0, at)) || !isBlank(c.slice(at + len))) continue;
      spans[k] = [pos, pos + len];
      if (rec(k + 1, pos + len)) return true;
    }
    return false;
  };
  return rec(0, 0) ? spans : null;
}

function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** Same-length placeholders for the special-token variables (see the note above). */
function placeholderTokens(real: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  Object.keys(real).forEach((key, k) => {
    const v = real[key];
    out[key] = v.length === 0 ? v : String.fromCharCode(0xe000 + k) + '\uE0FF'.repeat(v.length - 1);
  });
  return out;
}

function describeTurn(messages: readonly Message[], i: number): string {
  return `turn ${i} (${messages[i].role})`;
}

/**
 * Renders a conversation and returns the span of every message in the text, for any template
 * (no {% generation %} tags needed). Throws a TemplateError naming the template and the turn
 * when the template rewrites or drops a message's content, or (unless requireVerbatimTurns is
 * false) does not reproduce earlier turns verbatim once the conversation goes on.
 */
export function renderWithSpans(t: ChatTemplate, messages: readonly Message[], opts: SpanOptions = {}): RenderedConversation {
  const r = spansOf(t, messages, opts, true);
  return { text: r.text, turns: r.turns as TurnSpan[] };
}

/**
 * What `webtune render --json` shows: the text, and the span of every turn that can be placed
 * in it, even when the template rewrites earlier turns (Mistral moves the system prompt into
 * the last user turn) or a message's content (DeepSeek-R1 drops reasoning). Turns that cannot
 * be placed are marked `located: false` with the reason; `refusal` is the message training
 * would refuse the conversation with. Throws only when the template itself fails.
 */
export function locateTurns(t: ChatTemplate, messages: readonly Message[], opts: RenderOptions = {}): LocatedConversation {
  return spansOf(t, messages, opts, false);
}

/** A tool-calling or reasoning assistant turn: it writes more than its content, located from
 * where the generation prompt ends. */
const writesMoreThanContent = (m: Message) =>
  m.role === 'assistant' && ((m.tool_calls?.length ?? 0) > 0 || (typeof m.reasoning_content === 'string' && m.reasoning_content !== ''));
/** Messages whose content is not given a placeholder: an empty content beside tool calls (a
 * template testing `if message.content` must take the same branch as with the real message). */
const unslotted = (m: Message) => writesMoreThanContent(m) && m.content === '';

function spansOf(t: ChatTemplate, messages: readonly Message[], opts: SpanOptions, strict: boolean): LocatedConversation {
  const gen = opts.addGenerationPrompt ?? false;
  const realTokens = tokenVariables(t, opts);
  const text = renderRaw(t, messages, opts, realTokens);
  if (messages.length === 0) return { text, turns: [] };

  // Measure in placeholder-token space when that renders the same text (it always does unless
  // the template inspects the token strings themselves, or content uses private-use characters).
  let tokens = placeholderTokens(realTokens);
  let measured = text;
  const usable = !messages.some((m) => PUA.test(m.content)) && !Object.values(realTokens).some((v) => PUA.test(v));
  if (usable) {
    measured = renderRaw(t, messages, opts, tokens);
    if (measured.length !== text.length || unplace(measured, tokens, realTokens) !== text) {
      tokens = realTokens;
      measured = text;
    }
  } else tokens = realTokens;

  const render = (msgs: readonly Message[], addGen: boolean, turn: number): string => {
    try {
      return renderRaw(t, msgs, { ...opts, addGenerationPrompt: addGen }, tokens);
    } catch (err) {
      const why = err instanceof TemplateError ? err.message : errorMessage(err);
      throw new TemplateError(`template '${t.name}': rendering the conversation up to ${describeTurn(messages, turn)} failed: ${why}`, t.name, false, turn);
    }
  };
  const withSlots = (msgs: readonly Message[]) => msgs.map((m, i) => (unslotted(m) ? m : { ...m, content: contentSlot(i) }));
  const unlocated = new Map<number, string>(); // turn -> why it has no span (only when !strict)
  const problem = (err: TemplateError): void => {
    if (strict || err.turn === undefined) throw err;
    if (!unlocated.has(err.turn)) unlocated.set(err.turn, err.message);
  };
  let refusal: string | undefined;

  // 2. Earlier turns reproduced verbatim (checked with the real contents: rewriting often depends on them).
  const full = measured;
  const fullNoGen = gen ? render(messages, false, messages.length - 1) : full;
  if (opts.requireVerbatimTurns ?? true) {
    for (let i = 0; i < messages.length; i++) {
      if (i === messages.length - 1 && !gen) break;
      let r: string;
      try {
        r = i === messages.length - 1 ? fullNoGen : render(messages.slice(0, i + 1), false, i);
      } catch (err) {
        // A template may refuse to stop at a turn no reply follows (Llama 3.2 with tools and no user
        // turn yet): no context ends there, nothing to compare.
        if (messages[i].role !== 'assistant') continue;
        throw err;
      }
      const at = commonPrefixLength(r, full);
      const tail = r.slice(at);
      if (tail && !fullNoGen.endsWith(tail)) {
        const show = (s: string) => JSON.stringify(unplace(s, tokens, realTokens).slice(at, at + 40));
        const err = new TemplateError(
          `template '${t.name}' does not reproduce ${describeTurn(messages, i)} verbatim: the conversation rendered up to that turn ` +
            `is not a prefix of the whole conversation (at character ${at} it reads ${show(r)}, the whole conversation ${show(full)}; ` +
            `the template rewrites, drops or moves earlier text, e.g. past reasoning or the system prompt), so the model would be ` +
            `trained on a context it never sees when generating that turn. Render each turn separately instead.`,
          t.name, false, i);
        if (strict) throw err;
        refusal = err.message;
        break;
      }
    }
  }

  // 1. Content spans from the skeleton.
  const contents = messages.map((m) => m.content);
  const skeletonOf = (msgs: readonly Message[], addGen: boolean, turn: number) => parseSkeleton(render(withSlots(msgs), addGen, turn));
  const sk = skeletonOf(messages, gen, messages.length - 1);
  const seen = new Map<number, number>(); // message -> its slot's index in the skeleton
  const wildcards = new Set<number>();
  sk.slots.forEach((slot, k) => {
    if (seen.has(slot)) {
      problem(new TemplateError(`template '${t.name}' writes the content of ${describeTurn(messages, slot)} more than once; its span is ambiguous.`, t.name, false, slot));
      wildcards.add(slot);
    }
    seen.set(slot, k);
  });
  messages.forEach((m, i) => {
    // A tool-calling turn whose text the template leaves out (Llama 3.2 writes only the call) is
    // still located from the generation prompt below.
    if (!seen.has(i) && !writesMoreThanContent(m)) problem(new TemplateError(`template '${t.name}' does not render the content of ${describeTurn(messages, i)}; it has no span.`, t.name, false, i));
  });
  let spans = matchSkeleton(full, sk, contents, wildcards);
  while (!spans) {
    // Name the first message whose content does not render as itself. A tool result is context,
    // never trained: its span is what the template wrote in its place (Llama 3.2 writes it as JSON).
    const bad = firstRewritten(messages, render, withSlots, wildcards);
    if (messages[bad].role === 'tool' && !wildcards.has(bad)) {
      wildcards.add(bad);
      spans = matchSkeleton(full, sk, contents, wildcards);
      continue;
    }
    problem(new TemplateError(
      `template '${t.name}' rewrites the content of ${describeTurn(messages, bad)} (it renders more or less than the content, ` +
        `e.g. drops reasoning before </think>), so the span of that turn cannot be located.`,
      t.name, false, bad));
    if (wildcards.has(bad)) throw new TemplateError(`template '${t.name}': the turns cannot be located in the rendering`, t.name);
    wildcards.add(bad);
    spans = matchSkeleton(full, sk, contents, wildcards);
  }
  const contentSpan = (i: number): [number, number] | undefined => (seen.has(i) && !unlocated.has(i) ? spans[seen.get(i) as number] : undefined);

  // 3. End-of-turn markers; folded messages; turns that write more than their content.
  const afterSlot = (s: Skeleton, i: number): string | undefined => {
    const k = s.slots.indexOf(i);
    return k < 0 ? undefined : s.literals[k + 1];
  };
  const prefixSkeletons: Array<Skeleton | null> = []; // null: the template refuses to stop at that (non-assistant) turn
  for (let i = 0; i < messages.length; i++) {
    try {
      prefixSkeletons.push(i === messages.length - 1 && !gen ? sk : skeletonOf(messages.slice(0, i + 1), false, i));
    } catch (err) {
      if (messages[i].role === 'assistant') throw err;
      prefixSkeletons.push(null);
    }
  }
  /** The template text after position `from` of the whole rendering, up to the next content. */
  const continuation = (i: number, from: number): string | undefined => {
    if (i < messages.length - 1) {
      const next = sk.slots.flatMap((slot, k) => (slot > i && spans[k][0] >= from ? [spans[k][0]] : []));
      return full.slice(from, next.length ? Math.min(...next) : full.length);
    }
    return probeAfter(messages, render, withSlots, from);
  };
  /** The end-of-turn marker ending `written` (the text of assistant turn i): the longest end of it
   * that a plain reply in place of turn i would write after its content. */
  const markerLength = (i: number, written: string): number => {
    try {
      const plain = parseSkeleton(render(withSlots([...messages.slice(0, i), { role: 'assistant', content: '' }]), false, i));
      const after = afterSlot(plain, i) ?? '';
      for (let n = Math.min(after.length, written.length); n > 0; n--) if (after.startsWith(written.slice(written.length - n))) return n;
    } catch {
      // a template that refuses a plain reply here: no marker is split off
    }
    return 0;
  };
  const turns: Array<TurnSpan | UnlocatedTurn> = [];
  for (let i = 0; i < messages.length; i++) {
    const role = messages[i].role;
    const content = contentSpan(i);
    if (writesMoreThanContent(messages[i]) && !unlocated.has(i)) {
      // Everything the message writes after the generation prompt, up to its end-of-turn marker.
      let from = content?.[0];
      try {
        const prompt = render(messages.slice(0, i), true, i);
        if (full.startsWith(prompt) && (from === undefined || prompt.length <= from)) from = prompt.length;
      } catch {
        // a template that refuses a generation prompt here: the content start is all we have
      }
      if (from === undefined) {
        problem(new TemplateError(`template '${t.name}': the text of ${describeTurn(messages, i)} cannot be located (its content is empty and the conversation rendered up to it with a generation prompt is not a prefix of the whole).`, t.name, false, i));
        turns.push({ role, located: false, reason: unlocated.get(i) as string });
        continue;
      }
      const own = render(messages.slice(0, i + 1), false, i).slice(from);
      const next = continuation(i, from);
      const shared = (next === undefined ? own : own.slice(0, commonPrefixLength(own, next))).replace(/\s+$/, '');
      const end = from + shared.length;
      turns.push({ role, start: from, end: end - markerLength(i, shared), trainStart: from, trainEnd: end });
      continue;
    }
    if (!content) {
      turns.push({ role, located: false, reason: unlocated.get(i) ?? 'not rendered' });
      continue;
    }
    const [start, end] = content;
    const prefix = prefixSkeletons[i];
    if (!prefix) {
      turns.push({ role, start, end, trainStart: start, trainEnd: end }); // no marker of its own can be told apart
      continue;
    }
    const own = afterSlot(prefix, i);
    if (own === undefined) {
      // Not written when the conversation stops here: written inside a later turn.
      const j = prefixSkeletons.findIndex((s, jj) => jj > i && !!s?.slots.includes(i));
      turns.push({ role, start, end, trainStart: start, trainEnd: end, foldedInto: j });
      continue;
    }
    const next = i < messages.length - 1 ? sk.literals[(seen.get(i) as number) + 1] : probeAfter(messages, render, withSlots);
    let shared = next === undefined ? own : own.slice(0, commonPrefixLength(own, next));
    // The marker never runs into another message's content (a slot cuts the literal).
    shared = shared.replace(/\s+$/, '');
    turns.push({ role, start, end, trainStart: start, trainEnd: end + shared.length });
  }
  return refusal === undefined ? { text, turns } : { text, turns, refusal };
}

/** The template text after the last message's content (or after position `from`) when one more
 * message follows it. */
function probeAfter(
  messages: readonly Message[], render: (m: readonly Message[], g: boolean, turn: number) => string,
  withSlots: (m: readonly Message[]) => Message[], from?: number,
): string | undefined {
  const last = messages[messages.length - 1];
  const probe: Message = { role: last.role === 'assistant' ? 'user' : 'assistant', content: 'probe' };
  try {
    if (from !== undefined) {
      // The real conversation, then the probe as a placeholder: the text from `from` up to it.
      const slot = contentSlot(messages.length);
      const rendered = render([...messages, { ...probe, content: slot }], false, messages.length);
      const at = rendered.indexOf(slot, from);
      return at < 0 ? rendered.slice(from) : rendered.slice(from, at);
    }
    const rendered = render(withSlots([...messages, probe]), false, messages.length);
    const s = parseSkeleton(rendered);
    const k = s.slots.indexOf(messages.length - 1);
    return k < 0 ? undefined : s.literals[k + 1];
  } catch {
    return undefined; // the template refuses a further message: the last turn's own text is all we have
  }
}

/** Index of the first message (not yet known to be rewritten) whose content the template does not render as itself. */
function firstRewritten(
  messages: readonly Message[], render: (m: readonly Message[], g: boolean, turn: number) => string,
  withSlots: (m: readonly Message[]) => Message[], known: ReadonlySet<number>,
): number {
  for (let i = 0; i < messages.length; i++) {
    if (known.has(i)) continue;
    const msgs = messages.slice(0, i + 1);
    const real = render(msgs, false, i);
    const s = parseSkeleton(render(withSlots(msgs), false, i));
    if (!matchSkeleton(real, s, msgs.map((m) => m.content), known)) return i;
  }
  return messages.length - 1;
}

function unplace(s: string, placeholders: Record<string, string>, real: Record<string, string>): string {
  let out = s;
  for (const key of Object.keys(real)) if (placeholders[key]) out = out.split(placeholders[key]).join(real[key]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Loading

/** A chat template from tokenizer_config.json text: `chat_template` (a string, or a list of
 * {name, template} where the one named "default" is used), bos_token / eos_token (strings or
 * AddedToken objects {content}), and the other special tokens as extra variables. */
export function templateFromTokenizerConfig(json: string | Record<string, unknown>, name = 'tokenizer_config.json', which?: string): ChatTemplate {
  let cfg: Record<string, unknown>;
  try {
    cfg = typeof json === 'string' ? (JSON.parse(json) as Record<string, unknown>) : json;
  } catch (err) {
    throw new TemplateError(`${name}: invalid JSON: ${errorMessage(err)}`, name);
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new TemplateError(`${name}: expected a JSON object`, name);
  const ct = cfg.chat_template;
  let source: string;
  if (typeof ct === 'string') source = ct;
  else if (Array.isArray(ct)) {
    const named = ct as Array<{ name?: unknown; template?: unknown }>;
    const want = which ?? 'default';
    const hit = named.find((e) => e && e.name === want);
    if (!hit || typeof hit.template !== 'string') {
      throw new TemplateError(`${name}: field "chat_template": no template named '${want}' (found ${named.map((e) => `'${String(e?.name)}'`).join(', ')})`, name);
    }
    source = hit.template;
  } else throw new TemplateError(`${name}: field "chat_template": missing (this tokenizer has no chat template)`, name);
  const token = (field: string): string | undefined => {
    const v = cfg[field];
    if (v === null || v === undefined) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
    throw new TemplateError(`${name}: field "${field}": expected a string or {"content": string}`, name);
  };
  const specialTokens: Record<string, string> = {};
  for (const f of ['unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const v = token(f);
    if (v !== undefined) specialTokens[f] = v;
  }
  return { name, source, bosToken: token('bos_token') ?? '', eosToken: token('eos_token') ?? '', specialTokens };
}

export function isBuiltinTemplate(spec: string): spec is BuiltinTemplateName {
  return Object.prototype.hasOwnProperty.call(BUILTIN_TEMPLATES, spec);
}

/** Browser-friendly loader: a built-in name, or the text of a .jinja file or tokenizer_config.json
 * (told apart by `fileName`, or by the text starting with '{' and parsing as JSON). */
export function templateFromText(textOrName: string, fileName = 'chat_template.jinja', tokens: { bosToken?: string; eosToken?: string } = {}): ChatTemplate {
  if (isBuiltinTemplate(textOrName)) return BUILTIN_TEMPLATES[textOrName];
  const looksJson = fileName.endsWith('.json') || (/^\s*\{/.test(textOrName) && isJsonObject(textOrName));
  if (looksJson) return templateFromTokenizerConfig(textOrName, fileName);
  return { name: fileName, source: textOrName, bosToken: tokens.bosToken ?? '', eosToken: tokens.eosToken ?? '' };
}

function isJsonObject(text: string): boolean {
  try {
    const v = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** A built-in name, a .jinja file path, or a tokenizer_config.json path (Node), or a File/Blob
 * (browser). A .jinja file carries no special tokens: pass them in `tokens`. */
export async function loadTemplate(spec: string | Blob, tokens: { bosToken?: string; eosToken?: string } = {}): Promise<ChatTemplate> {
  if (typeof spec !== 'string') {
    const fileName = (spec as { name?: string }).name ?? 'chat_template.jinja';
    return withTokens(templateFromText(await spec.text(), fileName, tokens), tokens);
  }
  if (isBuiltinTemplate(spec)) return withTokens(BUILTIN_TEMPLATES[spec], tokens);
  const fsName = 'node:fs/promises';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs/promises');
  let text: string;
  try {
    text = await fs.readFile(spec, 'utf8');
  } catch (err) {
    const names = Object.keys(BUILTIN_TEMPLATES).join(', ');
    throw new TemplateError(`template '${spec}' is neither a built-in template (${names}) nor a readable file: ${errorMessage(err)}`, spec);
  }
  if (spec.endsWith('.json')) return withTokens(templateFromTokenizerConfig(text, spec), tokens);
  return { name: spec, source: text, bosToken: tokens.bosToken ?? '', eosToken: tokens.eosToken ?? '' };
}

function withTokens(t: ChatTemplate, tokens: { bosToken?: string; eosToken?: string }): ChatTemplate {
  if (tokens.bosToken === undefined && tokens.eosToken === undefined) return t;
  return { ...t, bosToken: tokens.bosToken ?? t.bosToken, eosToken: tokens.eosToken ?? t.eosToken };
}
