import { type Activation, activateInPlace } from '../activation.js';
import { actParams, gemm, gemmTailFloats } from './conv.js';
import { type Call, chunkCount, streamNs } from './pool.js';
import { isConstant, packA, runtime, wasmActivation } from './runtime.js';

/**
 * ONNX Gemm on the WebAssembly kernels, for the classifier shape: Y = A'·B' + beta·C with
 * alpha 1 and C (if any) a row vector [N] or [1, N]. It computes Yᵀ = B'ᵀ·A'ᵀ so that the
 * weight B' becomes the packed, cached operand and the (few) rows of A the streamed one.
 * Returns false, having done nothing, for the cases it does not cover.
 */
export function wasmGemm(
  A: Float32Array,
  B: Float32Array,
  C: Float32Array | null,
  cShape: readonly number[],
  attrs: { alpha: number; beta: number; transA: boolean; transB: boolean; activation: Activation },
  m: number,
  k: number,
  n: number,
  y: Float32Array,
): boolean {
  const rt = runtime();
  if (!rt || attrs.alpha !== 1 || k === 0 || m === 0 || n === 0) return false;
  const rowBias = !C || attrs.beta === 0 || (cShape.length === 1 && cShape[0] === n) || (cShape.length === 2 && cShape[0] === 1 && cShape[1] === n);
  if (!rowBias) return false;
  // Packing a non-constant B per call costs as much as the product when A has few rows.
  if (!isConstant(B) && m < 8) return false;
  const mPanels = Math.ceil(n / 4); // rows of Yᵀ
  // Up to 4 rows of A: one matrix-vector product per row (a GEMM would use 1 column in 8).
  const rows = m <= 4;
  const base = rt.alloc(4 * (mPanels * 4 * k + mPanels * 4 + k * m + mPanels * 4 * m + (rows ? 0 : gemmTailFloats(k, mPanels, m))));
  try {
    const pAscratch = base;
    const pBias = pAscratch + mPanels * 16 * k;
    const pBsrc = pBias + mPanels * 16;
    const pC = pBsrc + k * m * 4;
    const pTail = pC + mPanels * 16 * m;
    // B'ᵀ[j, p] = B'[p, j]
    const pA = attrs.transB ? packA(rt, B, 0, n, k, pAscratch, k, 1) : packA(rt, B, 0, n, k, pAscratch, 1, n);
    const v = rt.f32();
    const bo = pBias >> 2;
    if (C && attrs.beta !== 0) for (let j = 0; j < n; j++) v[bo + j] = attrs.beta * C[j]!;
    else v.fill(0, bo, bo + n);
    v.fill(0, bo + n, bo + mPanels * 4);
    const s = pBsrc >> 2;
    const [p1, p2] = actParams(attrs.activation);
    if (rows) {
      // Row i of A' at s + i·k; its outputs (mPanels·4 floats) at pC + i·mPanels·16.
      for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) v[s + i * k + p] = attrs.transA ? A[p * m + i]! : A[i * k + p]!;
      // Chunks of output panels: the weights stream from memory once either way, and two
      // cores have more bandwidth than one.
      const gemv = `gemv_${wasmActivation(attrs.activation.kind)}`;
      const want = Math.min(mPanels, chunkCount(streamNs(mPanels * 4 * k * m)));
      const calls: Call[][] = [];
      for (let q = 0; q < want; q++) {
        const i0 = Math.floor((q * mPanels) / want);
        const i1 = Math.floor(((q + 1) * mPanels) / want);
        if (i1 > i0) calls.push(Array.from({ length: m }, (_, i): Call => [gemv, pA + i0 * k * 16, pBsrc + 4 * i * k, pC + i * mPanels * 16 + i0 * 16, pBias + i0 * 16, i1 - i0, k, p1, p2]));
      }
      rt.pool.run(calls);
      const w = rt.f32();
      for (let i = 0; i < m; i++) y.set(w.subarray((pC >> 2) + i * mPanels * 4, (pC >> 2) + i * mPanels * 4 + n), i * n);
    } else {
      // A'ᵀ[p, i] = A'[i, p]: k rows of m floats.
      for (let p = 0; p < k; p++) for (let i = 0; i < m; i++) v[s + p * m + i] = attrs.transA ? A[p * m + i]! : A[i * k + p]!;
      gemm(rt, pA, mPanels, n, k, pBsrc, m, m, pC, m, pBias, attrs.activation, pTail);
      const w = rt.f32();
      const c = pC >> 2;
      for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) y[i * n + j] = w[c + j * m + i]!;
    }
  } finally {
    rt.release(base);
  }
  if (wasmActivation(attrs.activation.kind) === 'none' && attrs.activation.kind !== 'none') activateInPlace(y, attrs.activation);
  return true;
}

/** Packs a constant Gemm weight B (2-D) at model load, as wasmGemm will use it. */
export function prepackGemmWeight(B: Float32Array, shape: readonly number[], transB: boolean): void {
  const rt = runtime();
  if (!rt || shape.length !== 2 || !isConstant(B)) return;
  const [k, n] = transB ? [shape[1]!, shape[0]!] : [shape[0]!, shape[1]!];
  if (k === 0 || n === 0) return;
  if (transB) packA(rt, B, 0, n, k, 0, k, 1);
  else packA(rt, B, 0, n, k, 0, 1, n);
}
