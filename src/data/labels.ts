/**
 * Labels: which tokens of a rendered example the loss trains on. Hugging Face convention:
 * `labels[i] = inputIds[i]` where trained, -100 where not, unshifted (the loss shifts by one:
 * logits at t predict labels[t + 1], so labels[0] never counts).
 *
 * The whole rendered text is tokenized once, then token i is trained iff its UTF-16 span
 * [s, e) overlaps a trained character range [a, b): s < b && e > a.
 * Boundary rule: a token that straddles the edge of a trained range (e.g. ' Hello' whose
 * space belongs to the prompt) IS trained, because the model has to emit that token to
 * produce the trained text; this is also what TRL's assistant masks give (char_to_token marks
 * every token holding a trained character). Empty-span tokens are never trained.
 *
 * Mask modes (TRL names where they exist):
 * - `assistant`: every assistant turn, content + end-of-turn marker (TRL assistant_only_loss).
 * - `last`: only the final assistant turn (earlier turns are context).
 * - `unroll`: one example per assistant turn k: the conversation up to and including turn k,
 *    only turn k trained (no later turns in the input).
 * Tool use: an assistant message that calls tools is trained (the call is what the model must
 * learn to emit); `tool` messages (results) are context, never trained. A tool exchange is part
 * of the assistant's turn: in `last`, `completion` and `unroll`, "a turn" is every assistant
 * message between one user (or system) message and the next, calls and final answer alike.
 *
 *   user: What is 12 times 7?           context
 *   assistant: <tool_call>...           trained    } one assistant turn
 *   tool: 84                            context    }
 *   assistant: 84                       trained    }
 * - `completion`: prompt/completion rows train the completion (TRL completion_only_loss);
 *    on messages rows it means the final assistant turn (the completion of that prompt).
 * - `all`: every token.
 * Text rows (`{"text"}`) train every token whatever the mode, with eos appended as TRL does
 * for language-modeling data; string prompt/completion rows are concatenated with no template
 * and eos appended to the completion (TRL), message-list ones rendered with the template.
 *
 * The end-of-turn marker (`<|im_end|>`) is trained by default. Turning it off
 * (`trainEndOfTurn: false`) gives a model that never learns to stop: at inference it runs on
 * into a made-up next turn until max_new_tokens. Only do it when something else ends turns.
 */
import type { Example, Message } from './dataset.js';
import type { ChatTemplate, RenderedConversation } from './template.js';
import { renderWithSpans } from './template.js';
import type { Tokenizer } from './tokenizer.js';

export type MaskMode = 'assistant' | 'last' | 'unroll' | 'completion' | 'all';
export const MASK_MODES: readonly MaskMode[] = ['assistant', 'last', 'unroll', 'completion', 'all'];
/** What to do with an example longer than maxLength: drop it, keep its first maxLength tokens,
 * or keep its last maxLength tokens (dropping the oldest context). */
export type Truncation = 'drop' | 'keep_start' | 'keep_end';
/** The label of a position that is not trained (transformers' and PyTorch's ignore_index); the one definition every module imports. */
export const IGNORE_INDEX = -100;

export interface TokenizedExample { inputIds: number[]; labels: number[]; meta: Record<string, unknown> }

/** Why an example was not emitted. */
export type DropReason = 'too_long' | 'no_trained_tokens' | 'no_trained_tokens_after_truncation' | 'special_token_forgery' | 'render_error';
export interface DroppedExample { reason: DropReason; detail: string; meta: Record<string, unknown> }

export interface LabelOptions {
  mask: MaskMode;
  /** Train the end-of-turn marker (default true; see the module comment before turning it off). */
  trainEndOfTurn?: boolean;
  maxLength?: number;
  truncation?: Truncation; // default 'keep_start'
  /** Drop rows whose message text contains a special token's text (default false: flag only). */
  rejectSpecialTokenForgery?: boolean;
  /** Encode special-token text inside message / text content as ordinary text (default false:
   * it becomes the special token, and is only flagged). The template's own markers stay special. */
  literalSpecialTokens?: boolean;
}

/** The outcome of labelling one dataset row. */
export interface LabelResult {
  examples: TokenizedExample[];
  dropped: DroppedExample[];
  /** Emitted examples that were cut to maxLength. */
  truncated: number;
  /** Special-token strings found inside message / text content (possible forgery). */
  forgedSpecials: string[];
}

/** Number of trained positions the loss can see: labels[0] never counts (the loss shifts by one). */
export function countTrainedLabels(labels: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/** A labelled token sequence; `partial` when only a prefix of a long text was tokenized. */
export interface LabelledText { inputIds: number[]; labels: number[]; offsets: Array<[number, number]>; partial?: boolean }

/**
 * Tokenizes `text` and labels every token whose span overlaps one of `ranges` (UTF-16
 * [start, end), any order). `literal`: ranges whose special-token text is encoded as ordinary
 * text. `maxTokens`: only the first maxTokens tokens are needed (truncation keeps the start), so
 * a long text is tokenized only as far as needed (see tokenizedPrefix).
 */
export function labelText(
  tokenizer: Tokenizer, text: string, ranges: ReadonlyArray<readonly [number, number]>,
  opts: { literal?: ReadonlyArray<readonly [number, number]>; maxTokens?: number } = {},
): LabelledText {
  const { ids, offsets, partial } = tokenizedPrefix(tokenizer, text, opts.literal, opts.maxTokens);
  const sorted = ranges.filter(([a, b]) => b > a).slice().sort((x, y) => x[0] - y[0]);
  const labels = ids.map((id, i) => {
    const [s, e] = offsets[i];
    if (e <= s) return IGNORE_INDEX;
    for (const [a, b] of sorted) {
      if (a >= e) break;
      if (s < b && e > a) return id;
    }
    return IGNORE_INDEX;
  });
  return { inputIds: ids, labels, offsets, ...(partial ? { partial } : {}) };
}

/**
 * Tokens of `text`, or, when it is far longer than `maxTokens` could need, of a prefix that ends
 * where a run of whitespace starts and that yields more than maxTokens tokens (a 5 MB row is not
 * tokenized whole to keep its first 512 tokens). Byte-level pre-tokenizers split before such a
 * run, so the prefix's tokens are the whole text's first tokens.
 */
function tokenizedPrefix(tokenizer: Tokenizer, text: string, literal: ReadonlyArray<readonly [number, number]> | undefined, maxTokens: number | undefined): { ids: number[]; offsets: Array<[number, number]>; partial: boolean } {
  const whole = () => ({ ...tokenizer.encode(text, { literal }), partial: false });
  if (maxTokens === undefined) return whole();
  // A token covers at most a few dozen characters in practice; start there and double.
  for (let budget = (maxTokens + 64) * 16; budget * 2 < text.length; budget *= 2) {
    const ws = /(?<=\S)\s/g;
    ws.lastIndex = budget;
    const m = ws.exec(text);
    if (!m || m.index >= text.length) break;
    const cut = m.index;
    const r = tokenizer.encode(text.slice(0, cut), { literal: literal?.map(([a, b]) => [Math.min(a, cut), Math.min(b, cut)] as const) });
    if (r.ids.length > maxTokens) return { ...r, partial: true };
  }
  return whole();
}

/** UTF-16 ranges of special-token text inside `text`[from, to). */
function specialTextRanges(text: string, from: number, to: number, specials: readonly string[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const part = text.slice(from, to);
  for (const t of specials) {
    if (!t) continue;
    for (let i = part.indexOf(t); i >= 0; i = part.indexOf(t, i + t.length)) out.push([from + i, from + i + t.length]);
  }
  return out;
}

/** Special-token strings occurring in `s`. */
function forgeries(s: string, specials: readonly string[]): string[] {
  return specials.filter((t) => t.length > 0 && s.includes(t));
}

function messagesOf(ex: Example): Message[] {
  if (ex.format === 'messages') return ex.messages ?? [];
  if (ex.format === 'prompt_completion' && Array.isArray(ex.prompt) && Array.isArray(ex.completion)) return [...ex.prompt, ...ex.completion];
  return [];
}

/** Applies maxLength/truncation to one labelled sequence; null when dropped. */
function fit(
  seq: LabelledText, opts: LabelOptions, meta: Record<string, unknown>, out: LabelResult,
): TokenizedExample | null {
  const max = opts.maxLength;
  let { inputIds, labels } = seq;
  let cut = false;
  const total = seq.partial ? `more than ${inputIds.length}` : `${inputIds.length}`;
  if (countTrainedLabels(labels) === 0 && seq.partial) {
    out.dropped.push({ reason: 'no_trained_tokens_after_truncation', detail: `${total} tokens cut to ${max} (keep_start) left no trained token`, meta });
    return null;
  }
  if (countTrainedLabels(labels) === 0) {
    out.dropped.push({ reason: 'no_trained_tokens', detail: `no token is trained in mask mode '${opts.mask}'`, meta });
    return null;
  }
  if (max !== undefined && inputIds.length > max) {
    const how = opts.truncation ?? 'keep_start';
    if (how === 'drop') {
      out.dropped.push({ reason: 'too_long', detail: `${total} tokens > max length ${max}`, meta });
      return null;
    }
    const from = how === 'keep_start' ? 0 : inputIds.length - max;
    inputIds = inputIds.slice(from, from + max);
    labels = labels.slice(from, from + max);
    cut = true;
    if (countTrainedLabels(labels) === 0) {
      out.dropped.push({ reason: 'no_trained_tokens_after_truncation', detail: `${total} tokens cut to ${max} (${how}) left no trained token`, meta });
      return null;
    }
  }
  if (cut) out.truncated++;
  return { inputIds, labels, meta: cut ? { ...meta, truncated: true } : meta };
}

/** The assistant's turns: the indices of the assistant messages between one user or system
 * message and the next (tool calls, tool results between them and the final answer form one
 * turn; tool messages themselves are never listed). */
export function assistantTurns(messages: readonly Message[]): number[][] {
  const turns: number[][] = [];
  let current: number[] = [];
  messages.forEach((m, i) => {
    if (m.role === 'assistant') current.push(i);
    else if (m.role !== 'tool' && current.length) {
      turns.push(current);
      current = [];
    }
  });
  if (current.length) turns.push(current);
  return turns;
}

/** The trained character range of a turn. */
function turnRange(r: RenderedConversation, i: number, trainEndOfTurn: boolean): [number, number] {
  const t = r.turns[i];
  return trainEndOfTurn ? [t.trainStart, t.trainEnd] : [t.start, t.end];
}

/**
 * Labels one dataset row: renders it (chat template for messages), tokenizes, masks,
 * truncates. Returns zero or more examples (more than one only in `unroll` mode) and what was
 * dropped and why; never an example with zero trained tokens.
 */
export function labelExample(ex: Example, template: ChatTemplate | null, tokenizer: Tokenizer, opts: LabelOptions): LabelResult {
  const out: LabelResult = { examples: [], dropped: [], truncated: 0, forgedSpecials: [] };
  const meta = ex.meta ?? {};
  const eot = opts.trainEndOfTurn ?? true;
  const specials = tokenizer.specialTokens;
  const eos = tokenizer.eosToken;

  // Forgery: special-token text typed inside content would encode as the real special id.
  // A text row or a string completion may end with eos on purpose (TRL accepts that): not forgery.
  const contents: Array<[string, boolean]> = ex.format === 'text' ? [[ex.text ?? '', true]]
    : ex.format === 'prompt_completion' && typeof ex.prompt === 'string' ? [[ex.prompt, false], [String(ex.completion ?? ''), true]]
    : messagesOf(ex).map((m) => [m.content, false]);
  const forged = new Set<string>();
  for (const [c, eosOk] of contents) {
    const body = eosOk && c.endsWith(eos) ? c.slice(0, -eos.length) : c;
    for (const f of forgeries(body, specials)) forged.add(f);
  }
  out.forgedSpecials = [...forged];
  if (forged.size > 0 && opts.rejectSpecialTokenForgery) {
    out.dropped.push({ reason: 'special_token_forgery', detail: `content contains ${[...forged].join(', ')}`, meta });
    return out;
  }

  // Only the first maxLength tokens are kept (keep_start), or only their count matters (drop).
  const truncation = opts.truncation ?? 'keep_start';
  const maxTokens = opts.maxLength !== undefined && truncation !== 'keep_end' ? opts.maxLength : undefined;
  /** Tokenizes and labels `text`; `content` holds the UTF-16 ranges written by the user (not the template). */
  const label = (text: string, ranges: ReadonlyArray<readonly [number, number]>, content: ReadonlyArray<readonly [number, number]>) => {
    const literal = opts.literalSpecialTokens && forged.size ? content.flatMap(([a, b]) => specialTextRanges(text, a, b, [...forged])) : undefined;
    return labelText(tokenizer, text, ranges, { literal, maxTokens });
  };
  const emit = (seq: LabelledText, m: Record<string, unknown>) => {
    const e = fit(seq, opts, m, out);
    if (e) out.examples.push(e);
  };

  // Text rows: language modeling, everything trained, eos appended (TRL).
  if (ex.format === 'text') {
    const body = ex.text ?? '';
    const text = body.endsWith(eos) ? body : body + eos;
    emit(label(text, [[0, text.length]], [[0, body.endsWith(eos) ? body.length - eos.length : body.length]]), meta);
    return out;
  }

  // String prompt/completion: no template, prompt + completion + eos, completion (+ eos) trained.
  if (ex.format === 'prompt_completion' && typeof ex.prompt === 'string') {
    const completion = String(ex.completion ?? '');
    const text = ex.prompt + (completion.endsWith(eos) ? completion : completion + eos);
    const from = opts.mask === 'all' ? 0 : ex.prompt.length;
    const completionEnd = ex.prompt.length + (completion.endsWith(eos) ? completion.length - eos.length : completion.length);
    emit(label(text, [[from, text.length]], [[0, ex.prompt.length], [ex.prompt.length, completionEnd]]), meta);
    return out;
  }

  if (!template) throw new Error(`a chat template is needed for ${ex.format} rows (${String(meta.file ?? '')}:${String(meta.line ?? '')})`);
  const messages = messagesOf(ex);
  const render = (msgs: Message[]): RenderedConversation | null => {
    try {
      return renderWithSpans(template, msgs, { tools: ex.tools ?? null });
    } catch (e) {
      out.dropped.push({ reason: 'render_error', detail: (e as Error).message, meta });
      return null;
    }
  };
  // Which assistant messages are trained: for prompt/completion lists, those in the completion.
  const firstTrainable = ex.format === 'prompt_completion' ? (ex.prompt as Message[]).length : 0;
  const turnsOfAssistant = assistantTurns(messages).map((t) => t.filter((i) => i >= firstTrainable)).filter((t) => t.length > 0);
  const trainable = turnsOfAssistant.flat();
  const lastTurn = turnsOfAssistant[turnsOfAssistant.length - 1] ?? [];

  if (opts.mask === 'unroll') {
    if (trainable.length === 0) {
      out.dropped.push({ reason: 'no_trained_tokens', detail: 'no assistant turn to unroll', meta });
      return out;
    }
    for (const [k, turn] of turnsOfAssistant.entries()) {
      const r = render(messages.slice(0, turn[turn.length - 1] + 1));
      if (!r) return out;
      emit(label(r.text, turn.map((i) => turnRange(r, i, eot)), contentRanges(r)), { ...meta, turn: k });
    }
    return out;
  }

  const r = render(messages);
  if (!r) return out;
  let ranges: Array<[number, number]>;
  if (opts.mask === 'all') ranges = [[0, r.text.length]];
  else if (opts.mask === 'assistant' && ex.format === 'messages') ranges = trainable.map((i) => turnRange(r, i, eot));
  else if (opts.mask === 'assistant' || opts.mask === 'completion') {
    // prompt/completion lists: the completion's assistant turns; messages + 'completion': the last one.
    ranges = (ex.format === 'prompt_completion' ? trainable : lastTurn).map((i) => turnRange(r, i, eot));
  } else ranges = lastTurn.map((i) => turnRange(r, i, eot)); // 'last'
  emit(label(r.text, ranges, contentRanges(r)), meta);
  return out;
}

/** Where each message's content lies in a rendering. */
function contentRanges(r: RenderedConversation): Array<[number, number]> {
  return r.turns.map((t) => [t.start, t.end]);
}
