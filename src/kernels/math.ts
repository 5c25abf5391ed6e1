import { type DType, DTYPES, castValue } from '../core/dtype.js';
import { ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, broadcastShapes, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { gradArray, gradOf, isFloat, unbroadcast } from './grad.js';

/**
 * Math functions and activations beyond the fused-epilogue set of elementwise.ts: one unary
 * card (Log, Reciprocal, Floor, Ceil, Round, Sign, Softplus, Softsign, Elu, Selu, Celu, Mish,
 * ThresholdedRelu), a broadcasting Max/Min card and PRelu. These are rare in the CNNs' hot
 * paths, so each card's float64 reference is also its CPU kernel; the GPU backend runs them on
 * the CPU with its usual message.
 */

export type MathOp =
  | { readonly kind: 'log' | 'reciprocal' | 'floor' | 'ceil' | 'round' | 'sign' | 'softplus' | 'softsign' | 'mish' }
  | { readonly kind: 'elu' | 'celu' | 'thresholded_relu'; readonly alpha: number }
  | { readonly kind: 'selu'; readonly alpha: number; readonly gamma: number };

/** Kinds ONNX also defines on integer tensors. */
const INTEGER_KINDS: ReadonlySet<MathOp['kind']> = new Set(['sign']);

const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

/** Round half to even (ONNX Round, numpy's rint). */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function mathFn(op: MathOp): (x: number) => number {
  switch (op.kind) {
    case 'log':
      return Math.log;
    case 'reciprocal':
      return (x) => 1 / x;
    case 'floor':
      return Math.floor;
    case 'ceil':
      return Math.ceil;
    case 'round':
      return roundEven;
    case 'sign':
      return (x) => (Number.isNaN(x) ? x : x > 0 ? 1 : x < 0 ? -1 : 0);
    case 'softplus':
      return softplus;
    case 'softsign':
      return (x) => x / (1 + Math.abs(x));
    case 'mish':
      return (x) => x * Math.tanh(softplus(x));
    case 'elu': {
      const a = op.alpha;
      return (x) => (x >= 0 ? x : a * Math.expm1(x));
    }
    case 'celu': {
      const a = op.alpha;
      return (x) => Math.max(0, x) + Math.min(0, a * Math.expm1(x / a));
    }
    case 'selu': {
      const { alpha: a, gamma: g } = op;
      return (x) => (x > 0 ? g * x : g * a * Math.expm1(x));
    }
    case 'thresholded_relu': {
      const a = op.alpha;
      return (x) => (x > a ? x : 0);
    }
  }
}

/** dy/dx at x (y = f(x) given too). Kinks take the right-hand derivative except where PyTorch differs. */
function mathDerivative(op: MathOp): (x: number, y: number) => number {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  switch (op.kind) {
    case 'log':
      return (x) => 1 / x;
    case 'reciprocal':
      return (_x, y) => -y * y;
    case 'floor':
    case 'ceil':
    case 'round':
    case 'sign':
      return () => 0;
    case 'softplus':
      return sig;
    case 'softsign':
      return (x) => 1 / ((1 + Math.abs(x)) * (1 + Math.abs(x)));
    case 'mish':
      return (x) => {
        const t = Math.tanh(softplus(x));
        return t + x * (1 - t * t) * sig(x);
      };
    case 'elu': {
      const a = op.alpha;
      return (x, y) => (x > 0 ? 1 : y + a);
    }
    case 'celu': {
      const a = op.alpha;
      return (x) => (x > 0 ? 1 : Math.exp(x / a));
    }
    case 'selu': {
      const { alpha: a, gamma: g } = op;
      return (x) => (x > 0 ? g : g * a * Math.exp(x));
    }
    case 'thresholded_relu': {
      const a = op.alpha;
      return (x) => (x > a ? 1 : 0);
    }
  }
}

/** The card of the `MathOp` functions (`math`); the op is its attribute. */
export const mathCard: OpCard<MathOp> = {
  name: 'Math',
  label: (op) => `Math '${op.kind}'`,
  shape: ([x]) => x!,
  reference([x], op) {
    if (!DTYPES[x!.dtype].isFloat && !INTEGER_KINDS.has(op.kind)) throw new ValueError(`Math '${op.kind}': needs a float tensor, got ${x!.dtype}`);
    const f = mathFn(op);
    const src = x!.dataSync();
    const out = DTYPES[x!.dtype].make(src.length);
    for (let i = 0; i < src.length; i++) out[i] = castValue(x!.dtype, f(src[i]!));
    return new Tensor(out, x!.shape, x!.dtype);
  },
  grad([x], op, y, g) {
    if (!isFloat(x!)) return [null];
    const d = mathDerivative(op);
    const xd = x!.dataSync();
    const yd = y.dataSync();
    const gd = g.dataSync();
    const out = gradArray(x!);
    for (let i = 0; i < out.length; i++) out[i] = gd[i]! * d(xd[i]!, yd[i]!);
    return [gradOf(x!, out)];
  },
};

/**
 * Applies a `MathOp` elementwise; same shape and dtype (only sign takes integer tensors, else a
 * ValueError).
 *
 * @example
 * ```ts
 * import { Tensor, math } from 'lightconv';
 *
 * math(Tensor.fromArray([0.5, 1.5, 2.5], [3]), { kind: 'round' }).toArray(); // [0, 2, 2] (half to even)
 * ```
 */
export function math(x: Tensor, op: MathOp): Tensor {
  return apply(mathCard, [x], op);
}

/**
 * Natural logarithm, elementwise (−Infinity at 0, NaN below).
 *
 * @example
 * ```ts
 * import { Tensor, log } from 'lightconv';
 *
 * log(Tensor.fromArray([1, Math.E], [2])).toArray(); // [0, 1]
 * ```
 */
export const log = (x: Tensor): Tensor => math(x, { kind: 'log' });
/**
 * 1 / x, elementwise.
 *
 * @example
 * ```ts
 * import { Tensor, reciprocal } from 'lightconv';
 *
 * reciprocal(Tensor.fromArray([2, 4], [2])).toArray(); // [0.5, 0.25]
 * ```
 */
export const reciprocal = (x: Tensor): Tensor => math(x, { kind: 'reciprocal' });
/**
 * log(1 + e^x), elementwise, computed without overflow.
 *
 * @example
 * ```ts
 * import { Tensor, softplusOf } from 'lightconv';
 *
 * softplusOf(Tensor.zeros([1])).toArray(); // [0.6931…]
 * ```
 */
export const softplusOf = (x: Tensor): Tensor => math(x, { kind: 'softplus' });
/**
 * x · tanh(softplus(x)), elementwise.
 *
 * @example
 * ```ts
 * import { Tensor, mish } from 'lightconv';
 *
 * const y = mish(Tensor.randn([4], { seed: 0 }));
 * ```
 */
export const mish = (x: Tensor): Tensor => math(x, { kind: 'mish' });
/**
 * x for x > 0, alpha·(e^x − 1) otherwise (alpha default 1).
 *
 * @example
 * ```ts
 * import { Tensor, elu } from 'lightconv';
 *
 * elu(Tensor.fromArray([-1, 2], [2])).toArray(); // [-0.632…, 2]
 * ```
 */
export const elu = (x: Tensor, alpha = 1): Tensor => math(x, { kind: 'elu', alpha });

// ---------------------------------------------------------------------------------------------
// Broadcasting binary helpers

function stridesIn(shape: Shape, out: Shape): number[] {
  const own = stridesOf(shape);
  const lead = out.length - shape.length;
  return out.map((_, i) => (i < lead || shape[i - lead] === 1 ? 0 : own[i - lead]!));
}

/** Calls visit(o, ia, ib) for every output element of the broadcast of a and b, in order. */
export function walk2(out: Shape, a: Shape, b: Shape, visit: (o: number, ia: number, ib: number) => void): void {
  const sa = stridesIn(a, out);
  const sb = stridesIn(b, out);
  const r = out.length;
  const idx = new Array<number>(r).fill(0);
  let ia = 0;
  let ib = 0;
  const n = sizeOf(out);
  for (let o = 0; o < n; o++) {
    visit(o, ia, ib);
    for (let d = r - 1; d >= 0; d--) {
      ia += sa[d]!;
      ib += sb[d]!;
      if (++idx[d]! < out[d]!) break;
      ia -= sa[d]! * out[d]!;
      ib -= sb[d]! * out[d]!;
      idx[d] = 0;
    }
  }
}

function sameDtype(op: string, a: Tensor, b: Tensor): DType {
  if (a.dtype !== b.dtype) throw new ValueError(`${op}: inputs are ${a.dtype} and ${b.dtype}; they must match`);
  return a.dtype;
}

// ---------------------------------------------------------------------------------------------
// Max / Min (elementwise, two inputs; the ONNX adapter folds the variadic form)

export type MinMaxOp = 'Max' | 'Min';

/** The card of elementwise Max/Min with numpy broadcasting (`maximum`, `minimum`). */
export const minMaxCard: OpCard<MinMaxOp> = {
  name: 'MinMax',
  label: (op) => op,
  shape: ([a, b], op) => broadcastShapes(a!, b!, op),
  reference([a, b], op) {
    const dtype = sameDtype(op, a!, b!);
    const shape = broadcastShapes(a!.shape, b!.shape, op);
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    const out = DTYPES[dtype].make(sizeOf(shape));
    // NaN propagates (numpy's maximum/minimum, onnxruntime).
    const pick = op === 'Max' ? (x: number, y: number) => (x >= y || Number.isNaN(x) ? x : y) : (x: number, y: number) => (x <= y || Number.isNaN(x) ? x : y);
    walk2(shape, a!.shape, b!.shape, (o, ia, ib) => (out[o] = pick(ad[ia]!, bd[ib]!)));
    return new Tensor(out, shape, dtype);
  },
  /** The gradient goes to the input that was picked; on a tie it is split equally (PyTorch's maximum/minimum). */
  grad([a, b], op, y, g) {
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    const gd = g.dataSync();
    const ga = new Float64Array(y.size);
    const gb = new Float64Array(y.size);
    walk2(y.shape, a!.shape, b!.shape, (o, ia, ib) => {
      const x = ad[ia]!;
      const z = bd[ib]!;
      if (x === z) {
        ga[o] = gd[o]! / 2;
        gb[o] = gd[o]! / 2;
      } else if ((op === 'Max') === x > z) ga[o] = gd[o]!;
      else gb[o] = gd[o]!;
    });
    return [isFloat(a!) ? unbroadcast(ga, y.shape, a!) : null, isFloat(b!) ? unbroadcast(gb, y.shape, b!) : null];
  },
};

/**
 * Elementwise max(a, b) with numpy broadcasting (ONNX Max of two inputs).
 *
 * @example
 * ```ts
 * import { Tensor, maximum } from 'lightconv';
 *
 * maximum(Tensor.fromArray([1, 5], [2]), Tensor.scalar(3)).toArray(); // [3, 5]
 * ```
 */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return apply(minMaxCard, [a, b], 'Max');
}

/**
 * Elementwise min(a, b) with numpy broadcasting (ONNX Min of two inputs).
 *
 * @example
 * ```ts
 * import { Tensor, minimum } from 'lightconv';
 *
 * minimum(Tensor.fromArray([1, 5], [2]), Tensor.scalar(3)).toArray(); // [1, 3]
 * ```
 */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return apply(minMaxCard, [a, b], 'Min');
}

// ---------------------------------------------------------------------------------------------
// PRelu: y = x for x ≥ 0, slope·x otherwise; slope broadcasts to x (unidirectionally).

/** The card of PRelu (`prelu`). */
export const preluCard: OpCard<void> = {
  name: 'PRelu',
  shape([x, s]) {
    const out = broadcastShapes(x!, s!, 'PRelu');
    if (out.length !== x!.length || out.some((d, i) => d !== x![i])) throw new ValueError(`PRelu: slope shape [${s!.join(', ')}] does not broadcast to X's [${x!.join(', ')}]`);
    return x!;
  },
  reference([x, s]) {
    const dtype = sameDtype('PRelu', x!, s!);
    const xd = x!.dataSync();
    const sd = s!.dataSync();
    const out = DTYPES[dtype].make(x!.size);
    walk2(x!.shape, x!.shape, s!.shape, (o, ix, is) => {
      const v = xd[ix]!;
      out[o] = castValue(dtype, v < 0 ? sd[is]! * v : v);
    });
    return new Tensor(out, x!.shape, dtype);
  },
  grad([x, s], _attrs, y, g) {
    const xd = x!.dataSync();
    const sd = s!.dataSync();
    const gd = g.dataSync();
    const gx = gradArray(x!);
    const gs = new Float64Array(y.size);
    walk2(y.shape, x!.shape, s!.shape, (o, ix, is) => {
      const v = xd[ix]!;
      gx[o] = v < 0 ? gd[o]! * sd[is]! : gd[o]!;
      gs[o] = v < 0 ? gd[o]! * v : 0;
    });
    return [isFloat(x!) ? gradOf(x!, gx) : null, isFloat(s!) ? unbroadcast(gs, y.shape, s!) : null];
  },
};

/**
 * x for x ≥ 0, slope·x otherwise; `slope` broadcasts to x (per channel: [C, 1, 1] for NCHW).
 *
 * @example
 * ```ts
 * import { Tensor, prelu } from 'lightconv';
 *
 * const y = prelu(Tensor.randn([1, 2, 4, 4], { seed: 0 }), Tensor.fromArray([0.1, 0.25], [2, 1, 1]));
 * ```
 */
export function prelu(x: Tensor, slope: Tensor): Tensor {
  return apply(preluCard, [x, slope], undefined);
}
