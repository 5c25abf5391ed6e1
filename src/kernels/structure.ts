import { type DType, DTYPES, type TypedArray, castValue } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, broadcastShapes, fmtShape, normAxis, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { gradOf, isFloat, unbroadcast } from './grad.js';

/**
 * Structure ops: Slice, Expand, Tile (elements selected by a per-axis index map), Where, the
 * comparisons and logic ops, Cast, ConstantOfShape and Range. All are dtype-generic selections
 * or conversions. Slice, Expand and Tile have a CPU kernel that copies contiguous rows; the
 * others' reference is their CPU kernel too (they handle masks and shape glue, not activations). Output sizes are checked against the tensor budget by `apply` (from the shape
 * rule) before any kernel allocates.
 */

// ---------------------------------------------------------------------------------------------
// Index-map gathers: output index i_k along axis k reads input offset Σ map_k[i_k].

/**
 * Copies x's elements into `outShape`, output element (i_0…i_r) reading input offset Σ maps[k][i_k].
 * The maps are built only for a non-empty output: with a 0 dim elsewhere, another dim may be
 * far larger than any array the budget allows.
 */
function mapGather(x: Tensor, outShape: Shape, maps: () => readonly Float64Array[]): Tensor {
  const src = x.dataSync();
  const n = sizeOf(outShape);
  const out = DTYPES[x.dtype].make(n);
  if (n > 0) walk(outShape, maps(), (o, off) => (out[o] = src[off]!));
  return new Tensor(out, outShape, x.dtype);
}

/**
 * mapGather by runs: where the last map steps by one element (slices with step 1 along the last
 * axis, Expand/Tile rows), each output row is one contiguous copy. The fast CPU kernel of
 * Slice, Expand and Tile; the element walk above is their reference.
 */
function mapGatherRuns(x: Tensor, outShape: Shape, maps: () => readonly Float64Array[]): Tensor {
  const n = sizeOf(outShape);
  const r = outShape.length;
  if (n === 0 || r === 0) return mapGather(x, outShape, maps);
  const m = maps();
  const last = m[r - 1]!;
  const len = outShape[r - 1]!;
  for (let i = 1; i < len; i++) if (last[i] !== last[0]! + i) return mapGather(x, outShape, () => m);
  const src = x.dataSync();
  const out = DTYPES[x.dtype].make(n);
  const rowShape = outShape.slice(0, -1);
  walk(rowShape, m.slice(0, -1), (row, off) => {
    const from = off + last[0]!;
    out.set(src.subarray(from, from + len), row * len);
  });
  return new Tensor(out, outShape, x.dtype);
}

/** The gradient of mapGather: each output element's gradient added back onto the input element it read. */
function mapScatter(x: Tensor, g: Tensor, maps: () => readonly Float64Array[]): Tensor | null {
  if (!isFloat(x)) return null;
  const gd = g.dataSync();
  const acc = DTYPES.float64.make(x.size);
  if (g.size > 0) walk(g.shape, maps(), (o, off) => (acc[off] += gd[o]!));
  const out = x.dtype === 'float64' ? acc : Float32Array.from(acc);
  return gradOf(x, out);
}

/** Visits every output element in row-major order with its input offset. */
function walk(shape: Shape, maps: readonly Float64Array[], visit: (o: number, off: number) => void): void {
  const r = shape.length;
  const n = sizeOf(shape);
  if (n === 0) return;
  const idx = new Array<number>(r).fill(0);
  let off = 0;
  for (let k = 0; k < r; k++) off += maps[k]![0]!;
  for (let o = 0; o < n; o++) {
    visit(o, off);
    for (let k = r - 1; k >= 0; k--) {
      const m = maps[k]!;
      off -= m[idx[k]!]!;
      if (++idx[k]! < shape[k]!) {
        off += m[idx[k]!]!;
        break;
      }
      idx[k] = 0;
      off += m[0]!;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Slice

/** Attributes of Slice (`slice`), ONNX's semantics. */
export interface SliceAttrs {
  /** Per listed axis: start and end (exclusive), negative counted from the end, clamped as ONNX says. */
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  /** Default: 0 … starts.length − 1. May be negative. */
  readonly axes?: readonly number[];
  /** Default: all 1. Negative steps walk backwards; 0 is an error. */
  readonly steps?: readonly number[];
}

/** Per axis of x: [start, step, count] after ONNX's negative-index and clamping rules. */
function sliceRanges(x: Shape, { starts, ends, axes, steps }: SliceAttrs): [number, number, number][] {
  const what = `Slice of ${fmtShape(x)}`;
  if (ends.length !== starts.length) throw new ShapeError(`${what}: ${starts.length} starts but ${ends.length} ends`);
  const ax = axes ?? starts.map((_, i) => i);
  if (ax.length !== starts.length) throw new ShapeError(`${what}: ${starts.length} starts but ${ax.length} axes`);
  if (steps && steps.length !== starts.length) throw new ShapeError(`${what}: ${starts.length} starts but ${steps.length} steps`);
  const ranges: [number, number, number][] = x.map((d) => [0, 1, d]);
  const seen = new Set<number>();
  ax.forEach((a0, i) => {
    const a = normAxis(a0, x.length, 'Slice');
    if (seen.has(a)) throw new ShapeError(`${what}: axis ${a0} is listed twice`);
    seen.add(a);
    const d = x[a]!;
    const step = steps ? steps[i]! : 1;
    if (!Number.isFinite(step) || step === 0) throw new ShapeError(`${what}: step ${step} on axis ${a0} (steps must be non-zero)`);
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += d;
    if (e < 0) e += d;
    // Clamping (ONNX): [0, d] for positive steps; start in [0, d − 1], end in [−1, d − 1] for negative.
    if (step > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
    } else {
      s = Math.min(Math.max(s, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
    }
    const count = Math.max(0, Math.ceil((e - s) / step));
    ranges[a] = [s, step, count];
  });
  return ranges;
}

function sliceMaps(x: Shape, attrs: SliceAttrs): Float64Array[] {
  const strides = stridesOf(x);
  return sliceRanges(x, attrs).map(([s, step, count], k) => {
    const m = new Float64Array(Math.max(count, 1));
    for (let i = 0; i < count; i++) m[i] = (s + i * step) * strides[k]!;
    return m;
  });
}

/** The card of Slice (`slice`). */
export const sliceCard: OpCard<SliceAttrs> = {
  name: 'Slice',
  shape: ([x], attrs) => sliceRanges(x!, attrs).map((r) => r[2]),
  reference([x], attrs) {
    const shape = sliceRanges(x!.shape, attrs).map((r) => r[2]);
    return mapGather(x!, shape, () => sliceMaps(x!.shape, attrs));
  },
  cpu([x], attrs) {
    const shape = sliceRanges(x!.shape, attrs).map((r) => r[2]);
    return mapGatherRuns(x!, shape, () => sliceMaps(x!.shape, attrs));
  },
  grad: ([x], attrs, _y, g) => [mapScatter(x!, g, () => sliceMaps(x!.shape, attrs))],
};

/**
 * ONNX Slice: for each of `axes` (default 0, 1, …), elements starts[i] to ends[i] (exclusive) in
 * `steps` (default 1); see `SliceAttrs`.
 *
 * @example
 * ```ts
 * import { Tensor, slice } from 'lightconv';
 *
 * slice(Tensor.zeros([1, 3, 224, 224]), [16, 16], [208, 208], [2, 3]).shape; // [1, 3, 192, 192]
 * ```
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): Tensor {
  return apply(sliceCard, [x], { starts, ends, axes, steps });
}

/**
 * Splits x along `axis` into parts of the given sizes (which must sum to the axis length): one
 * Slice each.
 *
 * @example
 * ```ts
 * import { Tensor, split } from 'lightconv';
 *
 * const [a, b] = split(Tensor.zeros([1, 24, 8, 8]), [16, 8], 1); // [1, 16, 8, 8], [1, 8, 8, 8]
 * ```
 */
export function split(x: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const a = normAxis(axis, x.rank, 'Split');
  const total = sizes.reduce((p, s) => p + s, 0);
  if (sizes.some((s) => !Number.isSafeInteger(s) || s < 0) || total !== x.shape[a]) {
    throw new ShapeError(`Split: sizes [${sizes.join(', ')}] must be non-negative and sum to dim ${a} of ${fmtShape(x.shape)} (${x.shape[a]})`);
  }
  let at = 0;
  return sizes.map((s) => {
    const t = slice(x, [at], [at + s], [a]);
    at += s;
    return t;
  });
}

/** The sizes of `parts` nearly equal pieces of `dim`: ceil(dim / parts) each, the last smaller (ONNX Split-18). */
export function evenSplitSizes(dim: number, parts: number, what = 'Split'): number[] {
  if (!Number.isSafeInteger(parts) || parts < 1) throw new ShapeError(`${what}: cannot split into ${parts} parts`);
  const each = Math.ceil(dim / parts);
  const sizes: number[] = [];
  let left = dim;
  for (let i = 0; i < parts; i++) {
    const s = Math.max(0, Math.min(each, left));
    sizes.push(s);
    left -= s;
  }
  return sizes;
}

// ---------------------------------------------------------------------------------------------
// Expand and Tile

export interface ExpandAttrs {
  /** The target shape, broadcast with the input's (numpy rules, so either side may be 1). */
  readonly shape: readonly number[];
}

function expandMaps(x: Shape, out: Shape): Float64Array[] {
  const strides = stridesOf(x);
  const lead = out.length - x.length;
  return out.map((d, k) => {
    const m = new Float64Array(Math.max(d, 1));
    const own = k - lead;
    if (own >= 0 && x[own] !== 1) for (let i = 0; i < d; i++) m[i] = i * strides[own]!;
    return m;
  });
}

/** The card of Expand (`expand`). */
export const expandCard: OpCard<ExpandAttrs> = {
  name: 'Expand',
  shape: ([x], { shape }) => {
    shape.forEach((d, i) => {
      if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`Expand: target dim ${i} is ${d}`);
    });
    return broadcastShapes(x!, shape, 'Expand');
  },
  reference([x], attrs) {
    const out = expandCard.shape([x!.shape], attrs);
    return mapGather(x!, out, () => expandMaps(x!.shape, out));
  },
  cpu([x], attrs) {
    const out = expandCard.shape([x!.shape], attrs);
    return mapGatherRuns(x!, out, () => expandMaps(x!.shape, out));
  },
  grad: ([x], _attrs, y, g) => [isFloat(x!) ? unbroadcast(g.dataSync(), y.shape, x!) : null],
};

/**
 * ONNX Expand: broadcasts x to `shape` (numpy rules; the result is the broadcast of both).
 *
 * @example
 * ```ts
 * import { Tensor, expand } from 'lightconv';
 *
 * expand(Tensor.fromArray([1, 2, 3], [3, 1]), [3, 4]).shape; // [3, 4]
 * ```
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  return apply(expandCard, [x], { shape });
}

export interface TileAttrs {
  /** Repeats per axis (one per input dim, each ≥ 0). */
  readonly repeats: readonly number[];
}

function tileMaps(x: Shape, out: Shape): Float64Array[] {
  const strides = stridesOf(x);
  return out.map((d, k) => {
    const m = new Float64Array(Math.max(d, 1));
    for (let i = 0; i < d; i++) m[i] = (i % x[k]!) * strides[k]!;
    return m;
  });
}

/** The card of Tile (`tile`). */
export const tileCard: OpCard<TileAttrs> = {
  name: 'Tile',
  shape([x], { repeats }) {
    if (repeats.length !== x!.length) throw new ShapeError(`Tile: ${repeats.length} repeats for input shape ${fmtShape(x!)} (needs ${x!.length})`);
    return x!.map((d, i) => {
      const r = repeats[i]!;
      if (!Number.isSafeInteger(r) || r < 0) throw new ShapeError(`Tile: repeats[${i}] is ${r}`);
      return d * r;
    });
  },
  reference([x], attrs) {
    const out = tileCard.shape([x!.shape], attrs);
    return mapGather(x!, out, () => tileMaps(x!.shape, out));
  },
  cpu([x], attrs) {
    const out = tileCard.shape([x!.shape], attrs);
    return mapGatherRuns(x!, out, () => tileMaps(x!.shape, out));
  },
  grad: ([x], _attrs, y, g) => [mapScatter(x!, g, () => tileMaps(x!.shape, y.shape))],
};

/**
 * ONNX Tile: repeats x `repeats[i]` times along axis i (one entry per axis).
 *
 * @example
 * ```ts
 * import { Tensor, tile } from 'lightconv';
 *
 * tile(Tensor.fromArray([1, 2], [2]), [3]).toArray(); // [1, 2, 1, 2, 1, 2]
 * ```
 */
export function tile(x: Tensor, repeats: readonly number[]): Tensor {
  return apply(tileCard, [x], { repeats });
}

// ---------------------------------------------------------------------------------------------
// Broadcasting n-ary helper (Where, comparisons)

/** Calls f(o, offsets…) for each output element of the broadcast of `shapes`. */
function broadcastWalk(out: Shape, shapes: readonly Shape[], visit: (o: number, offs: number[]) => void): void {
  const r = out.length;
  const st = shapes.map((s) => {
    const own = stridesOf(s);
    const lead = r - s.length;
    return out.map((_, i) => (i < lead || s[i - lead] === 1 ? 0 : own[i - lead]!));
  });
  const n = sizeOf(out);
  const offs = shapes.map(() => 0);
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < n; o++) {
    visit(o, offs);
    for (let d = r - 1; d >= 0; d--) {
      for (let j = 0; j < offs.length; j++) offs[j]! += st[j]![d]!;
      if (++idx[d]! < out[d]!) break;
      for (let j = 0; j < offs.length; j++) offs[j]! -= st[j]![d]! * out[d]!;
      idx[d] = 0;
    }
  }
}

/** The card of Where (`where`). */
export const whereCard: OpCard<void> = {
  name: 'Where',
  shape: ([c, x, y]) => broadcastShapes(broadcastShapes(c!, x!, 'Where'), y!, 'Where'),
  outputDtype: ([, x]) => x!.dtype,
  reference([c, x, y]) {
    if (x!.dtype !== y!.dtype) throw new ValueError(`Where: X is ${x!.dtype} but Y is ${y!.dtype}`);
    const shape = whereCard.shape([c!.shape, x!.shape, y!.shape]);
    const cd = c!.dataSync();
    const xd = x!.dataSync();
    const yd = y!.dataSync();
    const out = DTYPES[x!.dtype].make(sizeOf(shape));
    broadcastWalk(shape, [c!.shape, x!.shape, y!.shape], (o, [ic, ix, iy]) => (out[o] = cd[ic!] ? xd[ix!]! : yd[iy!]!));
    return new Tensor(out, shape, x!.dtype);
  },
  grad([c, x, y], _attrs, out, g) {
    const cd = c!.dataSync();
    const gd = g.dataSync();
    const gx = new Float64Array(out.size);
    const gy = new Float64Array(out.size);
    broadcastWalk(out.shape, [c!.shape], (o, [ic]) => {
      if (cd[ic!]) gx[o] = gd[o]!;
      else gy[o] = gd[o]!;
    });
    return [null, isFloat(x!) ? unbroadcast(gx, out.shape, x!) : null, isFloat(y!) ? unbroadcast(gy, out.shape, y!) : null];
  },
};

/**
 * ONNX Where: x where `cond` (bool) is true, else y, all three broadcast (numpy).
 *
 * @example
 * ```ts
 * import { Tensor, compare, where } from 'lightconv';
 *
 * const x = Tensor.fromArray([-1, 2, -3], [3]);
 * where(compare(x, Tensor.scalar(0), 'Greater'), x, Tensor.scalar(0)).toArray(); // [0, 2, 0]
 * ```
 */
export function where(cond: Tensor, x: Tensor, y: Tensor): Tensor {
  return apply(whereCard, [cond, x, y], undefined);
}

/** The comparisons and logic ops of `compare`, by their ONNX names (And/Or/Xor take bool tensors). */
export type CompareOp = 'Equal' | 'Less' | 'Greater' | 'LessOrEqual' | 'GreaterOrEqual' | 'And' | 'Or' | 'Xor';

const COMPARE: Readonly<Record<CompareOp, (a: number, b: number) => boolean>> = {
  Equal: (a, b) => a === b,
  Less: (a, b) => a < b,
  Greater: (a, b) => a > b,
  LessOrEqual: (a, b) => a <= b,
  GreaterOrEqual: (a, b) => a >= b,
  And: (a, b) => a !== 0 && b !== 0,
  Or: (a, b) => a !== 0 || b !== 0,
  Xor: (a, b) => (a !== 0) !== (b !== 0),
};

/** Comparisons and logic ops with numpy broadcasting; the output is bool. Not differentiable. */
export const compareCard: OpCard<CompareOp> = {
  name: 'Compare',
  label: (op) => op,
  shape: ([a, b], op) => broadcastShapes(a!, b!, op),
  outputDtype: () => 'bool',
  reference([a, b], op) {
    if (a!.dtype !== b!.dtype) throw new ValueError(`${op}: inputs are ${a!.dtype} and ${b!.dtype}; they must match`);
    if ((op === 'And' || op === 'Or' || op === 'Xor') && a!.dtype !== 'bool') throw new ValueError(`${op}: needs bool tensors, got ${a!.dtype}`);
    const shape = broadcastShapes(a!.shape, b!.shape, op);
    const f = COMPARE[op];
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    const out = DTYPES.bool.make(sizeOf(shape));
    broadcastWalk(shape, [a!.shape, b!.shape], (o, [ia, ib]) => (out[o] = f(ad[ia!]!, bd[ib!]!) ? 1 : 0));
    return new Tensor(out, shape, 'bool');
  },
};

/**
 * Compares a and b elementwise with numpy broadcasting; the result is bool (see `compareCard`).
 *
 * @example
 * ```ts
 * import { Tensor, compare } from 'lightconv';
 *
 * compare(Tensor.fromArray([1, 5], [2]), Tensor.scalar(3), 'Less').toArray(); // [1, 0]
 * ```
 */
export function compare(a: Tensor, b: Tensor, op: CompareOp): Tensor {
  return apply(compareCard, [a, b], op);
}

export const notCard: OpCard<void> = {
  name: 'Not',
  shape: ([x]) => x!,
  reference([x]) {
    if (x!.dtype !== 'bool') throw new ValueError(`Not: needs a bool tensor, got ${x!.dtype}`);
    const src = x!.dataSync();
    const out = DTYPES.bool.make(src.length);
    for (let i = 0; i < src.length; i++) out[i] = src[i] ? 0 : 1;
    return new Tensor(out, x!.shape, 'bool');
  },
};

/**
 * ONNX Not: the logical negation of a bool tensor.
 *
 * @example
 * ```ts
 * import { Tensor, logicalNot } from 'lightconv';
 *
 * logicalNot(Tensor.fromArray([1, 0], [2], 'bool')).toArray(); // [0, 1]
 * ```
 */
export function logicalNot(x: Tensor): Tensor {
  return apply(notCard, [x], undefined);
}

// ---------------------------------------------------------------------------------------------
// Cast

export interface CastAttrs {
  readonly to: DType;
}

/**
 * Converts elements as numpy's astype does: float → integer truncates toward zero; narrow
 * integer types wrap (the typed array does it); int64 results beyond ±(2^53 − 1) raise (castValue);
 * anything → bool is x ≠ 0. NaN → integer is 0 for the 32-bit-and-narrower types (the typed array's rule).
 */
export const castCard: OpCard<CastAttrs> = {
  name: 'Cast',
  shape: ([x]) => x!,
  outputDtype: (_inputs, { to }) => to,
  reference([x], { to }) {
    const src = x!.dataSync();
    if (x!.dtype === to) return new Tensor(src, x!.shape, to);
    const out = DTYPES[to].make(src.length);
    const toInt = !DTYPES[to].isFloat && to !== 'bool';
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      out[i] = toInt ? castValue(to, Math.trunc(v)) : castValue(to, v);
    }
    return new Tensor(out, x!.shape, to);
  },
  grad([x], _attrs, _y, g) {
    if (!isFloat(x!) || !isFloat(g)) return [null];
    const gd = g.dataSync();
    return [gradOf(x!, x!.dtype === 'float64' ? Float64Array.from(gd) : Float32Array.from(gd))];
  },
};

/**
 * ONNX Cast: x converted to `to` (see `castCard` for rounding, saturation and NaN).
 *
 * @example
 * ```ts
 * import { Tensor, cast } from 'lightconv';
 *
 * cast(Tensor.fromArray([1.7, -1.7], [2]), 'int32').toArray(); // [1, -1]
 * ```
 */
export function cast(x: Tensor, to: DType): Tensor {
  return apply(castCard, [x], { to });
}

// ---------------------------------------------------------------------------------------------
// ConstantOfShape and Range (no tensor inputs: the output's size is checked by `apply` from the rule)

export interface ConstantOfShapeAttrs {
  readonly shape: readonly number[];
  readonly value: number;
  readonly dtype: DType;
}

/** The card of ConstantOfShape (`constantOfShape`). */
export const constantOfShapeCard: OpCard<ConstantOfShapeAttrs> = {
  name: 'ConstantOfShape',
  shape: (_inputs, { shape }) => {
    shape.forEach((d, i) => {
      if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`ConstantOfShape: dim ${i} of ${fmtShape(shape)} is ${d}`);
    });
    return shape;
  },
  outputDtype: (_inputs, { dtype }) => dtype,
  reference(_inputs, { shape, value, dtype }) {
    const out = DTYPES[dtype].make(sizeOf(shape));
    out.fill(castValue(dtype, value));
    return new Tensor(out, shape, dtype);
  },
};

/**
 * ONNX ConstantOfShape: a tensor of `shape` filled with `value` (default 0, float32).
 *
 * @example
 * ```ts
 * import { constantOfShape } from 'lightconv';
 *
 * const mask = constantOfShape([2, 3], 1, 'bool');
 * ```
 */
export function constantOfShape(shape: readonly number[], value = 0, dtype: DType = 'float32'): Tensor {
  return apply(constantOfShapeCard, [], { shape, value, dtype });
}

export interface RangeAttrs {
  readonly start: number;
  readonly limit: number;
  readonly delta: number;
  readonly dtype: DType;
}

function rangeCount({ start, limit, delta }: RangeAttrs): number {
  if (!Number.isFinite(delta) || delta === 0) throw new ValueError(`Range: delta ${delta} must be finite and non-zero`);
  const n = Math.max(Math.ceil((limit - start) / delta), 0);
  if (!Number.isSafeInteger(n)) throw new ShapeError(`Range: ${start} to ${limit} by ${delta} has ${n} elements`);
  return n;
}

/** The card of Range (`range`). */
export const rangeCard: OpCard<RangeAttrs> = {
  name: 'Range',
  shape: (_inputs, attrs) => [rangeCount(attrs)],
  outputDtype: (_inputs, { dtype }) => dtype,
  reference(_inputs, attrs) {
    const n = rangeCount(attrs);
    const out: TypedArray = DTYPES[attrs.dtype].make(n);
    // ONNX defines element i as start + i·delta, computed in the output type.
    for (let i = 0; i < n; i++) out[i] = castValue(attrs.dtype, attrs.start + i * attrs.delta);
    return new Tensor(out, [n], attrs.dtype);
  },
};

/**
 * ONNX Range: start, start + delta, … up to but excluding `limit` (numpy's arange).
 *
 * @example
 * ```ts
 * import { range } from 'lightconv';
 *
 * range(0, 10, 3).toArray(); // [0, 3, 6, 9]
 * ```
 */
export function range(start: number, limit: number, delta = 1, dtype: DType = 'float32'): Tensor {
  return apply(rangeCard, [], { start, limit, delta, dtype });
}
