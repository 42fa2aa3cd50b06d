/**
 * Byte-level BPE building blocks shared by the trainer (bpe_train.ts) and the tokenizer
 * wrapper (tokenizer.ts): GPT-2's byte-to-unicode table, its pre-tokenizer regex, and the
 * mapping from UTF-8 byte positions back to UTF-16 string offsets.
 *
 * Byte-level BPE never sees characters, only bytes: every string is UTF-8 encoded and each
 * byte is shown as one printable unicode character (space -> 'Ġ', newline -> 'Ċ'), so a
 * vocabulary of 256 base symbols covers every possible input and nothing is ever unknown.
 */

/**
 * GPT-2's pre-tokenizer pattern (Python `tokenizers` ByteLevel with use_regex=true):
 * contractions, letters with an optional leading space, numbers, punctuation runs, and
 * whitespace, where a whitespace run before a word leaves its last space to that word.
 */
export const GPT2_PRETOKENIZE_REGEX = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's `bytes_to_unicode()`: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order. Index = byte value.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
})();

/** Inverse of BYTE_TO_UNICODE: byte-level character -> byte value. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`, each shown as its byte-level character (what BPE merges operate on). */
export function toByteLevel(text: string): string {
  let s = '';
  for (const b of encoder.encode(text)) s += BYTE_TO_UNICODE[b];
  return s;
}

/** Bytes of a byte-level token string; throws if a character is not a byte-level symbol. */
export function byteLevelToBytes(token: string): number[] {
  const out: number[] = [];
  for (const ch of token) {
    const b = UNICODE_TO_BYTE.get(ch);
    if (b === undefined) throw new Error(`byte-level token '${token}' holds '${ch}', which is not one of the 256 byte symbols`);
    out.push(b);
  }
  return out;
}

/**
 * Splits text into GPT-2 pre-tokens (before byte-level mapping). With `splitDigits`, every
 * ASCII digit is first cut out as a piece of its own and the GPT-2 regex runs on the pieces
 * between, as a `Sequence[Digits(individual_digits), ByteLevel]` pre-tokenizer does (the
 * Llama and SmolLM2 layout): "is 13." -> "is", " ", "1", "3", ".".
 */
export function pretokenize(text: string, splitDigits = false): string[] {
  if (!splitDigits) return text.match(GPT2_PRETOKENIZE_REGEX) ?? [];
  const out: string[] = [];
  for (const piece of text.split(/([0-9])/)) if (piece) out.push(...(piece.match(GPT2_PRETOKENIZE_REGEX) ?? []));
  return out;
}

/**
 * Splits `text` around occurrences of `specials` (longest match first at each position),
 * returning sections that are either a special token or plain text. This is what a
 * tokenizer does before BPE, so special tokens never take part in merges.
 */
export function splitOnSpecials(text: string, specials: readonly string[]): Array<{ text: string; special: boolean }> {
  const sorted = [...specials].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  const out: Array<{ text: string; special: boolean }> = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    const hit = sorted.find((s) => text.startsWith(s, i));
    if (hit) {
      if (i > start) out.push({ text: text.slice(start, i), special: false });
      out.push({ text: hit, special: true });
      i += hit.length;
      start = i;
    } else i++;
  }
  if (start < text.length) out.push({ text: text.slice(start), special: false });
  return out;
}

/**
 * For a string, `utf16AtByte[k]` is the UTF-16 index of the code point that contains UTF-8
 * byte k (length = byte length + 1; the last entry is text.length). A lone surrogate counts
 * as the 3 bytes of U+FFFD, exactly as TextEncoder encodes it.
 *
 * Token spans use it as: start = utf16AtByte[firstByte] (the character holding the first
 * byte), end = utf16End(lastByteExclusive), so a token that ends inside a multi-byte
 * character gets a span that covers that whole character.
 */
export function byteToUtf16Map(text: string): Int32Array {
  const map: number[] = [];
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const units = cp > 0xffff ? 2 : 1;
    const bytes = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; // lone surrogates are < 0x10000: 3 bytes (U+FFFD)
    for (let k = 0; k < bytes; k++) map.push(i);
    i += units;
  }
  map.push(text.length);
  return Int32Array.from(map);
}

/**
 * UTF-16 [start, end) spans for consecutive byte lengths that tile `text`'s UTF-8 bytes.
 * A zero-length piece gets an empty span at its position. Throws if the lengths do not add
 * up to the byte length of text (a tokenizer that normalised or dropped input).
 */
export function spansFromByteLengths(text: string, byteLengths: readonly number[]): Array<[number, number]> {
  const map = byteToUtf16Map(text);
  const totalBytes = map.length - 1;
  const endAt = (byteEnd: number): number => {
    // The first UTF-16 index whose code point starts at or after byteEnd.
    if (byteEnd >= totalBytes) return text.length;
    const cpStart = map[byteEnd];
    if (byteEnd === 0 || map[byteEnd - 1] !== cpStart) return cpStart; // byteEnd is a character boundary
    let k = byteEnd;
    while (k < totalBytes && map[k] === cpStart) k++;
    return k < totalBytes ? map[k] : text.length;
  };
  const out: Array<[number, number]> = [];
  let pos = 0;
  for (const len of byteLengths) {
    if (len === 0) {
      const at = endAt(pos);
      out.push([at, at]);
      continue;
    }
    out.push([pos < totalBytes ? map[pos] : text.length, endAt(pos + len)]);
    pos += len;
  }
  if (pos !== totalBytes) {
    throw new Error(`token byte lengths add up to ${pos}, but the text has ${totalBytes} UTF-8 bytes: the tokenizer changed the text (a normaliser or stripped added token?)`);
  }
  return out;
}
