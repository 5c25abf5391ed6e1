import { DTYPES } from '../core/dtype.js';
import { outputBuffer } from '../core/storage.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, broadcastShapes, fmtShape, normAxis, sizeOf, stridesOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { gradArray, gradOf, unbroadcast } from './grad.js';

/**
 * LayerNormalization, InstanceNormalization and LRN. LayerNormalization has a float32 CPU kernel
 * for the common case (ConvNeXt's and ViT's channels-last rows with per-channel scale and bias);
 * InstanceNormalization and LRN (rare, in older stems) use their float64 reference as the CPU
 * kernel. The GPU backend runs all of them on the CPU with its usual message.
 */

function checkFloat(op: string, x: Tensor): void {
  if (!DTYPES[x.dtype].isFloat) throw new ValueError(`${op}: needs a float tensor, got ${x.dtype}`);
}

/** Element offsets into a parameter of shape `p` for each position of `inner` (p broadcasts to inner). */
function paramIndex(op: string, what: string, p: Shape, inner: Shape): Int32Array {
  const b = broadcastShapes(inner, p, op);
  if (b.length !== inner.length || b.some((d, i) => d !== inner[i])) {
    throw new ShapeError(`${op}: ${what} shape ${fmtShape(p)} does not broadcast to the normalised shape ${fmtShape(inner)}`);
  }
  const own = stridesOf(p);
  const lead = inner.length - p.length;
  const st = inner.map((_, i) => (i < lead || p[i - lead] === 1 ? 0 : own[i - lead]!));
  const n = sizeOf(inner);
  const out = new Int32Array(n);
  const idx = new Array<number>(inner.length).fill(0);
  let off = 0;
  for (let o = 0; o < n; o++) {
    out[o] = off;
    for (let d = inner.length - 1; d >= 0; d--) {
      off += st[d]!;
      if (++idx[d]! < inner[d]!) break;
      off -= st[d]! * inner[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// LayerNormalization: y = (x − mean) / sqrt(var + eps) · scale + bias over the dims from `axis` on.

/** Attributes of LayerNormalization (`layerNorm`): normalised dims from `axis` on, ε added to the variance. */
export interface LayerNormAttrs {
  /** The first normalised axis (may be negative); ONNX's default is −1. */
  readonly axis: number;
  readonly epsilon: number;
}

function lnSplit(x: Shape, axis: number): { a: number; rows: number; len: number; inner: Shape } {
  const a = normAxis(axis, x.length, 'LayerNormalization');
  const inner = x.slice(a);
  return { a, rows: sizeOf(x.slice(0, a)), len: sizeOf(inner), inner };
}

/** Per-row mean and 1/sqrt(var + eps) (population variance), in float64. */
function rowStats(xd: ArrayLike<number>, rows: number, len: number, eps: number): [Float64Array, Float64Array] {
  const mean = new Float64Array(rows);
  const inv = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * len;
    let s = 0;
    for (let i = 0; i < len; i++) s += xd[o + i]!;
    const m = s / len;
    let v = 0;
    for (let i = 0; i < len; i++) v += (xd[o + i]! - m) ** 2;
    mean[r] = m;
    inv[r] = 1 / Math.sqrt(v / len + eps);
  }
  return [mean, inv];
}

/** The card of LayerNormalization (`layerNorm`). */
export const layerNormCard: OpCard<LayerNormAttrs> = {
  name: 'LayerNormalization',
  shape([x, scale, bias], { axis }) {
    const { inner } = lnSplit(x!, axis);
    if (scale) paramIndex('LayerNormalization', 'Scale', scale, inner);
    if (bias) paramIndex('LayerNormalization', 'B', bias, inner);
    return x!;
  },
  reference([x, scale, bias], { axis, epsilon }) {
    checkFloat('LayerNormalization', x!);
    const { rows, len, inner } = lnSplit(x!.shape, axis);
    const xd = x!.dataSync();
    const si = scale ? paramIndex('LayerNormalization', 'Scale', scale.shape, inner) : null;
    const bi = bias ? paramIndex('LayerNormalization', 'B', bias.shape, inner) : null;
    const sd = scale?.dataSync();
    const bd = bias?.dataSync();
    const [mean, inv] = rowStats(xd, rows, len, epsilon);
    const out = DTYPES[x!.dtype].make(x!.size);
    for (let r = 0; r < rows; r++) {
      const o = r * len;
      for (let i = 0; i < len; i++) {
        const n = (xd[o + i]! - mean[r]!) * inv[r]!;
        out[o + i] = n * (sd ? sd[si![i]!]! : 1) + (bd ? bd[bi![i]!]! : 0);
      }
    }
    return new Tensor(out, x!.shape, x!.dtype);
  },
  /**
   * Float32 input with a full-length scale (and bias) over the normalised dims: typed loops with
   * no index map, statistics accumulated in float64 per row; anything else goes to the reference.
   */
  cpu(inputs, attrs) {
    const [x, scale, bias] = inputs;
    const { rows, len } = lnSplit(x!.shape, attrs.axis);
    // A parameter that broadcasts to the normalised dims (the shape rule checked that) and has
    // as many elements is laid out exactly as one row.
    const plain = (t: Tensor | undefined) => !t || (t.dtype === 'float32' && t.size === len);
    if (x!.dtype !== 'float32' || !plain(scale) || !plain(bias)) return layerNormCard.reference(inputs, attrs);
    const xd = x!.f32();
    const sd = scale?.f32();
    const bd = bias?.f32();
    const out = outputBuffer(x!.size); // every element is written below
    for (let r = 0; r < rows; r++) {
      const o = r * len;
      let sum = 0;
      for (let i = 0; i < len; i++) sum += xd[o + i]!;
      const m = sum / len;
      let v = 0;
      for (let i = 0; i < len; i++) {
        const d = xd[o + i]! - m;
        v += d * d;
      }
      const inv = 1 / Math.sqrt(v / len + attrs.epsilon);
      if (sd && bd) for (let i = 0; i < len; i++) out[o + i] = (xd[o + i]! - m) * inv * sd[i]! + bd[i]!;
      else if (sd) for (let i = 0; i < len; i++) out[o + i] = (xd[o + i]! - m) * inv * sd[i]!;
      else for (let i = 0; i < len; i++) out[o + i] = (xd[o + i]! - m) * inv;
    }
    return new Tensor(out, x!.shape, 'float32');
  },
  /**
   * With n = (x − μ)·σ⁻¹ and dn = dy·scale: dx = σ⁻¹·(dn − mean(dn) − n·mean(dn·n)) per row;
   * dscale = Σ_rows dy·n, dbias = Σ_rows dy (then summed down to the parameters' shapes).
   */
  grad([x, scale, bias], { axis, epsilon }, _y, g) {
    const { rows, len, inner } = lnSplit(x!.shape, axis);
    const xd = x!.dataSync();
    const gd = g.dataSync();
    const si = scale ? paramIndex('LayerNormalization', 'Scale', scale.shape, inner) : null;
    const sd = scale?.dataSync();
    const [mean, inv] = rowStats(xd, rows, len, epsilon);
    const gx = gradArray(x!);
    const gs = new Float64Array(len);
    const gb = new Float64Array(len);
    const dn = new Float64Array(len);
    const nr = new Float64Array(len);
    for (let r = 0; r < rows; r++) {
      const o = r * len;
      let sdn = 0;
      let sdnn = 0;
      for (let i = 0; i < len; i++) {
        const n = (xd[o + i]! - mean[r]!) * inv[r]!;
        const gy = gd[o + i]!;
        nr[i] = n;
        dn[i] = gy * (sd ? sd[si![i]!]! : 1);
        sdn += dn[i]!;
        sdnn += dn[i]! * n;
        gs[i] += gy * n;
        gb[i] += gy;
      }
      sdn /= len;
      sdnn /= len;
      for (let i = 0; i < len; i++) gx[o + i] = inv[r]! * (dn[i]! - sdn - nr[i]! * sdnn);
    }
    return [
      gradOf(x!, gx),
      scale && DTYPES[scale.dtype].isFloat ? unbroadcast(gs, inner, scale) : null,
      bias && DTYPES[bias.dtype].isFloat ? unbroadcast(gb, inner, bias) : null,
    ];
  },
};

/**
 * ONNX LayerNormalization: (x − mean) / sqrt(var + epsilon) · scale + bias over the dims from
 * `axis` (default −1) on; epsilon default 1e-5; scale and bias optional, of the normalised dims'
 * shape.
 *
 * @example
 * ```ts
 * import { Tensor, layerNorm } from 'lightconv';
 *
 * const y = layerNorm(Tensor.randn([2, 8, 64], { seed: 0 }), Tensor.ones([64]), Tensor.zeros([64]));
 * ```
 */
export function layerNorm(x: Tensor, scale?: Tensor, bias?: Tensor, opts: { axis?: number; epsilon?: number } = {}): Tensor {
  const inputs = [x, ...(scale ? [scale] : []), ...(scale && bias ? [bias] : [])];
  if (!scale && bias) throw new ValueError('layerNorm: a bias needs a scale (pass a ones tensor)');
  return apply(layerNormCard, inputs, { axis: opts.axis ?? -1, epsilon: opts.epsilon ?? 1e-5 });
}

export interface LayerNormStatsAttrs extends LayerNormAttrs {
  readonly which: 'mean' | 'invStdDev';
}

/**
 * LayerNormalization's optional outputs: the mean and 1/sqrt(var + eps) of each row, shaped as
 * X with the normalised dims set to 1 (ONNX). Not differentiable (inference outputs).
 */
export const layerNormStatsCard: OpCard<LayerNormStatsAttrs> = {
  name: 'LayerNormalizationStats',
  shape: ([x], { axis }) => {
    const { a } = lnSplit(x!, axis);
    return x!.map((d, i) => (i < a ? d : 1));
  },
  reference([x], { axis, epsilon, which }) {
    checkFloat('LayerNormalization', x!);
    const { rows, len } = lnSplit(x!.shape, axis);
    const [mean, inv] = rowStats(x!.dataSync(), rows, len, epsilon);
    const out = DTYPES[x!.dtype].make(rows);
    out.set(which === 'mean' ? mean : inv);
    return new Tensor(out, layerNormStatsCard.shape([x!.shape], { axis, epsilon, which }), x!.dtype);
  },
};

/**
 * LayerNormalization's optional outputs: the mean or the inverse standard deviation over the
 * normalised dims (those dims set to 1).
 *
 * @example
 * ```ts
 * import { Tensor, layerNormStats } from 'lightconv';
 *
 * layerNormStats(Tensor.randn([2, 8], { seed: 0 }), 'mean').shape; // [2, 1]
 * ```
 */
export function layerNormStats(x: Tensor, which: 'mean' | 'invStdDev', opts: { axis?: number; epsilon?: number } = {}): Tensor {
  return apply(layerNormStatsCard, [x], { axis: opts.axis ?? -1, epsilon: opts.epsilon ?? 1e-5, which });
}

// ---------------------------------------------------------------------------------------------
// InstanceNormalization: per (n, c), over the spatial dims; scale and B are per channel.

export interface InstanceNormAttrs {
  readonly epsilon: number;
}

function inSplit(x: Shape, scale: Shape, bias: Shape): { n: number; c: number; len: number } {
  if (x.length < 3) throw new ShapeError(`InstanceNormalization: input shape ${fmtShape(x)} needs rank ≥ 3 (N, C, spatial…)`);
  const c = x[1]!;
  if (scale.length !== 1 || scale[0] !== c || bias.length !== 1 || bias[0] !== c) {
    throw new ShapeError(`InstanceNormalization: scale ${fmtShape(scale)} and B ${fmtShape(bias)} must both be [${c}] for input ${fmtShape(x)}`);
  }
  return { n: x[0]!, c, len: sizeOf(x.slice(2)) };
}

/** The card of InstanceNormalization (`instanceNorm`). */
export const instanceNormCard: OpCard<InstanceNormAttrs> = {
  name: 'InstanceNormalization',
  shape([x, s, b]) {
    inSplit(x!, s!, b!);
    return x!;
  },
  reference([x, s, b], { epsilon }) {
    checkFloat('InstanceNormalization', x!);
    const { n, c, len } = inSplit(x!.shape, s!.shape, b!.shape);
    const xd = x!.dataSync();
    const sd = s!.dataSync();
    const bd = b!.dataSync();
    const [mean, inv] = rowStats(xd, n * c, len, epsilon);
    const out = DTYPES[x!.dtype].make(x!.size);
    for (let r = 0; r < n * c; r++) {
      const ch = r % c;
      for (let i = r * len; i < (r + 1) * len; i++) out[i] = (xd[i]! - mean[r]!) * inv[r]! * sd[ch]! + bd[ch]!;
    }
    return new Tensor(out, x!.shape, x!.dtype);
  },
  grad([x, s, b], { epsilon }, _y, g) {
    const { n, c, len } = inSplit(x!.shape, s!.shape, b!.shape);
    const xd = x!.dataSync();
    const sd = s!.dataSync();
    const gd = g.dataSync();
    const [mean, inv] = rowStats(xd, n * c, len, epsilon);
    const gx = gradArray(x!);
    const gs = gradArray(s!);
    const gb = gradArray(b!);
    for (let r = 0; r < n * c; r++) {
      const ch = r % c;
      const o = r * len;
      let sdn = 0;
      let sdnn = 0;
      for (let i = 0; i < len; i++) {
        const nv = (xd[o + i]! - mean[r]!) * inv[r]!;
        sdn += gd[o + i]!;
        sdnn += gd[o + i]! * nv;
      }
      gs[ch] += sdnn;
      gb[ch] += sdn;
      for (let i = 0; i < len; i++) {
        const nv = (xd[o + i]! - mean[r]!) * inv[r]!;
        gx[o + i] = inv[r]! * sd[ch]! * (gd[o + i]! - sdn / len - (nv * sdnn) / len);
      }
    }
    return [gradOf(x!, gx), gradOf(s!, gs), gradOf(b!, gb)];
  },
};

/**
 * ONNX InstanceNormalization: each (n, c) plane normalised over its spatial dims, then scale[c]·x +
 * bias[c]; epsilon default 1e-5.
 *
 * @example
 * ```ts
 * import { Tensor, instanceNorm } from 'lightconv';
 *
 * const y = instanceNorm(Tensor.randn([1, 3, 8, 8], { seed: 0 }), Tensor.ones([3]), Tensor.zeros([3]));
 * ```
 */
export function instanceNorm(x: Tensor, scale: Tensor, bias: Tensor, epsilon = 1e-5): Tensor {
  return apply(instanceNormCard, [x, scale, bias], { epsilon });
}

// ---------------------------------------------------------------------------------------------
// LRN (across channels): y = x / (bias + alpha/size · Σ_window x²)^beta, the window
// [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉] clipped to the channels.

/** Attributes of LRN (`lrn`), ONNX's: window `size` across channels, alpha, beta, bias. */
export interface LrnAttrs {
  readonly size: number;
  readonly alpha: number;
  readonly beta: number;
  readonly bias: number;
}

function lrnSplit(x: Shape, size: number): { n: number; c: number; len: number } {
  if (x.length < 3) throw new ShapeError(`LRN: input shape ${fmtShape(x)} needs rank ≥ 3 (N, C, spatial…)`);
  if (!Number.isSafeInteger(size) || size < 1) throw new ShapeError(`LRN: size ${size} must be a positive integer`);
  return { n: x[0]!, c: x[1]!, len: sizeOf(x.slice(2)) };
}

/** The denominators' bases s = bias + alpha/size · Σ_window x², per element. */
function lrnBase(xd: ArrayLike<number>, { n, c, len }: { n: number; c: number; len: number }, a: LrnAttrs): Float64Array {
  const lo = Math.floor((a.size - 1) / 2);
  const hi = Math.ceil((a.size - 1) / 2);
  const s = new Float64Array(n * c * len);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const o = (b * c + ch) * len;
      for (let k = Math.max(0, ch - lo); k <= Math.min(c - 1, ch + hi); k++) {
        const ko = (b * c + k) * len;
        for (let i = 0; i < len; i++) s[o + i] += xd[ko + i]! * xd[ko + i]!;
      }
      for (let i = 0; i < len; i++) s[o + i] = a.bias + (a.alpha / a.size) * s[o + i]!;
    }
  }
  return s;
}

/** The card of LRN (`lrn`). */
export const lrnCard: OpCard<LrnAttrs> = {
  name: 'LRN',
  shape([x], { size }) {
    lrnSplit(x!, size);
    return x!;
  },
  reference([x], attrs) {
    checkFloat('LRN', x!);
    const dims = lrnSplit(x!.shape, attrs.size);
    const xd = x!.dataSync();
    const s = lrnBase(xd, dims, attrs);
    const out = DTYPES[x!.dtype].make(x!.size);
    for (let i = 0; i < out.length; i++) out[i] = xd[i]! / Math.pow(s[i]!, attrs.beta);
    return new Tensor(out, x!.shape, x!.dtype);
  },
  /** dx_j = dy_j·s_j^−β − 2αβ/size · x_j · Σ_{c: j ∈ window(c)} dy_c·x_c·s_c^(−β−1). */
  grad([x], attrs, _y, g) {
    const dims = lrnSplit(x!.shape, attrs.size);
    const { n, c, len } = dims;
    const xd = x!.dataSync();
    const gd = g.dataSync();
    const s = lrnBase(xd, dims, attrs);
    const t = new Float64Array(s.length);
    for (let i = 0; i < t.length; i++) t[i] = gd[i]! * xd[i]! * Math.pow(s[i]!, -attrs.beta - 1);
    // Channel j lies in the window of c when c − lo ≤ j ≤ c + hi, i.e. c ∈ [j − hi, j + lo].
    const lo = Math.floor((attrs.size - 1) / 2);
    const hi = Math.ceil((attrs.size - 1) / 2);
    const k2 = (2 * attrs.alpha * attrs.beta) / attrs.size;
    const gx = gradArray(x!);
    for (let b = 0; b < n; b++) {
      for (let j = 0; j < c; j++) {
        const o = (b * c + j) * len;
        for (let i = 0; i < len; i++) {
          let acc = 0;
          for (let ch = Math.max(0, j - hi); ch <= Math.min(c - 1, j + lo); ch++) acc += t[(b * c + ch) * len + i]!;
          gx[o + i] = gd[o + i]! * Math.pow(s[o + i]!, -attrs.beta) - k2 * xd[o + i]! * acc;
        }
      }
    }
    return [gradOf(x!, gx)];
  },
};

/**
 * ONNX LRN: x / (bias + alpha/size · Σ x² over `size` neighbouring channels)^beta (AlexNet's local
 * response normalisation).
 *
 * @example
 * ```ts
 * import { Tensor, lrn } from 'lightconv';
 *
 * const y = lrn(Tensor.randn([1, 16, 8, 8], { seed: 0 }), { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 });
 * ```
 */
export function lrn(x: Tensor, attrs: LrnAttrs): Tensor {
  return apply(lrnCard, [x], attrs);
}
