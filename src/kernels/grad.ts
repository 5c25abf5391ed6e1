import { DTYPES, type TypedArray, f64Array, f32Array } from '../core/dtype.js';
import { type Shape, sizeOf, stridesOf } from '../core/shape.js';
import type { OpCard } from '../core/op.js';
import { Tensor } from '../core/tensor.js';
import { type Activation, NO_ACTIVATION, activationDerivative } from './activation.js';

/**
 * Small helpers shared by the cards' gradient functions. Gradients are computed with plain loops
 * that accumulate in float64 and are stored in the dtype of the input they belong to (float32 for
 * training, float64 when a gradient check runs the reference kernels in double precision).
 */

/** A zeroed gradient array for `t` (float32 unless t is float64). */
export function gradArray(t: Tensor): Float32Array | Float64Array {
  return t.dtype === 'float64' ? f64Array(t.size) : f32Array(t.size);
}

/** Wraps `data` as the gradient of `t`. */
export function gradOf(t: Tensor, data: TypedArray): Tensor {
  return new Tensor(data, t.shape, t.dtype === 'float64' ? 'float64' : 'float32');
}

/** Whether a tensor can carry a gradient at all (integer inputs such as labels and indices cannot). */
export function isFloat(t: Tensor): boolean {
  return DTYPES[t.dtype].isFloat;
}

/**
 * Sums a gradient of the broadcast shape `full` down to `target` (the reverse of numpy
 * broadcasting: every dim that was added or stretched from 1 is summed over).
 */
export function unbroadcast(g: ArrayLike<number>, full: Shape, target: Tensor): Tensor {
  const out = gradArray(target);
  if (sizeOf(full) === target.size && full.length === target.rank) {
    for (let i = 0; i < out.length; i++) out[i] = g[i]!;
    return gradOf(target, out);
  }
  const lead = full.length - target.rank;
  const ts = stridesOf(target.shape);
  // Stride in the target of each dim of `full` (0 where the target broadcasts).
  const st = full.map((d, i) => (i < lead || target.shape[i - lead] === 1 ? 0 : ts[i - lead]!));
  const acc = f64Array(target.size);
  const n = sizeOf(full);
  if (n === 0) return gradOf(target, out);
  // Merge neighbouring dims that step through the target alike (both summed over, or both
  // contiguous in it): an SE gate's [N, C, 1, 1] from [N, C, H, W] is then [N·C] runs of H·W,
  // each summed in one tight loop instead of one index update per element.
  const sizes: number[] = [];
  const steps: number[] = [];
  for (let d = 0; d < full.length; d++) {
    if (full[d] === 1) continue;
    const k = sizes.length - 1;
    if (k >= 0 && steps[k] === st[d]! * full[d]!) {
      sizes[k] = sizes[k]! * full[d]!;
      steps[k] = st[d]!;
    } else {
      sizes.push(full[d]!);
      steps.push(st[d]!);
    }
  }
  if (sizes.length <= 2) {
    const [rows, len] = sizes.length === 2 ? [sizes[0]!, sizes[1]!] : [1, sizes[0] ?? 1];
    const [rowStep, step] = sizes.length === 2 ? [steps[0]!, steps[1]!] : [0, steps[0] ?? 0];
    for (let r = 0, i = 0; r < rows; r++) {
      const o = r * rowStep;
      if (step === 0) {
        let s = 0;
        for (let j = 0; j < len; j++) s += g[i + j]!;
        acc[o] += s;
      } else for (let j = 0; j < len; j++) acc[o + j * step] += g[i + j]!;
      i += len;
    }
    out.set(acc);
    return gradOf(target, out);
  }
  const idx = new Array<number>(full.length).fill(0);
  let o = 0;
  for (let i = 0; i < n; i++) {
    acc[o] += g[i]!;
    for (let d = full.length - 1; d >= 0; d--) {
      o += st[d]!;
      if (++idx[d]! < full[d]!) break;
      o -= st[d]! * full[d]!;
      idx[d] = 0;
    }
  }
  out.set(acc);
  return gradOf(target, out);
}

/**
 * The gradient before a card's fused activation: dY·act'(z), where z is the card's output
 * without the activation (recomputed with the fast kernel; training graphs rarely fuse).
 */
export function preActivationGrad<A extends { readonly activation: Activation }>(
  card: OpCard<A>,
  inputs: readonly Tensor[],
  attrs: A,
  y: Tensor,
  gOut: Tensor,
): Float32Array | Float64Array {
  const gd = gOut.dataSync() as Float32Array | Float64Array;
  if (attrs.activation.kind === 'none') return gd;
  const plain = { ...attrs, activation: NO_ACTIVATION };
  const z = (card.cpu ? card.cpu(inputs, plain) : card.reference(inputs, plain)).dataSync();
  const d = activationDerivative(attrs.activation);
  const yd = y.dataSync();
  const out = gd instanceof Float64Array ? f64Array(gd.length) : f32Array(gd.length);
  for (let i = 0; i < out.length; i++) out[i] = gd[i]! * d(z[i]!, yd[i]!);
  return out;
}
