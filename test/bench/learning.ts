/**
 * Learning benchmark (not part of the test suite): does fine-tuning teach the bundled base model
 * to answer, and how do the main options compare? Each variant fine-tunes the same base on the
 * bundled training split with `webtune train`, then `webtune eval` scores greedy answers on the
 * held-out test split. Printed (and written to <out>/learning.md) as a markdown table.
 *
 *   npx tsx test/bench/learning.ts [--steps 40] [--limit 150] [--base models/base] [--backend webgpu]
 *
 * Variants: the base model before SFT; full fine-tuning with the assistant-only loss mask; the
 * same with every token trained (--mask all); the same with NEFTune (alpha 5); LoRA (r 8, alpha 16,
 * every linear layer) instead of full fine-tuning, plain and with whole modules trained beside it
 * (--lora-modules-to-save, PEFT's modules_to_save; by default one variant with the input embedding
 * `wte` and one with `wte,lm_head`, i.e. separate trained copies of the tied input and output
 * embeddings): the base model never saw the chat markers, so their frozen rows carry nothing a
 * plain adapter can use. Every variant
 * sees the same batches (same seed, packing and steps), so the columns differ only by the option named.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseFlags } from '../../src/cli/args.js';
import { run as train } from '../../src/cli/train.js';
import { run as evalCli } from '../../src/cli/eval.js';

const SPEC = {
  steps: { type: 'number', default: 40, help: 'optimizer steps per variant' },
  limit: { type: 'number', default: 150, help: 'held-out test rows scored per variant (0 = all 409)' },
  base: { type: 'string', default: 'models/base', help: 'base checkpoint' },
  data: { type: 'string', default: 'demo/data/train.jsonl', help: 'training split' },
  test: { type: 'string', default: 'demo/data/test.jsonl', help: 'held-out split with eval specs' },
  backend: { type: 'string', default: 'webgpu', help: 'training backend (webgpu or cpu)' },
  'eval-backend': { type: 'string', default: 'cpu', help: 'generation backend for the evaluation (batch-1 decoding is latency bound: cpu is usually faster here)' },
  lr: { type: 'number', default: 2e-3, help: 'learning rate of full fine-tuning (LoRA uses 2.5x)' },
  out: { type: 'string', help: 'working directory (default: a temporary one)' },
  'modules-to-save': { type: 'string', default: 'wte;wte,lm_head', help: 'modules_to_save of the further LoRA variants (--lora-modules-to-save), one variant per ;-separated entry (Llama: embed_tokens;embed_tokens,lm_head)' },
  only: { type: 'string', help: 'comma-separated variant names to run (default: all)' },
} as const;

interface Variant { name: string; method: string; extra: string[] }

/** Runs a CLI command with console.log captured (returned) and everything else passed through. */
async function quiet(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    return { code: await fn(), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

async function main(): Promise<void> {
  const f = parseFlags('learning', process.argv.slice(2), SPEC, 'Learning benchmark: held-out accuracy before/after SFT and per option.');
  if (!f) return;
  const work = f.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-learning-'));
  fs.mkdirSync(work, { recursive: true });
  const steps = f.steps!;
  const common = ['--data', f.data!, '--packing', '--max-length', '256', '--batch-size', '8', '--schedule', 'cosine', '--warmup', String(Math.max(1, Math.round(steps / 20))),
    '--steps', String(steps), '--backend', f.backend!, '--log-every', String(Math.max(1, Math.round(steps / 4))), '--seed', '42'];
  const lr = f.lr!;
  const variants: Variant[] = [
    { name: 'full, assistant mask', method: 'full', extra: ['--model', f.base!, '--mask', 'assistant', '--lr', String(lr)] },
    { name: 'full, all tokens', method: 'full', extra: ['--model', f.base!, '--mask', 'all', '--lr', String(lr)] },
    { name: 'full, assistant + NEFTune 5', method: 'full', extra: ['--model', f.base!, '--mask', 'assistant', '--lr', String(lr), '--neftune-alpha', '5'] },
    { name: 'LoRA r8 all-linear, assistant', method: 'lora', extra: ['--model', f.base!, '--mask', 'assistant', '--lr', String(lr * 2.5), '--lora-r', '8', '--lora-alpha', '16', '--lora-targets', 'all-linear'] },
    ...f['modules-to-save']!.split(';').map((m) => m.trim()).filter(Boolean).map((m): Variant => (
      { name: `LoRA r8 all-linear + modules_to_save ${m}, assistant`, method: 'lora', extra: ['--model', f.base!, '--mask', 'assistant', '--lr', String(lr * 2.5), '--lora-r', '8', '--lora-alpha', '16', '--lora-targets', 'all-linear', '--lora-modules-to-save', m] })),
  ];
  const only = f.only ? new Set(f.only.split(',').map((s) => s.trim())) : undefined;
  const evalArgs = (model: string, adapter?: string) => ['--model', model, ...(adapter ? ['--adapter', adapter] : []), '--data', f.test!, '--json',
    '--backend', f['eval-backend']!, '--max-new-tokens', '32', ...(f.limit ? ['--limit', String(f.limit)] : [])];
  const evaluate = async (model: string, adapter?: string): Promise<{ overall: number; n: number; byFamily: Record<string, number>; seconds: number }> => {
    const r = await quiet(() => evalCli(evalArgs(model, adapter)));
    return JSON.parse(r.out.trim().split('\n').pop()!);
  };

  const rows: string[][] = [];
  const t0 = Date.now();
  console.error(`learning benchmark in ${work}: ${steps} steps per variant, ${f.limit || 'all'} held-out rows`);
  if (!only || only.has('base')) {
    const e = await evaluate(f.base!);
    rows.push(['base (before SFT)', '-', '0', '0', '-', '-', pct(e.overall), String(e.n)]);
    console.error(`base: ${pct(e.overall)}`);
  }
  for (const [i, v] of variants.entries()) {
    if (only && !only.has(v.name) && !only.has(String(i + 1))) continue;
    const out = path.join(work, `v${i + 1}`);
    const r = await quiet(() => train([...common, ...v.extra, '--out', out]));
    if (r.code !== 0) throw new Error(`${v.name}: webtune train exited ${r.code}\n${r.out}`);
    const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const last = metrics.filter((m) => m.type === 'step').pop();
    const trainable = /trainable params: ([\d,]+)/.exec(r.out)?.[1] ?? '182,016 (all)';
    const e = v.method === 'lora' ? await evaluate(f.base!, out) : await evaluate(out);
    rows.push([v.name, v.method === 'lora' ? `LoRA (${trainable} trainable)` : 'full (182,016)', String(last.step), last.tokens.toLocaleString('en-US'),
      `${(last.elapsed_ms / 1000).toFixed(0)}s`, last.loss.toFixed(3), pct(e.overall), String(e.n)]);
    console.error(`${v.name}: loss ${last.loss.toFixed(3)}, accuracy ${pct(e.overall)} (${JSON.stringify(e.byFamily)})`);
  }
  const header = ['variant', 'adapter / trained params', 'steps', 'tokens', 'train wall time', 'final train loss', 'held-out accuracy', 'rows'];
  const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  const md = `${table}\n\nBase ${f.base}; data ${f.data}; test ${f.test}; training backend ${f.backend}; total ${((Date.now() - t0) / 60000).toFixed(1)} min.\n`;
  fs.writeFileSync(path.join(work, 'learning.md'), md);
  console.log(md);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

main().then(() => process.exit(0), (e) => { console.error(e instanceof Error ? e.stack : e); process.exit(1); });
