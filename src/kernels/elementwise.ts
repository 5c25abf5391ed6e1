import { outputBuffer } from '../core/storage.js';
import { wasmActivate, wasmBinaryRows } from './wasm/elementwise.js';
import { type DType, DTYPES, castValue, f64Array } from '../core/dtype.js';
import { ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, broadcastShapes, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { type Activation, activateInPlace, activationDerivative, activationFn } from './activation.js';
import { gradArray, gradOf, isFloat, unbroadcast } from './grad.js';

/**
 * Elementwise ops: one unary card (an activation or a math function) and one binary card
 * (Add/Sub/Mul/Div/Pow with numpy broadcasting).
 *
 * Integer tensors follow numpy/onnxruntime: results wrap modulo 2^bits (uint8 250 + 10 = 4),
 * integer Div truncates toward zero (and gives 0 for a zero divisor, as numpy does), Pow keeps
 * the base's dtype (int64 base, float exponent → trunc(pow)). int64/uint64 live in a
 * Float64Array, exact within ±(2^53 − 1): a result beyond that raises a ValueError (castValue)
 * rather than being rounded. Float special values follow C/PyTorch (docs/special-values.md).
 */

// ---------------------------------------------------------------------------------------------
// Unary

/** A pointwise function: an activation (shared with the fused epilogues) or a math function. */
export type UnaryOp = Activation | { readonly kind: 'erf' | 'exp' | 'sqrt' | 'neg' | 'abs' };

/** Kinds ONNX also defines on integer tensors (Relu, Clip, Neg, Abs); the others need floats. */
const INTEGER_KINDS: ReadonlySet<UnaryOp['kind']> = new Set(['none', 'relu', 'clip', 'neg', 'abs']);

/** The op as a scalar function on float64 values (the reference kernel's definition). */
export function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op.kind) {
    case 'erf':
      return erfScalar;
    case 'exp':
      return Math.exp;
    case 'sqrt':
      return Math.sqrt;
    case 'neg':
      return (x) => -x;
    case 'abs':
      return Math.abs;
    default:
      return activationFn(op);
  }
}

function checkUnaryDtype(op: UnaryOp, dtype: DType): void {
  if (!DTYPES[dtype].isFloat && !INTEGER_KINDS.has(op.kind)) {
    throw new ValueError(`Unary '${op.kind}': needs a float tensor, got ${dtype}`);
  }
}

/** The card of every unary op (`unary`); the op is its attribute. */
export const unaryCard: OpCard<UnaryOp> = {
  name: 'Unary',
  label: (op) => `Unary '${op.kind}'`,
  shape: ([x]) => x!,
  reference([x], op) {
    checkUnaryDtype(op, x!.dtype);
    const f = unaryFn(op);
    const src = x!.dataSync();
    const out = DTYPES[x!.dtype].make(x!.size);
    for (let i = 0; i < src.length; i++) out[i] = castValue(x!.dtype, f(src[i]!));
    return new Tensor(out, x!.shape, x!.dtype);
  },
  cpu(inputs, op) {
    const x = inputs[0]!;
    if (x.dtype !== 'float32') return unaryCard.reference(inputs, op);
    const src = x.f32();
    const out = outputBuffer(src.length); // every kind below writes all of it
    const n = src.length;
    // One loop per kind, so each stays monomorphic (a shared loop calling f would not inline).
    switch (op.kind) {
      case 'erf':
        for (let i = 0; i < n; i++) out[i] = erfF32(src[i]!);
        break;
      case 'exp':
        for (let i = 0; i < n; i++) out[i] = Math.exp(src[i]!);
        break;
      case 'sqrt':
        for (let i = 0; i < n; i++) out[i] = Math.sqrt(src[i]!);
        break;
      case 'neg':
        for (let i = 0; i < n; i++) out[i] = -src[i]!;
        break;
      case 'abs':
        for (let i = 0; i < n; i++) out[i] = Math.abs(src[i]!);
        break;
      default:
        if (wasmActivate(op, src, out)) break;
        out.set(src);
        activateInPlace(out, op);
    }
    return new Tensor(out, x.shape, 'float32');
  },
  grad: unaryGrad,
};

/**
 * Applies a pointwise function (`UnaryOp`) elementwise; same shape and dtype. Integer tensors take
 * only relu, clip, neg and abs (else a ValueError).
 *
 * @example
 * ```ts
 * import { Tensor, unary } from 'lightconv';
 *
 * const y = unary(Tensor.fromArray([-1, 0.5], [2]), { kind: 'leaky_relu', alpha: 0.1 }); // [-0.1, 0.5]
 * ```
 */
export function unary(x: Tensor, op: UnaryOp): Tensor {
  return apply(unaryCard, [x], op);
}

/**
 * max(0, x), elementwise.
 *
 * @example
 * ```ts
 * import { Tensor, relu } from 'lightconv';
 *
 * relu(Tensor.fromArray([-2, 3], [2])).toArray(); // [0, 3]
 * ```
 */
export const relu = (x: Tensor): Tensor => unary(x, { kind: 'relu' });
/**
 * ONNX and PyTorch both default the slope to 0.01.
 *
 * @example
 * ```ts
 * import { Tensor, leakyRelu } from 'lightconv';
 *
 * leakyRelu(Tensor.fromArray([-1, 2], [2])).toArray(); // [-0.01, 2]
 * ```
 */
export const leakyRelu = (x: Tensor, alpha = 0.01): Tensor => unary(x, { kind: 'leaky_relu', alpha });
/**
 * max(0, min(1, alpha·x + beta)); defaults are ONNX's (PyTorch's Hardsigmoid is alpha 1/6, beta
 * 0.5).
 *
 * @example
 * ```ts
 * import { Tensor, hardSigmoid } from 'lightconv';
 *
 * const y = hardSigmoid(Tensor.zeros([2]), 1 / 6, 0.5); // PyTorch's: [0.5, 0.5]
 * ```
 */
export const hardSigmoid = (x: Tensor, alpha = 0.2, beta = 0.5): Tensor => unary(x, { kind: 'hard_sigmoid', alpha, beta });
/**
 * x · relu6(x + 3) / 6, elementwise (MobileNetV3's h-swish).
 *
 * @example
 * ```ts
 * import { Tensor, hardSwish } from 'lightconv';
 *
 * hardSwish(Tensor.fromArray([-4, 0, 1, 4], [4])).toArray(); // [0, 0, 0.666…, 4]
 * ```
 */
export const hardSwish = (x: Tensor): Tensor => unary(x, { kind: 'hard_swish' });
/**
 * 1 / (1 + e^−x), elementwise.
 *
 * @example
 * ```ts
 * import { Tensor, sigmoid } from 'lightconv';
 *
 * sigmoid(Tensor.zeros([3])).toArray(); // [0.5, 0.5, 0.5]
 * ```
 */
export const sigmoid = (x: Tensor): Tensor => unary(x, { kind: 'sigmoid' });
/**
 * x · sigmoid(x) (Swish), elementwise: EfficientNet's activation.
 *
 * @example
 * ```ts
 * import { Tensor, silu } from 'lightconv';
 *
 * const y = silu(Tensor.randn([1, 16, 8, 8], { seed: 0 }));
 * ```
 */
export const silu = (x: Tensor): Tensor => unary(x, { kind: 'silu' });
/**
 * Hyperbolic tangent, elementwise.
 *
 * @example
 * ```ts
 * import { Tensor, tanh } from 'lightconv';
 *
 * tanh(Tensor.fromArray([0, 1], [2])).toArray(); // [0, 0.7616…]
 * ```
 */
export const tanh = (x: Tensor): Tensor => unary(x, { kind: 'tanh' });
/**
 * The error function, elementwise (float64-accurate, see `erfScalar`).
 *
 * @example
 * ```ts
 * import { Tensor, erf } from 'lightconv';
 *
 * erf(Tensor.fromArray([0, 1], [2])).toArray(); // [0, 0.8427…]
 * ```
 */
export const erf = (x: Tensor): Tensor => unary(x, { kind: 'erf' });
/**
 * e^x, elementwise.
 *
 * @example
 * ```ts
 * import { Tensor, exp } from 'lightconv';
 *
 * exp(Tensor.fromArray([0, 1], [2])).toArray(); // [1, 2.7182…]
 * ```
 */
export const exp = (x: Tensor): Tensor => unary(x, { kind: 'exp' });
/**
 * Square root, elementwise (NaN below 0).
 *
 * @example
 * ```ts
 * import { Tensor, sqrt } from 'lightconv';
 *
 * sqrt(Tensor.fromArray([4, 9], [2])).toArray(); // [2, 3]
 * ```
 */
export const sqrt = (x: Tensor): Tensor => unary(x, { kind: 'sqrt' });
/**
 * −x, elementwise (integer tensors too).
 *
 * @example
 * ```ts
 * import { Tensor, neg } from 'lightconv';
 *
 * neg(Tensor.fromArray([1, -2], [2])).toArray(); // [-1, 2]
 * ```
 */
export const neg = (x: Tensor): Tensor => unary(x, { kind: 'neg' });
/**
 * |x|, elementwise (integer tensors too).
 *
 * @example
 * ```ts
 * import { Tensor, abs } from 'lightconv';
 *
 * abs(Tensor.fromArray([1, -2], [2])).toArray(); // [1, 2]
 * ```
 */
export const abs = (x: Tensor): Tensor => unary(x, { kind: 'abs' });

/** Clip to [min, max]. As in ONNX (numpy's clip), min > max sets every value to max. */
export function clipOp(min = -Infinity, max = Infinity): UnaryOp {
  return { kind: 'clip', min: Math.min(min, max), max };
}

/**
 * Clamps every value to [min, max] (either bound optional); see `clipOp` for min > max.
 *
 * @example
 * ```ts
 * import { Tensor, clip } from 'lightconv';
 *
 * clip(Tensor.fromArray([-1, 0.5, 9], [3]), 0, 6).toArray(); // [0, 0.5, 6] (ReLU6)
 * ```
 */
export const clip = (x: Tensor, min?: number, max?: number): Tensor => unary(x, clipOp(min, max));

/**
 * erf(x) in float64, accurate to about 1 ulp: the rational approximations of Sun's fdlibm
 * s_erf.c (also used by musl, Go and FreeBSD). erf is odd, so work with |x|:
 * - |x| < 0.84375: erf(x) = x + x·P(x²)/Q(x²);
 * - |x| < 1.25: erf(x) = erx + P(s)/Q(s) with s = |x| − 1 (erx = erf(1) rounded to float);
 * - |x| < 6: erf(x) = 1 − exp(−x² − 0.5625 + R(1/x²)/S(1/x²)) / |x|, one R/S pair below
 *   1/0.35 and another above (the asymptotic form of erfc);
 * - |x| ≥ 6: erf(x) = 1 to double precision.
 * fdlibm splits x² into two parts to keep exp's argument exact; without the split the error
 * stays below 2e-16, far beneath float32's resolution.
 */
export function erfScalar(x: number): number {
  if (Number.isNaN(x)) return x;
  const ax = Math.abs(x);
  if (ax < 0.84375) {
    const z = x * x;
    return x + x * (polyval(ERF_PP, z) / polyval(ERF_QQ, z));
  }
  let r: number;
  if (ax < 1.25) {
    const s = ax - 1;
    r = ERF_ERX + polyval(ERF_PA, s) / polyval(ERF_QA, s);
  } else if (ax < 6) {
    const s = 1 / (ax * ax);
    const g = ax < 1 / 0.35 ? polyval(ERF_RA, s) / polyval(ERF_SA, s) : polyval(ERF_RB, s) / polyval(ERF_SB, s);
    r = 1 - Math.exp(-ax * ax - 0.5625 + g) / ax;
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
}

/**
 * erf(x) to float32 accuracy for the fast kernel (the reference keeps erfScalar): the odd
 * rational approximation x·P(x²)/Q(x²) on (−4, 4) that Eigen uses for float erf, and exactly ±1
 * beyond (where erf rounds to ±1 in float32 — exactly, so that GELU's x·(1 + erf) is 0 far out).
 * Measured against erfScalar on every 1e-5 step of [−6, 6]: at most 1.2e-7 absolute, 2 float32
 * ulps. NaN stays NaN, ±∞ gives ±1 and −0 gives −0. About 4× faster than erfScalar, whose branches and exp dominate GELU's
 * cost in ConvNeXt and ViT.
 */
export function erfF32(a: number): number {
  if (!(a > -4 && a < 4)) return a !== a ? a : a > 0 ? 1 : -1;
  const x = a;
  const z = x * x;
  let p = z * -2.72614225801306e-10 + 2.77068142495902e-8;
  p = z * p - 2.10102402082508e-6;
  p = z * p - 5.69250639462346e-5;
  p = z * p - 7.34990630326855e-4;
  p = z * p - 2.95459980854025e-3;
  p = z * p - 1.60960333262415e-2;
  let q = z * -1.45660718464996e-5 - 2.13374055278905e-4;
  q = z * q - 1.68282697438203e-3;
  q = z * q - 7.37332916720468e-3;
  q = z * q - 1.42647390514189e-2;
  return (x * p) / q;
}

/** c[0] + c[1]·z + c[2]·z² + … (Horner). */
function polyval(c: readonly number[], z: number): number {
  let r = 0;
  for (let i = c.length - 1; i >= 0; i--) r = r * z + c[i]!;
  return r;
}

// fdlibm's coefficients, lowest degree first; each Q/S polynomial with its leading 1 written out.
const ERF_ERX = 8.45062911510467529297e-1;
const ERF_PP = [1.28379167095512558561e-1, -3.25042107247001499370e-1, -2.84817495755985104766e-2, -5.77027029648944159157e-3, -2.37630166566501626084e-5];
const ERF_QQ = [1, 3.97917223959155352819e-1, 6.50222499887672944485e-2, 5.08130628187576562776e-3, 1.32494738004321644526e-4, -3.96022827877536812320e-6];
const ERF_PA = [
  -2.36211856075265944077e-3, 4.14856118683748331666e-1, -3.72207876035701323847e-1, 3.18346619901161753674e-1, -1.10894694282396677476e-1,
  3.54783043256182359371e-2, -2.16637559486879084300e-3,
];
const ERF_QA = [
  1, 1.06420880400844228286e-1, 5.40397917702171048937e-1, 7.18286544141962662868e-2, 1.26171219808761642112e-1, 1.36370839120290507362e-2,
  1.19844998467991074170e-2,
];
const ERF_RA = [
  -9.86494403484714822705e-3, -6.93858572707181764372e-1, -1.05586262253232909814e1, -6.23753324503260060396e1, -1.62396669462573470355e2,
  -1.84605092906711035994e2, -8.12874355063065934246e1, -9.81432934416914548592,
];
const ERF_SA = [
  1, 1.96512716674392571292e1, 1.37657754143519042600e2, 4.34565877475229228821e2, 6.45387271733267880336e2, 4.29008140027567833386e2,
  1.08635005541779435134e2, 6.57024977031928170135, -6.04244152148580987438e-2,
];
const ERF_RB = [
  -9.86494292470009928597e-3, -7.99283237680523006574e-1, -1.77579549177547519889e1, -1.60636384855821916062e2, -6.37566443368389627722e2,
  -1.02509513161107724954e3, -4.83519191608651397019e2,
];
const ERF_SB = [
  1, 3.03380607434824582924e1, 3.25792512996573918826e2, 1.53672958608443695994e3, 3.19985821950859553908e3, 2.55305040643316442583e3,
  4.74528541206955367215e2, -2.24409524465858183362e1,
];

// ---------------------------------------------------------------------------------------------
// Binary

/** The binary ops of `binary`, by their ONNX names. */
export type BinaryOp = 'Add' | 'Sub' | 'Mul' | 'Div' | 'Pow';

/** The output dtype: both operands share it, except Pow, whose exponent may differ (output = base's). */
function binaryDtype(op: BinaryOp, a: Tensor, b: Tensor): DType {
  if (op !== 'Pow' && a.dtype !== b.dtype) throw new ValueError(`${op}: operands are ${a.dtype} and ${b.dtype}; they must have the same dtype`);
  return a.dtype;
}

/**
 * The op on two float64 values, with the integer semantics of `dtype` where storing the result
 * does not give them already (typed arrays wrap and truncate on store; castValue does int64).
 */
export function binaryFn(op: BinaryOp, dtype: DType): (a: number, b: number) => number {
  const isInt = !DTYPES[dtype].isFloat;
  switch (op) {
    case 'Add':
      return (a, b) => a + b;
    case 'Sub':
      return (a, b) => a - b;
    case 'Mul':
      // A 32-bit product can exceed 2^53; imul keeps its low 32 bits exact.
      return dtype === 'int32' || dtype === 'uint32' ? Math.imul : (a, b) => a * b;
    case 'Div':
      return isInt ? (a, b) => (b === 0 ? 0 : Math.trunc(a / b)) : (a, b) => a / b;
    case 'Pow':
      return isInt ? intPow : powScalar;
  }
}

/**
 * a^b as C's pow (and NumPy, onnxruntime, PyTorch): 1^b = 1 and (−1)^±∞ = 1, where
 * JavaScript's Math.pow gives NaN for 1^NaN, 1^±∞ and (−1)^±∞. Everything else is Math.pow,
 * which follows C already (a^±0 = 1 even for NaN a, (−0)^−1 = −∞, negative a to a
 * non-integer b is NaN).
 */
export function powScalar(a: number, b: number): number {
  if (a === 1 || (a === -1 && (b === Infinity || b === -Infinity))) return 1;
  return Math.pow(a, b);
}

/**
 * Pow of an integer base (the output keeps its dtype): by squaring when b is a non-negative
 * integer, so that every partial product below 2^53 is exact (Math.pow may be an ulp off for
 * large results); otherwise powScalar. castValue then rejects an int64 result beyond 2^53.
 */
function intPow(a: number, b: number): number {
  if (!(Number.isInteger(b) && b >= 0 && b <= 2 ** 32)) return powScalar(a, b);
  let r = 1;
  let base = a;
  for (let e = b; e > 0; e = Math.floor(e / 2)) {
    if (e % 2 === 1) r *= base;
    if (e > 1) base *= base;
    if (!Number.isFinite(r) || !Number.isFinite(base)) return powScalar(a, b);
  }
  return r;
}

/** Element strides of `shape` read as `out` under broadcasting: 0 along broadcast dims. */
function broadcastStrides(shape: Shape, out: Shape): number[] {
  const own = stridesOf(shape);
  const lead = out.length - shape.length;
  return out.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : own[i - lead]!));
}

/** The output's dims with each operand's element strides along them. */
interface RowPlan {
  readonly dims: Float64Array;
  readonly sa: Float64Array;
  readonly sb: Float64Array;
}

/**
 * The output as rows: dims of size 1 are dropped and neighbouring dims merged where both
 * operands are contiguous (or both broadcast) across them. Along the last dim each operand's
 * stride is then 1 or 0, so every pattern becomes rows of one of three kinds — vector∘vector,
 * vector∘scalar, scalar∘vector:
 * same shape → one vector∘vector row; a scalar operand → one vector∘scalar row;
 * NCHW ∘ [N,C,1,1] → N·C rows of H·W against one value each (the SE gate);
 * NCHW ∘ [C,1,1] → N·C such rows, the channel index wrapping; NCHW ∘ [W] → N·C·H vector rows.
 */
function rowPlan(out: Shape, a: Shape, b: Shape): RowPlan {
  const fa = broadcastStrides(a, out);
  const fb = broadcastStrides(b, out);
  const dims: number[] = [];
  const sa: number[] = [];
  const sb: number[] = [];
  out.forEach((d, i) => {
    if (d === 1) return;
    const k = dims.length - 1;
    if (k >= 0 && sa[k] === fa[i]! * d && sb[k] === fb[i]! * d) {
      dims[k]! *= d;
      sa[k] = fa[i]!;
      sb[k] = fb[i]!;
    } else {
      dims.push(d);
      sa.push(fa[i]!);
      sb.push(fb[i]!);
    }
  });
  if (dims.length === 0) return { dims: Float64Array.of(1), sa: Float64Array.of(1), sb: Float64Array.of(1) };
  return { dims: Float64Array.from(dims), sa: Float64Array.from(sa), sb: Float64Array.from(sb) };
}

/** Calls visit(outOffset, aOffset, bOffset, length) for each row of the plan, in output order. */
function forEachRow(p: RowPlan, visit: (o: number, ia: number, ib: number, n: number) => void): void {
  const last = p.dims.length - 1;
  const n = p.dims[last]!;
  let rows = 1;
  for (let d = 0; d < last; d++) rows *= p.dims[d]!;
  if (n === 0 || rows === 0) return;
  const idx = f64Array(last);
  let ia = 0;
  let ib = 0;
  for (let r = 0; r < rows; r++) {
    visit(r * n, ia, ib, n);
    for (let d = last - 1; d >= 0; d--) {
      ia += p.sa[d]!;
      ib += p.sb[d]!;
      if (++idx[d]! < p.dims[d]!) break;
      ia -= p.sa[d]! * p.dims[d]!;
      ib -= p.sb[d]! * p.dims[d]!;
      idx[d] = 0;
    }
  }
}

type FloatArray = Float32Array | Float64Array;
/** y[o+k] = a[ia+k] ∘ b[ib+k] for k < n, with one operand held fixed in the scalar variants. */
type RowKernel = (y: FloatArray, o: number, a: FloatArray, ia: number, b: FloatArray, ib: number, n: number) => void;

/** Float row kernels per op: [vector∘vector, vector∘scalar, scalar∘vector]. */
const ROW_KERNELS: Readonly<Record<BinaryOp, readonly [RowKernel, RowKernel, RowKernel]>> = {
  Add: [
    (y, o, a, ia, b, ib, n) => { for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! + b[ib + k]!; },
    (y, o, a, ia, b, ib, n) => { const s = b[ib]!; for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! + s; },
    (y, o, a, ia, b, ib, n) => { const s = a[ia]!; for (let k = 0; k < n; k++) y[o + k] = s + b[ib + k]!; },
  ],
  Sub: [
    (y, o, a, ia, b, ib, n) => { for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! - b[ib + k]!; },
    (y, o, a, ia, b, ib, n) => { const s = b[ib]!; for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! - s; },
    (y, o, a, ia, b, ib, n) => { const s = a[ia]!; for (let k = 0; k < n; k++) y[o + k] = s - b[ib + k]!; },
  ],
  Mul: [
    (y, o, a, ia, b, ib, n) => { for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! * b[ib + k]!; },
    (y, o, a, ia, b, ib, n) => { const s = b[ib]!; for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! * s; },
    (y, o, a, ia, b, ib, n) => { const s = a[ia]!; for (let k = 0; k < n; k++) y[o + k] = s * b[ib + k]!; },
  ],
  Div: [
    (y, o, a, ia, b, ib, n) => { for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! / b[ib + k]!; },
    (y, o, a, ia, b, ib, n) => { const s = b[ib]!; for (let k = 0; k < n; k++) y[o + k] = a[ia + k]! / s; },
    (y, o, a, ia, b, ib, n) => { const s = a[ia]!; for (let k = 0; k < n; k++) y[o + k] = s / b[ib + k]!; },
  ],
  Pow: [
    (y, o, a, ia, b, ib, n) => { for (let k = 0; k < n; k++) y[o + k] = powScalar(a[ia + k]!, b[ib + k]!); },
    (y, o, a, ia, b, ib, n) => { const s = b[ib]!; for (let k = 0; k < n; k++) y[o + k] = powScalar(a[ia + k]!, s); },
    (y, o, a, ia, b, ib, n) => { const s = a[ia]!; for (let k = 0; k < n; k++) y[o + k] = powScalar(s, b[ib + k]!); },
  ],
};

/**
 * Float32 fast path for plans of at most two dims (same shapes, a scalar, the SE gate
 * NCHW ∘ [N,C,1,1], residual adds): monomorphic Float32Array loops with the op chosen outside
 * them. The generic row kernels above see Float32Array and Float64Array and, called through a
 * closure per row, ran at ~4 ns per element on the SE gate. Returns false for other plans.
 */
function f32Rows(op: BinaryOp, p: RowPlan, A: Float32Array, B: Float32Array, Y: Float32Array): boolean {
  if (op === 'Pow' || p.dims.length > 2) return false;
  const two = p.dims.length === 2;
  const rows = two ? p.dims[0]! : 1;
  const n = p.dims[two ? 1 : 0]!;
  const ra = two ? p.sa[0]! : 0;
  const rb = two ? p.sb[0]! : 0;
  const sa = p.sa[two ? 1 : 0]!;
  const sb = p.sb[two ? 1 : 0]!;
  if ((sa !== 0 && sa !== 1) || (sb !== 0 && sb !== 1)) return false;
  const kind = sa === 0 ? 2 : sb === 0 ? 1 : 0;
  if (wasmBinaryRows(op, rows, n, ra, rb, kind, A, B, Y)) return true;
  for (let r = 0, o = 0; r < rows; r++, o += n) {
    const ia = r * ra;
    const ib = r * rb;
    if (kind === 0) {
      if (op === 'Add') for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! + B[ib + k]!;
      else if (op === 'Sub') for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! - B[ib + k]!;
      else if (op === 'Mul') for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! * B[ib + k]!;
      else for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! / B[ib + k]!;
    } else if (kind === 1) {
      const v = B[ib]!;
      if (op === 'Add') for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! + v;
      else if (op === 'Sub') for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! - v;
      else if (op === 'Mul') for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! * v;
      else for (let k = 0; k < n; k++) Y[o + k] = A[ia + k]! / v;
    } else {
      const v = A[ia]!;
      if (op === 'Add') for (let k = 0; k < n; k++) Y[o + k] = v + B[ib + k]!;
      else if (op === 'Sub') for (let k = 0; k < n; k++) Y[o + k] = v - B[ib + k]!;
      else if (op === 'Mul') for (let k = 0; k < n; k++) Y[o + k] = v * B[ib + k]!;
      else for (let k = 0; k < n; k++) Y[o + k] = v / B[ib + k]!;
    }
  }
  return true;
}

/** The card of the broadcasting binary ops (`binary`); the op is its attribute. */
export const binaryCard: OpCard<BinaryOp> = {
  name: 'Binary',
  label: (op) => op,
  shape: ([a, b], op) => broadcastShapes(a!, b!, op),

  reference([a, b], op) {
    const dtype = binaryDtype(op, a!, b!);
    const f = binaryFn(op, dtype);
    const shape = broadcastShapes(a!.shape, b!.shape, op);
    const sa = broadcastStrides(a!.shape, shape);
    const sb = broadcastStrides(b!.shape, shape);
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    const out = DTYPES[dtype].make(sizeOf(shape));
    for (let i = 0; i < out.length; i++) {
      let rest = i;
      let ia = 0;
      let ib = 0;
      for (let d = shape.length - 1; d >= 0; d--) {
        const k = rest % shape[d]!;
        rest = (rest - k) / shape[d]!;
        ia += k * sa[d]!;
        ib += k * sb[d]!;
      }
      out[i] = castValue(dtype, f(ad[ia]!, bd[ib]!));
    }
    return new Tensor(out, shape, dtype);
  },

  cpu([a, b], op) {
    const dtype = binaryDtype(op, a!, b!);
    const shape = broadcastShapes(a!.shape, b!.shape, op);
    // Every element is written below, so an arena array (outputBuffer) needs no clearing.
    const out = dtype === 'float32' ? outputBuffer(sizeOf(shape)) : DTYPES[dtype].make(sizeOf(shape));
    const plan = rowPlan(shape, a!.shape, b!.shape);
    if (a!.dtype === 'float32' && b!.dtype === 'float32' && out instanceof Float32Array && f32Rows(op, plan, a!.dataSync() as Float32Array, b!.dataSync() as Float32Array, out)) {
      return new Tensor(out, shape, dtype);
    }
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    const last = plan.dims.length - 1;
    const sa = plan.sa[last]!;
    const sb = plan.sb[last]!;
    if (DTYPES[dtype].isFloat && a!.dtype === b!.dtype) {
      const kernel = ROW_KERNELS[op][sa === 0 ? 2 : sb === 0 ? 1 : 0];
      const y = out as FloatArray;
      forEachRow(plan, (o, ia, ib, n) => kernel(y, o, ad as FloatArray, ia, bd as FloatArray, ib, n));
    } else {
      // Integer and mixed-dtype Pow: the generic strided rows with the dtype's semantics.
      const f = binaryFn(op, dtype);
      forEachRow(plan, (o, ia, ib, n) => {
        for (let k = 0; k < n; k++) out[o + k] = castValue(dtype, f(ad[ia + k * sa]!, bd[ib + k * sb]!));
      });
    }
    return new Tensor(out, shape, dtype);
  },
  grad: binaryGrad,
};

/**
 * Applies `op` elementwise with numpy broadcasting; both operands share a dtype (Pow's exponent may
 * differ). Throws a ShapeError when the shapes do not broadcast, a ValueError for mixed dtypes.
 *
 * @example
 * ```ts
 * import { Tensor, binary } from 'lightconv';
 *
 * const y = binary(Tensor.ones([2, 3]), Tensor.fromArray([1, 2, 3], [3]), 'Mul'); // [2, 3]
 * ```
 */
export function binary(a: Tensor, b: Tensor, op: BinaryOp): Tensor {
  return apply(binaryCard, [a, b], op);
}

/**
 * a + b with numpy broadcasting (see `binary`).
 *
 * @example
 * ```ts
 * import { Tensor, add } from 'lightconv';
 *
 * add(Tensor.ones([2, 2]), Tensor.scalar(1)).toArray(); // [2, 2, 2, 2]
 * ```
 */
export const add = (a: Tensor, b: Tensor): Tensor => binary(a, b, 'Add');
/**
 * a − b with numpy broadcasting (see `binary`).
 *
 * @example
 * ```ts
 * import { Tensor, sub } from 'lightconv';
 *
 * sub(Tensor.fromArray([3, 4], [2]), Tensor.scalar(1)).toArray(); // [2, 3]
 * ```
 */
export const sub = (a: Tensor, b: Tensor): Tensor => binary(a, b, 'Sub');
/**
 * a · b with numpy broadcasting (see `binary`).
 *
 * @example
 * ```ts
 * import { Tensor, mul } from 'lightconv';
 *
 * const scaled = mul(Tensor.randn([1, 3, 4, 4], { seed: 0 }), Tensor.fromArray([1, 2, 3], [1, 3, 1, 1]));
 * ```
 */
export const mul = (a: Tensor, b: Tensor): Tensor => binary(a, b, 'Mul');
/**
 * a / b with numpy broadcasting (integer division truncates; see `binary`).
 *
 * @example
 * ```ts
 * import { Tensor, div } from 'lightconv';
 *
 * div(Tensor.fromArray([3, 4], [2]), Tensor.scalar(2)).toArray(); // [1.5, 2]
 * ```
 */
export const div = (a: Tensor, b: Tensor): Tensor => binary(a, b, 'Div');
/**
 * a^b with numpy broadcasting; the result has the base's dtype (see `binary`).
 *
 * @example
 * ```ts
 * import { Tensor, pow } from 'lightconv';
 *
 * pow(Tensor.fromArray([2, 3], [2]), Tensor.scalar(2)).toArray(); // [4, 9]
 * ```
 */
export const pow = (a: Tensor, b: Tensor): Tensor => binary(a, b, 'Pow');

// ---------------------------------------------------------------------------------------------
// Gradients (autograd). Plain loops over float64 values; see src/kernels/grad.ts.

/** dy/dx of a unary op at x (y = f(x) given too); activations follow activationDerivative's kink rules. */
function unaryDerivative(op: UnaryOp): (x: number, y: number) => number {
  switch (op.kind) {
    case 'erf':
      return (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x);
    case 'exp':
      return (_x, y) => y;
    case 'sqrt':
      return (_x, y) => 0.5 / y;
    case 'neg':
      return () => -1;
    case 'abs':
      return (x) => (x > 0 ? 1 : x < 0 ? -1 : 0); // PyTorch: sign(x), 0 at 0
    default:
      return activationDerivative(op);
  }
}

function unaryGrad([x]: readonly Tensor[], op: UnaryOp, y: Tensor, g: Tensor): (Tensor | null)[] {
  if (!isFloat(x!)) return [null];
  const xd = x!.dataSync();
  const yd = y.dataSync();
  const gd = g.dataSync();
  const out = gradArray(x!);
  const n = out.length;
  // The activations of the CNNs here get monomorphic loops (same rules as activationDerivative).
  switch (op.kind) {
    case 'relu':
      for (let i = 0; i < n; i++) out[i] = xd[i]! > 0 ? gd[i]! : 0;
      break;
    case 'leaky_relu': {
      const s = op.alpha;
      for (let i = 0; i < n; i++) out[i] = xd[i]! > 0 ? gd[i]! : s * gd[i]!;
      break;
    }
    case 'hard_swish':
      for (let i = 0; i < n; i++) {
        const v = xd[i]!;
        out[i] = v < -3 ? 0 : v <= 3 ? gd[i]! * (v / 3 + 0.5) : gd[i]!;
      }
      break;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = gd[i]! * yd[i]! * (1 - yd[i]!);
      break;
    default: {
      const d = unaryDerivative(op);
      for (let i = 0; i < n; i++) out[i] = gd[i]! * d(xd[i]!, yd[i]!);
    }
  }
  return [gradOf(x!, out)];
}

/**
 * Gradients of a broadcasting binary op: computed at the output's shape, then summed over the
 * broadcast dims of each operand. Pow: d/da = b·a^(b−1); d/db = a^b·ln a, taken as 0 where a = 0
 * and b ≥ 0 (PyTorch's convention, which avoids 0·(−∞)).
 */
function binaryGrad([a, b]: readonly Tensor[], op: BinaryOp, y: Tensor, g: Tensor): (Tensor | null)[] {
  const sameType = a!.dtype === b!.dtype && g.dtype === (a!.dtype === 'float64' ? 'float64' : 'float32');
  if ((op === 'Add' || op === 'Sub' || op === 'Mul') && a!.size === y.size && b!.size === y.size && isFloat(a!) && sameType) {
    // Same shapes (residual adds, gates of equal size): no broadcasting to undo.
    const gd = g.dataSync();
    if (op === 'Add') return [gradOf(a!, gd), gradOf(b!, gd)];
    const ga = gradArray(a!);
    const gb = gradArray(b!);
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    if (op === 'Sub') for (let i = 0; i < gd.length; i++) (ga[i] = gd[i]!), (gb[i] = -gd[i]!);
    else for (let i = 0; i < gd.length; i++) (ga[i] = gd[i]! * bd[i]!), (gb[i] = gd[i]! * ad[i]!);
    return [gradOf(a!, ga), gradOf(b!, gb)];
  }
  const shape = y.shape;
  const n = y.size;
  const sa = broadcastStrides(a!.shape, shape);
  const sb = broadcastStrides(b!.shape, shape);
  const ad = a!.dataSync();
  const bd = b!.dataSync();
  const gd = g.dataSync();
  const yd = y.dataSync();
  const ga = f64Array(n);
  const gb = f64Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  let ia = 0;
  let ib = 0;
  for (let i = 0; i < n; i++) {
    const av = ad[ia]!;
    const bv = bd[ib]!;
    const gv = gd[i]!;
    switch (op) {
      case 'Add':
        ga[i] = gv;
        gb[i] = gv;
        break;
      case 'Sub':
        ga[i] = gv;
        gb[i] = -gv;
        break;
      case 'Mul':
        ga[i] = gv * bv;
        gb[i] = gv * av;
        break;
      case 'Div':
        ga[i] = gv / bv;
        gb[i] = (-gv * av) / (bv * bv);
        break;
      case 'Pow':
        ga[i] = gv * bv * Math.pow(av, bv - 1);
        gb[i] = av === 0 && bv >= 0 ? 0 : gv * yd[i]! * Math.log(av);
        break;
    }
    for (let d = shape.length - 1; d >= 0; d--) {
      ia += sa[d]!;
      ib += sb[d]!;
      if (++idx[d]! < shape[d]!) break;
      ia -= sa[d]! * shape[d]!;
      ib -= sb[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return [isFloat(a!) ? unbroadcast(ga, shape, a!) : null, isFloat(b!) ? unbroadcast(gb, shape, b!) : null];
}
