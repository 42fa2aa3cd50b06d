import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AutoTokenizer, PreTrainedTokenizer, env } from '@huggingface/transformers';
import { createTokenizer, loadBundledTokenizer, loadTokenizer } from '../../src/data/tokenizer.js';
import { byteToUtf16Map, spansFromByteLengths, BYTE_TO_UNICODE, toByteLevel } from '../../src/data/bpe.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = `${root}models/tokenizer`;
const tokenizerJson = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
const tokenizerConfig = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));

const TEXTS = [
  'Hello, world!',
  'What is 12 + 30? The answer is 42.',
  'line one\nline two\n\n\tindented  double  space   ',
  'héllo wörld, naïve café — “quotes”',
  'emoji 😀 and family 👨‍👩‍👧 and flag 🇫🇷',
  '日本語のテキストと中文',
  "don't won't it's we'll",
  '   leading spaces and trailing   ',
  'e\u0301 combining accent, \u00a0 no-break space',
  '',
];

/**
 * Reference BPE encoder written from the definition: every ASCII digit cut out on its own
 * (the Digits pre-tokenizer), the GPT-2 regex on the pieces between, then rank-ordered merges,
 * leftmost first.
 */
function referenceEncode(text: string, vocab: Record<string, number>, merges: string[]): number[] {
  const rank = new Map(merges.map((m, i) => [m, i]));
  const gpt2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  const pieces: string[] = [];
  let rest = '';
  for (const ch of text) {
    if (ch >= '0' && ch <= '9') {
      pieces.push(...(rest.match(gpt2) ?? []), ch);
      rest = '';
    } else rest += ch;
  }
  pieces.push(...(rest.match(gpt2) ?? []));
  const ids: number[] = [];
  for (const piece of pieces) {
    let syms = [...toByteLevel(piece)];
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = rank.get(`${syms[i]} ${syms[i + 1]}`);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) break;
      const [l, r] = [syms[best], syms[best + 1]];
      const next: string[] = [];
      for (let i = 0; i < syms.length; ) {
        if (i + 1 < syms.length && syms[i] === l && syms[i + 1] === r) { next.push(l + r); i += 2; } else next.push(syms[i++]);
      }
      syms = next;
    }
    ids.push(...syms.map((s) => vocab[s]));
  }
  return ids;
}

describe('bundled tokenizer files', () => {
  it('have the documented layout: BPE + Digits then ByteLevel, specials 0..2, bytes 3..258, 1024 ids', () => {
    expect(tokenizerJson.model.type).toBe('BPE');
    expect(tokenizerJson.pre_tokenizer).toMatchObject({ type: 'Sequence', pretokenizers: [
      { type: 'Digits', individual_digits: true }, { type: 'ByteLevel', add_prefix_space: false, use_regex: true }] });
    // No merged token holds a digit: every number is read digit by digit.
    expect(Object.keys(tokenizerJson.model.vocab).filter((t) => /[0-9]/.test(t) && t.length > 1)).toEqual([]);
    expect(tokenizerJson.decoder.type).toBe('ByteLevel');
    expect(tokenizerJson.normalizer).toBeNull();
    expect(tokenizerJson.added_tokens.map((t: { id: number; content: string; special: boolean }) => [t.id, t.content, t.special]))
      .toEqual([[0, '<|endoftext|>', true], [1, '<|im_start|>', true], [2, '<|im_end|>', true]]);
    for (let b = 0; b < 256; b++) expect(tokenizerJson.model.vocab[BYTE_TO_UNICODE[b]]).toBe(b + 3);
    const ids = Object.values(tokenizerJson.model.vocab as Record<string, number>).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 3)); // dense
    expect(ids.length + 3).toBe(1024);
    expect(tokenizerConfig).toMatchObject({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', unk_token: null, clean_up_tokenization_spaces: false });
    expect(tokenizerConfig.chat_template).toContain('<|im_start|>');
    expect(Object.keys(tokenizerConfig.added_tokens_decoder)).toEqual(['0', '1', '2']);
  });

  it('load in @huggingface/transformers (AutoTokenizer from the directory, no network) and agree with a reference BPE encoder', async () => {
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const auto = await AutoTokenizer.from_pretrained('models/tokenizer');
    const direct = new PreTrainedTokenizer(tokenizerJson, tokenizerConfig);
    const ours = await loadBundledTokenizer();
    for (const text of TEXTS) {
      const ref = referenceEncode(text, tokenizerJson.model.vocab, tokenizerJson.model.merges);
      expect(auto.encode(text), text).toEqual(ref);
      expect(direct.encode(text), text).toEqual(ref);
      expect(ours.encode(text).ids, text).toEqual(ref);
    }
    expect(auto.apply_chat_template([{ role: 'user', content: 'hi' }], { tokenize: false, add_generation_prompt: true }))
      .toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  });
});

describe('Tokenizer', async () => {
  const tok = await loadTokenizer(dir);

  it.each(TEXTS.map((t) => [JSON.stringify(t), t]))('round-trips %s exactly', (_, text) => {
    const { ids } = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
  });

  it('loads the same from a directory, the bundled JSON, a FileSource and objects', async () => {
    const others = [
      await loadBundledTokenizer(),
      await loadTokenizer({ tokenizerJson, tokenizerConfig }),
      await loadTokenizer({ readText: async (f: string) => readFileSync(`${dir}/${f}`, 'utf8') }),
    ];
    for (const o of others) expect(o.encode(TEXTS[4]).ids).toEqual(tok.encode(TEXTS[4]).ids);
    expect([tok.vocabSize, tok.eosTokenId, tok.padTokenId, tok.eosToken]).toEqual([1024, 0, 0, '<|endoftext|>']);
  });

  it.each([
    ['<|endoftext|>', 0], ['<|im_start|>', 1], ['<|im_end|>', 2],
  ])('special token %s written in text encodes as the single id %i, wherever it appears', (s, id) => {
    expect(tok.encode(s).ids).toEqual([id]);
    const text = `user says${s}and more`;
    const { ids, offsets } = tok.encode(text);
    const k = ids.indexOf(id);
    expect(k).toBeGreaterThan(0);
    expect(ids.filter((x) => x === id)).toHaveLength(1);
    expect(offsets[k]).toEqual([9, 9 + s.length]);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user saysand more');
  });

  it('ASCII offsets are exact: text.slice(offset) equals the decoded piece, and spans tile the text', () => {
    const text = '<|im_start|>user\nWhat is 7 * 6?  Answer:\tforty-two<|im_end|>\n';
    const { ids, offsets } = tok.encode(text);
    let pos = 0;
    ids.forEach((id, i) => {
      expect(offsets[i][0]).toBe(pos);
      expect(text.slice(...offsets[i])).toBe(tok.decode([id]));
      pos = offsets[i][1];
    });
    expect(pos).toBe(text.length);
  });

  it('a token ending inside a multi-byte character gets a span covering the whole character', () => {
    // 😀 is 4 UTF-8 bytes and 2 UTF-16 units; unless a merge covers all 4 bytes it is split.
    const text = 'a😀b';
    const { ids, offsets } = tok.encode(text);
    const pieces = ids.map((id) => tok.idToToken(id));
    const emojiTokens = offsets.filter(([s, e]) => s <= 1 && e >= 3);
    expect(emojiTokens.length).toBeGreaterThan(0);
    for (const [s, e] of emojiTokens) expect([s, e]).toEqual([1, 3]);
    expect(offsets[0]).toEqual([0, 1]);
    expect(offsets[offsets.length - 1]).toEqual([3, 4]);
    expect(pieces.join('')).toBe(toByteLevel(text));
  });

  it('byte -> UTF-16 conversion (hand-computed)', () => {
    // 'aé😀' = a(1 byte) é(2) 😀(4); UTF-16 indices 0, 1, 2..3
    expect([...byteToUtf16Map('aé😀')]).toEqual([0, 1, 1, 2, 2, 2, 2, 4]);
    // tokens: [a][é first byte][é second byte + 😀 first 2 bytes][😀 last 2 bytes]
    expect(spansFromByteLengths('aé😀', [1, 1, 3, 2])).toEqual([[0, 1], [1, 2], [1, 4], [2, 4]]);
    // a lone surrogate is 3 bytes (U+FFFD), as TextEncoder encodes it
    expect([...byteToUtf16Map('\ud800x')]).toEqual([0, 0, 0, 1, 2]);
    expect(() => spansFromByteLengths('abc', [1, 1])).toThrow(/3 UTF-8 bytes/);
  });

  it('non-byte-level decoders fall back to offsets by incremental decoding', () => {
    // A word-level tokenizer with a WordPiece-free decoder: a small independent check.
    const tj = {
      version: '1.0', added_tokens: [{ id: 0, content: '</s>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false }],
      normalizer: null, pre_tokenizer: { type: 'WhitespaceSplit' }, post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab: { '</s>': 0, a: 1, bb: 2, '[UNK]': 3 }, unk_token: '[UNK]' },
    };
    const t = createTokenizer(tj, { eos_token: '</s>' });
    const r = t.encode('bb</s>a');
    expect(r.ids).toEqual([2, 0, 1]);
    expect(r.offsets).toEqual([[0, 2], [2, 6], [6, 7]]);
  });
});
