/**
 * The run history in IndexedDB (database "webtune-lab"): every run the page trains, and every
 * blind vote, so both survive a reload. Model weights are not kept here (the "Keep your work"
 * panel saves those); a run is its settings, curves, results and answers: a few kilobytes.
 *
 *   const h = await RunHistory.open();
 *   await h.putRun(run); await h.listRuns();   // oldest first
 *   await h.addVote(vote); await h.listVotes();
 */
import type { RunRecord, PairVote } from '../../src/index.js';

const DB = 'webtune-lab';
const RUNS = 'runs';
const VOTES = 'votes';

const done = <T>(req: IDBRequest<T>): Promise<T> => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
});

export class RunHistory {
  private constructor(private db: IDBDatabase) {}

  static async open(): Promise<RunHistory> {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(RUNS)) db.createObjectStore(RUNS, { keyPath: 'id' });
      if (!db.objectStoreNames.contains(VOTES)) db.createObjectStore(VOTES, { autoIncrement: true });
    };
    return new RunHistory(await done(req));
  }

  private store(name: string, mode: IDBTransactionMode): IDBObjectStore {
    return this.db.transaction(name, mode).objectStore(name);
  }

  async putRun(run: RunRecord): Promise<void> { await done(this.store(RUNS, 'readwrite').put(run)); }
  async deleteRun(id: string): Promise<void> { await done(this.store(RUNS, 'readwrite').delete(id)); }
  async listRuns(): Promise<RunRecord[]> {
    return ((await done(this.store(RUNS, 'readonly').getAll())) as RunRecord[]).sort((a, b) => a.createdAt - b.createdAt);
  }
  async addVote(vote: PairVote): Promise<void> { await done(this.store(VOTES, 'readwrite').add(vote)); }
  async listVotes(): Promise<PairVote[]> { return (await done(this.store(VOTES, 'readonly').getAll())) as PairVote[]; }
}
