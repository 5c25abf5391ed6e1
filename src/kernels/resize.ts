import { DTYPES, f32Array, f64Array, i32Array } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { gradOf, isFloat } from './grad.js';

/**
 * Resize (ONNX Resize 10–19, Upsample 7–9): nearest, linear and cubic interpolation over any
 * axes. Every mode is separable: output index j of an axis reads a few input indices with fixed
 * weights (1 tap for nearest, 2 for linear, 4 for cubic, more with antialias when shrinking),
 * so the kernel resamples one axis at a time, and the gradient is the same weighted scatter in
 * reverse. The weights depend only on the geometry, never on x, so every mode is differentiable.
 *
 * The tap rules follow ONNX's reference (onnx/backend/test/case/node/resize.py): the input
 * coordinate x_original of output index j comes from the coordinate mode and the axis' scale
 * (for align_corners and the crop mode, the resized length is in·scale, a float); linear and
 * cubic read the n indices nearest x_original with edge clamping, nearest rounds it by
 * `nearestMode`.
 */

export type ResizeMode = 'nearest' | 'linear' | 'cubic';
/**
 * How output index j maps to an input coordinate (ONNX coordinate_transformation_mode):
 * 'half_pixel' (the default, (j + 0.5)/scale − 0.5), 'pytorch_half_pixel' (as half_pixel, except
 * for a length-1 output), 'align_corners' (corner pixels aligned), 'asymmetric' (j/scale),
 * 'half_pixel_symmetric', 'tf_half_pixel_for_nn' and 'tf_crop_and_resize' (samples the `roi`
 * box, with the extrapolation value outside the input).
 */
export type CoordinateMode =
  | 'half_pixel'
  | 'half_pixel_symmetric'
  | 'pytorch_half_pixel'
  | 'align_corners'
  | 'asymmetric'
  | 'tf_half_pixel_for_nn'
  | 'tf_crop_and_resize';
/** How nearest mode rounds an input coordinate to an index (ONNX nearest_mode; default 'round_prefer_floor'). */
export type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';

export const RESIZE_MODES: readonly ResizeMode[] = ['nearest', 'linear', 'cubic'];
export const COORDINATE_MODES: readonly CoordinateMode[] = [
  'half_pixel',
  'half_pixel_symmetric',
  'pytorch_half_pixel',
  'align_corners',
  'asymmetric',
  'tf_half_pixel_for_nn',
  'tf_crop_and_resize',
];
export const NEAREST_MODES: readonly NearestMode[] = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

/** Resize's attributes, every one resolved ({@link resize} fills them in from {@link ResizeOptions}). */
export interface ResizeAttrs {
  readonly mode: ResizeMode;
  readonly coordinateMode: CoordinateMode;
  readonly nearestMode: NearestMode;
  /** Cubic's A (ONNX default −0.75; PyTorch's bicubic uses the same). */
  readonly cubicA: number;
  /** Zero the weights of taps outside the input and renormalise (linear, cubic). */
  readonly excludeOutside: boolean;
  /** Output value where tf_crop_and_resize samples outside the input. */
  readonly extrapolationValue: number;
  /** Widen linear/cubic filters by 1/scale when shrinking an axis (ONNX Resize-18). */
  readonly antialias: boolean;
  /** Per axis of x: the scale the coordinate rule uses (out/in when sizes were given). */
  readonly scales: readonly number[];
  /** The output shape. */
  readonly sizes: readonly number[];
  /** tf_crop_and_resize's region: [start_0…start_r−1, end_0…end_r−1], normalised coordinates. */
  readonly roi?: readonly number[];
}

function check(x: Shape, a: ResizeAttrs): void {
  const r = x.length;
  const what = `Resize of ${fmtShape(x)}`;
  if (a.scales.length !== r) throw new ShapeError(`${what}: ${a.scales.length} scales for rank ${r}`);
  if (a.sizes.length !== r) throw new ShapeError(`${what}: ${a.sizes.length} output sizes for rank ${r}`);
  a.scales.forEach((s, i) => {
    if (!(Number.isFinite(s) && s > 0)) throw new ShapeError(`${what}: scale ${s} on axis ${i} must be positive and finite`);
  });
  a.sizes.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`${what}: output size ${d} on axis ${i} must be a non-negative integer`);
    if (d > 0 && x[i] === 0) throw new ShapeError(`${what}: axis ${i} is empty but the output size is ${d}`);
  });
  if (a.coordinateMode === 'tf_crop_and_resize' && (!a.roi || a.roi.length !== 2 * r)) {
    throw new ShapeError(`${what}: tf_crop_and_resize needs a roi of ${2 * r} values, got ${a.roi?.length ?? 0}`);
  }
}

/** The input coordinate of output index j (float), per ONNX's coordinate_transformation_mode. */
function originalCoord(j: number, inLen: number, outLen: number, scale: number, a: ResizeAttrs, axis: number, rank: number): number {
  const resized = scale * inLen; // a float: ONNX's reference uses it, not the integer length
  switch (a.coordinateMode) {
    case 'half_pixel':
      return (j + 0.5) / scale - 0.5;
    case 'half_pixel_symmetric': {
      const offset = (inLen / 2) * (1 - outLen / resized);
      return offset + (j + 0.5) / scale - 0.5;
    }
    case 'pytorch_half_pixel':
      return resized === 1 ? -0.5 : (j + 0.5) / scale - 0.5;
    case 'align_corners':
      return resized === 1 ? 0 : (j * (inLen - 1)) / (resized - 1);
    case 'asymmetric':
      return j / scale;
    case 'tf_half_pixel_for_nn':
      return (j + 0.5) / scale;
    case 'tf_crop_and_resize': {
      const start = a.roi![axis]!;
      const end = a.roi![axis + rank]!;
      const x = resized === 1 ? ((end - start) * (inLen - 1)) / 2 : (j * (end - start) * (inLen - 1)) / (resized - 1);
      return x + start * (inLen - 1);
    }
  }
}

function cubicWeight(t: number, A: number): number {
  const x = Math.abs(t);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

/**
 * One axis' taps: output j reads idx[j·k + t] with weight w[j·k + t], t < k. `outside[j]` marks
 * tf_crop_and_resize samples outside the input (their weights are 0; the value is set after).
 */
interface AxisTaps {
  readonly k: number;
  readonly idx: Int32Array;
  readonly w: Float64Array;
  readonly outside: Uint8Array | null;
}

function axisTaps(inLen: number, outLen: number, scale: number, a: ResizeAttrs, axis: number, rank: number): AxisTaps {
  // Antialias widens the filter by 1/scale when shrinking (scale < 1); tap count stays even.
  const s = a.antialias && scale < 1 ? scale : 1;
  // ONNX: start = floor(−1/s) + 1 (linear), floor(−2/s) + 1 (cubic); taps base + start … base + 1 − start.
  const start = a.mode === 'nearest' ? 0 : 1 - Math.ceil((a.mode === 'linear' ? 1 : 2) / s);
  const k = a.mode === 'nearest' ? 1 : 2 - 2 * start;
  const idx = i32Array(outLen * k);
  const w = f64Array(outLen * k);
  const outside = a.coordinateMode === 'tf_crop_and_resize' ? (DTYPES.uint8.make(outLen) as Uint8Array) : null;
  const clamp = (i: number) => Math.min(Math.max(i, 0), inLen - 1);
  for (let j = 0; j < outLen; j++) {
    const x = originalCoord(j, inLen, outLen, scale, a, axis, rank);
    const o = j * k;
    if (outside && (x < 0 || x > inLen - 1)) {
      outside[j] = 1;
      for (let t = 0; t < k; t++) idx[o + t] = 0; // weight 0
      continue;
    }
    // ratio in (0, 1]: the pixel left of x is preferred, so an integral x has ratio 1.
    const base = Number.isInteger(x) ? x - 1 : Math.floor(x);
    const ratio = x - base;
    if (a.mode === 'nearest') {
      let pick: number;
      if (ratio === 1) pick = base + 1;
      else if (a.nearestMode === 'floor') pick = base;
      else if (a.nearestMode === 'ceil') pick = base + 1;
      else if (a.nearestMode === 'round_prefer_floor') pick = ratio <= 0.5 ? base : base + 1;
      else pick = ratio < 0.5 ? base : base + 1;
      idx[o] = clamp(pick);
      w[o] = 1;
      continue;
    }
    let sum = 0;
    for (let t = 0; t < k; t++) {
      const d = (start + t - ratio) * s; // signed distance from x, in filter units
      const wt = a.mode === 'linear' ? Math.max(0, 1 - Math.abs(d)) : cubicWeight(d, a.cubicA);
      const i = base + start + t;
      idx[o + t] = clamp(i);
      w[o + t] = a.excludeOutside && (i < 0 || i >= inLen) ? 0 : wt;
      sum += w[o + t]!;
    }
    // Antialiased filters are normalised by ONNX; so are the ones that lost taps to exclude_outside.
    if ((a.antialias || a.excludeOutside) && sum !== 0) for (let t = 0; t < k; t++) w[o + t] = w[o + t]! / sum;
  }
  return { k, idx, w, outside };
}

/** Whether an axis' taps copy the input as it is (scale 1 with the usual coordinate modes). */
function isIdentity(t: AxisTaps, inLen: number, outLen: number): boolean {
  if (inLen !== outLen || t.outside?.some((v) => v !== 0)) return false;
  for (let j = 0; j < outLen; j++) {
    let own = 0;
    for (let q = 0; q < t.k; q++) {
      const wq = t.w[j * t.k + q]!;
      if (t.idx[j * t.k + q] === j) own += wq;
      else if (wq !== 0) return false;
    }
    if (own !== 1) return false;
  }
  return true;
}

type Buf = Float32Array | Float64Array;

/** y[o, j, i] = Σ_t w[j, t]·x[o, idx[j, t], i] for x viewed as [outer, inLen, inner]. */
function resampleAxis(x: Buf, outer: number, inLen: number, inner: number, taps: AxisTaps, outLen: number, y: Buf): void {
  const { k, idx, w } = taps;
  for (let o = 0; o < outer; o++) {
    const xo = o * inLen * inner;
    for (let j = 0; j < outLen; j++) {
      const yo = (o * outLen + j) * inner;
      if (k === 1) {
        const from = xo + idx[j]! * inner;
        if (w[j] === 1) {
          for (let i = 0; i < inner; i++) y[yo + i] = x[from + i]!;
          continue;
        }
      }
      for (let i = 0; i < inner; i++) y[yo + i] = 0;
      for (let t = 0; t < k; t++) {
        const wt = w[j * k + t]!;
        if (wt === 0) continue;
        const from = xo + idx[j * k + t]! * inner;
        for (let i = 0; i < inner; i++) y[yo + i] += wt * x[from + i]!;
      }
    }
  }
}

/** The adjoint: gx[o, idx[j, t], i] += w[j, t]·gy[o, j, i]. */
function scatterAxis(gy: Buf, outer: number, inLen: number, inner: number, taps: AxisTaps, outLen: number, gx: Buf): void {
  const { k, idx, w } = taps;
  gx.fill(0);
  for (let o = 0; o < outer; o++) {
    const xo = o * inLen * inner;
    for (let j = 0; j < outLen; j++) {
      const yo = (o * outLen + j) * inner;
      for (let t = 0; t < k; t++) {
        const wt = w[j * k + t]!;
        if (wt === 0) continue;
        const to = xo + idx[j * k + t]! * inner;
        for (let i = 0; i < inner; i++) gx[to + i] += wt * gy[yo + i]!;
      }
    }
  }
}

interface Plan {
  axes: { axis: number; taps: AxisTaps }[];
  outside: (Uint8Array | null)[];
}

function plan(x: Shape, a: ResizeAttrs): Plan {
  const r = x.length;
  const axes: Plan['axes'] = [];
  const outside: (Uint8Array | null)[] = [];
  for (let i = 0; i < r; i++) {
    const inLen = x[i]!;
    const outLen = a.sizes[i]!;
    if (inLen === 0 || outLen === 0) {
      outside.push(null);
      continue;
    }
    const taps = axisTaps(inLen, outLen, a.scales[i]!, a, i, r);
    outside.push(taps.outside?.some((v) => v !== 0) ? taps.outside : null);
    if (!isIdentity(taps, inLen, outLen)) axes.push({ axis: i, taps });
  }
  return { axes, outside };
}

/** Sets every output element outside the crop on some axis to the extrapolation value. */
function fillOutside(y: Buf, shape: Shape, outside: readonly (Uint8Array | null)[], value: number): void {
  if (outside.every((m) => m === null)) return;
  const r = shape.length;
  const n = sizeOf(shape);
  const idx = new Array<number>(r).fill(0);
  for (let e = 0; e < n; e++) {
    for (let d = 0; d < r; d++) {
      if (outside[d]?.[idx[d]!]) {
        y[e] = value;
        break;
      }
    }
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
}

/** The forward pass with intermediates of `make` (float64 for the reference, float32 for the fast kernel). */
function run(x: Tensor, a: ResizeAttrs, make: (n: number) => Buf): Buf {
  const { axes, outside } = plan(x.shape, a);
  const cur = [...x.shape];
  let data: Buf = x.dtype === 'float32' || x.dtype === 'float64' ? (x.dataSync() as Buf) : Float64Array.from(x.dataSync());
  if (sizeOf(a.sizes) === 0) return make(0);
  for (const { axis, taps } of axes) {
    const outer = sizeOf(cur.slice(0, axis));
    const inner = sizeOf(cur.slice(axis + 1));
    const outLen = a.sizes[axis]!;
    const next = make(outer * outLen * inner);
    resampleAxis(data, outer, cur[axis]!, inner, taps, outLen, next);
    cur[axis] = outLen;
    data = next;
  }
  if (axes.length === 0) {
    const copy = make(data.length); // never write into x's own array
    copy.set(data);
    data = copy;
  }
  fillOutside(data, a.sizes, outside, a.extrapolationValue);
  return data;
}

function toOutput(x: Tensor, a: ResizeAttrs, data: Buf): Tensor {
  if (data instanceof Float32Array && x.dtype === 'float32') return new Tensor(data, a.sizes, 'float32');
  if (data instanceof Float64Array && x.dtype === 'float64') return new Tensor(data, a.sizes, 'float64');
  const out = DTYPES[x.dtype].make(data.length);
  // Integer inputs (nearest on masks, label maps): round the interpolated values.
  const round = !isFloat(x);
  for (let i = 0; i < data.length; i++) out[i] = round ? Math.round(data[i]!) : data[i]!;
  return new Tensor(out, a.sizes, x.dtype);
}

/**
 * The Resize op card (attributes: {@link ResizeAttrs}); {@link resize} applies it. Differentiable
 * in x for every mode (the taps' weights depend only on the geometry).
 */
export const resizeCard: OpCard<ResizeAttrs> = {
  name: 'Resize',
  shape([x], a) {
    check(x!, a);
    return [...a.sizes];
  },
  reference([x], a) {
    return toOutput(x!, a, run(x!, a, f64Array));
  },
  cpu([x], a) {
    if (x!.dtype !== 'float32') return resizeCard.reference([x!], a);
    return toOutput(x!, a, run(x!, a, f32Array));
  },
  grad([x], a, _y, g) {
    if (!isFloat(x!)) return [null];
    const { axes } = plan(x!.shape, a);
    const f64 = x!.dtype === 'float64';
    const make = f64 ? f64Array : f32Array;
    // Walk the axes backwards: the shape before each forward step is the input shape with the
    // sizes of the earlier-resampled axes already changed.
    const shapes: number[][] = [];
    const cur = [...x!.shape];
    for (const { axis } of axes) {
      shapes.push([...cur]);
      cur[axis] = a.sizes[axis]!;
    }
    let gd: Buf = g.dataSync() as Buf;
    if (!(gd instanceof Float32Array || gd instanceof Float64Array)) gd = Float64Array.from(gd);
    // The extrapolated elements do not depend on x (their weights are already 0 on that axis).
    for (let s = axes.length - 1; s >= 0; s--) {
      const { axis, taps } = axes[s]!;
      const before = shapes[s]!;
      const outer = sizeOf(before.slice(0, axis));
      const inner = sizeOf(before.slice(axis + 1));
      const next = make(sizeOf(before));
      scatterAxis(gd, outer, before[axis]!, inner, taps, a.sizes[axis]!, next);
      gd = next;
    }
    const out = make(x!.size);
    for (let i = 0; i < out.length; i++) out[i] = gd[i]!;
    // Extrapolated outputs of a crop with no resampled axis would still carry gradient: zero them.
    if (axes.length === 0) {
      const { outside } = plan(x!.shape, a);
      fillOutside(out, x!.shape, outside, 0);
    }
    return [gradOf(x!, out)];
  },
};

/**
 * Resize options as a caller gives them: `sizes` or `scales` (one per axis of x) and the
 * optional ONNX attributes, defaulting as ONNX does (nearest, half_pixel, round_prefer_floor,
 * cubic A −0.75, no exclude_outside, extrapolation 0, no antialias). `roi` (starts then ends,
 * normalised to [0, 1]) is read by tf_crop_and_resize only.
 */
export interface ResizeOptions {
  /** Output shape (all axes); or give `scales` and the shape is floor(in·scale). */
  sizes?: readonly number[];
  scales?: readonly number[];
  mode?: ResizeMode;
  coordinateMode?: CoordinateMode;
  nearestMode?: NearestMode;
  cubicA?: number;
  excludeOutside?: boolean;
  extrapolationValue?: number;
  antialias?: boolean;
  roi?: readonly number[];
}

/**
 * Resizes x (any rank; NCHW images with scales [1, 1, sh, sw]). Defaults: nearest,
 * half_pixel, round_prefer_floor, cubic A −0.75 (ONNX's). Integer tensors come out rounded.
 * Throws ValueError when neither `sizes` nor `scales` is given, ShapeError when their length is
 * not x's rank, or a scale or size is invalid.
 *
 * @example
 * ```ts
 * import { Tensor, resize } from 'lightconv';
 *
 * const x = Tensor.randn([1, 3, 16, 16], { seed: 0 });
 * const up = resize(x, { scales: [1, 1, 2, 2], mode: 'linear' }); // shape [1, 3, 32, 32]
 * const small = resize(x, { sizes: [1, 3, 8, 8], mode: 'cubic', antialias: true });
 * ```
 */
export function resize(x: Tensor, opts: ResizeOptions): Tensor {
  const r = x.rank;
  let { sizes, scales } = opts;
  if (!sizes && !scales) throw new ValueError('resize: give sizes or scales');
  if (scales && scales.length !== r) throw new ShapeError(`resize: ${scales.length} scales for input ${fmtShape(x.shape)}`);
  if (sizes && sizes.length !== r) throw new ShapeError(`resize: ${sizes.length} sizes for input ${fmtShape(x.shape)}`);
  const coordinateMode = opts.coordinateMode ?? 'half_pixel';
  const roi = opts.roi;
  if (!sizes) {
    const crop = coordinateMode === 'tf_crop_and_resize' && roi;
    sizes = x.shape.map((d, i) => Math.floor(d * (crop ? roi[i + r]! - roi[i]! : 1) * scales![i]!));
  }
  if (!scales) scales = sizes.map((d, i) => (x.shape[i] === 0 ? 1 : d / x.shape[i]!));
  return apply(resizeCard, [x], {
    mode: opts.mode ?? 'nearest',
    coordinateMode,
    nearestMode: opts.nearestMode ?? 'round_prefer_floor',
    cubicA: opts.cubicA ?? -0.75,
    excludeOutside: opts.excludeOutside ?? false,
    extrapolationValue: opts.extrapolationValue ?? 0,
    antialias: opts.antialias ?? false,
    scales,
    sizes,
    ...(roi ? { roi } : {}),
  });
}
