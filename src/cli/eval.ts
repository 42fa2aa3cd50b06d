/**
 * `webtune eval --model DIR [--adapter DIR] --data FILE [--template T] [--tokenizer DIR] [--json] [--limit N]
 *               [--backend webgpu|cpu] [--max-new-tokens N] [--batch-size N]`
 *
 * Task accuracy of a checkpoint on an instruction set with `eval` specs (demo/data/valid.jsonl,
 * test.jsonl): each row's conversation without its final assistant turn is rendered with the
 * chat template, the model answers with greedy decoding (stopping at the template's end-of-turn
 * token or eos), and src/eval scores the answer. --batch-size N (default 16) decodes up to N rows
 * of equal prompt length together, with the same answers as one row at a time (--batch-size 1).
 *
 * Tokenizer: --tokenizer, else the model directory's tokenizer files, else the bundled one.
 * Template: --template, else the tokenizer's chat_template, else chatml.
 *
 * Output: a table per family (and per phrasing group: seen / unseen / human), or with --json one
 * object `{"overall": acc, "byFamily": {family: acc, ...}, "n": count, "correct": ..., "byPhrasing": {...}}`.
 * --show-errors N prints N wrong answers (expected vs output) after the table.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFlags, CliError } from './args.js';
import { initBackend, describeBackend, type BackendName } from '../backend/index.js';
import { loadBundledTokenizer, loadTokenizer, type Tokenizer } from '../data/tokenizer.js';
import { BUILTIN_TEMPLATES, loadTemplate, templateFromTokenizerConfig, type ChatTemplate } from '../data/template.js';
import { loadDataset } from '../data/dataset.js';
import { loadModel } from '../io/checkpoint.js';
import { loadAdapter } from '../io/peft.js';
import { evaluate, type EvalRowInput } from '../eval/evaluate.js';
import { chatAnswerer } from '../eval/answerer.js';
import { formatEvalTable } from '../eval/table.js';
import type { InstructMessage } from '../data/instruct/types.js';

const spec = {
  model: { type: 'string', required: true, help: 'Hugging Face checkpoint directory (config.json + model.safetensors)' },
  adapter: { type: 'string', help: 'a PEFT LoRA adapter directory to apply on top of --model' },
  data: { type: 'string', required: true, help: 'JSONL rows with messages and an eval spec (e.g. demo/data/test.jsonl)' },
  template: { type: 'string', help: 'chat template: built-in name, .jinja file or tokenizer_config.json; default: the tokenizer\'s chat_template, else chatml' },
  tokenizer: { type: 'string', help: 'tokenizer directory; default: the model directory\'s tokenizer files, else the bundled one' },
  json: { type: 'boolean', help: 'print {"overall", "byFamily", "n", ...} as one JSON object' },
  limit: { type: 'number', help: 'evaluate only the first N rows' },
  backend: { type: 'string', default: 'webgpu', help: 'webgpu (falls back to cpu, announced) or cpu' },
  'max-new-tokens': { type: 'number', default: 48, help: 'longest answer generated per row' },
  'batch-size': { type: 'number', default: 16, help: 'rows of equal prompt length decoded together (same answers; 1 = one row at a time)' },
  'show-errors': { type: 'number', default: 0, help: 'after the table, show this many wrong answers' },
} as const;

/** Tokenizer: --tokenizer, else the model directory's files, else the bundled one. */
export async function resolveTokenizer(tokenizerDir: string | undefined, modelDir: string | undefined): Promise<{ tok: Tokenizer; from: string }> {
  if (tokenizerDir) return { tok: await loadTokenizer(tokenizerDir), from: tokenizerDir };
  if (modelDir && fs.existsSync(path.join(modelDir, 'tokenizer.json')) && fs.existsSync(path.join(modelDir, 'tokenizer_config.json'))) {
    return { tok: await loadTokenizer(modelDir), from: modelDir };
  }
  return { tok: await loadBundledTokenizer(), from: 'bundled (models/tokenizer)' };
}

/** Template: --template, else the tokenizer's chat_template, else chatml. */
export async function resolveTemplate(specOrName: string | undefined, tok: Tokenizer): Promise<ChatTemplate> {
  const tokens = { bosToken: tok.bosToken, eosToken: tok.eosToken };
  if (specOrName) return loadTemplate(specOrName, tokens);
  if (tok.chatTemplate) return templateFromTokenizerConfig({ ...tok.files.tokenizerConfig, chat_template: tok.chatTemplate }, 'tokenizer_config.json');
  return { ...BUILTIN_TEMPLATES.chatml, bosToken: tok.bosToken ?? '', eosToken: tok.eosToken };
}

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags('eval', argv, spec, 'Task accuracy of a model on an instruction set (greedy answers scored per family).');
  if (!f) return 0;
  if (!['webgpu', 'cpu'].includes(f.backend!)) throw new CliError(`eval: --backend must be webgpu or cpu, got '${f.backend}'`);
  if (f.limit !== undefined && (!Number.isInteger(f.limit) || f.limit < 1)) throw new CliError(`eval: --limit must be a positive integer, got ${f.limit}`);
  const maxNew = f['max-new-tokens']!;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new CliError(`eval: --max-new-tokens must be a positive integer, got ${maxNew}`);
  const batchSize = f['batch-size']!;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new CliError(`eval: --batch-size must be a positive integer, got ${batchSize}`);
  if (!fs.existsSync(path.join(f.model!, 'config.json'))) throw new CliError(`eval: --model ${f.model}: no config.json there (give a Hugging Face checkpoint directory)`);
  if (!fs.existsSync(f.data!)) throw new CliError(`eval: --data: no such file '${f.data}'`);

  const say = (s: string) => (f.json ? console.error(s) : console.log(s));
  const backend = await initBackend({ prefer: f.backend as BackendName, onFallback: (m) => console.error(m) });
  if (f.adapter && !fs.existsSync(path.join(f.adapter, 'adapter_config.json'))) throw new CliError(`eval: --adapter ${f.adapter}: no adapter_config.json there (give a PEFT adapter directory)`);
  // The adapter directory's tokenizer (written by webtune train) wins over the base model's.
  const { tok, from } = await resolveTokenizer(f.tokenizer, f.adapter && fs.existsSync(path.join(f.adapter, 'tokenizer.json')) ? f.adapter : f.model!);
  const template = await resolveTemplate(f.template, tok);
  const { examples, errors } = await loadDataset(f.data!);
  if (errors.length) throw new CliError(`eval: ${errors[0].message}${errors.length > 1 ? ` (and ${errors.length - 1} more bad rows)` : ''}`);
  const model = await loadModel(f.model!);
  try {
    if (f.adapter) await loadAdapter(model, f.adapter, { trainable: false });
    say(`backend: ${describeBackend(backend)}; model ${f.model}${f.adapter ? ` + adapter ${f.adapter}` : ''} (${model.numParams().toLocaleString('en-US')} parameters); tokenizer ${from}; template ${template.name}`);
    const rows: EvalRowInput[] = examples.map((ex) => {
      if (ex.format !== 'messages' || !ex.messages) throw new CliError(`eval: ${String(ex.meta.file)}:${String(ex.meta.line)}: field messages: evaluation needs "messages" rows (got ${ex.format})`);
      return { messages: ex.messages as InstructMessage[], tools: ex.tools, meta: ex.meta };
    });
    const live = process.stderr.isTTY === true;
    const t0 = Date.now();
    const result = await evaluate(rows, chatAnswerer(model, tok, template, { maxNewTokens: maxNew, batchSize }), {
      limit: f.limit,
      onRow: live ? (_r, done, total) => process.stderr.write(`\r\x1b[2Kevaluating ${done}/${total}`) : undefined,
    });
    if (live) process.stderr.write('\r\x1b[2K');
    if (f.json) {
      console.log(JSON.stringify({
        overall: result.overall, byFamily: result.byFamily, n: result.n, correct: result.correct,
        byPhrasing: result.byPhrasing, seconds: (Date.now() - t0) / 1000,
      }));
      return 0;
    }
    console.log(formatEvalTable(result));
    const wrong = result.perRow.filter((r) => !r.correct).slice(0, f['show-errors']);
    if (wrong.length) {
      console.log('');
      for (const r of wrong) console.log(`${r.id ?? r.index} [${r.family}] expected ${JSON.stringify(r.expected)} got ${JSON.stringify(r.output)}${r.reason ? ` (${r.reason})` : ''}`);
    }
    console.log(`\n${result.n} rows in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    return 0;
  } finally {
    model.dispose();
  }
}
