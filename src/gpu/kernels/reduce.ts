import { normAxis } from '../../core/shape.js';
import type { ReduceAttrs } from '../../kernels/reduce.js';
import { type Arr, type GpuKernel, type KernelThis, cpuPlan } from './types.js';

/**
 * ReduceSum / ReduceMean / ReduceMax / ReduceMin cards (src/kernels/reduce.ts). After merging
 * neighbouring axes of the same role, the reduced axes must form one run: the input is then
 * [outer, len, inner] and each thread reduces one line of len (e.g. a mean over H, W of NCHW).
 */
interface ReduceConstants {
  len: number; inner: number; kind: number;
}

export const reduceKernel = function (this: KernelThis<ReduceConstants>, x: Arr): number {
  const o = this.thread.x;
  let outer = Math.floor(o / this.constants.inner);
  if (outer * this.constants.inner > o) { outer = outer - 1; }
  if ((outer + 1) * this.constants.inner <= o) { outer = outer + 1; }
  const j = o - outer * this.constants.inner;
  const base = outer * this.constants.len * this.constants.inner + j;
  let sum = 0;
  // From ∓∞ (gpu.js writes ±FLT_MAX in GLSL), so a line of only −∞ gives −∞; Math.max and
  // Math.min propagate NaN, as the CPU ReduceMax and ReduceMin (docs/special-values.md).
  let mx = -Infinity;
  let mn = Infinity;
  for (let i = 0; i < this.constants.len; i++) {
    const v = x[base + i * this.constants.inner]!;
    sum += v;
    mx = Math.max(mx, v);
    mn = Math.min(mn, v);
  }
  if (this.constants.kind === 1) { return sum / this.constants.len; }
  if (this.constants.kind === 2) { return mx; }
  if (this.constants.kind === 3) { return mn; }
  return sum;
};

export function gpuReduce(name: string, kind: 0 | 1 | 2 | 3): GpuKernel<ReduceAttrs> {
  return ([x], attrs) => {
    const xs = x!.shape;
    const mask = new Array<boolean>(xs.length).fill(attrs.axes.length === 0 && !attrs.noopWithEmptyAxes);
    for (const a of attrs.axes) mask[normAxis(a, xs.length, name)] = true;
    const outShape = attrs.keepdims ? xs.map((d, i) => (mask[i] ? 1 : d)) : xs.filter((_, i) => !mask[i]);
    const dims: number[] = [];
    const red: boolean[] = [];
    xs.forEach((d, i) => {
      if (d === 1) return;
      const k = dims.length - 1;
      if (k >= 0 && red[k] === mask[i]) dims[k]! *= d;
      else {
        dims.push(d);
        red.push(mask[i]!);
      }
    });
    const runs = red.filter((r, i) => r && !red[i - 1]).length;
    if (runs > 1) return cpuPlan('reduced axes that are not adjacent');
    const at = red.indexOf(true);
    const len = at < 0 ? 1 : dims[at]!;
    const inner = at < 0 ? 1 : dims.slice(at + 1).reduce((p, q) => p * q, 1);
    const size = outShape.reduce((p, q) => p * q, 1);
    if (len === 0) return cpuPlan('a reduction over an empty axis');
    return { kind: 'programs', shape: outShape, programs: [{ name: 'reduce', source: reduceKernel, size, args: [0], constants: { len, inner, kind } }] };
  };
}
