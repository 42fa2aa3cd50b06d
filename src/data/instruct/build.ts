/**
 * Builds the bundled instruction set: train / validation / test splits of TRL "messages"
 * rows, a plain-prose pretraining corpus, and a manifest. Deterministic: the same options
 * give the same bytes on every machine.
 *
 * How the splits keep generalisation measurable:
 * - Inputs: every input has a key (`add:12:5`, `fact:capital:Peru`, `reverse:cat`). A hash of
 *   the key puts it in one split (~10% test, ~10% validation, the rest train), so validation
 *   and test inputs never occur in training. Keys are shared across families, so a fact held
 *   out of the qa family is also held out of the system family.
 * - Phrasings: each family holds out 2 of its 8 templates. Those appear only in the test split,
 *   which is half held-out phrasings (`phrasing: "unseen"`) and half training phrasings on
 *   fresh inputs (`phrasing: "seen"`). Validation uses training phrasings only.
 *
 * @example
 * const set = buildInstructSet({ seed: 1234, n: 4000 });
 * set.train.length;        // 4000 generated + hand-written training rows
 * instructFiles(set)['test.jsonl'].split('\n')[0]; // '{"messages":[...],"source":"generator",...}'
 */
import { FACTS } from './facts.js';
import { FAMILIES, factSentences, getFamily, trainTemplates } from './families.js';
import { toolUseFamily } from './tools.js';
import { HUMAN_ROWS, humanSplit } from './human.js';
import { hash32, Rng } from '../../utils/random.js';
import type { BuiltExample, Family, FamilyName, InstructMessage, InstructRow, Split } from './types.js';
import { lengthStats, type LengthStats } from '../summary.js';

/** Bumped whenever a change to the generator changes its output. */
export const GENERATOR_VERSION = 2;
export const DEFAULT_SEED = 1234;
/** Generated training rows by default (hand-written rows come on top). */
export const DEFAULT_N = 4000;
export const DEFAULT_PRETRAIN_DOCS = 3000;
export const SPLITS: readonly Split[] = ['train', 'valid', 'test'];

/** Share of the input space reserved for each held-out split (by key hash). */
const TEST_FRACTION = 0.1;
const VALID_FRACTION = 0.1;
/** Draws tried for a row that is not already in the split before a duplicate is accepted. */
const UNIQUE_ATTEMPTS = 20;

export interface BuildOptions {
  seed?: number;
  /** Generated training rows; validation and test get n / 10 each. */
  n?: number;
  /** Mixture weights by family (default: each family's `weight`); normalised to sum to 1. */
  weights?: Partial<Record<FamilyName, number>>;
  /** Documents in the pretraining corpus. */
  pretrainDocs?: number;
  /**
   * Token length of a conversation (as the model sees it, chat template included) or of a
   * pretraining text, for the manifest's token statistics; omitted: character statistics only.
   */
  tokenLength?: (item: { messages: InstructMessage[]; tools?: readonly object[] } | { text: string }) => number;
  /** Names the tokenizer and chat template behind tokenLength in the manifest. */
  tokenizerName?: string;
}


export interface InstructManifest {
  name: string;
  generatorVersion: number;
  seed: number;
  n: number;
  files: Record<string, { rows: number; bytes: number }>;
  counts: Record<Split, { total: number; generator: number; human: number }>;
  mixtureWeights: Record<string, number>;
  families: Record<string, {
    description: string;
    weight: number;
    templates: { train: string[]; heldOut: string[] };
    counts: Record<Split, number>;
    testPhrasing: { seen: number; unseen: number; human: number };
  }>;
  templatesBySplit: Record<Split, string[]>;
  duplicatesWithinSplit: Record<Split, number>;
  lengths: {
    measure: string;
    chars: Record<Split | 'pretrain', LengthStats>;
    tokens: { tokenizer: string; measure: string; stats: Record<Split | 'pretrain', LengthStats> } | null;
  };
  pretrain: { documents: number };
}

export interface InstructSet {
  train: InstructRow[];
  valid: InstructRow[];
  test: InstructRow[];
  pretrain: Array<{ text: string }>;
  manifest: InstructManifest;
  /** The tool_use family's splits (their own files). */
  tools: Record<Split, InstructRow[]>;
}

/** The split an input belongs to, from its key alone (the same for every seed). */
export function inputSplit(key: string): Split {
  const u = hash32(`split|${key}`) / 4294967296;
  return u < TEST_FRACTION ? 'test' : u < TEST_FRACTION + VALID_FRACTION ? 'valid' : 'train';
}

/** Draws an input of `family` whose key belongs to `split` (rejection sampling). */
function drawFor(family: Family<any>, rng: Rng, split: Split): unknown {
  for (let i = 0; i < 100_000; i++) {
    const input = family.draw(rng);
    if (inputSplit(family.key(input)) === split) return input;
  }
  throw new Error(`instruct: family '${family.name}' found no input for the ${split} split`);
}

/**
 * Regenerates one row from its provenance: family, template id (without the family prefix),
 * the row's seed and split. The result's messages equal those of the row in the files.
 */
export function generateRow(family: FamilyName | string, template: string, seed: number, split: Split): BuiltExample & { key: string } {
  const f = getFamily(family);
  const rng = new Rng(seed);
  const input = drawFor(f, rng, split);
  return { ...f.build(input, template, rng), key: f.key(input) };
}

/** Splits `total` by weights with the largest-remainder method (exact total, deterministic). */
export function apportion(weights: number[], total: number): number[] {
  const sum = weights.reduce((s, w) => s + w, 0);
  if (!(sum > 0)) throw new Error('instruct: mixture weights must have a positive sum');
  const exact = weights.map((w) => (w / sum) * total);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((s, x) => s + x, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((p, q) => q[0] - p[0] || p[1] - q[1]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    out[i]++;
  }
  return out;
}

function resolveWeights(opts: BuildOptions): Record<string, number> {
  for (const k of Object.keys(opts.weights ?? {})) getFamily(k);
  const raw = FAMILIES.map((f) => opts.weights?.[f.name] ?? f.weight);
  if (raw.some((w) => !(w >= 0))) throw new Error('instruct: mixture weights must be non-negative numbers');
  const sum = raw.reduce((s, w) => s + w, 0);
  return Object.fromEntries(FAMILIES.map((f, i) => [f.name, round6(raw[i] / sum)]));
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

const messagesKey = (r: { messages: unknown }) => JSON.stringify(r.messages);

/** The text a row's length is measured on: its message contents, one per line (no chat template). */
export function rowText(row: { messages: Array<{ content: string }> }): string {
  return row.messages.map((m) => m.content).join('\n');
}

function generateSplit(
  split: Split, count: number, seed: number, weights: Record<string, number>, dups: Record<Split, number>, families: readonly Family<any>[] = FAMILIES,
): InstructRow[] {
  const perFamily = apportion(families.map((f) => weights[f.name]), count);
  const rows: InstructRow[] = [];
  const seen = new Set<string>();
  families.forEach((f, fi) => {
    const n = perFamily[fi];
    const seenTemplates = trainTemplates(f);
    const unseenCount = split === 'test' ? Math.ceil(n / 2) : 0;
    for (let i = 0; i < n; i++) {
      const unseen = i < unseenCount;
      const template = unseen ? f.heldOut[i % f.heldOut.length] : seenTemplates[(i - unseenCount) % seenTemplates.length];
      let built: BuiltExample | undefined;
      let rowSeed = 0;
      for (let attempt = 0; attempt < UNIQUE_ATTEMPTS; attempt++) {
        rowSeed = hash32(`${seed}:${split}:${f.name}:${i}:${attempt}`);
        built = generateRow(f.name, template, rowSeed, split);
        if (!seen.has(messagesKey(built))) break;
      }
      const k = messagesKey(built!);
      if (seen.has(k)) dups[split]++;
      seen.add(k);
      rows.push({
        messages: built!.messages, tools: built!.tools, source: 'generator', family: f.name, template: `${f.name}/${template}`, seed: rowSeed, split, id: '',
        ...(split === 'test' ? { phrasing: unseen ? 'unseen' as const : 'seen' as const } : {}),
        ...(split !== 'train' ? { eval: built!.eval } : {}),
      });
    }
  });
  return rows;
}

function shuffleInPlace<T>(items: T[], rng: Rng): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j], items[i]];
  }
}

/**
 * Plain-prose documents: first every fact of the table in each of its forms, then random
 * sentences from every family, about inputs of the training split.
 */
function buildPretrain(seed: number, docs: number, weights: Record<string, number>): Array<{ text: string }> {
  const rng = new Rng(hash32(`${seed}:pretrain`));
  const facts = FACTS.flatMap(factSentences);
  shuffleInPlace(facts, rng);
  const out: Array<{ text: string }> = [];
  for (let i = 0; i < facts.length && out.length < docs; i += 6) out.push({ text: facts.slice(i, i + 6).join(' ') });
  // Prose follows the mixture, but every family keeps some presence so the base model knows the whole domain.
  const w = FAMILIES.map((f) => Math.max(weights[f.name], 0.03));
  const wsum = w.reduce((s, x) => s + x, 0);
  while (out.length < docs) {
    const k = rng.int(4, 8);
    const sentences: string[] = [];
    for (let j = 0; j < k; j++) {
      let r = rng.float() * wsum;
      let fi = 0;
      while (r >= w[fi] && fi < w.length - 1) r -= w[fi++];
      const f = FAMILIES[fi];
      sentences.push(f.prose(rng, () => drawFor(f, rng, 'train')));
    }
    out.push({ text: sentences.join(' ') });
  }
  return out;
}

/** Serialises rows as JSONL (one JSON object per line, trailing newline). */
export function toJsonl(rows: readonly object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
}

export function buildInstructSet(opts: BuildOptions = {}): InstructSet {
  const seed = opts.seed ?? DEFAULT_SEED;
  const n = opts.n ?? DEFAULT_N;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`instruct: seed must be a non-negative integer, got ${seed}`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`instruct: n must be a positive integer, got ${n}`);
  const weights = resolveWeights(opts);
  const heldCount = Math.max(1, Math.round(n / 10));
  const dups: Record<Split, number> = { train: 0, valid: 0, test: 0 };
  const splits: Record<Split, InstructRow[]> = {
    train: generateSplit('train', n, seed, weights, dups),
    valid: generateSplit('valid', heldCount, seed, weights, dups),
    test: generateSplit('test', heldCount, seed, weights, dups),
  };

  // Hand-written rows: split by position within their family, never equal to a generated row,
  // and sharing no user turn with a generated row of another split (that would leak an input).
  const generated = new Map<string, Split>();
  const userTurns = new Map<string, Split>();
  for (const s of SPLITS) {
    for (const r of splits[s]) {
      generated.set(messagesKey(r), s);
      for (const m of r.messages) if (m.role === 'user') userTurns.set(m.content, s);
    }
  }
  const perFamily = new Map<string, number>();
  for (const h of HUMAN_ROWS) {
    const idx = perFamily.get(h.family) ?? 0;
    perFamily.set(h.family, idx + 1);
    const split = humanSplit(idx);
    const k = messagesKey(h);
    if (generated.has(k)) throw new Error(`instruct: hand-written ${h.family} row ${idx} equals a generated ${generated.get(k)} row`);
    for (const m of h.messages) {
      const other = m.role === 'user' ? userTurns.get(m.content) : undefined;
      if (other !== undefined && other !== split) {
        throw new Error(`instruct: hand-written ${h.family} row ${idx} (${split}) asks ${JSON.stringify(m.content)}, an input of the ${other} split: rephrase it`);
      }
    }
    generated.set(k, split);
    splits[split].push({
      messages: h.messages, source: 'human', family: h.family, template: `${h.family}/human`, seed: null, split, id: '',
      ...(split === 'test' ? { phrasing: 'human' as const } : {}),
      ...(split !== 'train' ? { eval: h.eval } : {}),
    });
  }

  // Shuffle so any prefix of a file is a fair sample of the mixture; then number the rows.
  for (const s of SPLITS) {
    shuffleInPlace(splits[s], new Rng(hash32(`${seed}:shuffle:${s}`)));
    splits[s].forEach((r, i) => (r.id = `${s}-${String(i).padStart(5, '0')}`));
  }
  // Key order of every row, fixed for stable bytes: messages first, as TRL readers expect.
  for (const s of SPLITS) splits[s] = splits[s].map(orderRow);

  const pretrain = buildPretrain(seed, opts.pretrainDocs ?? DEFAULT_PRETRAIN_DOCS, weights);
  const manifest = buildManifest(splits, pretrain, seed, n, weights, dups, opts);
  return { ...splits, pretrain, manifest, tools: buildToolUseSplits(seed) };
}

/** Rows of the tool_use family per split (held-out phrasings in half the test rows, as in the mixture). */
export const TOOL_USE_ROWS = { train: 300, valid: 30, test: 30 } as const;

/**
 * The tool_use family's own files (tools-train.jsonl, ...). They stay out of the main mixture,
 * whose text the bundled tokenizer and base model were trained from; train on them beside it
 * (`--data demo/data/train.jsonl,demo/data/tools-train.jsonl`).
 */
function buildToolUseSplits(seed: number): Record<Split, InstructRow[]> {
  const dups: Record<Split, number> = { train: 0, valid: 0, test: 0 };
  const out = {} as Record<Split, InstructRow[]>;
  for (const s of SPLITS) {
    const rows = generateSplit(s, TOOL_USE_ROWS[s], seed, { tool_use: 1 }, dups, [toolUseFamily]);
    shuffleInPlace(rows, new Rng(hash32(`${seed}:tools:shuffle:${s}`)));
    rows.forEach((r, i) => (r.id = `tools-${s}-${String(i).padStart(5, '0')}`));
    out[s] = rows.map(orderRow);
  }
  return out;
}

function orderRow(r: InstructRow): InstructRow {
  const { messages, tools, source, family, template, seed, split, id, phrasing, eval: spec } = r;
  return { messages, ...(tools ? { tools } : {}), source, family, template, seed, split, id, ...(phrasing ? { phrasing } : {}), ...(spec ? { eval: spec } : {}) };
}

function buildManifest(
  splits: Record<Split, InstructRow[]>, pretrain: Array<{ text: string }>, seed: number, n: number,
  weights: Record<string, number>, dups: Record<Split, number>, opts: BuildOptions,
): InstructManifest {
  const files: InstructManifest['files'] = {};
  for (const s of SPLITS) files[`${s}.jsonl`] = { rows: splits[s].length, bytes: utf8Length(toJsonl(splits[s])) };
  files['pretrain.jsonl'] = { rows: pretrain.length, bytes: utf8Length(toJsonl(pretrain)) };
  const counts = Object.fromEntries(SPLITS.map((s) => {
    const human = splits[s].filter((r) => r.source === 'human').length;
    return [s, { total: splits[s].length, generator: splits[s].length - human, human }];
  })) as InstructManifest['counts'];
  const families: InstructManifest['families'] = {};
  for (const f of FAMILIES) {
    const of = (s: Split) => splits[s].filter((r) => r.family === f.name);
    const test = of('test');
    families[f.name] = {
      description: f.description,
      weight: weights[f.name],
      templates: { train: trainTemplates(f), heldOut: [...f.heldOut] },
      counts: { train: of('train').length, valid: of('valid').length, test: test.length },
      testPhrasing: {
        seen: test.filter((r) => r.phrasing === 'seen').length,
        unseen: test.filter((r) => r.phrasing === 'unseen').length,
        human: test.filter((r) => r.phrasing === 'human').length,
      },
    };
  }
  const templatesBySplit = Object.fromEntries(SPLITS.map((s) => [s, [...new Set(splits[s].map((r) => r.template))].sort()])) as Record<Split, string[]>;
  const chars = (item: { messages: InstructMessage[] } | { text: string }) => ('text' in item ? item.text : rowText(item)).length;
  const stat = (f: (item: { messages: InstructMessage[] } | { text: string }) => number) => ({
    train: lengthStats(splits.train.map(f)), valid: lengthStats(splits.valid.map(f)), test: lengthStats(splits.test.map(f)), pretrain: lengthStats(pretrain.map(f)),
  });
  return {
    name: 'webtune-instruct',
    generatorVersion: GENERATOR_VERSION,
    seed,
    n,
    files,
    counts,
    mixtureWeights: weights,
    families,
    templatesBySplit,
    duplicatesWithinSplit: dups,
    lengths: {
      measure: 'chars: message contents joined by newlines, without a chat template; pretrain: the text',
      chars: stat(chars),
      tokens: opts.tokenLength
        ? { tokenizer: opts.tokenizerName ?? 'unnamed', measure: 'tokens of the conversation rendered with the chat template; pretrain: the text', stats: stat(opts.tokenLength) }
        : null,
    },
    pretrain: { documents: pretrain.length },
  };
}

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

/** The files `webtune data` writes, by name, as text. */
export function instructFiles(set: InstructSet): Record<string, string> {
  return {
    'train.jsonl': toJsonl(set.train),
    'valid.jsonl': toJsonl(set.valid),
    'test.jsonl': toJsonl(set.test),
    'pretrain.jsonl': toJsonl(set.pretrain),
    'tools-train.jsonl': toJsonl(set.tools.train),
    'tools-valid.jsonl': toJsonl(set.tools.valid),
    'tools-test.jsonl': toJsonl(set.tools.test),
    'manifest.json': JSON.stringify(set.manifest, null, 2) + '\n',
  };
}

/**
 * Parses JSONL text into objects, with errors that name the file and line.
 * Blank lines are skipped.
 */
export function parseJsonl<T = Record<string, unknown>>(text: string, file = '<jsonl>'): T[] {
  const out: T[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: invalid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  });
  return out;
}
