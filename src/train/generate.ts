/**
 * Autoregressive generation for one sequence: greedy or sampled (temperature, top-k, top-p as
 * transformers' warpers), stop tokens, a KV cache, and tokens streamed to a callback as they
 * are chosen. One logits row is read back per new token (the choice is made on the host, which
 * is what lets every token be streamed); nothing else leaves the device. For many prompts at
 * once (evaluation), generateGreedyBatch decodes prompts of equal length together, greedy only,
 * with the same ids as generate() one prompt at a time.
 *
 * @example
 *   const out = await generate(model, tokenizer.encode('Once upon').ids, {
 *     maxNewTokens: 20, temperature: 0.8, topP: 0.9, seed: 1, stopTokens: [tokenizer.eosTokenId],
 *     tokenizer, onToken: (id, text) => process.stdout.write(text),
 *   });
 *   out.ids;        // the new token ids (a final stop token included)
 *   out.text;       // their text, without the stop token
 *   out.stopReason; // 'stop-token' | 'max-new-tokens' | 'max-length' | 'aborted'
 */
import * as tf from '@tensorflow/tfjs';
import { createKVCache, KVCache, LOGITS_CHUNK_BYTES, type CausalLM } from '../../models/causal_lm.js';
import { dims } from '../../models/config.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { Message } from '../data/dataset.js';
import { renderChat, renderWithSpans, type ChatTemplate, type RenderOptions } from '../data/template.js';
import { argmax, sampleToken, type SamplingOptions } from './sampling.js';
import { Rng, mixSeed } from '../utils/random.js';

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to add. Default 64. */
  maxNewTokens?: number;
  /**
   * Sample (true) or take the argmax (false). Default: sample when temperature (> 0), topK or
   * topP is given, greedy otherwise. temperature 0 means greedy.
   */
  doSample?: boolean;
  /** Ids that end generation (eos, <|im_end|>...). The stop token is part of `ids`, not of `text`. */
  stopTokens?: number[];
  /** Seed of the sampling draws; the same seed gives the same tokens. Default 0. */
  seed?: number;
  /** Decode with a KV cache (one position per forward) instead of re-reading the whole sequence. Default true. */
  useCache?: boolean;
  /** Turns ids into text for `text` and the callback. Without it, text is ''. */
  tokenizer?: Pick<Tokenizer, 'decode'>;
  /**
   * Called for every new token, in order, with the text it adds (may be '' while a multi-byte
   * character is incomplete, and is '' for a stop token). Return false to stop after this token.
   */
  onToken?: (id: number, text: string) => void | boolean | Promise<void | boolean>;
  /** Aborts between tokens. */
  signal?: AbortSignal;
}

export interface GenerateResult {
  /** The new ids (not the prompt), a final stop token included. */
  ids: number[];
  /** Decoded text of the new ids, stop token excluded ('' without a tokenizer). */
  text: string;
  stopReason: 'stop-token' | 'max-new-tokens' | 'max-length' | 'callback' | 'aborted';
}

/** The model side generation needs: CausalLM. */
export type GenerativeModel = Pick<CausalLM, 'forward' | 'config'>;

function maxPositions(model: GenerativeModel): number {
  return dims(model.config).maxPositions;
}

/** Logits [V] of the last position of `logits` [1, T, V], read to the host; disposes `logits`. */
async function lastRow(logits: tf.Tensor3D): Promise<Float32Array> {
  const [, T, V] = logits.shape;
  const row = tf.slice(logits, [0, T - 1, 0], [1, 1, V]);
  logits.dispose();
  const data = (await row.data()) as Float32Array;
  row.dispose();
  return data;
}

/**
 * Generates up to `maxNewTokens` ids after `promptIds` (batch of one). Works on every backend;
 * the model runs in inference mode (no LoRA dropout, no NEFTune).
 */
export async function generate(model: GenerativeModel, promptIds: readonly number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
  if (promptIds.length === 0) throw new Error('generate: the prompt is empty (give at least one token, e.g. the BOS token)');
  const maxNew = opts.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`generate: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  const limit = maxPositions(model);
  if (promptIds.length > limit) throw new Error(`generate: the prompt has ${promptIds.length} tokens, more than the model's ${limit} positions`);
  const sample = opts.doSample ?? ((opts.temperature !== undefined && opts.temperature > 0) || !!opts.topK || (opts.topP !== undefined && opts.topP < 1));
  const samplingOpts: SamplingOptions = { temperature: opts.temperature && opts.temperature > 0 ? opts.temperature : 1, topK: opts.topK, topP: opts.topP };
  const stops = new Set(opts.stopTokens ?? []);
  const useCache = opts.useCache ?? true;
  const seed = opts.seed ?? 0;

  const ids: number[] = [];
  const sequence = [...promptIds];
  let printed = '';           // text already handed to onToken
  let stopReason: GenerateResult['stopReason'] = 'max-new-tokens';
  const cache = useCache ? createKVCache(model as CausalLM, 1) : undefined; // reads only model.config
  const decodeNew = (): string => (opts.tokenizer ? opts.tokenizer.decode(ids.filter((id) => !stops.has(id))) : '');
  try {
    let next = promptIds.slice();   // what the next forward reads
    while (ids.length < maxNew) {
      if (opts.signal?.aborted) { stopReason = 'aborted'; break; }
      if (sequence.length >= limit) { stopReason = 'max-length'; break; }
      const input = tf.tensor2d(Int32Array.from(cache ? next : sequence), [1, cache ? next.length : sequence.length], 'int32');
      const logits = model.forward(input, cache ? { cache } : {});
      input.dispose();
      const row = await lastRow(logits);
      // One draw per position, keyed by (seed, position): the same seed gives the same text
      // with or without the cache.
      const id = sample ? sampleToken(row, samplingOpts, new Rng(mixSeed(seed, sequence.length))) : argmax(row);
      ids.push(id);
      sequence.push(id);
      next = [id];
      const isStop = stops.has(id);
      let piece = '';
      if (!isStop && opts.tokenizer) {
        const full = decodeNew();
        // A byte-level token can end inside a UTF-8 character: hold the text back until it completes.
        if (!full.endsWith('\uFFFD') && full.startsWith(printed)) { piece = full.slice(printed.length); printed = full; }
        else if (!full.endsWith('\uFFFD')) { piece = full; printed = full; }
      }
      const verdict = opts.onToken ? await opts.onToken(id, piece) : undefined;
      if (isStop) { stopReason = 'stop-token'; break; }
      if (verdict === false) { stopReason = 'callback'; break; }
    }
  } finally {
    cache?.dispose();
  }
  return { ids, text: decodeNew(), stopReason };
}

/**
 * The end-of-turn marker a chat template writes after an assistant message ('<|im_end|>',
 * '<|eot_id|>', '</s>', ...), found by rendering a probe conversation; '' if it writes none.
 */
export function endOfTurnMarker(template: ChatTemplate): string {
  const { text, turns } = renderWithSpans(template, [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }]);
  const a = turns.find((t) => t.role === 'assistant');
  return a ? text.slice(a.end, a.trainEnd).trim() : '';
}

export interface GenerateChatOptions extends Omit<GenerateOptions, 'tokenizer'> {
  /** Passed to renderChat (addGenerationPrompt is always on). */
  render?: Omit<RenderOptions, 'addGenerationPrompt'>;
}

/**
 * Renders `messages` with the template and a generation prompt, generates the assistant's
 * reply and stops at the template's end-of-turn token or the tokenizer's eos.
 *
 * @example
 *   const reply = await generateChat(model, tokenizer, BUILTIN_TEMPLATES.chatml, [{ role: 'user', content: 'Hi' }], { maxNewTokens: 32 });
 *   reply.text;   // the assistant's message, without '<|im_end|>'
 */
export async function generateChat(
  model: GenerativeModel, tokenizer: Tokenizer, template: ChatTemplate, messages: readonly Message[], opts: GenerateChatOptions = {},
): Promise<GenerateResult & { prompt: string }> {
  const prompt = renderChat(template, messages, { ...opts.render, addGenerationPrompt: true });
  const { ids } = tokenizer.encode(prompt);
  const out = await generate(model, ids, { ...opts, stopTokens: chatStopTokens(tokenizer, template, opts.stopTokens), tokenizer });
  return { ...out, prompt };
}

/**
 * The ids a chat reply stops at: `extra`, the tokenizer's eos, and the template's end-of-turn
 * marker when it is one token.
 */
export function chatStopTokens(tokenizer: Tokenizer, template: ChatTemplate, extra: readonly number[] = []): number[] {
  const stops = new Set(extra);
  stops.add(tokenizer.eosTokenId);
  const marker = endOfTurnMarker(template);
  if (marker) {
    const id = tokenizer.tokenToId(marker);
    if (id !== undefined) stops.add(id);
    else {
      const enc = tokenizer.encode(marker).ids;
      if (enc.length === 1) stops.add(enc[0]);
    }
  }
  return [...stops];
}

export interface GenerateBatchOptions {
  /** Most tokens to add per prompt. Default 64. */
  maxNewTokens?: number;
  /** Ids that end a prompt's reply (included in its `ids`, not in its `text`). */
  stopTokens?: number[];
  /** Most prompts decoded together (the KV cache's rows). Default 16. */
  batchSize?: number;
  /**
   * Largest logits block [B, L, V] float32 of a group's prompt forward, in bytes: fewer rows go
   * together when their prompts are long or the vocabulary large (at least one row). Default
   * LOGITS_CHUNK_BYTES (32 MiB).
   */
  logitsBudgetBytes?: number;
  /** Turns ids into text. Without it, text is ''. */
  tokenizer?: Pick<Tokenizer, 'decode'>;
  /** Called once per prompt as soon as its reply is complete (not in prompt order). */
  onResult?: (index: number, result: GenerateResult) => void;
  /** Aborts between decoding steps; the promise rejects. */
  signal?: AbortSignal;
}

/**
 * Greedy decoding of many prompts at once: the same ids, prompt for prompt, as
 * generate(model, prompt, { maxNewTokens, stopTokens }) (greedy, KV cache). Prompts of EQUAL
 * token length are decoded together, up to `batchSize` rows over one KV cache [B, ...]: their
 * positions are identical, so no padding or mask is needed. Each step reads back one argmax id
 * per row (taken on the device). A row that reached a stop token leaves the batch (its rows of
 * the cache are dropped, so no work is spent on it); a group ends when every row stopped or
 * maxNewTokens is reached.
 *
 * @example
 *   const outs = await generateGreedyBatch(model, [tok.encode('a b').ids, tok.encode('c d').ids], { maxNewTokens: 8, stopTokens: [tok.eosTokenId] });
 *   outs[1].ids;   // what generate(model, tok.encode('c d').ids, { maxNewTokens: 8, ... }) gives
 */
export async function generateGreedyBatch(model: GenerativeModel, prompts: ReadonlyArray<readonly number[]>, opts: GenerateBatchOptions = {}): Promise<GenerateResult[]> {
  const maxNew = opts.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`generateGreedyBatch: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  const batchSize = opts.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`generateGreedyBatch: batchSize must be a positive integer, got ${opts.batchSize}`);
  const limit = maxPositions(model);
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`generateGreedyBatch: prompt ${i} is empty (give at least one token, e.g. the BOS token)`);
    if (p.length > limit) throw new Error(`generateGreedyBatch: prompt ${i} has ${p.length} tokens, more than the model's ${limit} positions`);
  });
  const stops = new Set(opts.stopTokens ?? []);
  const text = (ids: number[]) => (opts.tokenizer ? opts.tokenizer.decode(ids.filter((id) => !stops.has(id))) : '');

  // Groups of prompt indices, all of one token length L, in order of first appearance; at most
  // batchSize of them, and as many as keep the prompt forward's logits [B, L, V] within budget.
  const byLength = new Map<number, number[]>();
  prompts.forEach((p, i) => { const g = byLength.get(p.length); if (g) g.push(i); else byLength.set(p.length, [i]); });
  const budget = opts.logitsBudgetBytes ?? LOGITS_CHUNK_BYTES;
  const groups: number[][] = [];
  for (const [L, members] of byLength) {
    const rows = Math.max(1, Math.min(batchSize, Math.floor(budget / (L * model.config.vocab_size * 4))));
    for (let i = 0; i < members.length; i += rows) groups.push(members.slice(i, i + rows));
  }

  const results: GenerateResult[] = new Array(prompts.length);
  for (const group of groups) {
    const B = group.length, L = prompts[group[0]].length;
    const ids: number[][] = group.map(() => []);
    let cache = createKVCache(model as CausalLM, B);
    let live = group.map((_, b) => b);                                                                 // the rows still decoding, in cache order
    let next = tf.tensor2d(Int32Array.from(group.flatMap((i) => [...prompts[i]])), [B, L], 'int32');   // [B, L], then [live, 1]
    const finish = (b: number, why: GenerateResult['stopReason']) => {
      results[group[b]] = { ids: ids[b], text: text(ids[b]), stopReason: why };
      opts.onResult?.(group[b], results[group[b]]);
    };
    try {
      for (let step = 0; live.length > 0; step++) {
        if (opts.signal?.aborted) throw new Error('generateGreedyBatch: aborted');
        if (step === maxNew || L + step >= limit) {
          for (const b of live) finish(b, step === maxNew ? 'max-new-tokens' : 'max-length');
          break;
        }
        const logits = model.forward(next, { cache });                                                // [live, T, V]
        const chosen = tf.tidy(() => {
          const [R, T, V] = logits.shape;
          return tf.reshape(tf.argMax(tf.slice(logits, [0, T - 1, 0], [R, 1, V]), 2), [R, 1]) as tf.Tensor2D;   // [live, 1] int32
        });
        logits.dispose();
        next.dispose();
        next = chosen;                                                                                 // each row is fed its choice
        const picked = (await chosen.data()) as Int32Array;                                            // one id per live row
        const keep: number[] = [];                                                                     // positions in `live` that go on
        picked.forEach((id, j) => {
          ids[live[j]].push(id);
          if (stops.has(id)) finish(live[j], 'stop-token'); else keep.push(j);
        });
        if (keep.length === 0) live = [];
        else if (keep.length < live.length) {
          // Drop the finished rows from the cache and the next input: no work is spent on them.
          [cache, next] = [keepRows(cache, keep), keepInputRows(next, keep)];
          live = keep.map((j) => live[j]);
        }
      }
    } finally {
      next.dispose();
      cache.dispose();
    }
  }
  return results;
}

/** A cache of rows `rows` of `cache` (its K/V and segments gathered); disposes `cache`. */
function keepRows(cache: KVCache, rows: number[]): KVCache {
  const out = new KVCache(cache.numLayers, rows.length, cache.maxLength);
  tf.tidy(() => {
    const idx = tf.tensor1d(rows, 'int32');
    out.layers = cache.layers.map((kv) => kv && { k: tf.keep(tf.gather(kv.k, idx)), v: tf.keep(tf.gather(kv.v, idx)) });   // [rows, Hkv, S, D]
    if (cache.segments) out.segments = tf.keep(tf.gather(cache.segments, idx));                                           // [rows, S]
  });
  out.length = cache.length;
  cache.dispose();
  return out;
}

/** Rows `rows` of ids [B, 1]; disposes `ids`. */
function keepInputRows(ids: tf.Tensor2D, rows: number[]): tf.Tensor2D {
  const out = tf.tidy(() => tf.gather(ids, tf.tensor1d(rows, 'int32')));
  ids.dispose();
  return out;
}

/** One conversation for generateChatBatch. */
export interface ChatPrompt {
  messages: readonly Message[];
  /** Passed to renderChat (addGenerationPrompt is always on). */
  render?: Omit<RenderOptions, 'addGenerationPrompt'>;
}

/**
 * generateChat for many conversations at once, greedy only (generateGreedyBatch): the same
 * replies as generateChat one by one with greedy decoding.
 *
 * @example
 *   const replies = await generateChatBatch(model, tokenizer, template, rows.map((messages) => ({ messages })), { maxNewTokens: 32 });
 *   replies[0].text;   // the first conversation's assistant message
 */
export async function generateChatBatch(
  model: GenerativeModel, tokenizer: Tokenizer, template: ChatTemplate, chats: readonly ChatPrompt[], opts: Omit<GenerateBatchOptions, 'tokenizer'> = {},
): Promise<Array<GenerateResult & { prompt: string }>> {
  const prompts = chats.map((c) => renderChat(template, c.messages, { ...c.render, addGenerationPrompt: true }));
  const outs = await generateGreedyBatch(model, prompts.map((p) => tokenizer.encode(p).ids), {
    ...opts, stopTokens: chatStopTokens(tokenizer, template, opts.stopTokens), tokenizer,
  });
  return outs.map((out, i) => ({ ...out, prompt: prompts[i] }));
}
