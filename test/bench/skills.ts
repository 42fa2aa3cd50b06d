/**
 * Skills benchmark (not part of the test suite): can the base model learn each task family at
 * all, and does it compute the skill or memorise its training inputs? Each family is fine-tuned
 * alone, from the same base, on its own rows of the training split (far more of them per step than
 * the mixture gives it), then scored twice with the same greedy decoding:
 *
 * - on training rows of that family (inputs it was trained on), each with its eval spec
 *   regenerated from the row's provenance (family, template, seed);
 * - on the family's held-out test rows (inputs and two phrasings never seen in training).
 *
 * A family whose training rows are right and whose held-out rows are wrong was memorised; one
 * whose training rows are wrong too was not fitted in the steps given; one right on both was
 * learned. The mixture run of the page cannot teach a family that this focused run cannot.
 *
 *   npx tsx test/bench/skills.ts [--families extraction,arithmetic] [--steps 600] [--base models/base]
 *
 * Training: `webtune train --packing --max-length 80 --batch-size 16 --lr 3e-3 --schedule cosine
 * --warmup 20` (the page's default run, with packed rows so each step carries more examples).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseFlags } from '../../src/cli/args.js';
import { run as train } from '../../src/cli/train.js';
import { run as evalCli } from '../../src/cli/eval.js';
import { generateRow, parseJsonl, toJsonl } from '../../src/data/instruct/build.js';
import { lastStep, pct, quiet, table } from './cli_runs.js';

const SPEC = {
  families: { type: 'string', default: 'arithmetic,extraction,multiturn,qa,sorting,string', help: 'comma-separated families, each fine-tuned alone' },
  steps: { type: 'number', default: 600, help: 'optimizer steps per family' },
  base: { type: 'string', default: 'models/base', help: 'base checkpoint' },
  data: { type: 'string', default: 'demo/data/train.jsonl', help: 'training split' },
  test: { type: 'string', default: 'demo/data/test.jsonl', help: 'held-out split with eval specs' },
  'train-rows': { type: 'number', default: 60, help: 'training rows of each family scored (the first ones)' },
  lr: { type: 'number', default: 3e-3, help: 'peak learning rate' },
  seed: { type: 'number', default: 42, help: 'training seed' },
  backend: { type: 'string', default: 'webgpu', help: 'training backend (webgpu or cpu)' },
  'eval-backend': { type: 'string', default: 'cpu', help: 'generation backend for the evaluation' },
  out: { type: 'string', help: 'working directory (default: a temporary one)' },
} as const;

interface Row { messages: Array<{ role: string; content: string }>; family: string; source?: string; template?: string; seed?: number; eval?: unknown }

const readJsonl = (file: string): Row[] => parseJsonl<Row>(fs.readFileSync(file, 'utf8'), file);

/** A generated training row with its eval spec, regenerated from its provenance (checked against the row). */
function withSpec(row: Row, where: string): Row {
  const [family, template] = row.template!.split('/');
  const g = generateRow(family, template, row.seed!, 'train');
  if (JSON.stringify(g.messages) !== JSON.stringify(row.messages)) throw new Error(`${where}: the row does not regenerate from its provenance (is the data stale? run npm run data)`);
  return { ...row, eval: g.eval };
}

function verdict(trainAcc: number, heldAcc: number): string {
  if (heldAcc >= 0.5) return 'learned';
  if (trainAcc >= 0.8) return 'memorised';
  return 'not fitted';
}

async function main(): Promise<void> {
  const f = parseFlags('skills', process.argv.slice(2), SPEC, 'Skills benchmark: each task family fine-tuned alone, scored on its training and held-out rows.');
  if (!f) return;
  const work = f.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-skills-'));
  fs.mkdirSync(work, { recursive: true });
  const trainRows = readJsonl(f.data!);
  const testRows = readJsonl(f.test!);
  const t0 = Date.now();
  const body: string[][] = [];
  for (const family of f.families!.split(',').map((s) => s.trim()).filter(Boolean)) {
    const own = trainRows.filter((r) => r.family === family);
    const held = testRows.filter((r) => r.family === family);
    if (!own.length || !held.length) throw new Error(`skills: family '${family}' has ${own.length} training and ${held.length} test rows in ${f.data} / ${f.test}`);
    const scored = own.filter((r) => r.source === 'generator').slice(0, f['train-rows']!).map((r, i) => withSpec(r, `${f.data} (${family} row ${i + 1})`));
    const dir = path.join(work, family);
    fs.mkdirSync(dir, { recursive: true });
    const files = { train: path.join(dir, 'train.jsonl'), scored: path.join(dir, 'scored.jsonl'), held: path.join(dir, 'held.jsonl') };
    fs.writeFileSync(files.train, toJsonl(own));
    fs.writeFileSync(files.scored, toJsonl(scored));
    fs.writeFileSync(files.held, toJsonl(held));

    const out = path.join(dir, 'model');
    const t = await quiet(() => train(['--model', f.base!, '--data', files.train, '--mask', 'assistant', '--packing', '--max-length', '80', '--batch-size', '16',
      '--lr', String(f.lr), '--schedule', 'cosine', '--warmup', '20', '--steps', String(f.steps), '--seed', String(f.seed), '--backend', f.backend!,
      '--log-every', String(Math.max(1, Math.round(f.steps! / 4))), '--out', out]));
    if (t.code !== 0) throw new Error(`${family}: webtune train exited ${t.code}\n${t.out}`);
    const last = lastStep(out);
    const accuracy = async (file: string): Promise<number> => {
      const e = await quiet(() => evalCli(['--model', out, '--data', file, '--json', '--backend', f['eval-backend']!, '--max-new-tokens', '32']));
      if (e.code !== 0) throw new Error(`${family}: webtune eval of ${file} exited ${e.code}\n${e.out}`);
      return JSON.parse(e.out.trim().split('\n').pop()!).overall;
    };
    const [onTrain, onHeld] = [await accuracy(files.scored), await accuracy(files.held)];
    body.push([family, String(own.length), String(f.steps), last.tokens.toLocaleString('en-US'), last.loss.toFixed(3),
      `${pct(onTrain)} (${scored.length})`, `${pct(onHeld)} (${held.length})`, verdict(onTrain, onHeld)]);
    console.error(`${family}: loss ${last.loss.toFixed(3)}, training rows ${pct(onTrain)}, held-out rows ${pct(onHeld)}`);
  }
  const md = `${table(['family (trained alone)', 'its training rows', 'steps', 'tokens', 'final loss', 'accuracy on training rows', 'accuracy held out', 'verdict'], body)}\n\n` +
    `Base ${f.base}; ${f.steps} steps of 16 packed rows of 80 tokens, lr ${f.lr}, cosine, seed ${f.seed}; training backend ${f.backend}; ` +
    `verdict: learned when at least half the held-out rows are right, memorised when 80% of the training rows are and fewer held-out ones, else not fitted; total ${((Date.now() - t0) / 60000).toFixed(1)} min.\n`;
  fs.writeFileSync(path.join(work, 'skills.md'), md);
  console.log(md);
}

main().then(() => process.exit(0), (e) => { console.error(e instanceof Error ? e.stack : e); process.exit(1); });
