/**
 * `webtune render --template T --messages FILE.json [--tools FILE.json] [--add-generation-prompt]
 *  [--bos-token S] [--eos-token S] [--json] [--allow-rewrites]`
 *
 * Renders a conversation with a chat template (a built-in name, a .jinja file or a
 * tokenizer_config.json), as transformers' apply_chat_template does: every message key and the
 * tools are passed to the template. Prints exactly the rendered text, or with --json
 * {"text", "turns": [{"role", "start", "end", "trainStart", "trainEnd"}], "refusal"?} (UTF-16
 * offsets; "foldedInto" on a message written inside another message's turn). A template that
 * rewrites earlier turns (Mistral v0.3 moves the system prompt into the last user turn) still
 * renders: the turns that cannot be placed are {"role", "located": false, "reason"} and
 * "refusal" says why training refuses the conversation.
 */
import { readFile } from 'node:fs/promises';
import { CliError, parseFlags } from './args.js';
import { decodeUtf8 } from '../io/files.js';
import { FieldError, parseMessages, parseTools, type Message } from '../data/dataset.js';
import { loadTemplate, locateTurns, renderChat, TemplateError, BUILTIN_TEMPLATES } from '../data/template.js';

const spec = {
  template: { type: 'string', required: true, help: `built-in name (${Object.keys(BUILTIN_TEMPLATES).join(', ')}), a .jinja file or a tokenizer_config.json` },
  messages: { type: 'string', required: true, help: 'JSON file: an array of messages, or {"messages": [...], "tools": [...]}' },
  tools: { type: 'string', help: 'JSON file: the tool schemas (a list), passed to the template as `tools`' },
  'add-generation-prompt': { type: 'boolean', help: 'end with the assistant header, as for generation' },
  'bos-token': { type: 'string', help: 'bos_token to render with (overrides the template\'s)' },
  'eos-token': { type: 'string', help: 'eos_token to render with (overrides the template\'s)' },
  json: { type: 'boolean', help: 'print {"text", "turns": [{role, start, end, trainStart, trainEnd}], "refusal"?}' },
  'allow-rewrites': { type: 'boolean', help: 'do not check that earlier turns are reproduced verbatim (no "refusal")' },
} as const;

async function readJson(file: string, flag: string): Promise<unknown> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CliError(`render: cannot read --${flag} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let text: string;
  try {
    text = decodeUtf8(bytes, file); // strict, and a UTF-8 BOM is dropped as the JSONL reader does
  } catch (err) {
    throw new CliError(`render: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(`render: ${file}: invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function readConversation(file: string, toolsFile?: string): Promise<{ messages: Message[]; tools?: Record<string, unknown>[] }> {
  const json = await readJson(file, 'messages');
  const isWrapped = typeof json === 'object' && json !== null && !Array.isArray(json) && 'messages' in json;
  const validated = <T>(where: string, parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      throw new CliError(`render: ${where}: field "${err.field}": ${err.message}`);
    }
  };
  const messages = validated(file, () => parseMessages(isWrapped ? (json as { messages: unknown }).messages : json, isWrapped ? 'messages' : ''));
  if (toolsFile) {
    const list = await readJson(toolsFile, 'tools');
    return { messages, tools: validated(toolsFile, () => parseTools(list, '')) };
  }
  return { messages, tools: isWrapped ? validated(file, () => parseTools((json as { tools?: unknown }).tools)) : undefined };
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseFlags('render', argv, spec, 'Render a conversation with a chat template.');
  if (!flags) return 0;
  const { messages, tools } = await readConversation(flags.messages as string, flags.tools as string | undefined);
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
    tools: tools ?? null,
  };
  try {
    if (!flags.json) {
      process.stdout.write(renderChat(template, messages, opts));
      return 0;
    }
    const located = locateTurns(template, messages, opts);
    process.stdout.write(JSON.stringify(located) + '\n');
    if (located.refusal) process.stderr.write(`webtune render: note: training refuses this conversation: ${located.refusal}\n`);
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
