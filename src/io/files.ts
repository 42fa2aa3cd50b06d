/**
 * Where checkpoint files come from and go to. One small interface, four places:
 *
 *   nodeDirSource / nodeDirSink   a directory on disk (Node; `node:fs` is imported lazily, so a
 *                                 browser bundle never pulls it in)
 *   filesSource                   files the user picked in a browser (<input type=file multiple>
 *                                 or a directory pick with webkitRelativePath), matched by name
 *   urlSource                     a base URL (static host, a model hub's resolve/main/ path), with fetch
 *   MemoryFiles                   a Map<string, Uint8Array>, both source and sink: browser downloads,
 *                                 IndexedDB (browser_store.ts), tests
 *
 * File names are relative, '/'-separated paths ("config.json", "model-00001-of-00002.safetensors").
 * Names read from files (a shard index) are untrusted, so absolute paths and '..' are refused.
 *
 * @example
 * const src = openSource('checkpoints/gpt2');          // Node directory, or 'https://host/path/' for a URL
 * const config = JSON.parse(await src.readText('config.json'));
 */

export interface FileSource {
  name: string; // for messages: a directory path, a URL, "selected files"
  read(file: string): Promise<Uint8Array>;
  readText(file: string): Promise<string>;
  exists(file: string): Promise<boolean>;
}

export interface FileSink {
  write(file: string, data: Uint8Array | string): Promise<void>;
}

/** A file a source does not have. `path` is the full location (directory path or URL). */
export class FileNotFoundError extends Error {
  constructor(readonly path: string, detail = 'file not found') {
    super(`${path}: ${detail}`);
    this.name = 'FileNotFoundError';
  }
}

/** Throws unless `file` is a safe relative path: no absolute path, no '.'/'..' or empty segment, no backslash. */
export function checkFileName(file: string, where = 'file name'): void {
  const bad = (why: string): never => {
    throw new Error(`${where} ${JSON.stringify(file)}: ${why}`);
  };
  if (typeof file !== 'string' || file.length === 0) bad('must be a non-empty string');
  if (file.includes('\\') || file.includes('\0')) bad('must not contain a backslash or NUL');
  if (file.startsWith('/') || /^[A-Za-z]:/.test(file)) bad('must be relative to the checkpoint directory');
  for (const seg of file.split('/')) if (seg === '' || seg === '.' || seg === '..') bad('must not contain empty, "." or ".." segments');
}

/** Decodes UTF-8 strictly (a BOM is dropped); `where` names the file in the error. */
export function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${where}: not valid UTF-8 text`);
  }
}

const encodeUtf8 = (data: Uint8Array | string) => (typeof data === 'string' ? new TextEncoder().encode(data) : data);
const joinName = (base: string, file: string) => (base.endsWith('/') ? base + file : `${base}/${file}`);

// ---------------------------------------------------------------------------------------------
// Node directories

type NodeFs = typeof import('node:fs/promises');
type NodePath = typeof import('node:path');

// Specifiers held in variables, with @vite-ignore, so that bundlers leave them alone: the browser
// build never sees node:fs, and Node resolves them at call time.
const FS_MODULE = 'node:fs/promises';
const PATH_MODULE = 'node:path';
async function nodeModules(): Promise<{ fs: NodeFs; path: NodePath }> {
  const [fs, path] = await Promise.all([import(/* @vite-ignore */ FS_MODULE), import(/* @vite-ignore */ PATH_MODULE)]);
  return { fs: fs as NodeFs, path: path as NodePath };
}

function isNotFound(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Reads files from a directory on disk (Node only). */
export function nodeDirSource(dir: string): FileSource {
  const full = async (file: string) => {
    checkFileName(file, `${dir}:`);
    const { path } = await nodeModules();
    return path.join(dir, ...file.split('/'));
  };
  const read = async (file: string): Promise<Uint8Array> => {
    const p = await full(file);
    const { fs } = await nodeModules();
    try {
      const buf = await fs.readFile(p);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      if (isNotFound(e)) throw new FileNotFoundError(p, 'no such file');
      throw new Error(`${p}: cannot read (${(e as Error).message})`);
    }
  };
  return {
    name: dir,
    read,
    readText: async (file) => decodeUtf8(await read(file), await full(file)),
    exists: async (file) => {
      const p = await full(file);
      const { fs } = await nodeModules();
      try {
        return (await fs.stat(p)).isFile();
      } catch (e) {
        if (isNotFound(e)) return false;
        throw new Error(`${p}: cannot stat (${(e as Error).message})`);
      }
    },
  };
}

/**
 * Writes files into a directory on disk (Node only), creating it as needed. Each file is written
 * to a temporary name and renamed, so an interrupted save never leaves a half-written file under
 * the real name.
 */
export function nodeDirSink(dir: string): FileSink & { name: string } {
  return {
    name: dir,
    async write(file, data) {
      checkFileName(file, `${dir}:`);
      const { fs, path } = await nodeModules();
      const p = path.join(dir, ...file.split('/'));
      const tmp = `${p}.partial-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
      try {
        await fs.mkdir(path.dirname(p), { recursive: true });
        await fs.writeFile(tmp, encodeUtf8(data));
        await fs.rename(tmp, p);
      } catch (e) {
        await fs.rm(tmp, { force: true }).catch(() => undefined);
        throw new Error(`${p}: cannot write (${(e as Error).message})`);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Browser-picked files

/** What a File from an <input type=file> offers (a Node `File` too). */
export interface PickedFile {
  name: string;
  webkitRelativePath?: string; // "picked-folder/sub/file" for a directory pick, "" otherwise
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * A source over files picked in a browser. A file is found by its path relative to the picked
 * folder (webkitRelativePath without its first segment) or, for a plain name, by its file name;
 * a name that several picked files share is an error listing them, never a guess.
 */
export function filesSource(files: ArrayLike<PickedFile> | Iterable<PickedFile>, name?: string): FileSource {
  const list: PickedFile[] = Array.from(files as ArrayLike<PickedFile>);
  const relative = (f: PickedFile) => {
    const rel = f.webkitRelativePath ?? '';
    const i = rel.indexOf('/');
    return rel && i >= 0 ? rel.slice(i + 1) : f.name;
  };
  const byPath = new Map<string, PickedFile[]>();
  for (const f of list) byPath.set(relative(f), [...(byPath.get(relative(f)) ?? []), f]);
  const folder = list.find((f) => f.webkitRelativePath)?.webkitRelativePath?.split('/')[0];
  const sourceName = name ?? (folder ? `${folder}/ (selected folder)` : 'selected files');
  const display = (f: PickedFile) => f.webkitRelativePath || f.name;

  const find = (file: string): PickedFile | undefined => {
    checkFileName(file, `${sourceName}:`);
    let matches = byPath.get(file) ?? [];
    if (matches.length === 0 && !file.includes('/')) matches = list.filter((f) => f.name === file);
    if (matches.length > 1) {
      throw new Error(`${sourceName}: ${matches.length} selected files are named ${file} (${matches.map(display).join(', ')}): select one checkpoint folder`);
    }
    return matches[0];
  };
  const read = async (file: string): Promise<Uint8Array> => {
    const f = find(file);
    if (!f) throw new FileNotFoundError(joinName(sourceName, file), `not among the selected files (${list.map(display).join(', ') || 'none'})`);
    try {
      return new Uint8Array(await f.arrayBuffer());
    } catch (e) {
      throw new Error(`${display(f)}: cannot read (${(e as Error).message})`);
    }
  };
  return {
    name: sourceName,
    read,
    readText: async (file) => decodeUtf8(await read(file), joinName(sourceName, file)),
    exists: async (file) => find(file) !== undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// URLs

export interface UrlSourceOptions {
  fetch?: typeof fetch; // defaults to the global fetch
  init?: RequestInit; // headers (an access token), credentials, cache mode...
}

/**
 * A source over `base` (a directory URL; a trailing '/' is added when missing), read with fetch.
 * Errors name the URL and the HTTP status.
 */
export function urlSource(base: string | URL, opts: UrlSourceOptions = {}): FileSource {
  const baseUrl = new URL(String(base));
  if (!baseUrl.pathname.endsWith('/')) baseUrl.pathname += '/';
  const doFetch = opts.fetch ?? globalThis.fetch;
  const urlOf = (file: string) => {
    checkFileName(file, `${baseUrl.href}:`);
    return new URL(file.split('/').map(encodeURIComponent).join('/'), baseUrl).href;
  };
  const request = async (url: string, method: 'GET' | 'HEAD'): Promise<Response> => {
    try {
      return await doFetch(url, { ...opts.init, method });
    } catch (e) {
      throw new Error(`${url}: request failed (${(e as Error).message})`);
    }
  };
  const statusText = (res: Response) => `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  const read = async (file: string): Promise<Uint8Array> => {
    const url = urlOf(file);
    const res = await request(url, 'GET');
    if (res.status === 404 || res.status === 410) throw new FileNotFoundError(url, statusText(res));
    if (!res.ok) throw new Error(`${url}: ${statusText(res)}`);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw new Error(`${url}: download interrupted (${(e as Error).message})`);
    }
  };
  return {
    name: baseUrl.href,
    read,
    readText: async (file) => decodeUtf8(await read(file), urlOf(file)),
    async exists(file) {
      const url = urlOf(file);
      let res = await request(url, 'HEAD');
      // Some static hosts refuse HEAD: ask with GET and drop the body.
      if (res.status === 405 || res.status === 501) {
        res = await request(url, 'GET');
        await res.body?.cancel().catch(() => undefined);
      }
      if (res.status === 404 || res.status === 410) return false;
      if (!res.ok) throw new Error(`${url}: ${statusText(res)}`);
      return true;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Memory

/**
 * Files held in a Map: a source and a sink at once. Bytes are stored as given (not copied).
 *
 * @example
 * const dir = new MemoryFiles();
 * await dir.write('config.json', '{}');
 * await dir.readText('config.json'); // '{}'
 */
export class MemoryFiles implements FileSource, FileSink {
  readonly files: Map<string, Uint8Array>;
  constructor(files?: Map<string, Uint8Array> | Iterable<[string, Uint8Array]>, readonly name = 'memory') {
    this.files = files instanceof Map ? files : new Map(files ?? []);
  }
  async read(file: string): Promise<Uint8Array> {
    checkFileName(file, `${this.name}:`);
    const bytes = this.files.get(file);
    if (!bytes) throw new FileNotFoundError(joinName(this.name, file), 'no such file');
    return bytes;
  }
  async readText(file: string): Promise<string> {
    return decodeUtf8(await this.read(file), joinName(this.name, file));
  }
  async exists(file: string): Promise<boolean> {
    checkFileName(file, `${this.name}:`);
    return this.files.has(file);
  }
  async write(file: string, data: Uint8Array | string): Promise<void> {
    checkFileName(file, `${this.name}:`);
    this.files.set(file, encodeUtf8(data));
  }
}

// ---------------------------------------------------------------------------------------------

const isUrl = (s: string) => /^(https?|file|blob|data):/i.test(s);

/** A string is a URL (http:, https:) or a Node directory path; anything else is used as is. */
export function openSource(src: FileSource | string): FileSource {
  if (typeof src !== 'string') return src;
  return /^https?:/i.test(src) ? urlSource(src) : isUrl(src) ? unsupported(src) : nodeDirSource(src);
}

/** A string is a Node directory path; anything else is used as is. */
export function openSink(sink: FileSink | string): FileSink {
  if (typeof sink !== 'string') return sink;
  if (isUrl(sink)) throw new Error(`${sink}: cannot write to a URL; give a directory path or a FileSink (MemoryFiles in a browser)`);
  return nodeDirSink(sink);
}

function unsupported(src: string): never {
  throw new Error(`${src}: only http(s) URLs and directory paths are supported as checkpoint sources`);
}
