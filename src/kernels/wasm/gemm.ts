import { type Activation, activateInPlace } from '../activation.js';
import { actParams, gemm, gemmTailFloats } from './conv.js';
import { type Call, chunkCount, splitRange, streamNs } from './pool.js';
import { copyMatrix, gemmSuffix, isConstant, packA, placeBias, runtime, wasmActivation } from './runtime.js';
import { scratchBytes } from './budget.js';

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
  const base = rt.alloc(scratchBytes(4 * (mPanels * 4 * k + mPanels * 4 + k * m + mPanels * 4 * m + (rows ? 0 : gemmTailFloats(k, mPanels, m)))));
  try {
    const pAscratch = base;
    const pBiasScratch = pAscratch + mPanels * 16 * k;
    const pBsrc = pBiasScratch + mPanels * 16;
    const pC = pBsrc + k * m * 4;
    const pTail = pC + mPanels * 16 * m;
    // B'ᵀ[j, p] = B'[p, j]
    const pA = attrs.transB ? packA(rt, B, 0, n, k, pAscratch, k, 1) : packA(rt, B, 0, n, k, pAscratch, 1, n);
    const pBias = placeBias(rt, C && attrs.beta !== 0 ? C : null, 0, n, mPanels * 4, pBiasScratch, attrs.beta);
    const [p1, p2] = actParams(attrs.activation);
    // Element (i, p) of A' and its strides.
    const [ai, ap] = attrs.transA ? [1, m] : [k, 1];
    if (rows) {
      // Row i of A' at pBsrc + 4·i·k; its outputs (mPanels·4 floats) at pC + i·mPanels·16.
      copyMatrix(rt, A, ai, ap, pBsrc, k, 1, m, k);
      // Chunks of output panels: the weights stream from memory once either way, and two
      // cores have more bandwidth than one.
      const gemv = `gemv_${wasmActivation(attrs.activation.kind)}${gemmSuffix()}`;
      const calls = splitRange(mPanels, chunkCount(streamNs(mPanels * 4 * k * m))).map(([i0, i1]) =>
        Array.from({ length: m }, (_, i): Call => [gemv, pA + i0 * k * 16, pBsrc + 4 * i * k, pC + i * mPanels * 16 + i0 * 16, pBias + i0 * 16, i1 - i0, k, p1, p2]),
      );
      rt.pool.run(calls);
      copyMatrix(rt, pC, mPanels * 4, 1, y, n, 1, m, n);
    } else {
      // A'ᵀ[p, i] = A'[i, p]: k rows of m floats.
      copyMatrix(rt, A, ai, ap, pBsrc, 1, m, m, k);
      gemm(rt, pA, mPanels, n, k, pBsrc, m, m, pC, m, pBias, attrs.activation, pTail);
      copyMatrix(rt, pC, 1, m, y, n, 1, m, n);
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
