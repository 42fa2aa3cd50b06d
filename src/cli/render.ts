/**
 * `webtune render --template T --messages FILE.json [--add-generation-prompt] [--bos-token S]
 *  [--eos-token S] [--json] [--allow-rewrites]`
 *
 * Renders a conversation with a chat template (a built-in name, a .jinja file or a
 * tokenizer_config.json). Prints exactly the rendered text, or with --json
 * {"text", "turns": [{"role", "start", "end", "trainStart", "trainEnd"}]} (UTF-16 offsets;
 * "foldedInto" on a message written inside another message's turn).
 */
import { readFile } from 'node:fs/promises';
import { CliError, parseFlags } from './args.js';
import { decodeUtf8 } from '../io/files.js';
import { FieldError, parseMessages, type Message } from '../data/dataset.js';
import { loadTemplate, renderChat, renderWithSpans, TemplateError, BUILTIN_TEMPLATES } from '../data/template.js';

const spec = {
  template: { type: 'string', required: true, help: `built-in name (${Object.keys(BUILTIN_TEMPLATES).join(', ')}), a .jinja file or a tokenizer_config.json` },
  messages: { type: 'string', required: true, help: 'JSON file: an array of {"role", "content"} (or {"messages": [...]})' },
  'add-generation-prompt': { type: 'boolean', help: 'end with the assistant header, as for generation' },
  'bos-token': { type: 'string', help: 'bos_token to render with (overrides the template\'s)' },
  'eos-token': { type: 'string', help: 'eos_token to render with (overrides the template\'s)' },
  json: { type: 'boolean', help: 'print {"text", "turns": [{role, start, end, trainStart, trainEnd}]}' },
  'allow-rewrites': { type: 'boolean', help: 'give spans even when the template does not reproduce earlier turns verbatim' },
} as const;

async function readMessages(file: string): Promise<Message[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CliError(`render: cannot read --messages ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let text: string;
  try {
    text = decodeUtf8(bytes, file); // strict, and a UTF-8 BOM is dropped as the JSONL reader does
  } catch (err) {
    throw new CliError(`render: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CliError(`render: ${file}: invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const isWrapped = typeof json === 'object' && json !== null && !Array.isArray(json) && 'messages' in json;
  const list = isWrapped ? (json as { messages: unknown }).messages : json;
  try {
    return parseMessages(list, isWrapped ? 'messages' : '');
  } catch (err) {
    if (!(err instanceof FieldError)) throw err;
    throw new CliError(`render: ${file}: field "${err.field}": ${err.message}`);
  }
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('render', argv, spec, 'Render a conversation with a chat template.');
  if (!flags) return 0;
  const messages = await readMessages(flags.messages as string);
  let template;
  try {
    template = await loadTemplate(flags.template as string);
  } catch (err) {
    throw new CliError(`render: ${err instanceof Error ? err.message : String(err)}`);
  }
  const opts = {
    addGenerationPrompt: flags['add-generation-prompt'],
    bosToken: flags['bos-token'],
    eosToken: flags['eos-token'],
    requireVerbatimTurns: !flags['allow-rewrites'],
  };
  try {
    if (!flags.json) {
      process.stdout.write(renderChat(template, messages, opts));
      return 0;
    }
    const { text, turns } = renderWithSpans(template, messages, opts);
    process.stdout.write(JSON.stringify({ text, turns }) + '\n');
    return 0;
  } catch (err) {
    if (err instanceof TemplateError) {
      // The template's own message, verbatim, on stderr.
      process.stderr.write(`webtune render: ${err.raised ? `template '${template.name}' raised: ` : ''}${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
