/**
 * Autoregressive generation for one sequence: greedy or sampled (temperature, top-k, top-p as
 * transformers' warpers), stop tokens, a KV cache, and tokens streamed to a callback as they
 * are chosen. One logits row is read back per new token (the choice is made on the host, which
 * is what lets every token be streamed); nothing else leaves the device.
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
import { createKVCache, type CausalLM } from '../../models/causal_lm.js';
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
  const stops = new Set(opts.stopTokens ?? []);
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
  const { ids } = tokenizer.encode(prompt);
  const out = await generate(model, ids, { ...opts, stopTokens: [...stops], tokenizer });
  return { ...out, prompt };
}
