/**
 * The page's run folder: while the page trains, the run keeps resumable checkpoints in browser
 * storage, so a closed or crashed tab loses at most the steps since the last one. It is the
 * library's RunFolder (the one `webtune train --out` keeps on disk) over browserFolder:
 *
 *   runs/current/checkpoint-<step>   saveTrainerCheckpoint's files (model, adapter variables, AdamW
 *                                    moments, trainer_state.json: step, data position, log history),
 *                                    webtune_page_run.json (what the page needs to rebuild the run:
 *                                    its settings and the uploaded and grown rows it reads), the
 *                                    tokenizer files when the run does not use the bundled tokenizer,
 *                                    and RunFolder's webtune_train_args.json
 *
 * A new run removes what an earlier one left; a run that ends (done, or stopped by the user)
 * removes its checkpoints; a run cut short leaves them, and the page offers to resume the newest.
 *
 * @example
 *   const run = new PageRun(browserFolder(store, RUN_FOLDER));
 *   await run.begin();
 *   await run.save(trainer, record);                 // every N steps, between two steps
 *   const cut = await run.interrupted();             // after a reload: { step, maxSteps, record, checkpoint }
 *   await run.finish();                              // the run ended: nothing is left to resume
 */
import {
  BrowserStore, browserFolder, RunFolder, saveTrainerCheckpoint, saveTokenizerFiles, type FolderStorage, type CheckpointEntry, type FileSource, type Trainer,
  type Tokenizer, type ChatTemplate, type ModelConfig, type Example,
} from '../../src/index.js';
import type { TrainSettings } from '../protocol.js';

/** The page's run folder in browser storage (one run at a time: the page trains one). */
export const RUN_FOLDER = 'runs/current';
/** Checkpoints kept: the newest two, so a save cut short never leaves the run with none. */
export const KEEP_CHECKPOINTS = 2;
export const PAGE_RUN_FILE = 'webtune_page_run.json';

/** What the page needs, beside the trainer's checkpoint, to rebuild a run exactly. */
export interface PageRunRecord {
  /** The run's settings; the template as the source it trained with (a model's own template needs that model loaded). */
  settings: TrainSettings;
  /** The starting model's name (the adapter's base model, for a LoRA run) and the steps of the run. */
  startName: string;
  maxSteps: number;
  /** The rows the mixture reads beside the bundled families: the upload (all of it: its split is seeded) and the grown rows. */
  uploaded: Example[];
  grown: Example[];
}

/** An interrupted run: its newest complete checkpoint and the record to rebuild it with. */
export interface InterruptedRun {
  step: number;
  maxSteps: number;
  record: PageRunRecord;
  checkpoint: FileSource;
  /** Where the checkpoint is, for messages ("browser storage/runs/current/checkpoint-10"). */
  location: string;
}

/** A run's own tokenizer (not the bundled one) and template, saved with each checkpoint. */
export interface RunTokenizer { tokenizer: Tokenizer; template: ChatTemplate; config: ModelConfig }

export class PageRun {
  readonly folder: RunFolder;

  constructor(storage: FolderStorage) {
    this.folder = new RunFolder(storage);
  }

  /** A new run starts: the checkpoints of an earlier one (and what a cut-short save left) are removed. */
  async begin(): Promise<void> {
    await this.folder.cleanUp();
    await this.folder.removeCheckpoints();
  }

  /** Saves checkpoint-<step> (call it between steps), keeping the newest KEEP_CHECKPOINTS. */
  async save(trainer: Trainer, record: PageRunRecord, own?: RunTokenizer): Promise<CheckpointEntry> {
    return this.folder.saveCheckpoint(trainer.step, async (sink) => {
      await saveTrainerCheckpoint(trainer, sink);
      await sink.write(PAGE_RUN_FILE, JSON.stringify(record));
      if (own) await saveTokenizerFiles(sink, own.tokenizer, own.template, own.config);
    }, { keep: KEEP_CHECKPOINTS, record: { page: true, step: trainer.step, max_steps: record.maxSteps } });
  }

  /** The run that was cut short, when there is one: its newest complete checkpoint. */
  async interrupted(): Promise<InterruptedRun | undefined> {
    await this.folder.cleanUp();
    const latest = await this.folder.latest();
    if (!latest) return undefined;
    const checkpoint = this.folder.storage.open(latest.name);
    const record = JSON.parse(await checkpoint.readText(PAGE_RUN_FILE)) as PageRunRecord;
    return { step: latest.step, maxSteps: record.maxSteps, record, checkpoint, location: latest.location };
  }

  /** The run ended: nothing is left to resume. */
  async finish(): Promise<void> {
    await this.folder.removeCheckpoints();
  }
}

/** The page's run folder in this browser's storage; close() when done with it (an open checkpoint reads from it). */
export async function openPageRun(): Promise<{ run: PageRun; close(): void }> {
  const store = await BrowserStore.open();
  return { run: new PageRun(browserFolder(store, RUN_FOLDER)), close: () => store.close() };
}
