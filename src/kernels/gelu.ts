import { DTYPES } from '../core/dtype.js';
import { outputBuffer } from '../core/storage.js';
import { ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { Tensor } from '../core/tensor.js';
import { erfF32, erfScalar } from './elementwise.js';
import { gradArray, gradOf } from './grad.js';
import { wasmGelu } from './wasm/elementwise.js';

/**
 * Gelu (ONNX opset 20): x·Φ(x) with the exact normal CDF ('none', via erf) or PyTorch's tanh
 * approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) ('tanh').
 */
export type GeluApproximate = 'none' | 'tanh';

/** Attributes of Gelu: the exact form ('none') or the tanh approximation. */
export interface GeluAttrs {
  readonly approximate: GeluApproximate;
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const C = 0.044715;

function geluExact(x: number): number {
  return 0.5 * x * (1 + erfScalar(x * SQRT1_2));
}

function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_PI * (x + C * x * x * x)));
}

/** d/dx: Φ(x) + x·φ(x) for the exact form; the tanh form's derivative for the approximation. */
function geluDerivative(x: number, approximate: GeluApproximate): number {
  if (approximate === 'none') return 0.5 * (1 + erfScalar(x * SQRT1_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
  const t = Math.tanh(SQRT_2_PI * (x + C * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_PI * (1 + 3 * C * x * x);
}

function checkFloat(x: Tensor): void {
  if (!DTYPES[x.dtype].isFloat) throw new ValueError(`Gelu: needs a float tensor, got ${x.dtype}`);
}

/**
 * The Gelu op card (attributes: {@link GeluAttrs}); {@link gelu} applies it. Float inputs only;
 * differentiable.
 */
export const geluCard: OpCard<GeluAttrs> = {
  name: 'Gelu',
  shape: ([x], { approximate }) => {
    if (approximate !== 'none' && approximate !== 'tanh') throw new ValueError(`Gelu: approximate must be 'none' or 'tanh', got '${approximate}'`);
    return x!;
  },
  reference([x], { approximate }) {
    checkFloat(x!);
    const src = x!.dataSync();
    const f = approximate === 'tanh' ? geluTanh : geluExact;
    const out = DTYPES[x!.dtype].make(src.length);
    for (let i = 0; i < src.length; i++) out[i] = f(src[i]!);
    return new Tensor(out, x!.shape, x!.dtype);
  },
  cpu(inputs, attrs) {
    const x = inputs[0]!;
    if (x.dtype !== 'float32') return geluCard.reference(inputs, attrs);
    const src = x.f32();
    const out = outputBuffer(src.length);
    if (attrs.approximate === 'tanh') for (let i = 0; i < src.length; i++) out[i] = geluTanh(src[i]!);
    else if (!wasmGelu(src, out)) for (let i = 0; i < src.length; i++) out[i] = 0.5 * src[i]! * (1 + erfF32(src[i]! * SQRT1_2)); // float32-accurate erf
    return new Tensor(out, x.shape, 'float32');
  },
  grad([x], { approximate }, _y, g) {
    const xd = x!.dataSync();
    const gd = g.dataSync();
    const gx = gradArray(x!);
    for (let i = 0; i < gx.length; i++) gx[i] = gd[i]! * geluDerivative(xd[i]!, approximate);
    return [gradOf(x!, gx)];
  },
};

/**
 * Gelu, elementwise: x·Φ(x) with the exact normal CDF (`approximate` 'none', the default) or
 * PyTorch's tanh approximation ('tanh'); the result in x's dtype. Throws ValueError for a
 * non-float tensor or an unknown `approximate`.
 *
 * @example
 * ```ts
 * import { Tensor, gelu } from 'lightconv';
 *
 * gelu(Tensor.fromArray([-1, 0, 1], [3])).toArray(); // [-0.1587…, 0, 0.8413…]
 * const y = gelu(Tensor.randn([2, 8], { seed: 0 }), 'tanh');
 * ```
 */
export function gelu(x: Tensor, approximate: GeluApproximate = 'none'): Tensor {
  return apply(geluCard, [x], { approximate });
}
