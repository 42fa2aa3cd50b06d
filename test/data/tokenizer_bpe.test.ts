import { describe, expect, it } from 'vitest';
import { trainBpe, tokenizerJson, tokenizerConfigJson, countPretokens } from '../../src/data/bpe_train.js';
import { createTokenizer } from '../../src/data/tokenizer.js';
import { corpusTexts } from '../../src/cli/tokenizer.js';
import { splitOnSpecials, pretokenize } from '../../src/data/bpe.js';

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

describe('trainBpe', () => {
  it('reproduces a hand-worked example', () => {
    // 'aaabdaaabac' is one pre-token. Pair counts: aa 4, ab 2, others 1.
    // 1. merge (a, a): a a a b d a a a b a c -> aa a b d aa a b a c (left to right, no overlap)
    // 2. counts: (aa, a) 2, (a, b) 2 -> tie, smallest ids wins: (a=97, b=98) < (aa=256, a=97)
    //    -> aa ab d aa ab a c
    // 3. (aa, ab) 2 -> aaab d aaab a c; every pair is now seen once: stop (min frequency 2).
    const m = trainBpe(['aaabdaaabac'], { vocabSize: 1000, specialTokens: [] });
    expect(m.merges).toEqual([['a', 'a'], ['a', 'b'], ['aa', 'ab']]);
    expect(m.stats.stoppedBecause).toBe('min_frequency');
    expect([m.vocab.get('aa'), m.vocab.get('ab'), m.vocab.get('aaab')]).toEqual([256, 257, 258]);
  });

  it('byte-level: spaces become Ġ and belong to the following word; specials take ids 0..k-1 and never merge', () => {
    const m = trainBpe(['hi hi hi<|im_end|>hi'], { vocabSize: 264, specialTokens: ['<|im_end|>'] });
    // pre-tokens: hi, Ġhi, Ġhi, hi -> (h, i) 4, (Ġ, h) 2
    expect(m.merges).toEqual([['h', 'i'], ['Ġ', 'hi']]);
    expect(m.specialTokens).toEqual([{ content: '<|im_end|>', id: 0 }]);
    expect(m.vocab.get('a')).toBe(97 + 1);
    expect(m.vocab.get('hi')).toBe(257);
    expect([...m.vocab.keys()].some((t) => t.includes('<|'))).toBe(false);
  });

  it('stops at the vocabulary size exactly (bytes + merges + specials)', () => {
    const texts = Array.from({ length: 50 }, (_, i) => `the quick brown fox ${i} jumps over the lazy dog ${i * 7}`);
    const m = trainBpe(texts, { vocabSize: 280, specialTokens: SPECIALS });
    expect(m.vocab.size + m.specialTokens.length).toBe(280);
    expect(m.stats.stoppedBecause).toBe('vocab_full');
  });

  it('a merge that rebuilds an existing token string reuses its id', () => {
    // 'abc' can be built as (ab, c) in one word and (a, bc) in another.
    const texts = ['abx abx abx xbc xbc xbc xbc abc abc'];
    const m = trainBpe(texts, { vocabSize: 400, specialTokens: [] });
    const strings = [...m.vocab.keys()];
    expect(new Set(strings).size).toBe(strings.length);
    expect(new Set(m.vocab.values()).size).toBe(m.vocab.size);
  });

  it('is deterministic: same corpus in any order -> identical tokenizer.json', () => {
    const texts = Array.from({ length: 200 }, (_, i) => `row ${i}: ${'abcdefghij'.slice(i % 7)} says ${i % 13} + ${i % 5}`);
    const a = JSON.stringify(tokenizerJson(trainBpe(texts, { vocabSize: 400, specialTokens: SPECIALS })));
    const b = JSON.stringify(tokenizerJson(trainBpe([...texts].reverse(), { vocabSize: 400, specialTokens: SPECIALS })));
    expect(a).toBe(b);
  });

  it('writes files that load and encode the training words into their merged tokens', () => {
    const m = trainBpe(['aaabdaaabac aaab'], { vocabSize: 300, specialTokens: SPECIALS });
    const config = tokenizerConfigJson(m, { bosToken: SPECIALS[0], eosToken: SPECIALS[0], padToken: SPECIALS[0], chatTemplate: '', modelMaxLength: 64 });
    const tok = createTokenizer(tokenizerJson(m), config);
    expect(tok.encode('aaab').ids).toEqual([m.vocab.get('aaab')]);
    expect(tok.encode('<|im_start|>aaabd').ids).toEqual([1, m.vocab.get('aaab'), m.vocab.get('d')]);
    expect(() => tokenizerConfigJson(m, { bosToken: '<s>', eosToken: SPECIALS[0], padToken: SPECIALS[0], chatTemplate: '', modelMaxLength: 64 })).toThrow(/bos_token/);
  });

  it('pre-tokenizes with the GPT-2 regex and splits specials out first', () => {
    expect(pretokenize("I'll say  hi\n\nthere 123!")).toEqual(['I', "'ll", ' say', ' ', ' hi', '\n', '\n', 'there', ' 123', '!']);
    expect(splitOnSpecials('a<|im_end|>\n<|im_start|>b', SPECIALS)).toEqual([
      { text: 'a', special: false }, { text: '<|im_end|>', special: true }, { text: '\n', special: false },
      { text: '<|im_start|>', special: true }, { text: 'b', special: false }]);
    expect(countPretokens(['<|endoftext|>ab ab'], SPECIALS).counts).toEqual(new Map([['ab', 1], ['Ġab', 1]]));
  });

  it('splitDigits: every digit is a pre-token, no merge holds a digit, and the files encode numbers digit by digit', () => {
    // Digits first cut out, then the GPT-2 regex on what is between: the space before a number stands alone.
    expect(pretokenize('is 13, not 7x', true)).toEqual(['is', ' ', '1', '3', ',', ' not', ' ', '7', 'x']);
    expect(pretokenize('is 13', false)).toEqual(['is', ' 13']);
    const texts = Array.from({ length: 60 }, (_, i) => `${i} plus ${i + 11} is ${2 * i + 11}.`);
    const m = trainBpe(texts, { vocabSize: 320, specialTokens: SPECIALS, splitDigits: true });
    expect(m.merges.filter(([l, r]) => /[0-9]/.test(l + r))).toEqual([]);
    const json = tokenizerJson(m);
    expect(json.pre_tokenizer).toEqual({ type: 'Sequence', pretokenizers: [
      { type: 'Digits', individual_digits: true }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }] });
    const config = tokenizerConfigJson(m, { bosToken: SPECIALS[0], eosToken: SPECIALS[0], padToken: SPECIALS[0], chatTemplate: '', modelMaxLength: 64 });
    const tok = createTokenizer(json, config);
    const text = 'What is 13 plus 208?';
    const { ids, offsets } = tok.encode(text);
    const pieces = offsets.map(([s, e]) => text.slice(s, e));
    expect(pieces.filter((p) => /[0-9]/.test(p))).toEqual(['1', '3', '2', '0', '8']);
    expect(pieces.join('')).toBe(text);
    expect(tok.decode(ids)).toBe(text);
    // Without the option the same corpus merges numbers into single tokens.
    const plain = trainBpe(texts, { vocabSize: 320, specialTokens: SPECIALS });
    expect(plain.merges.some(([l, r]) => /[0-9]/.test(l + r))).toBe(true);
    expect(tokenizerJson(plain).pre_tokenizer).toMatchObject({ type: 'ByteLevel' });
  });

  it('reads corpus rows in every dataset format (messages rendered with ChatML)', () => {
    const jsonl = [
      JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Yo' }] }),
      JSON.stringify({ text: 'plain' }),
      JSON.stringify({ prompt: 'P', completion: 'C' }),
      JSON.stringify({ instruction: 'Do', input: 'this', output: 'done' }),
    ].join('\n');
    expect(corpusTexts('x.jsonl', jsonl)).toEqual([
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n',
      'plain',
      'PC',
      '<|im_start|>user\nDo\n\nthis<|im_end|>\n<|im_start|>assistant\ndone<|im_end|>\n',
    ]);
    expect(corpusTexts('notes.txt', 'free text')).toEqual(['free text']);
    expect(() => corpusTexts('bad.jsonl', '{"x":1}')).toThrow(/bad.jsonl:1/);
  });
});

describe('bundled tokenizer', () => {
  it('is what the documented command trains from demo/data (re-run it after regenerating the data)', async () => {
    const { readFileSync } = await import('node:fs');
    const { CHATML } = await import('../../src/data/templates/builtin.js');
    const root = new URL('../../', import.meta.url);
    const read = (p: string) => readFileSync(new URL(p, root), 'utf8');
    const texts = ['demo/data/train.jsonl', 'demo/data/pretrain.jsonl'].flatMap((f) => corpusTexts(f, read(f)));
    const model = trainBpe(texts, { vocabSize: 1024, specialTokens: SPECIALS, splitDigits: true });
    const eot = SPECIALS[0];
    const config = tokenizerConfigJson(model, { bosToken: eot, eosToken: eot, padToken: eot, chatTemplate: CHATML.source, modelMaxLength: 1024 });
    const stale = 'models/tokenizer is stale: run `npx tsx src/cli/main.ts tokenizer --corpus demo/data/train.jsonl,demo/data/pretrain.jsonl --vocab-size 1024 --split-digits --out models/tokenizer`';
    expect(JSON.stringify(tokenizerJson(model), null, 2) + '\n', stale).toBe(read('models/tokenizer/tokenizer.json'));
    expect(JSON.stringify(config, null, 2) + '\n', stale).toBe(read('models/tokenizer/tokenizer_config.json'));
  });
});
