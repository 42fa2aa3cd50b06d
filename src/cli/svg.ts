/**
 * A loss-curve image as a small hand-written SVG: axes with "nice" tick values, the training
 * loss as a line, the evaluation loss as a line with dots, and a legend. No dependencies; the
 * file opens in any browser or image viewer.
 *
 * @example
 *   const svg = lossCurveSvg({ train: [[1, 2.5], [2, 2.1]], eval: [[2, 2.3]], title: 'micro on train.jsonl' });
 *   fs.writeFileSync('loss.svg', svg);
 */

export type Point = readonly [x: number, y: number];

export interface LossCurve {
  /** [step, loss] of every training step. */
  train: readonly Point[];
  /** [step, eval loss] of every evaluation. */
  eval?: readonly Point[];
  title?: string;
  width?: number;
  height?: number;
}

/** Tick values covering [lo, hi] at a 1-2-5 step, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** The SVG document text. Non-finite points are left out (a skipped step breaks no line). */
export function lossCurveSvg(curve: LossCurve): string {
  const W = curve.width ?? 720, H = curve.height ?? 420;
  const m = { left: 64, right: 20, top: curve.title ? 40 : 20, bottom: 48 };
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  const finite = (ps: readonly Point[] | undefined) => (ps ?? []).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const train = finite(curve.train), ev = finite(curve.eval);
  const all = [...train, ...ev];

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  if (curve.title) parts.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="14" fill="#222">${escapeXml(curve.title)}</text>`);

  let x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (all.length) {
    x0 = Math.min(...all.map((p) => p[0])); x1 = Math.max(...all.map((p) => p[0]));
    y0 = Math.min(...all.map((p) => p[1])); y1 = Math.max(...all.map((p) => p[1]));
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    const pad = (y1 - y0) * 0.05 || Math.abs(y1) * 0.1 || 1;
    y0 = Math.max(0, y0 - pad); y1 += pad;
  }
  const xTicks = niceTicks(x0, x1, 6), yTicks = niceTicks(y0, y1, 5);
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const r = (v: number) => v.toFixed(1);

  // Grid and ticks.
  parts.push('<g stroke="#e5e5e5" stroke-width="1">');
  for (const t of yTicks) parts.push(`<line x1="${m.left}" y1="${r(sy(t))}" x2="${m.left + pw}" y2="${r(sy(t))}"/>`);
  for (const t of xTicks) parts.push(`<line x1="${r(sx(t))}" y1="${m.top}" x2="${r(sx(t))}" y2="${m.top + ph}"/>`);
  parts.push('</g>');
  parts.push('<g fill="#444">');
  for (const t of yTicks) parts.push(`<text x="${m.left - 6}" y="${r(sy(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  for (const t of xTicks) parts.push(`<text x="${r(sx(t))}" y="${m.top + ph + 16}" text-anchor="middle">${fmt(t)}</text>`);
  parts.push('</g>');
  // Axes and their labels.
  parts.push(`<g stroke="#333" stroke-width="1"><line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}"/><line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}"/></g>`);
  parts.push(`<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle" fill="#222">step</text>`);
  parts.push(`<text x="16" y="${m.top + ph / 2}" text-anchor="middle" fill="#222" transform="rotate(-90 16 ${m.top + ph / 2})">loss</text>`);

  const path = (ps: Point[]) => ps.map(([x, y], i) => `${i ? 'L' : 'M'}${r(sx(x))} ${r(sy(y))}`).join(' ');
  if (train.length) parts.push(`<path id="train-loss" d="${path(train)}" fill="none" stroke="#2563eb" stroke-width="1.5" stroke-linejoin="round"/>`);
  if (ev.length) {
    parts.push(`<path id="eval-loss" d="${path(ev)}" fill="none" stroke="#ea580c" stroke-width="2" stroke-dasharray="5 3"/>`);
    parts.push('<g fill="#ea580c">' + ev.map(([x, y]) => `<circle cx="${r(sx(x))}" cy="${r(sy(y))}" r="3"/>`).join('') + '</g>');
  }
  // Legend (top right inside the plot).
  const lx = m.left + pw - 130, ly = m.top + 10;
  parts.push(`<g><rect x="${lx - 8}" y="${ly - 4}" width="136" height="${ev.length ? 42 : 24}" fill="#ffffff" fill-opacity="0.85" stroke="#ddd"/>`);
  parts.push(`<line x1="${lx}" y1="${ly + 8}" x2="${lx + 24}" y2="${ly + 8}" stroke="#2563eb" stroke-width="2"/><text x="${lx + 30}" y="${ly + 12}" fill="#222">train loss</text>`);
  if (ev.length) parts.push(`<line x1="${lx}" y1="${ly + 26}" x2="${lx + 24}" y2="${ly + 26}" stroke="#ea580c" stroke-width="2" stroke-dasharray="5 3"/><text x="${lx + 30}" y="${ly + 30}" fill="#222">eval loss</text>`);
  parts.push('</g>');
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
