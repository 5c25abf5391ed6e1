import type { OpCard } from '../../core/op.js';
import { normAxis, stridesOf } from '../../core/shape.js';
import type { AxisAttrs, TransposeAttrs } from '../../kernels/movement.js';
import { type Arr, type GpuKernel, type KernelThis, cpuPlan } from './types.js';

/** Reshape, Flatten, Squeeze, Unsqueeze, Identity: the same device buffer under the card's shape (no launch). */
export function gpuView<A>(card: OpCard<A>): GpuKernel<A> {
  return (inputs, attrs) => ({ kind: 'view', shape: card.shape([inputs[0]!.shape], attrs) });
}

/**
 * Concat card: two inputs per launch, viewed as [outer, la] and [outer, lb] rows around the axis;
 * more inputs chain launches (((a, b), c), d).
 */
interface ConcatConstants {
  la: number; lb: number;
}

export const concatKernel = function (this: KernelThis<ConcatConstants>, a: Arr, b: Arr): number {
  const o = this.thread.x;
  const row = this.constants.la + this.constants.lb;
  let r = Math.floor(o / row);
  if (r * row > o) { r = r - 1; }
  if ((r + 1) * row <= o) { r = r + 1; }
  const col = o - r * row;
  if (col < this.constants.la) { return a[r * this.constants.la + col]!; }
  return b[r * this.constants.lb + col - this.constants.la]!;
};

export const gpuConcat: GpuKernel<AxisAttrs> = (inputs, { axis }) => {
  const first = inputs[0]!.shape;
  const a = normAxis(axis, first.length, 'Concat');
  const outer = first.slice(0, a).reduce((p, q) => p * q, 1);
  const inner = first.slice(a + 1).reduce((p, q) => p * q, 1);
  const shape = [...first];
  shape[a] = inputs.reduce((s, t) => s + t.shape[a]!, 0);
  if (inputs.length === 1) return { kind: 'view', shape };
  if (inputs.some((t) => t.size === 0)) return cpuPlan('an empty input');
  const programs = [];
  let width = inputs[0]!.shape[a]! * inner;
  for (let i = 1; i < inputs.length; i++) {
    const lb = inputs[i]!.shape[a]! * inner;
    programs.push({ name: 'concat', source: concatKernel, size: outer * (width + lb), args: [i === 1 ? 0 : 1 - i, i], constants: { la: width, lb } });
    width += lb;
  }
  return { kind: 'programs', shape, programs };
};

/** Transpose card: each output element reads the input through permuted strides (up to 6 dims). */
interface TransposeConstants {
  d1: number; d2: number; d3: number; d4: number; d5: number;
  s0: number; s1: number; s2: number; s3: number; s4: number; s5: number;
}

export const transposeKernel = function (this: KernelThis<TransposeConstants>, x: Arr): number {
  let t = this.thread.x;
  let ix = 0;
  let q = Math.floor(t / this.constants.d5);
  let r = t - q * this.constants.d5;
  if (r < 0) { q = q - 1; r = r + this.constants.d5; }
  if (r >= this.constants.d5) { q = q + 1; r = r - this.constants.d5; }
  ix += r * this.constants.s5; t = q;
  q = Math.floor(t / this.constants.d4);
  r = t - q * this.constants.d4;
  if (r < 0) { q = q - 1; r = r + this.constants.d4; }
  if (r >= this.constants.d4) { q = q + 1; r = r - this.constants.d4; }
  ix += r * this.constants.s4; t = q;
  q = Math.floor(t / this.constants.d3);
  r = t - q * this.constants.d3;
  if (r < 0) { q = q - 1; r = r + this.constants.d3; }
  if (r >= this.constants.d3) { q = q + 1; r = r - this.constants.d3; }
  ix += r * this.constants.s3; t = q;
  q = Math.floor(t / this.constants.d2);
  r = t - q * this.constants.d2;
  if (r < 0) { q = q - 1; r = r + this.constants.d2; }
  if (r >= this.constants.d2) { q = q + 1; r = r - this.constants.d2; }
  ix += r * this.constants.s2; t = q;
  q = Math.floor(t / this.constants.d1);
  r = t - q * this.constants.d1;
  if (r < 0) { q = q - 1; r = r + this.constants.d1; }
  if (r >= this.constants.d1) { q = q + 1; r = r - this.constants.d1; }
  ix += r * this.constants.s1 + q * this.constants.s0;
  return x[ix]!;
};

export const gpuTranspose: GpuKernel<TransposeAttrs> = ([x], { perm }) => {
  const xs = x!.shape;
  const p = perm ? [...perm] : xs.map((_, i) => xs.length - 1 - i);
  const shape = p.map((a) => xs[a]!);
  const strides = stridesOf(xs);
  const kept = p.filter((a) => xs[a] !== 1);
  if (kept.length > 6) return cpuPlan(`${kept.length} non-unit dims (the kernel takes 6)`);
  const pad = 6 - kept.length;
  const d = [...new Array<number>(pad).fill(1), ...kept.map((a) => xs[a]!)];
  const s = [...new Array<number>(pad).fill(0), ...kept.map((a) => strides[a]!)];
  return {
    kind: 'programs',
    shape,
    programs: [
      {
        name: 'transpose',
        source: transposeKernel,
        size: x!.size,
        args: [0],
        constants: { d1: d[1]!, d2: d[2]!, d3: d[3]!, d4: d[4]!, d5: d[5]!, s0: s[0]!, s1: s[1]!, s2: s[2]!, s3: s[3]!, s4: s[4]!, s5: s[5]! },
      },
    ],
  };
};
