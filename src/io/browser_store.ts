/**
 * Checkpoint directories kept in the browser's IndexedDB ("save to browser storage"): each
 * entry is a named set of files (config.json, model.safetensors, tokenizer files, an adapter...)
 * that loads back as a MemoryFiles source.
 *
 * Two object stores in one database:
 *   entries   {name, savedAt, files, bytes, meta}   one small record per entry, for listing
 *   files     key [entry name, file name] -> Uint8Array
 * Saving replaces an entry in one transaction: it is stored whole or not at all.
 *
 * Browser only (no Node imports); in Node there is no IndexedDB unless one is passed in.
 *
 * @example
 * const store = await BrowserStore.open();
 * const dir = new MemoryFiles();
 * await saveModel(model, dir);
 * await store.save('gpt2-nano-sft', dir.files, { steps: 200 });
 * const model2 = await loadModel(await store.load('gpt2-nano-sft'));
 */
import { MemoryFiles, checkFileName, type FileSource } from './files.js';
import type { FolderStorage } from './run_folder.js';

export interface StoredEntry {
  name: string;
  savedAt: string; // ISO 8601
  files: string[];
  bytes: number; // total size of the files
  meta: Record<string, unknown>; // free-form (base model, steps, final loss...), structured-cloneable
}

const DB_VERSION = 1;
const ENTRIES = 'entries';
const FILES = 'files';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function completion(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** Every key [name, file] of one entry: arrays sort after strings, so [name, []] bounds them all. */
const entryRange = (name: string) => IDBKeyRange.bound([name], [name, []]);

export class BrowserStore {
  private constructor(private readonly db: IDBDatabase, readonly dbName: string) {}

  /** Opens (creating on first use) the database `dbName`. `factory` defaults to the global indexedDB. */
  static async open(dbName = 'webtune', factory: IDBFactory | undefined = globalThis.indexedDB): Promise<BrowserStore> {
    if (!factory) throw new Error('Browser storage: IndexedDB is not available here (Node, or a browser with storage disabled)');
    const open = factory.open(dbName, DB_VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains(ENTRIES)) db.createObjectStore(ENTRIES, { keyPath: 'name' });
      if (!db.objectStoreNames.contains(FILES)) db.createObjectStore(FILES);
    };
    const blocked = new Promise<never>((_, reject) => {
      open.onblocked = () => reject(new Error(`Browser storage: database "${dbName}" is held open by another tab with an older version; close it and retry`));
    });
    try {
      return new BrowserStore(await Promise.race([request(open), blocked]), dbName);
    } catch (e) {
      throw new Error(`Browser storage: cannot open database "${dbName}" (${(e as Error)?.message ?? e})`);
    }
  }

  /** Stores `files` under `name`, replacing any entry of that name. */
  async save(name: string, files: Map<string, Uint8Array>, meta: Record<string, unknown> = {}): Promise<StoredEntry> {
    if (typeof name !== 'string' || name.trim() === '') throw new Error('Browser storage: an entry needs a non-empty name');
    let bytes = 0;
    for (const [file, data] of files) {
      checkFileName(file, `Browser storage entry "${name}":`);
      if (!(data instanceof Uint8Array)) throw new Error(`Browser storage entry "${name}": ${file} must be a Uint8Array`);
      bytes += data.byteLength;
    }
    const entry: StoredEntry = { name, savedAt: new Date().toISOString(), files: [...files.keys()].sort(), bytes, meta };
    const tx = this.db.transaction([ENTRIES, FILES], 'readwrite');
    const done = completion(tx);
    const store = tx.objectStore(FILES);
    store.delete(entryRange(name));
    for (const [file, data] of files) {
      // A view into a larger buffer (a zero-copy tensor) would clone the whole buffer: store just its bytes.
      const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
      store.put(own, [name, file]);
    }
    tx.objectStore(ENTRIES).put(entry);
    try {
      await done;
    } catch (e) {
      const err = e as DOMException | null;
      const why = err?.name === 'QuotaExceededError'
        ? `browser storage is full (${(bytes / 2 ** 20).toFixed(1)} MiB needed): delete saved entries or free disk space`
        : (err?.message ?? String(err));
      throw new Error(`Browser storage entry "${name}": not saved (${why})`);
    }
    return entry;
  }

  /** Every entry, most recently saved first (file contents are not read). */
  async list(): Promise<StoredEntry[]> {
    const tx = this.db.transaction(ENTRIES, 'readonly');
    const all = (await request(tx.objectStore(ENTRIES).getAll())) as StoredEntry[];
    return all.sort((a, b) => (a.savedAt < b.savedAt ? 1 : a.savedAt > b.savedAt ? -1 : 0));
  }

  /** The files of entry `name`, as a source (named "browser storage/<name>" in messages). */
  async load(name: string): Promise<MemoryFiles> {
    const tx = this.db.transaction([ENTRIES, FILES], 'readonly');
    const entryReq = request(tx.objectStore(ENTRIES).get(name));
    const keysReq = request(tx.objectStore(FILES).getAllKeys(entryRange(name)));
    const valuesReq = request(tx.objectStore(FILES).getAll(entryRange(name)));
    const [entry, keys, values] = await Promise.all([entryReq, keysReq, valuesReq]);
    if (!entry) throw new Error(`Browser storage: no saved entry named "${name}"`);
    const files = new Map<string, Uint8Array>();
    keys.forEach((k, i) => files.set((k as [string, string])[1], values[i] as Uint8Array));
    for (const f of (entry as StoredEntry).files) {
      if (!files.has(f)) throw new Error(`Browser storage entry "${name}": file ${f} is missing (storage was modified or partly cleared)`);
    }
    return new MemoryFiles(files, `browser storage/${name}`);
  }

  /**
   * Gives entry `from` the name `to`, in one transaction: the entry is under one name or the
   * other, whole, whatever moment the page is closed at. An entry named `to` is replaced.
   */
  async rename(from: string, to: string): Promise<void> {
    const tx = this.db.transaction([ENTRIES, FILES], 'readwrite');
    const done = completion(tx);
    const entries = tx.objectStore(ENTRIES), files = tx.objectStore(FILES);
    let missing = false;
    // Requests chained in callbacks (none awaited inside the transaction, which would let it close).
    files.delete(entryRange(to));
    const entryReq = entries.get(from);
    entryReq.onsuccess = () => {
      const entry = entryReq.result as StoredEntry | undefined;
      if (!entry) { missing = true; tx.abort(); return; }
      entries.delete(from);
      entries.put({ ...entry, name: to });
    };
    const cursorReq = files.openCursor(entryRange(from));
    cursorReq.onsuccess = () => {
      const cursor = cursorReq.result;
      if (!cursor) return;
      files.put(cursor.value, [to, (cursor.key as [string, string])[1]]);
      cursor.delete();
      cursor.continue();
    };
    try {
      await done;
    } catch (e) {
      throw new Error(missing ? `Browser storage: no saved entry named "${from}"` : `Browser storage entry "${from}": not renamed to "${to}" (${(e as Error | null)?.message ?? e})`);
    }
  }

  /** Removes entry `name`; false when there was none. */
  async delete(name: string): Promise<boolean> {
    const tx = this.db.transaction([ENTRIES, FILES], 'readwrite');
    const done = completion(tx);
    // All requests issued at once (none awaited inside the transaction, which would let it close).
    const existed = request(tx.objectStore(ENTRIES).getKey(name));
    tx.objectStore(ENTRIES).delete(name);
    tx.objectStore(FILES).delete(entryRange(name));
    await done;
    return (await existed) !== undefined;
  }

  close(): void {
    this.db.close();
  }
}

/** What browserFolder needs of a store of named file sets (BrowserStore; a Map in tests). */
export type EntryStore = Pick<BrowserStore, 'save' | 'load' | 'list' | 'rename' | 'delete'>;

/**
 * A run folder (run_folder.ts) in browser storage: entry E of folder F is the stored entry
 * "F/E". An entry is written in memory and stored in one transaction when closed, so a closed
 * tab never leaves half an entry; a rename is one transaction too.
 *
 * @example
 *   const run = new RunFolder(browserFolder(await BrowserStore.open(), 'runs/gpt2-sft'));
 *   await run.saveCheckpoint(trainer.step, (sink) => saveTrainerCheckpoint(trainer, sink), { keep: 2 });
 */
export function browserFolder(store: EntryStore, folder: string): FolderStorage {
  const key = (entry: string) => `${folder}/${entry}`;
  const name = `browser storage/${folder}`;
  return {
    name,
    list: async () => (await store.list()).map((e) => e.name).filter((n) => n.startsWith(`${folder}/`)).map((n) => n.slice(folder.length + 1)),
    async create(entry) {
      await store.delete(key(entry));
      const files = new MemoryFiles();
      return { write: (file, data) => files.write(file, data), close: async () => { await store.save(key(entry), files.files); } };
    },
    open(entry): FileSource {
      let loaded: Promise<MemoryFiles> | undefined;
      const files = () => (loaded ??= store.load(key(entry)));
      return {
        name: `${name}/${entry}`,
        read: async (file) => (await files()).read(file),
        readText: async (file) => (await files()).readText(file),
        exists: async (file) => (await files()).exists(file),
      };
    },
    rename: (from, to) => store.rename(key(from), key(to)),
    remove: async (entry) => { await store.delete(key(entry)); },
    location: (entry) => `${name}/${entry}`,
  };
}

/**
 * Asks the browser to keep this site's storage under storage pressure (it may say no); returns
 * whether storage is persistent. Without it, a browser may evict saved models silently.
 */
export async function requestPersistentStorage(): Promise<boolean> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (!storage?.persist) return false;
  return (await storage.persisted()) || storage.persist();
}
