/**
 * Base models from the Hugging Face Hub (or any server with its URL layout), in the browser and
 * in Node: a repo id in, a model, tokenizer and chat template out.
 *
 *   hubSource(repoId, opts)        a FileSource over `${endpoint}/${repoId}/resolve/${revision}/${file}`:
 *                                  streamed downloads with per-file progress, cancellation
 *                                  (AbortSignal), truncation checks, Cache Storage, and errors
 *                                  that name the file and say what to do
 *   fetchHubModelInfo(repoId)      config.json and the download size only (a few kB), to show the
 *                                  memory estimate (estimate.ts) before any weight is fetched
 *   loadFromHub(repoId, opts)      { model, tokenizer, template, config, generationConfig }
 *   loadPretrained(src, opts)      the same from a directory (Node), a URL, a FileSource or a repo id
 *
 * What is read, in this order, so that a problem shows before the large download starts:
 * config.json (parsed: an unsupported architecture or option is refused naming the field),
 * tokenizer.json + tokenizer_config.json (special_tokens_map.json and chat_template.jinja when
 * present), generation_config.json when present, then model.safetensors or
 * model.safetensors.index.json and its shards. Weights stored as F16/BF16 are converted to
 * float32 on load; a tied lm_head is the embedding.
 *
 * Kept over @huggingface/hub's downloadFile: a /resolve/ URL serves Xet-stored files too (a 302
 * to the LFS-compatible route), and the package would replace one fetch while the progress,
 * cancellation, truncation checks, cache and errors written here would all remain.
 *
 * @example
 * const ctrl = new AbortController();
 * const { model, tokenizer, template } = await loadFromHub('HuggingFaceTB/SmolLM2-135M-Instruct', {
 *   onProgress: (file, loaded, total) => console.log(file, loaded, total ?? '?'),
 *   signal: ctrl.signal,          // ctrl.abort() cancels: the promise rejects with an AbortError
 * });
 */
import type { CausalLM } from '../../models/causal_lm.js';
import { parseConfig, type ModelConfig } from '../../models/config.js';
import { createTokenizer, type Tokenizer } from '../data/tokenizer.js';
import { templateFromText, templateFromTokenizerConfig, type ChatTemplate } from '../data/template.js';
import { checkFileName, decodeUtf8, FileNotFoundError, nodeDirSource, type FileSource } from './files.js';
import { CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, filePath, loadModel } from './checkpoint.js';
import { defaultHubCache, type HubCache } from './cache.js';

export const HUB_ENDPOINT = 'https://huggingface.co';

/** Called as bytes arrive: `total` is the file's Content-Length, undefined when the server does not send one. */
export type ProgressCallback = (file: string, loaded: number, total: number | undefined) => void;

export interface HttpSourceOptions {
  fetch?: typeof fetch;            // defaults to the global fetch
  token?: string;                  // sent as `Authorization: Bearer <token>` (gated and private repos)
  onProgress?: ProgressCallback;
  signal?: AbortSignal;            // abort() cancels downloads in flight; they reject with an AbortError
  /** Where complete downloads are kept: a HubCache, or false for none. Default: Cache Storage in a browser, none in Node. */
  cache?: HubCache | false;
}

export interface HubOptions extends HttpSourceOptions {
  revision?: string;               // branch, tag or commit hash; default 'main'
  endpoint?: string;               // default https://huggingface.co (a mirror or a test server)
}

/** A FileSource over HTTP that can also report a file's size without downloading it. */
export interface HttpFileSource extends FileSource {
  /** The URL a file is fetched from. */
  urlOf(file: string): string;
  /** Size in bytes from a HEAD request (X-Linked-Size or Content-Length), undefined when not sent; throws like read() on 404/401/403. */
  size(file: string): Promise<number | undefined>;
}

export interface HubSource extends HttpFileSource {
  repoId: string;
  revision: string;
  endpoint: string;
}

// ---------------------------------------------------------------------------------------------
// Repo ids

/**
 * Throws unless `repoId` is `name` or `owner/name` as the Hub allows them: letters, digits, '-',
 * '_' and '.', starting and ending with a letter or digit, no '--' or '..', at most 96
 * characters each.
 */
export function checkRepoId(repoId: string): void {
  const fail = (why: string): never => {
    throw new Error(`repo id ${JSON.stringify(repoId)}: ${why}; expected "owner/name", e.g. "HuggingFaceTB/SmolLM2-135M-Instruct" or "openai-community/gpt2"`);
  };
  if (typeof repoId !== 'string' || repoId.length === 0) fail('must be a non-empty string');
  if (/^https?:/i.test(repoId)) fail('is a URL, not a repo id (give the part after the host)');
  const parts = repoId.split('/');
  if (parts.length > 2) fail('has more than one "/" (a file or branch path is not part of the id; pass the revision as an option)');
  for (const p of parts) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(p)) fail(`"${p}" may only contain letters, digits, "-", "_" and ".", and must start and end with a letter or digit`);
    if (p.includes('--') || p.includes('..')) fail(`"${p}" must not contain "--" or ".."`);
    if (p.length > 96) fail(`"${p}" is longer than 96 characters`);
  }
}

// ---------------------------------------------------------------------------------------------
// Downloads

function abortError(what: string): Error {
  const message = `${what}: download cancelled`;
  if (typeof DOMException !== 'undefined') return new DOMException(message, 'AbortError') as unknown as Error;
  const e = new Error(message);
  e.name = 'AbortError';
  return e;
}

function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(what);
}

const statusText = (res: Response) => `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;

/** What to tell the user for an HTTP error, per kind of source. */
interface ErrorHints {
  notFound(file: string, res: Response): string;
  unauthorized(file: string, res: Response): string;
}

const plainHints: ErrorHints = {
  notFound: (_file, res) => `${statusText(res)}: no such file at this URL`,
  unauthorized: (_file, res) => `${statusText(res)}: access denied; pass a token if the server needs one`,
};

/** Declared length of a body as it will arrive, or undefined (absent, or content-encoded so that it counts compressed bytes). */
function declaredLength(res: Response): number | undefined {
  const enc = res.headers.get('content-encoding');
  if (enc && enc !== 'identity') return undefined;
  const v = res.headers.get('content-length');
  if (v === null || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v);
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1 && chunks[0].byteLength === length) return chunks[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** A source over a base URL with streaming, progress, cancellation, truncation checks and a cache. */
function httpSource(base: string, name: string, opts: HttpSourceOptions, hints: ErrorHints): HttpFileSource {
  const doFetch = opts.fetch ?? ((...a: Parameters<typeof fetch>) => globalThis.fetch(...a));
  const cache = opts.cache === false ? undefined : (opts.cache ?? defaultHubCache());
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const signal = opts.signal;

  const urlOf = (file: string) => {
    checkFileName(file, `${name}:`);
    return base + file.split('/').map(encodeURIComponent).join('/');
  };

  const request = async (url: string, method: 'GET' | 'HEAD'): Promise<Response> => {
    checkAborted(signal, url);
    try {
      return await doFetch(url, { method, headers, signal, redirect: 'follow' });
    } catch (e) {
      if (signal?.aborted) throw abortError(url);
      throw new Error(`${url}: request failed (${(e as Error).message}); check the network connection and the endpoint`);
    }
  };

  /** Throws the error for a response that is not 2xx. */
  const refuse = (file: string, url: string, res: Response): never => {
    void res.body?.cancel().catch(() => undefined);
    if (res.status === 404 || res.status === 410) throw new FileNotFoundError(url, hints.notFound(file, res));
    if (res.status === 401 || res.status === 403) throw new Error(`${url}: ${hints.unauthorized(file, res)}`);
    throw new Error(`${url}: ${statusText(res)}; retry later`);
  };

  const download = async (file: string): Promise<Uint8Array> => {
    const url = urlOf(file);
    checkAborted(signal, url);
    const cached = await cache?.get(url);
    if (cached) {
      opts.onProgress?.(file, cached.byteLength, cached.byteLength);
      return cached;
    }
    const res = await request(url, 'GET');
    if (!res.ok) refuse(file, url, res);
    const total = declaredLength(res);
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    opts.onProgress?.(file, 0, total);
    if (res.body) {
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          loaded += value.byteLength;
          opts.onProgress?.(file, loaded, total);
        }
      } catch (e) {
        if (signal?.aborted) throw abortError(url);
        if (total !== undefined) throw new Error(`${url}: truncated download: got ${loaded} of ${total} bytes; retry (${(e as Error).message})`);
        throw new Error(`${url}: download interrupted after ${loaded} bytes (${(e as Error).message}); retry`);
      } finally {
        reader.releaseLock();
      }
    } else {
      const bytes = new Uint8Array(await res.arrayBuffer());
      chunks.push(bytes);
      loaded = bytes.byteLength;
      opts.onProgress?.(file, loaded, total);
    }
    checkAborted(signal, url);
    if (total !== undefined && loaded !== total) throw new Error(`${url}: truncated download: got ${loaded} of ${total} bytes; retry`);
    const bytes = concat(chunks, loaded);
    await cache?.put(url, bytes); // only complete, successful downloads reach this line
    return bytes;
  };

  const head = async (file: string): Promise<Response | undefined> => {
    const url = urlOf(file);
    let res: Response;
    try {
      res = await request(url, 'HEAD');
    } catch (e) {
      // Offline: a file recorded absent is absent; anything else cannot be decided.
      if ((e as Error).name !== 'AbortError' && (await cache?.isAbsent(url))) return undefined;
      throw e;
    }
    // Some static hosts refuse HEAD: ask with GET and drop the body.
    if (res.status === 405 || res.status === 501) {
      res = await request(url, 'GET');
      await res.body?.cancel().catch(() => undefined);
    }
    if (res.status === 404 || res.status === 410) {
      await cache?.markAbsent(url);
      return undefined;
    }
    if (!res.ok) refuse(file, url, res);
    return res;
  };

  return {
    name,
    urlOf,
    read: download,
    readText: async (file) => decodeUtf8(await download(file), urlOf(file)),
    async exists(file) {
      const url = urlOf(file);
      if (await cache?.has(url)) return true;
      return (await head(file)) !== undefined;
    },
    async size(file) {
      const url = urlOf(file);
      const cached = await cache?.get(url);
      if (cached) return cached.byteLength;
      const res = await head(file);
      if (!res) throw new FileNotFoundError(url, hints.notFound(file, new Response(null, { status: 404 })));
      // The Hub answers a HEAD for a large (LFS) file with its size in X-Linked-Size.
      const linked = res.headers.get('x-linked-size');
      if (linked && /^\d+$/.test(linked)) return Number(linked);
      return declaredLength(res);
    },
  };
}

/**
 * A FileSource over a Hub repository. Files are fetched from
 * `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file}`.
 *
 * Errors name the file's URL and what to do: 404 (the repo, revision or file does not exist),
 * 401/403 (a gated or private repo: accept its license on the Hub and pass a token), a truncated
 * or interrupted download (retry), a cancelled one (an AbortError).
 */
export function hubSource(repoId: string, opts: HubOptions = {}): HubSource {
  checkRepoId(repoId);
  const revision = opts.revision ?? 'main';
  if (typeof revision !== 'string' || revision.length === 0) throw new Error(`revision ${JSON.stringify(revision)}: must be a branch, tag or commit hash`);
  const endpoint = (opts.endpoint ?? HUB_ENDPOINT).replace(/\/+$/, '');
  const base = `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/`;
  const page = `${endpoint}/${repoId}`;
  const hints: ErrorHints = {
    notFound(file, res) {
      // The Hub says which part is missing in X-Error-Code.
      const code = res.headers.get('x-error-code');
      if (code === 'RepoNotFound') return `${statusText(res)}: repository "${repoId}" not found: check the repo id (owner/name)`;
      if (code === 'RevisionNotFound') return `${statusText(res)}: revision "${revision}" not found in ${repoId}: check the branch, tag or commit`;
      return `${statusText(res)}: ${file} not found: check the repo id "${repoId}" and revision "${revision}", or this file is not in this repo`;
    },
    unauthorized(_file, res) {
      const code = res.headers.get('x-error-code');
      if (code === 'RepoNotFound') {
        return `${statusText(res)}: repository "${repoId}" not found, or private: check the repo id, or pass a token that can read it`;
      }
      const gated = code === 'GatedRepo' ? ' is gated' : ' is gated or private';
      return `${statusText(res)}: ${repoId}${gated}: accept its license at ${page} while logged in, then pass an access token ({ token })${opts.token ? ' (the token given was refused: check that it can read this repo)' : ''}`;
    },
  };
  const src = httpSource(base, base, opts, hints);
  return { ...src, repoId, revision, endpoint };
}

/** A FileSource over any base URL with the same streaming, progress, cancellation and cache as hubSource. */
export function httpFileSource(baseUrl: string, opts: HttpSourceOptions = {}): HttpFileSource {
  const base = new URL(baseUrl);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return httpSource(base.href, base.href, opts, plainHints);
}

// ---------------------------------------------------------------------------------------------
// Model info before downloading

export interface HubModelInfo {
  source: HttpFileSource | FileSource;
  /** config.json as parsed JSON, and the config WebTune will build (throws if unsupported). */
  configJson: Record<string, unknown>;
  config: ModelConfig;
  /** model.safetensors, or the shards an index names. */
  weightFiles: string[];
  /** Bytes to download for the weights (index total_size, or the size of model.safetensors), when known. */
  downloadBytes?: number;
}

async function readJsonObject(src: FileSource, file: string): Promise<Record<string, unknown>> {
  const text = await src.readText(file);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${filePath(src, file)}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${filePath(src, file)}: must be a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * Reads config.json and the size of the weights (the index's metadata.total_size, or a HEAD
 * request for model.safetensors) without downloading any weight: enough for
 * `estimateTrainingMemory(info.config, ...)` before the user commits to a download.
 */
export async function fetchHubModelInfo(repoId: string | FileSource, opts: HubOptions = {}): Promise<HubModelInfo> {
  const src = typeof repoId === 'string' ? hubSource(repoId, opts) : repoId;
  const configJson = await readJsonObject(src, CONFIG_FILE);
  const config = parseConfig(configJson, filePath(src, CONFIG_FILE));
  const sized = src as Partial<HttpFileSource>;
  if (await src.exists(WEIGHTS_FILE)) {
    const downloadBytes = sized.size ? await sized.size(WEIGHTS_FILE) : (await src.read(WEIGHTS_FILE)).byteLength;
    return { source: src, configJson, config, weightFiles: [WEIGHTS_FILE], downloadBytes };
  }
  if (await src.exists(WEIGHTS_INDEX_FILE)) {
    const index = await readJsonObject(src, WEIGHTS_INDEX_FILE);
    const weightMap = (index.weight_map ?? {}) as Record<string, string>;
    const total = (index.metadata as { total_size?: unknown } | undefined)?.total_size;
    return {
      source: src, configJson, config,
      weightFiles: [...new Set(Object.values(weightMap))].sort(),
      downloadBytes: typeof total === 'number' && total > 0 ? total : undefined,
    };
  }
  throw new FileNotFoundError(filePath(src, WEIGHTS_FILE), `missing, and there is no ${WEIGHTS_INDEX_FILE} either: this repo has no safetensors weights WebTune can read`);
}

// ---------------------------------------------------------------------------------------------
// Loading

export interface PretrainedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The chat template of the tokenizer (tokenizer_config.json or chat_template.jinja); undefined for a base model without one. */
  template?: ChatTemplate;
  config: ModelConfig;
  /** generation_config.json when the repo has one. */
  generationConfig?: Record<string, unknown>;
  /** Where it was loaded from (its `name` is the directory or resolve URL). */
  source: FileSource;
}

/**
 * Wraps a source so that each small file (JSON, templates) is read once per load even without a
 * cache: config.json is read here first and again by loadModel.
 */
function memoSmallFiles(src: FileSource): FileSource {
  const memo = new Map<string, Promise<Uint8Array>>();
  const read = (file: string) => {
    if (file.endsWith('.safetensors')) return src.read(file);
    let p = memo.get(file);
    if (!p) {
      p = src.read(file);
      p.catch(() => memo.delete(file));
      memo.set(file, p);
    }
    return p;
  };
  return {
    name: src.name,
    read,
    readText: async (file) => decodeUtf8(await read(file), filePath(src, file)),
    exists: (file) => (memo.has(file) ? Promise.resolve(true) : src.exists(file)),
  };
}

/** The content of a special token given as a string or an AddedToken object. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** The token string of `id` in a tokenizer.json (added tokens, then a BPE/WordPiece vocab map or a Unigram list). */
function tokenOfId(tokenizerJson: Record<string, unknown>, id: number): string | undefined {
  for (const t of (tokenizerJson.added_tokens ?? []) as Array<{ id?: number; content?: string }>) if (t.id === id) return t.content;
  const vocab = (tokenizerJson.model as { vocab?: unknown } | undefined)?.vocab;
  if (Array.isArray(vocab)) return Array.isArray(vocab[id]) ? String(vocab[id][0]) : undefined;
  if (vocab && typeof vocab === 'object') for (const [tok, i] of Object.entries(vocab)) if (i === id) return tok;
  return undefined;
}

const firstId = (v: unknown): number | undefined => (typeof v === 'number' ? v : Array.isArray(v) && typeof v[0] === 'number' ? v[0] : undefined);

async function loadTokenizerFiles(src: FileSource, configJson: Record<string, unknown>): Promise<{ tokenizer: Tokenizer; template?: ChatTemplate }> {
  if (!(await src.exists('tokenizer.json'))) {
    const others = [];
    for (const f of ['tokenizer.model', 'vocab.json', 'merges.txt']) if (await src.exists(f)) others.push(f);
    const hint = others.length > 0
      ? `it has ${others.join(', ')} only: save a fast tokenizer with transformers (AutoTokenizer.from_pretrained(...).save_pretrained(dir)) and load from that directory`
      : 'this repo has no tokenizer: use a repo that includes one, or the base model\'s repo';
    throw new FileNotFoundError(filePath(src, 'tokenizer.json'), `missing tokenizer file: WebTune reads the fast-tokenizer file tokenizer.json; ${hint}`);
  }
  const tokenizerJson = await readJsonObject(src, 'tokenizer.json');
  // Special tokens: tokenizer_config.json first, then special_tokens_map.json, then the ids in
  // config.json (GPT-2's tokenizer_config.json names no eos_token: its Python class defaults it).
  const tokenizerConfig: Record<string, unknown> = {};
  if (await src.exists('special_tokens_map.json')) Object.assign(tokenizerConfig, await readJsonObject(src, 'special_tokens_map.json'));
  const hasConfig = await src.exists('tokenizer_config.json');
  if (hasConfig) Object.assign(tokenizerConfig, await readJsonObject(src, 'tokenizer_config.json'));
  for (const [field, idField] of [['eos_token', 'eos_token_id'], ['bos_token', 'bos_token_id']] as const) {
    if (tokenContent(tokenizerConfig[field]) !== undefined) continue;
    const id = firstId(configJson[idField]);
    const tok = id === undefined ? undefined : tokenOfId(tokenizerJson, id);
    if (tok !== undefined) tokenizerConfig[field] = tok;
  }
  const dir = src.name.replace(/\/+$/, '');
  const tokenizer = createTokenizer(tokenizerJson, tokenizerConfig, dir);

  const tokens = { bosToken: tokenContent(tokenizerConfig.bos_token), eosToken: tokenContent(tokenizerConfig.eos_token) };
  let template: ChatTemplate | undefined;
  if (await src.exists('chat_template.jinja')) {
    // transformers 4.47+ saves the template in its own file; it wins over tokenizer_config.json.
    const where = filePath(src, 'chat_template.jinja');
    template = { ...templateFromText(await src.readText('chat_template.jinja'), where, tokens), name: where };
  } else if (hasConfig && tokenizerConfig.chat_template !== undefined && tokenizerConfig.chat_template !== null) {
    template = templateFromTokenizerConfig(tokenizerConfig, filePath(src, 'tokenizer_config.json'));
  }
  return { tokenizer, template };
}

/**
 * Loads a model, its tokenizer, chat template and generation defaults from any FileSource
 * (hubSource, nodeDirSource, filesSource, MemoryFiles). See loadFromHub for the order of reads.
 */
export async function loadPretrainedFrom(source: FileSource): Promise<PretrainedModel> {
  const src = memoSmallFiles(source);
  const configJson = await readJsonObject(src, CONFIG_FILE);
  const config = parseConfig(configJson, filePath(src, CONFIG_FILE)); // refuse before any large download
  const { tokenizer, template } = await loadTokenizerFiles(src, configJson);
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new Error(`${filePath(src, 'tokenizer.json')}: the tokenizer has ${tokenizer.vocabSize} tokens but config.json vocab_size is ${config.vocab_size}: they are not a pair`);
  }
  const generationConfig = (await src.exists('generation_config.json')) ? await readJsonObject(src, 'generation_config.json') : undefined;
  const model = await loadModel(src);
  return { model, tokenizer, template, config: model.config, generationConfig, source };
}

/**
 * Loads `repoId` from the Hub: config.json, tokenizer files, generation_config.json, then the
 * weights (one file or an index and its shards), each with progress events.
 *
 * @example
 * const { model, tokenizer } = await loadFromHub('openai-community/gpt2', { onProgress: (f, n, t) => {} });
 */
export async function loadFromHub(repoId: string, opts: HubOptions = {}): Promise<PretrainedModel> {
  const src = hubSource(repoId, opts);
  try {
    return await loadPretrainedFrom(src);
  } catch (e) {
    const err = e as Error;
    // Every message names a file under the repo's URL; one that does not gets the repo added.
    if (err.name !== 'AbortError' && typeof err.message === 'string' && !err.message.includes(repoId)) err.message = `${repoId}@${src.revision}: ${err.message}`;
    throw err;
  }
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

async function isNodeDirectory(path: string): Promise<boolean> {
  if (!isNode) return false;
  const fsName = 'node:fs/promises';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs/promises');
  try {
    return (await fs.stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Resolves where a model comes from, the way `from_pretrained` does: a FileSource as is; an
 * http(s) URL of a checkpoint directory; an existing directory (Node); otherwise a Hub repo id.
 */
export async function resolveModelSource(src: FileSource | string, opts: HubOptions = {}): Promise<FileSource> {
  if (typeof src !== 'string') return src;
  if (/^https?:/i.test(src)) return httpFileSource(src, opts);
  if (await isNodeDirectory(src)) return nodeDirSource(src);
  if (src.startsWith('.') || src.startsWith('/') || src.includes('\\')) throw new FileNotFoundError(src, 'no such directory');
  return hubSource(src, opts);
}

/** loadFromHub for any source: a directory path (Node), a URL, a FileSource, or a repo id. */
export async function loadPretrained(src: FileSource | string, opts: HubOptions = {}): Promise<PretrainedModel> {
  const source = await resolveModelSource(src, opts);
  if ('repoId' in source) return loadFromHub((source as HubSource).repoId, opts);
  return loadPretrainedFrom(source);
}
