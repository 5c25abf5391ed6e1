import { ResourceLimitError, ValueError } from './errors.js';
import { checkedAlloc, currentAllocOp, fmtBytes } from './limits.js';

/**
 * Element types. The engine computes in float32; the other types exist so that ONNX graphs
 * can carry shapes, indices and masks, and so that integer elementwise ops behave as ONNX says.
 *
 * int64/uint64 are held in a Float64Array: every value is checked to be a safe integer
 * (|v| ≤ 2^53 − 1) when it enters, and every computed result when it is stored (castValue),
 * so they stay exact without BigInt arithmetic.
 */
export type DType =
  | 'float32'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

/** The arrays tensors store their elements in (int64/uint64 live in Float64Array as safe integers, bool in Uint8Array). */
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;

export interface DTypeInfo {
  readonly bytes: number;
  readonly make: (n: number) => TypedArray;
  readonly isFloat: boolean;
}

/**
 * A maker of typed arrays that checks the tensor budget first (checkedAlloc), so no kernel
 * allocates an array over it, and turns the host's own refusal (a RangeError for a length
 * past what the engine can hold) into a ResourceLimitError naming the size.
 */
function maker(bytes: number, C: new (n: number) => TypedArray): (n: number) => TypedArray {
  return (n) => {
    checkedAlloc(n, bytes);
    try {
      return new C(n);
    } catch (e) {
      if (e instanceof RangeError) throw new ResourceLimitError(`${currentAllocOp() ?? 'an array'}: cannot allocate ${n} elements × ${bytes} B (${fmtBytes(n * bytes)}): ${e.message}`);
      throw e;
    }
  };
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  float32: { bytes: 4, make: maker(4, Float32Array), isFloat: true },
  float64: { bytes: 8, make: maker(8, Float64Array), isFloat: true },
  int8: { bytes: 1, make: maker(1, Int8Array), isFloat: false },
  uint8: { bytes: 1, make: maker(1, Uint8Array), isFloat: false },
  int16: { bytes: 2, make: maker(2, Int16Array), isFloat: false },
  uint16: { bytes: 2, make: maker(2, Uint16Array), isFloat: false },
  int32: { bytes: 4, make: maker(4, Int32Array), isFloat: false },
  uint32: { bytes: 4, make: maker(4, Uint32Array), isFloat: false },
  int64: { bytes: 8, make: maker(8, Float64Array), isFloat: false },
  uint64: { bytes: 8, make: maker(8, Float64Array), isFloat: false },
  bool: { bytes: 1, make: maker(1, Uint8Array), isFloat: false },
};

/** Typed, budget-checked scratch arrays for kernels (the same makers as DTYPES'). */
export const f64Array = DTYPES.float64.make as (n: number) => Float64Array;
export const f32Array = DTYPES.float32.make as (n: number) => Float32Array;
export const i32Array = DTYPES.int32.make as (n: number) => Int32Array;

/**
 * Converts a computed number to what an element of `dtype` holds. Typed arrays already wrap
 * and truncate int8…uint32 on store; int64/uint64 (Float64Array) and bool need it done here.
 *
 * int64/uint64 are exact only within ±(2^53 − 1) (uint64: 0 … 2^53 − 1): a result outside
 * that range (or NaN, ±∞) would be silently rounded or could not wrap as 64-bit integers
 * do, so it raises a ValueError instead. Such tensors hold shapes, indices and counts, far
 * below 2^53; exact 64-bit arithmetic (BigInt storage) would cost every consumer of them.
 */
export function castValue(dtype: DType, v: number): number {
  switch (dtype) {
    case 'int64':
    case 'uint64': {
      const t = Math.trunc(v);
      if (!Number.isSafeInteger(t) || (dtype === 'uint64' && t < 0)) throw int64Error(dtype, v);
      return t === 0 ? 0 : t; // no −0 in an integer tensor
    }
    case 'bool':
      return v !== 0 ? 1 : 0;
    default:
      return v;
  }
}

function int64Error(dtype: DType, v: number): ValueError {
  const range = dtype === 'uint64' ? '0 … 2^53 − 1' : '±(2^53 − 1)';
  return new ValueError(
    `${currentAllocOp() ?? dtype}: the ${dtype} result ${v} is outside ${range}, the range held exactly (${dtype} values live in float64; beyond it they would be rounded or wrap)`,
  );
}
