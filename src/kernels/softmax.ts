import { DTYPES, f64Array, f32Array } from '../core/dtype.js';
import { ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, normAxis, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * Softmax and LogSoftmax along one axis (ONNX opset ≥ 13 semantics; the ONNX adapter maps
 * the older "flatten to 2-D at axis" form onto this). The axis maximum is subtracted first so
 * that exp never overflows: softmax(x) = exp(x − m) / Σ exp(x − m),
 * log-softmax(x) = (x − m) − log Σ exp(x − m).
 */
export interface SoftmaxAttrs {
  /** May be negative (counted from the end). */
  readonly axis: number;
}

/** The input viewed as [outer, len, inner] around the axis. */
function split(op: string, x: Shape, axis: number): [number, number, number] {
  const a = normAxis(axis, x.length, op);
  return [sizeOf(x.slice(0, a)), x[a]!, sizeOf(x.slice(a + 1))];
}

function checkFloat(op: string, x: Tensor): void {
  if (!DTYPES[x.dtype].isFloat) throw new ValueError(`${op}: needs a float tensor, got ${x.dtype}`);
}

function makeSoftmaxCard(name: 'Softmax' | 'LogSoftmax'): OpCard<SoftmaxAttrs> {
  const log = name === 'LogSoftmax';
  const card: OpCard<SoftmaxAttrs> = {
    name,
    shape([x], { axis }) {
      split(name, x!, axis);
      return x!;
    },

    /** The spec: one axis line at a time, each in three passes (max, sum, output). */
    reference([x], { axis }) {
      checkFloat(name, x!);
      const [outer, len, inner] = split(name, x!.shape, axis);
      const src = x!.dataSync();
      const out = DTYPES[x!.dtype].make(x!.size);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < inner; j++) {
          const at = (l: number) => (o * len + l) * inner + j;
          let m = -Infinity;
          for (let l = 0; l < len; l++) m = Math.max(m, src[at(l)]!);
          let sum = 0;
          for (let l = 0; l < len; l++) sum += Math.exp(src[at(l)]! - m);
          for (let l = 0; l < len; l++) {
            const z = src[at(l)]! - m;
            out[at(l)] = log ? z - Math.log(sum) : Math.exp(z) / sum;
          }
        }
      }
      return new Tensor(out, x!.shape, x!.dtype);
    },

    /**
     * All `inner` lines of one outer block at once, walking memory contiguously with float64
     * running max and sum per line (inner = 1, the last-axis case, is one line).
     */
    cpu(inputs, { axis }) {
      const x = inputs[0]!;
      checkFloat(name, x);
      const [outer, len, inner] = split(name, x.shape, axis);
      const src = x.dataSync();
      const out = DTYPES[x.dtype].make(x.size);
      const max = f64Array(inner);
      const sum = f64Array(inner);
      const block = len * inner;
      for (let o = 0; o < outer; o++) {
        const base = o * block;
        const end = base + block;
        max.fill(-Infinity);
        sum.fill(0);
        for (let i = base; i < end; i += inner) {
          for (let j = 0; j < inner; j++) max[j] = Math.max(max[j]!, src[i + j]!);
        }
        for (let i = base; i < end; i += inner) {
          for (let j = 0; j < inner; j++) {
            const e = Math.exp(src[i + j]! - max[j]!);
            sum[j] += e;
            if (!log) out[i + j] = e;
          }
        }
        if (log) for (let j = 0; j < inner; j++) sum[j] = Math.log(sum[j]!);
        else for (let j = 0; j < inner; j++) sum[j] = 1 / sum[j]!;
        for (let i = base; i < end; i += inner) {
          if (log) for (let j = 0; j < inner; j++) out[i + j] = src[i + j]! - max[j]! - sum[j]!;
          else for (let j = 0; j < inner; j++) out[i + j]! *= sum[j]!;
        }
      }
      return new Tensor(out, x.shape, x.dtype);
    },
    grad: softmaxGradOf(log),
  };
  return card;
}

/** The card of Softmax (`softmax`). */
export const softmaxCard = makeSoftmaxCard('Softmax');
export const logSoftmaxCard = makeSoftmaxCard('LogSoftmax');

/**
 * Softmax along `axis` (default the last): exp(x − max) / Σ exp(x − max), so it never overflows.
 *
 * @example
 * ```ts
 * import { Tensor, softmax } from 'lightconv';
 *
 * softmax(Tensor.fromArray([1, 2, 3], [1, 3])).toArray(); // [0.090…, 0.244…, 0.665…]
 * ```
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return apply(softmaxCard, [x], { axis });
}

/**
 * log(softmax(x)) along `axis` (default the last), computed directly (exact for large logits).
 *
 * @example
 * ```ts
 * import { Tensor, logSoftmax } from 'lightconv';
 *
 * const logp = logSoftmax(Tensor.randn([4, 10], { seed: 0 }), 1);
 * ```
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return apply(logSoftmaxCard, [x], { axis });
}

// ---------------------------------------------------------------------------------------------
// Gradients (autograd), per line along the axis:
// softmax ∂x = y·(dy − Σ dy·y); log-softmax ∂x = dy − exp(y)·Σ dy.

function softmaxGradOf(log: boolean) {
  return ([x]: readonly Tensor[], { axis }: SoftmaxAttrs, y: Tensor, g: Tensor): (Tensor | null)[] => {
    const [outer, len, inner] = split(log ? 'LogSoftmax' : 'Softmax', x!.shape, axis);
    const yd = y.dataSync();
    const gd = g.dataSync();
    const out = x!.dtype === 'float64' ? f64Array(x!.size) : f32Array(x!.size);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const at = (l: number) => (o * len + l) * inner + j;
        let s = 0;
        for (let l = 0; l < len; l++) s += log ? gd[at(l)]! : gd[at(l)]! * yd[at(l)]!;
        for (let l = 0; l < len; l++) {
          const i = at(l);
          out[i] = log ? gd[i]! - Math.exp(yd[i]!) * s : yd[i]! * (gd[i]! - s);
        }
      }
    }
    return [new Tensor(out, x!.shape, x!.dtype === 'float64' ? 'float64' : 'float32')];
  };
}
