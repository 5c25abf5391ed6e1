import { type Activation, activateInPlace } from '../activation.js';
import { gemmCore } from './conv.js';
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
  const ld = (m + 3) & ~3;
  const base = rt.alloc(4 * (mPanels * 4 * k + mPanels * 4 + 2 * k * ld + mPanels * 4 * ld));
  try {
    const pAscratch = base;
    const pBias = pAscratch + mPanels * 16 * k;
    const pBsrc = pBias + mPanels * 16;
    const pB = pBsrc + k * ld * 4;
    const pC = pB + k * ld * 4;
    // B'ᵀ[j, p] = B'[p, j]
    const pA = attrs.transB ? packA(rt, B, 0, n, k, pAscratch, k, 1) : packA(rt, B, 0, n, k, pAscratch, 1, n);
    const v = rt.f32();
    const bo = pBias >> 2;
    if (C && attrs.beta !== 0) for (let j = 0; j < n; j++) v[bo + j] = attrs.beta * C[j]!;
    else v.fill(0, bo, bo + n);
    v.fill(0, bo + n, bo + mPanels * 4);
    // A'ᵀ[p, i] = A'[i, p], rows of ld floats, zero past m.
    const s = pBsrc >> 2;
    for (let p = 0; p < k; p++) {
      const row = s + p * ld;
      for (let i = 0; i < m; i++) v[row + i] = attrs.transA ? A[p * m + i]! : A[i * k + p]!;
      for (let i = m; i < ld; i++) v[row + i] = 0;
    }
    gemmCore(rt, pA, mPanels, k, pBsrc, ld, pB, pC, pBias, attrs.activation);
    const w = rt.f32();
    const c = pC >> 2;
    for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) y[i * n + j] = w[c + j * ld + i]!;
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
