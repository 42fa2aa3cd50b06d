/**
 * Panel 4: the bundled instruction set by task family, with the mixture weights training
 * draws with (editable), sample rows with their provenance, and upload of your own JSONL,
 * validated row by row.
 */
import type { RowError } from '../../src/index.js';
import type { DatasetInfo, DatasetRowView } from '../protocol.js';
import { h, panel, replace, field } from './dom.js';

function rowView(r: DatasetRowView): HTMLElement {
  const m = r.meta;
  const prov = ['source', 'family', 'template', 'id'].filter((k) => m[k] !== undefined).map((k) => `${k}: ${String(m[k])}`).join(' · ');
  return h('div', { class: 'sample' },
    h('div', { class: 'provenance' }, prov || `${String(m.file ?? '')}:${String(m.line ?? '')}`),
    ...r.messages.map((msg) => h('div', { class: `msg role-${msg.role}` }, h('b', {}, `${msg.role}: `), msg.content)),
    ...(r.parts ?? []).map(([label, text]) => h('div', { class: `msg role-${label === 'prompt' ? 'user' : 'assistant'}` }, h('b', {}, `${label}: `), text)));
}

export function datasetPanel(onUpload: (file: File) => void) {
  const table = h('table', { id: 'dataset-families', class: 'grid' });
  const samples = h('div', { id: 'dataset-samples' });
  const upload = h('input', { id: 'dataset-upload', type: 'file', accept: '.jsonl,.json,application/json' }) as HTMLInputElement;
  const uploadWeight = h('input', { id: 'dataset-upload-weight', type: 'number', min: 0, step: 0.05, value: 0.2 }) as HTMLInputElement;
  const uploadReport = h('div', { id: 'dataset-upload-report' });
  const total = h('p', { class: 'muted' });
  const weights: Record<string, HTMLInputElement> = {};
  let uploaded = 0;
  upload.addEventListener('change', () => { const f = upload.files?.[0]; if (f) onUpload(f); });

  const { section } = panel('panel-dataset', '4 · Dataset', [
    h('p', {}, 'The bundled set is generated: nine task families (arithmetic, string edits, sorting, sentiment, extraction to JSON, questions, system-prompt following, multi-turn follow-ups, refusals), each with several phrasings. Some phrasings are held out of training and appear only in the test split, to see whether the model learned the task or the wording.'),
    h('p', {}, 'The weights decide how often each family is drawn when training batches are made: a weight of 0 leaves a family out.'),
    h('p', {}, 'Your own file may use any format TRL accepts: {"messages": [...]}, {"prompt", "completion"}, {"text"} or Alpaca {"instruction", "input", "output"}. Bad rows are listed by line and left out.'),
  ], total, table, h('h3', {}, 'Sample rows'), samples,
  h('h3', {}, 'Your own data'), h('div', { class: 'row' }, field('JSONL file', upload), field('Mixture weight of your rows', uploadWeight)), uploadReport);

  return {
    section,
    show(info: DatasetInfo) {
      total.textContent = `${info.trainRows} training rows, ${info.validRows} validation rows, ${info.testRows} held-out test rows.`;
      replace(table, h('thead', {}, h('tr', {}, h('th', {}, 'Family'), h('th', {}, 'Rows'), h('th', {}, 'Weight'), h('th', {}, 'What it asks'))),
        h('tbody', {}, ...info.families.map((f) => {
          const w = h('input', { type: 'number', min: 0, max: 10, step: 0.01, value: f.weight, 'data-family': f.name, class: 'weight' }) as HTMLInputElement;
          weights[f.name] = w;
          return h('tr', {}, h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => replace(samples, ...(info.samples[f.name] ?? []).map(rowView)) }, f.name)),
            h('td', { class: 'num' }, f.rows), h('td', {}, w), h('td', {}, f.description));
        })));
      const first = info.families[0]?.name;
      if (first) replace(samples, ...(info.samples[first] ?? []).map(rowView));
    },
    showUpload(name: string, rows: number, errors: RowError[], families: Record<string, number>, sampleRows: DatasetRowView[]) {
      uploaded = rows;
      replace(uploadReport,
        h('p', { class: errors.length ? 'warn' : 'ok', 'data-rows': rows, 'data-errors': errors.length },
          `${name}: ${rows} valid rows${errors.length ? `, ${errors.length} bad rows left out` : ''}.`,
          rows ? ` Families: ${Object.entries(families).map(([k, v]) => `${k} ${v}`).join(', ')}.` : ''),
        errors.length ? h('ul', { class: 'errors' }, ...errors.slice(0, 50).map((e) => h('li', {}, `line ${e.line}${e.field ? ` (${e.field})` : ''}: ${e.message.replace(`${e.file}:${e.line}: `, '')}`))) : null,
        errors.length > 50 ? h('p', {}, `…and ${errors.length - 50} more.`) : null,
        ...sampleRows.map(rowView));
    },
    weights(): Record<string, number> {
      return Object.fromEntries(Object.entries(weights).map(([k, el]) => [k, Math.max(0, Number(el.value) || 0)]));
    },
    uploadWeight: () => (uploaded ? Math.max(0, Number(uploadWeight.value) || 0) : 0),
  };
}
