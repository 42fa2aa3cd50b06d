/**
 * A read-only file system under --out. Node's recursive mkdir reports ENOENT when the parent is
 * on a read-only mount; the error must name the folder and the real cause. The file system calls
 * are replaced (a read-only mount cannot be made portably inside a test): mkdirSync of a new
 * folder fails as Node's does there, and accessSync answers EROFS for the mount's folders.
 */
import os from 'node:os';
import path from 'node:path';
import { describe, it, expect, vi, afterEach } from 'vitest';

const ro = vi.hoisted(() => ({ mount: '' }));
const under = (p: unknown) => ro.mount !== '' && path.resolve(String(p)).startsWith(ro.mount);
const fail = (code: string, call: string, p: unknown) => Object.assign(new Error(`${code}: ${call} '${String(p)}'`), { code });

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const mkdirSync = ((p: string, opts?: unknown) => {
    if (under(p) && !real.existsSync(p)) throw fail('ENOENT', 'no such file or directory, mkdir', p);
    return real.mkdirSync(p, opts as never);
  }) as typeof real.mkdirSync;
  const accessSync = ((p: string, mode?: number) => {
    if (under(p) && mode !== undefined && (mode & real.constants.W_OK)) throw fail('EROFS', 'read-only file system, access', p);
    return real.accessSync(p, mode);
  }) as typeof real.accessSync;
  return { ...real, default: { ...real, mkdirSync, accessSync }, mkdirSync, accessSync };
});

const { makeOutDir } = await import('../../src/cli/out_dir.js');

describe('--out on a read-only file system', () => {
  afterEach(() => { ro.mount = ''; });

  it('a folder to create: names the read-only mount, not ENOENT', () => {
    ro.mount = os.tmpdir();
    const dir = path.join(os.tmpdir(), 'webtune-ro', 'run');
    let message = '';
    try { makeOutDir(dir); } catch (e) { message = (e as Error).message; }
    expect(message).toBe(`train: --out ${dir}: cannot create the folder: ${os.tmpdir()} is on a read-only file system`);
    expect(message).not.toMatch(/ENOENT/);
  });

  it('an existing folder: cannot write there, read-only file system', () => {
    ro.mount = os.tmpdir();
    let message = '';
    try { makeOutDir(os.tmpdir(), '--out'); } catch (e) { message = (e as Error).message; }
    expect(message).toBe(`train: --out ${os.tmpdir()}: cannot write there: read-only file system`);
  });

  it('a writable folder passes', () => {
    expect(() => makeOutDir(path.join(os.tmpdir(), `webtune-rw-${process.pid}`))).not.toThrow();
  });
});
