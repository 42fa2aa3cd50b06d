/**
 * The dataset panel: the bundled task families, an uploaded file (its validation split and its
 * overlap with the test split), and what the data tools would remove; the training mixture
 * these make (trainSources) is what a run trains on.
 */
import { applyFilters, filtersFrom, filterReportLines, overlapWith, type Example, type Message } from '../../../src/index.js';
import type { DatasetInfo, DatasetRowView, UploadCheck } from '../../protocol.js';
import { post, parseRows, byFamily, type Handlers, type WorkerState } from '../state.js';
import manifest from '../../data/manifest.json';

export function rowView(ex: Example): DatasetRowView {
  const text = (v: unknown) => (typeof v === 'string' ? v : (v as Message[] | undefined ?? []).map((m) => `${m.role}: ${m.content}`).join('\n'));
  if (ex.format === 'prompt_completion') return { messages: [], meta: ex.meta, parts: [['prompt', text(ex.prompt)], ['completion', text(ex.completion)]] };
  if (ex.format === 'text') return { messages: [], meta: ex.meta, parts: [['text', ex.text ?? '']] };
  return { messages: ex.messages ?? [], meta: ex.meta };
}

/** The families of the bundled training set (rows and a few samples each) and the split sizes. */
export function datasetInfo(s: WorkerState): DatasetInfo {
  const fams = manifest.families as Record<string, { description: string; weight: number }>;
  const counts: Record<string, number> = {};
  const samples: Record<string, DatasetRowView[]> = {};
  for (const ex of s.trainExamples) {
    const f = String(ex.meta.family ?? 'other');
    counts[f] = (counts[f] ?? 0) + 1;
    const rows = (samples[f] ??= []);
    if (rows.length < 4 && (rows.length === 0 || ex.meta.source === 'human' || counts[f] % 97 === 0)) rows.push(rowView(ex));
  }
  return {
    families: Object.entries(fams).map(([name, f]) => ({ name, description: f.description, weight: f.weight, rows: counts[name] ?? 0 })),
    samples, trainRows: s.trainExamples.length, validRows: s.validExamples.length, testRows: s.testRows.length,
  };
}

/** The mixture's weights as the page sends them (train settings, or a data check). */
export interface MixtureWeights { weights: Record<string, number>; uploadWeight?: number; growWeight?: number; validationPercent?: number }

/** The training sources: one per task family with a weight, the upload's training part, the grown rows. */
export function trainSources(s: WorkerState, w: MixtureWeights): Array<{ name: string; examples: Example[]; weight: number }> {
  const sources = [...byFamily(s.trainExamples)].filter(([f]) => (w.weights[f] ?? 0) > 0).map(([f, examples]) => ({ name: f, examples, weight: w.weights[f] }));
  const upload = s.uploadSplit(w.validationPercent).train;
  if (upload.length && (w.uploadWeight ?? 0) > 0) sources.push({ name: 'upload', examples: upload, weight: w.uploadWeight! });
  if (s.grown.length && (w.growWeight ?? 0) > 0) sources.push({ name: 'grown', examples: s.grown, weight: w.growWeight! });
  return sources;
}

/** The upload's validation split, and the rows whose prompt repeats one of the test split's. */
function checkUpload(s: WorkerState, percent: number): UploadCheck {
  const split = s.uploadSplit(percent);
  const test = s.testRows.map((r): Example => ({ format: 'messages', messages: r.messages as Message[], meta: { id: r.id, family: r.family } }));
  const overlap = overlapWith(s.uploaded, test);
  return {
    train: split.train.length, valid: split.valid.length, validationPercent: percent, overlap: overlap.length,
    overlapExamples: overlap.slice(0, 3).map((o) => `line ${String(o.row.meta.line)} ~ test ${String(o.test.meta.id ?? '')} (ROUGE-L ${o.score.toFixed(2)})`),
  };
}

export const dataHandlers: Handlers<'upload' | 'data-check'> = {
  async upload(msg, s) {
    const { examples, errors } = await parseRows(msg.text, msg.name);
    s.uploaded = examples;
    const families: Record<string, number> = {};
    for (const ex of examples) families[String(ex.meta.family ?? 'upload')] = (families[String(ex.meta.family ?? 'upload')] ?? 0) + 1;
    post({ status: 'upload', id: msg.id, name: msg.name, rows: examples.length, errors, families, samples: examples.slice(0, 3).map(rowView), check: checkUpload(s, msg.validationPercent) });
  },

  /** What the data tools remove from the training sources, without training. */
  'data-check'(msg, s) {
    const rows = trainSources(s, msg).flatMap((src) => src.examples);
    const { report } = applyFilters(rows, filtersFrom(msg.tools));
    post({ status: 'data-check', id: msg.id, input: report.input, kept: report.kept, lines: filterReportLines(report), byFilter: report.byFilter });
  },
};
