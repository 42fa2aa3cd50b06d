/**
 * Reading a Hugging Face config.json field by field: every read is recorded, so the keys no
 * family reads are kept in `extra` and written back (round trip); a field WebTune would compute
 * differently is refused naming it. Each family's parser (models/families/<name>/config.ts) uses it.
 */

/** Reads fields of one config.json; errors are `<source>: field '<name>': <why>`. */
export class ConfigReader {
  readonly used = new Set<string>();
  constructor(readonly json: Record<string, unknown>, readonly source: string) {}

  fail(field: string, message: string): never {
    throw new Error(`${this.source}: field '${field}': ${message}`);
  }
  has(key: string): boolean {
    return this.json[key] !== undefined;
  }
  raw(key: string): unknown {
    this.used.add(key);
    return this.json[key];
  }
  int(key: string, dflt?: number, { min = 1 } = {}): number {
    const v = this.raw(key);
    if (v === undefined || v === null) {
      if (dflt === undefined) this.fail(key, 'is required.');
      return dflt;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `must be an integer >= ${min}, got ${JSON.stringify(v)}.`);
    return v;
  }
  num(key: string, dflt: number, { positive = false } = {}): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive ? v <= 0 : v < 0)) this.fail(key, `must be a ${positive ? 'positive' : 'non-negative'} number, got ${JSON.stringify(v)}.`);
    return v;
  }
  bool(key: string, dflt: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}.`);
    return v;
  }
  tokenId(key: string, dflt: number): number {
    const v = this.raw(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(key, `must be a token id (integer >= 0), got ${JSON.stringify(v)}.`);
    return v;
  }
  /** A field that must be absent or equal one of `allowed` (default values of options WebTune does not implement). */
  only(key: string, allowed: unknown[], why: string): void {
    const v = this.raw(key);
    if (v === undefined || allowed.some((a) => a === v)) return;
    this.fail(key, `${JSON.stringify(v)} is not supported (${why}).`);
  }
  /** Every key not read goes to `extra`, for round trip. */
  extra(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.json)) if (!this.used.has(k)) out[k] = v;
    return out;
  }
}

const DTYPES = ['float32', 'float16', 'bfloat16', 'float64', 'auto'];

export function checkDtype(r: ConfigReader): void {
  // Weights are converted to float32 on load whatever they were saved in; the field is only checked.
  for (const key of ['torch_dtype', 'dtype']) {
    const v = r.raw(key);
    if (v !== undefined && v !== null && !DTYPES.includes(v as string)) r.fail(key, `${JSON.stringify(v)} is not a dtype WebTune can load (one of ${DTYPES.join(', ')}).`);
  }
}
