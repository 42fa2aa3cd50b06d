/**
 * A cache for files downloaded from a model hub, keyed by the resolved URL (which includes the
 * revision), so that a second visit loads a model without the network.
 *
 *   browser   Cache Storage (`caches.open('webtune-hub-v1')`): survives reloads, shared by tabs,
 *             cleared with `clearHubCache()` or the browser's site-data settings
 *   Node      no cache by default (`typeof caches === 'undefined'`); pass a `MemoryHubCache` to
 *             keep files for the life of the process (tests, a server loading one model twice)
 *
 * Only complete, successful downloads are stored: hubSource puts a file after its body arrived
 * whole (the byte count equals Content-Length) and never stores an HTTP error. A file the hub
 * answered 404 for is remembered as absent (an empty marker under `<url>?webtune-absent`), used only
 * when the network is unreachable, so an offline visit can skip optional files
 * (generation_config.json) it knows are not there.
 *
 * Kept over a library: Cache Storage keyed by the resolved URL is the whole cache (a few dozen
 * lines); @huggingface/hub's cache is a Node file-system layout the browser cannot use.
 *
 * A branch name such as 'main' moves when the repository is updated; the cache keeps what was
 * downloaded. Pin a commit hash as the revision to load the same files every time.
 *
 * @example
 * const cache = defaultHubCache();               // Cache Storage in a browser, undefined in Node
 * await hubSource('openai-community/gpt2', { cache }).read('config.json');
 * await clearHubCache();                          // forget every downloaded file
 */

/** Name of the Cache Storage bucket; the version suffix changes if the key layout ever does. */
export const HUB_CACHE_NAME = 'webtune-hub-v1';

export interface HubCache {
  /** The bytes stored for `url`, or undefined. */
  get(url: string): Promise<Uint8Array | undefined>;
  /** Whether bytes are stored for `url` (without reading them). */
  has(url: string): Promise<boolean>;
  /** Stores a complete download. */
  put(url: string, bytes: Uint8Array): Promise<void>;
  /** Whether `url` was recorded absent (the hub answered 404). */
  isAbsent(url: string): Promise<boolean>;
  /** Records that the hub answered 404 for `url`; a later put() of it clears the record. */
  markAbsent(url: string): Promise<void>;
  /** Forgets everything. */
  clear(): Promise<void>;
}

// A query, not a fragment: Cache Storage ignores fragments when matching, so `<url>#absent`
// would be the file's own entry (deleting the marker deleted the file it was put for).
const absentKey = (url: string) => `${url}${url.includes('?') ? '&' : '?'}webtune-absent`;

/** Files held in a Map for the life of the process (Node, tests). */
export class MemoryHubCache implements HubCache {
  readonly files = new Map<string, Uint8Array>();
  readonly absent = new Set<string>();
  async get(url: string) {
    return this.files.get(url);
  }
  async has(url: string) {
    return this.files.has(url);
  }
  async put(url: string, bytes: Uint8Array) {
    this.files.set(url, bytes);
    this.absent.delete(url);
  }
  async isAbsent(url: string) {
    return this.absent.has(url);
  }
  async markAbsent(url: string) {
    this.absent.add(url);
  }
  async clear() {
    this.files.clear();
    this.absent.clear();
  }
}

/** The subset of the Cache Storage API used here (window.caches, or a worker's). */
interface CacheStorageLike {
  open(name: string): Promise<{
    match(key: string): Promise<Response | undefined>;
    put(key: string, res: Response): Promise<void>;
    delete(key: string): Promise<boolean>;
  }>;
  delete(name: string): Promise<boolean>;
}

const cacheStorage = (): CacheStorageLike | undefined =>
  typeof caches === 'undefined' ? undefined : (caches as unknown as CacheStorageLike);

/** A HubCache over the browser's Cache Storage, bucket `name`. */
export function cacheStorageHubCache(name = HUB_CACHE_NAME, storage: CacheStorageLike | undefined = cacheStorage()): HubCache {
  if (!storage) throw new Error('Cache Storage is not available here (typeof caches === "undefined"): use MemoryHubCache, or no cache');
  const open = () => storage.open(name);
  return {
    async get(url) {
      const res = await (await open()).match(url);
      if (!res) return undefined;
      return new Uint8Array(await res.arrayBuffer());
    },
    async has(url) {
      return (await (await open()).match(url)) !== undefined;
    },
    async put(url, bytes) {
      const cache = await open();
      await cache.put(url, new Response(bytes as BodyInit, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) } }));
      await cache.delete(absentKey(url));
    },
    async isAbsent(url) {
      return (await (await open()).match(absentKey(url))) !== undefined;
    },
    async markAbsent(url) {
      await (await open()).put(absentKey(url), new Response('', { headers: { 'x-webtune-absent': '1' } }));
    },
    async clear() {
      await storage.delete(name);
    },
  };
}

/** Cache Storage where it exists (browsers, workers), otherwise undefined (Node: no cache). */
export function defaultHubCache(): HubCache | undefined {
  return cacheStorage() ? cacheStorageHubCache() : undefined;
}

/**
 * Deletes every file WebTune downloaded from a hub into Cache Storage, and `also` (a
 * MemoryHubCache, say) when given. Returns whether a Cache Storage bucket was deleted.
 */
export async function clearHubCache(also?: HubCache): Promise<boolean> {
  await also?.clear();
  const storage = cacheStorage();
  return storage ? storage.delete(HUB_CACHE_NAME) : false;
}
