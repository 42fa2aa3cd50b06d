/**
 * `webtune <command> [flags]`: a thin dispatcher. Each command lives in its own module with
 * `export async function run(argv: string[]): Promise<number>` (the exit code), and is loaded
 * only when called, so `webtune render` never initialises a GPU.
 */
import { CliError, UsageError } from './args.js';

const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  render: { summary: 'render a conversation with a chat template', load: () => import('./render.js') },
  inspect: { summary: 'show tokens, trained tokens and a dataset summary', load: () => import('./inspect.js') },
  forward: { summary: 'logits, loss and gradients of a checkpoint on given inputs', load: () => import('./forward.js') },
  train: { summary: 'supervised fine-tuning from the terminal', load: () => import('./train.js') },
  eval: { summary: 'task accuracy of a model on an instruction set', load: () => import('./eval.js') },
  compare: { summary: 'training runs side by side: settings that differ and results', load: () => import('./compare.js') },
  grow: { summary: 'grow instruction data with a model (Self-Instruct, Evol-Instruct)', load: () => import('./grow.js') },
  export: { summary: 'merge a LoRA adapter or normalise it', load: () => import('./export.js') },
  bench: { summary: 'tokens/s, dispatches and memory per training step', load: () => import('./bench.js') },
  data: { summary: 'regenerate the bundled instruction set', load: () => import('./data.js') },
  tokenizer: { summary: 'train the bundled byte-level BPE tokenizer', load: () => import('./tokenizer.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return ['usage: webtune <command> [flags]   (webtune <command> --help for its flags)', '',
    ...Object.entries(commands).map(([c, { summary }]) => `  ${c.padEnd(width)}  ${summary}`)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`webtune: unknown command '${name}'.\n${usage()}`);
    return 2;
  }
  const mod = await cmd.load();
  return mod.run(rest);
}

// Exit codes (see args.ts): 0 done, 1 the work failed, 2 a wrong command line, 130/143 interrupted.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof CliError) console.error(`webtune: ${err.message}`);
    else console.error(`webtune: ${err instanceof Error ? (process.env.WEBTUNE_DEBUG ? err.stack : err.message) : String(err)}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
