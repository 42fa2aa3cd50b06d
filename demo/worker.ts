/**
 * The demo's worker: every tensor lives here (backend, model, trainer, generation, storage),
 * so the page's main thread only draws. It speaks the protocol of protocol.ts: `{type}` in,
 * `{status}` out. The trainer yields to the event loop between steps, so pause/stop and the
 * template builder's requests are answered while a run goes on.
 *
 *   worker/state.ts         the page's state: one WorkerState every handler reads and changes
 *   worker/handlers/*.ts    one table of handlers per panel, by request type
 *   worker/page_run.ts      the run folder in browser storage a run keeps its checkpoints in
 */
import type { Request } from './protocol.js';
import { post, WorkerState, type Handlers } from './worker/state.js';
import { initHandlers } from './worker/handlers/init.js';
import { templateHandlers } from './worker/handlers/template.js';
import { dataHandlers } from './worker/handlers/data.js';
import { trainHandlers } from './worker/handlers/train.js';
import { generateHandlers } from './worker/handlers/generate.js';
import { storeHandlers } from './worker/handlers/store.js';
import { hubHandlers } from './worker/handlers/hub.js';
import { growHandlers } from './worker/handlers/grow.js';

const state = new WorkerState();

/** Every request type has exactly one handler (the type checker holds the table to the protocol). */
const handlers: Handlers<Request['type']> = {
  ...initHandlers, ...templateHandlers, ...dataHandlers, ...trainHandlers, ...generateHandlers, ...storeHandlers, ...hubHandlers, ...growHandlers,
};

async function handle(msg: Request): Promise<void> {
  await (handlers[msg.type] as (m: Request, s: WorkerState) => Promise<void> | void)(msg, state);
}

self.onmessage = (e: MessageEvent<Request>) => {
  const msg = e.data;
  handle(msg).catch((err: unknown) => {
    const id = 'id' in msg ? msg.id : undefined;
    post({ status: 'error', id, message: err instanceof Error ? err.message : String(err) });
  });
};
