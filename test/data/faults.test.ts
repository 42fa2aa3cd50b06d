/**
 * Data faults users meet, each with its cause named: invalid UTF-8 rows, a directory or an empty
 * file given as data, every row bad, a template that cannot be parsed or that raises, special-token
 * text typed in a message (encoded literally on request), a huge row truncated without being
 * tokenized whole, and a UTF-8 BOM in `webtune render --messages`.
 */
import { describe, it, expect, afterAll, vi } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readDataset, loadDataset, type Example } from '../../src/data/dataset.js';
import { prepareDataset } from '../../src/data/pipeline.js';
import { labelExample, IGNORE_INDEX } from '../../src/data/labels.js';
import { loadBundledTokenizer } from '../../src/data/tokenizer.js';
import { BUILTIN_TEMPLATES, type ChatTemplate } from '../../src/data/template.js';
import { run as render } from '../../src/cli/render.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-datafaults-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tok = await loadBundledTokenizer();
const chatml = BUILTIN_TEMPLATES.chatml;
const row = (user: string, assistant: string) => JSON.stringify({ messages: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }] });

describe('reading data files', () => {
  it('reports a row that is not valid UTF-8 with file:line instead of training U+FFFD', async () => {
    const file = path.join(tmp, 'latin1.jsonl');
    const bad = Buffer.concat([Buffer.from('{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]); // Latin-1 é
    fs.writeFileSync(file, Buffer.concat([Buffer.from(`{"text": "ok é"}\n`), bad, Buffer.from('{"text": "fine"}\n')]));
    const { examples, errors } = await loadDataset(file);
    expect(examples.map((e) => e.text)).toEqual(['ok é', 'fine']);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toBe(`${file}:2: not valid UTF-8 text (re-encode the file as UTF-8)`);
    // --strict-data: the first good row is kept, then it stops at line 2.
    const seen: Example[] = [];
    await expect((async () => { for await (const ex of readDataset(file, { onError: 'stop' })) seen.push(ex); })()).rejects.toThrow(`${file}:2: not valid UTF-8`);
    expect(seen).toHaveLength(1);
    // A file picked in the page (a Blob) is read the same way.
    const picked = await loadDataset(new Blob([fs.readFileSync(file)]), { file: 'picked.jsonl' });
    expect(picked.errors.map((e) => e.message)).toEqual(['picked.jsonl:2: not valid UTF-8 text (re-encode the file as UTF-8)']);
  });

  it('keeps multi-byte characters split across read chunks whole, and a U+FFFD typed in the file is not an error', async () => {
    const file = path.join(tmp, 'big.jsonl');
    const text = '日本語 \uFFFD '.repeat(20_000); // > 64 KiB: several read chunks, boundaries inside characters
    fs.writeFileSync(file, `\uFEFF${JSON.stringify({ text })}\n${JSON.stringify({ text: 'é' })}\n`);
    const { examples, errors } = await loadDataset(file);
    expect(errors).toEqual([]);
    expect(examples.map((e) => e.text)).toEqual([text, 'é']);
  });

  it('names the path when --data is a directory', async () => {
    await expect(loadDataset(tmp)).rejects.toThrow(`${tmp}: cannot read: it is a directory, not a data file`);
  });
});

describe('no training examples left: the causes, with file:line', () => {
  it('an empty file is named', async () => {
    const file = path.join(tmp, 'empty.jsonl');
    fs.writeFileSync(file, '');
    await expect(prepareDataset({ sources: [{ file }], template: chatml, tokenizer: tok, onRowError: 'skip' }))
      .rejects.toThrow(`${file}: no rows (the file is empty)`);
  });

  it('every row bad: the first row errors are shown', async () => {
    const file = path.join(tmp, 'allbad.jsonl');
    fs.writeFileSync(file, ['{"messages": [', row('a', 'b').replace('"user"', '"bot"'), '{"prompt": "x"}'].join('\n') + '\n');
    const err = await prepareDataset({ sources: [{ file }], template: chatml, tokenizer: tok, onRowError: 'skip' }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^no training examples left: 0 rows read, 3 bad/);
    expect(err?.message).toContain(`${file}:1: invalid JSON`);
    expect(err?.message).toContain(`${file}:2: field "messages[0].role": unknown role "bot"`);
    expect(err?.message).toContain(`${file}:3: field "completion": missing`);
  });

  it('a template that raises for every row: its own message, with file:line', async () => {
    const file = path.join(tmp, 'two.jsonl');
    fs.writeFileSync(file, [row('a', 'b'), row('c', 'd')].join('\n') + '\n');
    const raising: ChatTemplate = { name: 'strict.jinja', source: "{{ raise_exception('Conversation roles must alternate system/user/assistant') }}", bosToken: '', eosToken: '<|endoftext|>' };
    const err = await prepareDataset({ sources: [{ file }], template: raising, tokenizer: tok, onRowError: 'skip' }).then(() => undefined, (e: Error) => e);
    expect(err?.message).toContain(`${file}:1: dropped (render_error): `);
    expect(err?.message).toContain('Conversation roles must alternate system/user/assistant');
    expect(err?.message).toContain(`${file}:2: dropped (render_error)`);
  });

  it('a template that cannot be parsed fails once, up front, with the parser\'s message', async () => {
    const file = path.join(tmp, 'two.jsonl');
    const broken: ChatTemplate = { name: 'broken.jinja', source: '{% for m in messages %}{{ m.content }', bosToken: '', eosToken: '<|endoftext|>' };
    await expect(prepareDataset({ sources: [{ file }], template: broken, tokenizer: tok, onRowError: 'skip' }))
      .rejects.toThrow("template 'broken.jinja' could not be parsed: Parser Error: Expected closing expression token");
  });
});

describe('special-token text inside a message', () => {
  const forged: Example = { format: 'messages', meta: {}, messages: [
    { role: 'user', content: 'say <|im_end|> please' }, { role: 'assistant', content: 'ok <|im_start|>system' }] };
  const imEnd = tok.tokenToId('<|im_end|>')!, imStart = tok.tokenToId('<|im_start|>')!;
  const count = (ids: number[], id: number) => ids.filter((x) => x === id).length;

  it('becomes special ids by default, and ordinary text with literalSpecialTokens', () => {
    const asIs = labelExample(forged, chatml, tok, { mask: 'assistant' }).examples[0];
    // The template writes 2 x <|im_start|> and 2 x <|im_end|>; the content adds one of each.
    expect([count(asIs.inputIds, imStart), count(asIs.inputIds, imEnd)]).toEqual([3, 3]);
    const lit = labelExample(forged, chatml, tok, { mask: 'assistant', literalSpecialTokens: true });
    expect(lit.forgedSpecials.sort()).toEqual(['<|im_end|>', '<|im_start|>']);
    const ex = lit.examples[0];
    expect([count(ex.inputIds, imStart), count(ex.inputIds, imEnd)]).toEqual([2, 2]);
    // The same text comes back, and the content's markers are the plain tokenizer's pieces of "<|im_end|>".
    const text = '<|im_start|>user\nsay <|im_end|> please<|im_end|>\n<|im_start|>assistant\nok <|im_start|>system<|im_end|>\n';
    expect(tok.decode(ex.inputIds)).toBe(text);
    expect(ex.inputIds.length).toBeGreaterThan(asIs.inputIds.length + 4);
    // The assistant turn (its literal marker included) and its end-of-turn marker are trained.
    const trained = ex.inputIds.filter((_, i) => ex.labels[i] !== IGNORE_INDEX);
    expect(tok.decode(trained)).toBe('ok <|im_start|>system<|im_end|>');
  });
});

describe('a huge row is truncated without tokenizing all of it', () => {
  it('keep_start gives the first maxLength tokens of the whole text, tokenizing only a prefix', () => {
    const words = Array.from({ length: 20_000 }, (_, i) => `w${(i * 7919) % 1000}`).join(' '); // ~100 KB
    const ex: Example = { format: 'text', text: words, meta: {} };
    const reference = tok.encode(words + tok.eosToken).ids.slice(0, 64); // the whole text, tokenized once here
    const seen: number[] = [];
    const spy = { ...tok, encode: (t: string, o?: Parameters<typeof tok.encode>[1]) => { seen.push(t.length); return tok.encode(t, o); } };
    const r = labelExample(ex, null, spy, { mask: 'all', maxLength: 64 });
    expect(r.examples[0].inputIds).toEqual(reference);
    expect(r.examples[0].meta.truncated).toBe(true);
    expect(r.truncated).toBe(1);
    expect(Math.max(...seen)).toBeLessThan(words.length / 10);
    // 'drop' decides from a prefix too.
    const dropped = labelExample(ex, null, spy, { mask: 'all', maxLength: 64, truncation: 'drop' });
    expect(dropped.dropped[0]).toMatchObject({ reason: 'too_long' });
    expect(dropped.dropped[0].detail).toMatch(/^more than \d+ tokens > max length 64$/);
  });
});

describe('webtune render --messages with a UTF-8 BOM', () => {
  it('renders it, as the JSONL reader accepts it', async () => {
    const file = path.join(tmp, 'bom.json');
    fs.writeFileSync(file, '\uFEFF' + JSON.stringify([{ role: 'user', content: 'hi' }]));
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { out += String(s); return true; });
    try {
      expect(await render(['--template', 'chatml', '--messages', file])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(out).toBe('<|im_start|>user\nhi<|im_end|>\n');
  });
});
