/**
 * `webtune inspect --data FILE [--template T] [--tokenizer DIR] [--mask MODE] [--max-length N] [--json]`
 *                 [--exact-dedup] [--near-dedup [--near-dedup-threshold 0.7]] [--min-words N] [--max-words N]
 *                 [--min-chars N] [--max-chars N] [--safety-filter] [--curriculum length|difficulty]
 *
 * Shows every example's tokens with the trained ones highlighted, then the dataset summary
 * (like Axolotl's preprocess debug view). On a terminal trained tokens are green and context
 * is grey; otherwise (a pipe or a file) trained tokens are written [[like this]] and context
 * as is. Each token is separated by '|' so token boundaries are visible.
 * With --json: one line per example {"input_ids", "labels", "tokens", "meta"}, then a last
 * line {"summary": ...}.
 *
 * --tokenizer defaults to the bundled tokenizer (models/tokenizer/); --template defaults to
 * chatml. --template takes a built-in name, a .jinja file or a tokenizer_config.json.
 */
import { parseFlags, CliError } from './args.js';
import { DATA_TOOL_FLAGS, dataTools, filterReport } from './data_flags.js';
import { loadBundledTokenizer, loadTokenizer } from '../data/tokenizer.js';
import { loadTemplate } from '../data/template.js';
import { MASK_MODES, type MaskMode, type Truncation } from '../data/labels.js';
import { prepareDataset } from '../data/pipeline.js';
import { formatSummary } from '../data/summary.js';
import { IGNORE_INDEX, type TokenizedExample } from '../data/labels.js';
import type { Tokenizer } from '../data/tokenizer.js';

const spec = {
  data: { type: 'string', required: true, help: 'dataset file (.jsonl / .json)' },
  template: { type: 'string', default: 'chatml', help: 'chat template: built-in name, .jinja file or tokenizer_config.json' },
  tokenizer: { type: 'string', help: 'tokenizer directory (tokenizer.json + tokenizer_config.json); default: the bundled one' },
  mask: { type: 'string', default: 'assistant', help: `what is trained: ${MASK_MODES.join(', ')}` },
  'max-length': { type: 'number', help: 'maximum tokens per example' },
  truncation: { type: 'string', default: 'keep_start', help: 'drop, keep_start or keep_end' },
  limit: { type: 'number', default: 20, help: 'examples to show (0 = all; --json always writes all)' },
  'skip-bad-rows': { type: 'boolean', help: 'leave out bad rows (listed in the summary) instead of stopping' },
  json: { type: 'boolean', help: 'one JSON line per example, then the summary' },
  ...DATA_TOOL_FLAGS,
} as const;

/** Visible form of a token's text: newlines and tabs escaped so one token never spans lines. */
function show(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r');
}

/** One example as text: tokens separated by '|', trained ones coloured (tty) or [[bracketed]]. */
export function renderExample(ex: TokenizedExample, tok: Tokenizer, color: boolean): string {
  const parts: string[] = [];
  let inTrained = false;
  const pieces: string[] = [];
  ex.inputIds.forEach((id, i) => {
    const trained = ex.labels[i] !== IGNORE_INDEX;
    const text = show(tok.decode([id]));
    if (color) parts.push(trained ? `\x1b[32m${text}\x1b[0m` : `\x1b[90m${text}\x1b[0m`);
    else {
      if (trained && !inTrained) pieces.push('[[');
      if (!trained && inTrained) pieces.push(']]');
      pieces.push(i > 0 && trained === inTrained ? `|${text}` : text);
      inTrained = trained;
    }
  });
  if (color) return parts.join('\x1b[90m|\x1b[0m');
  if (inTrained) pieces.push(']]');
  return pieces.join('');
}

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags('inspect', argv, spec, 'Show tokens, trained tokens and a dataset summary.');
  if (!f) return 0;
  const mask = f.mask as MaskMode;
  if (!MASK_MODES.includes(mask)) throw new CliError(`inspect: --mask must be one of ${MASK_MODES.join(', ')}, got '${f.mask}'`);
  const truncation = f.truncation as Truncation;
  if (!['drop', 'keep_start', 'keep_end'].includes(truncation)) throw new CliError(`inspect: --truncation must be drop, keep_start or keep_end, got '${f.truncation}'`);
  const tok = f.tokenizer ? await loadTokenizer(f.tokenizer) : await loadBundledTokenizer();
  const tools = dataTools('inspect', f);
  const template = await loadTemplate(f.template!);
  const data = await prepareDataset({
    sources: [{ file: f.data! }], template, tokenizer: tok, mask, maxLength: f['max-length'], truncation,
    onRowError: f['skip-bad-rows'] ? 'skip' : 'stop', filters: tools.filters, curriculum: tools.curriculum,
  });
  if (f.json) {
    for (const ex of data.examples) {
      console.log(JSON.stringify({ input_ids: ex.inputIds, labels: ex.labels, tokens: ex.inputIds.map((id) => tok.decode([id])), meta: ex.meta }));
    }
    console.log(JSON.stringify({ summary: data.summary }));
    return 0;
  }
  // What the data tools removed comes first: it decides what the examples below are.
  for (const line of filterReport(data.summary)) console.log(line);
  const color = !!process.stdout.isTTY && !process.env.NO_COLOR;
  const limit = f.limit === 0 ? data.examples.length : f.limit!;
  data.examples.slice(0, limit).forEach((ex, i) => {
    const m = ex.meta;
    console.log(`--- example ${i} ${m.file !== undefined ? `${String(m.file)}:${String(m.line)}` : ''}${m.id !== undefined ? ` (${String(m.id)})` : ''}${m.turn !== undefined ? ` turn ${String(m.turn)}` : ''}: ${ex.inputIds.length} tokens`);
    console.log(renderExample(ex, tok, color));
  });
  if (data.examples.length > limit) console.log(`... ${data.examples.length - limit} more examples (--limit 0 shows all)`);
  console.log('');
  console.log(formatSummary(data.summary));
  return 0;
}
