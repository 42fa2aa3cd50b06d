/**
 * Panel 7b: run history. Every run the page trained (kept in IndexedDB), one row each in a
 * comparison table (src/lab's comparisonTable: the settings that differ between runs, highlighted,
 * then the results); tick runs to draw their curves over each other on the charts; rename,
 * delete, and export the table as CSV or everything (runs, curves, answers, votes) as JSON.
 */
import { comparisonTable, formatCell, toCsv, winRates, type RunRecord, type PairVote } from '../../src/index.js';
import { h, panel, replace } from './dom.js';

/** Saves text as a file download. */
export function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function runsPanel(actions: { rename(id: string, name: string): void; remove(id: string): void; select(ids: string[]): void; votes(): PairVote[] }) {
  const body = h('tbody', {});
  const head = h('thead', {});
  const table = h('table', { id: 'runs-table', class: 'grid runs' }, head, body);
  const status = h('p', { id: 'runs-status', class: 'muted' }, 'No runs yet: train one, or run an experiment.');
  let runs: RunRecord[] = [];
  const selected = new Set<string>();

  const exportCsv = h('button', { id: 'runs-export-csv', type: 'button', onclick: () => download('webtune-runs.csv', toCsv(comparisonTable(runs)), 'text/csv') }, 'Export CSV');
  const exportJson = h('button', { id: 'runs-export-json', type: 'button', onclick: () => {
    const votes = actions.votes();
    download('webtune-runs.json', JSON.stringify({ table: comparisonTable(runs), runs, votes, winRates: winRates(votes) }, null, 2), 'application/json');
  } }, 'Export JSON');

  const { section } = panel('panel-runs', '7b · Run history', [
    h('p', {}, 'Every training run is kept in this browser (IndexedDB): its settings, data mixture, seed, curves, eval loss, and the answers and scores of its before/after comparison. Weights are not kept here; save a model in "Keep your work".'),
    h('p', {}, 'The table shows only the settings that differ between the runs (highlighted), then the results. Tick runs to draw their curves over each other on the charts.'),
    h('p', {}, 'A difference between two runs means little until it is larger than the difference between two seeds of the same settings: the experiments panel runs each arm over several seeds for that reason.'),
  ], status, table, h('div', { class: 'buttons' }, exportCsv, exportJson));

  const draw = () => {
    const t = comparisonTable(runs, { onlyDiffering: true });
    status.textContent = runs.length ? `${runs.length} run${runs.length === 1 ? '' : 's'}; ${t.differing.length ? `differing: ${t.differing.join(', ')}` : 'no setting differs'}.` : 'No runs yet: train one, or run an experiment.';
    replace(head, h('tr', {}, h('th', {}, 'show'), ...t.columns.map((c) => h('th', { class: t.differing.includes(c) ? 'differs' : undefined }, c)), h('th', {}, '')));
    replace(body, ...t.rows.map((row) => {
      const tick = h('input', { type: 'checkbox', class: 'run-select', checked: selected.has(row.id), onchange: (e: Event) => {
        if ((e.target as HTMLInputElement).checked) selected.add(row.id); else selected.delete(row.id);
        actions.select([...selected]);
      } });
      const name = h('input', { class: 'run-name', value: String(row.cells.name), size: 14, onchange: (e: Event) => actions.rename(row.id, (e.target as HTMLInputElement).value.trim() || row.id) });
      return h('tr', { 'data-run-id': row.id },
        h('td', {}, tick), h('td', {}, name),
        ...t.columns.slice(1).map((c) => h('td', { class: [t.differing.includes(c) ? 'differs' : '', t.results.includes(c) ? 'num' : ''].join(' ').trim() || undefined, 'data-col': c }, formatCell(row.cells[c] ?? null))),
        h('td', {}, h('button', { type: 'button', class: 'run-delete', onclick: () => actions.remove(row.id) }, 'Delete')));
    }));
  };

  return {
    section,
    /** The runs to list (oldest first). */
    show(next: RunRecord[]) {
      runs = next;
      for (const id of [...selected]) if (!runs.some((r) => r.id === id)) selected.delete(id);
      draw();
    },
    /** Ticks these runs (and only these) and draws them on the charts. */
    selectOnly(ids: string[]) {
      selected.clear();
      for (const id of ids) selected.add(id);
      draw();
      actions.select(ids);
    },
    selected: () => [...selected],
  };
}
