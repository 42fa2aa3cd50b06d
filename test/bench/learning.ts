/**
 * Learning benchmark (not part of the test suite): does fine-tuning teach the bundled base model
 * to answer, and which options change how much it learns? Each variant fine-tunes the same base on
 * the bundled training split with `webtune train`, once per seed, then `webtune eval` scores greedy
 * answers on the whole held-out test split. Printed (and written to <out>/learning.md) as a
 * markdown table of mean ± standard deviation over the seeds, and a second table of each
 * comparison's difference with whether it exceeds the noise.
 *
 *   npx tsx test/bench/learning.ts [--steps 100] [--seeds 3] [--limit 0] [--base models/base] [--backend webgpu] [--eval-batch-size 16]
 *
 * Variants, all against "full, assistant mask, packed": every token trained (--mask all); only the
 * last assistant turn trained (--mask last), read on the multi-turn family, whose earlier turns are
 * the only ones it drops; NEFTune (alpha 5); LoRA (r 8, alpha 16, every linear layer) instead of
 * full fine-tuning, plain and with whole modules trained beside it (--lora-modules-to-save, PEFT's
 * modules_to_save; by default `wte,lm_head`, separate trained copies of the tied input and output
 * embeddings: the base model never saw the chat markers, so their frozen rows carry nothing a plain
 * adapter can use); padded rows instead of packed ones (same rows per step, so fewer examples).
 * Every variant sees the same batches for a given seed (same packing and steps), so the columns
 * differ only by the option named; the seed changes the shuffling (and LoRA's initialisation).
 *
 * Noise: a difference "exceeds the noise" when |mean difference| > 2 x its standard error,
 * sqrt(sd_a^2 / k + sd_b^2 / k) over k seeds, with each sd at least the binomial standard error
 * of one run's accuracy on the scored rows (so two runs that agree by chance are not called exact).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseFlags } from '../../src/cli/args.js';
import { run as train } from '../../src/cli/train.js';
import { run as evalCli } from '../../src/cli/eval.js';
import { lastStep, pct, quiet, table } from './cli_runs.js';

const SPEC = {
  steps: { type: 'number', default: 100, help: 'optimizer steps per variant' },
  seeds: { type: 'number', default: 3, help: 'training seeds per variant (42, 43, ...)' },
  limit: { type: 'number', default: 0, help: 'held-out test rows scored per variant (0 = all)' },
  base: { type: 'string', default: 'models/base', help: 'base checkpoint' },
  data: { type: 'string', default: 'demo/data/train.jsonl', help: 'training split' },
  test: { type: 'string', default: 'demo/data/test.jsonl', help: 'held-out split with eval specs' },
  backend: { type: 'string', default: 'webgpu', help: 'training backend (webgpu or cpu)' },
  'eval-backend': { type: 'string', default: 'cpu', help: 'generation backend for the evaluation (with the bundled model, cpu is usually faster here, batched or not)' },
  'eval-batch-size': { type: 'number', default: 16, help: 'rows decoded together in each evaluation (webtune eval --batch-size; the same answers as 1)' },
  lr: { type: 'number', default: 2e-3, help: 'learning rate of full fine-tuning (LoRA uses 2.5x)' },
  out: { type: 'string', help: 'working directory (default: a temporary one)' },
  'modules-to-save': { type: 'string', default: 'wte,lm_head', help: 'modules_to_save of the further LoRA variants (--lora-modules-to-save), one variant per ;-separated entry (Llama: embed_tokens;embed_tokens,lm_head)' },
  only: { type: 'string', help: 'comma-separated variant names to run (default: all)' },
} as const;

interface Variant { name: string; method: 'full' | 'lora'; extra: string[]; packing: boolean; family?: string }
interface Score { overall: number; n: number; byFamily: Record<string, number>; seconds: number }

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (k - 1); 0 for one value. */
const sd = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
const pm = (xs: number[]) => `${(mean(xs) * 100).toFixed(1)} ± ${(sd(xs) * 100).toFixed(1)}`;

async function main(): Promise<void> {
  const f = parseFlags('learning', process.argv.slice(2), SPEC, 'Learning benchmark: held-out accuracy before/after SFT and per option, mean ± std over seeds.');
  if (!f) return;
  const work = f.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-learning-'));
  fs.mkdirSync(work, { recursive: true });
  const steps = f.steps!;
  const seeds = Array.from({ length: f.seeds! }, (_, i) => 42 + i);
  const common = ['--data', f.data!, '--max-length', '256', '--batch-size', '8', '--schedule', 'cosine', '--warmup', String(Math.max(1, Math.round(steps / 20))),
    '--steps', String(steps), '--backend', f.backend!, '--log-every', String(Math.max(1, Math.round(steps / 4)))];
  const lr = f.lr!;
  const full = (name: string, extra: string[], packing = true, family?: string): Variant =>
    ({ name, method: 'full', extra: ['--model', f.base!, '--lr', String(lr), ...extra], packing, family });
  const lora = (name: string, extra: string[]): Variant =>
    ({ name, method: 'lora', extra: ['--model', f.base!, '--mask', 'assistant', '--lr', String(lr * 2.5), '--lora-r', '8', '--lora-alpha', '16', '--lora-targets', 'all-linear', ...extra], packing: true });
  const reference = full('full, assistant mask, packed', ['--mask', 'assistant']);
  const variants: Variant[] = [
    reference,
    full('full, every token trained (--mask all)', ['--mask', 'all']),
    full('full, last assistant turn only (--mask last)', ['--mask', 'last'], true, 'multiturn'),
    full('full + NEFTune alpha 5', ['--mask', 'assistant', '--neftune-alpha', '5']),
    lora('LoRA r8 all-linear', []),
    ...f['modules-to-save']!.split(';').map((m) => m.trim()).filter(Boolean).map((m) => lora(`LoRA r8 all-linear + modules_to_save ${m}`, ['--lora-modules-to-save', m])),
    full('full, padded rows (no packing)', ['--mask', 'assistant'], false),
  ];
  const only = f.only ? new Set(f.only.split(',').map((s) => s.trim())) : undefined;
  const evalArgs = (model: string, adapter?: string) => ['--model', model, ...(adapter ? ['--adapter', adapter] : []), '--data', f.test!, '--json',
    '--backend', f['eval-backend']!, '--max-new-tokens', '32', '--batch-size', String(f['eval-batch-size']), ...(f.limit ? ['--limit', String(f.limit)] : [])];
  const familyN = (() => {
    const rows = fs.readFileSync(f.test!, 'utf8').trim().split('\n').slice(0, f.limit || undefined).map((l) => JSON.parse(l) as { family: string });
    const n: Record<string, number> = {};
    for (const r of rows) n[r.family] = (n[r.family] ?? 0) + 1;
    return n;
  })();
  const evaluate = async (model: string, adapter?: string): Promise<Score> => {
    const r = await quiet(() => evalCli(evalArgs(model, adapter)));
    return JSON.parse(r.out.trim().split('\n').pop()!);
  };

  const t0 = Date.now();
  console.error(`learning benchmark in ${work}: ${steps} steps per variant, seeds ${seeds.join(', ')}, ${f.limit || 'all'} held-out rows`);
  const rows: string[][] = [];
  if (!only || only.has('base')) {
    const e = await evaluate(f.base!);
    rows.push(['base (before SFT)', '-', '-', '-', pct(e.overall), '-', '-']);
    console.error(`base: ${pct(e.overall)}`);
  }
  const results = new Map<Variant, { acc: number[]; fam: number[]; famOf: Record<string, number[]>; famN: number; n: number; loss: number[]; secs: number[]; trainable: string; tokens: number }>();
  for (const [i, v] of variants.entries()) {
    if (only && !only.has(v.name) && !only.has(String(i + 1)) && v !== reference) continue;
    const r = { acc: [] as number[], fam: [] as number[], famOf: {} as Record<string, number[]>, famN: v.family ? familyN[v.family] : 0, n: 0, loss: [] as number[], secs: [] as number[], trainable: '', tokens: 0 };
    for (const seed of seeds) {
      const out = path.join(work, `v${i + 1}-s${seed}`);
      const t = await quiet(() => train([...common, ...(v.packing ? ['--packing'] : []), ...v.extra, '--seed', String(seed), '--out', out]));
      if (t.code !== 0) throw new Error(`${v.name} (seed ${seed}): webtune train exited ${t.code}\n${t.out}`);
      const last = lastStep(out);
      r.trainable = /trainable params: ([\d,]+)/.exec(t.out)?.[1] ?? 'all';
      r.tokens = last.tokens;
      const e = v.method === 'lora' ? await evaluate(f.base!, out) : await evaluate(out);
      r.acc.push(e.overall);
      r.n = e.n;
      if (v.family) r.fam.push(e.byFamily[v.family] ?? 0);
      for (const [fam, acc] of Object.entries(e.byFamily)) (r.famOf[fam] ??= []).push(acc);
      r.loss.push(last.loss);
      r.secs.push(last.elapsed_ms / 1000);
      console.error(`${v.name}, seed ${seed}: loss ${last.loss.toFixed(3)}, accuracy ${pct(e.overall)} (${JSON.stringify(e.byFamily)})`);
    }
    results.set(v, r);
    rows.push([v.name, v.method === 'lora' ? `${r.trainable}` : 'all', r.tokens.toLocaleString('en-US'), `${mean(r.secs).toFixed(0)}s`,
      pm(r.acc), v.family ? `${v.family}: ${pm(r.fam)}` : '-', mean(r.loss).toFixed(3)]);
  }
  const header = ['variant', 'trained params', 'tokens per run', 'train wall time (mean)', `held-out accuracy, % (mean ± sd, ${seeds.length} seeds)`, 'family read', 'final train loss (mean)'];

  // Each comparison against the reference, on the overall accuracy (or the family it is about).
  const ref = results.get(reference)!;
  const binomialSd = (p: number, n: number) => Math.sqrt(Math.max(p * (1 - p), 1 / n) / n);
  const cmp: string[][] = [];
  for (const [v, r] of results) {
    if (v === reference) continue;
    // A family variant is read on that family's rows, in both runs.
    const [a, b, n] = v.family ? [r.fam, ref.famOf[v.family] ?? [], r.famN] : [r.acc, ref.acc, r.n];
    if (!b.length) continue;
    const sdA = Math.max(sd(a), binomialSd(mean(a), n));
    const sdB = Math.max(sd(b), binomialSd(mean(b), n));
    const diff = mean(a) - mean(b);
    const se = Math.sqrt(sdA ** 2 / a.length + sdB ** 2 / b.length);
    cmp.push([v.name, v.family ?? 'overall', `${(diff * 100).toFixed(1)}`, `${(se * 100).toFixed(1)}`, Math.abs(diff) > 2 * se ? `yes (${diff > 0 ? 'better' : 'worse'})` : 'no']);
  }
  const md = `${table(header, rows)}\n\n${table(['against "full, assistant mask, packed"', 'measured on', 'difference (points)', 'standard error (points)', 'exceeds the noise (|diff| > 2 se)'], cmp)}\n\n` +
    `Base ${f.base}; data ${f.data}; test ${f.test} (${ref?.n ?? '?'} rows); ${steps} steps of 8 rows of 256 tokens; lr ${lr} (LoRA ${lr * 2.5}); seeds ${seeds.join(', ')}; training backend ${f.backend}; total ${((Date.now() - t0) / 60000).toFixed(1)} min.\n`;
  fs.writeFileSync(path.join(work, 'learning.md'), md);
  console.log(md);
}

main().then(() => process.exit(0), (e) => { console.error(e instanceof Error ? e.stack : e); process.exit(1); });
