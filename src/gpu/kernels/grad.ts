import type { OpCard } from '../../core/op.js';
import { normAxis } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import type { Activation } from '../../kernels/activation.js';
import { type ConvAttrs, convCard } from '../../kernels/conv.js';
import { type BinaryOp, type UnaryOp, binaryCard, unaryCard } from '../../kernels/elementwise.js';
import { type GemmAttrs, gemmCard, matmulCard } from '../../kernels/gemm.js';
import { type AxisAttrs, type PadAttrs, type TransposeAttrs, concatCard, flattenCard, padCard, identityCard, reshapeCard, squeezeCard, transposeCard, unsqueezeCard } from '../../kernels/movement.js';
import { type BatchNormAttrs, type BatchNormTrainAttrs, batchNormCard, batchNormTrainingCard } from '../../kernels/normalization.js';
import { type PoolAttrs, averagePoolCard, globalAveragePoolCard, maxPoolCard } from '../../kernels/pool.js';
import { type ReduceAttrs, reduceMeanCard, reduceSumCard } from '../../kernels/reduce.js';
import { type SoftmaxAttrs, logSoftmaxCard, softmaxCard } from '../../kernels/softmax.js';
import { gpuConv } from './conv.js';
import { gpuBinary } from './elementwise.js';
import { gpuGemm } from './gemm.js';
import { gpuTranspose } from './movement.js';
import { gpuBatchNorm } from './normalization.js';
import { gpuAveragePool, gpuMaxPool } from './pool.js';
import { gpuReduce } from './reduce.js';
import { gpuLogSoftmax, gpuSoftmax } from './softmax.js';
import { type Arr, type GpuProgram, type KernelThis, activationConstants } from './types.js';

/**
 * Backward kernels: the gpu.js side of the cards' `grad` (src/kernels/*.ts), same rules as the
 * forward kernels (src/gpu/kernels/types.ts): one output element per thread, loop bounds from
 * constants. Every gradient is a gather (each thread sums what lands on its element: conv's
 * ∂x walks the taps whose output position is whole, pooling the windows that hold the element),
 * so no launch needs atomics or scatter. A fused activation's derivative is applied to z, the
 * forward recomputed without it (the forward kernel with act 0). A gradient plan is a chain of launches; arguments index [...inputs, y, gOut]
 * (k ≥ 0) or earlier launches (−1 − j), and each input's gradient is one launch's output, a view
 * of gOut, or null (no gradient wanted: the input does not require grad).
 */

/** The gradient of input k: the output of launch `program`, or gOut itself (`view`). */
export type GradResult = { readonly program: number } | { readonly view: 'g' } | null;

export type GpuGradPlan =
  | { readonly kind: 'grads'; readonly programs: readonly GpuProgram[]; readonly results: readonly GradResult[] }
  | { readonly kind: 'cpu'; readonly reason: string };

/** Plans one backward call: inputs, attributes, the forward output y and the gradient gOut. */
export type GpuGradKernel<A> = (inputs: readonly Tensor[], attrs: A, y: Tensor, g: Tensor) => GpuGradPlan;

const cpuGrad = (reason: string): GpuGradPlan => ({ kind: 'cpu', reason });

// ------------------------------------------------------------------------------ unary / activations

type UnaryGradConstants = {
  act: number; p1: number; p2: number;
};

/**
 * dx = g·f'(x, y) with activationDerivative's kink rules (PyTorch's); codes as unaryKernel's:
 * activations 0–8, neg 9, abs 10, exp 11, sqrt 12.
 */
export const unaryGradKernel = function (this: KernelThis<UnaryGradConstants>, x: Arr, y: Arr, g: Arr): number {
  const i = this.thread.x;
  const s = x[i]!;
  const v = y[i]!;
  const gv = g[i]!;
  let d = 1;
  if (this.constants.act === 1) { d = 0; if (s > 0) { d = 1; } }
  if (this.constants.act === 2) { d = this.constants.p1; if (s > 0) { d = 1; } }
  if (this.constants.act === 3) { d = 0; if (s > this.constants.p1 && s < this.constants.p2) { d = 1; } }
  if (this.constants.act === 4) { d = v * (1 - v); }
  if (this.constants.act === 5) {
    const z = this.constants.p1 * s + this.constants.p2;
    d = 0;
    if (z > 0 && z < 1) { d = this.constants.p1; }
  }
  if (this.constants.act === 6) {
    d = 1;
    if (s <= 3) { d = s / 3 + 0.5; }
    if (s < -3) { d = 0; }
  }
  if (this.constants.act === 7) {
    const e = 1 / (1 + Math.exp(-s));
    d = e * (1 + s * (1 - e));
  }
  if (this.constants.act === 8) { d = 1 - v * v; }
  if (this.constants.act === 9) { d = -1; }
  if (this.constants.act === 10) {
    d = 0;
    if (s > 0) { d = 1; }
    if (s < 0) { d = -1; }
  }
  if (this.constants.act === 11) { d = v; }
  if (this.constants.act === 12) { d = 0.5 / v; }
  return gv * d;
};

const MATH_CODES: Partial<Record<UnaryOp['kind'], number>> = { neg: 9, abs: 10, exp: 11, sqrt: 12 };

function unaryCodes(op: UnaryOp): UnaryGradConstants | null {
  if (op.kind === 'erf') return null;
  const code = MATH_CODES[op.kind];
  return code !== undefined ? { act: code, p1: 0, p2: 0 } : activationConstants(op as Activation);
}

/** One launch of unaryGradKernel over (x, y, g), each an argument index or a launch. */
function actGrad(size: number, act: Activation, args: readonly number[]): GpuProgram {
  return { name: 'unaryGrad', source: unaryGradKernel, size, args, constants: activationConstants(act) };
}

export const gpuUnaryGrad: GpuGradKernel<UnaryOp> = ([x], op) => {
  const constants = unaryCodes(op);
  if (!constants) return cpuGrad('erf has no GPU backward kernel');
  if (!x!.requiresGrad) return { kind: 'grads', programs: [], results: [null] };
  return { kind: 'grads', programs: [{ name: 'unaryGrad', source: unaryGradKernel, size: x!.size, args: [0, 1, 2], constants }], results: [{ program: 0 }] };
};

// ------------------------------------------------------------------------------ sum to a shape

/**
 * Sums a tensor of shape `full` down to a broadcast operand's shape (the reverse of
 * broadcasting). After dropping size-1 dims and merging neighbours of the same role, the dims of
 * `full` alternate kept / summed; up to 3 of each. Thread t is a kept position (k0, k1, k2); it
 * sums over the R summed positions (r0, r1, r2), each index times its stride in `full`, times
 * `scale` (−1 for the subtrahend).
 */
interface SumToConstants {
  k1: number; k2: number; ks0: number; ks1: number; ks2: number;
  r1: number; r2: number; rs0: number; rs1: number; rs2: number;
  total: number; scale: number;
}

export const sumToKernel = function (this: KernelThis<SumToConstants>, a: Arr): number {
  let t = this.thread.x;
  let q = Math.floor(t / this.constants.k2);
  let r = t - q * this.constants.k2;
  if (r < 0) { q = q - 1; r = r + this.constants.k2; }
  if (r >= this.constants.k2) { q = q + 1; r = r - this.constants.k2; }
  let base = r * this.constants.ks2;
  t = q;
  q = Math.floor(t / this.constants.k1);
  r = t - q * this.constants.k1;
  if (r < 0) { q = q - 1; r = r + this.constants.k1; }
  if (r >= this.constants.k1) { q = q + 1; r = r - this.constants.k1; }
  base = base + r * this.constants.ks1 + q * this.constants.ks0;
  let s = 0;
  for (let i = 0; i < this.constants.total; i++) {
    let u = Math.floor(i / this.constants.r2);
    let v = i - u * this.constants.r2;
    if (v < 0) { u = u - 1; v = v + this.constants.r2; }
    if (v >= this.constants.r2) { u = u + 1; v = v - this.constants.r2; }
    let off = v * this.constants.rs2;
    let u2 = Math.floor(u / this.constants.r1);
    let v2 = u - u2 * this.constants.r1;
    if (v2 < 0) { u2 = u2 - 1; v2 = v2 + this.constants.r1; }
    if (v2 >= this.constants.r1) { u2 = u2 + 1; v2 = v2 - this.constants.r1; }
    off = off + v2 * this.constants.rs1 + u2 * this.constants.rs0;
    s += a[base + off]!;
  }
  return s * this.constants.scale;
};

/** The sumTo launch from `full` to `target`, scaled (or why the kernel cannot take the shapes). */
export function sumToProgram(full: readonly number[], target: readonly number[], arg: number, scale: number): GpuProgram | 'too many dims' {
  const lead = full.length - target.length;
  const strides: number[] = new Array<number>(full.length);
  let acc = 1;
  for (let i = full.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= full[i]!;
  }
  const dims: { d: number; s: number; keep: boolean }[] = [];
  full.forEach((d, i) => {
    if (d === 1) return;
    const keep = i >= lead && target[i - lead] !== 1;
    const last = dims[dims.length - 1];
    if (last && last.keep === keep) {
      last.d *= d;
      last.s = strides[i]!;
    } else dims.push({ d, s: strides[i]!, keep });
  });
  const kept = dims.filter((x) => x.keep);
  const summed = dims.filter((x) => !x.keep);
  if (kept.length > 3 || summed.length > 3) return 'too many dims';
  const pad = (xs: { d: number; s: number }[]) => [...new Array<{ d: number; s: number }>(3 - xs.length).fill({ d: 1, s: 0 }), ...xs];
  const k = pad(kept);
  const r = pad(summed);
  const size = target.reduce((p, q) => p * q, 1);
  return {
    name: 'sumTo',
    source: sumToKernel,
    size,
    args: [arg],
    constants: {
      k1: k[1]!.d, k2: k[2]!.d, ks0: k[0]!.s, ks1: k[1]!.s, ks2: k[2]!.s,
      r1: r[1]!.d, r2: r[2]!.d, rs0: r[0]!.s, rs1: r[1]!.s, rs2: r[2]!.s,
      total: summed.reduce((p, x) => p * x.d, 1), scale,
    },
  };
}

// ------------------------------------------------------------------------------ binary

/** A full-shape binary launch over two arguments (reuses the forward kernel and its broadcasting). */
function binaryProgram(op: BinaryOp, a: Tensor | { shape: readonly number[] }, b: Tensor | { shape: readonly number[] }, args: readonly number[]): GpuProgram | null {
  const plan = gpuBinary([a as Tensor, b as Tensor], op);
  if (plan.kind !== 'programs') return null;
  return { ...plan.programs[0]!, args };
}

const sizeOfShape = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);

/**
 * Add / Sub / Mul / Div: the per-element gradients at the output's shape (the forward binary
 * kernel: g·b, g/b, −(g/b)·y …), then summed over each operand's broadcast dims.
 */
export const gpuBinaryGrad: GpuGradKernel<BinaryOp> = ([a, b], op, y) => {
  if (op !== 'Add' && op !== 'Sub' && op !== 'Mul' && op !== 'Div') return cpuGrad(`${op} has no GPU backward kernel`);
  const Y = 2;
  const G = 3;
  const full = y.shape;
  const programs: GpuProgram[] = [];
  const push = (p: GpuProgram | null): number => {
    if (!p) throw new Error('unreachable: a broadcast the forward accepted');
    programs.push(p);
    return -programs.length; // the argument index of this launch's output
  };
  const results: GradResult[] = [];
  const fullT = { shape: full };
  for (const [k, t] of [[0, a!], [1, b!]] as const) {
    if (!t.requiresGrad) {
      results.push(null);
      continue;
    }
    // The gradient at the full shape, as an argument index (G: gOut itself).
    let arg: number = G;
    let scale = 1;
    if (op === 'Sub' && k === 1) scale = -1;
    if (op === 'Mul') arg = push(binaryProgram('Mul', fullT, k === 0 ? b! : a!, [G, k === 0 ? 1 : 0]));
    if (op === 'Div') {
      const gOverB = push(binaryProgram('Div', fullT, b!, [G, 1]));
      if (k === 0) arg = gOverB;
      else {
        arg = push(binaryProgram('Mul', fullT, fullT, [gOverB, Y])); // −(g/b)·y = −g·a/b²
        scale = -1;
      }
    }
    const same = t.size === sizeOfShape(full);
    if (same && scale === 1) {
      results.push(arg === G ? { view: 'g' } : { program: -1 - arg });
      continue;
    }
    const p = sumToProgram(full, t.shape, arg, scale);
    if (p === 'too many dims') return cpuGrad('a broadcast over more than 3 separate runs of dims');
    push(p);
    results.push({ program: programs.length - 1 });
  }
  return { kind: 'grads', programs, results };
};

// ------------------------------------------------------------------------------ global average pool

interface GapGradConstants {
  hw: number;
}

export const globalAveragePoolGradKernel = function (this: KernelThis<GapGradConstants>, g: Arr): number {
  const i = this.thread.x;
  let p = Math.floor(i / this.constants.hw);
  if (p * this.constants.hw > i) { p = p - 1; }
  if ((p + 1) * this.constants.hw <= i) { p = p + 1; }
  return g[p]! / this.constants.hw;
};

export const gpuGlobalAveragePoolGrad: GpuGradKernel<void> = ([x]) => {
  if (!x!.requiresGrad) return { kind: 'grads', programs: [], results: [null] };
  const hw = sizeOfShape(x!.shape.slice(2));
  return { kind: 'grads', programs: [{ name: 'gapGrad', source: globalAveragePoolGradKernel, size: x!.size, args: [2], constants: { hw } }], results: [{ program: 0 }] };
};

// ------------------------------------------------------------------------------ conv

/** The conv seen as 2-D: what the backward kernels need. */
interface ConvGradConstants {
  n: number; c: number; h: number; w: number; m: number; oh: number; ow: number;
  cg: number; mg: number; kh: number; kw: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number;
}

/**
 * ∂X: thread = an input element (n, c, iy, ix); it gathers dY·W over the output channels of its
 * group and the taps (ky, kx) whose output position oy = (iy + pt − ky·dh) / sh is a whole number
 * in range (and likewise ox).
 */
export const convGradInputKernel = function (this: KernelThis<ConvGradConstants>, dy: Arr, wt: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.w);
  let ix = o - t * this.constants.w;
  if (ix < 0) { t = t - 1; ix = ix + this.constants.w; }
  if (ix >= this.constants.w) { t = t + 1; ix = ix - this.constants.w; }
  let t2 = Math.floor(t / this.constants.h);
  let iy = t - t2 * this.constants.h;
  if (iy < 0) { t2 = t2 - 1; iy = iy + this.constants.h; }
  if (iy >= this.constants.h) { t2 = t2 + 1; iy = iy - this.constants.h; }
  let n = Math.floor(t2 / this.constants.c);
  let c = t2 - n * this.constants.c;
  if (c < 0) { n = n - 1; c = c + this.constants.c; }
  if (c >= this.constants.c) { n = n + 1; c = c - this.constants.c; }
  let g = Math.floor(c / this.constants.cg);
  if (g * this.constants.cg > c) { g = g - 1; }
  if ((g + 1) * this.constants.cg <= c) { g = g + 1; }
  const ci = c - g * this.constants.cg;
  let s = 0;
  for (let mo = 0; mo < this.constants.mg; mo++) {
    const m = g * this.constants.mg + mo;
    const dyPlane = (n * this.constants.m + m) * this.constants.oh;
    const wPlane = (m * this.constants.cg + ci) * this.constants.kh;
    for (let ky = 0; ky < this.constants.kh; ky++) {
      const ny = iy + this.constants.pt - ky * this.constants.dh;
      let oy = Math.floor(ny / this.constants.sh);
      if (oy * this.constants.sh > ny) { oy = oy - 1; }
      if ((oy + 1) * this.constants.sh <= ny) { oy = oy + 1; }
      if (ny >= 0 && oy * this.constants.sh === ny && oy < this.constants.oh) {
        for (let kx = 0; kx < this.constants.kw; kx++) {
          const nx = ix + this.constants.pl - kx * this.constants.dw;
          let ox = Math.floor(nx / this.constants.sw);
          if (ox * this.constants.sw > nx) { ox = ox - 1; }
          if ((ox + 1) * this.constants.sw <= nx) { ox = ox + 1; }
          if (nx >= 0 && ox * this.constants.sw === nx && ox < this.constants.ow) {
            s += dy[(dyPlane + oy) * this.constants.ow + ox]! * wt[(wPlane + ky) * this.constants.kw + kx]!;
          }
        }
      }
    }
  }
  return s;
};

/** ∂W: thread = a weight (m, ci, ky, kx); it sums dY·X over the images and output positions. */
export const convGradWeightKernel = function (this: KernelThis<ConvGradConstants>, dy: Arr, x: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.kw);
  let kx = o - t * this.constants.kw;
  if (kx < 0) { t = t - 1; kx = kx + this.constants.kw; }
  if (kx >= this.constants.kw) { t = t + 1; kx = kx - this.constants.kw; }
  let t2 = Math.floor(t / this.constants.kh);
  let ky = t - t2 * this.constants.kh;
  if (ky < 0) { t2 = t2 - 1; ky = ky + this.constants.kh; }
  if (ky >= this.constants.kh) { t2 = t2 + 1; ky = ky - this.constants.kh; }
  let m = Math.floor(t2 / this.constants.cg);
  let ci = t2 - m * this.constants.cg;
  if (ci < 0) { m = m - 1; ci = ci + this.constants.cg; }
  if (ci >= this.constants.cg) { m = m + 1; ci = ci - this.constants.cg; }
  let g = Math.floor(m / this.constants.mg);
  if (g * this.constants.mg > m) { g = g - 1; }
  if ((g + 1) * this.constants.mg <= m) { g = g + 1; }
  const c = g * this.constants.cg + ci;
  let s = 0;
  for (let n = 0; n < this.constants.n; n++) {
    const dyPlane = (n * this.constants.m + m) * this.constants.oh;
    const xPlane = (n * this.constants.c + c) * this.constants.h;
    let part = 0; // per image, then added: a two-level float32 sum
    for (let oy = 0; oy < this.constants.oh; oy++) {
      const iy = oy * this.constants.sh - this.constants.pt + ky * this.constants.dh;
      if (iy >= 0 && iy < this.constants.h) {
        for (let ox = 0; ox < this.constants.ow; ox++) {
          const ix = ox * this.constants.sw - this.constants.pl + kx * this.constants.dw;
          if (ix >= 0 && ix < this.constants.w) {
            part += dy[(dyPlane + oy) * this.constants.ow + ox]! * x[(xPlane + iy) * this.constants.w + ix]!;
          }
        }
      }
    }
    s += part;
  }
  return s;
};

interface BiasGradConstants {
  n: number; m: number; p: number;
}

/** ∂B[m] = Σ over images and positions of dY[n, m, ·]. */
export const convGradBiasKernel = function (this: KernelThis<BiasGradConstants>, dy: Arr): number {
  const m = this.thread.x;
  let s = 0;
  for (let n = 0; n < this.constants.n; n++) {
    const base = (n * this.constants.m + m) * this.constants.p;
    let part = 0;
    for (let i = 0; i < this.constants.p; i++) {
      part += dy[base + i]!;
    }
    s += part;
  }
  return s;
};

/** The gradient before a fused activation: z recomputed without it (the forward launch), then g·act'(z, y). */
function preActivation(forward: GpuProgram, act: Activation, programs: GpuProgram[], Y: number, G: number): number {
  if (act.kind === 'none') return G;
  programs.push({ ...forward, constants: { ...forward.constants, act: 0, p1: 0, p2: 0 } });
  const z = -programs.length;
  programs.push(actGrad(forward.size, act, [z, Y, G]));
  return -programs.length;
}

export const gpuConvGrad: GpuGradKernel<ConvAttrs> = (inputs, attrs) => {
  const [x, w, b] = inputs as [Tensor, Tensor, Tensor?];
  const fwd = gpuConv(inputs, attrs);
  if (fwd.kind !== 'programs') return cpuGrad(fwd.kind === 'cpu' ? fwd.reason : 'no forward plan');
  const f = fwd.programs[0]!;
  const Y = inputs.length;
  const G = Y + 1;
  const programs: GpuProgram[] = [];
  const dY = preActivation(f, attrs.activation, programs, Y, G);
  const k = f.constants;
  const consts = { n: x.shape[0]!, c: k.c!, h: k.h!, w: k.w!, m: k.m!, oh: k.oh!, ow: k.ow!, cg: k.cg!, mg: k.mg!, kh: k.kh!, kw: k.kw!, sh: k.sh!, sw: k.sw!, dh: k.dh!, dw: k.dw!, pt: k.pt!, pl: k.pl! };
  const results: GradResult[] = [];
  if (x.requiresGrad) {
    programs.push({ name: 'convGradX', source: convGradInputKernel, size: x.size, args: [dY, 1], constants: consts });
    results.push({ program: programs.length - 1 });
  } else results.push(null);
  if (w.requiresGrad) {
    programs.push({ name: 'convGradW', source: convGradWeightKernel, size: w.size, args: [dY, 0], constants: consts });
    results.push({ program: programs.length - 1 });
  } else results.push(null);
  if (b) {
    if (b.requiresGrad) {
      programs.push({ name: 'convGradB', source: convGradBiasKernel, size: consts.m, args: [dY], constants: { n: consts.n, m: consts.m, p: consts.oh * consts.ow } });
      results.push({ program: programs.length - 1 });
    } else results.push(null);
  }
  return { kind: 'grads', programs, results };
};

// ------------------------------------------------------------------------------ gemm

/**
 * out[i, j] = scale · Σ_p P[i·ps0 + p·ps1] · Q[p·qs0 + j·qs1]: every product of the Gemm
 * gradient (transposes are strides).
 */
interface StridedMatMulConstants {
  cols: number; len: number; ps0: number; ps1: number; qs0: number; qs1: number; scale: number;
}

export const stridedMatMulKernel = function (this: KernelThis<StridedMatMulConstants>, p: Arr, q: Arr): number {
  const o = this.thread.x;
  let i = Math.floor(o / this.constants.cols);
  if (i * this.constants.cols > o) { i = i - 1; }
  if ((i + 1) * this.constants.cols <= o) { i = i + 1; }
  const j = o - i * this.constants.cols;
  let s = 0;
  for (let k = 0; k < this.constants.len; k++) {
    s += p[i * this.constants.ps0 + k * this.constants.ps1]! * q[k * this.constants.qs0 + j * this.constants.qs1]!;
  }
  return s * this.constants.scale;
};

/**
 * Gemm (Z = alpha·A'·B' + beta·C): ∂A' = alpha·dZ·B'ᵀ and ∂B' = alpha·A'ᵀ·dZ, each launched
 * directly in the stored layout of A / B; ∂C = beta·dZ summed over C's broadcast dims.
 */
export const gpuGemmGrad: GpuGradKernel<GemmAttrs> = (inputs, attrs, y) => {
  const [a, b, c] = inputs as [Tensor, Tensor, Tensor?];
  if (a.rank !== 2 || b.rank !== 2 || y.rank !== 2) return cpuGrad('Gemm operands that are not matrices');
  const m = attrs.transA ? a.shape[1]! : a.shape[0]!;
  const k = attrs.transA ? a.shape[0]! : a.shape[1]!;
  const n = y.shape[1]!;
  const Y = inputs.length;
  const G = Y + 1;
  const programs: GpuProgram[] = [];
  // dZ: the gradient before the fused activation (z recomputed by the forward kernel without it).
  let dZ = G;
  if (attrs.activation.kind !== 'none') {
    const fwd = gpuGemm(inputs, attrs);
    if (fwd.kind !== 'programs' || fwd.programs.length !== 1) return cpuGrad(fwd.kind === 'cpu' ? fwd.reason : 'a Gemm of several launches');
    dZ = preActivation(fwd.programs[0]!, attrs.activation, programs, Y, G);
  }
  const results: GradResult[] = [];
  if (a.requiresGrad) {
    // ∂A'[i, p] = alpha·Σ_j dZ[i, j]·B'[p, j]; stored at A[i, p] or A[p, i].
    // Launch over A's stored layout: rows r, cols s.
    const cols = a.shape[1]!;
    // For A stored [m, k]: out[i, p] = Σ_j dZ[i·n + j]·B'(p, j); B'(p, j) = B[p·n + j] or B[j·k + p].
    // For A stored [k, m] (transA): out[p, i] = Σ_j B'(p, j)·dZ[i·n + j].
    const bp = (pStride: boolean) => (attrs.transB ? (pStride ? 1 : k) : pStride ? n : 1); // stride of B' along p (true) / j (false)
    programs.push(
      attrs.transA
        ? { name: 'gemmGradA', source: stridedMatMulKernel, size: a.size, args: [1, dZ], constants: { cols, len: n, ps0: bp(true), ps1: bp(false), qs0: 1, qs1: n, scale: attrs.alpha } }
        : { name: 'gemmGradA', source: stridedMatMulKernel, size: a.size, args: [dZ, 1], constants: { cols, len: n, ps0: n, ps1: 1, qs0: bp(false), qs1: bp(true), scale: attrs.alpha } },
    );
    results.push({ program: programs.length - 1 });
  } else results.push(null);
  if (b.requiresGrad) {
    // ∂B'[p, j] = alpha·Σ_i A'(i, p)·dZ[i, j]; A'(i, p) = A[i·k + p] or A[p·m + i].
    const cols = b.shape[1]!;
    const ai = attrs.transA ? 1 : k; // stride of A' along i
    const ap = attrs.transA ? m : 1; // stride of A' along p
    programs.push(
      attrs.transB
        ? { name: 'gemmGradB', source: stridedMatMulKernel, size: b.size, args: [dZ, 0], constants: { cols, len: m, ps0: 1, ps1: n, qs0: ai, qs1: ap, scale: attrs.alpha } }
        : { name: 'gemmGradB', source: stridedMatMulKernel, size: b.size, args: [0, dZ], constants: { cols, len: m, ps0: ap, ps1: ai, qs0: n, qs1: 1, scale: attrs.alpha } },
    );
    results.push({ program: programs.length - 1 });
  } else results.push(null);
  if (c) {
    if (!c.requiresGrad || attrs.beta === 0) results.push(null);
    else {
      const p = sumToProgram([m, n], c.shape, dZ, attrs.beta);
      if (p === 'too many dims') return cpuGrad('a Gemm C of unusual shape');
      programs.push(p);
      results.push({ program: programs.length - 1 });
    }
  }
  return { kind: 'grads', programs, results };
};

/** MatMul of two matrices: ∂A = dY·Bᵀ, ∂B = Aᵀ·dY (batched and 1-D operands run on the CPU). */
export const gpuMatMulGrad: GpuGradKernel<void> = ([a, b]) => {
  if (a!.rank !== 2 || b!.rank !== 2) return cpuGrad('MatMul operands that are not both matrices');
  const [m, k] = a!.shape as [number, number];
  const n = b!.shape[1]!;
  const G = 3;
  const programs: GpuProgram[] = [];
  const results: GradResult[] = [];
  if (a!.requiresGrad) {
    programs.push({ name: 'matmulGradA', source: stridedMatMulKernel, size: m * k, args: [G, 1], constants: { cols: k, len: n, ps0: n, ps1: 1, qs0: 1, qs1: n, scale: 1 } });
    results.push({ program: programs.length - 1 });
  } else results.push(null);
  if (b!.requiresGrad) {
    programs.push({ name: 'matmulGradB', source: stridedMatMulKernel, size: k * n, args: [0, G], constants: { cols: n, len: m, ps0: 1, ps1: k, qs0: n, qs1: 1, scale: 1 } });
    results.push({ program: programs.length - 1 });
  } else results.push(null);
  return { kind: 'grads', programs, results };
};

// ------------------------------------------------------------------------------ batch norm

/**
 * Per-channel sums over N and the spatial dims of [N, C, inner] arrays, times `div`:
 * mode 0: Σ a; 1: Σ a·(b − m[c]); 2: Σ (a − m[c])². One thread per channel; the inner sums are
 * accumulated apart per image (a two-level sum, for float32 accuracy on long channels).
 */
interface ChannelSumConstants {
  n: number; c: number; inner: number; mode: number; div: number;
}

export const channelSumKernel = function (this: KernelThis<ChannelSumConstants>, a: Arr, b: Arr, m: Arr): number {
  const ch = this.thread.x;
  let mu = 0;
  if (this.constants.mode > 0) { mu = m[ch]!; }
  let s = 0;
  for (let n = 0; n < this.constants.n; n++) {
    const base = (n * this.constants.c + ch) * this.constants.inner;
    let part = 0;
    for (let i = 0; i < this.constants.inner; i++) {
      const v = a[base + i]!;
      let t = v;
      if (this.constants.mode === 1) { t = v * (b[base + i]! - mu); }
      if (this.constants.mode === 2) { t = (v - mu) * (v - mu); }
      part += t;
    }
    s += part;
  }
  return s * this.constants.div;
};

/**
 * The per-channel parameter gradients from sg = Σ dy and sgx = Σ dy·(x − μ), with
 * inv = 1/sqrt(var + eps): mode 0 ∂scale = sgx·inv; 1 ∂bias = sg; 2 ∂mean = −sg·s·inv;
 * 3 ∂var = −½·s·sgx·inv³.
 */
interface BnParamConstants {
  eps: number; mode: number;
}

export const bnParamGradKernel = function (this: KernelThis<BnParamConstants>, sg: Arr, sgx: Arr, scale: Arr, variance: Arr): number {
  const c = this.thread.x;
  const inv = 1 / Math.sqrt(variance[c]! + this.constants.eps);
  let v = sg[c]!;
  if (this.constants.mode === 0) { v = sgx[c]! * inv; }
  if (this.constants.mode === 2) { v = -sg[c]! * scale[c]! * inv; }
  if (this.constants.mode === 3) { v = -0.5 * scale[c]! * sgx[c]! * inv * inv * inv; }
  return v;
};

/**
 * ∂x of batch norm, per element of channel c, with inv = 1/sqrt(var[c] + eps):
 * inference (train 0): dy·s·inv; training (train 1, batch statistics):
 * s·inv·(dy − sg/n − (x − μ)·inv·(sgx·inv)/n).
 */
interface BnInputConstants {
  c: number; inner: number; eps: number; train: number; count: number;
}

export const bnInputGradKernel = function (this: KernelThis<BnInputConstants>, x: Arr, dy: Arr, scale: Arr, mean: Arr, variance: Arr, sg: Arr, sgx: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.inner);
  if (t * this.constants.inner > o) { t = t - 1; }
  if ((t + 1) * this.constants.inner <= o) { t = t + 1; }
  let ch = t - Math.floor(t / this.constants.c) * this.constants.c;
  if (ch < 0) { ch = ch + this.constants.c; }
  if (ch >= this.constants.c) { ch = ch - this.constants.c; }
  const inv = 1 / Math.sqrt(variance[ch]! + this.constants.eps);
  const k = scale[ch]! * inv;
  let v = dy[o]! * k;
  if (this.constants.train === 1) {
    v = k * (dy[o]! - sg[ch]! / this.constants.count - (x[o]! - mean[ch]!) * inv * ((sgx[ch]! * inv) / this.constants.count));
  }
  return v;
};

/** Shared by both cards: sums, then ∂x and the parameter gradients; `mean` / `variance` are argument indices. */
function batchNormGradPlan(x: Tensor, eps: number, dY: number, programs: GpuProgram[], meanArg: number, varArg: number, train: boolean): { gx: GradResult; param: (mode: number) => GradResult } {
  const xs = x.shape;
  const C = xs[1]!;
  const inner = sizeOfShape(xs.slice(2));
  const n = xs[0]!;
  const sums = { n, c: C, inner };
  programs.push({ name: 'bnSum', source: channelSumKernel, size: C, args: [dY, 0, meanArg], constants: { ...sums, mode: 0, div: 1 } });
  const sg = -programs.length;
  programs.push({ name: 'bnSum', source: channelSumKernel, size: C, args: [dY, 0, meanArg], constants: { ...sums, mode: 1, div: 1 } });
  const sgx = -programs.length;
  let gx: GradResult = null;
  if (x.requiresGrad) {
    programs.push({
      name: 'bnGradX',
      source: bnInputGradKernel,
      size: x.size,
      args: [0, dY, 1, meanArg, varArg, sg, sgx],
      constants: { c: C, inner, eps, train: train ? 1 : 0, count: n * inner },
    });
    gx = { program: programs.length - 1 };
  }
  const param = (mode: number): GradResult => {
    if (mode === 1) return { program: -1 - sg };
    programs.push({ name: 'bnGradParam', source: bnParamGradKernel, size: C, args: [sg, sgx, 1, varArg], constants: { eps, mode } });
    return { program: programs.length - 1 };
  };
  return { gx, param };
}

/** BatchNormalization (inference: the running statistics are inputs 3 and 4). */
export const gpuBatchNormGrad: GpuGradKernel<BatchNormAttrs> = (inputs, attrs) => {
  const x = inputs[0]!;
  if (x.rank < 2) return cpuGrad(`rank-${x.rank} input`);
  const programs: GpuProgram[] = [];
  const Y = inputs.length;
  const G = Y + 1;
  const act = attrs.activation ?? { kind: 'none' as const };
  const fwd = gpuBatchNorm(inputs, attrs);
  if (fwd.kind !== 'programs') return cpuGrad('no forward plan');
  const dY = preActivation(fwd.programs[0]!, act, programs, Y, G);
  const { gx, param } = batchNormGradPlan(x, attrs.epsilon, dY, programs, 3, 4, false);
  return { kind: 'grads', programs, results: [gx, ...[0, 1, 2, 3].map((mode, k) => (inputs[k + 1]!.requiresGrad ? param(mode) : null))] };
};

/** BatchNormalizationTraining: the batch statistics are recomputed on the GPU (two per-channel passes). */
export const gpuBatchNormTrainGrad: GpuGradKernel<BatchNormTrainAttrs> = (inputs, attrs) => {
  const [x, scale, bias] = inputs as [Tensor, Tensor, Tensor];
  if (x.rank < 2) return cpuGrad(`rank-${x.rank} input`);
  const C = x.shape[1]!;
  const inner = sizeOfShape(x.shape.slice(2));
  const sums = { n: x.shape[0]!, c: C, inner };
  const count = sums.n * inner;
  const programs: GpuProgram[] = [
    { name: 'bnSum', source: channelSumKernel, size: C, args: [0, 0, 0], constants: { ...sums, mode: 0, div: 1 / count } },
    { name: 'bnSum', source: channelSumKernel, size: C, args: [0, 0, -1], constants: { ...sums, mode: 2, div: 1 / count } },
  ];
  const G = inputs.length + 1;
  const { gx, param } = batchNormGradPlan(x, attrs.epsilon, G, programs, -1, -2, true);
  return { kind: 'grads', programs, results: [gx, scale.requiresGrad ? param(0) : null, bias.requiresGrad ? param(1) : null] };
};

// ------------------------------------------------------------------------------ max / average pool

interface PoolGradConstants {
  h: number; w: number; oh: number; ow: number; kh: number; kw: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number; pb: number; pr: number;
  isMax: number; countPad: number;
}

/**
 * MaxPool / AveragePool ∂x: thread = an input element (plane, iy, ix). It visits the windows
 * holding it (taps whose output position is whole and in range). Average: adds dY/divisor, the
 * forward's divisor (input taps, or input + pad taps with countIncludePad). Max: adds dY when the
 * window's first maximal tap in row-major order is this element (MaxPool's Indices element).
 */
export const poolGradKernel = function (this: KernelThis<PoolGradConstants>, x: Arr, dy: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.w);
  let ix = o - t * this.constants.w;
  if (ix < 0) { t = t - 1; ix = ix + this.constants.w; }
  if (ix >= this.constants.w) { t = t + 1; ix = ix - this.constants.w; }
  let plane = Math.floor(t / this.constants.h);
  let iy = t - plane * this.constants.h;
  if (iy < 0) { plane = plane - 1; iy = iy + this.constants.h; }
  if (iy >= this.constants.h) { plane = plane + 1; iy = iy - this.constants.h; }
  const base = plane * this.constants.h * this.constants.w;
  const dyBase = plane * this.constants.oh * this.constants.ow;
  let s = 0;
  for (let ky = 0; ky < this.constants.kh; ky++) {
    const ny = iy + this.constants.pt - ky * this.constants.dh;
    let oy = Math.floor(ny / this.constants.sh);
    if (oy * this.constants.sh > ny) { oy = oy - 1; }
    if ((oy + 1) * this.constants.sh <= ny) { oy = oy + 1; }
    if (ny >= 0 && oy * this.constants.sh === ny && oy < this.constants.oh) {
      for (let kx = 0; kx < this.constants.kw; kx++) {
        const nx = ix + this.constants.pl - kx * this.constants.dw;
        let ox = Math.floor(nx / this.constants.sw);
        if (ox * this.constants.sw > nx) { ox = ox - 1; }
        if ((ox + 1) * this.constants.sw <= nx) { ox = ox + 1; }
        if (nx >= 0 && ox * this.constants.sw === nx && ox < this.constants.ow) {
          const iy0 = oy * this.constants.sh - this.constants.pt;
          const ix0 = ox * this.constants.sw - this.constants.pl;
          let rows = 0;
          let rowsIn = 0;
          let best = -3.4e38;
          let by = -1;
          let bx = -1;
          for (let wy = 0; wy < this.constants.kh; wy++) {
            const py = iy0 + wy * this.constants.dh;
            if (py < this.constants.h + this.constants.pb) { rows += 1; }
            if (py >= 0 && py < this.constants.h) {
              rowsIn += 1;
              if (this.constants.isMax === 1) {
                for (let wx = 0; wx < this.constants.kw; wx++) {
                  const px = ix0 + wx * this.constants.dw;
                  if (px >= 0 && px < this.constants.w) {
                    const v = x[base + py * this.constants.w + px]!;
                    if (v > best || by < 0) { best = v; by = py; bx = px; }
                  }
                }
              }
            }
          }
          let cols = 0;
          let colsIn = 0;
          for (let wx = 0; wx < this.constants.kw; wx++) {
            const px = ix0 + wx * this.constants.dw;
            if (px < this.constants.w + this.constants.pr) { cols += 1; }
            if (px >= 0 && px < this.constants.w) { colsIn += 1; }
          }
          const gv = dy[dyBase + oy * this.constants.ow + ox]!;
          if (this.constants.isMax === 1) {
            if (by === iy && bx === ix) { s += gv; }
          } else {
            if (this.constants.countPad === 1) { s += gv / (rows * cols); } else { s += gv / (rowsIn * colsIn); }
          }
        }
      }
    }
  }
  return s;
};

function gpuPoolGrad(isMax: boolean): GpuGradKernel<PoolAttrs> {
  return (inputs, attrs) => {
    const x = inputs[0]!;
    if (!x.requiresGrad) return { kind: 'grads', programs: [], results: [null] };
    const fwd = (isMax ? gpuMaxPool : gpuAveragePool)(inputs, attrs);
    if (fwd.kind !== 'programs') return cpuGrad(fwd.kind === 'cpu' ? fwd.reason : 'no forward plan');
    const f = fwd.programs[0]!;
    return { kind: 'grads', programs: [{ name: isMax ? 'maxpoolGrad' : 'avgpoolGrad', source: poolGradKernel, size: x.size, args: [0, inputs.length + 1], constants: f.constants }], results: [{ program: 0 }] };
  };
}

export const gpuMaxPoolGrad = gpuPoolGrad(true);
export const gpuAveragePoolGrad = gpuPoolGrad(false);

// ------------------------------------------------------------------------------ movement

/** Reshape, Flatten, Squeeze, Unsqueeze, Identity: gOut's buffer under the input's shape (no launch). */
export const gpuRelabelGrad: GpuGradKernel<unknown> = ([x]) => ({ kind: 'grads', programs: [], results: [x!.requiresGrad ? { view: 'g' } : null] });

/** Transpose: the forward kernel over gOut with the inverse permutation. */
export const gpuTransposeGrad: GpuGradKernel<TransposeAttrs> = ([x], attrs, _y, g) => {
  if (!x!.requiresGrad) return { kind: 'grads', programs: [], results: [null] };
  const perm = attrs.perm && attrs.perm.length > 0 ? attrs.perm.map((a) => (a < 0 ? a + x!.rank : a)) : x!.shape.map((_, i) => x!.rank - 1 - i);
  const inv = new Array<number>(perm.length);
  perm.forEach((a, k) => (inv[a] = k));
  const plan = gpuTranspose([g], { ...attrs, perm: inv });
  if (plan.kind !== 'programs') return cpuGrad(plan.kind === 'cpu' ? plan.reason : 'no forward plan');
  const G = 2;
  const programs = plan.programs.map((q) => ({ ...q, args: q.args.map((k) => (k === 0 ? G : k)) }));
  return { kind: 'grads', programs, results: [{ program: programs.length - 1 }] };
};

// ------------------------------------------------------------------------------ softmax, reductions, concat

/**
 * Softmax / LogSoftmax ∂x along the axis (the input viewed as [outer, len, inner]): each thread
 * sums its line, s = Σ g·y (softmax) or Σ g (log-softmax), then writes y·(g − s) or g − e^y·s.
 */
interface SoftmaxGradConstants {
  len: number; inner: number; log: number;
}

export const softmaxGradKernel = function (this: KernelThis<SoftmaxGradConstants>, y: Arr, g: Arr): number {
  const o = this.thread.x;
  const block = this.constants.len * this.constants.inner;
  let outer = Math.floor(o / block);
  if (outer * block > o) { outer = outer - 1; }
  if ((outer + 1) * block <= o) { outer = outer + 1; }
  const rest = o - outer * block;
  let l = Math.floor(rest / this.constants.inner);
  if (l * this.constants.inner > rest) { l = l - 1; }
  if ((l + 1) * this.constants.inner <= rest) { l = l + 1; }
  const base = outer * block + rest - l * this.constants.inner;
  let s = 0;
  for (let i = 0; i < this.constants.len; i++) {
    const at = base + i * this.constants.inner;
    if (this.constants.log === 1) { s += g[at]!; } else { s += g[at]! * y[at]!; }
  }
  if (this.constants.log === 1) { return g[o]! - Math.exp(y[o]!) * s; }
  return y[o]! * (g[o]! - s);
};

function gpuSoftmaxGradOf(log: boolean): GpuGradKernel<SoftmaxAttrs> {
  return (inputs, attrs) => {
    const x = inputs[0]!;
    if (!x.requiresGrad) return { kind: 'grads', programs: [], results: [null] };
    const fwd = (log ? gpuLogSoftmax : gpuSoftmax)(inputs, attrs);
    if (fwd.kind !== 'programs') return cpuGrad(fwd.kind === 'cpu' ? fwd.reason : 'no forward plan');
    const { len, inner } = fwd.programs[0]!.constants;
    return { kind: 'grads', programs: [{ name: 'softmaxGrad', source: softmaxGradKernel, size: x.size, args: [1, 2], constants: { len: len!, inner: inner!, log: log ? 1 : 0 } }], results: [{ program: 0 }] };
  };
}

/** ReduceSum / ReduceMean ∂x: g broadcast back over the reduced run ([outer, len, inner] → [outer, inner]), times 1/len for the mean. */
interface ReduceGradConstants {
  len: number; inner: number; scale: number;
}

export const reduceGradKernel = function (this: KernelThis<ReduceGradConstants>, g: Arr): number {
  const o = this.thread.x;
  const block = this.constants.len * this.constants.inner;
  let outer = Math.floor(o / block);
  if (outer * block > o) { outer = outer - 1; }
  if ((outer + 1) * block <= o) { outer = outer + 1; }
  const rest = o - outer * block;
  let l = Math.floor(rest / this.constants.inner);
  if (l * this.constants.inner > rest) { l = l - 1; }
  if ((l + 1) * this.constants.inner <= rest) { l = l + 1; }
  const j = rest - l * this.constants.inner;
  return g[outer * this.constants.inner + j]! * this.constants.scale;
};

function gpuReduceGrad(name: string, mean: boolean): GpuGradKernel<ReduceAttrs> {
  const fwdOf = gpuReduce(name, mean ? 1 : 0);
  return (inputs, attrs) => {
    const x = inputs[0]!;
    if (!x.requiresGrad) return { kind: 'grads', programs: [], results: [null] };
    const fwd = fwdOf(inputs, attrs);
    if (fwd.kind !== 'programs') return cpuGrad(fwd.kind === 'cpu' ? fwd.reason : 'no forward plan');
    const { len, inner } = fwd.programs[0]!.constants;
    return {
      kind: 'grads',
      programs: [{ name: 'reduceGrad', source: reduceGradKernel, size: x.size, args: [inputs.length + 1], constants: { len: len!, inner: inner!, scale: mean ? 1 / len! : 1 } }],
      results: [{ program: 0 }],
    };
  };
}

/** Concat ∂x: each input's slice of g along the axis (g viewed as [outer, width]; the slice is [outer, start, start + cols)). */
interface SliceConstants {
  cols: number; width: number; start: number;
}

export const sliceColumnsKernel = function (this: KernelThis<SliceConstants>, g: Arr): number {
  const o = this.thread.x;
  let row = Math.floor(o / this.constants.cols);
  if (row * this.constants.cols > o) { row = row - 1; }
  if ((row + 1) * this.constants.cols <= o) { row = row + 1; }
  return g[row * this.constants.width + this.constants.start + o - row * this.constants.cols]!;
};

export const gpuConcatGrad: GpuGradKernel<AxisAttrs> = (inputs, { axis }, y) => {
  const a = normAxis(axis, y.rank, 'Concat');
  const inner = sizeOfShape(y.shape.slice(a + 1));
  const width = y.shape[a]! * inner;
  const G = inputs.length + 1;
  const programs: GpuProgram[] = [];
  let start = 0;
  const results = inputs.map((t): GradResult => {
    const cols = t.shape[a]! * inner;
    const at = start;
    start += cols;
    if (!t.requiresGrad || t.size === 0) return null;
    programs.push({ name: 'concatGrad', source: sliceColumnsKernel, size: t.size, args: [G], constants: { cols, width, start: at } });
    return { program: programs.length - 1 };
  });
  return { kind: 'grads', programs, results };
};

/**
 * Pad (constant mode) ∂x: each input element (i0..i3 of up to 4 dims) reads g at its padded
 * position (i + begin per axis); an element a negative pad cropped away gets 0.
 */
interface PadGradConstants {
  d1: number; d2: number; d3: number;
  b0: number; b1: number; b2: number; b3: number;
  o0: number; o1: number; o2: number; o3: number;
}

export const padGradKernel = function (this: KernelThis<PadGradConstants>, g: Arr): number {
  let t = this.thread.x;
  let q = Math.floor(t / this.constants.d3);
  let i3 = t - q * this.constants.d3;
  if (i3 < 0) { q = q - 1; i3 = i3 + this.constants.d3; }
  if (i3 >= this.constants.d3) { q = q + 1; i3 = i3 - this.constants.d3; }
  t = q;
  q = Math.floor(t / this.constants.d2);
  let i2 = t - q * this.constants.d2;
  if (i2 < 0) { q = q - 1; i2 = i2 + this.constants.d2; }
  if (i2 >= this.constants.d2) { q = q + 1; i2 = i2 - this.constants.d2; }
  t = q;
  q = Math.floor(t / this.constants.d1);
  let i1 = t - q * this.constants.d1;
  if (i1 < 0) { q = q - 1; i1 = i1 + this.constants.d1; }
  if (i1 >= this.constants.d1) { q = q + 1; i1 = i1 - this.constants.d1; }
  const p0 = q + this.constants.b0;
  const p1 = i1 + this.constants.b1;
  const p2 = i2 + this.constants.b2;
  const p3 = i3 + this.constants.b3;
  let v = 0;
  if (p0 >= 0 && p0 < this.constants.o0 && p1 >= 0 && p1 < this.constants.o1 && p2 >= 0 && p2 < this.constants.o2 && p3 >= 0 && p3 < this.constants.o3) {
    v = g[((p0 * this.constants.o1 + p1) * this.constants.o2 + p2) * this.constants.o3 + p3]!;
  }
  return v;
};

export const gpuPadGrad: GpuGradKernel<PadAttrs> = ([x], attrs, y) => {
  if (!x!.requiresGrad) return { kind: 'grads', programs: [], results: [null] };
  if (attrs.mode !== 'constant') return cpuGrad(`${attrs.mode} padding (the GPU backward kernel does constant padding)`);
  const r = x!.rank;
  if (r === 0 || r > 4) return cpuGrad(`rank ${r} (the kernel pads up to 4 dims)`);
  const lead = 4 - r;
  const d = [...new Array<number>(lead).fill(1), ...x!.shape];
  const b = [...new Array<number>(lead).fill(0), ...attrs.pads.slice(0, r)];
  const o = [...new Array<number>(lead).fill(1), ...y.shape];
  return {
    kind: 'grads',
    programs: [
      {
        name: 'padGrad',
        source: padGradKernel,
        size: x!.size,
        args: [2],
        constants: { d1: d[1]!, d2: d[2]!, d3: d[3]!, b0: b[0]!, b1: b[1]!, b2: b[2]!, b3: b[3]!, o0: o[0]!, o1: o[1]!, o2: o[2]!, o3: o[3]! },
      },
    ],
    results: [{ program: 0 }],
  };
};

/** The backward kernel of each card that has one on the GPU (others fall back to the card's `grad`). */
function entry<A>(card: OpCard<A>, kernel: GpuGradKernel<A>): [OpCard<unknown>, GpuGradKernel<unknown>] {
  return [card as OpCard<unknown>, kernel as GpuGradKernel<unknown>];
}

/** The GPU backward kernel of each op card that has one, keyed by the card; the others fall back to the card's CPU `grad`. */
export const GPU_GRADS: ReadonlyMap<OpCard<unknown>, GpuGradKernel<unknown>> = new Map([
  entry(unaryCard, gpuUnaryGrad),
  entry(binaryCard, gpuBinaryGrad),
  entry(globalAveragePoolCard, gpuGlobalAveragePoolGrad),
  entry(convCard, gpuConvGrad),
  entry(gemmCard, gpuGemmGrad),
  entry(matmulCard, gpuMatMulGrad),
  entry(batchNormCard, gpuBatchNormGrad),
  entry(batchNormTrainingCard, gpuBatchNormTrainGrad),
  entry(transposeCard, gpuTransposeGrad),
  entry(maxPoolCard, gpuMaxPoolGrad),
  entry(softmaxCard, gpuSoftmaxGradOf(false)),
  entry(logSoftmaxCard, gpuSoftmaxGradOf(true)),
  entry(reduceSumCard, gpuReduceGrad('ReduceSum', false)),
  entry(reduceMeanCard, gpuReduceGrad('ReduceMean', true)),
  entry(concatCard, gpuConcatGrad),
  entry(padCard, gpuPadGrad),
  entry(averagePoolCard, gpuAveragePoolGrad),
  ...[reshapeCard, flattenCard, squeezeCard, unsqueezeCard, identityCard].map((c) => entry(c as OpCard<unknown>, gpuRelabelGrad)),
]);

