import { DTYPES, castValue } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { gradArray, gradOf, isFloat } from './grad.js';

/**
 * ScatterND (ONNX opsets 11, 13, 16, 18): a copy of `data` with slices replaced (or combined)
 * by `updates` at the positions `indices` names.
 *
 * indices has shape [...m, k] with 1 ≤ k ≤ rank(data): each of its rows is the index of one
 * slice data[i_0, …, i_{k−1}] of shape data.shape[k:]; updates has shape [...m, ...data.shape[k:]].
 * Negative indices count from the end (as onnxruntime accepts them); anything outside
 * [−size, size) is a ValueError naming the index, its position and the dim, before any write.
 *
 * reduction 'none' writes the update; 'add', 'mul', 'max', 'min' combine it with what is there.
 * ONNX leaves repeated indices under 'none' undefined: here the updates apply in order, the last
 * one wins (as onnxruntime's CPU kernel and numpy's fancy assignment).
 *
 * Gradients ('none' and 'add' only; integer inputs have none): to data, the output gradient,
 * zeroed where 'none' overwrote (nothing flows back to a replaced element); to updates, the
 * output gradient gathered at each update's position (under 'none' only the update that won a
 * repeated position gets it; the ones it overwrote did not reach the output).
 */

/** How ScatterND combines an update with the element it lands on ('none' replaces it). */
export type ScatterReduction = 'none' | 'add' | 'mul' | 'max' | 'min';

/** ScatterND's attribute. */
export interface ScatterNDAttrs {
  /** 'none' (replace), 'add', 'mul', 'max' or 'min'. */
  readonly reduction: ScatterReduction;
}

const REDUCTIONS: readonly ScatterReduction[] = ['none', 'add', 'mul', 'max', 'min'];

function shapeRule(inputs: readonly Shape[], { reduction }: ScatterNDAttrs): Shape {
  if (!REDUCTIONS.includes(reduction)) throw new ValueError(`ScatterND: reduction '${reduction}' is not one of ${REDUCTIONS.join(', ')}`);
  if (inputs.length !== 3) throw new ShapeError(`ScatterND: expected 3 inputs (data, indices, updates), got ${inputs.length}`);
  const [data, indices, updates] = inputs as [Shape, Shape, Shape];
  if (data.length < 1) throw new ShapeError('ScatterND: data must have rank ≥ 1, got a scalar');
  if (indices.length < 1) throw new ShapeError('ScatterND: indices must have rank ≥ 1, got a scalar');
  const k = indices[indices.length - 1]!;
  if (k < 1 || k > data.length) {
    throw new ShapeError(`ScatterND: the last dim of indices ${fmtShape(indices)} is ${k}; it must be between 1 and the rank ${data.length} of data ${fmtShape(data)}`);
  }
  const want = [...indices.slice(0, -1), ...data.slice(k)];
  if (want.length !== updates.length || want.some((d, i) => d !== updates[i])) {
    throw new ShapeError(`ScatterND: updates ${fmtShape(updates)} must have shape ${fmtShape(want)} (indices ${fmtShape(indices)} without its last dim, then data ${fmtShape(data)} from dim ${k})`);
  }
  return [...data];
}

/**
 * Where each update slice goes: the data offset of its first element, one per row of indices,
 * and the slice length. Every index is checked before anything is written.
 */
function sliceOffsets(data: Tensor, indices: Tensor): { offsets: Float64Array; len: number } {
  if (isFloat(indices) || indices.dtype === 'bool') throw new ValueError(`ScatterND: indices must be integers (int64), got ${indices.dtype}`);
  const k = indices.shape[indices.rank - 1]!;
  const strides = stridesOf(data.shape);
  const len = sizeOf(data.shape.slice(k));
  const rows = k === 0 ? 0 : indices.size / k;
  const idx = indices.dataSync();
  const offsets = new Float64Array(rows);
  const lead = indices.shape.slice(0, -1);
  for (let r = 0; r < rows; r++) {
    let off = 0;
    for (let j = 0; j < k; j++) {
      let v = idx[r * k + j]!;
      const dim = data.shape[j]!;
      if (v < -dim || v >= dim) {
        const pos: number[] = [];
        for (let rest = r, d = lead.length - 1; d >= 0; d--) {
          pos.unshift(rest % lead[d]!);
          rest = Math.floor(rest / lead[d]!);
        }
        throw new ValueError(
          `ScatterND: index ${v} (indices[${[...pos, j].join(', ')}]) is out of range for dim ${j} of data ${fmtShape(data.shape)}, of size ${dim} (valid: ${-dim} … ${dim - 1})`,
        );
      }
      if (v < 0) v += dim;
      off += v * strides[j]!;
    }
    offsets[r] = off;
  }
  return { offsets, len };
}

function combiner(reduction: ScatterReduction): (old: number, u: number) => number {
  switch (reduction) {
    case 'none':
      return (_, u) => u;
    case 'add':
      return (o, u) => o + u;
    case 'mul':
      return (o, u) => o * u;
    // A NaN on either side gives NaN (numpy's maximum/minimum): it is never silently dropped.
    case 'max':
      return (o, u) => (o !== o || u !== u ? NaN : Math.max(o, u));
    case 'min':
      return (o, u) => (o !== o || u !== u ? NaN : Math.min(o, u));
  }
}

/** The ScatterND card: one loop is both the definition and the kernel (the copy of data dominates). */
export const scatterNDCard: OpCard<ScatterNDAttrs> = {
  name: 'ScatterND',
  label: ({ reduction }) => (reduction === 'none' ? 'ScatterND' : `ScatterND(${reduction})`),
  shape: shapeRule,
  reference(inputs, attrs) {
    const [data, indices, updates] = inputs as [Tensor, Tensor, Tensor];
    const shape = shapeRule([data.shape, indices.shape, updates.shape], attrs);
    if (updates.dtype !== data.dtype) throw new ValueError(`ScatterND: updates are ${updates.dtype} but data is ${data.dtype}; they must have the same dtype`);
    const { offsets, len } = sliceOffsets(data, indices);
    const dtype = data.dtype;
    const out = DTYPES[dtype].make(data.size);
    out.set(data.dataSync());
    const u = updates.dataSync();
    const f = combiner(attrs.reduction);
    const needsCast = dtype === 'int64' || dtype === 'uint64' || dtype === 'bool';
    for (let r = 0; r < offsets.length; r++) {
      const o = offsets[r]!;
      for (let e = 0; e < len; e++) {
        const v = f(out[o + e]!, u[r * len + e]!);
        out[o + e] = needsCast ? castValue(dtype, v) : v;
      }
    }
    return new Tensor(out, shape, dtype);
  },
  grad(inputs, { reduction }, _y, g) {
    const [data, indices, updates] = inputs as [Tensor, Tensor, Tensor];
    if (!isFloat(data)) return [null, null, null];
    if (reduction !== 'none' && reduction !== 'add') {
      throw new ValueError(`ScatterND: no gradient for reduction '${reduction}' (only 'none' and 'add' are differentiable here)`);
    }
    const { offsets, len } = sliceOffsets(data, indices);
    const gd = g.dataSync();
    const gData = gradArray(data);
    gData.set(gd);
    const gUpd = gradArray(updates);
    if (reduction === 'add') {
      for (let r = 0; r < offsets.length; r++) for (let e = 0; e < len; e++) gUpd[r * len + e] = gd[offsets[r]! + e]!;
    } else {
      // The last update to a position is the one in the output: walk backwards, first seen wins.
      const taken = new Uint8Array(data.size);
      for (let r = offsets.length - 1; r >= 0; r--) {
        const o = offsets[r]!;
        if (taken[o]) continue; // whole slices repeat together: checking the first element suffices
        for (let e = 0; e < len; e++) {
          gUpd[r * len + e] = gd[o + e]!;
          gData[o + e] = 0;
          taken[o + e] = 1;
        }
      }
    }
    return [gradOf(data, gData), null, gradOf(updates, gUpd)];
  },
};

/**
 * A copy of `data` with the slices at `indices` (last dim: the index depth) replaced by, or
 * combined (`reduction`) with, `updates` (ONNX ScatterND). Differentiable in data and updates
 * for reductions 'none' and 'add'.
 *
 * @example
 * ```ts
 * import { Tensor, scatterND } from 'lightconv';
 *
 * const data = Tensor.zeros([2, 3]);
 * const idx = Tensor.fromArray([1, 2], [1, 2], 'int64'); // the element [1, 2]
 * scatterND(data, idx, Tensor.fromArray([5], [1])).dataSync(); // [0, 0, 0, 0, 0, 5]
 * ```
 */
export function scatterND(data: Tensor, indices: Tensor, updates: Tensor, reduction: ScatterReduction = 'none'): Tensor {
  return apply(scatterNDCard, [data, indices, updates], { reduction });
}
