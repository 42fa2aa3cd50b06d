/**
 * `webtune grow --model DIR --seed-tasks FILE --method self-instruct|evol-instruct --n N --out FILE.jsonl
 *               [--template T] [--tokenizer DIR] [--prompt-format chat|completion] [--temperature X] [--top-p X]
 *               [--max-new-tokens N] [--answer-max-new-tokens N] [--few-shot N] [--max-prompts N]
 *               [--operations a,b] [--rounds N] [--seed S] [--backend webgpu|cpu] [--dropped FILE] [--json]`
 *
 * Grows instruction data with a model: Self-Instruct or Evol-Instruct (src/grow) from the seed
 * tasks, writing each kept row to --out as soon as it is made (so an interrupted run keeps what
 * it made), with its provenance. A progress bar shows the rows kept, the candidates seen, the
 * acceptance rate and the malformed outputs; the end prints drops per filter. --dropped FILE also
 * writes every dropped candidate with its verdict and reason.
 *
 * Tokenizer and template are resolved as `webtune eval` does. The prompt format defaults to chat
 * when the tokenizer carries a chat template (an instruct model) and to plain-text completion
 * otherwise (a base model, like the papers' GPT-3).
 *
 * --json prints one object at the end: {"kept", "candidates", "acceptanceRate", "malformed",
 * "prompts", "answers", "dropped": {filter: count}, "out"}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFlags, CliError } from './args.js';
import { CountProgress } from './progress.js';
import { resolveTemplate, resolveTokenizer } from './eval.js';
import { initBackend, describeBackend, type BackendName } from '../backend/index.js';
import { loadModel } from '../io/checkpoint.js';
import { parseSeedTasks } from '../grow/seeds.js';
import { selfInstruct } from '../grow/self_instruct.js';
import { evolInstruct, EVOL_OPERATIONS, type EvolOperation } from '../grow/evol_instruct.js';
import type { GrowRun, GrowStats } from '../grow/candidates.js';

const spec = {
  model: { type: 'string', required: true, help: 'Hugging Face checkpoint directory of the generating model' },
  'seed-tasks': { type: 'string', required: true, help: 'JSONL seed tasks: Self-Instruct\'s seed format or any dataset row format' },
  method: { type: 'string', required: true, help: 'self-instruct or evol-instruct' },
  n: { type: 'number', required: true, help: 'rows to keep' },
  out: { type: 'string', required: true, help: 'JSONL file the kept rows are written to (replaced)' },
  template: { type: 'string', help: 'chat template: built-in name, .jinja file or tokenizer_config.json; default: the tokenizer\'s, else chatml' },
  tokenizer: { type: 'string', help: 'tokenizer directory; default: the model directory\'s tokenizer files, else the bundled one' },
  'prompt-format': { type: 'string', help: 'chat (prompts in a user turn) or completion (plain text to continue); default chat when the tokenizer has a chat template' },
  temperature: { type: 'number', help: 'instruction/rewrite sampling temperature (default 0.7 self-instruct, 1 evol-instruct)' },
  'top-p': { type: 'number', help: 'instruction/rewrite top-p (default 0.5 self-instruct, 0.95 evol-instruct)' },
  'max-new-tokens': { type: 'number', help: 'longest instruction generation (default 256 self-instruct, 128 evol-instruct)' },
  'answer-max-new-tokens': { type: 'number', default: 128, help: 'longest answer (answers are greedy)' },
  'few-shot': { type: 'number', default: 8, help: 'self-instruct: tasks per prompt (2 of them generated ones, once there are any)' },
  'max-prompts': { type: 'number', help: 'self-instruct: give up after this many prompts (default 4n + 10)' },
  operations: { type: 'string', help: `evol-instruct: comma-separated, from ${EVOL_OPERATIONS.join(', ')} (default all)` },
  rounds: { type: 'number', default: 4, help: 'evol-instruct: rounds of evolution over the pool' },
  seed: { type: 'number', default: 0, help: 'seed of every draw' },
  backend: { type: 'string', default: 'webgpu', help: 'webgpu (falls back to cpu, announced) or cpu' },
  dropped: { type: 'string', help: 'also write every dropped candidate (verdict, reason, raw output) to this JSONL file' },
  json: { type: 'boolean', help: 'print the final counts as one JSON object' },
} as const;

function statusLine(s: GrowStats): string {
  return `${s.candidates} candidates, ${(100 * s.acceptanceRate).toFixed(0)}% accepted, ${s.malformed} malformed`;
}

export async function run(argv: string[]): Promise<number> {
  const f = parseFlags('grow', argv, spec, 'Grow instruction data with a model (Self-Instruct or Evol-Instruct), with every row\'s provenance.');
  if (!f) return 0;
  const method = f.method!;
  if (method !== 'self-instruct' && method !== 'evol-instruct') throw new CliError(`grow: --method must be self-instruct or evol-instruct, got '${method}'`);
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new CliError(`grow: --${name} must be a positive integer, got ${v}`);
  };
  for (const k of ['n', 'max-new-tokens', 'answer-max-new-tokens', 'few-shot', 'max-prompts', 'rounds'] as const) positive(k, f[k]);
  if (f.temperature !== undefined && f.temperature < 0) throw new CliError(`grow: --temperature must be >= 0, got ${f.temperature}`);
  if (f['top-p'] !== undefined && !(f['top-p'] > 0 && f['top-p'] <= 1)) throw new CliError(`grow: --top-p must be in (0, 1], got ${f['top-p']}`);
  if (!['webgpu', 'cpu'].includes(f.backend!)) throw new CliError(`grow: --backend must be webgpu or cpu, got '${f.backend}'`);
  if (f['prompt-format'] !== undefined && !['chat', 'completion'].includes(f['prompt-format'])) throw new CliError(`grow: --prompt-format must be chat or completion, got '${f['prompt-format']}'`);
  const operations = f.operations?.split(',').map((s) => s.trim()).filter(Boolean) as EvolOperation[] | undefined;
  for (const op of operations ?? []) if (!EVOL_OPERATIONS.includes(op)) throw new CliError(`grow: --operations: unknown operation '${op}' (choose from ${EVOL_OPERATIONS.join(', ')})`);
  if (!fs.existsSync(path.join(f.model!, 'config.json'))) throw new CliError(`grow: --model ${f.model}: no config.json there (give a Hugging Face checkpoint directory)`);
  if (!fs.existsSync(f['seed-tasks']!)) throw new CliError(`grow: --seed-tasks: no such file '${f['seed-tasks']}'`);
  const { tasks, errors } = parseSeedTasks(fs.readFileSync(f['seed-tasks']!, 'utf8'), f['seed-tasks']!);
  if (errors.length) throw new CliError(`grow: ${errors[0].message}${errors.length > 1 ? ` (and ${errors.length - 1} more bad rows)` : ''}`);

  const say = (s: string) => (f.json ? console.error(s) : console.log(s));
  const backend = await initBackend({ prefer: f.backend as BackendName, onFallback: (m) => console.error(m) });
  const { tok, from } = await resolveTokenizer(f.tokenizer, f.model!);
  const template = await resolveTemplate(f.template, tok);
  const format = (f['prompt-format'] ?? (tok.chatTemplate || f.template ? 'chat' : 'completion')) as 'chat' | 'completion';
  const model = await loadModel(f.model!);
  const out = fs.openSync(f.out!, 'w');
  const dropped = f.dropped ? fs.openSync(f.dropped, 'w') : undefined;
  try {
    say(`backend: ${describeBackend(backend)}; model ${f.model} (${model.numParams().toLocaleString('en-US')} parameters); tokenizer ${from}; ` +
      `template ${template.name}; ${method} from ${tasks.length} seed tasks, ${format} prompts`);
    const sampling = { temperature: f.temperature, topP: f['top-p'], maxNewTokens: f['max-new-tokens'] };
    for (const k of Object.keys(sampling) as Array<keyof typeof sampling>) if (sampling[k] === undefined) delete sampling[k];
    const common = {
      model, tokenizer: tok, template, modelName: path.basename(path.resolve(f.model!)), seedTasks: tasks, n: f.n!, promptFormat: format,
      answerSampling: { maxNewTokens: f['answer-max-new-tokens'] }, seed: f.seed,
    };
    const grow: GrowRun = method === 'self-instruct'
      ? selfInstruct({ ...common, fewShot: f['few-shot'], maxPrompts: f['max-prompts'], instructionSampling: sampling })
      : evolInstruct({ ...common, operations, rounds: f.rounds, evolSampling: sampling });
    const progress = new CountProgress({ total: f.n!, tty: process.stderr.isTTY === true, label: 'kept', write: (s) => void process.stderr.write(s) });
    for await (const c of grow) {
      if (c.kept) fs.writeSync(out, JSON.stringify(c.row) + '\n');
      else if (dropped !== undefined) {
        const { row, ...rest } = c;
        fs.writeSync(dropped, JSON.stringify({ ...rest, ...(row ? { messages: row.messages } : {}) }) + '\n');
      }
      progress.update(grow.stats.kept, statusLine(grow.stats));
    }
    progress.done();
    const s = grow.stats;
    if (f.json) {
      console.log(JSON.stringify({ kept: s.kept, candidates: s.candidates, acceptanceRate: s.acceptanceRate, malformed: s.malformed, prompts: s.prompts, answers: s.answers, dropped: s.dropped, out: f.out }));
    } else {
      console.log(`${s.kept} rows kept of ${s.candidates} candidates (${(100 * s.acceptanceRate).toFixed(1)}% accepted) from ${s.prompts} prompts; ${s.malformed} malformed outputs.`);
      const drops = Object.entries(s.dropped).sort((a, b) => b[1] - a[1]);
      if (drops.length) console.log(`dropped: ${drops.map(([k, v]) => `${k} ${v}`).join(', ')}`);
      console.log(`rows: ${f.out}${s.kept < f.n! ? ` (fewer than --n ${f.n}: the model ran out of prompts or rounds)` : ''}`);
    }
    return 0;
  } finally {
    fs.closeSync(out);
    if (dropped !== undefined) fs.closeSync(dropped);
    model.dispose();
  }
}
