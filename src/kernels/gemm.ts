import { f64Array, f32Array } from '../core/dtype.js';
import { outputBuffer } from '../core/storage.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { checkedSize } from '../core/limits.js';
import { apply, type OpCard } from '../core/op.js';
import { type Shape, fmtShape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { type Activation, NO_ACTIVATION, activateInPlace, activationFn } from './activation.js';
import { gradOf, preActivationGrad, unbroadcast } from './grad.js';
import { wasmGemm } from './wasm/gemm.js';
import { forgetConstant, wasmKernelsEnabled } from './wasm/runtime.js';

// ---------------------------------------------------------------------------------------------
// sgemm: the shared single-precision matrix multiply (also used by conv).
//
// Goto/BLIS structure: B is packed into KC×NC blocks of NR-wide panels, A into MC×KC blocks
// of MR-tall panels, and a 4×4 micro-kernel keeps its 16 accumulators in locals. The packs are
// Float64Array: JS arithmetic is double anyway, so this converts each element once while
// packing instead of once per use (measured ~5% faster than Float32Array packs).
// ---------------------------------------------------------------------------------------------

const MR = 4;
const NR = 4;
/** Depth of one packed block: a KC×NR panel of B (8 KiB) stays in L1 while A streams past. */
const KC = 256;
/** Rows of A per packed block: MC×KC doubles (128 KiB) live in L2. */
const MC = 64;
/** Columns of B per packed block: KC×NC doubles (2 MiB) live in L3. */
const NC = 1024;

const packA = new Float64Array(MC * KC);
const packB = new Float64Array(KC * NC);
const tile = new Float64Array(MR * NR);

/**
 * A strided view of a matrix: element (i, j) is `data[offset + i*rowStride + j*colStride]`.
 * A transposed operand is the same data with the two strides swapped.
 */
export interface MatrixView {
  readonly data: Float32Array;
  readonly offset: number;
  readonly rowStride: number;
  readonly colStride: number;
}

/** Work done on the finished C tile while it is still in cache. */
export interface SgemmEpilogue {
  /** Added to every element of row i: bias[biasOffset + i]. */
  readonly bias?: Float32Array;
  readonly biasOffset?: number;
  readonly activation?: Activation;
}

/** Row-major view of an r×c matrix starting at `offset`. */
export function rowMajor(data: Float32Array, offset: number, cols: number): MatrixView {
  return { data, offset, rowStride: cols, colStride: 1 };
}

/**
 * C = alpha·A·B + beta·C, then + bias per row and the activation (epilogue).
 * A is m×k, B is k×n (any strides), C is row-major with leading dimension `ldc` from `cOffset`.
 * beta = 0 means C is only written (so garbage or NaN in C does not leak through).
 * Not re-entrant: it uses module-level pack buffers (JS is single-threaded).
 */
export function sgemm(
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: MatrixView,
  b: MatrixView,
  beta: number,
  c: Float32Array,
  cOffset: number,
  ldc: number,
  epilogue: SgemmEpilogue = {},
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    // No products: only the beta scaling and the epilogue remain.
    for (let i = 0; i < m; i++) {
      const row = cOffset + i * ldc;
      for (let j = 0; j < n; j++) c[row + j] = beta === 0 ? 0 : beta * c[row + j]!;
    }
    finishTile(c, cOffset, ldc, 0, m, 0, n, epilogue);
    return;
  }
  if (m === 1 || n === 1) {
    // A matrix-vector product: packing would copy the whole matrix to use each element once.
    gemv(m, n, k, alpha, a, b, beta, c, cOffset, ldc);
    finishTile(c, cOffset, ldc, 0, m, 0, n, epilogue);
    return;
  }
  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const first = pc === 0;
      const last = pc + kc === k;
      packPanelsB(b, pc, kc, jc, nc);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        packPanelsA(a, ic, mc, pc, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          for (let ir = 0; ir < mc; ir += MR) {
            microKernel(kc, ir * kc, jr * kc, c, cOffset + (ic + ir) * ldc + jc + jr, ldc, Math.min(MR, mc - ir), nr, alpha, first ? beta : 1);
          }
        }
        if (last) finishTile(c, cOffset, ldc, ic, ic + mc, jc, jc + nc, epilogue);
      }
    }
  }
}

let gemvAcc = f64Array(0);

/**
 * C = alpha·A·B + beta·C when m or n is 1. Each output is a dot product of a matrix line with
 * the vector; when the matrix lines are not contiguous, the matrix is walked along its
 * contiguous dimension instead, accumulating all outputs at once (axpy order).
 */
function gemv(m: number, n: number, k: number, alpha: number, a: MatrixView, b: MatrixView, beta: number, c: Float32Array, cOffset: number, ldc: number): void {
  // Output i = Σp U[i, p]·v[p]: U = A and v = B's column when n = 1, U = Bᵀ and v = A's row when m = 1.
  const byRows = n === 1;
  const len = byRows ? m : n;
  const u = byRows ? a : b;
  const uLine = byRows ? u.rowStride : u.colStride; // from one output's line to the next
  const uStep = byRows ? u.colStride : u.rowStride; // along a line
  const v = byRows ? b : a;
  const vStep = byRows ? b.rowStride : a.colStride;
  const cStep = byRows ? ldc : 1;
  const U = u.data;
  const V = v.data;
  if (gemvAcc.length < len) gemvAcc = f64Array(len);
  const acc = gemvAcc;
  if (uStep === 1 && vStep === 1) {
    for (let i = 0; i < len; i++) {
      // Four partial sums: independent additions keep the FPU busy.
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let x = u.offset + i * uLine;
      let y = v.offset;
      let p = 0;
      for (; p + 4 <= k; p += 4, x += 4, y += 4) {
        s0 += U[x]! * V[y]!;
        s1 += U[x + 1]! * V[y + 1]!;
        s2 += U[x + 2]! * V[y + 2]!;
        s3 += U[x + 3]! * V[y + 3]!;
      }
      for (; p < k; p++) s0 += U[x++]! * V[y++]!;
      acc[i] = s0 + s1 + s2 + s3;
    }
  } else {
    acc.fill(0, 0, len);
    let p = 0;
    // Four matrix lines per pass, so acc is loaded and stored a quarter as often.
    for (; p + 4 <= k; p += 4) {
      const y = v.offset + p * vStep;
      const v0 = V[y]!, v1 = V[y + vStep]!, v2 = V[y + 2 * vStep]!, v3 = V[y + 3 * vStep]!;
      for (let i = 0, x = u.offset + p * uStep; i < len; i++, x += uLine) {
        acc[i] = acc[i]! + U[x]! * v0 + U[x + uStep]! * v1 + U[x + 2 * uStep]! * v2 + U[x + 3 * uStep]! * v3;
      }
    }
    for (; p < k; p++) {
      const vp = V[v.offset + p * vStep]!;
      for (let i = 0, x = u.offset + p * uStep; i < len; i++, x += uLine) acc[i] = acc[i]! + U[x]! * vp;
    }
  }
  for (let i = 0, o = cOffset; i < len; i++, o += cStep) {
    c[o] = beta === 0 ? alpha * acc[i]! : alpha * acc[i]! + beta * c[o]!;
  }
}

/** Packs B[pc..pc+kc, jc..jc+nc] as NR-wide panels, each kc×NR row-major, zero-padded. */
function packPanelsB(b: MatrixView, pc: number, kc: number, jc: number, nc: number): void {
  const src = b.data;
  const rs = b.rowStride;
  const cs = b.colStride;
  const dst = packB;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = Math.min(NR, nc - jr);
    let o = jr * kc;
    let s = b.offset + pc * rs + (jc + jr) * cs;
    if (nr === NR && cs === 1) {
      for (let p = 0; p < kc; p++, o += NR, s += rs) {
        dst[o] = src[s]!;
        dst[o + 1] = src[s + 1]!;
        dst[o + 2] = src[s + 2]!;
        dst[o + 3] = src[s + 3]!;
      }
    } else if (nr === NR && rs === 1) {
      // A transposed B (Linear weights): each panel column is contiguous in the source.
      for (let j = 0; j < NR; j++) {
        for (let p = 0, col = s + j * cs; p < kc; p++) dst[o + p * NR + j] = src[col + p]!;
      }
    } else {
      for (let p = 0; p < kc; p++, o += NR, s += rs) {
        for (let j = 0; j < NR; j++) dst[o + j] = j < nr ? src[s + j * cs]! : 0;
      }
    }
  }
}

/** Packs A[ic..ic+mc, pc..pc+kc] as MR-tall panels, each kc×MR (column of MR per k), zero-padded. */
function packPanelsA(a: MatrixView, ic: number, mc: number, pc: number, kc: number): void {
  const src = a.data;
  const rs = a.rowStride;
  const cs = a.colStride;
  const dst = packA;
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = Math.min(MR, mc - ir);
    let o = ir * kc;
    let s = a.offset + (ic + ir) * rs + pc * cs;
    if (mr === MR) {
      for (let p = 0; p < kc; p++, o += MR, s += cs) {
        dst[o] = src[s]!;
        dst[o + 1] = src[s + rs]!;
        dst[o + 2] = src[s + 2 * rs]!;
        dst[o + 3] = src[s + 3 * rs]!;
      }
    } else {
      for (let p = 0; p < kc; p++, o += MR, s += cs) {
        for (let i = 0; i < MR; i++) dst[o + i] = i < mr ? src[s + i * rs]! : 0;
      }
    }
  }
}

/**
 * C[mr×nr at off] = alpha·(A panel · B panel) + beta·C (beta 0: C is not read), with the 16
 * accumulators in locals. Full tiles with alpha 1 and beta 0 or 1 (conv's case) store straight
 * from the locals; the rest go through `tile`.
 */
function microKernel(kc: number, ia: number, ib: number, c: Float32Array, off: number, ldc: number, mr: number, nr: number, alpha: number, beta: number): void {
  const pa = packA;
  const pb = packB;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < kc; p++, ia += MR, ib += NR) {
    const a0 = pa[ia]!, a1 = pa[ia + 1]!, a2 = pa[ia + 2]!, a3 = pa[ia + 3]!;
    const b0 = pb[ib]!, b1 = pb[ib + 1]!, b2 = pb[ib + 2]!, b3 = pb[ib + 3]!;
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  if (mr === MR && nr === NR && alpha === 1 && (beta === 0 || beta === 1)) {
    const o0 = off, o1 = o0 + ldc, o2 = o1 + ldc, o3 = o2 + ldc;
    if (beta === 1) {
      c00 += c[o0]!; c01 += c[o0 + 1]!; c02 += c[o0 + 2]!; c03 += c[o0 + 3]!;
      c10 += c[o1]!; c11 += c[o1 + 1]!; c12 += c[o1 + 2]!; c13 += c[o1 + 3]!;
      c20 += c[o2]!; c21 += c[o2 + 1]!; c22 += c[o2 + 2]!; c23 += c[o2 + 3]!;
      c30 += c[o3]!; c31 += c[o3 + 1]!; c32 += c[o3 + 2]!; c33 += c[o3 + 3]!;
    }
    c[o0] = c00; c[o0 + 1] = c01; c[o0 + 2] = c02; c[o0 + 3] = c03;
    c[o1] = c10; c[o1 + 1] = c11; c[o1 + 2] = c12; c[o1 + 3] = c13;
    c[o2] = c20; c[o2 + 1] = c21; c[o2 + 2] = c22; c[o2 + 3] = c23;
    c[o3] = c30; c[o3 + 1] = c31; c[o3 + 2] = c32; c[o3 + 3] = c33;
    return;
  }
  const t = tile;
  t[0] = c00; t[1] = c01; t[2] = c02; t[3] = c03;
  t[4] = c10; t[5] = c11; t[6] = c12; t[7] = c13;
  t[8] = c20; t[9] = c21; t[10] = c22; t[11] = c23;
  t[12] = c30; t[13] = c31; t[14] = c32; t[15] = c33;
  for (let i = 0; i < mr; i++, off += ldc) {
    const ti = i * NR;
    if (beta === 0) for (let j = 0; j < nr; j++) c[off + j] = alpha * t[ti + j]!;
    else if (beta === 1) for (let j = 0; j < nr; j++) c[off + j] = c[off + j]! + alpha * t[ti + j]!;
    else for (let j = 0; j < nr; j++) c[off + j] = beta * c[off + j]! + alpha * t[ti + j]!;
  }
}

/** Bias and activation on rows [i0, i1) × columns [j0, j1) of C, just after they are final. */
function finishTile(c: Float32Array, cOffset: number, ldc: number, i0: number, i1: number, j0: number, j1: number, e: SgemmEpilogue): void {
  const bias = e.bias;
  const act = e.activation ?? NO_ACTIVATION;
  if (!bias && act.kind === 'none') return;
  const bo = e.biasOffset ?? 0;
  for (let i = i0; i < i1; i++) {
    const start = cOffset + i * ldc + j0;
    const end = start + (j1 - j0);
    if (bias) {
      const v = bias[bo + i]!;
      for (let q = start; q < end; q++) c[q] = c[q]! + v;
    }
    activateInPlace(c, act, start, end);
  }
}

// ---------------------------------------------------------------------------------------------
// Gemm card (ONNX Gemm): Y = alpha·A'·B' + beta·C, A' = transA ? Aᵀ : A, B' likewise.
// As in BLAS, beta = 0 means C is not read, so NaN or Inf in C do not reach Y.
// ---------------------------------------------------------------------------------------------

/** Attributes of Gemm (`gemm`): ONNX's alpha, beta, transA, transB, plus a fused activation (see `GEMM_DEFAULTS`). */
export interface GemmAttrs {
  readonly alpha: number;
  readonly beta: number;
  readonly transA: boolean;
  readonly transB: boolean;
  /** Fused epilogue applied to Y (default none). */
  readonly activation: Activation;
}

export const GEMM_DEFAULTS: GemmAttrs = { alpha: 1, beta: 1, transA: false, transB: false, activation: NO_ACTIVATION };

export function requireF32(t: Tensor, op: string, what: string): Float32Array {
  const d = t.dataSync();
  if (t.dtype !== 'float32' || !(d instanceof Float32Array)) {
    throw new ValueError(`${op}: ${what} must be float32, got ${t.dtype}`);
  }
  return d;
}

/** M, K, N of a Gemm after the transposes; throws ShapeError on bad operands. */
function gemmDims(inputs: readonly Shape[], attrs: GemmAttrs): { m: number; k: number; n: number } {
  if (inputs.length < 2 || inputs.length > 3) throw new ShapeError(`Gemm: expected 2 or 3 inputs (A, B, C?), got ${inputs.length}`);
  const [a, b] = inputs as [Shape, Shape];
  if (a.length !== 2) throw new ShapeError(`Gemm: A must be rank 2, got ${fmtShape(a)}`);
  if (b.length !== 2) throw new ShapeError(`Gemm: B must be rank 2, got ${fmtShape(b)}`);
  const [m, ka] = attrs.transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [kb, n] = attrs.transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (ka !== kb) {
    throw new ShapeError(
      `Gemm: inner dims differ: A${attrs.transA ? 'ᵀ' : ''} ${fmtShape(a)} gives K = ${ka}, B${attrs.transB ? 'ᵀ' : ''} ${fmtShape(b)} gives K = ${kb}`,
    );
  }
  return { m, k: ka, n };
}

/** Checks that C broadcasts one way to [m, n] (scalar, [n], [1, n], [m, 1], [m, n], ...). */
function checkBias(c: Shape, m: number, n: number): void {
  const ok = c.length <= 2 && (c.length < 1 || c[c.length - 1] === 1 || c[c.length - 1] === n) && (c.length < 2 || c[0] === 1 || c[0] === m);
  if (!ok) throw new ShapeError(`Gemm: C ${fmtShape(c)} does not broadcast to the output [${m}, ${n}]`);
}

/** Element (i, j) of C broadcast to [m, n]: returns the row and column strides into C. */
function biasStrides(c: Shape): { rs: number; cs: number } {
  const cols = c.length >= 1 ? c[c.length - 1]! : 1;
  const rows = c.length === 2 ? c[0]! : 1;
  return { rs: rows === 1 ? 0 : cols, cs: cols === 1 ? 0 : 1 };
}

function gemmView(t: Tensor, trans: boolean, op: string, what: string): MatrixView {
  const cols = t.shape[1]!;
  const data = requireF32(t, op, what);
  return trans ? { data, offset: 0, rowStride: 1, colStride: cols } : { data, offset: 0, rowStride: cols, colStride: 1 };
}

/** The card of Gemm (`gemm`). */
export const gemmCard: OpCard<GemmAttrs> = {
  name: 'Gemm',
  shape(inputs, attrs) {
    const { m, n } = gemmDims(inputs, attrs);
    if (inputs[2]) checkBias(inputs[2], m, n);
    checkedSize([m, n], 'Gemm output');
    return [m, n];
  },
  macs(inputs, attrs) {
    const { m, k, n } = gemmDims(inputs, attrs);
    return m * k * n;
  },
  reference(inputs, attrs) {
    const [a, b, c] = inputs as [Tensor, Tensor, Tensor?];
    const { m, k, n } = gemmDims([a.shape, b.shape], attrs);
    const A = requireF32(a, 'Gemm', 'A');
    const B = requireF32(b, 'Gemm', 'B');
    const C = c ? requireF32(c, 'Gemm', 'C') : null;
    const { rs, cs } = biasStrides(c?.shape ?? []);
    const act = activationFn(attrs.activation);
    const y = f32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = attrs.transA ? A[p * m + i]! : A[i * k + p]!;
          const bv = attrs.transB ? B[j * k + p]! : B[p * n + j]!;
          s += av * bv;
        }
        let v = attrs.alpha * s;
        if (C && attrs.beta !== 0) v += attrs.beta * C[i * rs + j * cs]!;
        y[i * n + j] = act(v);
      }
    }
    return new Tensor(y, [m, n]);
  },
  cpu(inputs, attrs) {
    const [a, b, c] = inputs as [Tensor, Tensor, Tensor?];
    const { m, k, n } = gemmDims([a.shape, b.shape], attrs);
    // WebAssembly SIMD kernels first (src/kernels/wasm); the TS sgemm below is the fallback.
    if (wasmKernelsEnabled() && a.dtype === 'float32' && b.dtype === 'float32' && (!c || c.dtype === 'float32')) {
      const C = c ? requireF32(c, 'Gemm', 'C') : null;
      if (b.requiresGrad) forgetConstant(requireF32(b, 'Gemm', 'B')); // being trained: never cache its packed copy
      const y = outputBuffer(m * n); // written whole by wasmGemm when it returns true
      if (wasmGemm(requireF32(a, 'Gemm', 'A'), requireF32(b, 'Gemm', 'B'), C, c?.shape ?? [], attrs, m, k, n, y)) return new Tensor(y, [m, n]);
    }
    const y = f32Array(m * n);
    let beta = 0;
    if (c && attrs.beta !== 0) {
      // Broadcast beta·C into Y first; the product then accumulates onto it.
      const C = requireF32(c, 'Gemm', 'C');
      const { rs, cs } = biasStrides(c.shape);
      const bt = attrs.beta;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) y[i * n + j] = bt * C[i * rs + j * cs]!;
      beta = 1;
    }
    sgemm(m, n, k, attrs.alpha, gemmView(a, attrs.transA, 'Gemm', 'A'), gemmView(b, attrs.transB, 'Gemm', 'B'), beta, y, 0, n, {
      activation: attrs.activation,
    });
    return new Tensor(y, [m, n]);
  },
  grad: gemmGrad,
};

/**
 * ONNX Gemm: alpha·op(A)·op(B) + beta·C, with C (optional) broadcast to [M, N].
 *
 * @example
 * ```ts
 * import { Tensor, gemm } from 'lightconv';
 *
 * const x = Tensor.randn([4, 1280], { seed: 0 });
 * const w = Tensor.randn([10, 1280], { seed: 1 });
 * const logits = gemm(x, w, Tensor.zeros([10]), { transB: true }); // [4, 10], as a Linear layer
 * ```
 */
export function gemm(a: Tensor, b: Tensor, c?: Tensor | null, attrs: Partial<GemmAttrs> = {}): Tensor {
  return apply(gemmCard, c ? [a, b, c] : [a, b], { ...GEMM_DEFAULTS, ...attrs });
}

// ---------------------------------------------------------------------------------------------
// MatMul card: numpy matmul. A 1-D left operand is a row [1, K] and a 1-D right operand a
// column [K, 1]; the added dim is dropped from the result. Batch dims broadcast.
// ---------------------------------------------------------------------------------------------

interface MatMulPlan {
  m: number;
  k: number;
  n: number;
  /** Broadcast batch dims of the output. */
  batch: number[];
  out: number[];
}

function matmulPlan(inputs: readonly Shape[]): MatMulPlan {
  if (inputs.length !== 2) throw new ShapeError(`MatMul: expected 2 inputs, got ${inputs.length}`);
  const [a, b] = inputs as [Shape, Shape];
  if (a.length === 0 || b.length === 0) throw new ShapeError(`MatMul: operands must have rank ≥ 1, got ${fmtShape(a)} and ${fmtShape(b)}`);
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const m = a2[a2.length - 2]!;
  const k = a2[a2.length - 1]!;
  const kb = b2[b2.length - 2]!;
  const n = b2[b2.length - 1]!;
  if (k !== kb) throw new ShapeError(`MatMul: inner dims differ: ${fmtShape(a)} has K = ${k}, ${fmtShape(b)} has K = ${kb}`);
  const ba = a2.slice(0, -2);
  const bb = b2.slice(0, -2);
  const r = Math.max(ba.length, bb.length);
  const batch = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = ba[ba.length - r + i] ?? 1;
    const db = bb[bb.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`MatMul: batch dims of ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (${da} vs ${db})`);
    }
    batch[i] = da === 1 ? db : da;
  }
  const out = [...batch];
  if (a.length > 1) out.push(m);
  if (b.length > 1) out.push(n);
  return { m, k, n, batch, out };
}

/** For each output batch index, the matrix offsets into A and B (broadcast dims repeat). */
function batchOffsets(aShape: Shape, bShape: Shape, p: MatMulPlan): { aOff: Float64Array; bOff: Float64Array } {
  const r = p.batch.length;
  const count = p.batch.reduce((x, y) => x * y, 1);
  const aOff = f64Array(count);
  const bOff = f64Array(count);
  const aBatch = aShape.length > 2 ? aShape.slice(0, -2) : [];
  const bBatch = bShape.length > 2 ? bShape.slice(0, -2) : [];
  // Strides (in matrices) of each output batch dim in A and B; 0 where that operand broadcasts.
  const stride = (dims: Shape): number[] => {
    const s = new Array<number>(r).fill(0);
    let acc = 1;
    for (let i = dims.length - 1; i >= 0; i--) {
      const d = dims[i]!;
      if (d !== 1) s[r - dims.length + i] = acc;
      acc *= d;
    }
    return s;
  };
  const sa = stride(aBatch);
  const sb = stride(bBatch);
  for (let q = 0; q < count; q++) {
    let rem = q;
    let oa = 0;
    let ob = 0;
    for (let i = r - 1; i >= 0; i--) {
      const d = p.batch[i]!;
      const idx = rem % d;
      rem = (rem - idx) / d;
      oa += idx * sa[i]!;
      ob += idx * sb[i]!;
    }
    aOff[q] = oa * p.m * p.k;
    bOff[q] = ob * p.k * p.n;
  }
  return { aOff, bOff };
}

/** The card of MatMul (`matmul`). */
export const matmulCard: OpCard<void> = {
  name: 'MatMul',
  shape(inputs) {
    const out = matmulPlan(inputs).out;
    checkedSize(out, 'MatMul output');
    return out;
  },
  macs(inputs) {
    const p = matmulPlan(inputs);
    return p.batch.reduce((x, y) => x * y, 1) * p.m * p.k * p.n;
  },
  reference(inputs) {
    const [a, b] = inputs as [Tensor, Tensor];
    const p = matmulPlan([a.shape, b.shape]);
    const A = requireF32(a, 'MatMul', 'A');
    const B = requireF32(b, 'MatMul', 'B');
    const { m, k, n } = p;
    const { aOff, bOff } = batchOffsets(a.shape, b.shape, p);
    const y = f32Array(aOff.length * m * n);
    for (let q = 0; q < aOff.length; q++) {
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let t = 0; t < k; t++) s += A[aOff[q]! + i * k + t]! * B[bOff[q]! + t * n + j]!;
          y[(q * m + i) * n + j] = s;
        }
      }
    }
    return new Tensor(y, p.out);
  },
  cpu(inputs) {
    const [a, b] = inputs as [Tensor, Tensor];
    const p = matmulPlan([a.shape, b.shape]);
    const A = requireF32(a, 'MatMul', 'A');
    const B = requireF32(b, 'MatMul', 'B');
    const { m, k, n } = p;
    const { aOff, bOff } = batchOffsets(a.shape, b.shape, p);
    const count = aOff.length;
    const shared = bOff.every((o) => o === 0) && aOff.every((o, q) => o === q * m * k);
    if (shared && wasmKernelsEnabled()) {
      // One shared B and contiguous A matrices (nn.Linear on [N, L, C] as torch exports it): the
      // batch folds into M, one GEMM on the WebAssembly kernels, with B's packed copy cached
      // when it is a model constant, as Gemm's.
      if (b.requiresGrad) forgetConstant(B);
      const yw = outputBuffer(count * m * n); // written whole by wasmGemm when it returns true
      if (wasmGemm(A, B, null, [], GEMM_DEFAULTS, count * m, k, n, yw)) return new Tensor(yw, p.out);
    }
    const y = f32Array(count * m * n);
    if (shared) {
      // The batch folds into M: one TypeScript GEMM.
      sgemm(count * m, n, k, 1, rowMajor(A, 0, k), rowMajor(B, 0, n), 0, y, 0, n);
    } else {
      for (let q = 0; q < count; q++) {
        sgemm(m, n, k, 1, rowMajor(A, aOff[q]!, k), rowMajor(B, bOff[q]!, n), 0, y, q * m * n, n);
      }
    }
    return new Tensor(y, p.out);
  },
  grad: matmulGrad,
};

/**
 * numpy-style matrix product with 1-D promotion and batch broadcasting.
 *
 * @example
 * ```ts
 * import { Tensor, matmul } from 'lightconv';
 *
 * matmul(Tensor.ones([8, 2, 3]), Tensor.ones([3, 5])).shape; // [8, 2, 5]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return apply(matmulCard, [a, b], undefined);
}

// ---------------------------------------------------------------------------------------------
// Gradients (autograd). Plain loops accumulating in float64 (the classifier GEMMs of the CNNs
// here are small next to their convs).

/**
 * Gemm: with Z = alpha·A'·B' + beta·C and dZ the gradient before the fused activation,
 * ∂A' = alpha·dZ·B'ᵀ, ∂B' = alpha·A'ᵀ·dZ (transposed back when transA/transB), ∂C = beta·dZ
 * summed over C's broadcast dims.
 */
function gemmGrad(inputs: readonly Tensor[], attrs: GemmAttrs, y: Tensor, gOut: Tensor): (Tensor | null)[] {
  const [a, b, c] = inputs as [Tensor, Tensor, Tensor?];
  const { m, k, n } = gemmDims([a.shape, b.shape], attrs);
  const dZ = preActivationGrad(gemmCard, inputs, attrs, y, gOut);
  const out32 = a.dtype === 'float32' && b.dtype === 'float32' && dZ instanceof Float32Array ? gemmGradF32(a, b, dZ, attrs, m, k, n) : null;
  const A = a.dataSync();
  const B = b.dataSync();
  // Element (i, p) of A' and (p, j) of B'.
  const aAt = attrs.transA ? (i: number, p: number) => p * m + i : (i: number, p: number) => i * k + p;
  const bAt = attrs.transB ? (p: number, j: number) => j * k + p : (p: number, j: number) => p * n + j;
  const out: (Tensor | null)[] = out32 ?? [null, null];
  if (a.requiresGrad && !out32) {
    const gA = f64Array(a.size);
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += dZ[i * n + j]! * B[bAt(p, j)]!;
        gA[aAt(i, p)] = attrs.alpha * s;
      }
    }
    out[0] = a.dtype === 'float64' ? gradOf(a, gA) : gradOf(a, Float32Array.from(gA));
  }
  if (b.requiresGrad && !out32) {
    const gB = f64Array(b.size);
    for (let p = 0; p < k; p++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += A[aAt(i, p)]! * dZ[i * n + j]!;
        gB[bAt(p, j)] = attrs.alpha * s;
      }
    }
    out[1] = b.dtype === 'float64' ? gradOf(b, gB) : gradOf(b, Float32Array.from(gB));
  }
  if (c) {
    if (!c.requiresGrad || attrs.beta === 0) out.push(null);
    else {
      const scaled = f64Array(m * n);
      for (let i = 0; i < scaled.length; i++) scaled[i] = attrs.beta * dZ[i]!;
      out.push(unbroadcast(scaled, [m, n], c));
    }
  }
  return out;
}

/**
 * MatMul: per output batch matrix q, ∂A[q] += dY[q]·B[q]ᵀ and ∂B[q] += A[q]ᵀ·dY[q]. Adding into
 * the operand's own matrix offset sums the broadcast batch dims; 1-D operands are the promoted
 * [1, K] / [K, 1] matrices, whose data layout is the vector's.
 */
function matmulGrad(inputs: readonly Tensor[], _attrs: void, _y: Tensor, g: Tensor): (Tensor | null)[] {
  const [a, b] = inputs as [Tensor, Tensor];
  const p = matmulPlan([a.shape, b.shape]);
  const { m, k, n } = p;
  const { aOff, bOff } = batchOffsets(a.shape, b.shape, p);
  const A = a.dataSync();
  const B = b.dataSync();
  const G = g.dataSync();
  const gA = a.requiresGrad ? f64Array(a.size) : null;
  const gB = b.requiresGrad ? f64Array(b.size) : null;
  for (let q = 0; q < aOff.length; q++) {
    const ao = aOff[q]!;
    const bo = bOff[q]!;
    const go = q * m * n;
    if (gA) {
      for (let i = 0; i < m; i++) {
        for (let t = 0; t < k; t++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += G[go + i * n + j]! * B[bo + t * n + j]!;
          gA[ao + i * k + t] += s;
        }
      }
    }
    if (gB) {
      for (let t = 0; t < k; t++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let i = 0; i < m; i++) s += A[ao + i * k + t]! * G[go + i * n + j]!;
          gB[bo + t * n + j] += s;
        }
      }
    }
  }
  const wrap = (t: Tensor, d: Float64Array | null) => (d ? gradOf(t, t.dtype === 'float64' ? d : Float32Array.from(d)) : null);
  return [wrap(a, gA), wrap(b, gB)];
}

/**
 * The float32 case of gemmGrad, through the Gemm card's fast kernel (WebAssembly SIMD where
 * available), with B' = op(B), A' = op(A): ∂A = alpha·dZ·B'ᵀ ([m, k]), or alpha·B'·dZᵀ ([k, m])
 * when transA; ∂B = alpha·A'ᵀ·dZ ([k, n]), or alpha·dZᵀ·A' ([n, k]) when transB. The transposes
 * are Gemm flags, so nothing is copied.
 */
function gemmGradF32(a: Tensor, b: Tensor, dZ: Float32Array, attrs: GemmAttrs, m: number, _k: number, n: number): (Tensor | null)[] {
  const dz = new Tensor(dZ, [m, n]);
  const mm = (x: Tensor, y: Tensor, transA: boolean, transB: boolean) => gemmCard.cpu!([x, y], { ...GEMM_DEFAULTS, alpha: attrs.alpha, beta: 0, transA, transB });
  let gA: Tensor | null = null;
  let gB: Tensor | null = null;
  if (a.requiresGrad) gA = attrs.transA ? mm(b, dz, attrs.transB, true) : mm(dz, b, false, !attrs.transB);
  if (b.requiresGrad) gB = attrs.transB ? mm(dz, a, true, attrs.transA) : mm(a, dz, !attrs.transA, false);
  return [gA, gB];
}

/**
 * alpha·op(A)·op(B) for float32 matrices held in bigger arrays (rows × cols from an offset),
 * through the Gemm card's fast kernel — the products of the conv gradients.
 */
export function matmulF32(
  a: Float32Array,
  aOff: number,
  aRows: number,
  aCols: number,
  transA: boolean,
  b: Float32Array,
  bOff: number,
  bRows: number,
  bCols: number,
  transB: boolean,
): Float32Array {
  const A = new Tensor(a.subarray(aOff, aOff + aRows * aCols), [aRows, aCols]);
  const B = new Tensor(b.subarray(bOff, bOff + bRows * bCols), [bRows, bCols]);
  return gemmCard.cpu!([A, B], { ...GEMM_DEFAULTS, beta: 0, transA, transB }).f32();
}
