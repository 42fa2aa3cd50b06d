/**
 * Panel 4b: grow your own data. The loaded model (the bundled base, a trained one, or a Hub model
 * from "Bring your own base model") writes new instructions with Self-Instruct or rewrites seed
 * instructions with Evol-Instruct; every candidate is shown with the filter verdict and why, the
 * user keeps or drops each one, and the kept rows join the training mixture with their own weight.
 */
import type { GrowCandidate, GrowStats, GrownRow, EvolOperation } from '../../src/index.js';
import type { GrowSettings } from '../protocol.js';
import { h, panel, replace, field, fmtCount } from './dom.js';

export interface GrowActions {
  start(settings: GrowSettings): void;
  stop(): void;
  /** Adds these rows to the training mixture (replacing earlier grown rows). */
  use(rows: GrownRow[]): void;
}

const OPERATIONS: Array<[EvolOperation, string]> = [
  ['constraints', 'add a constraint'], ['deepen', 'deepen'], ['concretize', 'concretize'], ['reasoning', 'more reasoning steps'], ['breadth', 'in breadth (a new, rarer task)'],
];

/** The papers' sampling settings per method. */
const DEFAULTS = {
  'self-instruct': { temperature: 0.7, topP: 0.5, maxNewTokens: 64 },
  'evol-instruct': { temperature: 1, topP: 0.95, maxNewTokens: 64 },
} as const;

/** Below this many parameters, the warning says plainly what to expect. */
const SMALL_MODEL = 100e6;

export function growPanel(actions: GrowActions) {
  const num = (id: string, value: number, step: number, min = 0) => h('input', { id, type: 'number', min, step, value }) as HTMLInputElement;
  const method = h('select', { id: 'grow-method' },
    h('option', { value: 'self-instruct' }, 'Self-Instruct (new tasks from a few examples)'),
    h('option', { value: 'evol-instruct' }, 'Evol-Instruct (rewrite seeds to be harder)')) as HTMLSelectElement;
  const format = h('select', { id: 'grow-format' },
    h('option', { value: 'completion' }, 'plain text (base models)'),
    h('option', { value: 'chat' }, 'chat template (instruct models)')) as HTMLSelectElement;
  const n = num('grow-n', 4, 1, 1);
  const temperature = num('grow-temperature', 0.7, 0.05);
  const topP = num('grow-top-p', 0.5, 0.05);
  const maxNew = num('grow-max-new', 64, 8, 1);
  const answerMax = num('grow-answer-max', 32, 8, 1);
  const fewShot = num('grow-few-shot', 8, 1, 1);
  const maxPrompts = num('grow-max-prompts', 20, 1, 1);
  const rounds = num('grow-rounds', 4, 1, 1);
  const seeds = h('select', { id: 'grow-seeds' }, h('option', { value: 'bundled' }, 'the bundled training set'), h('option', { value: 'upload' }, 'your uploaded rows')) as HTMLSelectElement;
  const seedCount = num('grow-seed-count', 18, 1, 1);
  const seed = num('grow-seed', 0, 1);
  const ops = OPERATIONS.map(([op, label]) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: op, checked: true, class: 'grow-op' }), ` ${label}`));
  const opBoxes = () => ops.map((l) => l.querySelector('input') as HTMLInputElement);
  const selfFields = h('div', { class: 'row' }, field('Tasks per prompt', fewShot), field('Most prompts', maxPrompts));
  const evolFields = h('div', { class: 'row', hidden: true }, field('Rounds', rounds), h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Operations'), h('div', { id: 'grow-ops', class: 'row' }, ...ops)));
  method.addEventListener('change', () => {
    const d = DEFAULTS[method.value as keyof typeof DEFAULTS];
    temperature.value = String(d.temperature);
    topP.value = String(d.topP);
    maxNew.value = String(d.maxNewTokens);
    selfFields.hidden = method.value !== 'self-instruct';
    evolFields.hidden = method.value !== 'evol-instruct';
  });

  const warning = h('p', { id: 'grow-warning', class: 'warn' });
  const start = h('button', { id: 'grow-start', type: 'button', class: 'primary', disabled: true, onclick: () => actions.start(settings()) }, 'Generate');
  const stop = h('button', { id: 'grow-stop', type: 'button', disabled: true, onclick: () => actions.stop() }, 'Stop');
  const status = h('p', { id: 'grow-status', class: 'muted', 'data-state': 'idle' });
  const stats = h('p', { id: 'grow-stats', class: 'grow-stats' });
  const list = h('div', { id: 'grow-candidates' });
  const weight = num('grow-weight', 0.5, 0.05);
  const use = h('button', { id: 'grow-use', type: 'button', disabled: true, onclick: () => actions.use(keptRows()) }, 'Add kept rows to the training mixture');
  const used = h('p', { id: 'grow-used', class: 'muted', 'data-rows': 0 }, 'No grown rows in the training mixture yet.');
  let usedRows = 0;
  const candidates: Array<{ c: GrowCandidate; keep: HTMLInputElement }> = [];

  const { section } = panel('panel-grow', '4b · Grow data', [
    h('p', {}, 'A third way to get instruction data, beside templates and people: let a model write it. Self-Instruct shows the model eight tasks (six seeds, two of its own once it has some) and lets it continue the list; Evol-Instruct asks it to rewrite a seed into a harder task (add a constraint, deepen, concretize, ask for more reasoning) or a new, rarer one.'),
    h('p', {}, 'Every candidate passes filters, and you see each verdict: malformed output (no task, cut off), too short or long, tasks a text model cannot do (images, files), near-duplicates (ROUGE-L above 0.7 with an earlier instruction), and Evol-Instruct\'s eliminations (no change, copied the prompt, a refusal, an empty answer).'),
    h('p', {}, 'The papers used GPT-3 and ChatGPT. A small model writes much weaker data: read the rows before you keep them.'),
  ],
  warning,
  h('div', { class: 'row' }, field('Method', method), field('Rows to keep', n), field('Prompt format', format), field('Seed tasks from', seeds), field('Seed tasks', seedCount)),
  h('div', { class: 'row' }, field('Temperature', temperature), field('Top-p', topP), field('Max new tokens', maxNew), field('Answer max new tokens', answerMax, 'answers are greedy'), field('Seed', seed)),
  selfFields, evolFields,
  h('div', { class: 'buttons' }, start, stop), status, stats, list,
  h('h3', {}, 'Into the training mixture'),
  h('div', { class: 'row' }, field('Mixture weight of the grown rows', weight), use), used);

  function settings(): GrowSettings {
    return {
      method: method.value as GrowSettings['method'], n: Number(n.value), promptFormat: format.value as GrowSettings['promptFormat'],
      temperature: Number(temperature.value), topP: Number(topP.value), maxNewTokens: Number(maxNew.value), answerMaxNewTokens: Number(answerMax.value),
      fewShot: Number(fewShot.value), maxPrompts: Number(maxPrompts.value),
      operations: opBoxes().filter((b) => b.checked).map((b) => b.value as EvolOperation), rounds: Number(rounds.value),
      seeds: seeds.value as GrowSettings['seeds'], seedCount: Number(seedCount.value), seed: Number(seed.value),
    };
  }

  function keptRows(): GrownRow[] {
    return candidates.filter((x) => x.keep.checked && x.c.row).map((x) => x.c.row!);
  }

  function showStats(s: GrowStats) {
    const drops = Object.entries(s.dropped).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    stats.dataset.kept = String(s.kept);
    stats.dataset.candidates = String(s.candidates);
    stats.dataset.malformed = String(s.malformed);
    stats.dataset.acceptance = String(s.acceptanceRate);
    replace(stats, h('b', {}, `Acceptance rate ${(100 * s.acceptanceRate).toFixed(1)}%`),
      `: ${s.kept} of ${s.candidates} candidates kept by the filters, from ${s.prompts} prompts and ${s.answers} answers. `,
      `${s.malformed} malformed outputs.`, drops ? ` Dropped: ${drops}.` : '');
  }

  function candidateView(c: GrowCandidate): HTMLElement {
    const keep = h('input', { type: 'checkbox', class: 'grow-keep', checked: c.kept, disabled: !c.row }) as HTMLInputElement;
    keep.addEventListener('change', () => { card.dataset.keep = keep.checked ? '1' : '0'; });
    candidates.push({ c, keep });
    const origin = [c.operation ? `${c.operation}, round ${c.round}` : '', `from ${c.parents.slice(0, 8).join(', ')}`].filter(Boolean).join(' · ');
    const card = h('div', { class: `grow-candidate ${c.kept ? 'kept' : 'dropped'}`, 'data-verdict': c.verdict, 'data-kept': c.kept ? '1' : '0', 'data-keep': c.kept ? '1' : '0', 'data-has-row': c.row ? '1' : '0' },
      h('div', { class: 'grow-head' },
        h('label', { class: 'check', title: c.row ? 'keep this row' : 'nothing to keep: it has no answer' }, keep, ' keep'),
        h('span', { class: `verdict ${c.kept ? 'ok' : 'warn'}` }, c.kept ? 'kept' : `dropped: ${c.verdict}`),
        c.reason ? h('span', { class: 'reason' }, ` — ${c.reason}`) : null,
        h('span', { class: 'provenance' }, ` ${c.id} · ${origin}`)),
      c.instruction ? h('div', { class: 'msg role-user' }, h('b', {}, 'user: '), c.instruction) : null,
      c.answer !== undefined ? h('div', { class: 'msg role-assistant' }, h('b', {}, 'assistant: '), c.answer) : null,
      h('details', {}, h('summary', {}, 'model output and prompt'), h('pre', { class: 'grow-raw' }, c.raw), h('pre', { class: 'grow-prompt' }, c.prompt)));
    return card;
  }

  return {
    section,
    settings,
    /** The model the panel will use: the warning follows it, and the prompt format when `instruct` is given. */
    useModel(name: string, params: number, instruct?: boolean) {
      if (instruct !== undefined) format.value = instruct ? 'chat' : 'completion';
      replace(warning, params < SMALL_MODEL
        ? `The current model, ${name}, has ${fmtCount(params)} parameters. A model this small writes weak data: expect broken or repeated instructions and wrong answers, and read every row before keeping it. A Hub instruct model (SmolLM2-360M-Instruct or larger) does much better.`
        : `The current model is ${name} (${fmtCount(params)} parameters). Even good models write wrong answers: read the rows before keeping them.`);
      warning.dataset.params = String(params);
    },
    enable(on: boolean) { start.disabled = !on; },
    started(model: string, seedCount: number) {
      candidates.length = 0;
      replace(list);
      replace(stats);
      status.dataset.state = 'running';
      status.textContent = `Generating with ${model} from ${seedCount} seed tasks…`;
      start.disabled = true;
      stop.disabled = false;
    },
    candidate(c: GrowCandidate, s: GrowStats) {
      list.prepend(candidateView(c));
      showStats(s);
      use.disabled = false;
    },
    done(s: GrowStats, stopped: boolean) {
      showStats(s);
      status.dataset.state = 'done';
      status.textContent = `${stopped ? 'Stopped' : 'Done'}: ${s.kept} row${s.kept === 1 ? '' : 's'} passed the filters. Tick or untick "keep" to overrule a verdict, then add the kept rows to the training mixture.`;
      start.disabled = false;
      stop.disabled = true;
    },
    failed(message: string) {
      status.dataset.state = 'error';
      status.textContent = message;
      start.disabled = false;
      stop.disabled = true;
    },
    used(rows: number) {
      usedRows = rows;
      used.dataset.rows = String(rows);
      used.textContent = rows ? `${rows} grown rows are in the training mixture (source "grown"), with the weight above.` : 'No grown rows in the training mixture.';
    },
    /** The mixture weight of the grown rows (0 when none were added). */
    weight: () => (usedRows ? Math.max(0, Number(weight.value) || 0) : 0),
  };
}
