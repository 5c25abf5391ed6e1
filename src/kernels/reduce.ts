import { type TypedArray, DTYPES, castValue, f64Array, f32Array, i32Array } from '../core/dtype.js';
import { ShapeError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, normAxis, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * ReduceSum / ReduceMean / ReduceMax / ReduceMin over a set of axes, accumulating in float64
 * (a mean over a 224×224 plane stays accurate), the result in the input's dtype (an integer
 * mean truncates).
 */
export interface ReduceAttrs {
  /** Axes to reduce (negative counts from the end). Empty: every axis, or none if noopWithEmptyAxes. */
  readonly axes: readonly number[];
  readonly keepdims: boolean;
  readonly noopWithEmptyAxes?: boolean;
}

type ReduceKind = 'sum' | 'mean' | 'max' | 'min';

/** The starting value of the accumulator (the result over zero elements, NaN for a mean aside). */
const IDENTITY: Readonly<Record<ReduceKind, number>> = { sum: 0, mean: 0, max: -Infinity, min: Infinity };

/** Which axes are reduced, one flag per axis. */
function reducedMask(op: string, shape: Shape, attrs: ReduceAttrs): boolean[] {
  const r = shape.length;
  if (attrs.axes.length === 0) return new Array<boolean>(r).fill(!attrs.noopWithEmptyAxes);
  const mask = new Array<boolean>(r).fill(false);
  for (const axis of attrs.axes) {
    const a = normAxis(axis, r, op);
    if (mask[a]) throw new ShapeError(`${op}: axis ${axis} appears twice in axes [${attrs.axes.join(', ')}] (rank ${r})`);
    mask[a] = true;
  }
  return mask;
}

function reducedShape(shape: Shape, mask: readonly boolean[], keepdims: boolean): number[] {
  return keepdims ? shape.map((d, i) => (mask[i] ? 1 : d)) : shape.filter((_, i) => !mask[i]);
}

/** The spec: every element is added (or compared) into its output slot, in float64. */
function reduceReference(kind: ReduceKind, op: string, x: Tensor, attrs: ReduceAttrs): Tensor {
  const mask = reducedMask(op, x.shape, attrs);
  const kept = reducedShape(x.shape, mask, true);
  const keptStrides = stridesOf(kept);
  const count = sizeOf(x.shape.filter((_, i) => mask[i]));
  const acc = f64Array(sizeOf(kept)).fill(IDENTITY[kind]);
  const src = x.dataSync();
  for (let i = 0; i < src.length; i++) {
    let rest = i;
    let o = 0;
    for (let d = x.rank - 1; d >= 0; d--) {
      const k = rest % x.shape[d]!;
      rest = (rest - k) / x.shape[d]!;
      if (!mask[d]) o += k * keptStrides[d]!;
    }
    const v = src[i]!;
    acc[o] = kind === 'max' ? Math.max(acc[o]!, v) : kind === 'min' ? Math.min(acc[o]!, v) : acc[o]! + v;
  }
  const out = DTYPES[x.dtype].make(acc.length);
  for (let o = 0; o < acc.length; o++) out[o] = castValue(x.dtype, kind === 'mean' ? acc[o]! / count : acc[o]!);
  return new Tensor(out, reducedShape(x.shape, mask, attrs.keepdims), x.dtype);
}

/** Reduces the middle dim of `src` viewed as [outer, len, inner], into float64. */
function reducePass(kind: ReduceKind, src: TypedArray, outer: number, len: number, inner: number): Float64Array {
  const dst = f64Array(outer * inner).fill(IDENTITY[kind]);
  const isSum = kind === 'sum' || kind === 'mean';
  const pick = kind === 'max' ? Math.max : Math.min;
  for (let o = 0; o < outer; o++) {
    const base = o * len * inner;
    if (inner === 1) {
      // Contiguous lines (e.g. a mean over H·W): a register accumulator.
      let acc = dst[o]!;
      if (isSum) for (let l = 0; l < len; l++) acc += src[base + l]!;
      else for (let l = 0; l < len; l++) acc = pick(acc, src[base + l]!);
      dst[o] = acc;
    } else {
      // Reduced dim outside kept ones: add whole rows into a row of accumulators.
      const d = o * inner;
      for (let l = 0; l < len; l++) {
        const s = base + l * inner;
        if (isSum) for (let j = 0; j < inner; j++) dst[d + j] += src[s + j]!;
        else for (let j = 0; j < inner; j++) dst[d + j] = pick(dst[d + j]!, src[s + j]!);
      }
    }
  }
  return dst;
}

/**
 * Merges neighbouring axes with the same role (size-1 axes vanish), then reduces each group
 * of reduced axes in turn, innermost first: reducing H, W of NCHW is one pass over [N·C, H·W];
 * reducing C of NCHW one pass over [N, C, H·W]; any other pattern a few such passes.
 */
function reduceCpu(kind: ReduceKind, op: string, x: Tensor, attrs: ReduceAttrs): Tensor {
  const mask = reducedMask(op, x.shape, attrs);
  const dims: number[] = [];
  const reduced: boolean[] = [];
  x.shape.forEach((d, i) => {
    if (d === 1) return;
    const last = dims.length - 1;
    if (last >= 0 && reduced[last] === mask[i]) dims[last]! *= d;
    else {
      dims.push(d);
      reduced.push(mask[i]!);
    }
  });
  let data: TypedArray = x.dataSync();
  for (let g = dims.length - 1; g >= 0; g--) {
    if (!reduced[g]) continue;
    data = reducePass(kind, data, sizeOf(dims.slice(0, g)), dims[g]!, sizeOf(dims.slice(g + 1)));
    dims.splice(g, 1);
  }
  const count = sizeOf(x.shape.filter((_, i) => mask[i]));
  const out = DTYPES[x.dtype].make(data.length);
  for (let o = 0; o < data.length; o++) out[o] = castValue(x.dtype, kind === 'mean' ? data[o]! / count : data[o]!);
  return new Tensor(out, reducedShape(x.shape, mask, attrs.keepdims), x.dtype);
}

function makeReduceCard(name: string, kind: ReduceKind): OpCard<ReduceAttrs> {
  return {
    name,
    shape: ([x], attrs) => reducedShape(x!, reducedMask(name, x!, attrs), attrs.keepdims),
    reference: ([x], attrs) => reduceReference(kind, name, x!, attrs),
    cpu: ([x], attrs) => reduceCpu(kind, name, x!, attrs),
    grad: reduceGrad(kind, name),
  };
}

export const reduceSumCard = makeReduceCard('ReduceSum', 'sum');
export const reduceMeanCard = makeReduceCard('ReduceMean', 'mean');
export const reduceMaxCard = makeReduceCard('ReduceMax', 'max');
export const reduceMinCard = makeReduceCard('ReduceMin', 'min');

export const reduceSum = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceSumCard, [x], { axes, keepdims, noopWithEmptyAxes });
export const reduceMean = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceMeanCard, [x], { axes, keepdims, noopWithEmptyAxes });
export const reduceMax = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceMaxCard, [x], { axes, keepdims, noopWithEmptyAxes });
export const reduceMin = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceMinCard, [x], { axes, keepdims, noopWithEmptyAxes });

// ---------------------------------------------------------------------------------------------
// Gradient (autograd). Sum: dy to every reduced element; mean: dy/count; max/min: dy shared
// evenly among the elements equal to the result (PyTorch's amax/amin rule).

function reduceGrad(kind: ReduceKind, name: string) {
  return ([x]: readonly Tensor[], attrs: ReduceAttrs, y: Tensor, g: Tensor): (Tensor | null)[] => {
    if (!DTYPES[x!.dtype].isFloat) return [null];
    const mask = reducedMask(name, x!.shape, attrs);
    const kept = reducedShape(x!.shape, mask, true);
    const keptStrides = stridesOf(kept);
    const count = sizeOf(x!.shape.filter((_, i) => mask[i]));
    const src = x!.dataSync();
    const yd = y.dataSync();
    const gd = g.dataSync();
    // The output slot of every input element.
    const slot = i32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      let rest = i;
      let o = 0;
      for (let d = x!.rank - 1; d >= 0; d--) {
        const k = rest % x!.shape[d]!;
        rest = (rest - k) / x!.shape[d]!;
        if (!mask[d]) o += k * keptStrides[d]!;
      }
      slot[i] = o;
    }
    const out = x!.dtype === 'float64' ? f64Array(src.length) : f32Array(src.length);
    if (kind === 'sum' || kind === 'mean') {
      const f = kind === 'mean' ? 1 / count : 1;
      for (let i = 0; i < src.length; i++) out[i] = gd[slot[i]!]! * f;
    } else {
      const ties = f64Array(yd.length);
      for (let i = 0; i < src.length; i++) if (src[i] === yd[slot[i]!]) ties[slot[i]!]++;
      for (let i = 0; i < src.length; i++) if (src[i] === yd[slot[i]!]) out[i] = gd[slot[i]!]! / ties[slot[i]!]!;
    }
    return [new Tensor(out, x!.shape, x!.dtype === 'float64' ? 'float64' : 'float32')];
  };
}
