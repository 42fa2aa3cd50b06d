/**
 * The model side of evaluate(): a chat model answering each prompt greedily, rendered with the
 * chat template (and the row's tool schemas), stopping at the end-of-turn token or eos.
 * batchSize 1 decodes one row at a time (generateChat); more decodes rows of equal prompt
 * length together (generateChatBatch), with the same answers.
 *
 * @example
 *   const result = await evaluate(rows, chatAnswerer(model, tokenizer, template, { maxNewTokens: 32, batchSize: 16 }));
 */
import type { Tokenizer } from '../data/tokenizer.js';
import type { ChatTemplate } from '../data/template.js';
import type { InstructMessage } from '../data/instruct/types.js';
import { generateChat, generateChatBatch, type GenerativeModel } from '../train/generate.js';
import type { Answerer } from './evaluate.js';

export interface ChatAnswererOptions {
  /** Longest answer, in tokens. */
  maxNewTokens: number;
  /** Rows decoded together. Default 16; 1 = one row at a time. */
  batchSize?: number;
}

const renderTools = (tools?: readonly object[]) => ({ tools: tools ? [...tools] : null });

export function chatAnswerer(model: GenerativeModel, tokenizer: Tokenizer, template: ChatTemplate, opts: ChatAnswererOptions): Answerer {
  const { maxNewTokens } = opts;
  const batchSize = opts.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`chatAnswerer: batchSize must be a positive integer, got ${opts.batchSize}`);
  if (batchSize === 1) {
    return async (messages: InstructMessage[], tools?: readonly object[]) =>
      (await generateChat(model, tokenizer, template, messages, { maxNewTokens, render: renderTools(tools) })).text;
  }
  return {
    batch: async (prompts, onAnswer) => {
      const chats = prompts.map((p) => ({ messages: p.messages, render: renderTools(p.tools) }));
      const outs = await generateChatBatch(model, tokenizer, template, chats, { maxNewTokens, batchSize, onResult: (i, r) => onAnswer(i, r.text) });
      return outs.map((o) => o.text);
    },
  };
}
