import type { DType } from '../core/dtype.js';
import { DTYPES, f64Array } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, broadcastShapes, fmtShape, normAxis, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { NO_ACTIVATION } from './activation.js';
import { type ConvAttrs, type ConvGeometry, convGeometry } from './conv.js';

/**
 * Quantized (integer) ops as ONNX defines them: QuantizeLinear, DequantizeLinear, ConvInteger,
 * MatMulInteger, QLinearConv and QLinearMatMul. Each card has only a reference kernel, which
 * follows the spec exactly: integer products summed exactly (in float64, which holds any int32
 * accumulator of these sizes without rounding) and wrapped to int32 as a 32-bit accumulator
 * would, requantization by a float32 multiplier, rounding half to even and saturation.
 *
 * The cards have no gradients: integer outputs have none, and quantization-aware training
 * (fake-quant with straight-through gradients) is out of scope.
 */

/** The integer types a quantized tensor may have, with their saturation ranges. */
export type QuantDType = 'int8' | 'uint8' | 'int16' | 'uint16';

const RANGES: Readonly<Record<QuantDType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
};

export function isQuantDType(d: DType): d is QuantDType {
  return Object.hasOwn(RANGES, d);
}

/** Round half to even (numpy's rint, C's nearbyint in the default rounding mode). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function saturate(v: number, d: QuantDType): number {
  const [lo, hi] = RANGES[d];
  return v < lo ? lo : v > hi ? hi : v;
}

// ---------------------------------------------------------------------------------------------
// Scale and zero-point checks, shared by every card.

/**
 * A scale (and its zero point) as the kernels use it: one value per tensor, or one per index
 * of `axis` (per-axis). Element `i` of x uses entry floor(i / inner) % count.
 */
interface QParams {
  readonly scales: Float64Array;
  readonly zeros: Float64Array;
  readonly inner: number;
  readonly count: number;
}

/**
 * Checks a scale / zero-point pair against the tensor it describes: scale finite and positive
 * (a zero scale divides by zero, a negative or non-finite one has no meaning), zero point of
 * the expected integer type and of the scale's shape, and per-axis lengths equal to x's dim.
 * `axis` undefined: per-tensor only.
 */
function qparams(what: string, x: Shape, scale: Tensor, zero: Tensor | undefined, axis: number | undefined, zeroDtype?: DType): QParams {
  if (zero && zeroDtype && zero.dtype !== zeroDtype) {
    throw new ValueError(`${what}: zero point is ${zero.dtype} but must be ${zeroDtype}, the quantized tensor's type`);
  }
  if (zero && zero.shape.join() !== scale.shape.join()) {
    throw new ShapeError(`${what}: zero point ${fmtShape(zero.shape)} and scale ${fmtShape(scale.shape)} must have the same shape`);
  }
  let inner = 1;
  let count = 1;
  if (scale.size !== 1 || scale.rank > 1) {
    if (axis === undefined) throw new ShapeError(`${what}: scale ${fmtShape(scale.shape)} must be a scalar (per-tensor quantization)`);
    if (scale.rank !== 1) throw new ShapeError(`${what}: scale ${fmtShape(scale.shape)} must be a scalar or a 1-D tensor (per-axis)`);
    const a = normAxis(axis, x.length, what);
    if (scale.size !== x[a]) {
      throw new ShapeError(`${what}: per-axis scale has ${scale.size} values but input ${fmtShape(x)} has ${x[a]} along axis ${axis}`);
    }
    count = scale.size;
    inner = sizeOf(x.slice(a + 1));
  }
  const s = scale.dataSync();
  const scales = f64Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const v = s[i]!;
    if (!Number.isFinite(v) || v <= 0) throw new ValueError(`${what}: scale[${i}] = ${v}; scales must be finite and positive`);
    scales[i] = v;
  }
  const zeros = f64Array(s.length);
  if (zero) zeros.set(zero.dataSync());
  return { scales, zeros, inner, count };
}

function checkQuantized(what: string, t: Tensor, role: string): QuantDType {
  if (!isQuantDType(t.dtype)) throw new ValueError(`${what}: ${role} is ${t.dtype}; expected int8 or uint8`);
  return t.dtype;
}

// ---------------------------------------------------------------------------------------------
// QuantizeLinear and DequantizeLinear

export interface QuantizeAttrs {
  /** The per-axis axis (used only when the scale is 1-D with more than one value); undefined: per-tensor only. */
  readonly axis?: number;
  /** The output type (the zero point's type, when there is one). */
  readonly dtype: QuantDType;
  /** The name errors give (e.g. the ONNX node); default the op's name. */
  readonly label?: string;
}

/** y = saturate(round_half_even(x / scale) + zero_point), per tensor or per axis. */
export const quantizeLinearCard: OpCard<QuantizeAttrs> = {
  name: 'QuantizeLinear',
  label: (a) => a.label ?? 'QuantizeLinear',
  outputDtype: (_inputs, a) => a.dtype,
  shape([x], a) {
    if (!RANGES[a.dtype]) throw new ValueError(`${a.label ?? 'QuantizeLinear'}: output type ${a.dtype} is not int8, uint8, int16 or uint16`);
    return x!;
  },
  reference([x, scale, zero], a) {
    const what = a.label ?? 'QuantizeLinear';
    const p = qparams(what, x!.shape, scale!, zero, a.axis, a.dtype);
    const src = x!.dataSync();
    const out = DTYPES[a.dtype].make(x!.size);
    // float32 x / float32 scale: the float64 quotient rounded once to float32 is exactly
    // float32 division (53 ≥ 2·24 + 2 bits), so ties round as the spec's float arithmetic does.
    const f32 = x!.dtype === 'float32';
    for (let i = 0; i < src.length; i++) {
      const c = p.count === 1 ? 0 : Math.floor(i / p.inner) % p.count;
      const q = src[i]! / p.scales[c]!;
      out[i] = saturate(roundHalfEven(f32 ? Math.fround(q) : q) + p.zeros[c]!, a.dtype);
    }
    return new Tensor(out, x!.shape, a.dtype);
  },
};

export interface DequantizeAttrs {
  readonly axis?: number;
  readonly label?: string;
}

/** y = (x − zero_point) · scale in float32, per tensor or per axis; x int8/uint8/int16/uint16 or int32 (zero point 0). */
export const dequantizeLinearCard: OpCard<DequantizeAttrs> = {
  name: 'DequantizeLinear',
  label: (a) => a.label ?? 'DequantizeLinear',
  outputDtype: () => 'float32',
  shape([x]) {
    return x!;
  },
  reference([x, scale, zero], a) {
    const what = a.label ?? 'DequantizeLinear';
    if (!isQuantDType(x!.dtype) && x!.dtype !== 'int32') throw new ValueError(`${what}: input is ${x!.dtype}; expected int8, uint8, int16, uint16 or int32`);
    const p = qparams(what, x!.shape, scale!, zero, a.axis, x!.dtype);
    if (x!.dtype === 'int32' && p.zeros.some((z) => z !== 0)) throw new ValueError(`${what}: an int32 input must have zero point 0`);
    const src = x!.dataSync();
    const out = DTYPES.float32.make(x!.size);
    // (x − zp) is an exact integer and its product with a float32 scale is exact in float64:
    // one rounding to float32, as float32 multiplication does.
    for (let i = 0; i < src.length; i++) {
      const c = p.count === 1 ? 0 : Math.floor(i / p.inner) % p.count;
      out[i] = (src[i]! - p.zeros[c]!) * p.scales[c]!;
    }
    return new Tensor(out, x!.shape, 'float32');
  },
};

/**
 * QuantizeLinear: y = saturate(round_half_even(x / scale) + zeroPoint), per tensor (scalar
 * scale) or per channel along `opts.axis` (default 1) for a 1-D scale. The output type is
 * `opts.dtype`, else the zero point's type, else uint8. Throws ValueError for an output type
 * other than int8, uint8, int16 or uint16, a zero point of another type or a scale that is not
 * finite and positive; ShapeError for a scale or zero point whose shape does not fit x.
 *
 * @example
 * ```ts
 * import { Tensor, quantizeLinear } from 'lightconv';
 *
 * quantizeLinear(Tensor.fromArray([0, 1, 2.5, 200], [4]), Tensor.scalar(0.5)).toArray(); // [0, 2, 5, 255] (uint8, saturated)
 * ```
 */
export function quantizeLinear(x: Tensor, scale: Tensor, zeroPoint?: Tensor | null, opts: { axis?: number; dtype?: QuantDType } = {}): Tensor {
  const dtype = opts.dtype ?? (zeroPoint && isQuantDType(zeroPoint.dtype) ? zeroPoint.dtype : 'uint8');
  return apply(quantizeLinearCard, zeroPoint ? [x, scale, zeroPoint] : [x, scale], { axis: opts.axis ?? 1, dtype });
}

/**
 * DequantizeLinear: y = (x − zeroPoint) · scale in float32, per tensor (scalar scale) or per
 * channel along `opts.axis` (default 1) for a 1-D scale; x int8, uint8, int16, uint16, or int32
 * with zero point 0 (the zero point has x's type). Throws ValueError for another input type,
 * a nonzero int32 zero point or a scale that is not finite and positive; ShapeError for a scale
 * or zero point whose shape does not fit x.
 *
 * @example
 * ```ts
 * import { Tensor, dequantizeLinear } from 'lightconv';
 *
 * const q = Tensor.fromArray([0, 2, 5, 255], [4], 'uint8');
 * dequantizeLinear(q, Tensor.scalar(0.5), Tensor.scalar(1, 'uint8')).toArray(); // [-0.5, 0.5, 2, 127]
 * ```
 */
export function dequantizeLinear(x: Tensor, scale: Tensor, zeroPoint?: Tensor | null, opts: { axis?: number } = {}): Tensor {
  return apply(dequantizeLinearCard, zeroPoint ? [x, scale, zeroPoint] : [x, scale], { axis: opts.axis ?? 1 });
}

// ---------------------------------------------------------------------------------------------
// Integer convolution and matrix product (exact accumulators)

/** Wraps an exact integer sum to int32, as a 32-bit accumulator does (the spec allows overflow only there). */
function wrap32(v: number): number {
  if (v >= -2147483648 && v <= 2147483647) return v;
  const u = ((v % 4294967296) + 4294967296) % 4294967296; // exact for integers held in a double
  return u >= 2147483648 ? u - 4294967296 : u;
}

/** Exact sums Σ (x − xzp)(w − wzp) over each conv window, before any wrap; padding is zero after the shift. */
function convIntAcc(g: ConvGeometry, X: ArrayLike<number>, W: ArrayLike<number>, xzp: number, wzp: Float64Array): Float64Array {
  const xs = f64Array(X.length);
  for (let i = 0; i < X.length; i++) xs[i] = X[i]! - xzp;
  const per = g.cg * g.kh * g.kw;
  const ws = f64Array(W.length);
  for (let i = 0; i < W.length; i++) ws[i] = W[i]! - wzp[wzp.length === 1 ? 0 : Math.floor(i / per)]!;
  const acc = f64Array(g.n * g.m * g.oh * g.ow);
  let o = 0;
  for (let n = 0; n < g.n; n++) {
    for (let m = 0; m < g.m; m++) {
      const c0 = Math.floor(m / g.mg) * g.cg;
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          let s = 0;
          for (let ci = 0; ci < g.cg; ci++) {
            for (let ky = 0; ky < g.kh; ky++) {
              const iy = oy * g.sh - g.pt + ky * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              for (let kx = 0; kx < g.kw; kx++) {
                const ix = ox * g.sw - g.pl + kx * g.dw;
                if (ix < 0 || ix >= g.w) continue;
                s += xs[((n * g.c + c0 + ci) * g.h + iy) * g.w + ix]! * ws[((m * g.cg + ci) * g.kh + ky) * g.kw + kx]!;
              }
            }
          }
          acc[o++] = s;
        }
      }
    }
  }
  return acc;
}

/** Conv window attributes of the integer convs (Conv's, without bias or fused activation). */
export interface IntConvAttrs {
  readonly strides: readonly number[];
  readonly pads: readonly number[];
  readonly dilations: readonly number[];
  readonly group: number;
  readonly label?: string;
}

/** The ConvAttrs object convGeometry caches by, one per IntConvAttrs object. */
const convAttrsOf = new WeakMap<IntConvAttrs, ConvAttrs>();
function geometry(shapes: readonly Shape[], a: IntConvAttrs): ConvGeometry {
  let c = convAttrsOf.get(a);
  if (!c) {
    c = { strides: a.strides, pads: a.pads, dilations: a.dilations, group: a.group, activation: NO_ACTIVATION };
    convAttrsOf.set(a, c);
  }
  const what = a.label ?? 'ConvInteger';
  try {
    return convGeometry(shapes, c);
  } catch (e) {
    if (e instanceof ShapeError) throw new ShapeError(`${what}: ${e.message}`);
    throw e;
  }
}

/** A per-tensor scalar (size 1), or per output channel (1-D of length m). */
function perChannel(what: string, t: Tensor | undefined, m: number, role: string): Float64Array {
  if (!t) return f64Array(1);
  if (t.size !== 1 && !(t.rank === 1 && t.size === m)) {
    throw new ShapeError(`${what}: ${role} ${fmtShape(t.shape)} must be a scalar or 1-D with one value per output channel (${m})`);
  }
  return Float64Array.from(t.dataSync());
}

/** ConvInteger: int32 y = conv(x − x_zero_point, w − w_zero_point); w's zero point per tensor or per output channel. */
export const convIntegerCard: OpCard<IntConvAttrs> = {
  name: 'ConvInteger',
  label: (a) => a.label ?? 'ConvInteger',
  outputDtype: () => 'int32',
  shape([x, w, xzp, wzp], a) {
    const what = a.label ?? 'ConvInteger';
    const g = geometry([x!, w!], a);
    if (xzp && sizeOf(xzp) !== 1) throw new ShapeError(`${what}: x_zero_point ${fmtShape(xzp)} must be a scalar`);
    if (wzp && sizeOf(wzp) !== 1 && !(wzp.length === 1 && wzp[0] === g.m)) {
      throw new ShapeError(`${what}: w_zero_point ${fmtShape(wzp)} must be a scalar or hold one value per output channel (${g.m})`);
    }
    return g.outShape;
  },
  reference([x, w, xzp, wzp], a) {
    const what = a.label ?? 'ConvInteger';
    checkZeroType(what, x!, xzp, 'x');
    checkZeroType(what, w!, wzp, 'w');
    const g = geometry([x!.shape, w!.shape], a);
    const acc = convIntAcc(g, x!.dataSync(), w!.dataSync(), xzp ? xzp.dataSync()[0]! : 0, perChannel(what, wzp, g.m, 'w_zero_point'));
    const out = DTYPES.int32.make(acc.length);
    for (let i = 0; i < acc.length; i++) out[i] = wrap32(acc[i]!);
    return new Tensor(out, g.outShape, 'int32');
  },
};

function checkZeroType(what: string, t: Tensor, zero: Tensor | undefined, role: string): void {
  checkQuantized(what, t, role);
  if (zero && zero.dtype !== t.dtype) throw new ValueError(`${what}: ${role}_zero_point is ${zero.dtype} but ${role} is ${t.dtype}`);
}

/** QLinearConv: y = saturate(round_half_even((Σ + bias) · x_scale·w_scale / y_scale) + y_zero_point). */
export const qlinearConvCard: OpCard<IntConvAttrs> = {
  name: 'QLinearConv',
  label: (a) => a.label ?? 'QLinearConv',
  outputDtype: (inputs) => inputs[7]?.dtype ?? 'uint8',
  shape([x, , , w, , , , , bias], a) {
    const what = a.label ?? 'QLinearConv';
    const g = geometry([x!, w!], a);
    if (bias && !(bias.length === 1 && bias[0] === g.m)) throw new ShapeError(`${what}: bias ${fmtShape(bias)} must be [${g.m}], one per output channel`);
    return g.outShape;
  },
  reference([x, xs, xzp, w, ws, wzp, ys, yzp, bias], a) {
    const what = a.label ?? 'QLinearConv';
    checkZeroType(what, x!, xzp, 'x');
    checkZeroType(what, w!, wzp, 'w');
    const g = geometry([x!.shape, w!.shape], a);
    const xp = qparams(`${what} (x)`, x!.shape, xs!, xzp, undefined);
    const wScale = perChannel(what, ws, g.m, 'w_scale');
    const wZero = perChannel(what, wzp, g.m, 'w_zero_point');
    checkScales(what, wScale, 'w_scale');
    if (wzp && wZero.length !== 1 && wScale.length !== wZero.length) throw new ShapeError(`${what}: w_scale has ${wScale.length} values but w_zero_point ${wZero.length}`);
    const outType = yzp ? checkQuantized(what, yzp, 'y_zero_point') : 'uint8';
    const yp = qparams(`${what} (y)`, [], ys!, yzp, undefined);
    if (bias && bias.dtype !== 'int32') throw new ValueError(`${what}: bias is ${bias.dtype}; expected int32`);
    const acc = convIntAcc(g, x!.dataSync(), w!.dataSync(), xp.zeros[0]!, wZero);
    const B = bias?.dataSync();
    const mult = multipliers(xp.scales[0]!, wScale, yp.scales[0]!);
    const out = DTYPES[outType].make(acc.length);
    const plane = g.oh * g.ow;
    for (let i = 0; i < acc.length; i++) {
      const m = Math.floor(i / plane) % g.m;
      const s = wrap32(acc[i]! + (B ? B[m]! : 0));
      out[i] = saturate(roundHalfEven(s * mult[mult.length === 1 ? 0 : m]!) + yp.zeros[0]!, outType);
    }
    return new Tensor(out, g.outShape, outType);
  },
};

function checkScales(what: string, s: Float64Array, role: string): void {
  const bad = s.findIndex((v) => !Number.isFinite(v) || v <= 0);
  if (bad >= 0) throw new ValueError(`${what}: ${role}[${bad}] = ${s[bad]}; scales must be finite and positive`);
}

/**
 * The requantization multipliers a_scale·b_scale / y_scale, computed in float32 as the ONNX
 * reference does; the int32 accumulator is then scaled by them in float64.
 */
function multipliers(aScale: number, bScales: Float64Array, yScale: number): Float64Array {
  return bScales.map((b) => Math.fround(Math.fround(aScale * b) / yScale));
}

export function convInteger(x: Tensor, w: Tensor, xZero?: Tensor | null, wZero?: Tensor | null, attrs: Partial<IntConvAttrs> = {}): Tensor {
  const r = w.rank - 2;
  const full: IntConvAttrs = {
    strides: attrs.strides ?? new Array<number>(r).fill(1),
    pads: attrs.pads ?? new Array<number>(2 * r).fill(0),
    dilations: attrs.dilations ?? new Array<number>(r).fill(1),
    group: attrs.group ?? 1,
    ...(attrs.label ? { label: attrs.label } : {}),
  };
  const zx = xZero ?? Tensor.zeros([], x.dtype);
  return apply(convIntegerCard, wZero ? [x, w, zx, wZero] : [x, w, zx], full);
}

// Matrix products: numpy matmul semantics (1-D operands promoted, batch dims broadcast).

interface MatGeometry {
  m: number;
  k: number;
  n: number;
  batch: number[];
  aOff: (b: number) => number;
  bOff: (b: number) => number;
  outShape: number[];
}

function matGeometry(what: string, a: Shape, b: Shape): MatGeometry {
  if (a.length === 0 || b.length === 0) throw new ShapeError(`${what}: operands must have rank ≥ 1, got ${fmtShape(a)} and ${fmtShape(b)}`);
  const A = a.length === 1 ? [1, a[0]!] : [...a];
  const B = b.length === 1 ? [b[0]!, 1] : [...b];
  const [m, k] = A.slice(-2) as [number, number];
  const [k2, n] = B.slice(-2) as [number, number];
  if (k !== k2) throw new ShapeError(`${what}: inner dimensions differ: ${fmtShape(a)} × ${fmtShape(b)}`);
  const batch = broadcastShapes(A.slice(0, -2), B.slice(0, -2), what);
  const offsets = (dims: number[], stride: number) => {
    const full = [...new Array<number>(batch.length - dims.length).fill(1), ...dims];
    return (bi: number) => {
      let off = 0;
      let mul = 1;
      for (let d = batch.length - 1; d >= 0; d--) {
        const idx = Math.floor(bi / sizeOf(batch.slice(d + 1))) % batch[d]!;
        if (full[d] !== 1) off += idx * mul;
        mul *= full[d]!;
      }
      return off * stride;
    };
  };
  const outShape = [...batch, ...(a.length === 1 ? [] : [m]), ...(b.length === 1 ? [] : [n])];
  return { m, k, n, batch, aOff: offsets(A.slice(0, -2), m * k), bOff: offsets(B.slice(0, -2), k * n), outShape };
}

/** A zero point or scale per tensor, per row of a (length m) or per column of b (length n). */
function perVector(what: string, t: Tensor | undefined, len: number, role: string, along: string): Float64Array {
  if (!t) return f64Array(1);
  if (t.size !== 1 && !(t.rank === 1 && t.size === len)) {
    throw new ShapeError(`${what}: ${role} ${fmtShape(t.shape)} must be a scalar or 1-D with one value per ${along} (${len})`);
  }
  return Float64Array.from(t.dataSync());
}

/** Exact sums Σ (a − azp)(b − bzp), zero points per tensor, per row of a or per column of b. */
function matIntAcc(g: MatGeometry, A: ArrayLike<number>, B: ArrayLike<number>, azp: Float64Array, bzp: Float64Array): Float64Array {
  const nb = sizeOf(g.batch);
  const acc = f64Array(nb * g.m * g.n);
  const row = f64Array(g.k);
  let o = 0;
  for (let bi = 0; bi < nb; bi++) {
    const ao = g.aOff(bi);
    const bo = g.bOff(bi);
    for (let i = 0; i < g.m; i++) {
      const za = azp[azp.length === 1 ? 0 : i]!;
      for (let p = 0; p < g.k; p++) row[p] = A[ao + i * g.k + p]! - za;
      for (let j = 0; j < g.n; j++) {
        const zb = bzp[bzp.length === 1 ? 0 : j]!;
        let s = 0;
        for (let p = 0; p < g.k; p++) s += row[p]! * (B[bo + p * g.n + j]! - zb);
        acc[o++] = s;
      }
    }
  }
  return acc;
}

export interface IntMatAttrs {
  readonly label?: string;
}

/** MatMulInteger: int32 y = (a − a_zero_point) · (b − b_zero_point). */
export const matMulIntegerCard: OpCard<IntMatAttrs> = {
  name: 'MatMulInteger',
  label: (a) => a.label ?? 'MatMulInteger',
  outputDtype: () => 'int32',
  shape([a, b], at) {
    return matGeometry(at.label ?? 'MatMulInteger', a!, b!).outShape;
  },
  reference([a, b, azp, bzp], at) {
    const what = at.label ?? 'MatMulInteger';
    checkZeroType(what, a!, azp, 'a');
    checkZeroType(what, b!, bzp, 'b');
    const g = matGeometry(what, a!.shape, b!.shape);
    const acc = matIntAcc(g, a!.dataSync(), b!.dataSync(), perVector(what, azp, g.m, 'a_zero_point', 'row of a'), perVector(what, bzp, g.n, 'b_zero_point', 'column of b'));
    const out = DTYPES.int32.make(acc.length);
    for (let i = 0; i < acc.length; i++) out[i] = wrap32(acc[i]!);
    return new Tensor(out, g.outShape, 'int32');
  },
};

/** QLinearMatMul: y = saturate(round_half_even((a − azp)·(b − bzp) · a_scale·b_scale / y_scale) + y_zero_point). */
export const qlinearMatMulCard: OpCard<IntMatAttrs> = {
  name: 'QLinearMatMul',
  label: (a) => a.label ?? 'QLinearMatMul',
  outputDtype: (inputs) => inputs[7]?.dtype ?? 'uint8',
  shape([a, , , b], at) {
    return matGeometry(at.label ?? 'QLinearMatMul', a!, b!).outShape;
  },
  reference([a, as, azp, b, bs, bzp, ys, yzp], at) {
    const what = at.label ?? 'QLinearMatMul';
    checkZeroType(what, a!, azp, 'a');
    checkZeroType(what, b!, bzp, 'b');
    const g = matGeometry(what, a!.shape, b!.shape);
    const aScale = perVector(what, as, g.m, 'a_scale', 'row of a');
    const bScale = perVector(what, bs, g.n, 'b_scale', 'column of b');
    checkScales(what, aScale, 'a_scale');
    checkScales(what, bScale, 'b_scale');
    const outType = yzp ? checkQuantized(what, yzp, 'y_zero_point') : 'uint8';
    const yp = qparams(`${what} (y)`, [], ys!, yzp, undefined);
    const acc = matIntAcc(g, a!.dataSync(), b!.dataSync(), perVector(what, azp, g.m, 'a_zero_point', 'row of a'), perVector(what, bzp, g.n, 'b_zero_point', 'column of b'));
    // One row of multipliers per row of a (or one for a per-tensor a_scale).
    const mults = Array.from(aScale, (s) => multipliers(s, bScale, yp.scales[0]!));
    const out = DTYPES[outType].make(acc.length);
    for (let o = 0; o < acc.length; o++) {
      const j = o % g.n;
      const i = Math.floor(o / g.n) % g.m;
      const mr = mults[mults.length === 1 ? 0 : i]!;
      out[o] = saturate(roundHalfEven(wrap32(acc[o]!) * mr[mr.length === 1 ? 0 : j]!) + yp.zeros[0]!, outType);
    }
    return new Tensor(out, g.outShape, outType);
  },
};

export function matMulInteger(a: Tensor, b: Tensor, aZero?: Tensor | null, bZero?: Tensor | null): Tensor {
  const za = aZero ?? Tensor.zeros([], a.dtype);
  return apply(matMulIntegerCard, bZero ? [a, b, za, bZero] : [a, b, za], {});
}
