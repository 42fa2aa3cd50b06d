/**
 * One call from dataset files to training batches:
 *
 *   rows (readDataset) -> filters -> chat template + tokenizer + labels (labelExample)
 *   -> [mixture by weight | curriculum] -> [packing] -> batches
 *
 * with a DatasetSummary of everything counted on the way. Provenance meta (file, line, id,
 * source, family, ...) rides along to every batch row.
 *
 * @example
 * const data = await prepareDataset({
 *   sources: [{ file: 'demo/data/train.jsonl' }],
 *   template: BUILTIN_TEMPLATES.chatml, tokenizer: await loadBundledTokenizer(),
 *   mask: 'assistant', maxLength: 256,
 * });
 * console.log(formatSummary(data.summary));
 * const trainer = new Trainer(model, { train: (epoch) => data.batches({ batchSize: 8, firstEpoch: epoch, seed: 0 }), ... });
 */
import { readDataset, type DatasetSource, type Example, type RowError } from './dataset.js';
import { checkTemplate, type ChatTemplate } from './template.js';
import type { Tokenizer } from './tokenizer.js';
import { labelExample, type MaskMode, type TokenizedExample, type Truncation } from './labels.js';
import { applyFilters, type DatasetFilter, type FilterReport } from './filters.js';
import { iterateBatches, packExamples, type Batch, type PackingStrategy } from './batch.js';
import { curriculumOrder, mixExamples, type CurriculumKey } from './mixture.js';
import { SummaryBuilder, type DatasetSummary } from './summary.js';

export interface PipelineSource {
  /** A path (Node), Blob/File (browser), stream or async iterable of lines. */
  file?: DatasetSource;
  /** Or rows already parsed. */
  examples?: Example[];
  /** Name in the summary and in meta.source when the row has none (default: the file name or 'source<i>'). */
  name?: string;
  /** Mixture weight. When any source has one, examples are drawn by weight (see mixture.ts). */
  weight?: number;
}

export interface PrepareOptions {
  sources: PipelineSource[];
  /** Needed for messages rows and message-list prompt/completion rows. */
  template?: ChatTemplate | null;
  tokenizer: Tokenizer;
  mask?: MaskMode;                  // default 'assistant'
  trainEndOfTurn?: boolean;         // default true
  maxLength?: number;               // default: packing seqLen, else the tokenizer's model_max_length
  truncation?: Truncation;          // default 'keep_start'
  rejectSpecialTokenForgery?: boolean;
  /** Encode special-token text typed inside content as ordinary text (default false: as the special token). */
  literalSpecialTokens?: boolean;
  filters?: DatasetFilter[];
  /** Bad rows: 'stop' (default) throws naming file and line; 'skip' leaves them out and lists them in the summary. */
  onRowError?: 'stop' | 'skip';
  packing?: false | PackingStrategy;
  /** Row length for packing (and a fixed padded length if given without packing). */
  seqLen?: number;
  /** Orders examples easiest first instead of shuffling (batches() then keeps that order). */
  curriculum?: CurriculumKey;
  /** Seed of the mixture draw (batch shuffling takes its own seed in batches()). */
  seed?: number;
  /** Examples drawn from a weighted mixture (default: the total of all sources). */
  mixtureTotal?: number;
}

export interface PreparedDataset {
  examples: TokenizedExample[];
  summary: DatasetSummary;
  /** Batches over epochs for the trainer (shuffled per epoch with `seed` unless a curriculum is set). */
  batches(opts: { batchSize: number; epochs?: number; firstEpoch?: number; seed?: number; shuffle?: boolean; dropLast?: boolean }): Generator<Batch & { epoch: number; step: number }>;
}

function sourceName(s: PipelineSource, i: number): string {
  if (s.name) return s.name;
  if (typeof s.file === 'string') return s.file.split(/[\\/]/).pop()!;
  if (typeof Blob !== 'undefined' && s.file instanceof Blob && 'name' in s.file) return String((s.file as File).name);
  return `source${i}`;
}

async function readSource(s: PipelineSource, name: string, onError: 'stop' | 'skip', errors: RowError[]): Promise<Example[]> {
  if (s.examples) return s.examples;
  if (s.file === undefined) throw new Error(`dataset source '${name}': give a file or examples`);
  const reader = readDataset(s.file, { onError, file: typeof s.file === 'string' ? s.file : name });
  const out: Example[] = [];
  for await (const ex of reader) out.push(ex);
  errors.push(...reader.errors);
  return out;
}

/** Reads, filters, tokenizes and labels every source; returns the examples, the summary and a batch iterator. */
export async function prepareDataset(opts: PrepareOptions): Promise<PreparedDataset> {
  const { tokenizer } = opts;
  const mask = opts.mask ?? 'assistant';
  const truncation = opts.truncation ?? 'keep_start';
  if (opts.packing && !opts.seqLen) throw new Error('packing needs seqLen (the length of a packed row)');
  const maxLength = opts.maxLength ?? opts.seqLen ?? tokenizer.modelMaxLength;
  if (opts.packing && maxLength !== undefined && maxLength > opts.seqLen!) {
    throw new Error(`maxLength ${maxLength} is longer than the packed row length seqLen ${opts.seqLen}: an example could not fit in a row`);
  }
  // A template that cannot be parsed fails here, with the parser's message, not once per row.
  if (opts.template) checkTemplate(opts.template);
  const summary = new SummaryBuilder({ mask, template: opts.template?.name ?? null, maxLength: maxLength ?? null, truncation });

  // 1. Read every source; tag rows with their source name.
  const rowErrors: RowError[] = [];
  const names = opts.sources.map(sourceName);
  const rows: Array<{ ex: Example; source: number }> = [];
  const emptySources: string[] = [];
  for (const [i, s] of opts.sources.entries()) {
    const errorsBefore = rowErrors.length;
    const read = await readSource(s, names[i], opts.onRowError ?? 'stop', rowErrors);
    if (read.length === 0 && rowErrors.length === errorsBefore) emptySources.push(typeof s.file === 'string' ? s.file : names[i]);
    for (const ex of read) rows.push({ ex: { ...ex, meta: { ...ex.meta, source: ex.meta.source ?? names[i] } }, source: i });
  }
  summary.setRowErrors(rowErrors);

  // 2. Filters over all sources together (so de-duplication works across them).
  let kept = rows;
  let report: FilterReport | null = null;
  if (opts.filters?.length) {
    const bySource = new Map(rows.map((r) => [r.ex, r.source]));
    const res = applyFilters(rows.map((r) => r.ex), opts.filters);
    report = res.report;
    kept = res.kept.map((ex) => ({ ex, source: bySource.get(ex)! }));
  }
  summary.setFilters(report);

  // 3. Template + tokenizer + labels.
  const perSource: TokenizedExample[][] = opts.sources.map(() => []);
  for (const { ex, source } of kept) {
    const r = labelExample(ex, opts.template ?? null, tokenizer, {
      mask, trainEndOfTurn: opts.trainEndOfTurn, maxLength, truncation, rejectSpecialTokenForgery: opts.rejectSpecialTokenForgery,
      literalSpecialTokens: opts.literalSpecialTokens,
    });
    summary.addRow(names[source], ex.meta, r);
    perSource[source].push(...r.examples);
  }

  // 4. Mixture by weight, or all sources in order.
  let examples: TokenizedExample[];
  if (opts.sources.some((s) => s.weight !== undefined)) {
    const sources = opts.sources.map((s, i) => ({ name: names[i], examples: perSource[i], weight: s.weight ?? 1 }));
    examples = mixExamples(sources, { seed: opts.seed ?? 0, total: opts.mixtureTotal });
    const drawn: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
    for (const e of examples) drawn[String(e.meta.mixtureSource)]++;
    summary.setMixture({ total: examples.length, drawn, weights: Object.fromEntries(sources.map((s) => [s.name, s.weight])) });
  } else examples = perSource.flat();

  if (opts.curriculum) examples = curriculumOrder(examples, opts.curriculum);
  if (opts.packing) {
    const rowsPacked = packExamples(examples, opts.seqLen!, opts.packing);
    const tokens = examples.reduce((n, e) => n + e.inputIds.length, 0);
    summary.setPacking({ strategy: opts.packing, seqLen: opts.seqLen!, rows: rowsPacked.length, fill: rowsPacked.length ? tokens / (rowsPacked.length * opts.seqLen!) : 0 });
  }
  const final = summary.finish();
  if (examples.length === 0) {
    // Say why, with the first causes and where they are.
    const causes = [
      ...emptySources.map((f) => `${f}: no rows (the file is empty)`),
      ...final.rowErrors.map((e) => e.message),
      ...final.dropped.rows.map((d) => `${String(d.file ?? d.source)}:${String(d.line ?? '?')}: dropped (${d.reason}): ${d.detail}`),
    ];
    const shown = causes.slice(0, 5).map((c) => `\n  ${c}`).join('');
    throw new Error(`no training examples left: ${final.rows} rows read, ${final.rowErrors.length} bad, ${final.dropped.total} dropped (${Object.entries(final.dropped.byReason).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}), ` +
      `${report ? report.input - report.kept : 0} filtered${shown}${causes.length > 5 ? `\n  ... and ${causes.length - 5} more` : ''}`);
  }

  return {
    examples,
    summary: final,
    batches: (b) => iterateBatches(examples, {
      batchSize: b.batchSize, padTokenId: tokenizer.padTokenId, seqLen: opts.seqLen, packing: opts.packing ?? false,
      shuffle: b.shuffle ?? !opts.curriculum, seed: b.seed ?? opts.seed ?? 0, epochs: b.epochs ?? 1, firstEpoch: b.firstEpoch, dropLast: b.dropLast,
    }),
  };
}
