/**
 * `webtune tokenizer --corpus FILE[,FILE...] --vocab-size N --out DIR`: trains the byte-level
 * BPE tokenizer (src/data/bpe_train.ts) and writes tokenizer.json + tokenizer_config.json.
 *
 * Corpus files: `.jsonl` rows in any dataset format (messages and message-list
 * prompt/completion rows rendered with ChatML, text rows as they are, string prompt/completion
 * concatenated, Alpaca rows as a user/assistant pair) or any other file as plain text.
 * Special tokens are split out before counting, so they are never learned as merges.
 */
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { parseFlags, CliError } from './args.js';
import { trainBpe, tokenizerJson, tokenizerConfigJson } from '../data/bpe_train.js';
import { CHATML } from '../data/templates/builtin.js';

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

const spec = {
  corpus: { type: 'string', required: true, help: 'comma-separated corpus files (.jsonl datasets or plain text)' },
  'vocab-size': { type: 'number', default: 1024, help: 'total vocabulary: 256 bytes + merges + 3 special tokens' },
  'min-frequency': { type: 'number', default: 2, help: 'stop merging when the best pair is rarer than this' },
  'split-digits': { type: 'boolean', default: false, help: 'every digit is a token of its own (numbers are read digit by digit, as in Llama and SmolLM2)' },
  'model-max-length': { type: 'number', default: 1024, help: 'model_max_length written to tokenizer_config.json' },
  out: { type: 'string', required: true, help: 'output directory' },
} as const;

type Msg = { role: string; content: string };

/** The texts a corpus file contributes, in file order. */
export function corpusTexts(file: string, content: string): string[] {
  if (!file.endsWith('.jsonl')) return [content];
  const chatml = new Template(CHATML.source);
  const render = (messages: Msg[]) => chatml.render({ messages, add_generation_prompt: false, bos_token: CHATML.bosToken, eos_token: CHATML.eosToken });
  const out: string[] = [];
  content.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new CliError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (Array.isArray(row.messages)) out.push(render(row.messages as Msg[]));
    else if (typeof row.text === 'string') out.push(row.text);
    else if (row.prompt !== undefined && row.completion !== undefined) {
      if (typeof row.prompt === 'string' && typeof row.completion === 'string') out.push(row.prompt + row.completion);
      else out.push(render([...(row.prompt as Msg[]), ...(row.completion as Msg[])]));
    } else if (typeof row.instruction === 'string' && typeof row.output === 'string') {
      const input = typeof row.input === 'string' && row.input ? `\n\n${row.input}` : '';
      out.push(render([{ role: 'user', content: row.instruction + input }, { role: 'assistant', content: row.output }]));
    } else throw new CliError(`${file}:${i + 1}: no messages, text, prompt/completion or instruction/output field`);
  });
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags('tokenizer', argv, spec, 'Train the byte-level BPE tokenizer and write tokenizer.json + tokenizer_config.json.');
  if (!f) return 0;
  const files = f.corpus!.split(',').map((s) => s.trim()).filter(Boolean);
  const texts: string[] = [];
  for (const file of files) {
    let content: string;
    try {
      content = await readFile(file, 'utf8');
    } catch (e) {
      throw new CliError(`--corpus: cannot read ${file} (${(e as Error).message})`);
    }
    texts.push(...corpusTexts(file, content));
  }
  const t0 = Date.now();
  const model = trainBpe(texts, { vocabSize: f['vocab-size']!, specialTokens: SPECIAL_TOKENS, minFrequency: f['min-frequency'], splitDigits: f['split-digits'] });
  const eot = SPECIAL_TOKENS[0];
  await mkdir(f.out!, { recursive: true });
  await writeFile(join(f.out!, 'tokenizer.json'), JSON.stringify(tokenizerJson(model), null, 2) + '\n');
  const config = tokenizerConfigJson(model, { bosToken: eot, eosToken: eot, padToken: eot, chatTemplate: CHATML.source, modelMaxLength: f['model-max-length']! });
  await writeFile(join(f.out!, 'tokenizer_config.json'), JSON.stringify(config, null, 2) + '\n');
  const vocab = model.vocab.size + model.specialTokens.length;
  console.log(`trained on ${model.stats.texts} texts (${model.stats.pretokens} pre-tokens, ${model.stats.distinctPretokens} distinct) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${model.merges.length} merges, vocabulary ${vocab}${model.stats.stoppedBecause === 'min_frequency' ? ` (stopped early: no pair occurs ${f['min-frequency']} times)` : ''} -> ${f.out}`);
  return 0;
}
