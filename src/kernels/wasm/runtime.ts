import { Fn, V128, moduleBytes } from './emit.js';
import { Pool } from './pool.js';
import { ResourceLimitError, ValueError } from '../../core/errors.js';
import { fmtBytes } from '../../core/limits.js';
import { winogradInputKernel, winogradOutputKernel } from './winograd_kernels.js';
import { type DepthwiseSpec, WASM_ACTIVATIONS, activationPassKernel, affineKernel, type WasmActivation, depthwiseChannelsKernel, depthwiseKernel, depthwiseName, gemmKernel, gemvKernel, im2colKernel, padPlaneKernel, padSplitKernel, BINARY_OPS, binaryKernel, meanRowsKernel, type WasmBinaryOp, copy2dKernel, fillKernel, poolKernel, FUSED_SUFFIX } from './kernels.js';

/**
 * The WebAssembly side of the CPU backend: one memory (shared when SharedArrayBuffer is there,
 * so worker threads can run on it), a small first-fit heap over it, and the generated
 * modules. Nothing happens at import: the first kernel call (or `warmUpWasm`) builds it all.
 *
 * Switch: `useWasmKernels(false)` or the environment variable LIGHTCONV_WASM=0 force the
 * plain TypeScript kernels (for comparison, or where WebAssembly SIMD is missing, in which
 * case they are used anyway).
 */

type Exports = Record<string, (...args: number[]) => void>;

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit
/**
 * The heap never reaches the last page: a block ending at 4 GiB would have its end address
 * wrap to 0 in the kernels' i32 arithmetic, and vector kernels may read a few floats past a
 * block's end, which must still be memory.
 */
const HEAP_END = (MAX_PAGES - 1) * PAGE;

/**
 * The index in a Float32Array over the whole memory of byte address `ptr`. Unsigned: the
 * memory reaches 4 GiB, and a signed `ptr >> 2` goes negative past 2 GiB.
 */
export function f32Index(ptr: number): number {
  return ptr >>> 2;
}

let enabled: boolean | undefined;
let state: Runtime | null | undefined; // null: unavailable

/**
 * Whether this engine can validate a module using f32x4 SIMD (false where WebAssembly is absent).
 *
 * @example
 * ```ts
 * import { wasmSimdSupported } from 'lightconv';
 *
 * if (!wasmSimdSupported()) console.warn('no WebAssembly SIMD: conv and gemm run their JavaScript kernels');
 * ```
 */
export function wasmSimdSupported(): boolean {
  if (typeof WebAssembly === 'undefined' || typeof WebAssembly.validate !== 'function') return false;
  try {
    const f = new Fn('probe', []);
    f.v128Zero().v128Zero().fadd().drop();
    return WebAssembly.validate(moduleBytes([f], { initial: 1, maximum: 1, shared: false }));
  } catch {
    return false;
  }
}

/**
 * Turns the WebAssembly SIMD kernels on or off (they are on by default where supported;
 * `LIGHTCONV_WASM=0` turns them off at start). Off, conv and gemm run their JavaScript kernels.
 *
 * @example
 * ```ts
 * import { useWasmKernels } from 'lightconv';
 *
 * useWasmKernels(false); // e.g. to compare against the JavaScript kernels
 * ```
 */
export function useWasmKernels(on: boolean): void {
  enabled = on;
}

/**
 * Whether conv and gemm run their WebAssembly SIMD kernels now: switched on (the default,
 * unless `LIGHTCONV_WASM` is 0 or false) and supported by the engine.
 *
 * @example
 * ```ts
 * import { wasmKernelsEnabled } from 'lightconv';
 *
 * console.log(`kernels: ${wasmKernelsEnabled() ? 'WebAssembly SIMD' : 'JavaScript'}`);
 * ```
 */
export function wasmKernelsEnabled(): boolean {
  if (enabled === undefined) {
    const env = typeof process !== 'undefined' ? process.env?.LIGHTCONV_WASM : undefined;
    enabled = env !== '0' && env !== 'false';
  }
  return enabled && runtime() !== null;
}

/**
 * Runs `fn` with the WebAssembly kernels switched on or off, restoring the setting after (also
 * when `fn` throws); returns what `fn` returns.
 *
 * @example
 * ```ts
 * import { Tensor, conv, withWasmKernels } from 'lightconv';
 *
 * const x = Tensor.randn([1, 3, 16, 16], { seed: 0 });
 * const w = Tensor.randn([8, 3, 3, 3], { seed: 1 });
 * const plain = withWasmKernels(false, () => conv(x, w)); // the JavaScript kernel's result
 * ```
 */
export function withWasmKernels<T>(on: boolean, fn: () => T): T {
  const prev = enabled;
  enabled = on;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

let relaxed: boolean | undefined;
let relaxedProbe: boolean | undefined;

/**
 * Whether this engine validates relaxed SIMD's f32x4.relaxed_madd (Node ≥ 22, Chrome ≥ 114;
 * Node 20's V8 has it only behind a flag). False without WebAssembly SIMD. Probed once.
 *
 * @example
 * ```ts
 * import { relaxedSimdSupported, useRelaxedSimd } from 'lightconv';
 *
 * if (relaxedSimdSupported()) useRelaxedSimd(true);
 * ```
 */
export function relaxedSimdSupported(): boolean {
  if (relaxedProbe === undefined) {
    relaxedProbe = false;
    if (wasmSimdSupported()) {
      try {
        const f = new Fn('probe', []);
        f.v128Zero().v128Zero().madd(f.local(V128), true).drop();
        relaxedProbe = WebAssembly.validate(moduleBytes([f], { initial: 1, maximum: 1, shared: false }));
      } catch {
        relaxedProbe = false;
      }
    }
  }
  return relaxedProbe;
}

/**
 * Lets the GEMM kernels (convolutions, Gemm, MatMul) use relaxed SIMD's fused multiply-add where
 * the engine has it (off by default; `LIGHTCONV_RELAXED_SIMD=1` turns it on at start). Fused
 * products round once instead of twice, so results change in the last bits and, unlike the
 * default kernels, differ between machines with and without FMA; on one machine they stay the
 * same run after run, for any batch size and thread count. Set it before loading a model: a
 * recorded run keeps the kernels it was recorded with. Where the engine lacks relaxed SIMD,
 * turning it on changes nothing.
 *
 * @example
 * ```ts
 * import { useRelaxedSimd } from 'lightconv';
 *
 * useRelaxedSimd(true); // before loading the model
 * ```
 */
export function useRelaxedSimd(on: boolean): void {
  relaxed = on;
}

/**
 * Whether the GEMM kernels use relaxed SIMD's fused multiply-add now: switched on (by
 * `useRelaxedSimd` or `LIGHTCONV_RELAXED_SIMD=1`) and supported by the engine.
 *
 * @example
 * ```ts
 * import { relaxedSimdEnabled } from 'lightconv/onnx';
 *
 * console.log(`fused multiply-add: ${relaxedSimdEnabled()}`);
 * ```
 */
export function relaxedSimdEnabled(): boolean {
  if (relaxed === undefined) {
    const env = typeof process !== 'undefined' ? process.env?.LIGHTCONV_RELAXED_SIMD : undefined;
    relaxed = env === '1' || env === 'true';
  }
  return relaxed && relaxedSimdSupported();
}

/** The GEMM/GEMV kernel suffix for the current setting ('' or FUSED_SUFFIX). */
export function gemmSuffix(): string {
  return relaxedSimdEnabled() ? FUSED_SUFFIX : '';
}

export class Runtime {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  /**
   * The compiled modules, for workers that instantiate the same kernels on the same memory.
   * Workers get the compiled module itself, not its bytes: V8 shares the machine code (and its
   * tier-up to optimised code) between threads, so a worker does not start on baseline code.
   */
  readonly modules: WebAssembly.Module[] = [];
  readonly fns: Exports = {};
  /** The worker pool (setThreads); with one thread it just runs calls inline. */
  readonly pool: Pool;
  private buffer: ArrayBufferLike | null = null;
  private f32View = new Float32Array(0);
  /** The heap over the whole memory (grows with it). */
  private readonly heap: Heap;
  /**
   * While a plan records (plan.ts): the heap over the plan's own region, from which scratch
   * and arena blocks come, so that the addresses a plan replays stay the plan's.
   */
  private region: Heap | null = null;
  private pages: number;
  /** Where the heap ends: the memory's size, up to HEAP_END. */
  private heapTop: number;

  constructor() {
    this.shared = typeof SharedArrayBuffer !== 'undefined' && (typeof crossOriginIsolated === 'undefined' || crossOriginIsolated);
    const initial = 256; // 16 MiB to start; grows on demand
    this.memory = this.shared ? new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial, maximum: MAX_PAGES });
    this.pages = initial;
    this.heapTop = initial * PAGE;
    this.heap = new Heap(1024, initial * PAGE - 1024); // the first KiB stays unused: address 0 is never handed out
    this.pool = new Pool(this);
    const fns: Fn[] = [padPlaneKernel(), im2colKernel(1), im2colKernel(2)];
    for (const act of WASM_ACTIVATIONS) fns.push(gemmKernel(act), gemvKernel(act), ...(act === 'none' ? [] : [activationPassKernel(act)]));
    for (const op of Object.keys(BINARY_OPS) as WasmBinaryOp[]) fns.push(binaryKernel(op, 'vv'), binaryKernel(op, 'vs'), binaryKernel(op, 'sv'));
    fns.push(meanRowsKernel(), copy2dKernel(), fillKernel(), winogradInputKernel());
    for (const act of WASM_ACTIVATIONS) fns.push(winogradOutputKernel(act), affineKernel(act));
    for (const kind of ['max', 'avg'] as const) fns.push(poolKernel(kind, 1), poolKernel(kind, 2));
    this.addModule(fns);
    // The fused-multiply-add GEMMs in a module of their own: engines without relaxed SIMD would
    // refuse the whole module.
    if (relaxedSimdSupported()) this.addModule(WASM_ACTIVATIONS.flatMap((act) => [gemmKernel(act, true), gemvKernel(act, true)]));
  }

  private addModule(fns: Fn[]): void {
    const module = new WebAssembly.Module(moduleBytes(fns, { initial: 1, maximum: MAX_PAGES, shared: this.shared }));
    const inst = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.modules.push(module);
    Object.assign(this.fns, inst.exports as Exports);
    this.pool.addModule(module, fns.map((f) => f.name));
  }

  /** A Float32Array over the whole memory, re-made after the memory grew. */
  f32(): Float32Array {
    if (this.buffer !== this.memory.buffer) {
      this.buffer = this.memory.buffer;
      this.buffers.add(this.buffer);
      this.f32View = new Float32Array(this.buffer);
    }
    return this.f32View;
  }

  /** Every buffer object this memory has shown (a shared memory shows a new one after growing). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();

  /**
   * The byte address of `a` when its elements live in this memory (an arena output), else −1.
   * Kernels then read and write it in place instead of copying.
   */
  addressOf(a: Float32Array): number {
    this.f32();
    return this.buffers.has(a.buffer) ? a.byteOffset : -1;
  }

  /** Runs one kernel call on this thread (recorded as a job of its own while a plan records). */
  call(name: string, ...args: number[]): void {
    this.pool.run([[[name, ...args]]]);
  }

  /** A kernel that another file generates, built (with the rest of `make`'s module) on first use. */
  kernel(name: string, make: () => Fn[]): (...args: number[]) => void {
    if (!this.fns[name]) this.addModule(make());
    return this.fns[name]!;
  }

  /** The depthwise kernel for a geometry, generated on first use. */
  depthwise(spec: DepthwiseSpec): (...args: number[]) => void {
    const name = depthwiseName(spec);
    // Function 0 and 1 of the module are what depthwiseChannelsKernel calls.
    const pad = spec.sw === 2 ? padSplitKernel(`pad_${name}`) : padPlaneKernel(`pad_${name}`);
    if (!this.fns[name]) this.addModule([pad, depthwiseKernel(spec), depthwiseChannelsKernel(spec)]);
    return this.fns[name]!;
  }

  /**
   * Allocates `bytes` (rounded up to 64) and returns the byte address. While a plan records,
   * from its region unless `lasting` (memory that outlives the run: packed constants).
   */
  alloc(bytes: number, lasting = false): number {
    if (!(bytes >= 0)) throw new ValueError(`kernel memory: cannot allocate ${bytes} bytes`);
    if (bytes > HEAP_END) throw this.full(bytes);
    const size = Math.max(64, Math.ceil(bytes / 64) * 64);
    if (this.region && !lasting) {
      const ptr = this.region.take(size);
      if (ptr < 0) throw new RegionFull();
      return ptr;
    }
    for (;;) {
      const ptr = this.heap.take(size);
      if (ptr >= 0) {
        this.peak = Math.max(this.peak, this.heap.used);
        return ptr;
      }
      this.grow(size);
    }
  }

  release(ptr: number): void {
    if (!this.region?.give(ptr)) this.heap.give(ptr);
  }

  /** Most bytes the main heap has handed out at once since `resetPeak` (sizes a plan's region). */
  peak = 0;

  resetPeak(): number {
    return (this.peak = this.heap.used);
  }

  /**
   * Runs fn with scratch and arena allocations served from [base, base + bytes) (a block of
   * the main heap the caller owns); one that does not fit throws RegionFull.
   */
  withRegion<T>(base: number, bytes: number, fn: () => T): T {
    const prev = this.region;
    this.region = new Heap(base, bytes);
    try {
      return fn();
    } finally {
      this.region = prev;
    }
  }

  /** Grows the memory so that a free block of `size` bytes ends the heap. */
  private grow(size: number): void {
    const end = this.heapTop;
    const newEnd = end - this.heap.tailFree(end) + size;
    if (newEnd > HEAP_END) throw this.full(size);
    // At least a quarter more each time (fewer grows, each of which may copy a plain memory).
    const pages = Math.min(MAX_PAGES, Math.max(Math.ceil(newEnd / PAGE), this.pages + Math.ceil(this.pages / 4)));
    try {
      this.memory.grow(pages - this.pages);
    } catch {
      throw new ResourceLimitError(
        `the WebAssembly kernels' memory cannot grow from ${fmtBytes(this.pages * PAGE)} to ${fmtBytes(pages * PAGE)} for a block of ${fmtBytes(size)} (${fmtBytes(this.heap.used)} in use): the engine refused`,
      );
    }
    this.pages = pages;
    this.heapTop = Math.min(pages * PAGE, HEAP_END);
    this.heap.extend(end, this.heapTop - end);
  }

  /** The error for a block that cannot fit even in a full-grown memory. */
  private full(bytes: number): ResourceLimitError {
    return new ResourceLimitError(
      `the WebAssembly kernels' memory cannot hold another ${fmtBytes(bytes)}: ${fmtBytes(this.heap.used)} of it is in use, ` +
        `the largest free block is ${fmtBytes(Math.max(this.heap.largestFree(), HEAP_END - this.heapTop + this.heap.tailFree(this.heapTop)))}, ` +
        `and it can grow to ${fmtBytes(HEAP_END)} (the 4 GiB of 32-bit WebAssembly, less a guard page); ` +
        `loaded models hold theirs until dispose()`,
    );
  }

  /** Bytes currently handed out (for tests). */
  get allocatedBytes(): number {
    return this.heap.used;
  }

  /** The memory's size in bytes (it only grows). */
  get memoryBytes(): number {
    return this.pages * PAGE;
  }

  /** The free blocks of the heap as [address, bytes], by address (for tests that place blocks). */
  get freeBlocks(): readonly (readonly [number, number])[] {
    return this.heap.freeBlocks();
  }
}

/** A plan's region was too small for its recording run (plan.ts then records with a bigger one). */
export class RegionFull extends Error {}

/** A first-fit heap over a range of the memory: free blocks [start, size] in bytes, sorted by start. */
class Heap {
  private readonly free: [number, number][];
  private readonly sizes = new Map<number, number>();
  used = 0;

  constructor(start: number, bytes: number) {
    this.free = bytes > 0 ? [[start, bytes]] : [];
  }

  /** The address of `size` bytes (a multiple of 64), or −1 when no free block is big enough. */
  take(size: number): number {
    for (let i = 0; i < this.free.length; i++) {
      const blk = this.free[i]!;
      if (blk[1] >= size) {
        const ptr = blk[0];
        blk[0] += size;
        blk[1] -= size;
        if (blk[1] === 0) this.free.splice(i, 1);
        this.sizes.set(ptr, size);
        this.used += size;
        return ptr;
      }
    }
    return -1;
  }

  /** Frees a block this heap handed out; false when `ptr` is not one. */
  give(ptr: number): boolean {
    const size = this.sizes.get(ptr);
    if (size === undefined) return false;
    this.sizes.delete(ptr);
    this.used -= size;
    let i = 0;
    while (i < this.free.length && this.free[i]![0] < ptr) i++;
    this.free.splice(i, 0, [ptr, size]);
    // Merge with the neighbours.
    const next = this.free[i + 1];
    if (next && ptr + size === next[0]) {
      this.free[i]![1] += next[1];
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev[0] + prev[1] === ptr) {
      prev[1] += this.free[i]![1];
      this.free.splice(i, 1);
    }
    return true;
  }

  largestFree(): number {
    let m = 0;
    for (const b of this.free) m = Math.max(m, b[1]);
    return m;
  }

  freeBlocks(): [number, number][] {
    return this.free.map(([a, n]) => [a, n]);
  }

  /** Free bytes that end at `end` (the heap's last block, when it reaches the end). */
  tailFree(end: number): number {
    const last = this.free[this.free.length - 1];
    return last && last[0] + last[1] === end ? last[1] : 0;
  }

  /** Adds [start, start + bytes) (the memory grew), merging with a free block that ends there. */
  extend(start: number, bytes: number): void {
    const last = this.free[this.free.length - 1];
    if (last && last[0] + last[1] === start) last[1] += bytes;
    else this.free.push([start, bytes]);
  }
}

/** The runtime, built on first use; null where WebAssembly SIMD is unavailable. */
export function runtime(): Runtime | null {
  if (state === undefined) {
    try {
      state = wasmSimdSupported() ? new Runtime() : null;
    } catch {
      state = null;
    }
  }
  return state;
}

/** Packed weight panels kept in wasm memory for weights registered as constant. */
const constants = new WeakSet<Float32Array>();
const packedCache = new WeakMap<Float32Array, { map: Map<string, number>; ptrs: number[] }>();
const registry =
  typeof FinalizationRegistry !== 'undefined'
    ? new FinalizationRegistry<number[]>((ptrs) => {
        for (const p of ptrs) state?.release(p);
      })
    : null;

/**
 * Declares that `data` (a model's weight) will not change from now on, so kernels may keep a
 * packed copy of it inside WebAssembly memory (freed when `data` is garbage-collected).
 * The ONNX loader marks every initializer (through holdConstant: freed when the model is
 * disposed); weights being trained are never marked.
 *
 * @example
 * ```ts
 * import { Tensor, markConstant } from 'lightconv';
 *
 * const w = Tensor.randn([16, 3, 3, 3], { seed: 0 }); // a weight that will never be written again
 * markConstant(w.dataSync() as Float32Array);
 * ```
 */
export function markConstant(data: Float32Array): void {
  constants.add(data);
}

/**
 * Withdraws markConstant (and frees the packed copies): the conv and gemm cards call this when
 * a weight shows up with requiresGrad set, so that a loaded model being fine-tuned (its
 * weights updated in place) never runs on stale packed weights.
 */
export function forgetConstant(data: Float32Array): void {
  if (!constants.delete(data)) return;
  holders.delete(data);
  markedByHolders.delete(data);
  constantsEpoch++;
  freePacked(data);
}

/** Frees the packed copies of `data` now (instead of when it is garbage-collected). */
function freePacked(data: Float32Array): void {
  const entry = packedCache.get(data);
  if (!entry) return;
  packedCache.delete(data);
  registry?.unregister(data);
  for (const p of entry.ptrs) state?.release(p);
}

/** Models holding each constant (holdConstant), so that one disposed model frees only what no other one uses. */
const holders = new WeakMap<Float32Array, number>();
/** Constants that holdConstant marked (not a caller's own markConstant, which a model's dispose leaves alone). */
const markedByHolders = new WeakSet<Float32Array>();

/**
 * markConstant on behalf of a holder (a loaded model) that will call releaseConstant when it
 * is disposed: the packed copies then go back to the kernel memory at once, not whenever the
 * garbage collector gets to the weights.
 */
export function holdConstant(data: Float32Array): void {
  if (!constants.has(data)) {
    markedByHolders.add(data);
    markConstant(data);
  }
  holders.set(data, (holders.get(data) ?? 0) + 1);
}

/**
 * Ends a holdConstant. When no holder is left, `data` is no longer constant and its packed
 * copies are freed. Unlike forgetConstant this keeps every plan valid: only the holder's own
 * plans (disposed with it) read those copies, and any other plan reads copies of other arrays.
 */
export function releaseConstant(data: Float32Array): void {
  const n = holders.get(data);
  if (n === undefined) return;
  if (n > 1) {
    holders.set(data, n - 1);
    return;
  }
  holders.delete(data);
  if (!markedByHolders.delete(data)) return;
  constants.delete(data);
  freePacked(data);
}

/**
 * Counts forgetConstant calls: a plan (plan.ts) replays the addresses of packed constants,
 * and is dropped when this changed since it was recorded.
 */
export let constantsEpoch = 0;

/** Whether `data` was declared constant with markConstant. */
export function isConstant(data: Float32Array): boolean {
  return constants.has(data);
}

/**
 * A copy of (part of) `data` in wasm memory, made by fill(ptr) into `floats` floats: cached
 * under `key` when `data` is constant (freed with it), else written into `scratch`.
 */
export function constantCopy(rt: Runtime, data: Float32Array, key: string, floats: number, scratch: number, fill: (ptr: number) => void): number {
  const cacheable = constants.has(data);
  if (!cacheable) {
    fill(scratch);
    return scratch;
  }
  let entry = packedCache.get(data);
  const hit = entry?.map.get(key);
  if (hit !== undefined) return hit;
  const ptr = rt.alloc(4 * floats, true);
  fill(ptr);
  if (!entry) {
    entry = { map: new Map(), ptrs: [] };
    packedCache.set(data, entry);
    registry?.register(data, entry.ptrs, data); // data is the unregister token too (held weakly)
  }
  entry.map.set(key, ptr);
  entry.ptrs.push(ptr);
  return ptr;
}

/** Stands for "no bias": a constant, so its zeros are cached like any bias. */
const NO_BIAS = new Float32Array(0);
constants.add(NO_BIAS);

/**
 * The bias of rows [offset, offset + m), times `scale`, zero-padded to `padded` floats (zeros
 * when B is null), in wasm memory: cached for constants, else written into scratch.
 */
export function placeBias(rt: Runtime, B: Float32Array | null, offset: number, m: number, padded: number, scratch: number, scale = 1): number {
  return constantCopy(rt, B ?? NO_BIAS, `bias:${B ? offset : 0}:${m}:${padded}:${scale}`, padded, scratch, (ptr) => {
    const v = rt.f32();
    const o = f32Index(ptr);
    if (!B) v.fill(0, o, o + m);
    else if (scale === 1) v.set(B.subarray(offset, offset + m), o);
    else for (let j = 0; j < m; j++) v[o + j] = scale * B[offset + j]!;
    v.fill(0, o + m, o + padded);
  });
}

/** The floats data[offset, offset + count) in wasm memory: cached for constants, else copied into scratch. */
export function placeConstant(rt: Runtime, data: Float32Array, offset: number, count: number, scratch: number): number {
  return constantCopy(rt, data, `copy:${offset}:${count}`, count, scratch, (ptr) => rt.f32().set(data.subarray(offset, offset + count), f32Index(ptr)));
}

/**
 * Returns the address of A = the m×k matrix with element (i, p) at W[offset + i·rs + p·cs]
 * (row-major by default), packed as 4-row panels (k×4 floats each, rows past m zero).
 * Cached for constant weights; otherwise packed into `scratch`, which the caller allocated
 * with ceil(m/4)·4·k floats.
 */
export function packA(rt: Runtime, W: Float32Array, offset: number, m: number, k: number, scratch: number, rs = k, cs = 1): number {
  const panels = Math.ceil(m / 4);
  return constantCopy(rt, W, `${offset}:${m}:${k}:${rs}:${cs}`, panels * 4 * k, scratch, (ptr) => {
    const v = rt.f32();
    let o = f32Index(ptr);
    for (let i = 0; i < panels; i++) {
      const rows = Math.min(4, m - 4 * i);
      const s0 = offset + 4 * i * rs;
      if (rows === 4) {
        for (let p = 0, q = s0; p < k; p++, o += 4, q += cs) {
          v[o] = W[q]!;
          v[o + 1] = W[q + rs]!;
          v[o + 2] = W[q + 2 * rs]!;
          v[o + 3] = W[q + 3 * rs]!;
        }
      } else {
        for (let p = 0; p < k; p++, o += 4) for (let r = 0; r < 4; r++) v[o + r] = r < rows ? W[s0 + r * rs + p * cs]! : 0;
      }
    }
  });
}

/**
 * dst[r, c] = src[r, c] for a rows × cols matrix (strides in floats), each side an array or a
 * byte address in wasm memory: one kernel call when both live there (which a plan records),
 * else a JavaScript loop.
 */
export function copyMatrix(rt: Runtime, src: Float32Array | number, sRow: number, sCol: number, dst: Float32Array | number, dRow: number, dCol: number, rows: number, cols: number): void {
  const s = typeof src === 'number' ? src : rt.addressOf(src);
  const d = typeof dst === 'number' ? dst : rt.addressOf(dst);
  if (s >= 0 && d >= 0) {
    rt.call('copy2d', s, 4 * sRow, 4 * sCol, d, 4 * dRow, 4 * dCol, rows, cols);
    return;
  }
  const [from, fo] = typeof src === 'number' ? [rt.f32(), f32Index(src)] : [src, 0];
  const [to, to0] = typeof dst === 'number' ? [rt.f32(), f32Index(dst)] : [dst, 0];
  if (sCol === 1 && dCol === 1) {
    for (let r = 0; r < rows; r++) to.set(from.subarray(fo + r * sRow, fo + r * sRow + cols), to0 + r * dRow);
    return;
  }
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) to[to0 + r * dRow + c * dCol] = from[fo + r * sRow + c * sCol]!;
}

/** The wasm epilogue for an activation, or 'none' when JS must apply it afterwards. */
export function wasmActivation(kind: string): WasmActivation {
  return (WASM_ACTIVATIONS as readonly string[]).includes(kind) ? (kind as WasmActivation) : 'none';
}
