import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  nodeDirSource, nodeDirSink, filesSource, urlSource, MemoryFiles, openSource, openSink,
  checkFileName, FileNotFoundError, type FileSource, type PickedFile,
} from '../../src/io/files.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'webtune-io-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkFileName', () => {
  const cases: Array<[string, boolean]> = [
    ['config.json', true], ['model-00001-of-00002.safetensors', true], ['sub/dir/file.bin', true], ['.hidden', true],
    ['', false], ['/etc/passwd', false], ['../x', false], ['a/../b', false], ['a//b', false], ['./a', false],
    ['a\\b', false], ['C:x', false], ['a\0b', false],
  ];
  for (const [name, ok] of cases) {
    it(`${JSON.stringify(name)} is ${ok ? 'accepted' : 'refused'}`, () => {
      if (ok) expect(() => checkFileName(name)).not.toThrow();
      else expect(() => checkFileName(name, 'index:')).toThrow(/^index: ".*": must/);
    });
  }
});

describe('Node directory source and sink', () => {
  it('round-trips bytes and text, creating folders, and leaves no temporary files', async () => {
    const sink = openSink(join(dir, 'ckpt'));
    await sink.write('config.json', '{"a": "é"}');
    await sink.write('model.safetensors', new Uint8Array([1, 2, 3]));
    await sink.write('sub/extra.bin', new Uint8Array([9]));
    await sink.write('model.safetensors', new Uint8Array([4, 5])); // overwrite
    expect((await readdir(join(dir, 'ckpt'))).sort()).toEqual(['config.json', 'model.safetensors', 'sub']);
    const src = openSource(join(dir, 'ckpt'));
    expect(src.name).toBe(join(dir, 'ckpt'));
    expect(await src.readText('config.json')).toBe('{"a": "é"}');
    expect(Array.from(await src.read('model.safetensors'))).toEqual([4, 5]);
    expect(Array.from(await src.read('sub/extra.bin'))).toEqual([9]);
    expect(await src.exists('config.json')).toBe(true);
    expect(await src.exists('missing.json')).toBe(false);
    expect(await src.exists('sub')).toBe(false); // a directory is not a file
  });

  it('names the full path of a missing file', async () => {
    const src = nodeDirSource(join(dir, 'ckpt'));
    const err = await src.read('nope.json').catch((e) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err.message).toBe(`${join(dir, 'ckpt', 'nope.json')}: no such file`);
  });

  it('refuses paths outside the directory', async () => {
    await expect(nodeDirSource(dir).read('../etc/passwd')).rejects.toThrow(/must not contain empty, "\." or "\.\." segments/);
    await expect(nodeDirSink(dir).write('/tmp/x', 'x')).rejects.toThrow(/must be relative/);
  });

  it('reports non-UTF-8 text naming the file', async () => {
    await mkdir(join(dir, 'bad'), { recursive: true });
    await writeFile(join(dir, 'bad', 'config.json'), Buffer.from([0x7b, 0xff, 0x7d]));
    await expect(nodeDirSource(join(dir, 'bad')).readText('config.json')).rejects.toThrow(`${join(dir, 'bad', 'config.json')}: not valid UTF-8 text`);
    expect(Array.from(await readFile(join(dir, 'bad', 'config.json')))).toEqual([0x7b, 0xff, 0x7d]);
  });
});

describe('browser-picked files', () => {
  const picked = (path: string, content: string, relative = true): PickedFile => {
    const f = new File([content], path.split('/').pop()!);
    Object.defineProperty(f, 'webkitRelativePath', { value: relative ? path : '' });
    return f;
  };

  it('finds plain picked files by name', async () => {
    const src = filesSource([picked('config.json', '{}', false), picked('model.safetensors', 'xyz', false)]);
    expect(src.name).toBe('selected files');
    expect(await src.readText('config.json')).toBe('{}');
    expect(new TextDecoder().decode(await src.read('model.safetensors'))).toBe('xyz');
    expect(await src.exists('tokenizer.json')).toBe(false);
    const err = await src.read('tokenizer.json').catch((e) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err.message).toBe('selected files/tokenizer.json: not among the selected files (config.json, model.safetensors)');
  });

  it('finds files of a picked folder by their relative path, then by name', async () => {
    const src = filesSource([picked('gpt2/config.json', 'top'), picked('gpt2/sub/config.json', 'nested'), picked('gpt2/sub/only.txt', 'o')]);
    expect(src.name).toBe('gpt2/ (selected folder)');
    expect(await src.readText('config.json')).toBe('top');
    expect(await src.readText('sub/config.json')).toBe('nested');
    expect(await src.readText('only.txt')).toBe('o'); // unique name anywhere in the folder
  });

  it('refuses an ambiguous name', async () => {
    const src = filesSource([picked('a/x/config.json', '1'), picked('a/y/config.json', '2')]);
    await expect(src.read('config.json')).rejects.toThrow(/2 selected files are named config.json \(a\/x\/config.json, a\/y\/config.json\)/);
  });
});

describe('URL source', () => {
  type Call = { url: string; method: string; headers?: HeadersInit };
  const fakeFetch = (files: Record<string, string>, calls: Call[], opts: { refuseHead?: boolean; status?: number } = {}) =>
    (async (url: string, init?: RequestInit) => {
      const method = init?.method ?? 'GET';
      calls.push({ url: String(url), method, headers: init?.headers });
      if (opts.status) return new Response('boom', { status: opts.status, statusText: 'Internal Server Error' });
      if (method === 'HEAD' && opts.refuseHead) return new Response(null, { status: 405, statusText: 'Method Not Allowed' });
      const path = new URL(String(url)).pathname;
      if (!(path in files)) return new Response('not here', { status: 404, statusText: 'Not Found' });
      return new Response(method === 'HEAD' ? null : files[path], { status: 200 });
    }) as typeof fetch;

  it('reads files below the base URL, with the given request options', async () => {
    const calls: Call[] = [];
    const src = urlSource('https://host.test/models/gpt2', { fetch: fakeFetch({ '/models/gpt2/config.json': '{"x":1}', '/models/gpt2/a%20b.json': 'sp' }, calls), init: { headers: { Authorization: 'Bearer t' } } });
    expect(src.name).toBe('https://host.test/models/gpt2/');
    expect(await src.readText('config.json')).toBe('{"x":1}');
    expect(await src.readText('a b.json')).toBe('sp');
    expect(await src.exists('config.json')).toBe(true);
    expect(await src.exists('model.safetensors')).toBe(false);
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'GET https://host.test/models/gpt2/config.json',
      'GET https://host.test/models/gpt2/a%20b.json',
      'HEAD https://host.test/models/gpt2/config.json',
      'HEAD https://host.test/models/gpt2/model.safetensors',
    ]);
    expect(calls[0].headers).toEqual({ Authorization: 'Bearer t' });
  });

  it('names the URL and HTTP status in errors', async () => {
    const src = urlSource('https://host.test/m/', { fetch: fakeFetch({}, []) });
    const err = await src.read('config.json').catch((e) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err.message).toBe('https://host.test/m/config.json: HTTP 404 Not Found');
    const broken = urlSource('https://host.test/m/', { fetch: fakeFetch({}, [], { status: 500 }) });
    await expect(broken.read('config.json')).rejects.toThrow('https://host.test/m/config.json: HTTP 500 Internal Server Error');
    await expect(broken.exists('config.json')).rejects.toThrow('https://host.test/m/config.json: HTTP 500 Internal Server Error');
    const offline = urlSource('https://host.test/m/', { fetch: (async () => { throw new TypeError('fetch failed'); }) as typeof fetch });
    await expect(offline.read('config.json')).rejects.toThrow('https://host.test/m/config.json: request failed (fetch failed)');
  });

  it('falls back to GET when the host refuses HEAD', async () => {
    const calls: Call[] = [];
    const src = urlSource('https://host.test/m/', { fetch: fakeFetch({ '/m/config.json': '{}' }, calls, { refuseHead: true }) });
    expect(await src.exists('config.json')).toBe(true);
    expect(await src.exists('other.json')).toBe(false);
    expect(calls.map((c) => c.method)).toEqual(['HEAD', 'GET', 'HEAD', 'GET']);
  });

  it('openSource picks the URL source for http(s) strings', () => {
    expect(openSource('https://host.test/x').name).toBe('https://host.test/x/');
    expect(() => openSource('blob:abc')).toThrow(/only http\(s\) URLs and directory paths/);
    expect(() => openSink('https://host.test/x')).toThrow(/cannot write to a URL/);
  });
});

describe('MemoryFiles', () => {
  it('is a source and a sink over a Map', async () => {
    const files = new Map<string, Uint8Array>();
    const mem = new MemoryFiles(files, 'download');
    await mem.write('config.json', '{"é":1}');
    await mem.write('w.bin', new Uint8Array([7]));
    expect([...files.keys()]).toEqual(['config.json', 'w.bin']);
    const src: FileSource = mem;
    expect(await src.readText('config.json')).toBe('{"é":1}');
    expect(await src.exists('w.bin')).toBe(true);
    await expect(src.read('x.bin')).rejects.toThrow('download/x.bin: no such file');
    await expect(mem.write('../x', 'x')).rejects.toThrow(/download: "\.\.\/x"/);
  });
});
