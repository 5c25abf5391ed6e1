import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { fmtShape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * Losses, each one fused op card (forward and gradient in float64 loops) with PyTorch's
 * definitions. Reductions: 'mean' (default), 'sum', or 'none' (one value per sample).
 */
export type Reduction = 'mean' | 'sum' | 'none';

/** Options of `crossEntropy` (PyTorch's defaults: no smoothing, no weights, 'mean', ignoreIndex −100). */
export interface CrossEntropyOptions {
  /** ε in [0, 1): the target becomes (1 − ε)·one-hot + ε/C (PyTorch's label_smoothing). */
  labelSmoothing?: number;
  /** Per-class weights [C] (imbalanced data); see `crossEntropy` for how they combine with ε. */
  weight?: Tensor | readonly number[];
  reduction?: Reduction;
  /** Samples with this label add nothing and are not counted (PyTorch's default −100). */
  ignoreIndex?: number;
}

interface CrossEntropyAttrs {
  readonly target: Int32Array;
  readonly weight: Float64Array | null;
  readonly smoothing: number;
  readonly reduction: Reduction;
  readonly ignoreIndex: number;
}

/** Per sample i, the coefficients a[c] with loss_i = −Σ_c a[c]·log p[i, c] (before the reduction's divisor). */
function ceCoefficients(attrs: CrossEntropyAttrs, C: number, i: number, a: Float64Array): boolean {
  const y = attrs.target[i]!;
  a.fill(0);
  if (y === attrs.ignoreIndex) return false;
  const w = attrs.weight;
  const eps = attrs.smoothing;
  for (let c = 0; c < C; c++) a[c] = (eps / C) * (w ? w[c]! : 1);
  a[y] += (1 - eps) * (w ? w[y]! : 1);
  return true;
}

/** The 'mean' divisor: Σ w[y_i] over counted samples (the number of counted samples without weights). */
function ceDivisor(attrs: CrossEntropyAttrs): number {
  let d = 0;
  for (const y of attrs.target) if (y !== attrs.ignoreIndex) d += attrs.weight ? attrs.weight[y]! : 1;
  return d;
}

function logSoftmaxRow(z: ArrayLike<number>, off: number, C: number, out: Float64Array): void {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[off + c]!);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(z[off + c]! - m);
  const lse = m + Math.log(s);
  for (let c = 0; c < C; c++) out[c] = z[off + c]! - lse;
}

export const crossEntropyCard: OpCard<CrossEntropyAttrs> = {
  name: 'CrossEntropy',
  shape([z], attrs) {
    if (z!.length !== 2) throw new ShapeError(`crossEntropy: logits must be [N, C], got ${fmtShape(z!)}`);
    if (attrs.target.length !== z![0]) throw new ShapeError(`crossEntropy: ${attrs.target.length} labels for ${z![0]} rows of logits ${fmtShape(z!)}`);
    if (attrs.weight && attrs.weight.length !== z![1]) throw new ShapeError(`crossEntropy: weight has ${attrs.weight.length} entries for ${z![1]} classes`);
    return attrs.reduction === 'none' ? [z![0]!] : [];
  },
  reference([z], attrs) {
    const [N, C] = z!.shape as [number, number];
    const zd = z!.dataSync();
    const lp = new Float64Array(C);
    const a = new Float64Array(C);
    const per = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      if (!ceCoefficients(attrs, C, i, a)) continue;
      logSoftmaxRow(zd, i * C, C, lp);
      let s = 0;
      for (let c = 0; c < C; c++) s -= a[c]! * lp[c]!;
      per[i] = s;
    }
    const dtype = z!.dtype === 'float64' ? 'float64' : 'float32';
    if (attrs.reduction === 'none') return Tensor.fromArray(per, [N], dtype);
    let total = 0;
    for (const v of per) total += v;
    return Tensor.scalar(attrs.reduction === 'sum' ? total : total / ceDivisor(attrs), dtype);
  },
  // ∂loss_i/∂z[i, j] = p[i, j]·Σ_c a[c] − a[j], scaled by the reduction's divisor and dy.
  grad([z], attrs, _y, g) {
    const [N, C] = z!.shape as [number, number];
    const zd = z!.dataSync();
    const gd = g.dataSync();
    const lp = new Float64Array(C);
    const a = new Float64Array(C);
    const out = z!.dtype === 'float64' ? new Float64Array(z!.size) : new Float32Array(z!.size);
    const div = attrs.reduction === 'mean' ? ceDivisor(attrs) : 1;
    for (let i = 0; i < N; i++) {
      if (!ceCoefficients(attrs, C, i, a)) continue;
      logSoftmaxRow(zd, i * C, C, lp);
      let sa = 0;
      for (let c = 0; c < C; c++) sa += a[c]!;
      const dy = (attrs.reduction === 'none' ? gd[i]! : gd[0]!) / div;
      for (let c = 0; c < C; c++) out[i * C + c] = dy * (Math.exp(lp[c]!) * sa - a[c]!);
    }
    return [new Tensor(out, z!.shape, z!.dtype === 'float64' ? 'float64' : 'float32')];
  },
};

/** Integer labels from a tensor or array, checked against the class count. */
function readLabels(labels: Tensor | ArrayLike<number>, C: number, ignoreIndex: number): Int32Array {
  const src = labels instanceof Tensor ? labels.dataSync() : labels;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const y = src[i]!;
    if (y !== ignoreIndex && !(Number.isInteger(y) && y >= 0 && y < C)) throw new ValueError(`crossEntropy: label ${y} at ${i} is not a class index in [0, ${C})`);
    out[i] = y;
  }
  return out;
}

/**
 * Cross-entropy from logits [N, C] and integer labels [N], with a fused log-softmax — exactly
 * PyTorch's F.cross_entropy: per sample, with w the class weights (1 without) and ε the label
 * smoothing,
 *   loss_i = (1 − ε)·w[y_i]·(−log p[i, y_i]) + (ε/C)·Σ_c w[c]·(−log p[i, c]);
 * 'mean' divides the sum by Σ_i w[y_i] (the weighted count, as nll_loss does — PyTorch uses the
 * same divisor for the smoothing term), 'sum' adds, 'none' returns loss_i.
 *
 * @example
 * ```ts
 * import { Tensor, crossEntropy } from 'lightconv';
 *
 * const logits = Tensor.fromArray([2, 0.5, -1, 0.1, 1.5, 0.3], [2, 3]).requireGrad();
 * const loss = crossEntropy(logits, [0, 1], { labelSmoothing: 0.1 }); // scalar
 * loss.backward(); // logits.grad: [2, 3]
 * ```
 */
export function crossEntropy(logits: Tensor, labels: Tensor | ArrayLike<number>, opts: CrossEntropyOptions = {}): Tensor {
  const C = logits.shape[1] ?? 0;
  const smoothing = opts.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1)) throw new ValueError(`crossEntropy: labelSmoothing must be in [0, 1], got ${smoothing}`);
  const w = opts.weight === undefined ? null : Float64Array.from(opts.weight instanceof Tensor ? opts.weight.dataSync() : opts.weight);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  return apply(crossEntropyCard, [logits], { target: readLabels(labels, C, ignoreIndex), weight: w, smoothing, reduction: opts.reduction ?? 'mean', ignoreIndex });
}

// ---------------------------------------------------------------------------------------------

interface BceAttrs {
  readonly weight: Float64Array | null;
  readonly posWeight: Float64Array | null;
  readonly reduction: Reduction;
}

/** Broadcast of a per-class vector over the last dim (PyTorch's pos_weight), or elementwise when it has x's size. */
function at(v: Float64Array | null, i: number, last: number): number {
  if (!v) return 1;
  return v.length === 1 ? v[0]! : v.length === last ? v[i % last]! : v[i]!;
}

const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));

export const bceWithLogitsCard: OpCard<BceAttrs> = {
  name: 'BinaryCrossEntropyWithLogits',
  shape([x, y], attrs) {
    if (x!.join() !== y!.join()) throw new ShapeError(`binaryCrossEntropyWithLogits: logits ${fmtShape(x!)} and targets ${fmtShape(y!)} differ`);
    return attrs.reduction === 'none' ? x! : [];
  },
  // l = w·[pw·y·softplus(−x) + (1 − y)·softplus(x)] = −w·[pw·y·log σ(x) + (1 − y)·log(1 − σ(x))]
  reference([x, y], attrs) {
    const xd = x!.dataSync();
    const yd = y!.dataSync();
    const last = x!.shape[x!.rank - 1] ?? 1;
    const per = new Float64Array(xd.length);
    let total = 0;
    for (let i = 0; i < xd.length; i++) {
      const pw = at(attrs.posWeight, i, last);
      per[i] = at(attrs.weight, i, last) * (pw * yd[i]! * softplus(-xd[i]!) + (1 - yd[i]!) * softplus(xd[i]!));
      total += per[i]!;
    }
    const dtype = x!.dtype === 'float64' ? 'float64' : 'float32';
    if (attrs.reduction === 'none') return Tensor.fromArray(per, x!.shape, dtype);
    return Tensor.scalar(attrs.reduction === 'sum' ? total : total / xd.length, dtype);
  },
  // ∂l/∂x = w·[σ(x)·(pw·y + 1 − y) − pw·y]; ∂l/∂y = w·[−pw·softplus(−x)... ] is not needed (targets are data).
  grad([x, y], attrs, _out, g) {
    const xd = x!.dataSync();
    const yd = y!.dataSync();
    const gd = g.dataSync();
    const last = x!.shape[x!.rank - 1] ?? 1;
    const out = x!.dtype === 'float64' ? new Float64Array(xd.length) : new Float32Array(xd.length);
    const div = attrs.reduction === 'mean' ? xd.length : 1;
    for (let i = 0; i < xd.length; i++) {
      const pw = at(attrs.posWeight, i, last);
      const s = 1 / (1 + Math.exp(-xd[i]!));
      const dy = (attrs.reduction === 'none' ? gd[i]! : gd[0]!) / div;
      out[i] = dy * at(attrs.weight, i, last) * (s * (pw * yd[i]! + 1 - yd[i]!) - pw * yd[i]!);
    }
    return [new Tensor(out, x!.shape, x!.dtype === 'float64' ? 'float64' : 'float32'), null];
  },
};

/**
 * PyTorch's F.binary_cross_entropy_with_logits: targets in [0, 1] of the logits' shape; optional
 * weight and posWeight.
 *
 * @example
 * ```ts
 * import { Tensor, binaryCrossEntropyWithLogits } from 'lightconv';
 *
 * const logits = Tensor.fromArray([0.3, -1.2, 2.0], [3]);
 * const targets = Tensor.fromArray([1, 0, 1], [3]);
 * const loss = binaryCrossEntropyWithLogits(logits, targets, { posWeight: [2] });
 * ```
 */
export function binaryCrossEntropyWithLogits(
  logits: Tensor,
  targets: Tensor,
  opts: { weight?: Tensor | readonly number[]; posWeight?: Tensor | readonly number[]; reduction?: Reduction } = {},
): Tensor {
  const vec = (v: Tensor | readonly number[] | undefined) => (v === undefined ? null : Float64Array.from(v instanceof Tensor ? v.dataSync() : v));
  return apply(bceWithLogitsCard, [logits, targets], { weight: vec(opts.weight), posWeight: vec(opts.posWeight), reduction: opts.reduction ?? 'mean' });
}

// ---------------------------------------------------------------------------------------------

export const mseCard: OpCard<{ readonly reduction: Reduction }> = {
  name: 'MSELoss',
  shape([x, y], { reduction }) {
    if (x!.join() !== y!.join()) throw new ShapeError(`mseLoss: input ${fmtShape(x!)} and target ${fmtShape(y!)} differ`);
    return reduction === 'none' ? x! : [];
  },
  reference([x, y], { reduction }) {
    const xd = x!.dataSync();
    const yd = y!.dataSync();
    const per = new Float64Array(xd.length);
    let total = 0;
    for (let i = 0; i < xd.length; i++) total += per[i] = (xd[i]! - yd[i]!) ** 2;
    const dtype = x!.dtype === 'float64' ? 'float64' : 'float32';
    if (reduction === 'none') return Tensor.fromArray(per, x!.shape, dtype);
    return Tensor.scalar(reduction === 'sum' ? total : total / xd.length, dtype);
  },
  grad([x, y], { reduction }, _out, g) {
    const xd = x!.dataSync();
    const yd = y!.dataSync();
    const gd = g.dataSync();
    const div = reduction === 'mean' ? xd.length : 1;
    const gx = x!.dtype === 'float64' ? new Float64Array(xd.length) : new Float32Array(xd.length);
    const gy = y!.dtype === 'float64' ? new Float64Array(xd.length) : new Float32Array(xd.length);
    for (let i = 0; i < xd.length; i++) {
      const d = (2 * (xd[i]! - yd[i]!) * (reduction === 'none' ? gd[i]! : gd[0]!)) / div;
      gx[i] = d;
      gy[i] = -d;
    }
    const dt = (t: Tensor) => (t.dtype === 'float64' ? 'float64' : 'float32');
    return [new Tensor(gx, x!.shape, dt(x!)), new Tensor(gy, y!.shape, dt(y!))];
  },
};

/**
 * Mean squared error (PyTorch's F.mse_loss).
 *
 * @example
 * ```ts
 * import { Tensor, mseLoss } from 'lightconv';
 *
 * const loss = mseLoss(Tensor.fromArray([1, 2, 3], [3]), Tensor.fromArray([1, 2, 5], [3])); // 4/3
 * ```
 */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  return apply(mseCard, [input, target], { reduction: opts.reduction ?? 'mean' });
}
