/**
 * The safetensors format, read and written exactly as the Hugging Face library does.
 *
 * Layout of a file:
 *   8 bytes    N, little-endian u64: length of the header
 *   N bytes    UTF-8 JSON: {"__metadata__": {str: str}?, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...}
 *   the rest   the byte buffer; offsets are relative to its start
 *
 * Validation follows the reference (Rust) implementation: the header is at most 100 MB, every
 * tensor's byte size is product(shape) * dtype size, and, taken in offset order, the tensors
 * cover the byte buffer exactly (the first starts at 0, each starts where the previous ended,
 * the last ends at the end of the file): no gaps, no overlaps, no trailing bytes. Every error
 * names the file and, where there is one, the tensor.
 *
 * Decoding (`TensorRecord.data`):
 *   F32            Float32Array, a zero-copy view of `bytes` when 4-byte aligned, else a copy
 *   F16, BF16      Float32Array (exact conversion, NaN payloads and -0 kept); `dtype` says what was stored
 *   F64            Float64Array (view or copy)
 *   I32            Int32Array (view or copy)
 *   I64            Int32Array when every value fits in int32 (tfjs has no int64: this is what a
 *                  model can use), otherwise BigInt64Array; `dtype` stays 'I64'
 *   I16, I8        Int16Array, Int8Array
 *   U8, BOOL       Uint8Array (view)
 * Views alias `bytes`: mutating one mutates the other. Little-endian hosts only (every browser
 * and Node platform in use); a big-endian host is refused rather than misread.
 *
 * @example
 * const bytes = writeSafetensors(new Map([['w', { shape: [2], data: new Float32Array([1, -0]) }]]));
 * const { tensors } = parseSafetensors(bytes, 'w.safetensors');
 * tensors.get('w'); // { dtype: 'F32', shape: [2], data: Float32Array [1, -0] }
 */

/** The dtypes this reader decodes (the writer writes F32 and I32). */
export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint8Array;

export interface TensorRecord {
  dtype: Dtype; // as stored in the file
  shape: number[];
  data: TensorData; // decoded as described in the module comment, row-major
}

/** One header entry, before decoding. `begin`/`end` are relative to the byte buffer. */
export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>; // in header order
  metadata: Record<string, string>; // `__metadata__`, {} when absent
  dataStart: number; // 8 + N: where the byte buffer begins in the file
}

/** A tensor to write; the dtype follows the array type (Float32Array -> F32, Int32Array -> I32). */
export interface WritableTensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** An error in a safetensors file; `file` and (when there is one) `tensor` say where. */
export class SafetensorsError extends Error {
  constructor(readonly file: string, readonly tensor: string | undefined, detail: string) {
    super(tensor === undefined ? `${file}: ${detail}` : `${file}: tensor "${tensor}": ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/** Bytes per element, for every dtype of the format (so that unsupported ones get a precise error). */
const DTYPE_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};
const SUPPORTED: ReadonlySet<string> = new Set<Dtype>(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);

/** The reference implementation refuses headers above 100 MB (HeaderTooLarge). */
export const MAX_HEADER_SIZE = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON number that the reference implementation would accept as a usize. */
function isUsize(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses and validates the header only (no tensor data is touched). */
export function parseSafetensorsHeader(bytes: Uint8Array, file: string): SafetensorsHeader {
  const fail = (detail: string, tensor?: string): never => {
    throw new SafetensorsError(file, tensor, detail);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length: not a safetensors file (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true), hi = view.getUint32(4, true);
  if (hi !== 0 || lo > MAX_HEADER_SIZE) {
    fail(`header length ${hi * 2 ** 32 + lo} is larger than the ${MAX_HEADER_SIZE}-byte limit: not a safetensors file, or corrupt`);
  }
  const n = lo;
  if (8 + n > bytes.length) fail(`header length ${n} runs past the end of the file (${bytes.length} bytes): truncated or corrupt`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) return fail('header is not a JSON object');

  const metadataEntries: Array<[string, string]> = [];
  const tensors = new Map<string, TensorInfo>();
  const dataLength = bytes.length - 8 - n;
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) fail('"__metadata__" must be an object of strings');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`"__metadata__" value for "${k}" must be a string, got ${JSON.stringify(v)}`);
        metadataEntries.push([k, v as string]);
      }
      continue;
    }
    if (!isPlainObject(entry)) return fail('entry must be an object {dtype, shape, data_offsets}', name);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) {
      return fail(`unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_SIZE).join(', ')})`, name);
    }
    if (!SUPPORTED.has(dtype)) return fail(`dtype ${dtype} is not supported (supported: ${[...SUPPORTED].join(', ')})`, name);
    if (!Array.isArray(shape)) return fail(`"shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`, name);
    let numel = 1;
    for (const d of shape) {
      if (!isUsize(d)) return fail(`"shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`, name);
      numel *= d;
      if (numel > Number.MAX_SAFE_INTEGER) return fail(`shape ${JSON.stringify(shape)} has too many elements`, name);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isUsize(offsets[0]) || !isUsize(offsets[1])) {
      return fail(`"data_offsets" must be [begin, end] with non-negative integers, got ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) return fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataLength) {
      return fail(`data_offsets [${begin}, ${end}] run past the end of the byte buffer (${dataLength} bytes after the header): truncated or corrupt`, name);
    }
    const size = DTYPE_SIZE[dtype];
    if (end - begin !== numel * size) {
      return fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${numel} x ${size} = ${numel * size}`, name);
    }
    tensors.set(name, { dtype: dtype as Dtype, shape: shape.slice() as number[], begin, end });
  }

  // Coverage, as the reference implementation checks it: in offset order the tensors tile the
  // byte buffer from 0 to its end.
  const order = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let pos = 0, prev: string | undefined;
  for (const [name, info] of order) {
    if (info.begin < pos) fail(`data_offsets [${info.begin}, ${info.end}] overlap tensor "${prev}" (which ends at ${pos})`, name);
    if (info.begin > pos) {
      fail(`${info.begin - pos} unused bytes before this tensor (bytes ${pos}..${info.begin}${prev ? `, after tensor "${prev}"` : ''}): the tensors must cover the byte buffer without gaps`, name);
    }
    pos = info.end;
    prev = name;
  }
  if (pos !== dataLength) {
    fail(`${dataLength - pos} trailing bytes after the last tensor${prev ? ` "${prev}"` : ''} (tensors end at ${pos}, the byte buffer has ${dataLength}): the tensors must cover the byte buffer exactly`);
  }
  // fromEntries defines own properties, so even a "__proto__" key stays plain data.
  return { tensors, metadata: Object.fromEntries(metadataEntries), dataStart: 8 + n };
}

/** Bytes [begin, end) of `bytes`, as a Uint8Array whose offset is a multiple of `align` (a view when possible). */
function alignedBytes(bytes: Uint8Array, begin: number, end: number, align: number): Uint8Array {
  const sub = bytes.subarray(begin, end);
  return sub.byteOffset % align === 0 ? sub : sub.slice();
}

let f16Table: Uint32Array | undefined;

/** float32 bit patterns of all 65536 float16 values (exact; subnormals normalised, NaN payloads kept). */
function float16Table(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0) {
      if (mant === 0) {
        t[h] = sign; // +-0
      } else {
        // Subnormal: value = mant * 2^-24; shift the leading 1 into the implicit bit.
        let e = 113; // 127 - 15 + 1
        while ((mant & 0x400) === 0) {
          mant <<= 1;
          e--;
        }
        t[h] = (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
      }
    } else if (exp === 0x1f) {
      t[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
    } else {
      t[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return (f16Table = t);
}

/** Decodes IEEE half-precision bit patterns to float32 (exactly; every float16 is a float32). */
export function float16ToFloat32(halves: Uint16Array): Float32Array {
  const table = float16Table();
  const out = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  return new Float32Array(out.buffer);
}

/** Decodes bfloat16 bit patterns to float32 (exactly: bfloat16 is the top half of a float32). */
export function bfloat16ToFloat32(halves: Uint16Array): Float32Array {
  const out = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = halves[i] << 16;
  return new Float32Array(out.buffer);
}

function decode(bytes: Uint8Array, info: TensorInfo): TensorData {
  const { begin, end } = info;
  const count = (end - begin) / DTYPE_SIZE[info.dtype];
  const typed = <T>(align: number, make: (b: ArrayBufferLike, off: number, n: number) => T): T => {
    const a = alignedBytes(bytes, begin, end, align);
    return make(a.buffer, a.byteOffset, count);
  };
  switch (info.dtype) {
    case 'F32': return typed(4, (b, o, n) => new Float32Array(b, o, n));
    case 'F64': return typed(8, (b, o, n) => new Float64Array(b, o, n));
    case 'I32': return typed(4, (b, o, n) => new Int32Array(b, o, n));
    case 'I16': return typed(2, (b, o, n) => new Int16Array(b, o, n));
    case 'I8': return typed(1, (b, o, n) => new Int8Array(b, o, n));
    case 'U8':
    case 'BOOL': return bytes.subarray(begin, end);
    case 'F16': return float16ToFloat32(typed(2, (b, o, n) => new Uint16Array(b, o, n)));
    case 'BF16': return bfloat16ToFloat32(typed(2, (b, o, n) => new Uint16Array(b, o, n)));
    case 'I64': {
      const words = typed(8, (b, o, n) => new Int32Array(b, o, 2 * n)); // [lo, hi] pairs
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = words[2 * i], hi = words[2 * i + 1];
        if (hi !== lo >> 31) return typed(8, (b, o, n) => new BigInt64Array(b, o, n)); // does not fit int32
        out[i] = lo;
      }
      return out;
    }
  }
}

/**
 * Parses a whole safetensors file. `file` names it in errors. F32/I32/F64 data are zero-copy
 * views of `bytes` where aligned.
 */
export function parseSafetensors(bytes: Uint8Array, file: string): { tensors: Map<string, TensorRecord>; metadata: Record<string, string> } {
  if (!LITTLE_ENDIAN) throw new SafetensorsError(file, undefined, 'this host is big-endian; safetensors data is little-endian and is not byte-swapped here');
  const header = parseSafetensorsHeader(bytes, file);
  const data = bytes.subarray(header.dataStart);
  const tensors = new Map<string, TensorRecord>();
  for (const [name, info] of header.tensors) {
    tensors.set(name, { dtype: info.dtype, shape: info.shape, data: decode(data, info) });
  }
  return { tensors, metadata: header.metadata };
}

/** Byte-wise (UTF-8) string order, which is how Rust orders the names the Python writer sorts. */
function compareUtf8(a: string, b: string): number {
  const enc = new TextEncoder();
  const x = enc.encode(a), y = enc.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Serialises tensors the way the Python/Rust writer does, so that `safetensors.safe_open` and
 * `transformers` load the result: tensors sorted by dtype alignment (F32 before I32) then by
 * name, laid out back to back from offset 0; `__metadata__` first; compact JSON; the header
 * padded with spaces to a multiple of 8 bytes so that every tensor starts 8-byte aligned.
 */
export function writeSafetensors(tensors: Map<string, WritableTensor>, metadata?: Record<string, string>): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error('writeSafetensors: this host is big-endian; safetensors data is little-endian');
  const entries: Array<{ name: string; dtype: 'F32' | 'I32'; shape: number[]; bytes: Uint8Array }> = [];
  for (const [name, t] of tensors) {
    const where = `writeSafetensors: tensor "${name}"`;
    if (name === '__metadata__') throw new Error(`${where}: the name is reserved for metadata`);
    if (LONE_SURROGATE.test(name)) throw new Error(`${where}: the name is not valid Unicode (lone surrogate)`);
    const dtype = t.data instanceof Float32Array ? 'F32' : t.data instanceof Int32Array ? 'I32' : undefined;
    if (!dtype) throw new Error(`${where}: data must be a Float32Array or Int32Array`);
    let numel = 1;
    for (const d of t.shape) {
      if (!isUsize(d)) throw new Error(`${where}: shape ${JSON.stringify(t.shape)} must hold non-negative integers`);
      numel *= d;
    }
    if (numel !== t.data.length) throw new Error(`${where}: shape ${JSON.stringify(t.shape)} has ${numel} elements but data has ${t.data.length}`);
    entries.push({ name, dtype, shape: t.shape.slice(), bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  }
  // Descending alignment (F32 before I32 in the reference Dtype order), then name.
  const rank = { F32: 1, I32: 0 } as const;
  entries.sort((a, b) => rank[b.dtype] - rank[a.dtype] || compareUtf8(a.name, b.name));

  const parts: string[] = [];
  if (metadata) {
    const keys = Object.keys(metadata).sort(compareUtf8);
    for (const k of keys) {
      if (typeof metadata[k] !== 'string') throw new Error(`writeSafetensors: metadata "${k}" must be a string`);
    }
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  for (const e of entries) {
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${offset},${offset + e.bytes.length}]}`);
    offset += e.bytes.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setUint32(0, n, true); // high word stays 0
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n); // spaces, as the reference writer pads
  let pos = 8 + n;
  for (const e of entries) {
    out.set(e.bytes, pos);
    pos += e.bytes.length;
  }
  return out;
}
