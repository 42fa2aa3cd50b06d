/**
 * Dataset filters. Each filter looks at one row at a time, in dataset order, and either keeps
 * it or gives the reason it is removed; stateful filters (de-duplication) remember the rows
 * kept so far. `applyFilters` runs a list of them and reports every removal (filter, reason,
 * the row's id / file / line), so nothing disappears silently.
 *
 * Built in: exact de-duplication, near-duplicate removal by ROUGE-L (Self-Instruct's rule:
 * drop a new instruction whose ROUGE-L F1 with any kept one is above 0.7), length limits, and
 * a keyword/regex safety filter. A plug-in is any object with `name` and `check`.
 *
 * @example
 * const { kept, report } = applyFilters(rows, [exactDedup(), nearDedup({ threshold: 0.7 }), safetyFilter()]);
 * report.byFilter; // { exact_dedup: 3, near_dedup: 5, safety: 1 }
 */
import type { Example } from './dataset.js';

export interface DatasetFilter {
  name: string;
  /** The reason to remove `example`, or null to keep it. Called once per row, in order. */
  check(example: Example): string | null;
}

export interface FilterRemoval { filter: string; reason: string; id?: unknown; file?: unknown; line?: unknown; source?: unknown }
export interface FilterReport { input: number; kept: number; removed: FilterRemoval[]; byFilter: Record<string, number> }

/** One filter's verdict on one row: passed, or the reason it removed the row. */
export interface FilterDecision { filter: string; passed: boolean; reason?: string }

/**
 * Runs filters on one row in order until one rejects it, and returns every verdict given (the
 * last one failed when the row is removed). Later filters never see a removed row.
 */
export function runFilters(example: Example, filters: readonly DatasetFilter[]): FilterDecision[] {
  const decisions: FilterDecision[] = [];
  for (const f of filters) {
    const reason = f.check(example);
    if (reason === null) decisions.push({ filter: f.name, passed: true });
    else {
      decisions.push({ filter: f.name, passed: false, reason });
      break;
    }
  }
  return decisions;
}

/** Runs filters in order; a row is removed by the first filter that rejects it (later filters never see it). */
export function applyFilters(examples: Iterable<Example>, filters: readonly DatasetFilter[]): { kept: Example[]; report: FilterReport } {
  const kept: Example[] = [];
  const removed: FilterRemoval[] = [];
  const byFilter: Record<string, number> = Object.fromEntries(filters.map((f) => [f.name, 0]));
  let input = 0;
  for (const ex of examples) {
    input++;
    const last = runFilters(ex, filters).at(-1);
    if (!last || last.passed) kept.push(ex);
    else {
      byFilter[last.filter]++;
      removed.push({ filter: last.filter, reason: last.reason!, ...provenance(ex) });
    }
  }
  return { kept, report: { input, kept: kept.length, removed, byFilter } };
}

/** The fields that locate a row: id, file, line, source. */
export function provenance(ex: Example): { id?: unknown; file?: unknown; line?: unknown; source?: unknown } {
  const m = ex.meta ?? {};
  const out: { id?: unknown; file?: unknown; line?: unknown; source?: unknown } = {};
  for (const k of ['id', 'file', 'line', 'source'] as const) if (m[k] !== undefined) out[k] = m[k];
  return out;
}

function where(ex: Example): string {
  const p = provenance(ex);
  if (p.id !== undefined) return `row ${String(p.id)}`;
  if (p.file !== undefined) return `${String(p.file)}:${String(p.line ?? '?')}`;
  return 'an earlier row';
}

/** Every piece of text in a row (message contents, prompt, completion, text). */
export function rowTexts(ex: Example): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const m of v) out.push(String((m as { content?: unknown }).content ?? ''));
  };
  add(ex.messages);
  add(ex.prompt);
  add(ex.completion);
  add(ex.text);
  return out;
}

/** The instruction of a row: its first user message, its prompt, or the start of its text. */
export function instructionText(ex: Example): string {
  const firstUser = (ms?: Array<{ role: string; content: string }>) => ms?.find((m) => m.role === 'user')?.content;
  if (ex.messages) return firstUser(ex.messages) ?? '';
  if (typeof ex.prompt === 'string') return ex.prompt;
  if (Array.isArray(ex.prompt)) return firstUser(ex.prompt) ?? '';
  return ex.text ?? '';
}

/** Removes rows whose whole content (roles and texts) equals an earlier kept row. */
export function exactDedup(): DatasetFilter {
  const seen = new Map<string, string>();
  return {
    name: 'exact_dedup',
    check(ex) {
      const key = JSON.stringify([ex.format, ex.messages?.map((m) => [m.role, m.content]), ex.prompt, ex.completion, ex.text]);
      const first = seen.get(key);
      if (first !== undefined) return `exact duplicate of ${first}`;
      seen.set(key, where(ex));
      return null;
    },
  };
}

/**
 * rouge_score's default tokenizer (what Self-Instruct uses): lowercase, every run of
 * non-alphanumeric characters becomes a separator, no stemming.
 */
export function rougeTokens(s: string): string[] {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim().split(' ').filter(Boolean);
}

/** Length of the longest common subsequence of two token lists. */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let diag = 0; // row[j-1] of the previous i
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = a[i - 1] === b[j - 1] ? diag + 1 : Math.max(up, row[j - 1]);
      diag = up;
    }
  }
  return row[b.length];
}

/** ROUGE-L F1 between two strings (rouge_score's `rougeL` fmeasure): P = LCS/|cand|, R = LCS/|ref|, F = 2PR/(P+R). */
export function rougeL(reference: string, candidate: string): number {
  return rougeLTokens(rougeTokens(reference), rougeTokens(candidate));
}

function rougeLTokens(ref: readonly string[], cand: readonly string[]): number {
  if (ref.length === 0 || cand.length === 0) return 0;
  const lcs = lcsLength(ref, cand);
  if (lcs === 0) return 0;
  const p = lcs / cand.length;
  const r = lcs / ref.length;
  return (2 * p * r) / (p + r);
}

/**
 * Self-Instruct's near-duplicate rule on the instruction text (first user message / prompt):
 * a row is removed when its ROUGE-L F1 with any kept row is above `threshold` (default 0.7).
 * Pairs that cannot reach the threshold are skipped by two exact bounds (LCS <= the shorter
 * length, LCS <= the shared bag of words), so the quadratic scan stays cheap on small sets.
 */
export function nearDedup(opts: { threshold?: number; text?: (ex: Example) => string } = {}): DatasetFilter {
  const threshold = opts.threshold ?? 0.7;
  const textOf = opts.text ?? instructionText;
  const kept: Array<{ tokens: string[]; bag: Map<string, number>; where: string }> = [];
  const bagOf = (t: string[]) => {
    const m = new Map<string, number>();
    for (const w of t) m.set(w, (m.get(w) ?? 0) + 1);
    return m;
  };
  return {
    name: 'near_dedup',
    check(ex) {
      const tokens = rougeTokens(textOf(ex));
      if (tokens.length === 0) return null;
      const bag = bagOf(tokens);
      for (const k of kept) {
        const n = tokens.length + k.tokens.length;
        // F = 2 LCS / (m + n), so F > threshold needs LCS > threshold (m + n) / 2.
        const need = (threshold * n) / 2;
        if (Math.min(tokens.length, k.tokens.length) <= need) continue;
        let shared = 0;
        for (const [w, c] of bag) shared += Math.min(c, k.bag.get(w) ?? 0);
        if (shared <= need) continue;
        const f = rougeLTokens(k.tokens, tokens);
        if (f > threshold) return `ROUGE-L ${f.toFixed(3)} > ${threshold} with ${k.where}`;
      }
      kept.push({ tokens, bag, where: where(ex) });
      return null;
    },
  };
}

/**
 * Removes rows whose length is outside the limits: characters (UTF-16) or whitespace-separated
 * words of the whole content, or of the text `text` picks (e.g. instructionText: Self-Instruct
 * drops instructions of 3 words or fewer, or over 150). Token limits: the pipeline's maxLength.
 */
export function lengthFilter(opts: {
  minChars?: number; maxChars?: number; minWords?: number; maxWords?: number;
  /** The text measured; default every text of the row, joined. */
  text?: (ex: Example) => string;
  /** Default 'length'. */
  name?: string;
}): DatasetFilter {
  return {
    name: opts.name ?? 'length',
    check(ex) {
      const texts = opts.text ? [opts.text(ex)] : rowTexts(ex);
      const n = texts.reduce((s, t) => s + t.length, 0);
      if (opts.minChars !== undefined && n < opts.minChars) return `${n} characters < min ${opts.minChars}`;
      if (opts.maxChars !== undefined && n > opts.maxChars) return `${n} characters > max ${opts.maxChars}`;
      if (opts.minWords === undefined && opts.maxWords === undefined) return null;
      const w = texts.reduce((s, t) => s + t.split(/\s+/).filter(Boolean).length, 0);
      if (opts.minWords !== undefined && w < opts.minWords) return `${w} words < min ${opts.minWords}`;
      if (opts.maxWords !== undefined && w > opts.maxWords) return `${w} words > max ${opts.maxWords}`;
      return null;
    },
  };
}

/**
 * Removes rows where a text matches one of the patterns (strings match as whole words,
 * case-insensitive). `outputsOnly` screens only what the model is trained to say: assistant
 * messages, completions and text rows, not user/system messages or string prompts.
 */
export function regexFilter(name: string, patterns: ReadonlyArray<string | RegExp>, opts: { outputsOnly?: boolean } = {}): DatasetFilter {
  const res = patterns.map((p) => (typeof p === 'string' ? new RegExp(`\\b${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'i') : p));
  return {
    name,
    check(ex) {
      const texts = opts.outputsOnly ? outputTexts(ex) : rowTexts(ex);
      for (const t of texts) for (const re of res) {
        const m = re.exec(t);
        if (m) return `matched ${re} ('${m[0]}')`;
      }
      return null;
    },
  };
}

/**
 * A small built-in list of unsafe requests and content: weapons and explosives, self-harm
 * encouragement, malware, credentials. It is a coarse keyword screen for demo data, not a
 * classifier; plug a real one in through the DatasetFilter interface.
 */
export const SAFETY_PATTERNS: readonly RegExp[] = [
  /\b(make|build|assemble)\s+(a\s+)?(pipe\s+)?bomb\b/i,
  /\bhow\s+to\s+(make|synthesi[sz]e|cook)\s+(meth|methamphetamine|nerve\s+agents?|sarin|ricin)\b/i,
  /\b(kill|hurt)\s+yourself\b/i,
  /\bwrite\s+(a\s+)?(ransomware|keylogger|computer\s+virus)\b/i,
  /\bsteal\s+(someone'?s\s+)?(password|credit\s+card|identity)\b/i,
  /\b(?:\d[ -]?){15}\d\b/, // a 16-digit card-like number
];

/**
 * The keyword/regex safety screen. By default it screens outputs only: a harmful request
 * answered by a refusal is exactly the data that teaches a model to decline, and screening
 * requests too would remove it. `{ outputsOnly: false }` screens every message.
 */
export function safetyFilter(opts: { extra?: ReadonlyArray<string | RegExp>; outputsOnly?: boolean } = {}): DatasetFilter {
  return regexFilter('safety', [...SAFETY_PATTERNS, ...(opts.extra ?? [])], { outputsOnly: opts.outputsOnly ?? true });
}

/** What the model is trained to produce: assistant messages, completions, text rows. */
export function outputTexts(ex: Example): string[] {
  const out: string[] = [];
  const fromMessages = (ms: unknown) => {
    if (typeof ms === 'string') out.push(ms);
    else if (Array.isArray(ms)) for (const m of ms as Array<{ role: string; content: string }>) if (m.role === 'assistant') out.push(m.content);
  };
  fromMessages(ex.messages);
  fromMessages(ex.completion);
  if (Array.isArray(ex.prompt)) fromMessages(ex.prompt);
  if (typeof ex.text === 'string') out.push(ex.text);
  return out;
}
