/**
 * Learning-rate schedules as transformers defines them (get_constant_schedule_with_warmup,
 * get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup). `step` is the number of
 * optimizer steps already taken (LambdaLR's last_epoch), so the first update uses step 0 and,
 * with warmup, a learning rate of 0 — exactly like the Hugging Face Trainer.
 *
 * @example
 *   const s = { kind: 'linear', lr: 1e-3, warmupSteps: 10, totalSteps: 110 } as const;
 *   learningRate(s, 0);    // 0
 *   learningRate(s, 5);    // 0.0005
 *   learningRate(s, 60);   // 0.0005
 *   learningRate(s, 110);  // 0
 */

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup from 0 over this many steps. Default 0. */
  warmupSteps?: number;
  /** Steps in the whole run (needed by 'linear' and 'cosine'). */
  totalSteps?: number;
  /** Cosine cycles over the decay (transformers' num_cycles). Default 0.5: one half-cosine down to 0. */
  numCycles?: number;
}

/** The multiplier of the peak learning rate at `step` (transformers' lr_lambda). */
export function scheduleFactor(config: ScheduleConfig, step: number): number {
  const warmup = config.warmupSteps ?? 0;
  if (step < warmup) return step / Math.max(1, warmup);
  if (config.kind === 'constant') return 1;
  const total = config.totalSteps;
  if (total === undefined) throw new Error(`schedule '${config.kind}': totalSteps is required`);
  if (config.kind === 'linear') return Math.max(0, (total - step) / Math.max(1, total - warmup));
  if (config.kind === 'cosine') {
    const numCycles = config.numCycles ?? 0.5;
    const progress = (step - warmup) / Math.max(1, total - warmup);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
  }
  throw new Error(`unknown schedule kind '${(config as { kind: string }).kind}' (expected constant, linear or cosine)`);
}

/** The learning rate at `step`: `config.lr * scheduleFactor(config, step)`. */
export function learningRate(config: ScheduleConfig, step: number): number {
  return config.lr * scheduleFactor(config, step);
}

/** Warmup steps from a ratio of the total, as transformers' get_warmup_steps: ceil(total * ratio). */
export function warmupStepsFromRatio(totalSteps: number, ratio: number): number {
  return Math.ceil(totalSteps * ratio);
}
