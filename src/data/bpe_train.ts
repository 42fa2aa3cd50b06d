/**
 * A deterministic byte-level BPE trainer that writes Hugging Face `tokenizer.json` +
 * `tokenizer_config.json`, the files `@huggingface/transformers` and Python `tokenizers`
 * load.
 *
 * Algorithm (Sennrich et al. 2016, byte-level as in GPT-2):
 * 1. Split each text on the special tokens (they never take part in merges), pre-tokenize
 *    each section with the GPT-2 regex (optionally cutting every digit out first, so numbers
 *    are read digit by digit) and count the distinct pre-tokens.
 * 2. Start from the 256 byte symbols. Ids: the special tokens first (0, 1, ...), then the
 *    bytes in byte order, then merged tokens in the order they were made (SmolLM's layout:
 *    `<|endoftext|>` = 0 is the id the model presets use for bos/eos).
 * 3. Repeatedly merge the most frequent adjacent pair of symbols. Ties go to the smallest
 *    (left id, right id) pair, the rule of the `tokenizers` BpeTrainer, so training is a pure
 *    function of the corpus. A merge is applied left to right without overlap ("a a a" with
 *    pair (a, a) -> "aa a"), as the encoder applies it.
 * 4. Stop when the vocabulary (bytes + merged tokens + specials) reaches `vocabSize`, or
 *    when no pair occurs at least `minFrequency` times.
 *
 * @example
 * const { merges } = trainBpe(['aaabdaaabac'], { vocabSize: 300, specialTokens: [] });
 * // merges: [['a','a'], ['a','b'], ['aa','ab']]
 */
import { BYTE_TO_UNICODE, pretokenize, splitOnSpecials } from './bpe.js';

export interface BpeTrainOptions {
  /** Total vocabulary: 256 bytes + merged tokens + special tokens. */
  vocabSize: number;
  /** Ids 0..k-1, in this order. */
  specialTokens: string[];
  /** A pair must occur at least this often to be merged (default 2: a merge seen once compresses nothing). */
  minFrequency?: number;
  /**
   * Every ASCII digit is a pre-token of its own (default false), as in the Llama and SmolLM2
   * tokenizers: "13" is always "1" "3", so a model adds digits instead of mapping two unrelated
   * number ids to a third.
   */
  splitDigits?: boolean;
}

export interface BpeModel {
  /** Token string (byte-level characters) -> id, in id order; specials excluded (they hold ids 0..k-1). */
  vocab: Map<string, number>;
  /** Merges in rank order, as byte-level token strings. */
  merges: Array<[string, string]>;
  /** Special tokens with their ids (0..k-1). */
  specialTokens: Array<{ content: string; id: number }>;
  /** Digits were pre-tokenized one by one (tokenizer.json then needs the Digits pre-tokenizer too). */
  splitDigits: boolean;
  /** Corpus statistics, for the report. */
  stats: { texts: number; pretokens: number; distinctPretokens: number; stoppedBecause: 'vocab_full' | 'min_frequency' };
}

/** Counts pre-tokens (as byte-level strings) over texts, with special tokens split out. */
export function countPretokens(texts: Iterable<string>, specialTokens: readonly string[], splitDigits = false): { counts: Map<string, number>; texts: number; total: number } {
  const counts = new Map<string, number>();
  let n = 0;
  let total = 0;
  const enc = new TextEncoder();
  for (const text of texts) {
    n++;
    for (const section of splitOnSpecials(text, specialTokens)) {
      if (section.special) continue;
      for (const piece of pretokenize(section.text, splitDigits)) {
        let s = '';
        for (const b of enc.encode(piece)) s += BYTE_TO_UNICODE[b];
        counts.set(s, (counts.get(s) ?? 0) + 1);
        total++;
      }
    }
  }
  return { counts, texts: n, total };
}

const pairKey = (a: number, b: number) => a * 65536 + b; // ids stay < 65536

/** Trains byte-level BPE merges on texts. Deterministic: same texts (any order) -> same model. */
export function trainBpe(texts: Iterable<string>, opts: BpeTrainOptions): BpeModel {
  const minFrequency = opts.minFrequency ?? 2;
  const specials = opts.specialTokens;
  if (new Set(specials).size !== specials.length) throw new Error(`special tokens repeat: ${specials.join(', ')}`);
  const targetRegular = opts.vocabSize - specials.length;
  if (targetRegular < 256) throw new Error(`vocabSize ${opts.vocabSize} leaves no room for the 256 byte symbols and ${specials.length} special tokens`);
  if (targetRegular > 65535) throw new Error(`vocabSize ${opts.vocabSize} is above the 65535 this trainer supports`);

  const splitDigits = opts.splitDigits ?? false;
  const { counts, texts: nTexts, total } = countPretokens(texts, specials, splitDigits);

  // Symbol tables: id -> token string; token string -> id (a merge can rebuild an existing string).
  const idToToken: string[] = [...BYTE_TO_UNICODE];
  const tokenToId = new Map<string, number>(idToToken.map((t, i) => [t, i]));
  const merges: Array<[string, string]> = [];

  // Distinct words as symbol arrays, each with its frequency.
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [w, f] of counts) {
    words.push([...w].map((ch) => tokenToId.get(ch)!));
    freqs.push(f);
  }

  // Pair counts and, per pair, the words it may occur in (stale entries are re-checked).
  const pairCounts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addWordPairs = (wi: number, sign: 1 | -1) => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const k = pairKey(w[i], w[i + 1]);
      const c = (pairCounts.get(k) ?? 0) + sign * freqs[wi];
      if (c === 0) pairCounts.delete(k);
      else pairCounts.set(k, c);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addWordPairs(wi, 1);

  let stoppedBecause: BpeModel['stats']['stoppedBecause'] = 'vocab_full';
  while (idToToken.length < targetRegular) {
    // Most frequent pair; ties -> smallest (left, right), i.e. the smallest key.
    let bestKey = -1;
    let bestCount = 0;
    for (const [k, c] of pairCounts) {
      if (c > bestCount || (c === bestCount && k < bestKey)) {
        bestKey = k;
        bestCount = c;
      }
    }
    if (bestKey < 0 || bestCount < minFrequency) {
      stoppedBecause = 'min_frequency';
      break;
    }
    const a = Math.floor(bestKey / 65536);
    const b = bestKey % 65536;
    const merged = idToToken[a] + idToToken[b];
    let newId = tokenToId.get(merged);
    if (newId === undefined) {
      newId = idToToken.length;
      idToToken.push(merged);
      tokenToId.set(merged, newId);
    }
    merges.push([idToToken[a], idToToken[b]]);

    const affected = [...(where.get(bestKey) ?? [])].sort((x, y) => x - y);
    where.delete(bestKey);
    for (const wi of affected) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) { has = true; break; }
      if (!has) continue;
      addWordPairs(wi, -1);
      const out: number[] = [];
      for (let i = 0; i < w.length; ) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(newId);
          i += 2;
        } else out.push(w[i++]);
      }
      words[wi] = out;
      addWordPairs(wi, 1);
    }
  }

  // Ties above compared (left, right) ids with bytes at 0..255; shifting every id by the
  // number of specials keeps that order, so the merges are those of the final ids too.
  const shift = specials.length;
  const vocab = new Map<string, number>(idToToken.map((t, i) => [t, i + shift]));
  const specialTokens = specials.map((content, i) => ({ content, id: i }));
  return { vocab, merges, specialTokens, splitDigits, stats: { texts: nTexts, pretokens: total, distinctPretokens: counts.size, stoppedBecause } };
}

export interface TokenizerFilesOptions {
  bosToken: string;
  eosToken: string;
  padToken: string;
  chatTemplate: string;
  modelMaxLength: number;
}

/**
 * The `tokenizer.json` of a trained model: BPE with vocab + merges, ByteLevel pre-tokenizer
 * (behind a Digits one when digits were split) and decoder, no normaliser and no
 * post-processor (nothing is added on encode: templates write every special token
 * themselves), special tokens as added tokens with special: true.
 */
export function tokenizerJson(model: BpeModel): Record<string, unknown> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map(({ content, id }) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: model.splitDigits
      ? { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel] }
      : byteLevel,
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries([...model.vocab].sort((x, y) => x[1] - y[1])),
      // "left right" strings: byte-level symbols never contain a space (space is 'Ġ'), and
      // every loader (old and new) reads this form.
      merges: model.merges.map(([l, r]) => `${l} ${r}`),
    },
  };
}

/** The matching `tokenizer_config.json` (what transformers reads for bos/eos/pad and the chat template). */
export function tokenizerConfigJson(model: BpeModel, opts: TokenizerFilesOptions): Record<string, unknown> {
  const ids = new Set(model.specialTokens.map((t) => t.content));
  for (const [field, tok] of [['bos_token', opts.bosToken], ['eos_token', opts.eosToken], ['pad_token', opts.padToken]] as const) {
    if (!ids.has(tok)) throw new Error(`${field} '${tok}' is not one of the special tokens (${[...ids].join(', ')})`);
  }
  return {
    add_bos_token: false,
    add_eos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(model.specialTokens.map(({ content, id }) => [String(id), {
      content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true,
    }])),
    additional_special_tokens: model.specialTokens.map((t) => t.content).filter((t) => t !== opts.bosToken && t !== opts.eosToken && t !== opts.padToken),
    bos_token: opts.bosToken,
    chat_template: opts.chatTemplate,
    // false: decoding must give back exactly the text that was encoded (no " ." -> "." clean-up).
    clean_up_tokenization_spaces: false,
    eos_token: opts.eosToken,
    errors: 'replace',
    model_max_length: opts.modelMaxLength,
    pad_token: opts.padToken,
    split_special_tokens: false,
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: null,
  };
}
