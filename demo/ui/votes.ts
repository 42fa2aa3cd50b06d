/**
 * Panel 7d: blind human votes. Two answers to the same held-out prompt (a run's before vs after,
 * or run X vs run Y), shown as "Answer 1" and "Answer 2" in an order decided by a coin the voter
 * cannot see; after the vote the page says which was which. Votes are kept with the runs
 * (IndexedDB) and go into the JSON export; the win-rate table gives each pair's rate with a 95 %
 * Wilson interval (ties count half).
 */
import { blindOrder, winRates, type PairVote, type RunRecord } from '../../src/index.js';
import { h, panel, replace, field, fmt } from './dom.js';

interface Contestant { key: string; label: string; answers: Map<string, string> }

/** An answer as the voter sees it: an untrained model's newlines and blanks made visible, as in the before/after table. */
const shown = (text: string) => (text.trim() ? text : text ? `(only whitespace: ${JSON.stringify(text).slice(0, 40)})` : '(empty answer)');

export function votesPanel(actions: { vote(v: PairVote): void }) {
  const mode = h('select', { id: 'vote-mode' }, h('option', { value: 'before-after' }, 'before vs after (one run)'), h('option', { value: 'runs' }, 'run X vs run Y (their answers after training)')) as HTMLSelectElement;
  const runX = h('select', { id: 'vote-x' }) as HTMLSelectElement;
  const runY = h('select', { id: 'vote-y' }) as HTMLSelectElement;
  const next = h('button', { id: 'vote-next', type: 'button', class: 'primary', onclick: () => showNext() }, 'Next pair');
  const prompt = h('pre', { id: 'vote-prompt', class: 'prompt' });
  const answer1 = h('pre', { id: 'vote-answer-1', class: 'answer' });
  const answer2 = h('pre', { id: 'vote-answer-2', class: 'answer' });
  const b1 = h('button', { id: 'vote-1', type: 'button', disabled: true, onclick: () => cast('1') }, 'Answer 1 is better');
  const b2 = h('button', { id: 'vote-2', type: 'button', disabled: true, onclick: () => cast('2') }, 'Answer 2 is better');
  const bTie = h('button', { id: 'vote-tie', type: 'button', disabled: true, onclick: () => cast('tie') }, 'Tie');
  const reveal = h('p', { id: 'vote-reveal', class: 'muted' });
  const status = h('p', { id: 'vote-status', class: 'muted' }, 'Runs with answered held-out prompts appear here.');
  const rates = h('table', { id: 'winrate-table', class: 'grid' });
  let runs: RunRecord[] = [];
  let votes: PairVote[] = [];
  // A new coin per page load; the order of each vote is blindOrder(session, vote number).
  const session = Math.floor(Math.random() * 2 ** 31);
  let cursor = 0;
  let current: { x: Contestant; y: Contestant; prompt: string; swapped: boolean } | undefined;

  const { section } = panel('panel-votes', '7d · Blind votes', [
    h('p', {}, 'A tiny model\'s open-ended answers have no exact score, and there is no judge model in this page: people judge. Pairwise comparison is what human raters of instruction-tuned models do: read two answers to the same prompt and pick the better one, or call a tie.'),
    h('p', {}, 'The order is random and hidden until you vote, so knowing which model is "supposed" to be better cannot sway the vote.'),
    h('p', {}, 'The win rate counts a tie as half a win; the interval is the 95 % Wilson score interval, honest for the handful of votes a person casts. An interval that contains 50 % has not shown a preference.'),
  ],
  h('div', { class: 'row' }, field('Compare', mode), field('Run X', runX), field('Run Y (run X vs run Y)', runY), next),
  status, h('div', { class: 'field-label' }, 'Prompt'), prompt,
  h('div', { class: 'pair' }, h('div', {}, h('div', { class: 'field-label' }, 'Answer 1'), answer1), h('div', {}, h('div', { class: 'field-label' }, 'Answer 2'), answer2)),
  h('div', { class: 'buttons' }, b1, b2, bTie), reveal,
  h('h3', {}, 'Win rates'), rates);

  const answered = () => runs.filter((r) => r.answers?.some((a) => a.after));
  const label = (r: RunRecord) => r.name;
  const contestants = (): [Contestant, Contestant] | undefined => {
    const x = runs.find((r) => r.id === runX.value);
    if (!x?.answers) return undefined;
    if (mode.value === 'before-after') {
      return [
        { key: `before:${x.id}`, label: `${label(x)} · before`, answers: new Map(x.answers.filter((a) => a.before !== undefined).map((a) => [a.prompt, a.before!])) },
        { key: `after:${x.id}`, label: `${label(x)} · after`, answers: new Map(x.answers.map((a) => [a.prompt, a.after])) },
      ];
    }
    const y = runs.find((r) => r.id === runY.value);
    if (!y?.answers || y.id === x.id) return undefined;
    return [x, y].map((r) => ({ key: r.id, label: label(r), answers: new Map(r.answers!.map((a) => [a.prompt, a.after])) })) as [Contestant, Contestant];
  };
  const names = (key: string) => {
    const [kind, id] = key.includes(':') ? key.split(':') : ['', key];
    const r = runs.find((x) => x.id === id);
    return `${r ? label(r) : id}${kind ? ` · ${kind}` : ''}`;
  };

  function showNext() {
    const pair = contestants();
    const shared = pair ? [...pair[0].answers.keys()].filter((p) => pair[1].answers.has(p)) : [];
    for (const b of [b1, b2, bTie]) b.disabled = !shared.length;
    reveal.textContent = '';
    if (!pair || !shared.length) {
      current = undefined;
      status.textContent = mode.value === 'runs' ? 'Pick two different runs that answered the same held-out prompts.' : 'Pick a run whose comparison answered held-out prompts before and after.';
      replace(prompt); replace(answer1); replace(answer2);
      return;
    }
    const p = shared[cursor++ % shared.length];
    const swapped = blindOrder(session, votes.length);
    current = { x: pair[0], y: pair[1], prompt: p, swapped };
    const [first, second] = swapped ? [pair[1], pair[0]] : [pair[0], pair[1]];
    status.textContent = `Prompt ${((cursor - 1) % shared.length) + 1} of ${shared.length}. Which answer is better?`;
    prompt.textContent = p;
    answer1.textContent = shown(first.answers.get(p) ?? '');
    answer2.textContent = shown(second.answers.get(p) ?? '');
  }

  function cast(choice: '1' | '2' | 'tie') {
    if (!current) return;
    const { x, y, swapped } = current;
    const winner: PairVote['winner'] = choice === 'tie' ? 'tie' : (choice === '1') !== swapped ? 'x' : 'y';
    const vote: PairVote = { x: x.key, y: y.key, prompt: current.prompt, winner, swapped, at: Date.now() };
    votes.push(vote);
    actions.vote(vote);
    reveal.textContent = `Answer 1 was ${swapped ? y.label : x.label}; answer 2 was ${swapped ? x.label : y.label}.`;
    reveal.dataset.votes = String(votes.length);
    for (const b of [b1, b2, bTie]) b.disabled = true;
    current = undefined;
    drawRates();
  }

  function drawRates() {
    const w = winRates(votes);
    const pct = (v: number) => (Number.isNaN(v) ? '—' : `${fmt(100 * v, 1)} %`);
    replace(rates, h('thead', {}, h('tr', {}, ...['X', 'Y', 'Votes', 'X wins', 'Y wins', 'Ties', 'X win rate', '95 % interval'].map((t) => h('th', {}, t)))),
      h('tbody', {}, ...w.map((r) => h('tr', { 'data-pair': `${r.x}|${r.y}`, 'data-rate': r.rate, 'data-lo': r.lo, 'data-hi': r.hi },
        h('td', {}, names(r.x)), h('td', {}, names(r.y)), h('td', { class: 'num' }, r.n), h('td', { class: 'num' }, r.xWins), h('td', { class: 'num' }, r.yWins),
        h('td', { class: 'num' }, r.ties), h('td', { class: 'num' }, pct(r.rate)), h('td', { class: 'num' }, `${pct(r.lo)} – ${pct(r.hi)}`)))));
  }

  return {
    section,
    /** The stored runs and votes (after a reload, or when a run is added). */
    show(nextRuns: RunRecord[], nextVotes: PairVote[]) {
      runs = nextRuns;
      votes = nextVotes;
      // Keep the runs picked; Y defaults to another run than X as soon as there are two.
      const options = (sel: HTMLSelectElement, fallback: (list: RunRecord[]) => RunRecord | undefined) => {
        const keep = sel.value;
        const list = answered();
        replace(sel, ...list.map((r) => h('option', { value: r.id }, label(r))));
        sel.value = (sel === runY && keep === runX.value ? undefined : list.find((r) => r.id === keep))?.id ?? fallback(list)?.id ?? '';
      };
      options(runX, (list) => list[0]);
      options(runY, (list) => list.find((r) => r.id !== runX.value) ?? list[0]);
      drawRates();
    },
    votes: () => votes,
  };
}
