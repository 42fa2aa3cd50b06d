/** Shared by the benchmark programs that drive the CLI in-process (learning.ts, skills.ts). */

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
