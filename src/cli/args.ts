/**
 * Flag parsing shared by every command: `--name value`, `--name=value`, boolean `--flag`.
 * Unknown flags are rejected (naming the flag), as are missing required ones.
 *
 * Exit codes of every command: 0 done; 1 the work failed (bad input file, a diverged run, a
 * full disk...); 2 the command line is wrong (unknown command or flag, a bad flag value: a
 * UsageError); 130 / 143 stopped by SIGINT / SIGTERM after saving a resumable checkpoint.
 */
export class CliError extends Error {}

/** A wrong command line (unknown command or flag, a missing or bad flag value): exit code 2. */
export class UsageError extends CliError {}

/** A decimal number as users type it ("3e-4", "-1", ".5"); not hex, binary, octal, '' or Infinity. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export type FlagSpec = Record<string, { type: 'string' | 'number' | 'boolean'; required?: boolean; help: string; default?: string | number | boolean }>;
export type Flags<S extends FlagSpec> = { [K in keyof S]: S[K]['type'] extends 'boolean' ? boolean : S[K]['type'] extends 'number' ? number | undefined : string | undefined };

export function helpText(command: string, spec: FlagSpec, summary: string): string {
  const lines = Object.entries(spec).map(([k, v]) => {
    const arg = v.type === 'boolean' ? `--${k}` : `--${k} ${v.type === 'number' ? 'N' : 'VALUE'}`;
    const dflt = v.default !== undefined ? ` (default ${v.default})` : '';
    return `  ${arg.padEnd(28)} ${v.help}${v.required ? ' [required]' : ''}${dflt}`;
  });
  return [`usage: webtune ${command} [flags]`, summary, '', ...lines].join('\n');
}

/** Parses argv against spec. Returns null when --help was asked (help already printed). */
export function parseFlags<S extends FlagSpec>(command: string, argv: string[], spec: S, summary = ''): Flags<S> | null {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      console.log(helpText(command, spec, summary));
      return null;
    }
    if (!arg.startsWith('--')) throw new UsageError(`${command}: unexpected argument '${arg}' (flags start with --).`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const def = spec[name];
    if (!def) throw new UsageError(`${command}: unknown flag --${name}. Run 'webtune ${command} --help' for the flags.`);
    if (def.type === 'boolean') {
      out[name] = eq >= 0 ? arg.slice(eq + 1) !== 'false' : true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`${command}: flag --${name} needs a value.`);
    if (def.type === 'number') {
      const n = DECIMAL.test(value.trim()) ? Number(value) : NaN;
      if (!Number.isFinite(n)) throw new UsageError(`${command}: flag --${name} must be a decimal number, got '${value}'.`);
      out[name] = n;
    } else out[name] = value;
  }
  for (const [name, def] of Object.entries(spec)) {
    if (out[name] === undefined) {
      if (def.required) throw new UsageError(`${command}: missing required flag --${name}. Run 'webtune ${command} --help'.`);
      out[name] = def.type === 'boolean' ? (def.default ?? false) : def.default;
    }
  }
  return out as Flags<S>;
}
