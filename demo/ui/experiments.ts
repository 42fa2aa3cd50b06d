/**
 * Panel 7c: one-click experiments. Pick a lesson's experiment; its arms differ in one setting and
 * each arm runs over several seeds (every other setting comes from the Training panel; steps,
 * seeds and held-out prompts are set here and may be tiny). The runs are queued one after the
 * other, each scored on the same held-out prompts, and the result says whether the difference
 * between the arms is larger than the spread between seeds.
 */
import { planExperiment, experimentResult, describeComparison, type RunRecord, type ExperimentMetric } from '../../src/index.js';
import type { TrainSettings } from '../protocol.js';
import type { PageExperiment } from '../lab/experiments.js';
import { h, panel, replace, field, fmt } from './dom.js';

const METRIC_NAMES: Record<ExperimentMetric, string> = { eval_loss: 'eval loss', final_loss: 'final train loss', accuracy_after: 'held-out accuracy' };

export interface ExperimentActions {
  /** The Training panel's settings (with template and mixture): the experiment's base. */
  base(): TrainSettings;
  experiments(): PageExperiment[];
  /** Trains one run (and scores it on `prompts` held-out prompts); resolves with its record, undefined when it failed or was stopped. */
  runOne(settings: TrainSettings, name: string, tag: NonNullable<RunRecord['experiment']>, prompts: number): Promise<RunRecord | undefined>;
  /** Every stored run (for the result view). */
  runs(): RunRecord[];
  finished(runIds: string[]): void;
}

export function experimentsPanel(actions: ExperimentActions) {
  const pick = h('select', { id: 'exp-pick' }) as HTMLSelectElement;
  const seeds = h('input', { id: 'exp-seeds', type: 'number', min: 1, max: 8, value: 2 }) as HTMLInputElement;
  const steps = h('input', { id: 'exp-steps', type: 'number', min: 1, value: 60 }) as HTMLInputElement;
  const prompts = h('input', { id: 'exp-prompts', type: 'number', min: 0, max: 100, value: 9 }) as HTMLInputElement;
  const maxNew = h('input', { id: 'exp-max-new', type: 'number', min: 1, max: 128, value: 16 }) as HTMLInputElement;
  const lesson = h('p', { id: 'exp-lesson', class: 'muted' });
  const run = h('button', { id: 'exp-run', type: 'button', class: 'primary', disabled: true, onclick: () => void start() }, 'Run the experiment');
  const stop = h('button', { id: 'exp-stop', type: 'button', disabled: true, onclick: () => { stopping = true; } }, 'Stop after this run');
  const status = h('p', { id: 'exp-status', 'data-state': 'idle' }, 'Not started.');
  const result = h('div', { id: 'exp-result' });
  let list: PageExperiment[] = [];
  let stopping = false;
  let maxNewTokens = 16;

  const showLesson = () => { const e = list.find((x) => x.id === pick.value); lesson.textContent = e ? `${e.lesson ?? ''} Judged on ${METRIC_NAMES[e.metric]}.` : ''; };
  pick.addEventListener('change', showLesson);

  const { section } = panel('panel-experiments', '7c · Experiments', [
    h('p', {}, 'Each experiment changes one setting and keeps everything else as the Training panel has it. A single pair of runs cannot tell an effect from luck: the seed decides the initial weights, the batch order and the noise, and two seeds of the same settings already differ. So every arm runs over several seeds.'),
    h('p', {}, 'The verdict compares the difference between the arms\' means with the spread between seeds (the sum of the two arms\' standard deviations over seeds). Larger is a hint of a real effect, not a proof; within the spread means this many seeds cannot tell.'),
    h('p', {}, 'Tiny settings (a few steps, one seed) finish fast and show how it works; the conclusions need more.'),
  ],
  h('div', { class: 'row' }, field('Experiment', pick), field('Seeds per arm', seeds), field('Steps per run', steps),
    field('Held-out prompts per run (0: none)', prompts), field('Max new tokens', maxNew)),
  lesson, h('div', { class: 'buttons' }, run, stop), status, result);

  async function start() {
    const exp = list.find((x) => x.id === pick.value);
    if (!exp) return;
    const nSeeds = Math.max(1, Math.round(Number(seeds.value) || 1));
    const base: TrainSettings = { ...actions.base(), steps: Math.max(1, Math.round(Number(steps.value) || 1)) };
    // An evaluation at the end of every run: its eval loss is the experiment's default metric.
    base.evalEvery = base.steps;
    const plan = planExperiment(exp, base, Array.from({ length: nSeeds }, (_, i) => base.seed + i));
    const nPrompts = Math.max(0, Math.round(Number(prompts.value) || 0));
    maxNewTokens = Math.max(1, Math.round(Number(maxNew.value) || 16));
    run.disabled = true; stop.disabled = false; stopping = false;
    status.dataset.state = 'running';
    replace(result);
    const ids: string[] = [];
    for (const [i, p] of plan.entries()) {
      if (stopping) break;
      status.textContent = `Run ${i + 1} of ${plan.length}: ${exp.id} = ${p.arm}, seed ${p.seed}…`;
      status.dataset.run = String(i + 1);
      const r = await actions.runOne(p.settings, `${exp.id}: ${p.arm} · seed ${p.seed}`, { id: exp.id, title: exp.title, arm: p.arm, setting: exp.setting }, nPrompts);
      if (!r) { stopping = true; status.textContent = `Run ${i + 1} did not finish: the experiment stopped.`; break; }
      ids.push(r.id);
    }
    run.disabled = false; stop.disabled = true;
    status.dataset.state = ids.length === plan.length ? 'done' : 'stopped';
    if (ids.length === plan.length) status.textContent = `Done: ${plan.length} runs.`;
    showResult(exp, ids);
    actions.finished(ids);
  }

  function showResult(exp: PageExperiment, ids: string[]) {
    const runs = actions.runs().filter((r) => ids.includes(r.id));
    const res = experimentResult(exp, runs, exp.metric);
    const c = res.comparison;
    result.dataset.verdict = c.verdict;
    const perArm = res.arms;
    replace(result,
      h('h3', {}, `${exp.title}: ${METRIC_NAMES[exp.metric]}`),
      h('table', { id: 'exp-arms', class: 'grid' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Arm'), h('th', {}, 'Seeds'), h('th', {}, 'Mean'), h('th', {}, 'Std over seeds'), h('th', {}, 'Min – max'))),
        h('tbody', {}, ...perArm.map((a) => h('tr', { 'data-arm': a.label }, h('td', {}, a.label), h('td', { class: 'num' }, a.stats.n),
          h('td', { class: 'num' }, fmt(a.stats.mean, 4)), h('td', { class: 'num' }, a.stats.n > 1 ? fmt(a.stats.std, 4) : '—'),
          h('td', { class: 'num' }, a.stats.n ? `${fmt(a.stats.min, 4)} – ${fmt(a.stats.max, 4)}` : '—'))))),
      h('p', { id: 'exp-verdict', class: c.verdict === 'larger' ? 'ok' : 'muted' },
        `${exp.arms.at(-1)!.label} (B) vs ${exp.arms[0].label} (A): ${describeComparison(c, 4)}.`,
        exp.arms.length > 2 ? ` The middle arm${exp.arms.length > 3 ? 's are' : ' is'} in the table.` : ''),
      exp.metric === 'accuracy_after' && runs.every((r) => !r.scores) ? h('p', { class: 'warn' }, 'No held-out prompts were answered (0 prompts per run): there is no accuracy to compare. Set some prompts, or judge by the curves.') : null);
  }

  return {
    section,
    /** Fills the experiment list (when the dataset's families are known) and enables the button. */
    setup() {
      list = actions.experiments();
      replace(pick, ...list.map((e) => h('option', { value: e.id }, e.title)));
      showLesson();
      run.disabled = false;
    },
    enable(on: boolean) { if (status.dataset.state !== 'running') run.disabled = !on; },
    maxNewTokens: () => maxNewTokens,
  };
}
