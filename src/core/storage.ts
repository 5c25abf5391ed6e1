import { f32Array } from './dtype.js';

/**
 * Where the float32 outputs of the fast kernels live. Normally a fresh (zeroed) Float32Array.
 * Inside `withOutputArena`, the graph runner's arena hands out arrays that sit in the
 * WebAssembly kernels' memory (src/kernels/wasm/arena.ts), so that one layer's output is the
 * next layer's input without a copy into or out of that memory; the runner frees each one
 * after its last reader.
 */
export interface OutputArena {
  /** An uninitialised array of n floats (callers that rely on zeros fill it themselves). */
  alloc(n: number): Float32Array;
}

let current: OutputArena | null = null;

/**
 * An array for a kernel's output of n floats. Contents are unspecified: the caller writes
 * every element (a kernel that accumulates must fill it with zeros first).
 */
export function outputBuffer(n: number): Float32Array {
  // Plain arrays are budget-checked by their maker; the arena checks its own.
  return current ? current.alloc(n) : f32Array(n);
}

/** Whether outputBuffer currently hands out arena arrays. */
export function inOutputArena(): boolean {
  return current !== null;
}

/** Runs fn with `arena` serving outputBuffer (null: plain arrays), restoring the previous one after. */
export function withOutputArena<T>(arena: OutputArena | null, fn: () => T): T {
  const prev = current;
  current = arena;
  try {
    return fn();
  } finally {
    current = prev;
  }
}
