/**
 * `webtune compare RUN_DIR... [--json] [--all-settings]`: runs of `webtune train` side by side,
 * the same comparison table the page's run history shows (src/lab).
 *
 * From each run directory it reads:
 *   webtune_run.json   the run's flags, defaults filled in (older runs: the newest
 *                      checkpoint-<step>/webtune_train_args.json, parsed with train's defaults)
 *   metrics.jsonl      the curves: train loss and lr per step, eval loss per evaluation
 *   eval.json          optional: `webtune eval --json` output saved there (its accuracy)
 *
 * Text output: one row per run with the settings that differ between the runs (every setting
 * with --all-settings) and the results; differing settings are marked '*'. --json prints
 * { table: { columns, rows, differing, results }, runs: [RunRecord...] }.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseFlags, CliError, UsageError } from './args.js';
import { ARGS_FILE, RUN_FILE, runFolder } from './out_dir.js';
import { comparisonTable, formatTable, emptyCurves, type RunRecord } from '../lab/runs.js';

const spec = {
  json: { type: 'boolean', help: 'print {"table": {...}, "runs": [...]} as one JSON object' },
  'all-settings': { type: 'boolean', help: 'show every setting, not only those that differ between the runs' },
} as const;

const SUMMARY = 'webtune compare RUN_DIR... [flags]: training runs side by side, one row per RUN_DIR (a --out of webtune train)\nwith the settings that differ (marked *) and the results.';

/** Flags that say where a run wrote or how it logged, not what it trained: left out of the table. */
const NOT_SETTINGS = new Set(['out', 'resume', 'log-every', 'save-every', 'save-total-limit', 'keep-checkpoints', 'seed']);

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`compare: ${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** The run's flags: webtune_run.json, else its newest checkpoint's argv parsed with train's defaults. */
async function runFlags(dir: string): Promise<Record<string, unknown>> {
  const runFile = path.join(dir, RUN_FILE);
  if (fs.existsSync(runFile)) {
    const j = readJson(runFile) as { flags?: Record<string, unknown> };
    if (j.flags && typeof j.flags === 'object') return j.flags;
  }
  const ckpt = await runFolder(dir).latest();
  const argsFile = ckpt && path.join(ckpt.location, ARGS_FILE);
  if (argsFile && fs.existsSync(argsFile)) {
    const argv = (readJson(argsFile) as { argv?: unknown }).argv;
    // train.js loads the tensor library: only for runs written before webtune_run.json existed.
    if (Array.isArray(argv)) return parseFlags('train', argv.map(String), (await import('./train.js')).TRAIN_FLAGS) as Record<string, unknown>;
  }
  throw new CliError(`compare: ${dir}: no ${RUN_FILE} and no checkpoint with ${ARGS_FILE}: not a 'webtune train' run directory`);
}

/** A run directory as a RunRecord: flags as settings, metrics.jsonl as curves, eval.json as accuracy. */
export async function readRunDir(dir: string): Promise<RunRecord> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CliError(`compare: ${dir}: no such directory`);
  const flags = await runFlags(dir);
  const settings = Object.fromEntries(Object.entries(flags).filter(([k, v]) => !NOT_SETTINGS.has(k) && v !== undefined));
  const curves = emptyCurves();
  const metricsFile = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(metricsFile)) throw new CliError(`compare: ${dir}: no metrics.jsonl (did the run start?)`);
  for (const line of fs.readFileSync(metricsFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let m: Record<string, unknown>;
    try { m = JSON.parse(line) as Record<string, unknown>; } catch { continue; } // a line cut by a crash
    if (m.type === 'step') { curves.step.push(m.step as number); curves.loss.push(m.loss as number); curves.lr.push(m.lr as number); }
    else if (m.type === 'eval') { curves.evalStep.push(m.step as number); curves.evalLoss.push(m.eval_loss as number); }
  }
  const run: RunRecord = {
    id: dir, name: path.basename(path.resolve(dir)), createdAt: fs.statSync(metricsFile).mtimeMs,
    settings, seed: Number(flags.seed), curves,
  };
  const evalFile = path.join(dir, 'eval.json');
  if (fs.existsSync(evalFile)) {
    const e = readJson(evalFile) as { n?: unknown; correct?: unknown };
    if (typeof e.n === 'number' && typeof e.correct === 'number') run.scores = { after: { all: { n: e.n, correct: e.correct } } };
  }
  return run;
}

export async function run(argv: string[]): Promise<number> {
  const dirs = argv.filter((a) => !a.startsWith('-'));
  const f = parseFlags('compare', argv.filter((a) => a.startsWith('-')), spec, SUMMARY);
  if (!f) return 0;
  if (dirs.length === 0) throw new UsageError('compare: give one or more run directories (the --out of webtune train runs)');
  const runs = await Promise.all(dirs.map(readRunDir));
  const table = comparisonTable(runs, { onlyDiffering: !f['all-settings'] });
  if (f.json) console.log(JSON.stringify({ table, runs }));
  else console.log(formatTable(table));
  return 0;
}
