import { Fn, moduleBytes } from './emit.js';
import { Pool } from './pool.js';
import { ResourceLimitError } from '../../core/errors.js';
import { fmtBytes } from '../../core/limits.js';
import { type DepthwiseSpec, WASM_ACTIVATIONS, activationPassKernel, type WasmActivation, depthwiseChannelsKernel, depthwiseKernel, depthwiseName, gemmKernel, gemvKernel, im2colKernel, padPlaneKernel, padSplitKernel, BINARY_OPS, binaryKernel, meanRowsKernel, type WasmBinaryOp } from './kernels.js';

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

let enabled: boolean | undefined;
let state: Runtime | null | undefined; // null: unavailable

/** Whether this engine can validate a module using f32x4 SIMD. */
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

/** Turns the WebAssembly SIMD kernels on or off (they are on by default where supported). */
export function useWasmKernels(on: boolean): void {
  enabled = on;
}

/** Whether conv and gemm run their WebAssembly SIMD kernels now. */
export function wasmKernelsEnabled(): boolean {
  if (enabled === undefined) {
    const env = typeof process !== 'undefined' ? process.env?.LIGHTCONV_WASM : undefined;
    enabled = env !== '0' && env !== 'false';
  }
  return enabled && runtime() !== null;
}

/** Runs `fn` with the WebAssembly kernels switched on or off, restoring the setting after. */
export function withWasmKernels<T>(on: boolean, fn: () => T): T {
  const prev = enabled;
  enabled = on;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
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
  /** Free blocks [start, size] in bytes, sorted by start. */
  private free: [number, number][] = [];
  private sizes = new Map<number, number>();
  private pages: number;

  constructor() {
    this.shared = typeof SharedArrayBuffer !== 'undefined' && (typeof crossOriginIsolated === 'undefined' || crossOriginIsolated);
    const initial = 256; // 16 MiB to start; grows on demand
    this.memory = this.shared ? new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial, maximum: MAX_PAGES });
    this.pages = initial;
    this.free = [[1024, initial * PAGE - 1024]]; // the first KiB stays unused: address 0 is never handed out
    this.pool = new Pool(this);
    const fns: Fn[] = [padPlaneKernel(), im2colKernel(1), im2colKernel(2), activationPassKernel('sigmoid'), activationPassKernel('silu')];
    for (const act of WASM_ACTIVATIONS) fns.push(gemmKernel(act), gemvKernel(act));
    for (const op of Object.keys(BINARY_OPS) as WasmBinaryOp[]) fns.push(binaryKernel(op, 'vv'), binaryKernel(op, 'vs'), binaryKernel(op, 'sv'));
    fns.push(meanRowsKernel());
    this.addModule(fns);
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

  /** The depthwise kernel for a geometry, generated on first use. */
  depthwise(spec: DepthwiseSpec): (...args: number[]) => void {
    const name = depthwiseName(spec);
    // Function 0 and 1 of the module are what depthwiseChannelsKernel calls.
    const pad = spec.sw === 2 ? padSplitKernel(`pad_${name}`) : padPlaneKernel(`pad_${name}`);
    if (!this.fns[name]) this.addModule([pad, depthwiseKernel(spec), depthwiseChannelsKernel(spec)]);
    return this.fns[name]!;
  }

  /** Allocates `bytes` (rounded up to 64) and returns the byte address. */
  alloc(bytes: number): number {
    const size = Math.max(64, Math.ceil(bytes / 64) * 64);
    for (;;) {
      for (let i = 0; i < this.free.length; i++) {
        const blk = this.free[i]!;
        if (blk[1] >= size) {
          const ptr = blk[0];
          blk[0] += size;
          blk[1] -= size;
          if (blk[1] === 0) this.free.splice(i, 1);
          this.sizes.set(ptr, size);
          return ptr;
        }
      }
      this.grow(size);
    }
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
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
  }

  private grow(atLeast: number): void {
    const last = this.free[this.free.length - 1];
    const end = this.pages * PAGE;
    const tail = last && last[0] + last[1] === end ? last[1] : 0;
    const need = Math.ceil((atLeast - tail) / PAGE);
    const add = Math.max(need, Math.ceil(this.pages / 4)); // grow by at least a quarter
    if (this.pages + add > MAX_PAGES) throw new ResourceLimitError(`the WebAssembly kernels need more than their 4 GiB of memory (${fmtBytes(atLeast)} more asked)`);
    try {
      this.memory.grow(add);
    } catch {
      throw new ResourceLimitError(`the WebAssembly kernels' memory cannot grow by ${fmtBytes(add * PAGE)} (the engine refused)`);
    }
    this.pages += add;
    if (tail > 0) last![1] += add * PAGE;
    else this.free.push([end, add * PAGE]);
  }

  /** Bytes currently handed out (for tests). */
  get allocatedBytes(): number {
    let s = 0;
    for (const v of this.sizes.values()) s += v;
    return s;
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
 * The ONNX loader marks every initializer; weights being trained are never marked.
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
  const entry = packedCache.get(data);
  if (!entry) return;
  packedCache.delete(data);
  registry?.unregister(data);
  for (const p of entry.ptrs) state?.release(p);
}

/** Whether `data` was declared constant with markConstant. */
export function isConstant(data: Float32Array): boolean {
  return constants.has(data);
}

/**
 * A copy of (part of) `data` in wasm memory, made by fill(ptr) into `floats` floats: cached
 * under `key` when `data` is constant (freed with it), else written into `scratch`.
 */
function constantCopy(rt: Runtime, data: Float32Array, key: string, floats: number, scratch: number, fill: (ptr: number) => void): number {
  const cacheable = constants.has(data);
  if (!cacheable) {
    fill(scratch);
    return scratch;
  }
  let entry = packedCache.get(data);
  const hit = entry?.map.get(key);
  if (hit !== undefined) return hit;
  const ptr = rt.alloc(4 * floats);
  fill(ptr);
  if (!entry) {
    entry = { map: new Map(), ptrs: [] };
    packedCache.set(data, entry);
    registry?.register(data, entry.ptrs);
  }
  entry.map.set(key, ptr);
  entry.ptrs.push(ptr);
  return ptr;
}

/** The floats data[offset, offset + count) in wasm memory: cached for constants, else copied into scratch. */
export function placeConstant(rt: Runtime, data: Float32Array, offset: number, count: number, scratch: number): number {
  return constantCopy(rt, data, `copy:${offset}:${count}`, count, scratch, (ptr) => rt.f32().set(data.subarray(offset, offset + count), ptr >> 2));
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
    let o = ptr >> 2;
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

/** The wasm epilogue for an activation, or 'none' when JS must apply it afterwards. */
export function wasmActivation(kind: string): WasmActivation {
  return (WASM_ACTIVATIONS as readonly string[]).includes(kind) ? (kind as WasmActivation) : 'none';
}
