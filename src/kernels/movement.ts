import { type DType, DTYPES, type TypedArray, castValue, i32Array } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { checkedSize } from '../core/limits.js';
import { outputBuffer } from '../core/storage.js';
import { copyMatrix, runtime, wasmKernelsEnabled } from './wasm/runtime.js';
import { type Call, chunkCount, splitRange, streamNs } from './wasm/pool.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape, normAxis, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * Movement ops: they rearrange, select or pad elements without arithmetic, so every card here
 * is dtype-generic (the output has the input's dtype and array type).
 *
 * Reshape, Flatten, Squeeze, Unsqueeze and Identity only relabel the shape: their output shares
 * the input's data. Tensors are never written after they are made, so sharing is safe.
 */

/** A zeroed output array for `shape`, with the size checked against the budget first. */
function alloc(shape: Shape, dtype: DType, op: string): TypedArray {
  return DTYPES[dtype].make(checkedSize(shape, op, DTYPES[dtype].bytes));
}

/** The same data under another shape (no copy). */
function relabel(x: Tensor, shape: Shape): Tensor {
  return new Tensor(x.dataSync(), shape, x.dtype);
}

/** Rejects repeated axes once they are resolved to non-negative ones. */
function checkUnique(axes: readonly number[], given: readonly number[], op: string): void {
  if (new Set(axes).size !== axes.length) throw new ShapeError(`${op}: axes ${fmtShape(given)} repeat an axis`);
}

function one(inputs: readonly Shape[], op: string): Shape {
  if (inputs.length !== 1) throw new ShapeError(`${op}: expected 1 input, got ${inputs.length}`);
  return inputs[0]!;
}

// ---------------------------------------------------------------------------------------------
// Reshape

export interface ReshapeAttrs {
  /** Target dims: -1 (at most one) is inferred; 0 copies the input dim unless allowzero. */
  readonly shape: readonly number[];
  /** ONNX allowzero=1: a 0 means an empty dim instead of "copy the input dim". */
  readonly allowzero?: boolean;
}

/** The card of Reshape (`reshape`). */
export const reshapeCard: OpCard<ReshapeAttrs> = {
  name: 'Reshape',
  shape(inputs, { shape, allowzero = false }) {
    const x = one(inputs, 'Reshape');
    const what = `Reshape: ${fmtShape(x)} to ${fmtShape(shape)}`;
    let free = -1;
    const out = shape.map((d, i) => {
      if (!Number.isSafeInteger(d) || d < -1) throw new ShapeError(`${what}: dim ${i} is ${d}`);
      if (d === -1) {
        if (free >= 0) throw new ShapeError(`${what}: more than one -1`);
        free = i;
      }
      if (d === 0 && !allowzero) {
        if (i >= x.length) throw new ShapeError(`${what}: dim ${i} is 0 (copy) but the input has only ${x.length} dims`);
        return x[i]!;
      }
      return d;
    });
    if (allowzero && free >= 0 && shape.includes(0)) throw new ShapeError(`${what}: allowzero forbids both 0 and -1`);
    const n = sizeOf(x);
    if (free >= 0) {
      const known = out.reduce((p, d, i) => (i === free ? p : p * d), 1);
      if (known === 0 || n % known !== 0) throw new ShapeError(`${what}: cannot infer the -1 for ${n} elements`);
      out[free] = n / known;
    }
    if (sizeOf(out) !== n) throw new ShapeError(`${what}: ${n} elements cannot become ${fmtShape(out)} (${sizeOf(out)} elements)`);
    return out;
  },
  reference(inputs, attrs) {
    return relabel(inputs[0]!, reshapeCard.shape([inputs[0]!.shape], attrs));
  },
  grad: relabelGrad,
};

/**
 * ONNX Reshape: `shape` may hold one −1 (inferred) and 0s (copy the input's dim, unless
 * `allowzero`). Throws a ShapeError when the sizes differ.
 *
 * @example
 * ```ts
 * import { Tensor, reshape } from 'lightconv';
 *
 * const y = reshape(Tensor.zeros([2, 3, 4]), [0, -1]); // [2, 12]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[], allowzero = false): Tensor {
  return apply(reshapeCard, [x], { shape, allowzero });
}

// ---------------------------------------------------------------------------------------------
// Flatten

export interface FlattenAttrs {
  /** Dims before `axis` become the first output dim, the rest the second; in [-rank, rank]. */
  readonly axis: number;
}

/** The card of Flatten (`flatten`). */
export const flattenCard: OpCard<FlattenAttrs> = {
  name: 'Flatten',
  shape(inputs, { axis }) {
    const x = one(inputs, 'Flatten');
    const a = axis < 0 ? axis + x.length : axis;
    if (!Number.isInteger(a) || a < 0 || a > x.length) {
      throw new ShapeError(`Flatten: axis ${axis} is out of range for input shape ${fmtShape(x)} (allowed ${-x.length}..${x.length})`);
    }
    return [sizeOf(x.slice(0, a)), sizeOf(x.slice(a))];
  },
  reference(inputs, attrs) {
    return relabel(inputs[0]!, flattenCard.shape([inputs[0]!.shape], attrs));
  },
  grad: relabelGrad,
};

/**
 * ONNX Flatten: a 2-D tensor [product of dims before `axis`, product of the rest] (default axis 1).
 *
 * @example
 * ```ts
 * import { Tensor, flatten } from 'lightconv';
 *
 * flatten(Tensor.zeros([8, 64, 7, 7])).shape; // [8, 3136]
 * ```
 */
export function flatten(x: Tensor, axis = 1): Tensor {
  return apply(flattenCard, [x], { axis });
}

// ---------------------------------------------------------------------------------------------
// Transpose

export interface TransposeAttrs {
  /** Output axis k is input axis perm[k]; default reverses the axes. */
  readonly perm?: readonly number[];
}

function permOf(rank: number, perm: readonly number[] | undefined): number[] {
  return perm ? [...perm] : Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

/** The card of Transpose (`transpose`). */
export const transposeCard: OpCard<TransposeAttrs> = {
  name: 'Transpose',
  shape(inputs, { perm }) {
    const x = one(inputs, 'Transpose');
    const p = permOf(x.length, perm);
    if (p.length !== x.length) {
      throw new ShapeError(`Transpose: perm ${fmtShape(p)} has ${p.length} entries for input shape ${fmtShape(x)} of rank ${x.length}`);
    }
    const seen = new Set<number>();
    for (const a of p) {
      if (!Number.isInteger(a) || a < 0 || a >= x.length || seen.has(a)) {
        throw new ShapeError(`Transpose: perm ${fmtShape(p)} is not a permutation of 0..${x.length - 1} for input shape ${fmtShape(x)}`);
      }
      seen.add(a);
    }
    return p.map((a) => x[a]!);
  },
  reference(inputs, { perm }) {
    const x = inputs[0]!;
    const p = permOf(x.rank, perm);
    const outShape = p.map((a) => x.shape[a]!);
    const inStrides = stridesOf(x.shape);
    const src = x.dataSync();
    const out = alloc(outShape, x.dtype, 'Transpose');
    const idx = new Array<number>(outShape.length);
    for (let i = 0; i < out.length; i++) {
      // Unravel the output index, then read the input at the permuted position.
      let rest = i;
      for (let k = outShape.length - 1; k >= 0; k--) {
        idx[k] = rest % outShape[k]!;
        rest = Math.floor(rest / outShape[k]!);
      }
      let off = 0;
      for (let k = 0; k < outShape.length; k++) off += idx[k]! * inStrides[p[k]!]!;
      out[i] = src[off]!;
    }
    return new Tensor(out, outShape, x.dtype);
  },
  cpu(inputs, { perm }) {
    const x = inputs[0]!;
    const p = permOf(x.rank, perm);
    const outShape = p.map((a) => x.shape[a]!);
    const { dims, order } = simplifyPerm(x.shape, p);
    const src = x.dataSync();
    // Every element of `out` is written below (outputBuffer's contents are unspecified).
    const out = x.dtype === 'float32' ? outputBuffer(checkedSize(outShape, 'Transpose', 4)) : alloc(outShape, x.dtype, 'Transpose');
    if (x.dtype === 'float32' && wasmTranspose(src as Float32Array, out as Float32Array, dims, order)) return new Tensor(out, outShape, x.dtype);
    if (order.length <= 1) {
      out.set(src); // only size-1 axes moved: the element order is unchanged
    } else if (order.length === 2 || (order.length === 3 && order[0] === 0)) {
      // [A, B] → [B, A] or a batch of them: NCHW ↔ NHWC merge to [N, C, HW] ↔ [N, HW, C].
      const batch = order.length === 3 ? dims[0]! : 1;
      const rows = dims[dims.length - 2]!;
      const cols = dims[dims.length - 1]!;
      for (let b = 0; b < batch; b++) transpose2d(src, out, b * rows * cols, rows, cols);
    } else {
      permuteStrided(src, out, dims, order);
    }
    return new Tensor(out, outShape, x.dtype);
  },
  grad: transposeGrad,
};

/**
 * The transposes of `cpu` above on the WebAssembly kernels (strided copies), when input and
 * output live in wasm memory (a graph run's arena, so that a replayed run includes them);
 * false, having done nothing, otherwise or for a general permutation.
 */
function wasmTranspose(src: Float32Array, out: Float32Array, dims: readonly number[], order: readonly number[]): boolean {
  const rt = wasmKernelsEnabled() ? runtime() : null;
  if (!rt || rt.addressOf(src) < 0 || rt.addressOf(out) < 0 || out.length === 0) return false;
  if (order.length <= 1) copyMatrix(rt, src, 0, 1, out, 0, 1, 1, out.length);
  else if (order.length === 2 || (order.length === 3 && order[0] === 0)) {
    const batch = order.length === 3 ? dims[0]! : 1;
    const [rows, cols] = dims.slice(-2) as [number, number];
    for (let b = 0; b < batch; b++) copyMatrix(rt, src.subarray(b * rows * cols), cols, 1, out.subarray(b * rows * cols), 1, rows, rows, cols);
  } else return false;
  return true;
}

/**
 * Drops size-1 axes and merges input axes that stay adjacent and in order under the
 * permutation, so e.g. [N, C, H, W] with perm [0, 2, 3, 1] becomes [N, C, H·W] with [0, 2, 1].
 */
function simplifyPerm(shape: Shape, perm: readonly number[]): { dims: number[]; order: number[] } {
  const kept = perm.filter((a) => shape[a] !== 1);
  // Runs of consecutive input axes in output order merge into one axis.
  const runs: number[][] = [];
  for (const a of kept) {
    const last = runs[runs.length - 1];
    const prev = last?.[last.length - 1];
    if (last && prev !== undefined && a > prev && shape.slice(prev + 1, a).every((d) => d === 1)) last.push(a);
    else runs.push([a]);
  }
  // Number the runs by their position in the input.
  const byInput = [...runs].sort((r, s) => r[0]! - s[0]!);
  const dims = byInput.map((r) => sizeOf(r.map((a) => shape[a]!)));
  const order = runs.map((r) => byInput.indexOf(r));
  return { dims, order };
}

/** out[c][r] = src[off + r·cols + c] for one rows×cols matrix, in cache-sized tiles. */
function transpose2d(src: TypedArray, out: TypedArray, off: number, rows: number, cols: number): void {
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(r0 + T, rows);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(c0 + T, cols);
      for (let c = c0; c < c1; c++) {
        const o = off + c * rows;
        for (let r = r0; r < r1; r++) out[o + r] = src[off + r * cols + c]!;
      }
    }
  }
}

/** General permutation: walks the output in order with an odometer over input strides. */
function permuteStrided(src: TypedArray, out: TypedArray, dims: readonly number[], order: readonly number[]): void {
  const inStrides = stridesOf(dims);
  const r = order.length;
  const size = order.map((a) => dims[a]!);
  const step = order.map((a) => inStrides[a]!);
  const idx = new Array<number>(r).fill(0);
  const inner = size[r - 1]!;
  const innerStep = step[r - 1]!;
  let inOff = 0;
  for (let o = 0; o < out.length; o += inner) {
    for (let j = 0, s = inOff; j < inner; j++, s += innerStep) out[o + j] = src[s]!;
    // Advance the outer axes like an odometer, keeping inOff in step.
    for (let k = r - 2; k >= 0; k--) {
      idx[k]!++;
      inOff += step[k]!;
      if (idx[k]! < size[k]!) break;
      inOff -= step[k]! * size[k]!;
      idx[k] = 0;
    }
  }
}

/**
 * Permutes the axes: output axis i is input axis perm[i] (default: reversed).
 *
 * @example
 * ```ts
 * import { Tensor, transpose } from 'lightconv';
 *
 * transpose(Tensor.zeros([1, 3, 224, 224]), [0, 2, 3, 1]).shape; // NHWC: [1, 224, 224, 3]
 * ```
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  return apply(transposeCard, [x], perm ? { perm } : {});
}

// ---------------------------------------------------------------------------------------------
// Concat

export interface AxisAttrs {
  /** May be negative (counted from the end). */
  readonly axis: number;
}

/** Concat's output as rows: `outer` rows of `rowLen` floats, each input a run of shape[a]·inner in every row. */
function concatLayout(inputs: readonly Tensor[], attrs: AxisAttrs): { outShape: Shape; a: number; outer: number; inner: number; rowLen: number } {
  const outShape = concatCard.shape(
    inputs.map((t) => t.shape),
    attrs,
  );
  const a = normAxis(attrs.axis, outShape.length, 'Concat');
  const inner = sizeOf(outShape.slice(a + 1));
  return { outShape, a, outer: sizeOf(outShape.slice(0, a)), inner, rowLen: outShape[a]! * inner };
}

/**
 * The Concat op card (attributes: the axis); {@link concat} applies it. Both kernels copy whole
 * contiguous blocks (one per input per outer index); the CPU kernel writes float32 outputs
 * where kernels allocate them, with kernel copies when the data lives in kernel memory.
 */
export const concatCard: OpCard<AxisAttrs> = {
  name: 'Concat',
  shape(inputs, { axis }) {
    if (inputs.length === 0) throw new ShapeError('Concat: needs at least one input');
    const first = inputs[0]!;
    const a = normAxis(axis, first.length, 'Concat');
    const out = [...first];
    for (let i = 1; i < inputs.length; i++) {
      const s = inputs[i]!;
      if (s.length !== first.length || s.some((d, k) => k !== a && d !== first[k])) {
        throw new ShapeError(`Concat: input ${i} has shape ${fmtShape(s)}, which does not match input 0 ${fmtShape(first)} outside axis ${a}`);
      }
      out[a] = out[a]! + s[a]!;
    }
    return out;
  },
  reference(inputs, attrs) {
    const first = inputs[0]!;
    for (let i = 1; i < inputs.length; i++) {
      if (inputs[i]!.dtype !== first.dtype) throw new ValueError(`Concat: input ${i} is ${inputs[i]!.dtype} but input 0 is ${first.dtype}`);
    }
    const { outShape, a, outer, inner, rowLen } = concatLayout(inputs, attrs);
    const out = alloc(outShape, first.dtype, 'Concat');
    let col = 0;
    for (const t of inputs) {
      const len = t.shape[a]! * inner;
      const src = t.dataSync();
      for (let o = 0; o < outer; o++) out.set(src.subarray(o * len, (o + 1) * len), o * rowLen + col);
      col += len;
    }
    return new Tensor(out, outShape, first.dtype);
  },
  cpu(inputs, attrs) {
    if (inputs.some((t) => t.dtype !== 'float32')) return concatCard.reference(inputs, attrs);
    const { outShape, a, outer, inner, rowLen } = concatLayout(inputs, attrs);
    // In a graph run the output lives in kernel memory, and so do inputs that kernels made: the
    // copies are then kernel calls (a recorded run replays them), so the layers after a Concat
    // (DenseNet's BN, GoogLeNet's pools) read it in place instead of falling back to JavaScript.
    const out = outputBuffer(sizeOf(outShape));
    const rt = wasmKernelsEnabled() ? runtime() : null;
    let col = 0;
    for (const t of inputs) {
      const len = t.shape[a]! * inner;
      if (len > 0 && outer > 0) {
        const src = t.f32();
        if (rt) copyMatrix(rt, src, len, 1, out.subarray(col), rowLen, 1, outer, len);
        else for (let o = 0; o < outer; o++) out.set(src.subarray(o * len, (o + 1) * len), o * rowLen + col);
      }
      col += len;
    }
    return new Tensor(out, outShape, 'float32');
  },
  grad: concatGrad,
};

/**
 * Joins tensors along `axis` (negative counts from the end); the other dims must agree (else a
 * ShapeError).
 *
 * @example
 * ```ts
 * import { Tensor, concat } from 'lightconv';
 *
 * concat([Tensor.zeros([1, 16, 8, 8]), Tensor.ones([1, 8, 8, 8])], 1).shape; // [1, 24, 8, 8]
 * ```
 */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  return apply(concatCard, xs, { axis });
}

// ---------------------------------------------------------------------------------------------
// Squeeze / Unsqueeze

export interface AxesAttrs {
  /** Negative axes count from the end of the input (Squeeze) or of the output (Unsqueeze). */
  readonly axes?: readonly number[];
}

/** The card of Squeeze (`squeeze`). */
export const squeezeCard: OpCard<AxesAttrs> = {
  name: 'Squeeze',
  shape(inputs, { axes }) {
    const x = one(inputs, 'Squeeze');
    if (!axes) return x.filter((d) => d !== 1);
    const resolved = axes.map((a) => normAxis(a, x.length, 'Squeeze'));
    checkUnique(resolved, axes, 'Squeeze');
    for (const a of resolved) {
      if (x[a] !== 1) throw new ShapeError(`Squeeze: axis ${a} of input shape ${fmtShape(x)} has size ${x[a]}, not 1`);
    }
    return x.filter((_, i) => !resolved.includes(i));
  },
  reference(inputs, attrs) {
    return relabel(inputs[0]!, squeezeCard.shape([inputs[0]!.shape], attrs));
  },
  grad: relabelGrad,
};

/** The card of Unsqueeze (`unsqueeze`). */
export const unsqueezeCard: OpCard<AxesAttrs> = {
  name: 'Unsqueeze',
  shape(inputs, { axes = [] }) {
    const x = one(inputs, 'Unsqueeze');
    const rank = x.length + axes.length;
    const resolved = axes.map((a) => normAxis(a, rank, 'Unsqueeze'));
    checkUnique(resolved, axes, 'Unsqueeze');
    const out: number[] = [];
    let k = 0;
    for (let i = 0; i < rank; i++) out.push(resolved.includes(i) ? 1 : x[k++]!);
    return out;
  },
  reference(inputs, attrs) {
    return relabel(inputs[0]!, unsqueezeCard.shape([inputs[0]!.shape], attrs));
  },
  grad: relabelGrad,
};

/**
 * Drops the given size-1 axes, or every size-1 axis when `axes` is omitted.
 *
 * @example
 * ```ts
 * import { Tensor, squeeze } from 'lightconv';
 *
 * squeeze(Tensor.zeros([1, 3, 1, 5]), [0]).shape; // [3, 1, 5]
 * ```
 */
export function squeeze(x: Tensor, axes?: readonly number[]): Tensor {
  return apply(squeezeCard, [x], axes ? { axes } : {});
}

/**
 * Inserts size-1 axes at `axes`, positions in the output.
 *
 * @example
 * ```ts
 * import { Tensor, unsqueeze } from 'lightconv';
 *
 * unsqueeze(Tensor.zeros([3, 224, 224]), [0]).shape; // [1, 3, 224, 224]
 * ```
 */
export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  return apply(unsqueezeCard, [x], { axes });
}

// ---------------------------------------------------------------------------------------------
// Gather

/**
 * Gather copies one contiguous block of `inner` elements per (outer, index) pair; that loop is
 * both the definition and as fast as this gets, so the card has a single kernel.
 */
export const gatherCard: OpCard<AxisAttrs> = {
  name: 'Gather',
  shape(inputs, { axis }) {
    if (inputs.length !== 2) throw new ShapeError(`Gather: expected 2 inputs (data, indices), got ${inputs.length}`);
    const [data, indices] = inputs as [Shape, Shape];
    const a = normAxis(axis, data.length, 'Gather');
    return [...data.slice(0, a), ...indices, ...data.slice(a + 1)];
  },
  reference(inputs, attrs) {
    const [data, indices] = inputs as [Tensor, Tensor];
    if (DTYPES[indices.dtype].isFloat) throw new ValueError(`Gather: indices must be integers, got ${indices.dtype}`);
    const a = normAxis(attrs.axis, data.rank, 'Gather');
    const outShape = gatherCard.shape([data.shape, indices.shape], attrs);
    const dim = data.shape[a]!;
    const outer = sizeOf(data.shape.slice(0, a));
    const inner = sizeOf(data.shape.slice(a + 1));
    const idx = indices.dataSync();
    // Resolve and check every index before copying.
    const rows = new Array<number>(idx.length);
    for (let j = 0; j < idx.length; j++) {
      const v = idx[j]!;
      if (v < -dim || v >= dim) throw new ValueError(`Gather: index ${v} (at position ${j}) is out of range for axis ${a} of size ${dim}`);
      rows[j] = v < 0 ? v + dim : v;
    }
    const src = data.dataSync();
    const out = alloc(outShape, data.dtype, 'Gather');
    let o = 0;
    for (let b = 0; b < outer; b++) {
      for (const r of rows) {
        const start = (b * dim + r) * inner;
        out.set(src.subarray(start, start + inner), o);
        o += inner;
      }
    }
    return new Tensor(out, outShape, data.dtype);
  },
  grad: gatherGrad,
};

/**
 * Picks entries along `axis` of `data` by `indices` (negative indices count from the end).
 *
 * @example
 * ```ts
 * import { Tensor, gather } from 'lightconv';
 *
 * const rows = gather(Tensor.randn([10, 4], { seed: 0 }), Tensor.fromArray([0, 9], [2], 'int64')); // [2, 4]
 * ```
 */
export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  return apply(gatherCard, [data, indices], { axis });
}

// ---------------------------------------------------------------------------------------------
// Pad

/** How `pad` fills: a constant, the edge value repeated, or a reflection (without the edge). */
export type PadMode = 'constant' | 'edge' | 'reflect';

export interface PadAttrs {
  /** ONNX order [begin_0, …, begin_{r−1}, end_0, …, end_{r−1}]; negative values crop. */
  readonly pads: readonly number[];
  readonly mode: PadMode;
  /** The fill for mode 'constant'. */
  readonly value: number;
}

/** How many input elements an axis keeps after its negative pads crop it. */
function keptAfterCrop(dim: number, begin: number, end: number): number {
  return dim - Math.max(0, -begin) - Math.max(0, -end);
}

/**
 * One axis of a pad: for each output position, the input position it reads, or -1 for the
 * constant. Negative pads first crop the input (as onnxruntime does), then edge/reflect look
 * only at what is left. The shape rule has checked that edge/reflect have enough elements.
 */
function padAxisMap(dim: number, begin: number, end: number, mode: PadMode): Int32Array {
  const lo = Math.max(0, -begin);
  const kept = keptAfterCrop(dim, begin, end);
  const before = Math.max(0, begin);
  const out = i32Array(before + kept + Math.max(0, end));
  for (let o = 0; o < out.length; o++) {
    let j = o - before; // position within the kept part
    if (j < 0 || j >= kept) {
      if (mode === 'constant') {
        out[o] = -1;
        continue;
      }
      j = mode === 'edge' ? (j < 0 ? 0 : kept - 1) : j < 0 ? -j : 2 * (kept - 1) - j;
    }
    out[o] = lo + j;
  }
  return out;
}

/**
 * Builds one index map per axis, then copies the output in order; the same kernel serves as
 * reference and fast path (per-row copies would gain little over the mapped inner loop).
 */
export const padCard: OpCard<PadAttrs> = {
  name: 'Pad',
  shape(inputs, { pads, mode }) {
    const x = one(inputs, 'Pad');
    const r = x.length;
    if (pads.length !== 2 * r) throw new ShapeError(`Pad: ${pads.length} pads for input shape ${fmtShape(x)}; expected ${2 * r} (begins, then ends)`);
    return x.map((d, i) => {
      const [b, e] = [pads[i]!, pads[i + r]!];
      if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e)) throw new ShapeError(`Pad: pads (${b}, ${e}) of axis ${i} are not integers`);
      const kept = keptAfterCrop(d, b, e);
      if (kept < 0) throw new ShapeError(`Pad: pads (${b}, ${e}) crop more than the ${d} elements of axis ${i} of ${fmtShape(x)}`);
      const grows = b > 0 || e > 0;
      if (mode === 'edge' && grows && kept === 0) throw new ShapeError(`Pad: edge padding (${b}, ${e}) on axis ${i} has no element left to repeat`);
      if (mode === 'reflect' && grows && Math.max(b, e) >= kept) {
        throw new ShapeError(`Pad: reflect padding (${b}, ${e}) on axis ${i} must be smaller than the ${kept} elements left`);
      }
      return d + b + e;
    });
  },
  reference(inputs, attrs) {
    const x = inputs[0]!;
    const outShape = padCard.shape([x.shape], attrs);
    const r = x.rank;
    const out = alloc(outShape, x.dtype, 'Pad');
    const maps = x.shape.map((d, i) => padAxisMap(d, attrs.pads[i]!, attrs.pads[i + r]!, attrs.mode));
    if (out.length === 0) return new Tensor(out, outShape, x.dtype);
    if (r === 0) {
      out[0] = x.dataSync()[0]!;
      return new Tensor(out, outShape, x.dtype);
    }
    const fill = castValue(x.dtype, attrs.value);
    const src = x.dataSync();
    const inStrides = stridesOf(x.shape);
    const idx = new Array<number>(r).fill(0);
    const last = maps[r - 1]!;
    const inner = outShape[r - 1]!;
    for (let o = 0; o < out.length; o += inner) {
      // The input row this output row reads, or none if any outer axis is in the constant border.
      let base = 0;
      for (let k = 0; k < r - 1; k++) {
        const m = maps[k]![idx[k]!]!;
        if (m < 0) {
          base = -1;
          break;
        }
        base += m * inStrides[k]!;
      }
      for (let j = 0; j < inner; j++) {
        const m = last[j]!;
        out[o + j] = base < 0 || m < 0 ? fill : src[base + m]!;
      }
      for (let k = r - 2; k >= 0; k--) {
        if (++idx[k]! < outShape[k]!) break;
        idx[k] = 0;
      }
    }
    return new Tensor(out, outShape, x.dtype);
  },
  cpu(inputs, attrs) {
    return wasmPadPlanes(inputs[0]!, attrs) ?? padCard.reference(inputs, attrs);
  },
  grad: padGrad,
};

/**
 * Constant padding of the planes of an NCHW tensor that lives in wasm memory (a graph run's
 * arena) on the WebAssembly kernels: per plane a fill and a copy of the interior. Null for
 * anything else (other modes or ranks, padding of N or C, crops), which the loops above do.
 */
function wasmPadPlanes(x: Tensor, attrs: PadAttrs): Tensor | null {
  const rt = wasmKernelsEnabled() ? runtime() : null;
  const p = attrs.pads;
  if (!rt || x.dtype !== 'float32' || x.rank !== 4 || attrs.mode !== 'constant' || p[0] || p[1] || p[4] || p[5] || p.some((v) => v < 0)) return null;
  const src = x.dataSync() as Float32Array;
  const xAt = rt.addressOf(src);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [oh, ow] = [h + p[2]! + p[6]!, w + p[3]! + p[7]!];
  const planes = n * c;
  if (xAt < 0 || planes * oh * ow === 0) return null;
  const out = outputBuffer(checkedSize([n, c, oh, ow], 'Pad', 4));
  const yAt = rt.addressOf(out);
  if (yAt < 0) return null;
  const chunks = splitRange(planes, chunkCount(streamNs(2 * planes * oh * ow))).map(([p0, p1]) => {
    const calls: Call[] = [];
    for (let q = p0; q < p1; q++) {
      const y0 = yAt + 4 * q * oh * ow;
      calls.push(['fill', y0, oh * ow, attrs.value], ['copy2d', xAt + 4 * q * h * w, 4 * w, 4, y0 + 4 * (p[2]! * ow + p[3]!), 4 * ow, 4, h, w]);
    }
    return calls;
  });
  rt.pool.run(chunks);
  return new Tensor(out, [n, c, oh, ow], 'float32');
}

/**
 * ONNX Pad: `pads` as [begin_0, …, begin_{r−1}, end_0, …, end_{r−1}] (negative values crop); mode
 * 'constant' (fill `value`, default 0), 'edge' or 'reflect'.
 *
 * @example
 * ```ts
 * import { Tensor, pad } from 'lightconv';
 *
 * pad(Tensor.ones([1, 1, 2, 2]), [0, 0, 1, 1, 0, 0, 1, 1]).shape; // [1, 1, 4, 4], zero border
 * ```
 */
export function pad(x: Tensor, pads: readonly number[], opts: { mode?: PadMode; value?: number } = {}): Tensor {
  return apply(padCard, [x], { pads, mode: opts.mode ?? 'constant', value: opts.value ?? 0 });
}

// ---------------------------------------------------------------------------------------------
// Shape

export interface ShapeAttrs {
  /** The slice [start, end) of the dims to return; negative counts from the end, then clamped. */
  readonly start?: number;
  readonly end?: number;
}

function shapeRange(rank: number, { start = 0, end = rank }: ShapeAttrs): [number, number] {
  const clamp = (v: number) => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
  const s = clamp(start);
  return [s, Math.max(s, clamp(end))];
}

export const shapeCard: OpCard<ShapeAttrs> = {
  name: 'Shape',
  outputDtype: () => 'int64',
  shape(inputs, attrs) {
    const x = one(inputs, 'Shape');
    const [s, e] = shapeRange(x.length, attrs);
    return [e - s];
  },
  reference(inputs, attrs) {
    const x = inputs[0]!;
    const [s, e] = shapeRange(x.rank, attrs);
    return Tensor.fromArray(x.shape.slice(s, e), [e - s], 'int64');
  },
};

/**
 * The input's dims (or a slice of them) as an int64 vector.
 *
 * @example
 * ```ts
 * import { Tensor, shapeOf } from 'lightconv';
 *
 * shapeOf(Tensor.zeros([2, 3, 4])).toArray(); // [2, 3, 4] (int64)
 * ```
 */
export function shapeOf(x: Tensor, start?: number, end?: number): Tensor {
  return apply(shapeCard, [x], { start, end });
}

// ---------------------------------------------------------------------------------------------
// Identity

export const identityCard: OpCard<void> = {
  name: 'Identity',
  shape(inputs) {
    return one(inputs, 'Identity');
  },
  reference(inputs) {
    return relabel(inputs[0]!, inputs[0]!.shape);
  },
  grad: relabelGrad,
};

/**
 * The input itself, as an op (ONNX Identity; the tape passes the gradient through).
 *
 * @example
 * ```ts
 * import { Tensor, identity } from 'lightconv';
 *
 * const y = identity(Tensor.ones([2]));
 * ```
 */
export function identity(x: Tensor): Tensor {
  return apply(identityCard, [x], undefined);
}

// ---------------------------------------------------------------------------------------------
// Gradients (autograd). Movement ops move gradients back the way the forward moved elements.

/** Reshape, Flatten, Squeeze, Unsqueeze, Identity: the gradient relabelled to the input's shape. */
function relabelGrad(inputs: readonly Tensor[], _attrs: unknown, _y: Tensor, g: Tensor): (Tensor | null)[] {
  const x = inputs[0]!;
  return [DTYPES[x.dtype].isFloat ? new Tensor(g.dataSync(), x.shape, g.dtype) : null];
}

/** Transpose: the gradient transposed by the inverse permutation. */
function transposeGrad([x]: readonly Tensor[], { perm }: TransposeAttrs, _y: Tensor, g: Tensor): (Tensor | null)[] {
  const p = permOf(x!.rank, perm);
  const inv = new Array<number>(p.length);
  p.forEach((a, k) => (inv[a] = k));
  return [transposeCard.cpu!([g], { perm: inv })];
}

/** Concat: each input gets its slice of the gradient along the axis. */
function concatGrad(inputs: readonly Tensor[], { axis }: AxisAttrs, y: Tensor, g: Tensor): (Tensor | null)[] {
  const a = normAxis(axis, y.rank, 'Concat');
  const outer = sizeOf(y.shape.slice(0, a));
  const inner = sizeOf(y.shape.slice(a + 1));
  const rowLen = y.shape[a]! * inner;
  const gd = g.dataSync();
  let col = 0;
  return inputs.map((t) => {
    const len = t.shape[a]! * inner;
    const start = col;
    col += len;
    if (!DTYPES[t.dtype].isFloat) return null;
    const out = DTYPES[g.dtype].make(t.size);
    for (let o = 0; o < outer; o++) out.set(gd.subarray(o * rowLen + start, o * rowLen + start + len), o * len);
    return new Tensor(out, t.shape, g.dtype);
  });
}

/** Gather: the gradient scattered back (added) onto the rows it was gathered from; none for indices. */
function gatherGrad([data, indices]: readonly Tensor[], { axis }: AxisAttrs, _y: Tensor, g: Tensor): (Tensor | null)[] {
  if (!DTYPES[data!.dtype].isFloat) return [null, null];
  const a = normAxis(axis, data!.rank, 'Gather');
  const dim = data!.shape[a]!;
  const outer = sizeOf(data!.shape.slice(0, a));
  const inner = sizeOf(data!.shape.slice(a + 1));
  const idx = indices!.dataSync();
  const gd = g.dataSync();
  const out = DTYPES[g.dtype].make(data!.size);
  let o = 0;
  for (let b = 0; b < outer; b++) {
    for (let j = 0; j < idx.length; j++) {
      const r = idx[j]! < 0 ? idx[j]! + dim : idx[j]!;
      const start = (b * dim + r) * inner;
      for (let q = 0; q < inner; q++) out[start + q] += gd[o++]!;
    }
  }
  return [new Tensor(out, data!.shape, g.dtype), null];
}

/** Pad: every output element's gradient goes to the input element it was copied from (none for the constant). */
function padGrad([x]: readonly Tensor[], attrs: PadAttrs, y: Tensor, g: Tensor): (Tensor | null)[] {
  if (!DTYPES[x!.dtype].isFloat) return [null];
  const r = x!.rank;
  const out = DTYPES[g.dtype].make(x!.size);
  if (r === 0 || y.size === 0) {
    if (r === 0) out[0] = g.dataSync()[0]!;
    return [new Tensor(out, x!.shape, g.dtype)];
  }
  const maps = x!.shape.map((d, i) => padAxisMap(d, attrs.pads[i]!, attrs.pads[i + r]!, attrs.mode));
  const inStrides = stridesOf(x!.shape);
  const gd = g.dataSync();
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < gd.length; o++) {
    let off = 0;
    for (let k = 0; k < r; k++) {
      const m = maps[k]![idx[k]!]!;
      if (m < 0) {
        off = -1;
        break;
      }
      off += m * inStrides[k]!;
    }
    if (off >= 0) out[off] += gd[o]!;
    for (let k = r - 1; k >= 0; k--) {
      if (++idx[k]! < y.shape[k]!) break;
      idx[k] = 0;
    }
  }
  return [new Tensor(out, x!.shape, g.dtype)];
}
