import { DTYPES, f64Array, i32Array } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape, normAxis, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { gradOf, isFloat } from './grad.js';

/**
 * Selection ops: ArgMax / ArgMin, TopK and GatherElements. Each walks its axis as the middle
 * dim of [outer, len, inner]; the loop is both the definition and the fast kernel, so the cards
 * have a single kernel. Indices come out as int64 (held in a Float64Array, see core/dtype).
 *
 * NaN is ordered above every number (numpy's argmax/argmin and torch.topk return the first NaN),
 * so a NaN is never silently skipped.
 */

/** [outer, len, inner] of x viewed around axis `a`. */
function around(shape: Shape, a: number): [number, number, number] {
  return [sizeOf(shape.slice(0, a)), shape[a]!, sizeOf(shape.slice(a + 1))];
}

// ---------------------------------------------------------------------------------------------
// ArgMax / ArgMin

/** Attributes of ArgMax / ArgMin: the axis (negative counts from the end) and whether it is kept as size 1. */
export interface ArgAttrs {
  readonly axis: number;
  readonly keepdims: boolean;
  /** Ties resolve to the last index instead of the first (ONNX opset 12). */
  readonly selectLastIndex: boolean;
}

/** Whether `v` beats the current best `b` (strictly; ties are settled by the scan direction). */
function beats(max: boolean, v: number, b: number): boolean {
  if (v !== v) return b === b; // NaN beats every number, not another NaN
  return max ? v > b : v < b;
}

function makeArgCard(name: 'ArgMax' | 'ArgMin'): OpCard<ArgAttrs> {
  const max = name === 'ArgMax';
  const shapeRule = (x: Shape, { axis, keepdims }: ArgAttrs): number[] => {
    const a = normAxis(axis, x.length, name);
    if (x[a] === 0) throw new ShapeError(`${name}: axis ${axis} of ${fmtShape(x)} is empty; there is no ${max ? 'largest' : 'smallest'} element`);
    return keepdims ? x.map((d, i) => (i === a ? 1 : d)) : x.filter((_, i) => i !== a);
  };
  return {
    name,
    shape: ([x], attrs) => shapeRule(x!, attrs),
    outputDtype: () => 'int64',
    reference([x], attrs) {
      const shape = shapeRule(x!.shape, attrs);
      const [outer, len, inner] = around(x!.shape, normAxis(attrs.axis, x!.rank, name));
      const src = x!.dataSync();
      const out = DTYPES.int64.make(outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          const base = o * len * inner + j;
          let best = 0;
          let bv = src[base]!;
          for (let l = 1; l < len; l++) {
            const v = src[base + l * inner]!;
            // A later element wins a tie only with selectLastIndex.
            if (beats(max, v, bv) || (attrs.selectLastIndex && (v === bv || (v !== v && bv !== bv)))) {
              best = l;
              bv = v;
            }
          }
          out[o * inner + j] = best;
        }
      }
      return new Tensor(out, shape, 'int64');
    },
  };
}

/** The ArgMax op card (attributes: {@link ArgAttrs}); {@link argMax} applies it. */
export const argMaxCard = makeArgCard('ArgMax');
/** The ArgMin op card (attributes: {@link ArgAttrs}); {@link argMin} applies it. */
export const argMinCard = makeArgCard('ArgMin');

/**
 * The index of the largest element along `axis` (default 0, negative counts from the end), as
 * int64; ties resolve to the first index, or the last with `selectLastIndex`; a NaN counts as
 * the largest. `keepdims` (default true) keeps the axis as size 1. Throws ShapeError for an axis
 * out of range.
 *
 * @example
 * ```ts
 * import { Tensor, argMax } from 'lightconv';
 *
 * argMax(Tensor.fromArray([0.1, 0.7, 0.2, 0.9, 0.05, 0.05], [2, 3]), 1, false).toArray(); // [1, 0]
 * ```
 */
export function argMax(x: Tensor, axis = 0, keepdims = true, selectLastIndex = false): Tensor {
  return apply(argMaxCard, [x], { axis, keepdims, selectLastIndex });
}

/**
 * The index of the smallest element along `axis` (default 0, negative counts from the end), as
 * int64; ties resolve to the first index, or the last with `selectLastIndex`. `keepdims`
 * (default true) keeps the axis as size 1. Throws ShapeError for an axis out of range.
 *
 * @example
 * ```ts
 * import { Tensor, argMin } from 'lightconv';
 *
 * argMin(Tensor.fromArray([3, 1, 2], [3])).toArray(); // [1]
 * ```
 */
export function argMin(x: Tensor, axis = 0, keepdims = true, selectLastIndex = false): Tensor {
  return apply(argMinCard, [x], { axis, keepdims, selectLastIndex });
}

// ---------------------------------------------------------------------------------------------
// GatherElements

/** Attributes of GatherElements: the axis to gather along (negative counts from the end). */
export interface GatherElementsAttrs {
  readonly axis: number;
}

/**
 * out[i_0…i_r] = data[i_0 … idx … i_r] with idx = indices[i_0…i_r] on `axis` (negative counts
 * from the end). Every index is checked before anything is read.
 */
export const gatherElementsCard: OpCard<GatherElementsAttrs> = {
  name: 'GatherElements',
  shape(inputs, { axis }) {
    if (inputs.length !== 2) throw new ShapeError(`GatherElements: expected 2 inputs (data, indices), got ${inputs.length}`);
    const [data, indices] = inputs as [Shape, Shape];
    if (data.length !== indices.length) {
      throw new ShapeError(`GatherElements: data ${fmtShape(data)} and indices ${fmtShape(indices)} must have the same rank`);
    }
    const a = normAxis(axis, data.length, 'GatherElements');
    indices.forEach((d, i) => {
      if (i !== a && d > data[i]!) throw new ShapeError(`GatherElements: indices ${fmtShape(indices)} exceed data ${fmtShape(data)} on axis ${i} (${d} > ${data[i]})`);
    });
    return [...indices];
  },
  reference(inputs, attrs) {
    const [data, indices] = inputs as [Tensor, Tensor];
    const shape = gatherElementsCard.shape([data.shape, indices.shape], attrs);
    const offsets = gatherElementsOffsets(data, indices, attrs.axis);
    const src = data.dataSync();
    const out = DTYPES[data.dtype].make(offsets.length);
    for (let i = 0; i < offsets.length; i++) out[i] = src[offsets[i]!]!;
    return new Tensor(out, shape, data.dtype);
  },
  grad([data, indices], attrs, _y, g) {
    if (!isFloat(data!)) return [null, null];
    // Scatter-add: an element picked several times gets the sum of their gradients.
    const offsets = gatherElementsOffsets(data!, indices!, attrs.axis);
    const gd = g.dataSync();
    const acc = f64Array(data!.size);
    for (let i = 0; i < offsets.length; i++) acc[offsets[i]!] += gd[i]!;
    return [gradOf(data!, data!.dtype === 'float64' ? acc : Float32Array.from(acc)), null];
  },
};

/** The data offset each output element reads; a ValueError names the first index out of range. */
function gatherElementsOffsets(data: Tensor, indices: Tensor, axis: number): Float64Array {
  if (isFloat(indices)) throw new ValueError(`GatherElements: indices must be integers, got ${indices.dtype}`);
  const a = normAxis(axis, data.rank, 'GatherElements');
  const r = data.rank;
  const dim = data.shape[a]!;
  const dStrides = new Array<number>(r);
  for (let k = r - 1, s = 1; k >= 0; k--) {
    dStrides[k] = s;
    s *= data.shape[k]!;
  }
  const idx = indices.dataSync();
  const offsets = f64Array(idx.length);
  const pos = new Array<number>(r).fill(0);
  for (let i = 0; i < idx.length; i++) {
    let v = idx[i]!;
    if (v < -dim || v >= dim) {
      throw new ValueError(`GatherElements: index ${v} at position [${pos.join(', ')}] of indices ${fmtShape(indices.shape)} is out of range for axis ${a} of size ${dim}`);
    }
    if (v < 0) v += dim;
    let off = 0;
    for (let k = 0; k < r; k++) off += (k === a ? v : pos[k]!) * dStrides[k]!;
    offsets[i] = off;
    for (let k = r - 1; k >= 0; k--) {
      if (++pos[k]! < indices.shape[k]!) break;
      pos[k] = 0;
    }
  }
  return offsets;
}

/**
 * Picks data elements along `axis` (default 0, negative counts from the end) by an index tensor
 * of the output's shape (ONNX GatherElements, torch.gather); negative indices count from the
 * end. Throws ValueError naming the first index out of range, ShapeError for mismatched ranks.
 *
 * @example
 * ```ts
 * import { Tensor, gatherElements } from 'lightconv';
 *
 * const data = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
 * gatherElements(data, Tensor.fromArray([1, 0, 0, 0], [2, 2], 'int64'), 1).toArray(); // [2, 1, 3, 3]
 * ```
 */
export function gatherElements(data: Tensor, indices: Tensor, axis = 0): Tensor {
  return apply(gatherElementsCard, [data, indices], { axis });
}

// ---------------------------------------------------------------------------------------------
// TopK

/** Attributes of TopK: how many elements, along which axis (negative counts from the end). */
export interface TopKAttrs {
  readonly k: number;
  readonly axis: number;
  /** The k largest (default) or the k smallest. */
  readonly largest: boolean;
}

/**
 * The card computes TopK's indices (int64), sorted by value (largest first, or smallest first),
 * equal values by lower index first as ONNX says; the values are then gathered with
 * GatherElements, whose gradient (scatter-add) is TopK's gradient to its input.
 * (ONNX leaves the order unspecified when sorted = 0; sorted order is one valid answer.)
 */
export const topKCard: OpCard<TopKAttrs> = {
  name: 'TopK',
  shape([x], { k, axis }) {
    const a = normAxis(axis, x!.length, 'TopK');
    if (!Number.isSafeInteger(k) || k < 0) throw new ValueError(`TopK: k must be a non-negative integer, got ${k}`);
    if (k > x![a]!) throw new ShapeError(`TopK: k = ${k} exceeds the size ${x![a]} of axis ${axis} of the input ${fmtShape(x!)}`);
    return x!.map((d, i) => (i === a ? k : d));
  },
  outputDtype: () => 'int64',
  reference([x], attrs) {
    const shape = topKCard.shape([x!.shape], attrs);
    const { k, largest } = attrs;
    const [outer, len, inner] = around(x!.shape, normAxis(attrs.axis, x!.rank, 'TopK'));
    const src = x!.dataSync();
    const out = DTYPES.int64.make(outer * k * inner);
    if (out.length === 0) return new Tensor(out, shape, 'int64');
    const order = i32Array(len);
    const vals = f64Array(len);
    // a before b: the better value first (NaN counts as the largest), then the lower index.
    const cmp = (p: number, q: number): number => {
      const u = vals[p]!;
      const v = vals[q]!;
      if (u !== v) {
        const uNaN = u !== u;
        const vNaN = v !== v;
        if (uNaN || vNaN) {
          if (uNaN && vNaN) return p - q;
          return uNaN === largest ? -1 : 1;
        }
        return (largest ? u > v : u < v) ? -1 : 1;
      }
      return p - q;
    };
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * len * inner + j;
        for (let l = 0; l < len; l++) {
          order[l] = l;
          vals[l] = src[base + l * inner]!;
        }
        order.sort(cmp);
        const ob = o * k * inner + j;
        for (let t = 0; t < k; t++) out[ob + t * inner] = order[t]!;
      }
    }
    return new Tensor(out, shape, 'int64');
  },
};

/**
 * The k largest (or, with `largest` false, smallest) elements along `axis` (default −1), sorted,
 * with their int64 indices; equal values by lower index first. Differentiable in the values.
 * Throws ShapeError when k exceeds the axis length or the axis is out of range.
 *
 * @example
 * ```ts
 * import { Tensor, topK } from 'lightconv';
 *
 * const { values, indices } = topK(Tensor.fromArray([0.1, 0.5, 0.2, 0.9], [1, 4]), 2);
 * values.toArray(); // [0.9, 0.5]
 * indices.toArray(); // [3, 1]
 * ```
 */
export function topK(x: Tensor, k: number, axis = -1, largest = true): { values: Tensor; indices: Tensor } {
  const indices = apply(topKCard, [x], { k, axis, largest });
  return { values: gatherElements(x, indices, axis), indices };
}
