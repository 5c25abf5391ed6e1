import type { Activation } from '../activation.js';
import { actParams } from './conv.js';
import { type Call, chunkCount, splitRange, streamNs } from './pool.js';
import { type WasmActivation, type WasmBinaryOp, BINARY_OPS } from './kernels.js';
import { type Runtime, constantCopy, f32Index, runtime, wasmActivation, wasmKernelsEnabled } from './runtime.js';
import { scratchBytes } from './budget.js';

/**
 * Elementwise ops and the global average pool on the WebAssembly kernels, for arrays that
 * already live in wasm memory (the graph runner's arena): the SE gate multiply, residual adds,
 * the squeeze, activations that are nodes of their own (an ECA gate's sigmoid). Outside an
 * arena the TypeScript loops are as fast as a copy in and out.
 */

/** Splits rows [0, rows) into chunks worth a hand-off each (one chunk: run here). */
function rowChunks(rows: number, floats: number): [number, number][] {
  return splitRange(rows, chunkCount(streamNs(floats)));
}

/** The address of `a` in wasm memory, copying it into scratch at `ptr` when it is not there (floats [0, extent)). */
function place(rt: Runtime, a: Float32Array, extent: number, ptr: number): number {
  const at = rt.addressOf(a);
  if (at >= 0) return at;
  rt.f32().set(a.subarray(0, extent), f32Index(ptr));
  return ptr;
}

/**
 * Y = A ∘ B as `rows` rows of n (row r of A at r·ra floats, of B at r·rb; kind 0: both rows
 * vectors, 1: B one value per row, 2: A one value per row), the row plan of elementwise.ts.
 * Returns false, having done nothing, unless Y lives in wasm memory; a small operand that
 * does not (a gate computed in TypeScript) is copied in.
 */
export function wasmBinaryRows(op: string, rows: number, n: number, ra: number, rb: number, kind: 0 | 1 | 2, A: Float32Array, B: Float32Array, Y: Float32Array): boolean {
  if (!(op in BINARY_OPS) || !wasmKernelsEnabled()) return false;
  const rt = runtime()!;
  const yAt = rt.addressOf(Y);
  if (yAt < 0 || rows * n === 0) return false;
  const extentA = (rows - 1) * ra + (kind === 2 ? 1 : n);
  const extentB = (rows - 1) * rb + (kind === 1 ? 1 : n);
  const copyA = rt.addressOf(A) < 0 ? extentA : 0;
  const copyB = rt.addressOf(B) < 0 ? extentB : 0;
  if (4 * (copyA + copyB) > rows * n) return false; // copying a big operand costs more than it saves
  const base = copyA + copyB > 0 ? rt.alloc(scratchBytes(4 * (copyA + copyB) + 64)) : 0;
  try {
    const pA = place(rt, A, extentA, base);
    const pB = place(rt, B, extentB, base + 4 * copyA);
    const name = `bin_${op as WasmBinaryOp}_${['vv', 'vs', 'sv'][kind]}`;
    if (rows === 1 && kind === 0) {
      // One long row (a residual add): chunks of whole vectors.
      const calls: Call[][] = rowChunks(Math.ceil(n / 4), n).map(([v0, v1]) => [[name, pA + 16 * v0, 0, pB + 16 * v0, 0, yAt + 16 * v0, 1, Math.min(n, 4 * v1) - 4 * v0]]);
      rt.pool.run(calls);
    } else {
      const calls: Call[][] = rowChunks(rows, rows * n).map(([r0, r1]) => [[name, pA + 4 * r0 * ra, 4 * ra, pB + 4 * r0 * rb, 4 * rb, yAt + 4 * r0 * n, r1 - r0, n]]);
      rt.pool.run(calls);
    }
  } finally {
    if (base) rt.release(base);
  }
  return true;
}

/**
 * y[r] = mean of X's row r (rows of n floats): the global average pool over NCHW planes.
 * Returns false unless X lives in wasm memory.
 */
export function wasmMeanRows(X: Float32Array, y: Float32Array, rows: number, n: number): boolean {
  if (!wasmKernelsEnabled() || rows * n === 0) return false;
  const rt = runtime()!;
  const xAt = rt.addressOf(X);
  if (xAt < 0) return false;
  const yAt = rt.addressOf(y);
  const base = yAt < 0 ? rt.alloc(scratchBytes(4 * rows)) : 0;
  try {
    const pY = yAt >= 0 ? yAt : base;
    rt.pool.run(rowChunks(rows, rows * n).map(([r0, r1]) => [['mean_rows', xAt + 4 * r0 * n, pY + 4 * r0, r1 - r0, n, 1 / n]]));
    if (yAt < 0) y.set(rt.f32().subarray(f32Index(base), f32Index(base) + rows));
  } finally {
    if (base) rt.release(base);
  }
  return true;
}

/**
 * Y = act(X) for n floats, when both live in wasm memory and the activation has a kernel
 * (not tanh): chunks that copy their part of X and activate it in place. Returns false,
 * having done nothing, otherwise.
 */
export function wasmActivate(act: Activation, X: Float32Array, Y: Float32Array): boolean {
  const [p1, p2] = actParams(act);
  return activationPass(wasmActivation(act.kind), p1, p2, X, Y);
}

/** Y = GELU(X) (the exact form), as wasmActivate: false, having done nothing, outside wasm memory. */
export function wasmGelu(X: Float32Array, Y: Float32Array): boolean {
  return activationPass('gelu', 0, 0, X, Y);
}

function activationPass(kind: WasmActivation, p1: number, p2: number, X: Float32Array, Y: Float32Array): boolean {
  if (kind === 'none' || !wasmKernelsEnabled() || Y.length === 0) return false;
  const rt = runtime()!;
  const xAt = rt.addressOf(X);
  const yAt = rt.addressOf(Y);
  if (xAt < 0 || yAt < 0) return false;
  const n = Y.length;
  const calls = splitRange(Math.ceil(n / 4), chunkCount(streamNs(2 * n))).map(([v0, v1]): Call[] => {
    const count = Math.min(n, 4 * v1) - 4 * v0;
    return [
      ['copy2d', xAt + 16 * v0, 0, 4, yAt + 16 * v0, 0, 4, 1, count],
      [`act_${kind}`, yAt + 16 * v0, count, p1, p2],
    ];
  });
  rt.pool.run(calls);
  return true;
}

/** Small numbers for arrays, so that a cache key can name several constants. */
const arrayIds = new WeakMap<object, number>();
let nextArrayId = 1;
function arrayId(a: object): number {
  let id = arrayIds.get(a);
  if (id === undefined) arrayIds.set(a, (id = nextArrayId++));
  return id;
}

/**
 * Y = act(a[c]·X + b[c]) per channel plane of an [N, C, inner] float32 tensor, when X and Y live
 * in wasm memory (a graph run's arena): batch norm at inference. a and b come from `affine` and
 * are kept in kernel memory with the constant `scale` (a loaded model's BN parameters never
 * change; the key names the other three), so a recorded run replays them. Returns false,
 * having done nothing, otherwise; an activation without a wasm epilogue is left to the caller.
 */
export function wasmChannelAffine(X: Float32Array, Y: Float32Array, n: number, C: number, inner: number, params: readonly ArrayLike<number>[], epsilon: number, affine: () => { a: Float64Array; b: Float64Array }, act: Activation): boolean {
  if (!wasmKernelsEnabled() || n * C * inner === 0) return false;
  const rt = runtime()!;
  const xAt = rt.addressOf(X);
  const yAt = rt.addressOf(Y);
  if (xAt < 0 || yAt < 0) return false;
  const scale = params[0];
  const cacheable = scale instanceof Float32Array && params.every((p) => typeof p === 'object');
  const scratch = rt.alloc(scratchBytes(8 * C + 64));
  try {
    const fill = (ptr: number) => {
      const { a, b } = affine();
      const v = rt.f32();
      const o = f32Index(ptr);
      for (let c = 0; c < C; c++) {
        v[o + c] = a[c]!;
        v[o + C + c] = b[c]!;
      }
    };
    const pA = cacheable ? constantCopy(rt, scale, `affine:${epsilon}:${params.slice(1).map((p) => arrayId(p as object)).join(':')}`, 2 * C, scratch, fill) : (fill(scratch), scratch);
    const pB = pA + 4 * C;
    const kind = wasmActivation(act.kind);
    const [p1, p2] = actParams(act);
    const calls: Call[][] = [];
    for (let img = 0; img < n; img++) {
      for (const [c0, c1] of rowChunks(C, C * inner)) calls.push([[`affine_${kind}`, xAt + 4 * img * C * inner, yAt + 4 * img * C * inner, inner, pA, pB, c0, c1, p1, p2]]);
    }
    rt.pool.run(calls);
  } finally {
    rt.release(scratch);
  }
  return true;
}

