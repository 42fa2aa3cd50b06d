/**
 * Panel 6: live charts (uPlot) of train and eval loss, learning rate, gradient norm and
 * tokens/s. Points are appended as steps arrive; redraws are throttled to one per 100 ms so a
 * fast run never floods the main thread.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RunCurves } from '../../src/index.js';
import { h, panel, throttle } from './dom.js';
import { tickLabels } from '../lab/ticks.js';

interface Series { label: string; stroke: string; dash?: number[]; points?: boolean }

/** Colours of overlaid runs, in order. */
const RUN_COLOURS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];

/**
 * One uPlot chart. `data` holds the live run's columns (x, then one per series); `show` draws
 * other series and data instead (an overlay of stored runs), and `live()` goes back.
 */
function chart(id: string, title: string, series: Series[], log = false) {
  const host = h('div', { id, class: 'chart', 'data-points': 0 });
  const data: number[][] = [[], ...series.map(() => [])];
  const make = (ser: Series[], d: Array<Array<number | null>>) => new uPlot({
    title, width: Math.max(260, Math.min(host.clientWidth || 420, 640)), height: 220,
    scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
    // Enough digits per tick that neighbours differ (a learning rate axis of 0.001, 0.0015, 0.002).
    axes: [{ label: 'step' }, { values: (_u: uPlot, splits: number[]) => tickLabels(splits), size: 60 }],
    series: [{ label: 'step' }, ...ser.map((s) => ({
      label: s.label, stroke: s.stroke, width: 1.5, dash: s.dash, spanGaps: true,
      points: { show: s.points ?? false, size: 5 },
    }))],
    legend: { live: true },
  }, d as uPlot.AlignedData, host);
  const c = {
    host, data, plot: make(series, data), overlaid: false,
    show(ser: Series[], d: Array<Array<number | null>>) { c.plot.destroy(); c.plot = make(ser, d); c.overlaid = true; },
    live() { if (c.overlaid) { c.plot.destroy(); c.plot = make(series, data); c.overlaid = false; } },
  };
  return c;
}

/** Columns for uPlot from runs: x = every step any run has, then per run its values (null where it has none). */
function runColumns(runs: ReadonlyArray<{ curves: RunCurves }>, pick: (c: RunCurves) => Array<[number[], number[]]>): Array<Array<number | null>> {
  const xs = [...new Set(runs.flatMap((r) => pick(r.curves).flatMap(([x]) => x)))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const cols: Array<Array<number | null>> = [xs];
  for (const r of runs) for (const [x, y] of pick(r.curves)) {
    const col = new Array<number | null>(xs.length).fill(null);
    x.forEach((step, i) => { col[at.get(step)!] = y[i]; });
    cols.push(col);
  }
  return cols;
}

/** Steps as runs of consecutive numbers: [1, 2, 3, 5, 6] -> "1-3,5-6" (a repeated step shows as a new run). */
function stepRanges(steps: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < steps.length;) {
    let j = i;
    while (j + 1 < steps.length && steps[j + 1] === steps[j] + 1) j++;
    out.push(`${steps[i]}-${steps[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

export function chartsPanel() {
  const loss = chart('chart-loss', 'Loss', [{ label: 'train', stroke: '#2563eb' }, { label: 'eval', stroke: '#dc2626', points: true }]);
  const lr = chart('chart-lr', 'Learning rate', [{ label: 'lr', stroke: '#059669' }]);
  const grad = chart('chart-grad', 'Gradient norm (before clipping)', [{ label: 'grad norm', stroke: '#d97706' }]);
  const tps = chart('chart-tps', 'Tokens per second', [{ label: 'tokens/s', stroke: '#7c3aed' }]);
  const charts = [loss, lr, grad, tps];
  let redraws = 0;
  const redraw = throttle(() => {
    loss.host.dataset.redraws = String(++redraws); // how often the page redrew: one of its per-step costs
    for (const c of charts) {
      if (c.overlaid) continue;
      c.plot.setData(c.data as uPlot.AlignedData);
      c.host.dataset.points = String(c.data[0].length);
    }
    // The first and last three train losses, readable without the chart's internals.
    const train = loss.data[1].filter((v) => v !== null);
    loss.host.dataset.lossHead = JSON.stringify(train.slice(0, 3));
    loss.host.dataset.lossTail = JSON.stringify(train.slice(-3));
    loss.host.dataset.steps = stepRanges(loss.data[0]);
  }, 100);

  const { section } = panel('panel-charts', '6 · Live charts', [
    h('p', {}, 'Train loss is the mean cross-entropy over the trained tokens of each step; eval loss is the same on a fixed slice of the validation split, which the model never trains on. When eval loss stops falling while train loss keeps going down, the model is memorising.'),
    h('p', {}, 'The gradient norm is clipped to 1 before each update; spikes mean a batch surprised the model. Tokens per second counts every non-padding token the model read.'),
    h('p', {}, 'Hover a chart to read exact values; the charts stay after the run ends.'),
    h('p', {}, 'Runs ticked in the run history are drawn over each other here: one train-loss line per run (its eval loss as dashed points) and one learning-rate line per run. Starting a run goes back to the live view.'),
  ], h('div', { class: 'charts' }, ...charts.map((c) => c.host)));

  // Resize with the layout: a chart fills its grid cell.
  const resize = () => { for (const c of charts) c.plot.setSize({ width: Math.max(260, Math.min(c.host.clientWidth || 420, 640)), height: 220 }); };
  new ResizeObserver(throttle(resize, 200)).observe(section);

  return {
    section,
    reset() {
      for (const c of charts) { c.live(); for (const a of c.data) a.length = 0; }
      delete loss.host.dataset.runSeries;
      loss.host.dataset.mode = 'live';
      redraw();
    },
    /** Draws stored runs over each other on the loss and learning-rate charts (uPlot series per run). */
    overlay(runs: ReadonlyArray<{ name: string; curves: RunCurves }>) {
      const colour = (i: number) => RUN_COLOURS[i % RUN_COLOURS.length];
      const lossSeries: Series[] = [];
      runs.forEach((r, i) => {
        lossSeries.push({ label: r.name, stroke: colour(i) });
        lossSeries.push({ label: `${r.name} (eval)`, stroke: colour(i), dash: [4, 4], points: true });
      });
      loss.show(lossSeries, runColumns(runs, (c) => [[c.step, c.loss], [c.evalStep, c.evalLoss]]));
      lr.show(runs.map((r, i) => ({ label: r.name, stroke: colour(i) })), runColumns(runs, (c) => [[c.step, c.lr]]));
      loss.host.dataset.runSeries = String(runs.length);
      loss.host.dataset.mode = 'runs';
    },
    step(step: number, lossValue: number, lrValue: number, gradNorm: number, tokensPerSecond: number | null) {
      // Eval points share the loss chart's x axis: a step row gets null eval until one arrives.
      loss.data[0].push(step); loss.data[1].push(lossValue); loss.data[2].push(null as unknown as number);
      lr.data[0].push(step); lr.data[1].push(lrValue);
      grad.data[0].push(step); grad.data[1].push(gradNorm);
      tps.data[0].push(step); tps.data[1].push(tokensPerSecond as number);
      redraw();
    },
    /** A resumed run's points before its checkpoint (tokens/s was not kept: no points there). */
    restore(steps: ReadonlyArray<{ step: number; loss: number; lr: number; gradNorm: number }>, evals: ReadonlyArray<{ step: number; evalLoss: number }>) {
      for (const p of steps) this.step(p.step, p.loss, p.lr, p.gradNorm, null);
      for (const e of evals) this.evalPoint(e.step, e.evalLoss);
    },
    evalPoint(step: number, evalLoss: number) {
      const i = loss.data[0].lastIndexOf(step);
      if (i >= 0) loss.data[2][i] = evalLoss;
      else { loss.data[0].push(step); loss.data[1].push(null as unknown as number); loss.data[2].push(evalLoss); }
      loss.host.dataset.evalPoints = String(loss.data[2].filter((v) => v !== null).length);
      redraw();
    },
  };
}
