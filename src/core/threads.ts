import { ValueError } from './errors.js';

/**
 * How many threads the CPU kernels may use (the calling thread included). One pool per
 * engine: the WebAssembly kernels (src/kernels/wasm/pool.ts) start n − 1 workers the next
 * time they run; when this goes down again the extra workers stay parked (asleep, unref'd)
 * until it goes back up. Default 1: no workers at all.
 * Workers never keep Node from exiting (they are unref'd).
 */
let threads = 1;

/**
 * Lets the CPU kernels use up to `n` threads, the calling thread included (an integer in [1, 64],
 * else a ValueError). The WebAssembly kernels start n − 1 workers the next time they run.
 *
 * @example
 * ```ts
 * import { availableParallelism } from 'node:os';
 * import { setThreads } from 'lightconv';
 *
 * setThreads(Math.min(8, availableParallelism())); // before loading and running models
 * ```
 */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new ValueError(`setThreads: expected an integer in [1, 64], got ${n}`);
  threads = n;
}

/**
 * The thread count the CPU kernels may use (default 1).
 *
 * @example
 * ```ts
 * import { getThreads } from 'lightconv';
 *
 * console.log(`running on ${getThreads()} thread(s)`);
 * ```
 */
export function getThreads(): number {
  return threads;
}
