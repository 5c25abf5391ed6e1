/**
 * Element types. The engine computes in float32; the other types exist so that ONNX graphs
 * can carry shapes, indices and masks, and so that integer elementwise ops behave as ONNX says.
 *
 * int64/uint64 are held in a Float64Array: every value is checked to be a safe integer
 * (|v| ≤ 2^53 − 1) when it enters, so they stay exact without BigInt arithmetic.
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

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  float32: { bytes: 4, make: (n) => new Float32Array(n), isFloat: true },
  float64: { bytes: 8, make: (n) => new Float64Array(n), isFloat: true },
  int8: { bytes: 1, make: (n) => new Int8Array(n), isFloat: false },
  uint8: { bytes: 1, make: (n) => new Uint8Array(n), isFloat: false },
  int16: { bytes: 2, make: (n) => new Int16Array(n), isFloat: false },
  uint16: { bytes: 2, make: (n) => new Uint16Array(n), isFloat: false },
  int32: { bytes: 4, make: (n) => new Int32Array(n), isFloat: false },
  uint32: { bytes: 4, make: (n) => new Uint32Array(n), isFloat: false },
  int64: { bytes: 8, make: (n) => new Float64Array(n), isFloat: false },
  uint64: { bytes: 8, make: (n) => new Float64Array(n), isFloat: false },
  bool: { bytes: 1, make: (n) => new Uint8Array(n), isFloat: false },
};

/**
 * Converts a computed number to what an element of `dtype` holds. Typed arrays already wrap
 * and truncate int8…uint32 on store; int64/uint64 (Float64Array) and bool need it done here.
 */
export function castValue(dtype: DType, v: number): number {
  switch (dtype) {
    case 'int64':
    case 'uint64':
      return Math.trunc(v);
    case 'bool':
      return v !== 0 ? 1 : 0;
    default:
      return v;
  }
}
