/**
 * `webtune render`: two real processes (exact stdout; exit code and stderr of a template error),
 * the rest in-process through the command's run().
 */
import { describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/render.js';

const ROOT = join(__dirname, '../..');
const FIX = join(ROOT, 'test/fixtures/templates');
const conversations = JSON.parse(readFileSync(join(FIX, 'conversations.json'), 'utf8'));
const refs = JSON.parse(readFileSync(join(FIX, 'reference_renders.json'), 'utf8')) as Array<{ template: string; case: string; add_generation_prompt: boolean; output?: string }>;
const ref = (t: string, c: string, gen: boolean) => refs.find((r) => r.template === t && r.case === c && r.add_generation_prompt === gen)?.output;
const dir = mkdtempSync(join(tmpdir(), 'webtune-render-'));
const file = (name: string, value: unknown) => {
  const p = join(dir, name);
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
};
const cli = (...args: string[]) => spawnSync('npx', ['tsx', 'src/cli/main.ts', 'render', ...args], { cwd: ROOT, encoding: 'utf8' });

async function runCaptured(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await run(argv);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('webtune render', () => {
  it('prints exactly the rendered text (process)', () => {
    const r = cli('--template', 'llama3', '--messages', file('unicode.json', conversations.unicode), '--add-generation-prompt');
    expect(r.stderr.replace(/^npm warn.*\n/gm, '')).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(ref('llama3', 'unicode', true));
  });

  it('exits 1 with the template\'s message on stderr (process)', () => {
    const r = cli('--template', 'gemma', '--messages', file('alt.json', conversations.not_alternating));
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("template 'gemma' raised: Conversation roles must alternate user/assistant/user/assistant/...");
  });

  it('--json gives the text and the turn spans', async () => {
    const r = await runCaptured(['--template', 'chatml', '--messages', file('single.json', conversations.single), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.text).toBe(ref('chatml', 'single', false));
    expect(j.turns).toEqual([
      { role: 'user', start: 17, end: 31, trainStart: 17, trainEnd: 41 },
      { role: 'assistant', start: 64, end: 74, trainStart: 64, trainEnd: 84 },
    ]);
    expect(j.text.slice(64, 84)).toBe('2 + 2 = 4.<|im_end|>');
  });

  it('reads a tokenizer_config.json and {"messages": [...]}; --bos-token / --eos-token override', async () => {
    const tc = file('tokenizer_config.json', { chat_template: readFileSync(join(FIX, 'zephyr.jinja'), 'utf8'), bos_token: '<s>', eos_token: { content: '</s>' } });
    const msgs = file('wrapped.json', { messages: conversations.single });
    expect((await runCaptured(['--template', tc, '--messages', msgs])).out).toBe(ref('zephyr', 'single', false));
    const r = await runCaptured(['--template', tc, '--messages', msgs, '--eos-token', '<|end|>']);
    expect(r.out).toBe(ref('zephyr', 'single', false)?.replaceAll('</s>', '<|end|>'));
  });

  it('a .jinja template file', async () => {
    const r = await runCaptured(['--template', join(FIX, 'phi3_5.jinja'), '--messages', file('m.json', conversations.multi), '--eos-token', '<|endoftext|>']);
    expect(r.out).toBe(ref('phi3_5', 'multi', false));
  });

  it('names the file and field of a bad message', async () => {
    await expect(runCaptured(['--template', 'chatml', '--messages', file('bad.json', [{ role: 'user', content: 'a' }, { role: 'bot', content: 'b' }])]))
      .rejects.toThrow(/render: .*bad\.json: field "\[1\]\.role": unknown role "bot" \(expected system, user, assistant, tool\)/);
  });

  it('renders a template that rewrites earlier turns: --json places what it can, marks the rest, and says why training refuses', async () => {
    const msgs = file('sys.json', conversations.system_multi);
    const plain = await runCaptured(['--template', 'mistral', '--messages', msgs]);
    expect(plain.code).toBe(0);
    expect(plain.out).toBe(ref('mistral_v0_3', 'system_multi', false));
    const r = await runCaptured(['--template', 'mistral', '--messages', msgs, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.text).toBe(ref('mistral_v0_3', 'system_multi', false));
    expect(j.refusal).toMatch(/template 'mistral' does not reproduce turn 1 \(user\) verbatim/);
    expect(r.err).toMatch(/note: training refuses this conversation: template 'mistral' does not reproduce turn 1/);
    // Mistral v0.3 writes the system prompt only into a last user turn that ends the conversation: here it is dropped.
    const [system, user1, assistant1, user2, assistant2] = j.turns;
    expect(system).toEqual({ role: 'system', located: false, reason: "template 'mistral' does not render the content of turn 0 (system); it has no span." });
    expect(j.text.slice(user1.start, user1.end)).toBe('Sky colour?');
    expect(j.text.slice(assistant1.trainStart, assistant1.trainEnd)).toBe('Blue.</s>');
    expect(j.text.slice(user2.start, user2.end)).toBe('Grass colour?');
    expect(j.text.slice(assistant2.trainStart, assistant2.trainEnd)).toBe('Green.</s>');
    const lenient = await runCaptured(['--template', 'mistral', '--messages', msgs, '--json', '--allow-rewrites']);
    expect(JSON.parse(lenient.out).refusal).toBeUndefined();
  });

  it('places a system prompt folded into the last user turn (Mistral v0.3, no reply yet)', async () => {
    const r = await runCaptured(['--template', 'mistral', '--messages', file('sysu.json', conversations.system_user), '--json']);
    const j = JSON.parse(r.out);
    expect(j.refusal).toBeUndefined();
    expect(j.text.slice(j.turns[0].start, j.turns[0].end)).toBe('You are a poet.');
    expect(j.turns[0].foldedInto).toBe(1);
  });

  it('passes tools and tool messages ({"messages", "tools"} or --tools) as transformers does', async () => {
    const tools = JSON.parse(readFileSync(join(FIX, 'tools.json'), 'utf8'));
    const wrapped = await runCaptured(['--template', join(FIX, 'qwen2_5.jinja'), '--eos-token', '<|im_end|>', '--messages', file('tc.json', { messages: conversations.tool_call, tools })]);
    expect(wrapped.out).toBe(ref('qwen2_5', 'tool_call', false));
    const separate = await runCaptured(['--template', join(FIX, 'llama3_2.jinja'), '--bos-token', '<|begin_of_text|>', '--eos-token', '<|eot_id|>',
      '--messages', file('tc2.json', conversations.tool_call), '--tools', file('tools.json', tools), '--add-generation-prompt']);
    expect(separate.code).toBe(0);
    // Llama 3.2 reads the date through strftime_now: compare around it.
    const expected = ref('llama3_2', 'tool_call', true) as string;
    expect(separate.out.replace(/Today Date: [^\n]*/, '')).toBe(expected.replace(/Today Date: [^\n]*/, ''));
    await expect(runCaptured(['--template', 'chatml', '--messages', file('tc3.json', conversations.tool_call), '--tools', file('badtools.json', [{ type: 'function', function: {} }])]))
      .rejects.toThrow(/render: .*badtools\.json: field "\[0\]\.function\.name": missing/);
  });
});
