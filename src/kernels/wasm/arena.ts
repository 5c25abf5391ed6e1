import { ResourceLimitError } from '../../core/errors.js';
import { checkedAlloc, fmtBytes } from '../../core/limits.js';
import type { OutputArena } from '../../core/storage.js';
import { type Runtime, runtime, wasmKernelsEnabled } from './runtime.js';

/**
 * Kernel outputs inside WebAssembly memory for one graph run (see core/storage.ts): the conv,
 * pooling and elementwise kernels then read their inputs and write their outputs where they
 * are, instead of copying every activation into the kernel memory and back out.
 *
 * Only over a shared memory: growing a shared memory leaves existing views valid, while
 * growing a plain one would detach every array handed out so far. Arrays from here are valid
 * until `free` or `close`; the graph runner frees each after its last reader and copies what
 * it returns to the caller out first.
 */
export class KernelArena implements OutputArena {
  /** Live blocks: byte address → floats. */
  private readonly blocks = new Map<number, number>();

  constructor(private readonly rt: Runtime) {}

  alloc(n: number): Float32Array {
    // The tensor budget first, whichever memory the array ends up in.
    checkedAlloc(n, 4);
    // 64 bytes of slack: vector kernels may read (never use) a few lanes past the end.
    let ptr: number;
    try {
      ptr = this.rt.alloc(4 * n + 64);
    } catch (e) {
      if (!(e instanceof ResourceLimitError)) throw e;
      // Kernel memory full (4 GiB): a plain array within the same budget, which the kernels
      // copy in and out; where even that cannot be had, the kernel memory's error says why.
      try {
        return new Float32Array(n);
      } catch {
        throw new ResourceLimitError(`a kernel output of ${fmtBytes(4 * n)} fits neither in kernel memory nor in a plain array (${e.message})`);
      }
    }
    this.blocks.set(ptr, n);
    return new Float32Array(this.rt.memory.buffer, ptr, n);
  }

  /** The byte address of `a` in kernel memory, or −1 (a plain array: the arena was full). */
  addressOf(a: Float32Array): number {
    return this.rt.addressOf(a);
  }

  /** The block holding `a` (its address), or −1 when `a` is not an array from this arena. */
  blockOf(a: ArrayBufferView): number {
    if (!(a instanceof Float32Array)) return -1;
    const addr = this.rt.addressOf(a);
    if (addr < 0) return -1;
    for (const [ptr, n] of this.blocks) if (addr >= ptr && addr < ptr + 4 * Math.max(1, n)) return ptr;
    return -1;
  }

  /** Frees a block (by its address from blockOf). */
  free(ptr: number): void {
    if (this.blocks.delete(ptr)) this.rt.release(ptr);
  }

  /** Frees every block still live. */
  close(): void {
    for (const ptr of this.blocks.keys()) this.rt.release(ptr);
    this.blocks.clear();
  }

  get liveBlocks(): number {
    return this.blocks.size;
  }
}

/** An arena for one run, or null where kernel outputs stay plain arrays (no shared memory, kernels off). */
export function openArena(): KernelArena | null {
  if (!wasmKernelsEnabled()) return null;
  const rt = runtime();
  return rt && rt.shared ? new KernelArena(rt) : null;
}
