import { DTYPES, castValue } from '../core/dtype.js';
import { ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { broadcastShapes, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { isFloat, unbroadcast } from './grad.js';
import { walk2 } from './math.js';

/**
 * Mod (ONNX opsets 10, 13): the remainder of a / b elementwise, with numpy broadcasting.
 *
 * - `fmod: false` (the default): Python's `%` (numpy.mod): the result takes the sign of the
 *   divisor, r = a − floor(a / b)·b. ONNX defines it for integers; floats get the same rule
 *   (a zero result carries the divisor's sign, as in Python).
 * - `fmod: true`: C's fmod (numpy.fmod): the result takes the sign of the dividend,
 *   r = a − trunc(a / b)·b. JavaScript's `%` is exactly that on float64.
 *
 * Both are exact: every int64 held here is a safe integer (see core/dtype), and the remainder of
 * two float32 values is a float32 value.
 *
 * Division by zero: ONNX leaves integer x mod 0 undefined. Here it is 0 for every integer dtype
 * (numpy's answer, which also warns; it is also what integer Div by zero gives in this engine,
 * src/kernels/elementwise.ts), never an exception mid-graph and never a garbage value. Float
 * x mod 0 is NaN (IEEE, as numpy and C's fmod).
 *
 * Gradient (floats only; integers have none): d/da = 1 and d/db = −q with q = floor(a / b)
 * (fmod false) or trunc(a / b) (fmod true), the derivative away from the jumps where q changes.
 */

export interface ModAttrs {
  /** C fmod (sign of the dividend) instead of Python's % (sign of the divisor). */
  readonly fmod: boolean;
}

/** a mod b on two values of one dtype (see the file comment for the rules). */
export function modScalar(a: number, b: number, fmod: boolean, integer: boolean): number {
  if (b === 0 && integer) return 0;
  const r = a % b;
  if (fmod) return r;
  // Python's %: move a remainder of the other sign than the divisor by one divisor.
  if (r !== 0 && (r < 0) !== (b < 0)) return r + b;
  return r === 0 && !integer ? (b < 0 ? -0 : 0) : r;
}

function checkDtypes(a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new ValueError(`Mod: operands are ${a.dtype} and ${b.dtype}; they must have the same dtype`);
  if (a.dtype === 'bool') throw new ValueError('Mod: bool operands have no remainder');
}

/** The Mod card: one strided loop is both the definition and the kernel (Mod is integer index arithmetic in practice). */
export const modCard: OpCard<ModAttrs> = {
  name: 'Mod',
  shape: ([a, b]) => broadcastShapes(a!, b!, 'Mod'),
  reference([a, b], { fmod }) {
    checkDtypes(a!, b!);
    const dtype = a!.dtype;
    const integer = !DTYPES[dtype].isFloat;
    const shape = broadcastShapes(a!.shape, b!.shape, 'Mod');
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    const out = DTYPES[dtype].make(sizeOf(shape));
    walk2(shape, a!.shape, b!.shape, (i, ia, ib) => {
      out[i] = castValue(dtype, modScalar(ad[ia]!, bd[ib]!, fmod, integer));
    });
    return new Tensor(out, shape, dtype);
  },
  grad([a, b], { fmod }, y, g) {
    if (!isFloat(a!)) return [null, null];
    const ad = a!.dataSync();
    const bd = b!.dataSync();
    const gd = g.dataSync();
    const gb = new Float64Array(y.size);
    walk2(y.shape, a!.shape, b!.shape, (i, ia, ib) => {
      const q = ad[ia]! / bd[ib]!;
      gb[i] = -gd[i]! * (fmod ? Math.trunc(q) : Math.floor(q));
    });
    return [unbroadcast(gd, y.shape, a!), unbroadcast(gb, y.shape, b!)];
  },
};

/**
 * The remainder of a / b elementwise with numpy broadcasting (ONNX Mod): by default with the
 * divisor's sign (Python's %), with `fmod` the dividend's (C's fmod). Integer x mod 0 is 0.
 *
 * @example
 * ```ts
 * import { Tensor, mod } from 'lightconv';
 *
 * const a = Tensor.fromArray([-7, 7], [2], 'int64');
 * mod(a, Tensor.fromArray([3], [1], 'int64')).dataSync(); // [2, 1]
 * mod(a, Tensor.fromArray([3], [1], 'int64'), true).dataSync(); // [-1, 1]
 * ```
 */
export function mod(a: Tensor, b: Tensor, fmod = false): Tensor {
  return apply(modCard, [a, b], { fmod });
}
