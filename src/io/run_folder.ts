/**
 * A run folder: where one training run keeps its resumable checkpoints, rotating them.
 *
 *   <folder>/
 *     checkpoint-<step>/                  a complete checkpoint (trainer checkpoint files, and
 *                                         webtune_train_args.json with "saved_seq": the order the
 *                                         checkpoints were written in)
 *     .checkpoint-<step>.partial-<tag>/   one being written: renamed to checkpoint-<step> when complete
 *     .checkpoint-<step>.old-<tag>/       a complete one moved aside while a newer save of the same
 *                                         step takes its name
 *     <file>.partial-<tag>                a top-level file being written (the run's own files)
 *
 * Whatever moment a run is stopped at (kill -9, a full disk, a closed tab):
 *   - a name checkpoint-<step> always holds a complete checkpoint: it is written under a
 *     temporary name and renamed when complete (saveCheckpoint);
 *   - rotation removes old checkpoints only after the new one has its name, never the newest;
 *   - resuming picks the newest-written complete checkpoint (latest); temporary names are never
 *     picked, and cleanUp() removes them (a moved-aside one whose name is free is put back).
 * "Newest written" is the save number, not the step: a run resumed from an older step outranks
 * the later steps of the run it abandoned.
 *
 * The folder is reached through FolderStorage, a handful of calls on named entries. The CLI backs
 * it with a directory on disk (src/cli/out_dir.ts, which adds the lock and the free-space check),
 * the page with IndexedDB (browserFolder in browser_store.ts), tests with MemoryFolder.
 *
 * @example
 *   const run = new RunFolder(new MemoryFolder('run'));
 *   await run.saveCheckpoint(100, (sink) => saveTrainerCheckpoint(trainer, sink), { keep: 2 });
 *   const latest = await run.latest();              // { name: 'checkpoint-100', step: 100, seq: 1, ... }
 *   const trainer2 = await resumeTrainer(run.storage.open(latest!.name), options);
 */
import { MemoryFiles, type FileSink, type FileSource } from './files.js';

/** Saved in every checkpoint: the run's record (the CLI's flags) and the checkpoint's save number. */
export const ARGS_FILE = 'webtune_train_args.json';

/** An entry being written: a sink whose files are durable once close() resolves. */
export interface EntryWriter extends FileSink {
  close(): Promise<void>;
}

/** The entries (directories of files, or single files) directly inside one folder. */
export interface FolderStorage {
  /** For messages: a directory path, "browser storage/<folder>". */
  readonly name: string;
  /** The names of the entries in the folder, in no particular order. */
  list(): Promise<string[]>;
  /** A new, empty entry to write into (an entry of that name is removed first). */
  create(entry: string): Promise<EntryWriter>;
  /** The files of an entry. */
  open(entry: string): FileSource;
  /** Gives entry `from` the name `to` in one step; `to` does not exist. */
  rename(from: string, to: string): Promise<void>;
  /** Removes an entry; nothing when there is none. */
  remove(entry: string): Promise<void>;
  /** Where an entry is, for messages and for a user to pass back (a directory path). */
  location(entry: string): string;
}

export interface CheckpointEntry {
  /** checkpoint-<step> */
  name: string;
  step: number;
  /** Save number: 1 for the first checkpoint written into the folder, then counting up (0: not recorded). */
  seq: number;
  /** storage.location(name) */
  location: string;
}

const CHECKPOINT = /^checkpoint-(\d+)$/;
/** What an interrupted save leaves: a checkpoint or a top-level file under a temporary name. */
const PARTIAL = /\.partial-[0-9a-z]+$/;
const MOVED_ASIDE = /^\.(checkpoint-\d+)\.old-[0-9a-z]+$/;

export const checkpointName = (step: number) => `checkpoint-${step}`;

export class RunFolder {
  /**
   * `tag` makes this writer's temporary names its own (the CLI uses its process id); two writers
   * on one folder must hold different tags (the CLI's lock keeps a second run out altogether).
   */
  constructor(readonly storage: FolderStorage, readonly tag = Date.now().toString(36) + Math.random().toString(36).slice(2, 6)) {
    if (!/^[0-9a-z]+$/.test(tag)) throw new Error(`RunFolder: tag '${tag}' must be lowercase letters and digits`);
  }

  /** The complete checkpoints, newest written first (save number, then step). */
  async checkpoints(): Promise<CheckpointEntry[]> {
    const out: CheckpointEntry[] = [];
    for (const name of await this.storage.list()) {
      const m = CHECKPOINT.exec(name);
      if (m) out.push({ name, step: Number(m[1]), seq: await this.saveNumber(name), location: this.storage.location(name) });
    }
    return out.sort((a, b) => b.seq - a.seq || b.step - a.step);
  }

  /** The checkpoint to resume from: the newest written complete one. */
  async latest(): Promise<CheckpointEntry | undefined> {
    return (await this.checkpoints())[0];
  }

  /**
   * Removes what an interrupted writer left (temporary checkpoints and files); a checkpoint moved
   * aside whose name is free again is put back. Call it while no other writer uses the folder.
   * Returns the names removed.
   */
  async cleanUp(): Promise<string[]> {
    const names = await this.storage.list();
    const gone: string[] = [];
    for (const name of names) {
      const aside = MOVED_ASIDE.exec(name);
      if (aside && !names.includes(aside[1])) {
        await this.storage.rename(name, aside[1]);
        names.push(aside[1]);
      } else if (aside || PARTIAL.test(name)) {
        await this.storage.remove(name);
        gone.push(name);
      }
    }
    return gone;
  }

  /**
   * Writes checkpoint-<step>: `write` fills a temporary entry, the save number and `record` go
   * in ARGS_FILE, then the entry takes its name (an older checkpoint of the same step is moved
   * aside first and removed after). With `keep`, only the `keep` newest-written checkpoints stay
   * (the one just written among them). A failed write leaves the folder as it was.
   */
  async saveCheckpoint(step: number, write: (sink: FileSink) => Promise<void>, opts: { keep?: number; record?: Record<string, unknown> } = {}): Promise<CheckpointEntry> {
    const seq = Math.max(0, ...(await this.checkpoints()).map((c) => c.seq)) + 1;
    const name = checkpointName(step);
    const tmp = `.${name}.partial-${this.tag}`;
    try {
      const sink = await this.storage.create(tmp);
      await write(sink);
      await sink.write(ARGS_FILE, JSON.stringify({ ...opts.record, saved_seq: seq }, null, 2) + '\n');
      await sink.close();
    } catch (e) {
      await this.storage.remove(tmp).catch(() => undefined);
      throw e;
    }
    // Commit: the complete entry takes its name. A checkpoint of that name stays complete, moved aside, until then.
    const aside = `.${name}.old-${this.tag}`;
    const replaces = (await this.storage.list()).includes(name);
    if (replaces) await this.storage.rename(name, aside);
    await this.storage.rename(tmp, name);
    if (replaces) await this.storage.remove(aside);
    if (opts.keep !== undefined) await this.prune(opts.keep);
    return { name, step, seq, location: this.storage.location(name) };
  }

  /** Removes all but the `keep` newest-written checkpoints (at least the newest stays). */
  async prune(keep: number): Promise<void> {
    for (const c of (await this.checkpoints()).slice(Math.max(1, keep))) await this.storage.remove(c.name);
  }

  /** Removes every checkpoint (a run that completed and keeps none). */
  async removeCheckpoints(): Promise<void> {
    for (const c of await this.checkpoints()) await this.storage.remove(c.name);
  }

  /** The save number a checkpoint recorded; 0 when it has none (written before save numbers, or unreadable). */
  private async saveNumber(name: string): Promise<number> {
    try {
      const j = JSON.parse(await this.storage.open(name).readText(ARGS_FILE)) as { saved_seq?: unknown };
      return Number.isSafeInteger(j.saved_seq) ? (j.saved_seq as number) : 0;
    } catch {
      return 0;
    }
  }
}

/**
 * A folder held in memory: entries are MemoryFiles, visible as soon as they are created (as a
 * directory's are), so an interrupted save leaves its temporary entry behind like on disk.
 */
export class MemoryFolder implements FolderStorage {
  readonly entries = new Map<string, MemoryFiles>();
  constructor(readonly name = 'memory') {}

  async list(): Promise<string[]> {
    return [...this.entries.keys()];
  }
  async create(entry: string): Promise<EntryWriter> {
    const files = new MemoryFiles(undefined, this.location(entry));
    this.entries.set(entry, files);
    return { write: (file, data) => files.write(file, data), close: async () => undefined };
  }
  open(entry: string): FileSource {
    return this.entries.get(entry) ?? new MemoryFiles(undefined, this.location(entry));
  }
  async rename(from: string, to: string): Promise<void> {
    const files = this.entries.get(from);
    if (!files) throw new Error(`${this.location(from)}: no such entry`);
    if (this.entries.has(to)) throw new Error(`${this.location(to)}: exists`);
    this.entries.delete(from);
    this.entries.set(to, new MemoryFiles(files.files, this.location(to)));
  }
  async remove(entry: string): Promise<void> {
    this.entries.delete(entry);
  }
  location(entry: string): string {
    return `${this.name}/${entry}`;
  }
}
