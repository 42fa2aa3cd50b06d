/**
 * Panel 4: the bundled instruction set by task family, with the mixture weights training
 * draws with (editable), sample rows with their provenance, and upload of your own JSONL,
 * validated row by row.
 */
import type { RowError } from '../../src/index.js';
import type { DatasetInfo, DatasetRowView, DataToolSettings, UploadCheck } from '../protocol.js';
import { h, panel, replace, field } from './dom.js';

function rowView(r: DatasetRowView): HTMLElement {
  const m = r.meta;
  const prov = ['source', 'family', 'template', 'id'].filter((k) => m[k] !== undefined).map((k) => `${k}: ${String(m[k])}`).join(' · ');
  return h('div', { class: 'sample' },
    h('div', { class: 'provenance' }, prov || `${String(m.file ?? '')}:${String(m.line ?? '')}`),
    ...r.messages.map((msg) => h('div', { class: `msg role-${msg.role}` }, h('b', {}, `${msg.role}: `), msg.content)),
    ...(r.parts ?? []).map(([label, text]) => h('div', { class: `msg role-${label === 'prompt' ? 'user' : 'assistant'}` }, h('b', {}, `${label}: `), text)));
}

export function datasetPanel(onUpload: (file: File) => void, onCheck: () => void = () => undefined) {
  const table = h('table', { id: 'dataset-families', class: 'grid' });
  const samples = h('div', { id: 'dataset-samples' });
  const upload = h('input', { id: 'dataset-upload', type: 'file', accept: '.jsonl,.json,application/json' }) as HTMLInputElement;
  const uploadWeight = h('input', { id: 'dataset-upload-weight', type: 'number', min: 0, step: 0.05, value: 0.2 }) as HTMLInputElement;
  const uploadReport = h('div', { id: 'dataset-upload-report' });
  const validPct = h('input', { id: 'dataset-valid-pct', type: 'number', min: 0, max: 50, step: 1, value: 10 }) as HTMLInputElement;
  // The data tools (src/data filters): what each removes is shown before training.
  const exact = h('input', { id: 'dt-exact-dedup', type: 'checkbox' }) as HTMLInputElement;
  const near = h('input', { id: 'dt-near-dedup', type: 'checkbox' }) as HTMLInputElement;
  const nearThreshold = h('input', { id: 'dt-near-threshold', type: 'number', min: 0.05, max: 1, step: 0.05, value: 0.7 }) as HTMLInputElement;
  const minWords = h('input', { id: 'dt-min-words', type: 'number', min: 0, placeholder: 'none' }) as HTMLInputElement;
  const maxWords = h('input', { id: 'dt-max-words', type: 'number', min: 0, placeholder: 'none' }) as HTMLInputElement;
  const safety = h('input', { id: 'dt-safety', type: 'checkbox' }) as HTMLInputElement;
  const curriculum = h('select', { id: 'dt-curriculum' }, h('option', { value: '' }, 'shuffled (no curriculum)'), h('option', { value: 'length' }, 'shortest first (length)')) as HTMLSelectElement;
  const check = h('button', { id: 'dt-check', type: 'button', onclick: () => onCheck() }, 'Show what the filters remove');
  const toolsReport = h('div', { id: 'dt-report' });
  const total = h('p', { class: 'muted' });
  const weights: Record<string, HTMLInputElement> = {};
  let uploaded = 0;
  upload.addEventListener('change', () => { const f = upload.files?.[0]; if (f) onUpload(f); });

  const { section } = panel('panel-dataset', '4 · Dataset', [
    h('p', {}, 'The bundled set is generated: nine task families (arithmetic, string edits, sorting, sentiment, extraction to JSON, questions, system-prompt following, multi-turn follow-ups, refusals), each with several phrasings. Some phrasings are held out of training and appear only in the test split, to see whether the model learned the task or the wording.'),
    h('p', {}, 'The weights decide how often each family is drawn when training batches are made: a weight of 0 leaves a family out.'),
    h('p', {}, 'Your own file may use any format TRL accepts: {"messages": [...]}, {"prompt", "completion"}, {"text"} or Alpaca {"instruction", "input", "output"}. Bad rows are listed by line and left out.'),
  ], total, table, h('h3', {}, 'Sample rows'), samples,
  h('h3', {}, 'Your own data'), h('div', { class: 'row' }, field('JSONL file', upload), field('Mixture weight of your rows', uploadWeight), field('Validation split (% held out for eval loss)', validPct)), uploadReport,
  h('h3', {}, 'Data tools'),
  h('p', { class: 'muted' }, 'Filters run over the training rows (every source together), in this order; a row is removed by the first that rejects it. Near-duplicates: Self-Instruct\'s rule, ROUGE-L F1 of the instructions above the threshold. The safety filter screens what the model is trained to say. The same tools are flags of webtune train and webtune inspect.'),
  h('div', { class: 'row' }, h('label', { class: 'field' }, exact, ' exact dedup'), h('label', { class: 'field' }, near, ' near dedup'), field('threshold', nearThreshold),
    field('min words', minWords), field('max words', maxWords), h('label', { class: 'field' }, safety, ' safety filter'), field('order', curriculum)),
  h('div', { class: 'buttons' }, check), toolsReport);

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
    showUpload(name: string, rows: number, errors: RowError[], families: Record<string, number>, sampleRows: DatasetRowView[], c?: UploadCheck) {
      uploaded = rows;
      replace(uploadReport,
        c ? h('p', { id: 'dataset-upload-check', class: c.overlap ? 'warn' : 'ok', 'data-train': c.train, 'data-valid': c.valid, 'data-overlap': c.overlap },
          `${c.train} rows for training, ${c.valid} held out for eval loss (${c.validationPercent} %). `,
          c.overlap ? `${c.overlap} row${c.overlap === 1 ? ' repeats' : 's repeat'} a prompt of the bundled test split (${c.overlapExamples.join('; ')}): held-out accuracy would count memorised answers.` : 'No row repeats a prompt of the bundled test split.') : null,
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
    validationPercent: () => Math.min(50, Math.max(0, Number(validPct.value) || 0)),
    /** The data tools switched on, or undefined when none is. */
    tools(): DataToolSettings | undefined {
      const n = (el: HTMLInputElement) => (el.value.trim() === '' ? undefined : Math.max(0, Math.round(Number(el.value))));
      const t: DataToolSettings = {
        exactDedup: exact.checked, nearDedup: near.checked ? Number(nearThreshold.value) || 0.7 : false, safety: safety.checked,
        length: { minWords: n(minWords), maxWords: n(maxWords) },
        ...(curriculum.value ? { curriculum: curriculum.value as 'length' } : {}),
      };
      const on = t.exactDedup || t.nearDedup !== false || t.safety || t.length!.minWords !== undefined || t.length!.maxWords !== undefined || !!t.curriculum;
      return on ? t : undefined;
    },
    showCheck(r: { input: number; kept: number; lines: string[]; byFilter: Record<string, number> }) {
      replace(toolsReport, h('p', { id: 'dt-summary', 'data-input': r.input, 'data-kept': r.kept }, `${r.input} training rows in, ${r.kept} kept.`),
        h('ul', {}, ...r.lines.map((l, i) => h('li', { 'data-filter': Object.keys(r.byFilter)[i], 'data-removed': Object.values(r.byFilter)[i] }, l))));
    },
  };
}
