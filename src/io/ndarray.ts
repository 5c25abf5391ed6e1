import ndarray from 'ndarray';
import { type DType, DTYPES, type TypedArray, castValue } from '../core/dtype.js';
import { ValueError } from '../core/errors.js';
import { checkedSize } from '../core/limits.js';
import { Tensor } from '../core/tensor.js';

/** The tensor dtype an ndarray's data type becomes unless the caller picks one. */
const DEFAULT_DTYPE: Readonly<Record<string, DType>> = {
  // The engine computes in float32, so float64 data is narrowed by default.
  float32: 'float32',
  float64: 'float32',
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  uint8: 'uint8',
  uint8_clamped: 'uint8',
  buffer: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  bigint64: 'int64',
  biguint64: 'uint64',
  array: 'float32',
  generic: 'float32',
};

/**
 * Copies an ndarray (any strides, offset or view) into a new contiguous tensor of the same
 * shape. `dtype` overrides the default mapping (float64 → float32, integer types kept,
 * BigInt64 → int64 with every value checked to be a safe integer).
 *
 * @example
 * ```ts
 * import ndarray from 'ndarray';
 * import { fromNdarray } from 'lightconv';
 *
 * const nd = ndarray(new Float64Array(6), [2, 3]).transpose(1, 0);
 * const t = fromNdarray(nd); // float32 [3, 2], contiguous
 * ```
 */
export function fromNdarray(nd: ndarray.NdArray<ndarray.Data<number> | ndarray.Data<bigint>>, opts: { dtype?: DType } = {}): Tensor {
  const dtype = opts.dtype ?? DEFAULT_DTYPE[nd.dtype];
  if (!dtype) throw new ValueError(`fromNdarray: ndarray data type '${nd.dtype}' has no tensor dtype`);
  const shape = [...nd.shape];
  const n = checkedSize(shape, 'fromNdarray', DTYPES[dtype].bytes);
  const out = DTYPES[dtype].make(n);
  const data = nd.data as ArrayLike<number | bigint> & { get?: (i: number) => number | bigint };
  // Generic arrays (anything with get/set) are read through get; the rest by index.
  const read = nd.dtype === 'generic' ? (i: number) => data.get!(i) : (i: number) => data[i]!;
  const exact = dtype === 'int64' || dtype === 'uint64';
  const r = shape.length;
  const idx = new Array<number>(r).fill(0);
  let off = nd.offset;
  for (let i = 0; i < n; i++) {
    const v = Number(read(off));
    if (exact && !Number.isSafeInteger(v)) throw new ValueError(`fromNdarray: ${read(off)} at element ${i} is not a safe integer for ${dtype}`);
    out[i] = castValue(dtype, v);
    // Step the row-major odometer, moving the source offset by each axis' stride.
    for (let k = r - 1; k >= 0; k--) {
      off += nd.stride[k]!;
      if (++idx[k]! < shape[k]!) break;
      off -= nd.stride[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
  return new Tensor(out, shape, dtype);
}

/**
 * An ndarray over the tensor's own data (no copy), with the same shape. int64/uint64 tensors
 * are held in a Float64Array, so their ndarray reports dtype 'float64' with exact integer values.
 *
 * @example
 * ```ts
 * import { Tensor, toNdarray } from 'lightconv';
 *
 * const nd = toNdarray(Tensor.ones([2, 3]));
 * console.log(nd.get(1, 2), nd.shape); // 1 [2, 3]
 * ```
 */
export function toNdarray(t: Tensor): ndarray.NdArray<TypedArray> {
  return ndarray(t.dataSync(), [...t.shape]);
}
