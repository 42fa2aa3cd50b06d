/**
 * Training progress for the terminal: a one-line bar redrawn in place when stdout is a TTY,
 * plain log lines otherwise (a pipe, a file, CI logs), so logs stay readable and greppable.
 *
 *   tty:   step  120/500 [#######.............]  loss 1.873  eval 2.011  1,240 tok/s  ETA 5m02s
 *   plain: step 120/500 loss 1.8730 lr 4.1e-4 grad 0.812 tok/s 1240 elapsed 1m37s eta 5m02s
 *
 * @example
 *   const p = new Progress({ total: 500, tty: process.stdout.isTTY === true });
 *   p.step({ step: 1, loss: 2.5, lr: 1e-3, gradNorm: 1, tokensPerSecond: 900, elapsedMs: 800 });
 *   p.done();
 */

export interface ProgressStep {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  /** Training time so far (pauses excluded; a resumed run counts earlier sessions). */
  elapsedMs: number;
}

export interface ProgressOptions {
  /** Optimizer steps in the run. */
  total: number;
  /** Redraw one line in place (true) or print plain lines (false). */
  tty: boolean;
  /** Plain mode: print every N steps (the first and last step always print). Default 1. */
  every?: number;
  /** Where lines go. Default process.stdout.write. */
  write?: (s: string) => void;
  /** Terminal width for the bar. Default process.stdout.columns or 100. */
  columns?: number;
  /** The step the run starts after (a resumed run): the ETA is measured from there. */
  startStep?: number;
}

/** '1h02m', '5m02s', '12s'. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class Progress {
  private readonly opts: Required<Omit<ProgressOptions, 'columns'>> & { columns?: number };
  private evalLoss: number | undefined;
  private last: ProgressStep | undefined;
  private firstElapsed: number | undefined;
  private drawn = false;

  constructor(opts: ProgressOptions) {
    this.opts = { every: 1, write: (s) => void process.stdout.write(s), startStep: 0, ...opts };
  }

  /** Estimated time left from the mean step time of this session. */
  eta(s: ProgressStep): number {
    const done = s.step - this.opts.startStep;
    if (this.firstElapsed === undefined || done <= 0) return NaN;
    // Time per step measured over this session's steps (the first one includes warm-up).
    const perStep = (s.elapsedMs - this.firstElapsed) / Math.max(done - 1, 1);
    return done > 1 ? perStep * (this.opts.total - s.step) : NaN;
  }

  step(s: ProgressStep): void {
    if (this.firstElapsed === undefined) this.firstElapsed = s.elapsedMs;
    this.last = s;
    if (this.opts.tty) this.draw();
    else if (s.step === this.opts.startStep + 1 || s.step === this.opts.total || s.step % this.opts.every === 0) {
      this.opts.write(`step ${s.step}/${this.opts.total} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)} grad ${s.gradNorm.toFixed(3)}` +
        ` tok/s ${Math.round(s.tokensPerSecond)} elapsed ${formatDuration(s.elapsedMs)} eta ${formatDuration(this.eta(s))}\n`);
    }
  }

  evalResult(step: number, evalLoss: number, tokenAccuracy: number): void {
    this.evalLoss = evalLoss;
    if (this.opts.tty) this.draw();
    else this.opts.write(`eval step ${step} eval_loss ${evalLoss.toFixed(4)} token_accuracy ${(tokenAccuracy * 100).toFixed(1)}%\n`);
  }

  /** A message on its own line (the bar is redrawn below it). */
  log(line: string): void {
    if (this.opts.tty && this.drawn) this.opts.write('\r\x1b[2K');
    this.opts.write(line + '\n');
    if (this.opts.tty && this.last) this.draw();
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.opts.tty && this.drawn) this.opts.write('\n');
    this.drawn = false;
  }

  private draw(): void {
    const s = this.last;
    if (!s) return;
    const { total } = this.opts;
    const cols = this.opts.columns || (typeof process !== 'undefined' ? process.stdout.columns : 0) || 100; // 0 when the terminal reports no size
    const w = String(total).length;
    const head = `step ${String(s.step).padStart(w)}/${total} `;
    const tail = `  loss ${s.loss.toFixed(3)}${this.evalLoss !== undefined ? `  eval ${this.evalLoss.toFixed(3)}` : ''}` +
      `  ${Math.round(s.tokensPerSecond).toLocaleString('en-US')} tok/s  ETA ${formatDuration(this.eta(s))}`;
    this.opts.write(barLine(head, s.step, total, tail, cols));
    this.drawn = true;
  }
}

/** `head[#####.....]tail` fitted to `cols`, as a redraw of the current terminal line. */
function barLine(head: string, done: number, total: number, tail: string, cols: number): string {
  const barWidth = Math.max(10, Math.min(40, cols - head.length - tail.length - 3));
  const filled = Math.round((barWidth * Math.min(done, total)) / Math.max(total, 1));
  const line = `${head}[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]${tail}`;
  return `\r\x1b[2K${line.slice(0, Math.max(cols - 1, 20))}`;
}

/**
 * Progress towards a count that is not training steps (rows kept by `webtune grow`): the same
 * bar on a terminal, plain lines otherwise, with a caller-made status after it.
 *
 *   tty:   kept  3/10 [######..............]  9 candidates, 33% accepted, 2 malformed  ETA 1m02s
 *   plain: kept 3/10 9 candidates, 33% accepted, 2 malformed elapsed 12s eta 1m02s
 */
export class CountProgress {
  private readonly opts: Required<Omit<ProgressOptions, 'columns' | 'startStep' | 'every'>> & { columns?: number; label: string; now: () => number };
  private drawn = false;
  private readonly t0: number;
  private last = '';

  /** `label` names what is counted; `now` is the clock (ms). */
  constructor(opts: Omit<ProgressOptions, 'startStep' | 'every'> & { label: string; now?: () => number }) {
    this.opts = { write: (s) => void process.stdout.write(s), now: Date.now, ...opts };
    this.t0 = this.opts.now();
  }

  /** `done` of `total` reached; `status` says the rest. The ETA assumes the rate so far. */
  update(done: number, status: string): void {
    const { total, label } = this.opts;
    const elapsed = this.opts.now() - this.t0;
    const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
    if (this.opts.tty) {
      const cols = this.opts.columns || (typeof process !== 'undefined' ? process.stdout.columns : 0) || 100;
      const w = String(total).length;
      this.opts.write(barLine(`${label} ${String(done).padStart(w)}/${total} `, done, total, `  ${status}  ETA ${formatDuration(eta)}`, cols));
      this.drawn = true;
    } else {
      const line = `${label} ${done}/${total} ${status}`;
      if (line !== this.last) this.opts.write(`${line} elapsed ${formatDuration(elapsed)} eta ${formatDuration(eta)}\n`);
      this.last = line;
    }
  }

  /** Ends the bar's line. */
  done(): void {
    if (this.opts.tty && this.drawn) this.opts.write('\n');
    this.drawn = false;
  }
}
