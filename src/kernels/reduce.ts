import { type TypedArray, DTYPES, castValue, f64Array, f32Array, i32Array } from '../core/dtype.js';
import { ShapeError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, normAxis, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * ReduceSum / ReduceMean / ReduceMax / ReduceMin / ReduceProd and the norms ReduceL1 (Σ|x|),
 * ReduceL2 (√Σx²), ReduceSumSquare (Σx²) and ReduceLogSumExp (log Σ exp x, shifted by the
 * maximum so that large inputs do not overflow) over a set of axes, accumulating in float64
 * (a mean over a 224×224 plane stays accurate), the result in the input's dtype (an integer
 * mean truncates).
 */
export interface ReduceAttrs {
  /** Axes to reduce (negative counts from the end). Empty: every axis, or none if noopWithEmptyAxes. */
  readonly axes: readonly number[];
  readonly keepdims: boolean;
  readonly noopWithEmptyAxes?: boolean;
}

type ReduceKind = 'sum' | 'mean' | 'max' | 'min' | 'prod' | 'l1' | 'l2' | 'sumsq' | 'logsumexp';

/** How each kind folds its elements: a pass of sums, products, maxima or minima over mapped values. */
type PassKind = 'sum' | 'prod' | 'max' | 'min';
const PASS: Readonly<Record<ReduceKind, PassKind>> = {
  sum: 'sum',
  mean: 'sum',
  max: 'max',
  min: 'min',
  prod: 'prod',
  l1: 'sum',
  l2: 'sum',
  sumsq: 'sum',
  logsumexp: 'sum',
};

/** The starting value of a pass's accumulator. */
const IDENTITY: Readonly<Record<PassKind, number>> = { sum: 0, prod: 1, max: -Infinity, min: Infinity };

/** The value each element contributes (before the pass), where it is not the element itself. */
const PRE: Partial<Record<ReduceKind, (v: number) => number>> = {
  l1: Math.abs,
  l2: (v) => v * v,
  sumsq: (v) => v * v,
};

/**
 * The result from a slot's accumulator: a mean divides by the count, L2 takes the root,
 * LogSumExp the log plus the shift it subtracted (the slot's maximum). Over zero elements each
 * gives ONNX's empty-set value (0, 1 for a product, −∞ for LogSumExp, ±∞ for max/min).
 */
function finish(kind: ReduceKind, acc: number, count: number, shift: number): number {
  if (kind === 'mean') return acc / count;
  if (kind === 'l2') return Math.sqrt(acc);
  if (kind === 'logsumexp') return Math.log(acc) + shift;
  return acc;
}

/** LogSumExp's shift for a slot whose maximum is m: m itself, or 0 when m is ±∞ (all −∞, or one +∞) or NaN. */
const lseShift = (m: number): number => (Number.isFinite(m) ? m : 0);

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

/** The output slot (offset in the keepdims-shaped output) of every element of x. */
function slotsOf(shape: Shape, mask: readonly boolean[]): Int32Array {
  const keptStrides = stridesOf(reducedShape(shape, mask, true));
  const n = sizeOf(shape);
  const slot = i32Array(n);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let o = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      const k = rest % shape[d]!;
      rest = (rest - k) / shape[d]!;
      if (!mask[d]) o += k * keptStrides[d]!;
    }
    slot[i] = o;
  }
  return slot;
}

/**
 * The spec: every element is mapped, then added (multiplied, compared) into its output slot, in
 * float64. LogSumExp first finds each slot's maximum and adds exp(x − max).
 */
function reduceReference(kind: ReduceKind, op: string, x: Tensor, attrs: ReduceAttrs): Tensor {
  const mask = reducedMask(op, x.shape, attrs);
  const count = sizeOf(x.shape.filter((_, i) => mask[i]));
  const slot = slotsOf(x.shape, mask);
  const pass = PASS[kind];
  const pre = PRE[kind];
  const acc = f64Array(sizeOf(reducedShape(x.shape, mask, true))).fill(IDENTITY[pass]);
  const src = x.dataSync();
  let shift: Float64Array | null = null;
  if (kind === 'logsumexp') {
    const m = f64Array(acc.length).fill(-Infinity);
    for (let i = 0; i < src.length; i++) m[slot[i]!] = Math.max(m[slot[i]!]!, src[i]!);
    for (let o = 0; o < m.length; o++) m[o] = lseShift(m[o]!);
    shift = m;
  }
  for (let i = 0; i < src.length; i++) {
    const o = slot[i]!;
    const v = shift ? Math.exp(src[i]! - shift[o]!) : pre ? pre(src[i]!) : src[i]!;
    acc[o] = pass === 'max' ? Math.max(acc[o]!, v) : pass === 'min' ? Math.min(acc[o]!, v) : pass === 'prod' ? acc[o]! * v : acc[o]! + v;
  }
  const out = DTYPES[x.dtype].make(acc.length);
  for (let o = 0; o < acc.length; o++) out[o] = castValue(x.dtype, finish(kind, acc[o]!, count, shift ? shift[o]! : 0));
  return new Tensor(out, reducedShape(x.shape, mask, attrs.keepdims), x.dtype);
}

/** Reduces the middle dim of `src` viewed as [outer, len, inner], into float64. */
function reducePass(kind: PassKind, src: TypedArray, outer: number, len: number, inner: number): Float64Array {
  const dst = f64Array(outer * inner).fill(IDENTITY[kind]);
  const isSum = kind === 'sum';
  const pick = kind === 'max' ? Math.max : kind === 'min' ? Math.min : (a: number, b: number) => a * b;
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
 * reducing C of NCHW one pass over [N, C, H·W]; any other pattern a few such passes. The norms
 * map their elements into a float64 scratch copy first. (LogSumExp runs its reference: it needs
 * each slot's maximum before it can sum.)
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
  const pre = PRE[kind];
  if (pre) {
    const mapped = f64Array(data.length);
    for (let i = 0; i < mapped.length; i++) mapped[i] = pre(data[i]!);
    data = mapped;
  }
  for (let g = dims.length - 1; g >= 0; g--) {
    if (!reduced[g]) continue;
    data = reducePass(PASS[kind], data, sizeOf(dims.slice(0, g)), dims[g]!, sizeOf(dims.slice(g + 1)));
    dims.splice(g, 1);
  }
  const count = sizeOf(x.shape.filter((_, i) => mask[i]));
  const out = DTYPES[x.dtype].make(data.length);
  for (let o = 0; o < data.length; o++) out[o] = castValue(x.dtype, finish(kind, data[o]!, count, 0));
  return new Tensor(out, reducedShape(x.shape, mask, attrs.keepdims), x.dtype);
}

function makeReduceCard(name: string, kind: ReduceKind): OpCard<ReduceAttrs> {
  return {
    name,
    shape: ([x], attrs) => reducedShape(x!, reducedMask(name, x!, attrs), attrs.keepdims),
    reference: ([x], attrs) => reduceReference(kind, name, x!, attrs),
    ...(kind === 'logsumexp' ? {} : { cpu: ([x]: readonly Tensor[], attrs: ReduceAttrs) => reduceCpu(kind, name, x!, attrs) }),
    grad: reduceGrad(kind, name),
  };
}

/**
 * The ReduceSum op card (attributes: {@link ReduceAttrs}); {@link reduceSum} applies it.
 */
export const reduceSumCard = makeReduceCard('ReduceSum', 'sum');
/**
 * The ReduceMean op card (attributes: {@link ReduceAttrs}); {@link reduceMean} applies it.
 */
export const reduceMeanCard = makeReduceCard('ReduceMean', 'mean');
export const reduceMaxCard = makeReduceCard('ReduceMax', 'max');
export const reduceMinCard = makeReduceCard('ReduceMin', 'min');
export const reduceProdCard = makeReduceCard('ReduceProd', 'prod');
export const reduceL1Card = makeReduceCard('ReduceL1', 'l1');
export const reduceL2Card = makeReduceCard('ReduceL2', 'l2');
export const reduceSumSquareCard = makeReduceCard('ReduceSumSquare', 'sumsq');
export const reduceLogSumExpCard = makeReduceCard('ReduceLogSumExp', 'logsumexp');

/**
 * Sum of x over `axes` (negative counts from the end; default `[]`: every axis, or none with
 * `noopWithEmptyAxes`), accumulated in float64, the result in x's dtype. `keepdims` (default
 * true) keeps each reduced axis as size 1. Throws ShapeError for an axis out of range or given
 * twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceSum } from 'lightconv';
 *
 * reduceSum(Tensor.fromArray([1, 2, 3, 4], [2, 2]), [1]).toArray(); // [3, 7], shape [2, 1]
 * ```
 */
export const reduceSum = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceSumCard, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * Mean of x over `axes` (negative counts from the end; default `[]`: every axis, or none with
 * `noopWithEmptyAxes`), accumulated in float64; an integer mean truncates. `keepdims` (default
 * true) keeps each reduced axis as size 1 (global average pooling of NCHW: axes `[2, 3]`).
 * Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceMean } from 'lightconv';
 *
 * const pooled = reduceMean(Tensor.randn([1, 8, 7, 7], { seed: 0 }), [2, 3]); // shape [1, 8, 1, 1]
 * ```
 */
export const reduceMean = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceMeanCard, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * Maximum of x over `axes` (negative counts from the end; default `[]`: every axis, or none
 * with `noopWithEmptyAxes`); −Infinity over zero elements. `keepdims` (default true) keeps each
 * reduced axis as size 1. Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceMax } from 'lightconv';
 *
 * reduceMax(Tensor.fromArray([1, 5, 3, 2], [2, 2]), [0], false).toArray(); // [3, 5]
 * ```
 */
export const reduceMax = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceMaxCard, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * Minimum of x over `axes` (negative counts from the end; default `[]`: every axis, or none
 * with `noopWithEmptyAxes`); +Infinity over zero elements. `keepdims` (default true) keeps each
 * reduced axis as size 1. Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceMin } from 'lightconv';
 *
 * reduceMin(Tensor.fromArray([1, 5, 3, 2], [2, 2]), [-1], false).toArray(); // [1, 2]
 * ```
 */
export const reduceMin = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceMinCard, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * Product of x over `axes` (negative counts from the end; default `[]`: every axis, or none
 * with `noopWithEmptyAxes`), in float64; 1 over zero elements. `keepdims` (default true) keeps
 * each reduced axis as size 1. Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceProd } from 'lightconv';
 *
 * reduceProd(Tensor.fromArray([1, 2, 3, 4], [4])).toArray(); // [24]
 * ```
 */
export const reduceProd = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceProdCard, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * L1 norm Σ|x| over `axes` (negative counts from the end; default `[]`: every axis, or none
 * with `noopWithEmptyAxes`), in float64. `keepdims` (default true) keeps each reduced axis as
 * size 1. Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceL1 } from 'lightconv';
 *
 * reduceL1(Tensor.fromArray([-1, 2, -3], [3])).toArray(); // [6]
 * ```
 */
export const reduceL1 = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceL1Card, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * L2 norm √Σx² over `axes` (negative counts from the end; default `[]`: every axis, or none
 * with `noopWithEmptyAxes`), in float64. `keepdims` (default true) keeps each reduced axis as
 * size 1. Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceL2 } from 'lightconv';
 *
 * reduceL2(Tensor.fromArray([3, 4], [2])).toArray(); // [5]
 * ```
 */
export const reduceL2 = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceL2Card, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * Sum of squares Σx² over `axes` (negative counts from the end; default `[]`: every axis, or
 * none with `noopWithEmptyAxes`), in float64. `keepdims` (default true) keeps each reduced axis
 * as size 1. Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceSumSquare } from 'lightconv';
 *
 * reduceSumSquare(Tensor.fromArray([1, 2, 3], [3])).toArray(); // [14]
 * ```
 */
export const reduceSumSquare = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceSumSquareCard, [x], { axes, keepdims, noopWithEmptyAxes });
/**
 * log Σ exp(x) over `axes` (negative counts from the end; default `[]`: every axis, or none
 * with `noopWithEmptyAxes`), shifted by each slot's maximum so that large inputs do not
 * overflow; −Infinity over zero elements. `keepdims` (default true) keeps each reduced axis as
 * size 1. Throws ShapeError for an axis out of range or given twice.
 *
 * @example
 * ```ts
 * import { Tensor, reduceLogSumExp } from 'lightconv';
 *
 * reduceLogSumExp(Tensor.fromArray([1000, 1000], [2])).toArray(); // [1000.693…]
 * ```
 */
export const reduceLogSumExp = (x: Tensor, axes: readonly number[] = [], keepdims = true, noopWithEmptyAxes = false): Tensor =>
  apply(reduceLogSumExpCard, [x], { axes, keepdims, noopWithEmptyAxes });

// ---------------------------------------------------------------------------------------------
// Gradient (autograd). Sum: dy to every reduced element; mean: dy/count; max/min: dy shared
// evenly among the elements equal to the result (PyTorch's amax/amin rule); L1: dy·sign(x)
// (0 at 0, as torch); L2: dy·x/y (0 where y = 0); SumSquare: 2x·dy; LogSumExp: dy·exp(x − y)
// (the softmax); Prod: dy·Π(others), which with no zero in the slot is dy·y/x, with one zero
// is nonzero only at the zero, and with two or more is 0 everywhere.

function reduceGrad(kind: ReduceKind, name: string) {
  return ([x]: readonly Tensor[], attrs: ReduceAttrs, y: Tensor, g: Tensor): (Tensor | null)[] => {
    if (!DTYPES[x!.dtype].isFloat) return [null];
    const mask = reducedMask(name, x!.shape, attrs);
    const count = sizeOf(x!.shape.filter((_, i) => mask[i]));
    const src = x!.dataSync();
    const yd = y.dataSync();
    const gd = g.dataSync();
    const slot = slotsOf(x!.shape, mask);
    const out = x!.dtype === 'float64' ? f64Array(src.length) : f32Array(src.length);
    if (kind === 'sum' || kind === 'mean') {
      const f = kind === 'mean' ? 1 / count : 1;
      for (let i = 0; i < src.length; i++) out[i] = gd[slot[i]!]! * f;
    } else if (kind === 'l1') {
      for (let i = 0; i < src.length; i++) out[i] = gd[slot[i]!]! * Math.sign(src[i]!);
    } else if (kind === 'sumsq') {
      for (let i = 0; i < src.length; i++) out[i] = 2 * src[i]! * gd[slot[i]!]!;
    } else if (kind === 'l2') {
      for (let i = 0; i < src.length; i++) {
        const yo = yd[slot[i]!]!;
        out[i] = yo === 0 ? 0 : (gd[slot[i]!]! * src[i]!) / yo;
      }
    } else if (kind === 'logsumexp') {
      for (let i = 0; i < src.length; i++) out[i] = gd[slot[i]!]! * Math.exp(src[i]! - yd[slot[i]!]!);
    } else if (kind === 'prod') {
      // Per slot: the number of zeros and the product of the other elements, in float64.
      const zeros = f64Array(yd.length);
      const rest = f64Array(yd.length).fill(1);
      for (let i = 0; i < src.length; i++) {
        if (src[i] === 0) zeros[slot[i]!]++;
        else rest[slot[i]!] *= src[i]!;
      }
      for (let i = 0; i < src.length; i++) {
        const o = slot[i]!;
        const z = zeros[o]!;
        out[i] = src[i] === 0 ? (z === 1 ? gd[o]! * rest[o]! : 0) : z === 0 ? (gd[o]! * rest[o]!) / src[i]! : 0;
      }
    } else {
      const ties = f64Array(yd.length);
      for (let i = 0; i < src.length; i++) if (src[i] === yd[slot[i]!]) ties[slot[i]!]++;
      for (let i = 0; i < src.length; i++) if (src[i] === yd[slot[i]!]) out[i] = gd[slot[i]!]! / ties[slot[i]!]!;
    }
    return [new Tensor(out, x!.shape, x!.dtype === 'float64' ? 'float64' : 'float32')];
  };
}
