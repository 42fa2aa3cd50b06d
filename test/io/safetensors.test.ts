import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  parseSafetensors,
  parseSafetensorsHeader,
  writeSafetensors,
  float16ToFloat32,
  bfloat16ToFloat32,
  SafetensorsError,
  type WritableTensor,
} from '../../src/io/safetensors.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const FILE = 'model.safetensors';

/** A file built by hand: 8-byte length (or `length` if given), header text, then `data`. */
function rawFile(header: unknown, data: Uint8Array | number = 0, opts: { length?: bigint; rawHeader?: Uint8Array } = {}): Uint8Array {
  const h = opts.rawHeader ?? new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, opts.length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const f32FromBits = (bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);

describe('writeSafetensors / parseSafetensors round trip', () => {
  it('is bit-exact for F32 (NaN payloads, signalling NaN, -0, subnormals, inf) and I32', () => {
    const specials = f32FromBits([0x7fc00001, 0xffbfffff, 0x7f800001, 0x80000000, 0x00000001, 0x007fffff, 0x7f800000, 0xff800000, 0x3f800000]);
    const ints = new Int32Array([0, -1, 2147483647, -2147483648]);
    const tensors = new Map<string, WritableTensor>([
      ['specials', { shape: [3, 3], data: specials }],
      ['ints', { shape: [2, 2], data: ints }],
      ['scalar', { shape: [], data: new Float32Array([0.1]) }],
      ['empty', { shape: [0, 5], data: new Float32Array(0) }],
    ]);
    const bytes = writeSafetensors(tensors, { format: 'pt', other: 'é' });
    const { tensors: back, metadata } = parseSafetensors(bytes, FILE);
    expect(metadata).toEqual({ format: 'pt', other: 'é' });
    expect([...back.keys()].sort()).toEqual(['empty', 'ints', 'scalar', 'specials']);
    expect(back.get('specials')!.dtype).toBe('F32');
    expect(back.get('specials')!.shape).toEqual([3, 3]);
    expect(bitsOf(back.get('specials')!.data as Float32Array)).toEqual(bitsOf(specials));
    expect(back.get('ints')!.dtype).toBe('I32');
    expect(Array.from(back.get('ints')!.data as Int32Array)).toEqual(Array.from(ints));
    expect(back.get('scalar')!.shape).toEqual([]);
    expect(bitsOf(back.get('scalar')!.data as Float32Array)).toEqual(bitsOf(new Float32Array([0.1])));
    expect(back.get('empty')!.shape).toEqual([0, 5]);
    expect(back.get('empty')!.data.length).toBe(0);
  });

  it('writes F32 before I32, then names in byte order, back to back from offset 0', () => {
    const bytes = writeSafetensors(new Map<string, WritableTensor>([
      ['b', { shape: [1], data: new Int32Array([1]) }],
      ['z', { shape: [1], data: new Float32Array([1]) }],
      ['a', { shape: [2], data: new Float32Array([1, 2]) }],
      ['é', { shape: [1], data: new Float32Array([3]) }],
      // UTF-16 code-unit order would put U+1F600 (a surrogate pair, 0xD83D...) before U+FFFD;
      // the Rust writer compares UTF-8 bytes (EF BF BD < F0 9F 98 80).
      ['\u{1F600}', { shape: [1], data: new Float32Array([4]) }],
      ['\uFFFD', { shape: [1], data: new Float32Array([5]) }],
    ]));
    const header = parseSafetensorsHeader(bytes, FILE);
    expect([...header.tensors.keys()]).toEqual(['a', 'z', 'é', '\uFFFD', '\u{1F600}', 'b']);
    expect([...header.tensors.values()].map((t) => [t.begin, t.end])).toEqual([[0, 8], [8, 12], [12, 16], [16, 20], [20, 24], [24, 28]]);
  });

  it('pads the header with spaces to a multiple of 8 bytes, for every padding amount', () => {
    const pads = new Set<number>();
    for (let len = 1; len <= 8; len++) {
      const bytes = writeSafetensors(new Map([['x'.repeat(len), { shape: [1], data: new Float32Array([1]) }]]));
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const header = bytes.subarray(8, 8 + n);
      const json = new TextDecoder().decode(header);
      const trimmed = json.trimEnd();
      expect(JSON.parse(trimmed)).toEqual({ ['x'.repeat(len)]: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } });
      expect(header.subarray(trimmed.length).every((b) => b === 0x20)).toBe(true);
      pads.add(n - trimmed.length);
      expect(bytes.length).toBe(8 + n + 4);
    }
    expect([...pads].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('refuses bad input to the writer, naming the tensor', () => {
    const cases: Array<[string, WritableTensor, RegExp]> = [
      ['w', { shape: [2, 2], data: new Float32Array(3) }, /tensor "w": shape \[2,2\] has 4 elements but data has 3/],
      ['w', { shape: [-1], data: new Float32Array(0) }, /tensor "w": shape \[-1\] must hold non-negative integers/],
      ['w', { shape: [1], data: new Float64Array(1) as unknown as Float32Array }, /tensor "w": data must be a Float32Array or Int32Array/],
      ['__metadata__', { shape: [1], data: new Float32Array(1) }, /reserved/],
    ];
    for (const [name, t, re] of cases) expect(() => writeSafetensors(new Map([[name, t]]))).toThrow(re);
  });
});

describe('zero-copy views and alignment', () => {
  const bytes = writeSafetensors(new Map([
    ['a', { shape: [3], data: new Float32Array([1, 2, 3]) }],
    ['b', { shape: [2], data: new Int32Array([4, 5]) }],
  ]));

  it('returns views of the input when aligned', () => {
    const { tensors } = parseSafetensors(bytes, FILE);
    expect(tensors.get('a')!.data.buffer).toBe(bytes.buffer);
    expect(tensors.get('b')!.data.buffer).toBe(bytes.buffer);
  });

  it('copies when the input is misaligned, with the same values', () => {
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const view = shifted.subarray(1);
    const { tensors } = parseSafetensors(view, FILE);
    expect(tensors.get('a')!.data.buffer).not.toBe(shifted.buffer);
    expect(Array.from(tensors.get('a')!.data as Float32Array)).toEqual([1, 2, 3]);
    expect(Array.from(tensors.get('b')!.data as Int32Array)).toEqual([4, 5]);
  });
});

describe('F16 and BF16 decoding', () => {
  // [bits, expected float32 value, expected float32 bits for NaN]; values computed by hand:
  // half = (-1)^s * 2^(e-15) * (1 + m/1024), subnormal (-1)^s * m * 2^-24.
  const half: Array<[number, number, number?]> = [
    [0x0000, 0], [0x8000, -0], [0x3c00, 1], [0xc100, -2.5],
    [0x0001, 2 ** -24], [0x8001, -(2 ** -24)], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14],
    [0x7bff, 65504], [0x7c00, Infinity], [0xfc00, -Infinity],
    [0x2e66, 0.0999755859375], [0x3555, 0.333251953125],
    [0x7e00, NaN, 0x7fc00000], [0x7c01, NaN, 0x7f802000], [0xfe01, NaN, 0xffc02000],
  ];
  // bfloat16 is the top 16 bits of a float32: value = (-1)^s * 2^(e-127) * (1 + m/128).
  const brain: Array<[number, number, number?]> = [
    [0x0000, 0], [0x8000, -0], [0x3f80, 1], [0xc020, -2.5], [0x4049, 3.140625],
    [0x0001, 2 ** -133], [0x0080, 2 ** -126], [0x7f7f, 2 ** 127 * (1 + 127 / 128)],
    [0x7f80, Infinity], [0xff80, -Infinity], [0x7fc1, NaN, 0x7fc10000],
  ];
  for (const [title, table, decode] of [['F16', half, float16ToFloat32], ['BF16', brain, bfloat16ToFloat32]] as const) {
    it(`${title} decodes to the hand-computed values`, () => {
      const out = decode(new Uint16Array(table.map((c) => c[0])));
      table.forEach(([bits, value, nanBits], i) => {
        if (nanBits !== undefined) {
          expect(Number.isNaN(out[i]), `${bits.toString(16)}`).toBe(true);
          expect(new Uint32Array(out.buffer)[i], `${bits.toString(16)}`).toBe(nanBits);
        } else {
          expect(Object.is(out[i], value), `0x${bits.toString(16)}: ${out[i]} != ${value}`).toBe(true);
        }
      });
    });
  }

  it('F16 decoding matches a float64 formula for all 65536 bit patterns', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = float16ToFloat32(all);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
      const want = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
      if (!Object.is(out[h], want)) throw new Error(`0x${h.toString(16)}: ${out[h]} != ${want}`);
    }
  });
});

describe('fixture written in the Python writer format (test/io/fixtures/make_reference.py)', () => {
  it('decodes every dtype to the values numpy computed', () => {
    const bytes = new Uint8Array(readFileSync(fixture('reference_dtypes.safetensors')));
    const want = JSON.parse(readFileSync(fixture('reference_dtypes.json'), 'utf8'));
    const { tensors, metadata } = parseSafetensors(bytes, 'reference_dtypes.safetensors');
    expect(metadata).toEqual(want.metadata);
    expect([...tensors.keys()].sort()).toEqual(Object.keys(want.tensors).sort());
    for (const [name, w] of Object.entries<any>(want.tensors)) {
      const t = tensors.get(name)!;
      expect(t.dtype, name).toBe(w.dtype);
      expect(t.shape, name).toEqual(w.shape);
      if (w.f32_bits) {
        expect(t.data, name).toBeInstanceOf(Float32Array);
        expect(bitsOf(t.data as Float32Array), name).toEqual(w.f32_bits);
      } else if (w.bigint) {
        expect(t.data, name).toBeInstanceOf(BigInt64Array);
        expect(Array.from(t.data as BigInt64Array, String), name).toEqual(w.bigint);
      } else {
        const expectedType = { F64: Float64Array, I64: Int32Array, I32: Int32Array, U8: Uint8Array, BOOL: Uint8Array }[w.dtype as string];
        expect(t.data, name).toBeInstanceOf(expectedType);
        expect(Array.from(t.data as ArrayLike<number>), name).toEqual(w.values);
      }
    }
  });

  it('writes the same bytes as the Python writer', () => {
    const want = new Uint8Array(readFileSync(fixture('reference_writer.safetensors')));
    const spec = JSON.parse(readFileSync(fixture('reference_writer.json'), 'utf8'));
    const tensors = new Map<string, WritableTensor>();
    // Insertion order deliberately differs from the file order.
    for (const name of Object.keys(spec).reverse()) {
      const { dtype, shape, bits } = spec[name];
      const data = dtype === 'F32' ? new Float32Array(new Uint32Array(bits).buffer) : new Int32Array(bits);
      tensors.set(name, { shape, data });
    }
    const got = writeSafetensors(tensors, { format: 'pt' });
    const n = Number(new DataView(want.buffer, want.byteOffset).getBigUint64(0, true));
    expect(new TextDecoder().decode(got.subarray(8, 8 + n))).toBe(new TextDecoder().decode(want.subarray(8, 8 + n)));
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });
});

describe('corrupt files give an error naming the file and the tensor', () => {
  const f32 = (shape: number[], offsets: unknown, dtype = 'F32') => ({ dtype, shape, data_offsets: offsets });
  // [title, bytes, message pattern (after "model.safetensors: "), tensor named or undefined]
  const cases: Array<[string, Uint8Array, RegExp, string?]> = [
    ['empty file', new Uint8Array(0), /file is 0 bytes, shorter than the 8-byte header length/],
    ['file shorter than 8 bytes', new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte header length/],
    ['header length past the end', rawFile({}, 0, { length: 100n }), /header length 100 runs past the end of the file \(10 bytes\)/],
    ['absurd header length', rawFile({}, 0, { length: 1n << 40n }), /header length 1099511627776 is larger than the 100000000-byte limit/],
    ['header length just over the limit', rawFile({}, 0, { length: 100_000_001n }), /larger than the 100000000-byte limit/],
    ['header not UTF-8', rawFile(null, 0, { rawHeader: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }), /header is not valid UTF-8/],
    ['header not JSON', rawFile('{"w": {"dtype": "F32",'), /header is not valid JSON/],
    ['header a JSON array', rawFile('[1, 2]'), /header is not a JSON object/],
    ['metadata not strings', rawFile({ __metadata__: { format: 1 } }), /"__metadata__" value for "format" must be a string/],
    ['entry not an object', rawFile({ w: [1, 2] }), /entry must be an object/, 'w'],
    ['unknown dtype', rawFile({ w: f32([1], [0, 4], 'F33') }, 4), /unknown dtype "F33"/, 'w'],
    ['missing dtype', rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype undefined/, 'w'],
    ['unsupported dtype', rawFile({ w: f32([1], [0, 1], 'F8_E4M3') }, 1), /dtype F8_E4M3 is not supported/, 'w'],
    ['offsets one number', rawFile({ w: f32([1], [0]) }, 4), /"data_offsets" must be \[begin, end\]/, 'w'],
    ['offsets not integers', rawFile({ w: f32([1], [0, 4.5]) }, 4), /"data_offsets" must be \[begin, end\]/, 'w'],
    ['offsets negative', rawFile({ w: f32([1], [-4, 0]) }, 4), /"data_offsets" must be \[begin, end\]/, 'w'],
    ['offsets a string', rawFile({ w: f32([1], '0,4') }, 4), /"data_offsets" must be \[begin, end\]/, 'w'],
    ['offsets reversed', rawFile({ w: f32([0], [4, 0]) }, 4), /data_offsets \[4, 0\] end before they begin/, 'w'],
    ['offsets past the end', rawFile({ w: f32([2], [0, 8]) }, 4), /data_offsets \[0, 8\] run past the end of the byte buffer \(4 bytes/, 'w'],
    ['size not shape x dtype', rawFile({ w: f32([3], [0, 8]) }, 8), /hold 8 bytes but shape \[3\] of F32 needs 3 x 4 = 12/, 'w'],
    ['BF16 size', rawFile({ w: f32([3], [0, 4], 'BF16') }, 4), /hold 4 bytes but shape \[3\] of BF16 needs 3 x 2 = 6/, 'w'],
    ['negative dim', rawFile({ w: f32([-1, 2], [0, 0]) }), /"shape" must be an array of non-negative integers, got \[-1,2\]/, 'w'],
    ['fractional dim', rawFile({ w: f32([1.5], [0, 6]) }, 6), /"shape" must be an array of non-negative integers, got \[1.5\]/, 'w'],
    ['shape not array', rawFile({ w: f32(3 as any, [0, 12]) }, 12), /"shape" must be an array of non-negative integers, got 3/, 'w'],
    ['overflowing shape', rawFile({ w: f32([2 ** 30, 2 ** 30, 2 ** 30], [0, 4]) }, 4), /has too many elements/, 'w'],
    ['overlapping tensors', rawFile({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, 12), /data_offsets \[4, 12\] overlap tensor "a"/, 'b'],
    ['same offsets twice', rawFile({ a: f32([1], [0, 4]), b: f32([1], [0, 4]) }, 4), /overlap tensor "a"/, 'b'],
    ['gap between tensors', rawFile({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, 12), /4 unused bytes before this tensor \(bytes 4\.\.8, after tensor "a"\)/, 'b'],
    ['gap at the start', rawFile({ a: f32([1], [4, 8]) }, 8), /4 unused bytes before this tensor \(bytes 0\.\.4\)/, 'a'],
    ['trailing bytes', rawFile({ a: f32([1], [0, 4]) }, 6), /2 trailing bytes after the last tensor "a"/],
    ['bytes but no tensors', rawFile({}, 3), /3 trailing bytes after the last tensor/],
  ];
  for (const [title, bytes, re, tensor] of cases) {
    it(title, () => {
      let err: unknown;
      try {
        parseSafetensors(bytes, FILE);
      } catch (e) {
        err = e;
      }
      expect(err, 'no error thrown').toBeInstanceOf(SafetensorsError);
      const e = err as SafetensorsError;
      expect(e.message.startsWith(`${FILE}: ${tensor ? `tensor "${tensor}": ` : ''}`), e.message).toBe(true);
      expect(e.message).toMatch(re);
      expect(e.file).toBe(FILE);
      expect(e.tensor).toBe(tensor);
    });
  }

  it('accepts a valid hand-built file with out-of-order entries and zero-size tensors', () => {
    const data = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
    const bytes = rawFile({ b: f32([2], [4, 12]), z: f32([0], [4, 4]), a: f32([1], [0, 4]), __metadata__: { k: 'v' } }, data);
    const { tensors, metadata } = parseSafetensors(bytes, FILE);
    expect(metadata).toEqual({ k: 'v' });
    expect(Array.from(tensors.get('a')!.data as Float32Array)).toEqual([1]);
    expect(Array.from(tensors.get('b')!.data as Float32Array)).toEqual([2, 3]);
    expect(tensors.get('z')!.data.length).toBe(0);
  });

  it('keeps a "__proto__" metadata key as plain data', () => {
    const { metadata } = parseSafetensors(rawFile('{"__metadata__":{"__proto__":"x"}}'), FILE);
    expect(Object.keys(metadata)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
  });
});
