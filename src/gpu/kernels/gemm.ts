import type { GemmAttrs } from '../../kernels/gemm.js';
import { type Arr, type GpuKernel, type KernelThis, activationConstants, cpuPlan } from './types.js';

/**
 * Y[q, i, j] = alpha·Σp A[q, i, p]·B[q, p, j] + beta·C[i·crs + j·ccs], then the activation. Strides
 * carry the transposes (Gemm's transA/transB) and the batch (MatMul; a batch stride of 0 shares
 * the matrix); C is read only when hasC is 1.
 */
interface GemmConstants {
  m: number; n: number; k: number;
  ars: number; acs: number; abs: number; brs: number; bcs: number; bbs: number;
  alpha: number; beta: number; hasC: number; crs: number; ccs: number;
  act: number; p1: number; p2: number;
}

export const gemmKernel = function (this: KernelThis<GemmConstants>, a: Arr, b: Arr, c: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.n);
  let j = o - t * this.constants.n;
  if (j < 0) { t = t - 1; j = j + this.constants.n; }
  if (j >= this.constants.n) { t = t + 1; j = j - this.constants.n; }
  let q = Math.floor(t / this.constants.m);
  let i = t - q * this.constants.m;
  if (i < 0) { q = q - 1; i = i + this.constants.m; }
  if (i >= this.constants.m) { q = q + 1; i = i - this.constants.m; }
  const a0 = q * this.constants.abs + i * this.constants.ars;
  const b0 = q * this.constants.bbs + j * this.constants.bcs;
  let s = 0;
  for (let p = 0; p < this.constants.k; p++) {
    s += a[a0 + p * this.constants.acs]! * b[b0 + p * this.constants.brs]!;
  }
  s = this.constants.alpha * s;
  if (this.constants.hasC === 1) { s += this.constants.beta * c[i * this.constants.crs + j * this.constants.ccs]!; }
  let v = s;
  if (this.constants.act === 1) { if (s < 0) { v = 0; } }
  if (this.constants.act === 2) { if (s < 0) { v = this.constants.p1 * s; } }
  if (this.constants.act === 3) { if (s < this.constants.p1) { v = this.constants.p1; } if (s > this.constants.p2) { v = this.constants.p2; } }
  if (this.constants.act === 4) { v = 1 / (1 + Math.exp(-s)); if (s < -88.72283905206835) { v = 0; } }
  if (this.constants.act === 5) { v = this.constants.p1 * s + this.constants.p2; if (v < 0) { v = 0; } if (v > 1) { v = 1; } }
  if (this.constants.act === 6) { v = s * (Math.min(Math.max(s + 3, 0), 6) / 6); }
  if (this.constants.act === 7) { v = s / (1 + Math.exp(-s)); if (s < -88.72283905206835) { v = s * 0; } }
  if (this.constants.act === 8) { v = Math.tanh(Math.min(Math.max(s, -15), 15)); }
  return v;
};

/** Gemm card (src/kernels/gemm.ts). */
export const gpuGemm: GpuKernel<GemmAttrs> = (inputs, attrs) => {
  const [a, b, c] = inputs;
  const [ar, ac] = [a!.shape[0]!, a!.shape[1]!];
  const [br, bc] = [b!.shape[0]!, b!.shape[1]!];
  const m = attrs.transA ? ac : ar;
  const k = attrs.transA ? ar : ac;
  const n = attrs.transB ? br : bc;
  const useC = !!c && attrs.beta !== 0;
  const cs = c?.shape ?? [];
  const cols = cs.length >= 1 ? cs[cs.length - 1]! : 1;
  const rows = cs.length === 2 ? cs[0]! : 1;
  return {
    kind: 'programs',
    shape: [m, n],
    programs: [
      {
        name: 'gemm',
        source: gemmKernel,
        size: m * n,
        args: useC ? [0, 1, 2] : [0, 1, 0],
        constants: {
          m, n, k,
          ars: attrs.transA ? 1 : ac, acs: attrs.transA ? ac : 1, abs: 0,
          brs: attrs.transB ? 1 : bc, bcs: attrs.transB ? bc : 1, bbs: 0,
          alpha: attrs.alpha, beta: attrs.beta, hasC: useC ? 1 : 0,
          crs: rows === 1 ? 0 : cols, ccs: cols === 1 ? 0 : 1,
          ...activationConstants(attrs.activation),
        },
      },
    ],
  };
};

/**
 * MatMul card: numpy matmul with 1-D promotion. Batches run in one launch when each operand's
 * batch is either a single matrix (shared) or exactly the output's batch; other broadcasts of
 * batch dims run on the CPU.
 */
export const gpuMatMul: GpuKernel<void> = (inputs) => {
  const a = inputs[0]!;
  const b = inputs[1]!;
  const a2 = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const b2 = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
  const m = a2[a2.length - 2]!;
  const k = a2[a2.length - 1]!;
  const n = b2[b2.length - 1]!;
  const ba = a2.slice(0, -2);
  const bb = b2.slice(0, -2);
  const r = Math.max(ba.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = ba[ba.length - r + i] ?? 1;
    const db = bb[bb.length - r + i] ?? 1;
    batch.push(da === 1 ? db : da);
  }
  const count = batch.reduce((x, y) => x * y, 1);
  const countA = ba.reduce((x, y) => x * y, 1);
  const countB = bb.reduce((x, y) => x * y, 1);
  if ((countA !== 1 && countA !== count) || (countB !== 1 && countB !== count)) return cpuPlan('broadcast batch dims');
  const out = [...batch];
  if (a.shape.length > 1) out.push(m);
  if (b.shape.length > 1) out.push(n);
  return {
    kind: 'programs',
    shape: out,
    programs: [
      {
        name: 'matmul',
        source: gemmKernel,
        size: count * m * n,
        args: [0, 1, 0],
        constants: {
          m, n, k, ars: k, acs: 1, abs: countA === 1 ? 0 : m * k, brs: n, bcs: 1, bbs: countB === 1 ? 0 : k * n,
          alpha: 1, beta: 0, hasC: 0, crs: 0, ccs: 0, act: 0, p1: 0, p2: 0,
        },
      },
    ],
  };
};
