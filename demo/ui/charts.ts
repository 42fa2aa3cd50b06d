/**
 * Panel 6: live charts (uPlot) of train and eval loss, learning rate, gradient norm and
 * tokens/s. Points are appended as steps arrive; redraws are throttled to one per 100 ms so a
 * fast run never floods the main thread.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h, panel, throttle } from './dom.js';

interface Series { label: string; stroke: string; dash?: number[]; points?: boolean }

function chart(id: string, title: string, series: Series[], log = false) {
  const host = h('div', { id, class: 'chart', 'data-points': 0 });
  const data: number[][] = [[], ...series.map(() => [])];
  const plot = new uPlot({
    title, width: 420, height: 220,
    scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
    axes: [{ label: 'step' }, {}],
    series: [{ label: 'step' }, ...series.map((s) => ({
      label: s.label, stroke: s.stroke, width: 1.5, dash: s.dash, spanGaps: true,
      points: { show: s.points ?? false, size: 5 },
    }))],
    legend: { live: true },
  }, data as uPlot.AlignedData, host);
  return { host, data, plot };
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
      c.plot.setData(c.data as uPlot.AlignedData);
      c.host.dataset.points = String(c.data[0].length);
    }
    // The first and last three train losses, readable without the chart's internals.
    const train = loss.data[1].filter((v) => v !== null);
    loss.host.dataset.lossHead = JSON.stringify(train.slice(0, 3));
    loss.host.dataset.lossTail = JSON.stringify(train.slice(-3));
  }, 100);

  const { section } = panel('panel-charts', '6 · Live charts', [
    h('p', {}, 'Train loss is the mean cross-entropy over the trained tokens of each step; eval loss is the same on a fixed slice of the validation split, which the model never trains on. When eval loss stops falling while train loss keeps going down, the model is memorising.'),
    h('p', {}, 'The gradient norm is clipped to 1 before each update; spikes mean a batch surprised the model. Tokens per second counts every non-padding token the model read.'),
    h('p', {}, 'Hover a chart to read exact values; the charts stay after the run ends.'),
  ], h('div', { class: 'charts' }, ...charts.map((c) => c.host)));

  // Resize with the layout: a chart fills its grid cell.
  const resize = () => { for (const c of charts) c.plot.setSize({ width: Math.max(260, Math.min(c.host.clientWidth || 420, 640)), height: 220 }); };
  new ResizeObserver(throttle(resize, 200)).observe(section);

  return {
    section,
    reset() {
      for (const c of charts) for (const a of c.data) a.length = 0;
      redraw();
    },
    step(step: number, lossValue: number, lrValue: number, gradNorm: number, tokensPerSecond: number) {
      // Eval points share the loss chart's x axis: a step row gets null eval until one arrives.
      loss.data[0].push(step); loss.data[1].push(lossValue); loss.data[2].push(null as unknown as number);
      lr.data[0].push(step); lr.data[1].push(lrValue);
      grad.data[0].push(step); grad.data[1].push(gradNorm);
      tps.data[0].push(step); tps.data[1].push(tokensPerSecond);
      redraw();
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
