/**
 * A local HTTP server with the Hugging Face Hub's file URL layout, for tests that must not reach
 * the network: `GET|HEAD /{owner}/{name}/resolve/{revision}/{file}`.
 *
 * It answers as the Hub does where WebTune's messages depend on it: 404 with X-Error-Code
 * RepoNotFound / RevisionNotFound / EntryNotFound, 401 with X-Error-Code GatedRepo for a gated
 * repo without the right token, Content-Length on every file (X-Linked-Size on HEAD for
 * .safetensors, as for LFS files). Files can be made to arrive truncated (a Content-Length
 * larger than the body, then the connection closes) or slowly (for cancellation tests).
 * Every answer carries CORS headers as the Hub's do, so a page on another origin (the demo in
 * a browser test) can read files, error codes and sizes; preflights (OPTIONS) get 204.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  files: Map<string, Uint8Array>;
  revisions?: string[]; // revisions served (all the same files); default ['main']
  gatedToken?: string; // gated: only requests with `Authorization: Bearer <gatedToken>` get files
  truncate?: Map<string, number>; // file -> bytes actually sent (Content-Length says the full size)
  slow?: Set<string>; // files sent in 4 KiB chunks, one every 20 ms
}

export interface LoggedRequest { method: string; path: string }

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly log: LoggedRequest[] = [];
  private server?: Server;
  endpoint = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.endpoint;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  /** Requests for `file` (a suffix of the path) with `method`. */
  count(file: string, method = 'GET'): number {
    return this.log.filter((r) => r.method === method && r.path.endsWith(`/${file}`)).length;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    this.log.push({ method: req.method ?? 'GET', path });
    res.setHeader('access-control-allow-origin', '*');
    res.setHeader('access-control-expose-headers', 'x-error-code, x-linked-size, content-length');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-methods': 'GET, HEAD', 'access-control-allow-headers': 'authorization, range', 'access-control-max-age': '600' });
      return void res.end();
    }
    const m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const error = (status: number, code: string) => {
      res.writeHead(status, { 'x-error-code': code, 'content-type': 'text/plain' });
      res.end(`${code}\n`);
    };
    if (!m) return error(404, 'RepoNotFound');
    const [, owner, name, rev, file] = m.map((s) => decodeURIComponent(s));
    const repo = this.repos.get(`${owner}/${name}`);
    if (!repo) return error(401, 'RepoNotFound'); // the Hub answers 401 so as not to reveal private repos
    if (repo.gatedToken !== undefined && req.headers.authorization !== `Bearer ${repo.gatedToken}`) return error(401, 'GatedRepo');
    if (!(repo.revisions ?? ['main']).includes(rev)) return error(404, 'RevisionNotFound');
    const bytes = repo.files.get(file);
    if (!bytes) return error(404, 'EntryNotFound');
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength) };
    if (req.method === 'HEAD') {
      if (file.endsWith('.safetensors')) headers['x-linked-size'] = String(bytes.byteLength);
      res.writeHead(200, headers);
      return void res.end();
    }
    res.writeHead(200, headers);
    const sent = repo.truncate?.get(file);
    if (sent !== undefined) {
      // Fewer bytes than announced, then the connection drops.
      res.write(bytes.subarray(0, sent), () => res.socket?.destroy());
      return;
    }
    if (repo.slow?.has(file)) {
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        const next = Math.min(at + 4096, bytes.byteLength);
        res.write(bytes.subarray(at, next));
        at = next;
        if (at >= bytes.byteLength) {
          clearInterval(timer);
          res.end();
        }
      }, 20);
      res.on('close', () => clearInterval(timer));
      return;
    }
    res.end(bytes);
  }
}
