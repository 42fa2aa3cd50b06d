/**
 * The page's side of the worker protocol: fire-and-forget messages, requests answered by the
 * reply with the same id, and listeners for streamed replies.
 */
import type { Request, Reply } from './protocol.js';

type DistributiveOmit<T, K extends keyof any> = T extends unknown ? Omit<T, K> : never;
type WithId = Extract<Request, { id: number }>;
type Listener = (reply: Reply) => void;

export class WorkerClient {
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; done: Reply['status'][] }>();
  private listeners = new Set<Listener>();

  constructor(private readonly worker: Worker) {
    worker.onmessage = (e: MessageEvent<Reply>) => this.receive(e.data);
    worker.onerror = (e) => this.receive({ status: 'error', message: `worker error: ${e.message}` });
  }

  private receive(reply: Reply): void {
    for (const l of this.listeners) l(reply);
    const id = 'id' in reply ? reply.id : undefined;
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (!p) return;
    if (reply.status === 'error') {
      this.pending.delete(id);
      p.reject(new Error(reply.message));
    } else if (p.done.includes(reply.status)) {
      this.pending.delete(id);
      p.resolve(reply);
    }
  }

  /** Sends a message that expects no single answer (train, pause, ...). */
  send(msg: Exclude<Request, WithId>, transfer: Transferable[] = []): void {
    this.worker.postMessage(msg, transfer);
  }

  /** Sends a request and resolves with its final reply (one of `done`), rejects on its error. */
  request<S extends Reply['status']>(msg: DistributiveOmit<WithId, 'id'>, done: S[]): Promise<Extract<Reply, { status: S }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (r: Reply) => void, reject, done });
      this.worker.postMessage({ ...msg, id });
    });
  }

  /** Listens to every reply; returns a function that stops listening. */
  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
