/**
 * The experiments lab on the page: run history, experiments and blind votes, wired to the
 * stream of worker replies. main.ts calls three hooks: `trainStarted` when a run is sent,
 * `onReply` for every reply, `ready` once the worker is up. Each run becomes a RunRecord
 * (demo/lab/recorder.ts), stored in IndexedDB (demo/lab/history.ts) when it ends and again when
 * its before/after comparison arrives.
 */
import type { RunRecord, PairVote } from '../../src/index.js';
import type { WorkerClient } from '../client.js';
import type { Reply, TrainSettings } from '../protocol.js';
import { RunHistory } from '../lab/history.js';
import { newRun, recordAnswer, recordEval, recordScores, recordStep } from '../lab/recorder.js';
import { pageExperiments } from '../lab/experiments.js';
import { runsPanel } from './runs.js';
import { experimentsPanel } from './experiments.js';
import { votesPanel } from './votes.js';

export interface LabDeps {
  client: WorkerClient;
  /** The Training panel's full settings (template and mixture included). */
  settings(): TrainSettings;
  /** Starts a run the way the Start button does (charts reset, panels told). */
  startTraining(settings: TrainSettings): void;
  /** Runs the before/after comparison on `limit` held-out prompts (the compare panel shows it too). */
  compare(limit: number, maxNewTokens: number): Promise<void>;
  /** Draws these runs over each other on the charts. */
  overlay(runs: RunRecord[]): void;
}

export function labPanels(deps: LabDeps) {
  let runs: RunRecord[] = [];
  let current: RunRecord | undefined;
  /** The run whose model the page holds: before/after answers belong to it. */
  let latest: RunRecord | undefined;
  let runEnded: ((r: RunRecord | undefined) => void) | undefined;
  let historyOpen: Promise<RunHistory> | undefined;
  const history = () => (historyOpen ??= RunHistory.open());

  const save = async (r: RunRecord) => {
    try {
      await (await history()).putRun(r);
    } catch (e) {
      runsStatus(`Run history is not available in this browser: ${(e as Error).message}`);
    }
    if (!runs.some((x) => x.id === r.id)) runs.push(r);
    refresh();
  };
  const runsStatus = (text: string) => { document.getElementById('runs-status')!.textContent = text; };
  const refresh = () => {
    panelRuns.show(runs);
    votes.show(runs, votes.votes());
  };

  const panelRuns = runsPanel({
    async rename(id, name) {
      const r = runs.find((x) => x.id === id);
      if (r) { r.name = name; await save(r); }
    },
    async remove(id) {
      runs = runs.filter((x) => x.id !== id);
      await (await history()).deleteRun(id).catch(() => undefined);
      refresh();
      deps.overlay(runs.filter((r) => panelRuns.selected().includes(r.id)));
    },
    select(ids) { if (ids.length) deps.overlay(runs.filter((r) => ids.includes(r.id))); },
    votes: () => votes.votes(),
  });

  const experiments = experimentsPanel({
    base: deps.settings,
    experiments: () => pageExperiments(deps.settings().weights),
    runs: () => runs,
    async runOne(settings, name, tag, prompts) {
      const ended = new Promise<RunRecord | undefined>((resolve) => { runEnded = resolve; });
      startRun(settings, name, tag);
      const r = await ended;
      if (!r || prompts === 0) return r;
      try {
        await deps.compare(prompts, experiments.maxNewTokens());
      } catch {
        return undefined;
      }
      return r;
    },
    finished(ids) { panelRuns.selectOnly(ids); },
  });

  const votes = votesPanel({
    vote(v: PairVote) { void history().then((h) => h.addVote(v)).catch(() => undefined); },
  });

  function startRun(settings: TrainSettings, name: string, tag?: RunRecord['experiment']) {
    current = newRun(settings, name, tag);
    deps.startTraining(settings);
  }

  return {
    sections: [panelRuns.section, experiments.section, votes.section],
    /** A run was sent from the Training panel's Start button. */
    trainStarted(settings: TrainSettings) {
      current = newRun(settings, `run ${runs.length + 1}`);
    },
    /** Enables the experiments and loads the stored runs and votes. */
    async ready() {
      experiments.setup();
      try {
        const h = await history();
        runs = await h.listRuns();
        votes.show(runs, await h.listVotes());
        panelRuns.show(runs);
      } catch (e) {
        runsStatus(`Run history is not available in this browser: ${(e as Error).message}`);
      }
    },
    onReply(r: Reply) {
      switch (r.status) {
        case 'step': if (current) recordStep(current, r.step, r.loss, r.lr); break;
        case 'eval': if (current) recordEval(current, r.step, r.evalLoss); break;
        // A resumed run's steps before its checkpoint.
        case 'train-history':
          if (current) {
            for (const p of r.steps) recordStep(current, p.step, p.loss, p.lr);
            for (const e of r.evals) recordEval(current, e.step, e.evalLoss);
          }
          break;
        case 'train-status': {
          const running = r.state === 'running' || r.state === 'preparing' || r.state === 'paused' || r.state === 'idle';
          experiments.enable(!running);
          if (!current || running) break;
          const run = current;
          current = undefined;
          run.state = r.state;
          if (r.state === 'failed' && !run.curves.step.length) { runEnded?.(undefined); runEnded = undefined; break; }
          latest = run;
          void save(run).then(() => { runEnded?.(r.state === 'done' ? run : undefined); runEnded = undefined; });
          break;
        }
        case 'compare-row': if (latest) recordAnswer(latest, r.which, r.row); break;
        case 'compare-done': if (latest) { recordScores(latest, r.base, r.tuned); void save(latest); } break;
      }
    },
  };
}
