/**
 * A checkpoint as one ZIP file (download) and back (upload), through fflate: entries are written
 * stored (level 0; safetensors weights barely compress, so compressing costs time for little),
 * and an uploaded archive may be stored or deflated (what an operating system's "compress" makes).
 */
import { zipSync, unzipSync } from 'fflate';

/** A ZIP archive of `files`, each stored uncompressed. */
export function zipStore(files: Array<{ name: string; bytes: Uint8Array }>): Uint8Array {
  return zipSync(Object.fromEntries(files.map((f) => [f.name, [f.bytes, { level: 0 }]])));
}

/** The files of a ZIP archive (stored or deflated); a zipped folder ("my-model/config.json") reads like the folder itself. */
export function unzipStore(bytes: Uint8Array, archive = 'archive.zip'): Map<string, Uint8Array> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new Error(`${archive}: not a readable ZIP archive (${(e as Error).message}); unzip it and pick its files instead`);
  }
  const out = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(entries)) {
    if (name.endsWith('/')) continue;   // a folder entry
    out.set(name.includes('/') ? name.slice(name.indexOf('/') + 1) : name, data);
  }
  return out;
}
