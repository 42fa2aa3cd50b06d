/**
 * The output folder of `webtune train`: the run folder of src/io/run_folder.ts on disk (its
 * checkpoints, their rotation, what an interrupted run left), plus what only Node can do: who
 * may write it, and whether the disk under it can hold the run.
 *
 *   runFolder(dir)             DIR as a RunFolder: checkpoint-<step>/ directories written under
 *                              .checkpoint-<step>.partial-<pid>/ and renamed when complete
 *   openOutDir(dir)            lockOutDir, then RunFolder.cleanUp (the leftovers of a killed run)
 *   lockOutDir(dir)            DIR/.webtune-train.lock ({"pid", "host", "started"}), created
 *                              exclusively: a second run on a folder a live run holds is refused;
 *                              a lock whose process is gone (kill -9, a crash) is taken over
 *   checkFreeSpace(dir, need)  refuses a run whose outputs cannot fit on the disk
 *
 * `disk` holds the two file-system calls a full disk is met through (free bytes, the sink the
 * final model is written to), so that a failing disk can be simulated.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CliError } from './args.js';
import { nodeDirSink, nodeDirSource } from '../io/files.js';
import type { FileSink } from '../io/files.js';
import { RunFolder, type FolderStorage } from '../io/run_folder.js';

export const LOCK_FILE = '.webtune-train.lock';
/** Saved in every checkpoint: the run's flags (and the checkpoint's save number). */
export { ARGS_FILE } from '../io/run_folder.js';
/** Written at the start of a run: its flags as given (argv) and as used (flags, defaults filled in), for `webtune compare`. */
export const RUN_FILE = 'webtune_run.json';

export const disk = {
  /** Bytes an unprivileged writer can still use on the file system holding `dir`. */
  freeBytes(dir: string): number {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  },
  /** Where final files are written. */
  sink(dir: string): FileSink {
    return nodeDirSink(dir);
  },
};

const errCode = (e: unknown) => (e as NodeJS.ErrnoException)?.code ?? '';
const errText = (e: unknown) => (e as Error)?.message ?? String(e);

/** mkdir -p with an error that names the folder and the real cause (a read-only file system is not "ENOENT"). */
export function makeOutDir(dir: string, flag = '--out'): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    // Node's recursive mkdir can report ENOENT where the parent is not writable: find the real cause.
    let parent = path.resolve(dir);
    while (!fs.existsSync(parent) && path.dirname(parent) !== parent) parent = path.dirname(parent);
    let why = `${errCode(e) || 'error'}: ${errText(e)}`;
    try {
      fs.accessSync(parent, fs.constants.W_OK);
    } catch (a) {
      why = errCode(a) === 'EROFS' ? `${parent} is on a read-only file system` : `${parent} is not writable (${errCode(a)})`;
    }
    throw new CliError(`train: ${flag} ${dir}: cannot create the folder: ${why}`);
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (a) {
    throw new CliError(`train: ${flag} ${dir}: cannot write there: ${errCode(a) === 'EROFS' ? 'read-only file system' : `${errCode(a)}: ${errText(a)}`}`);
  }
}

interface LockInfo { pid: number; host: string; started: string }

function readLock(file: string): LockInfo | undefined {
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    return Number.isInteger(j.pid) && typeof j.host === 'string' ? j : undefined;
  } catch {
    return undefined; // unreadable or cut short by a crash while it was written: stale
  }
}

/** Whether the process holding a lock may still be running (another host's: assume it is). */
function holderAlive(l: LockInfo): boolean {
  if (l.host !== os.hostname()) return true;
  try {
    process.kill(l.pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM';
  }
}

export interface OutLock {
  file: string;
  /** The dead run whose lock was taken over, if any. */
  stale?: LockInfo;
  release(): void;
}

/**
 * Takes DIR's lock (creating DIR), or throws naming the run that holds it. Released by
 * release() and, should the process exit another way (a second Ctrl-C), on exit.
 */
export function lockOutDir(dir: string): OutLock {
  makeOutDir(dir);
  const file = path.join(dir, LOCK_FILE);
  const me: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
  let stale: LockInfo | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
      break;
    } catch (e) {
      if (errCode(e) !== 'EEXIST' || attempt > 0) throw new CliError(`train: --out ${dir}: cannot create ${file} (${errCode(e)}: ${errText(e)})`);
      const holder = readLock(file);
      if (holder && holderAlive(holder)) {
        throw new CliError(`train: --out ${dir} is in use by another webtune train (pid ${holder.pid} on ${holder.host}, started ${holder.started}); ` +
          `wait for it to finish or give another --out. If no run is using it, delete ${file}.`);
      }
      stale = holder ?? { pid: 0, host: '?', started: '?' };
      fs.rmSync(file, { force: true });
    }
  }
  const release = () => {
    process.removeListener('exit', release);
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, stale, release };
}

/**
 * DIR as a run folder on disk: entries are its files and sub-directories; a checkpoint being
 * written is a directory renamed when complete. Temporary names carry this process's id.
 */
export function runFolder(dir: string): RunFolder {
  return new RunFolder(nodeFolder(dir), String(process.pid));
}

function nodeFolder(dir: string): FolderStorage {
  const at = (entry: string) => path.join(dir, entry);
  return {
    name: dir,
    list: async () => (fs.existsSync(dir) ? fs.readdirSync(dir) : []),
    async create(entry) {
      fs.rmSync(at(entry), { recursive: true, force: true });
      fs.mkdirSync(at(entry), { recursive: true });
      return { ...nodeDirSink(at(entry)), close: async () => undefined };
    },
    open: (entry) => nodeDirSource(at(entry)),
    rename: async (from, to) => fs.renameSync(at(from), at(to)),
    remove: async (entry) => fs.rmSync(at(entry), { recursive: true, force: true }),
    location: at,
  };
}

/**
 * Opens DIR for one run: takes its lock (see lockOutDir), then removes what an interrupted run
 * left half-written (RunFolder.cleanUp), returning the names removed.
 */
export async function openOutDir(dir: string): Promise<{ run: RunFolder; lock: OutLock; removed: string[] }> {
  const lock = lockOutDir(dir);
  try {
    const run = runFolder(dir);
    return { run, lock, removed: await run.cleanUp() };
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Bytes as megabytes for messages (two decimals below 10 MB). */
export const MB = (n: number) => `${(n / 1e6).toFixed(n < 10e6 ? 2 : 1)} MB`;

/** Refuses (before any step) when the disk under DIR has less than `need` bytes free. */
export function checkFreeSpace(dir: string, need: number, what: string): void {
  let free: number;
  try {
    free = disk.freeBytes(dir);
  } catch {
    return; // a file system that cannot say: the save itself will report a full disk
  }
  if (free < need) {
    throw new CliError(`train: --out ${dir}: ${MB(free)} free on its disk, but the run writes about ${MB(need)} (${what}); ` +
      'free some space or give another --out');
  }
}
