/** Shared by the benchmark programs that run `webtune train` and `webtune eval` in-process (learning.ts, skills.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Runs a CLI command with console.log captured (returned) and everything else passed through. */
export async function quiet(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    return { code: await fn(), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

/** A markdown table. */
export function table(header: string[], body: string[][]): string {
  return [header, header.map(() => '---'), ...body].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** A fraction as a percentage with one decimal: 0.1234 -> "12.3%". */
export const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** The last step record of a finished run's metrics.jsonl (loss, tokens, elapsed_ms, ...). */
export function lastStep(runDir: string): { loss: number; tokens: number; elapsed_ms: number } {
  const steps = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.type === 'step');
  if (!steps.length) throw new Error(`${runDir}/metrics.jsonl has no step record`);
  return steps[steps.length - 1];
}
