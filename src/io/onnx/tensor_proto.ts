import { type DType, DTYPES, type TypedArray } from '../../core/dtype.js';
import { OnnxError } from '../../core/errors.js';
import { checkedSize } from '../../core/limits.js';
import { Tensor } from '../../core/tensor.js';
import { onnx } from './proto/onnx.js';

type Long = { low: number; high: number; unsigned: boolean };
export type Int64 = number | Long;

/** ONNX TensorProto.DataType → the dtype the engine holds it as. */
const FROM_ONNX: Readonly<Record<number, DType>> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float32', // float16, widened on read
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'float32', // bfloat16, widened on read
};

const TO_ONNX: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
  uint32: 12,
  uint64: 13,
};

const ONNX_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'UNDEFINED', 1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING',
  9: 'BOOL', 10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
};

export function onnxTypeName(t: number): string {
  return ONNX_TYPE_NAMES[t] ?? `type ${t}`;
}

/** The engine dtype for an ONNX element type, or undefined when it has none (strings, complex). */
export function dtypeFromOnnx(t: number): DType | undefined {
  return FROM_ONNX[t];
}

export function dtypeToOnnx(d: DType): number {
  return TO_ONNX[d];
}

/** A protobuf int64 as a plain number, or an OnnxError if it is not a safe integer. */
export function safeInt(v: Int64, what: string): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else {
    // Long: high word signed unless unsigned; beyond ±2^53 the number would be inexact.
    const high = v.unsigned ? v.high >>> 0 : v.high | 0;
    if (high > 0x1fffff || high < -0x200000) throw new OnnxError(`${what}: ${fmtLong(v)} is beyond the safe integer range`);
    n = high * 4294967296 + (v.low >>> 0);
  }
  if (!Number.isSafeInteger(n)) throw new OnnxError(`${what}: ${n} is not a safe integer`);
  return n;
}

/**
 * An int64 tensor value as a number. INT64_MAX, INT64_MIN and −INT64_MAX are the exporters'
 * "unbounded" (torch writes `x[:, 1:]` as Slice ends = INT64_MAX, and a step-−1 slice to the
 * start as ends = −INT64_MAX, as torchvision's Swin-T has): they become ±(2^53 − 1), which every op
 * taking them (Slice, Range bounds, Clip) clamps exactly as it would the true value. Any other
 * value beyond ±2^53 stays an error: it could not be represented exactly.
 */
function int64Value(v: bigint): number {
  if (v === 0x7fffffffffffffffn) return Number.MAX_SAFE_INTEGER;
  if (v === -0x8000000000000000n || v === -0x7fffffffffffffffn) return -Number.MAX_SAFE_INTEGER;
  return Number(v);
}

/** INT64_MAX, INT64_MIN or −INT64_MAX as a protobuf Long (int64_data): the same sentinels as int64Value's. */
function isSentinel(v: Long): boolean {
  if (v.unsigned) return false;
  const high = v.high | 0;
  const low = v.low >>> 0;
  return (high === 0x7fffffff && low === 0xffffffff) || (high === -0x80000000 && (low === 0 || low === 1));
}

function fmtLong(v: Long): string {
  const b = (BigInt(v.unsigned ? v.high >>> 0 : v.high | 0) << 32n) | BigInt(v.low >>> 0);
  return b.toString();
}

/** Reads external bytes for a tensor; provided by the loader when the model came from a file. */
export type ExternalReader = (location: string, offset: number, length: number, tensorName: string) => Uint8Array;

/**
 * Converts a TensorProto to a Tensor. The declared size is checked against the tensor budget
 * before anything is allocated, and the data length must match the dims exactly.
 */
export function tensorFromProto(p: onnx.TensorProto.$Properties, what: string, readExternal?: ExternalReader): Tensor {
  const name = p.name ? `${what} '${p.name}'` : what;
  const type = p.data_type ?? 0;
  const dtype = FROM_ONNX[type];
  if (!dtype) throw new OnnxError(`${name}: element type ${onnxTypeName(type)} is not supported`);
  const dims = (p.dims ?? []).map((d, i) => safeInt(d, `${name} dim ${i}`));
  const n = checkedSize(dims, name, DTYPES[dtype].bytes);
  if (p.segment) throw new OnnxError(`${name}: segmented tensors are not supported`);
  const elemBytes = type === 10 || type === 16 ? 2 : DTYPES[dtype].bytes;

  // Exactly one place holds the data: raw_data, the typed field of this element type, or an
  // external file. Anything else set alongside is refused rather than silently ignored.
  let raw = p.raw_data && p.raw_data.length > 0 ? p.raw_data : undefined;
  const typedName = typedFieldName(type);
  for (const f of TYPED_FIELDS) {
    const len = (p[f] as ArrayLike<unknown> | null | undefined)?.length ?? 0;
    if (len === 0) continue;
    if (raw) throw new OnnxError(`${name}: sets both raw_data and ${f} (${len} values); a tensor's data must be in one place`);
    if (f !== typedName) throw new OnnxError(`${name}: a ${onnxTypeName(type)} tensor carries ${f} (${len} values); its values belong in ${typedName}`);
  }
  const location = p.data_location ?? 0;
  if (location !== onnx.TensorProto.DataLocation.DEFAULT && location !== onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new OnnxError(`${name}: data_location ${location} is neither DEFAULT (0) nor EXTERNAL (1)`);
  }
  const external = location === onnx.TensorProto.DataLocation.EXTERNAL;
  if (!external && (p.external_data ?? []).length > 0) throw new OnnxError(`${name}: has external_data entries but data_location is not EXTERNAL`);
  if (external && raw) throw new OnnxError(`${name}: sets both external data and raw_data (${raw.length} bytes); a tensor's data must be in one place`);
  if (external && (p[typedName] as ArrayLike<unknown> | null | undefined)?.length) throw new OnnxError(`${name}: sets both external data and ${typedName}; a tensor's data must be in one place`);
  if (n === 0) {
    // An empty tensor has no data; bytes or values for it mean the dims or the data are wrong.
    const held = raw?.length ?? (p[typedName] as ArrayLike<unknown> | null | undefined)?.length ?? 0;
    if (held > 0) throw new OnnxError(`${name}: dims [${dims.join(', ')}] hold no elements, but ${raw ? `raw_data has ${held} bytes` : `${typedName} has ${held} values`}`);
  }
  const out = DTYPES[dtype].make(n);

  if (external) {
    if (!readExternal) throw new OnnxError(`${name}: uses external data, which needs the model to be loaded from a file path`);
    const entries = new Map((p.external_data ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location) throw new OnnxError(`${name}: external data without a 'location'`);
    const offset = entries.has('offset') ? parseIntStrict(entries.get('offset')!, `${name} external offset`) : 0;
    const length = entries.has('length') ? parseIntStrict(entries.get('length')!, `${name} external length`) : n * elemBytes;
    if (length !== n * elemBytes) {
      throw new OnnxError(`${name}: external data length ${length} does not match ${n} elements of ${onnxTypeName(type)} (${n * elemBytes} bytes)`);
    }
    raw = readExternal(location, offset, length, name);
  }

  if (raw) {
    if (raw.length !== n * elemBytes) {
      throw new OnnxError(`${name}: raw_data has ${raw.length} bytes, but dims [${dims.join(', ')}] of ${onnxTypeName(type)} need ${n * elemBytes}`);
    }
    readRaw(raw, type, out, name);
    return new Tensor(out, dims, dtype);
  }

  const typed = (p[typedName] ?? []) as ArrayLike<Int64>;
  if (typed.length !== n) {
    if (typed.length === 0) throw new OnnxError(`${name}: no data for dims [${dims.join(', ')}] (${n} elements)`);
    throw new OnnxError(`${name}: has ${typed.length} values, but dims [${dims.join(', ')}] need ${n}`);
  }
  const range = INT_RANGE[type];
  for (let i = 0; i < n; i++) {
    const v = typed[i]!;
    const x = type === 1 || type === 11 ? (v as number) : type === 7 && typeof v !== 'number' && isSentinel(v) ? ((v.high | 0) < 0 ? -1 : 1) * Number.MAX_SAFE_INTEGER : safeInt(v, `${name} value ${i}`);
    // Narrow types travel widened (in int32_data or uint64_data): a value outside the type's
    // range would wrap or be cut when stored, so it is refused instead.
    if (range && (x < range[0] || x > range[1])) {
      throw new OnnxError(`${name}: value ${i} is ${x}, outside the ${onnxTypeName(type)} range ${range[0]}..${range[1]}`);
    }
    if (type === 10) out[i] = halfToFloat(x);
    else if (type === 16) out[i] = bf16ToFloat(x);
    else out[i] = x;
  }
  return new Tensor(out, dims, dtype);
}

/** The typed TensorProto fields that can carry data. */
const TYPED_FIELDS = ['float_data', 'int32_data', 'string_data', 'int64_data', 'double_data', 'uint64_data'] as const;
type TypedFieldName = (typeof TYPED_FIELDS)[number];

/** Valid values per element type when read from a wider typed field (float16/bfloat16: their 16 bits). */
const INT_RANGE: Readonly<Record<number, readonly [number, number]>> = {
  2: [0, 255],
  3: [-128, 127],
  4: [0, 65535],
  5: [-32768, 32767],
  6: [-2147483648, 2147483647],
  9: [0, 1],
  10: [0, 65535],
  12: [0, 4294967295],
  13: [0, Number.MAX_SAFE_INTEGER],
  16: [0, 65535],
};

function typedFieldName(type: number): TypedFieldName {
  switch (type) {
    case 1:
      return 'float_data';
    case 11:
      return 'double_data';
    case 7:
      return 'int64_data';
    case 12:
    case 13:
      return 'uint64_data';
    default:
      // int8/16/32, uint8/16, bool, float16 and bfloat16 all travel in int32_data.
      return 'int32_data';
  }
}

function parseIntStrict(s: string, what: string): number {
  if (!/^\d+$/.test(s)) throw new OnnxError(`${what}: '${s}' is not a non-negative integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new OnnxError(`${what}: ${s} is too large`);
  return n;
}

/** Little-endian raw bytes into the output array (copied, so alignment never matters). */
function readRaw(raw: Uint8Array, type: number, out: TypedArray, name: string): void {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const n = out.length;
  switch (type) {
    case 1:
      new Uint8Array(out.buffer, out.byteOffset, n * 4).set(raw);
      return;
    case 11:
      new Uint8Array(out.buffer, out.byteOffset, n * 8).set(raw);
      return;
    case 10:
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return;
    case 16:
      for (let i = 0; i < n; i++) out[i] = bf16ToFloat(view.getUint16(2 * i, true));
      return;
    case 7:
    case 13:
      for (let i = 0; i < n; i++) {
        const v = type === 7 ? view.getBigInt64(8 * i, true) : view.getBigUint64(8 * i, true);
        const x = type === 7 ? int64Value(v) : Number(v);
        if (!Number.isSafeInteger(x)) throw new OnnxError(`${name}: value ${i} (${v}) is beyond the safe integer range`);
        out[i] = x;
      }
      return;
    case 9:
      for (let i = 0; i < n; i++) {
        if (raw[i]! > 1) throw new OnnxError(`${name}: BOOL value ${i} is byte ${raw[i]}; booleans are 0 or 1`);
        out[i] = raw[i]!;
      }
      return;
    default:
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw);
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function bf16ToFloat(b: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setUint32(0, b << 16);
  return buf.getFloat32(0);
}

/** A Tensor as a TensorProto (raw_data, little-endian). */
export function tensorToProto(t: Tensor, name = ''): onnx.TensorProto {
  const d = t.dataSync();
  let raw: Uint8Array;
  if (t.dtype === 'int64' || t.dtype === 'uint64') {
    const b = t.dtype === 'int64' ? new BigInt64Array(d.length) : new BigUint64Array(d.length);
    for (let i = 0; i < d.length; i++) b[i] = BigInt(d[i]!);
    raw = new Uint8Array(b.buffer);
  } else {
    raw = new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
  }
  return new onnx.TensorProto({ name, dims: [...t.shape], data_type: TO_ONNX[t.dtype], raw_data: raw });
}

/**
 * Decodes one serialized TensorProto (a `.pb` file of ONNX's test layout) with its name.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { decodeTensorProto } from 'lightconv/onnx';
 *
 * const { name, tensor } = decodeTensorProto(readFileSync('test_data_set_0/output_0.pb'), 'output_0.pb');
 * ```
 */
export function decodeTensorProto(bytes: Uint8Array, what = 'TensorProto'): { name: string; tensor: Tensor } {
  let p: onnx.TensorProto;
  try {
    p = onnx.TensorProto.decode(bytes);
  } catch (e) {
    throw new OnnxError(`${what}: not a valid TensorProto (${(e as Error).message})`);
  }
  return { name: p.name ?? '', tensor: tensorFromProto(p, what) };
}

/**
 * The tensor of one serialized TensorProto (see `decodeTensorProto`), without its name.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { decodeTensor } from 'lightconv/onnx';
 *
 * const x = decodeTensor(readFileSync('test_data_set_0/input_0.pb'));
 * ```
 */
export function decodeTensor(bytes: Uint8Array, what = 'TensorProto'): Tensor {
  return decodeTensorProto(bytes, what).tensor;
}

/**
 * A tensor as one serialized TensorProto (raw little-endian data), optionally named: the `.pb`
 * files of ONNX's test layout.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { Tensor } from 'lightconv';
 * import { encodeTensor } from 'lightconv/onnx';
 *
 * writeFileSync('input_0.pb', encodeTensor(Tensor.zeros([1, 3, 224, 224]), 'input'));
 * ```
 */
export function encodeTensor(t: Tensor, name = ''): Uint8Array {
  return onnx.TensorProto.encode(tensorToProto(t, name)).finish();
}
