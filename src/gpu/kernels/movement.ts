import type { OpCard } from '../../core/op.js';
import { normAxis, stridesOf } from '../../core/shape.js';
import type { AxisAttrs, PadAttrs, TransposeAttrs } from '../../kernels/movement.js';
import { type Arr, F32_MAX, type GpuKernel, type KernelThis, cpuPlan } from './types.js';

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

/**
 * Pad card (constant, edge and reflect; negative pads crop), up to 4 dims (fewer are padded with
 * leading 1s). Per axis i: the output position o reads kept-part position j = o − b_i (b_i: the
 * positive begin pad), which lies in [0, k_i) or is mapped there by the mode (constant: the
 * fill value instead), then input position l_i + j (l_i: the cropped begin).
 */
interface PadConstants {
  d1: number; d2: number; d3: number;
  b0: number; b1: number; b2: number; b3: number;
  k0: number; k1: number; k2: number; k3: number;
  l0: number; l1: number; l2: number; l3: number;
  s0: number; s1: number; s2: number;
  mode: number; value: number;
}

export const padKernel = function (this: KernelThis<PadConstants>, x: Arr): number {
  let t = this.thread.x;
  let q = Math.floor(t / this.constants.d3);
  let o3 = t - q * this.constants.d3;
  if (o3 < 0) { q = q - 1; o3 = o3 + this.constants.d3; }
  if (o3 >= this.constants.d3) { q = q + 1; o3 = o3 - this.constants.d3; }
  t = q;
  q = Math.floor(t / this.constants.d2);
  let o2 = t - q * this.constants.d2;
  if (o2 < 0) { q = q - 1; o2 = o2 + this.constants.d2; }
  if (o2 >= this.constants.d2) { q = q + 1; o2 = o2 - this.constants.d2; }
  t = q;
  q = Math.floor(t / this.constants.d1);
  let o1 = t - q * this.constants.d1;
  if (o1 < 0) { q = q - 1; o1 = o1 + this.constants.d1; }
  if (o1 >= this.constants.d1) { q = q + 1; o1 = o1 - this.constants.d1; }
  const o0 = q;
  let j0 = o0 - this.constants.b0;
  let j1 = o1 - this.constants.b1;
  let j2 = o2 - this.constants.b2;
  let j3 = o3 - this.constants.b3;
  let outside = 0;
  if (j0 < 0 || j0 >= this.constants.k0) { outside = 1; }
  if (j1 < 0 || j1 >= this.constants.k1) { outside = 1; }
  if (j2 < 0 || j2 >= this.constants.k2) { outside = 1; }
  if (j3 < 0 || j3 >= this.constants.k3) { outside = 1; }
  if (outside === 1 && this.constants.mode === 0) { return this.constants.value; }
  if (this.constants.mode === 1) {
    j0 = Math.min(Math.max(j0, 0), this.constants.k0 - 1);
    j1 = Math.min(Math.max(j1, 0), this.constants.k1 - 1);
    j2 = Math.min(Math.max(j2, 0), this.constants.k2 - 1);
    j3 = Math.min(Math.max(j3, 0), this.constants.k3 - 1);
  }
  if (this.constants.mode === 2) {
    if (j0 < 0) { j0 = -j0; }
    if (j0 >= this.constants.k0) { j0 = 2 * (this.constants.k0 - 1) - j0; }
    if (j1 < 0) { j1 = -j1; }
    if (j1 >= this.constants.k1) { j1 = 2 * (this.constants.k1 - 1) - j1; }
    if (j2 < 0) { j2 = -j2; }
    if (j2 >= this.constants.k2) { j2 = 2 * (this.constants.k2 - 1) - j2; }
    if (j3 < 0) { j3 = -j3; }
    if (j3 >= this.constants.k3) { j3 = 2 * (this.constants.k3 - 1) - j3; }
  }
  return x[(this.constants.l0 + j0) * this.constants.s0 + (this.constants.l1 + j1) * this.constants.s1 + (this.constants.l2 + j2) * this.constants.s2 + this.constants.l3 + j3]!;
};

const PAD_MODES: Record<PadAttrs['mode'], number> = { constant: 0, edge: 1, reflect: 2 };

export const gpuPad: GpuKernel<PadAttrs> = ([x], attrs) => {
  const xs = x!.shape;
  const r = xs.length;
  if (r === 0) return cpuPlan('a scalar input');
  if (r > 4) return cpuPlan(`rank ${r} (the kernel pads up to 4 dims)`);
  const lead = 4 - r;
  const dims = [...new Array<number>(lead).fill(1), ...xs];
  const begin = [...new Array<number>(lead).fill(0), ...attrs.pads.slice(0, r)];
  const end = [...new Array<number>(lead).fill(0), ...attrs.pads.slice(r)];
  const kept = dims.map((d, i) => d - Math.max(0, -begin[i]!) - Math.max(0, -end[i]!));
  const out = dims.map((_, i) => Math.max(0, begin[i]!) + kept[i]! + Math.max(0, end[i]!));
  if (kept.some((k) => k <= 0)) return cpuPlan('an axis cropped to nothing');
  const strides = stridesOf(dims);
  const shape = out.slice(lead);
  return {
    kind: 'programs',
    shape,
    programs: [
      {
        name: 'pad',
        source: padKernel,
        size: out.reduce((p, q) => p * q, 1),
        args: [0],
        constants: {
          d1: out[1]!, d2: out[2]!, d3: out[3]!,
          b0: Math.max(0, begin[0]!), b1: Math.max(0, begin[1]!), b2: Math.max(0, begin[2]!), b3: Math.max(0, begin[3]!),
          k0: kept[0]!, k1: kept[1]!, k2: kept[2]!, k3: kept[3]!,
          l0: Math.max(0, -begin[0]!), l1: Math.max(0, -begin[1]!), l2: Math.max(0, -begin[2]!), l3: Math.max(0, -begin[3]!),
          s0: strides[0]!, s1: strides[1]!, s2: strides[2]!,
          mode: PAD_MODES[attrs.mode],
          value: Math.max(-F32_MAX, Math.min(F32_MAX, attrs.value)),
        },
      },
    ],
  };
};
