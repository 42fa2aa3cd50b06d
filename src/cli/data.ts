/**
 * `webtune data --out DIR [--seed S] [--n N] [--weights f=w,...] [--pretrain-docs D] [--check]`:
 * writes the bundled instruction set (train.jsonl, valid.jsonl, test.jsonl, pretrain.jsonl,
 * manifest.json, README.md) into DIR. Deterministic: the same flags give the same bytes.
 * With --check, writes nothing and exits 1 if the files in DIR differ from what would be written.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError, parseFlags } from './args.js';
import {
  buildInstructSet, DEFAULT_N, DEFAULT_PRETRAIN_DOCS, DEFAULT_SEED, FAMILY_NAMES, instructFiles, renderDataReadme,
  type BuildOptions, type FamilyName,
} from '../data/instruct/index.js';
import { loadBundledTokenizer } from '../data/tokenizer.js';
import { renderChat } from '../data/template.js';

const spec = {
  out: { type: 'string', required: true, help: 'output directory (demo/data for the bundled set)' },
  seed: { type: 'number', default: DEFAULT_SEED, help: 'seed of every random draw' },
  n: { type: 'number', default: DEFAULT_N, help: 'generated training rows (validation and test: n/10 each; hand-written rows on top)' },
  weights: { type: 'string', help: `mixture weights, e.g. arithmetic=0.2,refusal=0.1 (families: ${FAMILY_NAMES.join(', ')}; unnamed keep their default)` },
  'pretrain-docs': { type: 'number', default: DEFAULT_PRETRAIN_DOCS, help: 'documents in pretrain.jsonl' },
  tokens: { type: 'boolean', default: true, help: 'token-length statistics with the bundled tokenizer (--tokens=false: characters only)' },
  check: { type: 'boolean', help: 'write nothing; exit 1 if the files in --out differ from a fresh generation' },
} as const;

export function parseWeights(text: string): Partial<Record<FamilyName, number>> {
  const out: Partial<Record<FamilyName, number>> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = part.split('=');
    if (!(FAMILY_NAMES as readonly string[]).includes(name)) throw new CliError(`data: --weights names unknown family '${name}' (families: ${FAMILY_NAMES.join(', ')})`);
    const w = Number(value);
    if (value === undefined || !Number.isFinite(w) || w < 0) throw new CliError(`data: --weights ${name} needs a non-negative number, got '${value ?? ''}'`);
    out[name as FamilyName] = w;
  }
  return out;
}

/**
 * The command that regenerates a set, as its README shows it: `npm run data` for the default
 * flags, else the full command with the flags that change the output (the output directory
 * does not change it, so the README is the same wherever the set is written).
 */
export function dataCommandLine(argv: string[]): string {
  const flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') i++;
    else if (!a.startsWith('--out=') && a !== '--check' && a !== '--check=true') flags.push(a);
  }
  if (flags.length === 0) return 'npm run data';
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['npx tsx src/cli/main.ts data --out DIR', ...flags.map(quote)].join(' ');
}

/** Generates every file of the set, by name. */
export async function generateDataFiles(opts: BuildOptions & { tokens?: boolean }, command: string): Promise<Record<string, string>> {
  const build: BuildOptions = { ...opts };
  if (opts.tokens !== false) {
    const tok = await loadBundledTokenizer();
    if (!tok.chatTemplate) throw new Error('data: the bundled tokenizer has no chat_template to measure conversations with');
    const template = { name: 'models/tokenizer', source: tok.chatTemplate, bosToken: tok.bosToken ?? '', eosToken: tok.eosToken };
    build.tokenLength = (item) => tok.encode('text' in item ? item.text : renderChat(template, item.messages, { tools: item.tools ? [...item.tools] : null })).ids.length;
    build.tokenizerName = `bundled byte-level BPE (models/tokenizer, vocabulary ${tok.vocabSize}) and its ChatML chat template`;
  }
  const set = buildInstructSet(build);
  return { ...instructFiles(set), 'README.md': renderDataReadme(set, command) };
}

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags('data', argv, spec, 'Regenerate the bundled instruction set (deterministic).');
  if (!f) return 0;
  const seed = f.seed!;
  const n = f.n!;
  const docs = f['pretrain-docs']!;
  if (!Number.isInteger(seed) || seed < 0) throw new CliError(`data: --seed must be a non-negative integer, got ${seed}`);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`data: --n must be a positive integer, got ${n}`);
  if (!Number.isInteger(docs) || docs < 1) throw new CliError(`data: --pretrain-docs must be a positive integer, got ${docs}`);
  const files = await generateDataFiles(
    { seed, n, pretrainDocs: docs, weights: f.weights ? parseWeights(f.weights) : undefined, tokens: f.tokens },
    dataCommandLine(argv),
  );
  const dir = f.out!;
  if (f.check) {
    const stale: string[] = [];
    for (const [name, text] of Object.entries(files)) {
      const have = await readFile(join(dir, name), 'utf8').catch(() => null);
      if (have !== text) stale.push(have === null ? `${name} (missing)` : name);
    }
    if (stale.length) {
      console.error(`data: ${dir} differs from a fresh generation: ${stale.join(', ')}. Regenerate with the same flags without --check.`);
      return 1;
    }
    console.log(`data: ${dir} is up to date (${Object.keys(files).length} files).`);
    return 0;
  }
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const m = JSON.parse(files['manifest.json']);
  console.log(`data: wrote ${Object.keys(files).join(', ')} to ${dir}: train ${m.counts.train.total}, valid ${m.counts.valid.total}, test ${m.counts.test.total} rows, ${m.pretrain.documents} pretraining documents.`);
  return 0;
}
