import { ValueError } from '../core/errors.js';
import type { Optimizer } from './optim.js';

/**
 * Learning-rate schedules as multipliers of each parameter group's initial lr, in closed form
 * (t counts epochs or steps, from 0). `setLr(optimizer, schedule, t)` applies one.
 */
export interface Schedule {
  /** The factor at step/epoch t. */
  factor(t: number): number;
}

/**
 * PyTorch's StepLR: lr·gamma^floor(t/stepSize).
 *
 * @example
 * ```ts
 * import { SGD, lightCnn, setLr, stepSchedule } from 'lightconv';
 *
 * const opt = new SGD(lightCnn().parameters(), { lr: 0.1 });
 * const schedule = stepSchedule(30, 0.1); // 0.1 until epoch 30, then 0.01, …
 * for (let epoch = 0; epoch < 90; epoch++) setLr(opt, schedule, epoch);
 * ```
 */
export function stepSchedule(stepSize: number, gamma = 0.1): Schedule {
  if (!(stepSize >= 1)) throw new ValueError(`stepSchedule: stepSize must be ≥ 1, got ${stepSize}`);
  return { factor: (t) => gamma ** Math.floor(t / stepSize) };
}

/**
 * PyTorch's ExponentialLR: lr·gamma^t.
 *
 * @example
 * ```ts
 * import { exponentialSchedule } from 'lightconv';
 *
 * const s = exponentialSchedule(0.95);
 * console.log(s.factor(10)); // 0.95 ** 10
 * ```
 */
export function exponentialSchedule(gamma: number): Schedule {
  return { factor: (t) => gamma ** t };
}

/**
 * Linear warm-up then cosine annealing (PyTorch's LinearLR(startFactor, total_iters=warmup)
 * followed by CosineAnnealingLR(T_max = total − warmup, eta_min = minFactor·lr)):
 * t < warmup: startFactor + (1 − startFactor)·t/warmup;
 * after: minFactor + (1 − minFactor)·(1 + cos(π·(t − warmup)/(total − warmup)))/2, held at the
 * minimum past `total`.
 *
 * @example
 * ```ts
 * import { cosineSchedule, type FitOptions } from 'lightconv';
 *
 * const schedule = cosineSchedule({ total: 50, warmup: 3 });
 * const opts: Pick<FitOptions, 'schedule' | 'schedulePer'> = { schedule, schedulePer: 'epoch' };
 * ```
 */
export function cosineSchedule(opts: { total: number; warmup?: number; startFactor?: number; minFactor?: number }): Schedule {
  const { total, warmup = 0, startFactor = 1 / 3, minFactor = 0 } = opts;
  if (!(total > warmup)) throw new ValueError(`cosineSchedule: total (${total}) must exceed warmup (${warmup})`);
  return {
    factor(t) {
      if (t < warmup) return startFactor + ((1 - startFactor) * t) / warmup;
      const s = Math.min(t - warmup, total - warmup);
      return minFactor + ((1 - minFactor) * (1 + Math.cos((Math.PI * s) / (total - warmup)))) / 2;
    },
  };
}

/**
 * Sets every group's lr to its initial lr times the schedule's factor at t; returns the first
 * group's lr.
 *
 * @example
 * ```ts
 * import { Adam, cosineSchedule, lightCnn, setLr } from 'lightconv';
 *
 * const opt = new Adam(lightCnn().parameters(), { lr: 1e-3 });
 * const lr = setLr(opt, cosineSchedule({ total: 20 }), 5); // the first group's lr at epoch 5
 * ```
 */
export function setLr(optimizer: Optimizer<{ lr: number }>, schedule: Schedule, t: number): number {
  const f = schedule.factor(t);
  for (const g of optimizer.groups) g.options.lr = g.initialLr * f;
  return optimizer.groups[0]?.options.lr ?? 0;
}
