/**
 * The terminal progress display (bar on a TTY, plain lines otherwise) and the loss-curve SVG.
 */
import { describe, it, expect } from 'vitest';
import { Progress, CountProgress, formatDuration } from '../../src/cli/progress.js';
import { lossCurveSvg, niceTicks } from '../../src/cli/svg.js';

const step = (n: number, elapsedMs: number) => ({ step: n, loss: 3 - n / 10, lr: 1e-3, gradNorm: 0.5, tokensPerSecond: 1234.4, elapsedMs });

describe('Progress', () => {
  it('prints plain lines every N steps (first and last always) with loss, throughput and ETA', () => {
    const out: string[] = [];
    const p = new Progress({ total: 10, tty: false, every: 4, write: (s) => out.push(s) });
    for (let i = 1; i <= 10; i++) p.step(step(i, i * 2000)); // 2 s per step
    p.evalResult(10, 1.5, 0.25);
    p.done();
    expect(out.map((l) => l.split(' ')[1])).toEqual(['1/10', '4/10', '8/10', '10/10', 'step']);
    // After 4 steps at 2 s each, 6 remain: 12 s.
    expect(out[1]).toBe('step 4/10 loss 2.6000 lr 1.00e-3 grad 0.500 tok/s 1234 elapsed 8s eta 12s\n');
    expect(out[4]).toBe('eval step 10 eval_loss 1.5000 token_accuracy 25.0%\n');
    expect(out.every((l) => !l.includes('\r'))).toBe(true);
  });

  it('redraws one line in place on a terminal, with the eval loss once known', () => {
    const out: string[] = [];
    const p = new Progress({ total: 20, tty: true, columns: 100, write: (s) => out.push(s) });
    p.step(step(1, 1000));
    p.step(step(5, 5000));
    p.evalResult(5, 2.25, 0.5);
    p.log('checkpoint: x');
    p.done();
    expect(out[0].startsWith('\r\x1b[2K')).toBe(true);
    expect(out[1]).toMatch(/^\r\x1b\[2Kstep  5\/20 \[#+\.+\]  loss 2\.500  1,234 tok\/s  ETA 15s$/);
    const bar = /\[(#*)(\.*)\]/.exec(out[1])!;
    expect(bar[1].length / (bar[1].length + bar[2].length)).toBeCloseTo(5 / 20, 1);
    expect(out[2]).toContain('eval 2.250');
    expect(out).toContain('checkpoint: x\n');
    expect(out[out.length - 1]).toBe('\n');
  });

  it('formats durations', () => {
    expect(formatDuration(4_400)).toBe('4s');
    expect(formatDuration(302_000)).toBe('5m02s');
    expect(formatDuration(3_720_000)).toBe('1h02m');
    expect(formatDuration(NaN)).toBe('?');
  });
});

describe('loss curve SVG', () => {
  it('chooses 1-2-5 ticks covering the range', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(1.23, 6.9, 5)).toEqual([2, 4, 6]); // raw step 1.134 -> 2
    expect(niceTicks(0, 0.3, 3)).toEqual([0, 0.1, 0.2, 0.3]);
  });

  it('draws the train line, eval points, axes and legend, skipping non-finite values', () => {
    const train: Array<[number, number]> = [[1, 4], [2, 3], [3, NaN], [4, 2]];
    const svg = lossCurveSvg({ train, eval: [[2, 3.5], [4, 2.5]], title: 'a < b', width: 400, height: 300 });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('a &lt; b');
    const d = /<path id="train-loss" d="([^"]+)"/.exec(svg)![1];
    const pts = d.split(/[ML]/).filter((s) => s.trim()).map((s) => s.trim().split(' ').map(Number));
    expect(pts.length).toBe(3);
    // x grows with the step, y (screen) grows as the loss falls.
    expect(pts[0][0]).toBeLessThan(pts[1][0]);
    expect(pts[0][1]).toBeLessThan(pts[2][1]);
    // Loss 4 -> 2 over steps 1 -> 4 with a 5% pad: the first point sits near the top of the plot.
    expect(pts[0][0]).toBeCloseTo(64, 0);
    expect((svg.match(/<circle /g) ?? []).length).toBe(2);
    expect(svg).toContain('>train loss</text>');
    expect(svg).toContain('>eval loss</text>');
    expect(svg).toContain('>step</text>');
  });
});

describe('CountProgress', () => {
  it('counts towards a total with a status, plain lines only when something changed, a bar on a terminal', () => {
    let t = 0;
    const out: string[] = [];
    const p = new CountProgress({ total: 10, tty: false, label: 'kept', now: () => t, write: (s) => out.push(s) });
    t = 4000; p.update(2, '5 candidates');   // 2 s per row: 8 rows left, 16 s
    p.update(2, '5 candidates');             // unchanged: not printed again
    t = 6000; p.update(3, '7 candidates');
    expect(out).toEqual(['kept 2/10 5 candidates elapsed 4s eta 16s\n', 'kept 3/10 7 candidates elapsed 6s eta 14s\n']);
    const tty: string[] = [];
    const q = new CountProgress({ total: 4, tty: true, columns: 100, label: 'kept', now: () => t, write: (s) => tty.push(s) });
    q.update(1, '3 candidates');
    q.done();
    expect(tty[0]).toMatch(/^\r\x1b\[2Kkept 1\/4 \[#+\.+\]  3 candidates  ETA 0s$/);
    const bar = /\[(#*)(\.*)\]/.exec(tty[0])!;
    expect(bar[1].length / (bar[1].length + bar[2].length)).toBeCloseTo(1 / 4, 1);
    expect(tty.at(-1)).toBe('\n');
  });
});
