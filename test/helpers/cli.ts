/**
 * Running `webtune` commands in tests: in-process with the console captured, or as a spawned
 * `webtune train` that is waited on until its first step is logged (to signal it mid-run).
 */
import { vi } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Runs a command with console output captured; returns the exit code and the text. */
export async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); }),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); }),
    vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); }),
  ];
  try {
    return { code: await fn(), out: out.join('\n'), err: err.join('\n') };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

export interface SpawnedTrain {
  child: ChildProcess;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

/** Spawns `webtune train ARGS` (which must include --out DIR) and resolves once DIR/metrics.jsonl holds a step. */
export async function spawnTrainUntilFirstStep(args: string[]): Promise<SpawnedTrain> {
  const out = args[args.indexOf('--out') + 1];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  child.stderr!.on('data', (d) => { stderr += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const metrics = path.join(out, 'metrics.jsonl');
  // However long a loaded machine takes to reach step 1: the calling test's timeout bounds the wait.
  while (!(fs.existsSync(metrics) && fs.readFileSync(metrics, 'utf8').includes('"type":"step"'))) {
    if (child.exitCode !== null) throw new Error(`the run ended before its first metrics line\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}
