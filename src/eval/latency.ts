import { ValueError } from '../core/errors.js';
import { quantile } from './stats.js';

/** What `measureLatency` returns: summary statistics and every timed call, in milliseconds. */
export interface Latency {
  /** Milliseconds per call. */
  median: number;
  p95: number;
  min: number;
  mean: number;
  /** Number of timed calls. */
  runs: number;
  /** Each timed call in milliseconds, in order. */
  times: number[];
}

/**
 * Wall-clock latency of `run` (awaited when it returns a promise): `warmup` untimed calls (JIT,
 * caches, lazily built plans), then `runs` timed ones with performance.now(). The median and
 * 95th percentile use numpy.percentile's linear interpolation.
 *
 * @example
 * ```ts
 * import { Tensor, loadOnnx, measureLatency } from 'lightconv';
 *
 * const model = await loadOnnx('model.onnx');
 * const x = Tensor.randn([1, 3, 224, 224], { seed: 0 });
 * const { median, p95 } = await measureLatency(() => model.run(x), { warmup: 5, runs: 50 });
 * ```
 */
export async function measureLatency(run: () => unknown | Promise<unknown>, opts: { warmup?: number; runs?: number } = {}): Promise<Latency> {
  const warmup = opts.warmup ?? 3;
  const runs = opts.runs ?? 20;
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new ValueError(`measureLatency: warmup must be a non-negative integer, got ${warmup}`);
  if (!(Number.isInteger(runs) && runs >= 1)) throw new ValueError(`measureLatency: runs must be a positive integer, got ${runs}`);
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), min: sorted[0]!, mean: times.reduce((s, v) => s + v, 0) / runs, runs, times };
}
