/**
 * Tokenizers for training: the Tokenizer of `@huggingface/tokenizers` (the pure-JS tokenizer
 * that `@huggingface/transformers`' PreTrainedTokenizer wraps, imported directly so that no
 * ONNX runtime is pulled into a browser bundle), built from an in-memory tokenizer.json +
 * tokenizer_config.json, so nothing is ever fetched from the Hub,
 * plus exact per-token UTF-16 offsets, which the library does not give and label masking
 * needs.
 *
 * Offsets for byte-level BPE are exact: each token maps back to its UTF-8 bytes (special
 * tokens to the bytes of their text), the byte lengths tile the text's UTF-8 encoding, and
 * byte positions convert to UTF-16 indices. A token that ends inside a multi-byte character
 * (one emoji split over two tokens) gets a span that covers the whole character, so both
 * halves overlap it.
 *
 * @example
 * const tok = await loadBundledTokenizer();
 * tok.encode('<|im_start|>user\nhi').ids[0] === tok.tokenToId('<|im_start|>'); // true: one special id
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { byteLevelToBytes, spansFromByteLengths } from './bpe.js';
import bundledTokenizerJson from '../../models/tokenizer/tokenizer.json';
import bundledTokenizerConfig from '../../models/tokenizer/tokenizer_config.json';

export interface Tokenizer {
  vocabSize: number;
  bosToken?: string;
  eosToken: string;
  padTokenId: number;
  eosTokenId: number;
  bosTokenId?: number;
  /** Contents of every added token marked special (they encode as single ids wherever they appear in text). */
  specialTokens: string[];
  chatTemplate?: string;
  modelMaxLength?: number;
  /** ids and [start, end) UTF-16 offsets into `text`, one per id. Adds no BOS/EOS of its own.
   * `literal`: UTF-16 ranges of `text` where special-token text is encoded as ordinary text
   * (transformers' split_special_tokens, applied to those ranges only), e.g. message content. */
  encode(text: string, opts?: { literal?: ReadonlyArray<readonly [number, number]> }): { ids: number[]; offsets: Array<[number, number]> };
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  idToToken(id: number): string;
  /** The id of a token string (a special token's content or a vocabulary entry), or undefined. */
  tokenToId(token: string): number | undefined;
  /** The two JSON files it was built from (to save next to a checkpoint). */
  files: { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> };
}

/** Anything that reads named files (src/io's FileSource fits). */
export interface TextFileSource { readText(file: string): Promise<string> }
export type TokenizerSource =
  | string // a directory (Node) or a base URL (browser)
  | TextFileSource
  | { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> };

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

async function readJsonFile(src: string | TextFileSource, file: string): Promise<Record<string, unknown>> {
  let text: string;
  let where: string;
  if (typeof src === 'string') {
    if (isNode && !/^https?:/.test(src)) {
      const { readFile } = await import('node:fs/promises');
      const { join } = await import('node:path');
      where = join(src, file);
      try {
        text = await readFile(where, 'utf8');
      } catch (e) {
        throw new Error(`${where}: cannot read (${(e as Error).message}); a tokenizer directory holds tokenizer.json and tokenizer_config.json`);
      }
    } else {
      where = `${src.replace(/\/$/, '')}/${file}`;
      const res = await fetch(where);
      if (!res.ok) throw new Error(`${where}: HTTP ${res.status}`);
      text = await res.text();
    }
  } else {
    where = file;
    text = await src.readText(file);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
}

/** Loads tokenizer.json + tokenizer_config.json from a directory, URL, FileSource, or the two objects. */
export async function loadTokenizer(src: TokenizerSource): Promise<Tokenizer> {
  if (typeof src === 'object' && 'tokenizerJson' in src) return createTokenizer(src.tokenizerJson, src.tokenizerConfig);
  const [tj, tc] = await Promise.all([readJsonFile(src, 'tokenizer.json'), readJsonFile(src, 'tokenizer_config.json')]);
  return createTokenizer(tj, tc, typeof src === 'string' ? src : 'tokenizer');
}

/** The project's byte-level BPE (models/tokenizer/), bundled as JSON so it loads in Node and in the browser. */
export async function loadBundledTokenizer(): Promise<Tokenizer> {
  return createTokenizer(bundledTokenizerJson as Record<string, unknown>, bundledTokenizerConfig as Record<string, unknown>, 'models/tokenizer');
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** Builds a Tokenizer from the two parsed JSON files. `name` is used in error messages. */
export function createTokenizer(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, name = 'tokenizer'): Tokenizer {
  const model = tokenizerJson.model as { type?: string } | undefined;
  if (!model || typeof model !== 'object') throw new Error(`${name}/tokenizer.json: no 'model' section`);
  const inner = new HfTokenizer(tokenizerJson, tokenizerConfig);

  const added = (tokenizerJson.added_tokens ?? []) as Array<{ id: number; content: string; special?: boolean }>;
  const specialTokens = added.filter((t) => t.special).map((t) => t.content);
  const addedContents = new Set(added.map((t) => t.content));
  const decoder = tokenizerJson.decoder as { type?: string } | null;
  const byteLevel = decoder?.type === 'ByteLevel';

  const eosToken = tokenContent(tokenizerConfig.eos_token);
  if (!eosToken) throw new Error(`${name}/tokenizer_config.json: field eos_token is missing (training appends it to text rows and completions)`);
  const eosTokenId = inner.token_to_id(eosToken);
  if (eosTokenId === undefined) throw new Error(`${name}/tokenizer_config.json: eos_token '${eosToken}' is not in the vocabulary`);
  const bosToken = tokenContent(tokenizerConfig.bos_token);
  const padToken = tokenContent(tokenizerConfig.pad_token) ?? eosToken;
  const padTokenId = inner.token_to_id(padToken);
  if (padTokenId === undefined) throw new Error(`${name}/tokenizer_config.json: pad_token '${padToken}' is not in the vocabulary`);

  let maxId = -1;
  for (const id of inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
  const enc = new TextEncoder();

  // Byte length of each token string in the original text.
  const tokenBytes = (t: string): number => (addedContents.has(t) ? enc.encode(t).length : byteLevelToBytes(t).length);

  // The same tokenizer with its special tokens unmatched (built when first needed): their text
  // then goes through the model like any other text.
  let plain: HfTokenizer | undefined;
  const plainTokenizer = () => (plain ??= new HfTokenizer({ ...tokenizerJson, added_tokens: added.filter((t) => !t.special) }, tokenizerConfig));

  const encode = (text: string, opts?: { literal?: ReadonlyArray<readonly [number, number]> }): { ids: number[]; offsets: Array<[number, number]> } => {
    const literal = (opts?.literal ?? []).filter(([a, b]) => b > a).slice().sort((x, y) => x[0] - y[0]);
    if (literal.length === 0) {
      const { ids, tokens } = inner.encode(text, { add_special_tokens: false });
      if (byteLevel) return { ids, offsets: spansFromByteLengths(text, tokens.map(tokenBytes)) };
      return { ids, offsets: offsetsByDecoding(text, ids) };
    }
    if (!byteLevel) throw new Error(`${name}: encoding special-token text literally needs a byte-level BPE tokenizer`);
    // Segments alternate: ordinary text (special tokens matched), literal text (not matched).
    const ids: number[] = [], tokens: string[] = [];
    const piece = (tk: HfTokenizer, from: number, to: number) => {
      if (to <= from) return;
      const r = tk.encode(text.slice(from, to), { add_special_tokens: false });
      ids.push(...r.ids);
      tokens.push(...r.tokens);
    };
    let at = 0;
    for (const [a, b] of literal) {
      const start = Math.max(a, at);
      piece(inner, at, start);
      piece(plainTokenizer(), start, b);
      at = Math.max(at, b);
    }
    piece(inner, at, text.length);
    return { ids, offsets: spansFromByteLengths(text, tokens.map(tokenBytes)) };
  };

  // Non-byte-level tokenizers (SentencePiece-style): offsets from incremental decoding,
  // checked to be prefixes of the text. Exact when decoding reproduces the input.
  const offsetsByDecoding = (text: string, ids: number[]): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    let prev = 0;
    for (let i = 0; i < ids.length; i++) {
      const s = inner.decode(ids.slice(0, i + 1), { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      let end = s.length;
      if (!text.startsWith(s)) {
        // Partial multi-byte characters decode to U+FFFD: hold the end until they complete.
        end = prev;
        if (!s.endsWith('\uFFFD')) throw new Error(`${name}: cannot compute offsets: decoding token ${i} gives text that is not a prefix of the input (the tokenizer normalises text)`);
      }
      out.push([prev, Math.max(prev, end)]);
      prev = Math.max(prev, end);
    }
    return out;
  };

  return {
    vocabSize: maxId + 1,
    bosToken: bosToken ?? undefined,
    bosTokenId: bosToken ? inner.token_to_id(bosToken) : undefined,
    eosToken,
    eosTokenId,
    padTokenId,
    specialTokens,
    chatTemplate: typeof tokenizerConfig.chat_template === 'string' ? tokenizerConfig.chat_template : undefined,
    modelMaxLength: typeof tokenizerConfig.model_max_length === 'number' ? tokenizerConfig.model_max_length : undefined,
    encode,
    decode(ids, opts) {
      if (ids.length === 0) return '';
      return inner.decode(ids, { skip_special_tokens: opts?.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
    },
    idToToken(id) {
      const t = inner.id_to_token(id);
      if (t === undefined) throw new Error(`${name}: token id ${id} is outside the vocabulary (size ${maxId + 1})`);
      return t;
    },
    tokenToId: (token) => inner.token_to_id(token),
    files: { tokenizerJson, tokenizerConfig },
  };
}
