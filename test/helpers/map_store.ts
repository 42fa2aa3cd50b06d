/**
 * BrowserStore's contract (save / load / list / rename / delete) on a Map, standing in for
 * IndexedDB in unit tests of browserFolder: each call replaces, loads, renames or deletes an
 * entry whole.
 */
import { MemoryFiles, type EntryStore, type StoredEntry } from '../../src/index.js';

export class MapStore implements EntryStore {
  readonly entries = new Map<string, Map<string, Uint8Array>>();
  async save(name: string, files: Map<string, Uint8Array>): Promise<StoredEntry> {
    this.entries.set(name, new Map(files));
    return { name, savedAt: '', files: [...files.keys()], bytes: 0, meta: {} };
  }
  async load(name: string): Promise<MemoryFiles> {
    const files = this.entries.get(name);
    if (!files) throw new Error(`Browser storage: no saved entry named "${name}"`);
    return new MemoryFiles(new Map(files), `browser storage/${name}`);
  }
  async list(): Promise<StoredEntry[]> {
    return [...this.entries.keys()].map((name) => ({ name, savedAt: '', files: [], bytes: 0, meta: {} }));
  }
  async rename(from: string, to: string): Promise<void> {
    const files = this.entries.get(from);
    if (!files) throw new Error(`Browser storage: no saved entry named "${from}"`);
    this.entries.delete(from);
    this.entries.set(to, files);
  }
  async delete(name: string): Promise<boolean> {
    return this.entries.delete(name);
  }
}
