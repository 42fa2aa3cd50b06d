/**
 * The run folder (src/io/run_folder.ts): atomic commit, rotation that keeps the newest complete
 * checkpoint, save numbers that outrank steps, and temporary entries never picked to resume and
 * cleaned up. Each case runs over MemoryFolder, over a directory on disk (the CLI's), and over
 * browserFolder, the page's storage, here on a Map standing in for IndexedDB (BrowserStore's
 * save / load / list / rename / delete).
 */
import { describe, it, expect, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runFolder } from '../../src/cli/out_dir.js';
import { RunFolder, MemoryFolder, browserFolder, ARGS_FILE, type FolderStorage, type FileSink } from '../../src/index.js';
import { MapStore } from '../helpers/map_store.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-run-folder-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * The storages every case runs over; `staged`: whether an entry being written is listed before
 * it is closed; `at`: where a folder's entries are (its name prefixed).
 */
const storages: Array<{ kind: string; make: (name?: string) => FolderStorage; staged: boolean; at: string }> = [
  { kind: 'MemoryFolder', make: (name = 'memory') => new MemoryFolder(name), staged: true, at: '' },
  // A fresh directory per folder; locations are its path.
  { kind: 'a directory (the CLI\'s)', make: (name = 'memory') => runFolder(path.join(fs.mkdtempSync(path.join(tmp, 'case-')), name)).storage, staged: true, at: '<dir>/' },
  {
    kind: 'browserFolder',
    make: (name = 'memory') => {
      const store = new MapStore();
      // Entries of another folder and a kept model share the store: the folder lists neither.
      store.entries.set('elsewhere/checkpoint-99', new Map());
      store.entries.set('my kept model', new Map());
      return browserFolder(store, name);
    },
    staged: false, at: 'browser storage/',
  },
];

/** A checkpoint's files: one file naming the step, so a test can tell which save wrote it. */
const stepFile = (step: number) => async (sink: FileSink) => { await sink.write('weights.txt', `step ${step}`); };
/** Stores an entry as a writer that stopped at that moment left it (on disk it would be there from its first file). */
async function put(f: FolderStorage, entry: string, files: Record<string, string> = {}): Promise<void> {
  const w = await f.create(entry);
  for (const [name, text] of Object.entries(files)) await w.write(name, text);
  await w.close();
}
/** An entry's expected location: `at` + folder/entry, a directory's under its temporary parent. */
const where = (f: FolderStorage, at: string, entry: string) => (at === '<dir>/' ? path.join(path.dirname(f.name), ...entry.split('/')) : at + entry);
const names = async (f: FolderStorage) => (await f.list()).sort();
const weightsOf = (f: FolderStorage, entry: string) => f.open(entry).readText('weights.txt');

describe.each(storages)('RunFolder over $kind', ({ make, staged, at }) => {
describe('saveCheckpoint', () => {
  it('writes under a temporary name and gives the checkpoint its name only when complete, with the record and save number', async () => {
    const f = make('run');
    const run = new RunFolder(f, 'x1');
    let during: string[] = [];
    const c = await run.saveCheckpoint(5, async (sink) => {
      await sink.write('weights.txt', 'step 5');
      during = await names(f);
    }, { record: { argv: ['--steps', '9'] } });
    expect(during).toEqual(staged ? ['.checkpoint-5.partial-x1'] : []);
    expect(await names(f)).toEqual(['checkpoint-5']);
    expect(c).toEqual({ name: 'checkpoint-5', step: 5, seq: 1, location: where(f, at, 'run/checkpoint-5') });
    expect(JSON.parse(await f.open('checkpoint-5').readText(ARGS_FILE))).toEqual({ argv: ['--steps', '9'], saved_seq: 1 });
    expect(await weightsOf(f, 'checkpoint-5')).toBe('step 5');
  });

  it('a write that fails leaves the folder as it was: the last good checkpoint is still the latest', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    await run.saveCheckpoint(2, stepFile(2), { keep: 1 });
    await expect(run.saveCheckpoint(4, async (sink) => {
      await sink.write('weights.txt', 'half');
      throw new Error('disk full');
    }, { keep: 1 })).rejects.toThrow('disk full');
    expect(await names(f)).toEqual(['checkpoint-2']);
    expect((await run.latest())?.name).toBe('checkpoint-2');
  });

  it('a commit that fails (the rename) keeps the older checkpoints, and the half-done entry is never picked', async () => {
    const f = make();
    const failing: FolderStorage = Object.assign(Object.create(f) as FolderStorage, {
      rename: async () => { throw new Error('killed'); },
    });
    await new RunFolder(f, 'x1').saveCheckpoint(1, stepFile(1));
    await expect(new RunFolder(failing, 'x1').saveCheckpoint(2, stepFile(2), { keep: 1 })).rejects.toThrow('killed');
    expect(await names(f)).toEqual(['.checkpoint-2.partial-x1', 'checkpoint-1']);
    expect((await new RunFolder(f).latest())?.name).toBe('checkpoint-1');
  });

  it('saving a step that exists replaces it only once the new one is complete', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    await run.saveCheckpoint(3, stepFile(3));
    let oldDuringWrite = '';
    await run.saveCheckpoint(3, async (sink) => {
      oldDuringWrite = await weightsOf(f, 'checkpoint-3');
      await sink.write('weights.txt', 'step 3 again');
    });
    expect(oldDuringWrite).toBe('step 3');
    expect(await names(f)).toEqual(['checkpoint-3']);
    expect(await weightsOf(f, 'checkpoint-3')).toBe('step 3 again');
    expect((await run.latest())?.seq).toBe(2);
  });
});

describe('rotation', () => {
  it('keeps the `keep` newest; the newest complete one is never removed before the new one is complete', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    const seenWhileWriting: string[][] = [];
    for (let step = 10; step <= 50; step += 10) {
      await run.saveCheckpoint(step, async (sink) => {
        seenWhileWriting.push((await names(f)).filter((n) => n.startsWith('checkpoint-')));
        await stepFile(step)(sink);
      }, { keep: 1 });
    }
    expect(seenWhileWriting).toEqual([[], ['checkpoint-10'], ['checkpoint-20'], ['checkpoint-30'], ['checkpoint-40']]);
    expect(await names(f)).toEqual(['checkpoint-50']);
    const two = make();
    const run2 = new RunFolder(two, 'x1');
    for (const step of [1, 2, 3, 4, 5]) await run2.saveCheckpoint(step, stepFile(step), { keep: 2 });
    expect(await names(two)).toEqual(['checkpoint-4', 'checkpoint-5']);
  });

  it('ranks by save number, not step: a run resumed from an older step outranks the steps it abandoned', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    for (const step of [1, 2, 3, 4]) await run.saveCheckpoint(step, stepFile(step));
    // Resumed from checkpoint-1: its step 2 replaces the abandoned one, and keep 2 removes the oldest written.
    await run.saveCheckpoint(2, stepFile(2), { keep: 2 });
    expect((await run.checkpoints()).map((c) => [c.name, c.seq])).toEqual([['checkpoint-2', 5], ['checkpoint-4', 4]]);
    expect((await run.latest())?.name).toBe('checkpoint-2');
    // A checkpoint without a save number (an older layout) ranks below, by step among its kind.
    await put(f, 'checkpoint-9');
    expect((await run.checkpoints()).map((c) => c.name)).toEqual(['checkpoint-2', 'checkpoint-4', 'checkpoint-9']);
  });

  it('keep 0 still keeps the newest', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    await run.saveCheckpoint(1, stepFile(1));
    await run.saveCheckpoint(2, stepFile(2), { keep: 0 });
    expect(await names(f)).toEqual(['checkpoint-2']);
  });
});

describe('resuming after an interrupted writer', () => {
  it('temporary entries are ignored by latest() and removed by cleanUp(); a checkpoint moved aside comes back', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    await run.saveCheckpoint(3, stepFile(3));
    // What a writer killed at various moments leaves: a half-written newer checkpoint, a
    // half-written top-level file, and a complete checkpoint moved aside whose replacement never got its name.
    await put(f, '.checkpoint-6.partial-4242', { 'weights.txt': 'half' });
    await put(f, 'model.safetensors.partial-kz81x0a');
    await put(f, '.checkpoint-5.old-4242', { 'weights.txt': 'step 5', [ARGS_FILE]: JSON.stringify({ saved_seq: 7 }) });
    expect((await run.checkpoints()).map((c) => c.name)).toEqual(['checkpoint-3']);

    const removed = await new RunFolder(f, 'y2').cleanUp();
    expect(removed.sort()).toEqual(['.checkpoint-6.partial-4242', 'model.safetensors.partial-kz81x0a']);
    expect(await names(f)).toEqual(['checkpoint-3', 'checkpoint-5']);
    expect(await run.latest()).toEqual({ name: 'checkpoint-5', step: 5, seq: 7, location: where(f, at, 'memory/checkpoint-5') });
    expect(await weightsOf(f, 'checkpoint-5')).toBe('step 5');
  });

  it('a moved-aside checkpoint whose name was taken again is removed', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    await run.saveCheckpoint(5, stepFile(5));
    await put(f, '.checkpoint-5.old-4242');
    expect(await run.cleanUp()).toEqual(['.checkpoint-5.old-4242']);
    expect(await names(f)).toEqual(['checkpoint-5']);
  });

  it('removeCheckpoints leaves the run\'s other files', async () => {
    const f = make();
    const run = new RunFolder(f, 'x1');
    await run.saveCheckpoint(1, stepFile(1));
    await run.saveCheckpoint(2, stepFile(2));
    await put(f, 'metrics.jsonl');
    await run.removeCheckpoints();
    expect(await names(f)).toEqual(['metrics.jsonl']);
  });

});
});

describe('RunFolder', () => {
  it('refuses a tag that would not read back as a temporary name', () => {
    expect(() => new RunFolder(new MemoryFolder(), 'Run-1')).toThrow("RunFolder: tag 'Run-1' must be lowercase letters and digits");
  });
});
