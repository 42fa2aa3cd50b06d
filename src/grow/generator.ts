/**
 * The one interface the data-growing pipelines call a model through: a prompt (a chat
 * conversation, or plain text to continue) and sampling settings in, the model's text out.
 * `modelTextGenerator` binds it to a CausalLM (chat prompts go through the chat template and
 * stop at its end-of-turn token; plain prompts are continued and stop at eos); tests bind it to
 * a scripted function, so every prompt the pipelines build can be checked exactly.
 *
 * @example
 *   const gen = modelTextGenerator(model, tokenizer, BUILTIN_TEMPLATES.chatml);
 *   const out = await gen({ format: 'completion', text: 'Come up with a series of tasks:\n1. Sort 3, 1, 2.\n2.' },
 *     { temperature: 0.7, topP: 0.5, maxNewTokens: 64, seed: 1, stop: ['\n\n'] });
 *   out.text;    // what the model wrote, cut before the first stop string
 *   out.finish;  // 'stop' (a stop token or string) or 'length' (maxNewTokens or the model's positions ran out)
 */
import type { Message } from '../data/dataset.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { ChatTemplate } from '../data/template.js';
import { renderChat } from '../data/template.js';
import { dims } from '../../models/config.js';
import { generate, generateChat, type GenerativeModel, type GenerateResult } from '../train/generate.js';

/** A chat conversation (rendered with the model's chat template, generation prompt added) or plain text to continue. */
export type GrowPrompt = { format: 'chat'; messages: Message[] } | { format: 'completion'; text: string };

export interface GrowSampling {
  /** 0: greedy. */
  temperature: number;
  /** Nucleus sampling mass in (0, 1]; 1: off. */
  topP: number;
  maxNewTokens: number;
  /** Seed of this call's draws (the pipelines derive one per call). */
  seed: number;
  /** Generation ends at the first of these strings; the text is cut before it. */
  stop?: string[];
}

export interface GrowGeneration {
  text: string;
  /** 'stop': an end token or stop string ended it; 'length': it ran out of tokens (its end may be cut off). */
  finish: 'stop' | 'length';
}

export type TextGenerator = (prompt: GrowPrompt, sampling: GrowSampling) => Promise<GrowGeneration>;

/** The prompt as the model reads it before templating: the plain text, or the last user message. */
export function promptText(p: GrowPrompt): string {
  return p.format === 'completion' ? p.text : p.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
}

/** Cuts `text` before the first stop string; whether one was found. */
export function cutAtStop(text: string, stop: readonly string[] = []): { text: string; stopped: boolean } {
  let at = -1;
  for (const s of stop) {
    const i = s ? text.indexOf(s) : -1;
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at < 0 ? { text, stopped: false } : { text: text.slice(0, at), stopped: true };
}

/** A TextGenerator over a causal LM, its tokenizer and its chat template. */
export function modelTextGenerator(model: GenerativeModel, tokenizer: Tokenizer, template: ChatTemplate): TextGenerator {
  return async (prompt, s) => {
    let seen = '';
    const opts = {
      maxNewTokens: s.maxNewTokens, seed: s.seed,
      ...(s.temperature > 0 ? { temperature: s.temperature, topP: s.topP, doSample: true } : { doSample: false }),
      // Stop strings are checked on the text as it streams, so generation ends where they appear.
      onToken: (_id: number, piece: string) => {
        seen += piece;
        return s.stop?.length ? !cutAtStop(seen, s.stop).stopped : undefined;
      },
    };
    // The papers' prompts are long for a small model: say so before generating, with what to change.
    const text = prompt.format === 'chat' ? renderChat(template, prompt.messages, { addGenerationPrompt: true }) : prompt.text;
    const tokens = tokenizer.encode(text).ids.length;
    const positions = dims(model.config).maxPositions;
    if (tokens >= positions) {
      throw new Error(`the ${prompt.format} prompt has ${tokens} tokens, and the model reads at most ${positions}: ` +
        'use a model with a longer context, fewer few-shot tasks (Self-Instruct), or shorter seed instructions');
    }
    let out: GenerateResult;
    if (prompt.format === 'chat') out = await generateChat(model, tokenizer, template, prompt.messages, opts);
    else out = await generate(model, tokenizer.encode(prompt.text).ids, { ...opts, stopTokens: [tokenizer.eosTokenId], tokenizer });
    const cut = cutAtStop(out.text, s.stop);
    const ranOut = out.stopReason === 'max-new-tokens' || out.stopReason === 'max-length';
    return { text: cut.text, finish: ranOut && !cut.stopped ? 'length' : 'stop' };
  };
}
