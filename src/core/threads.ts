import { ValueError } from './errors.js';

/**
 * How many threads the CPU kernels may use (the calling thread included). One pool per
 * engine: the WebAssembly kernels (src/kernels/wasm/pool.ts) start n − 1 workers the next
 * time they run; when this goes down again the extra workers stay parked (asleep, unref'd)
 * until it goes back up. Default 1: no workers at all.
 * Workers never keep Node from exiting (they are unref'd).
 */
let threads = 1;

export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new ValueError(`setThreads: expected an integer in [1, 64], got ${n}`);
  threads = n;
}

export function getThreads(): number {
  return threads;
}
