import { outputBuffer } from '../core/storage.js';
import { wasmMeanRows } from './wasm/elementwise.js';
import { wasmPool2d } from './wasm/pooling.js';
import { DTYPES, f64Array, i32Array } from '../core/dtype.js';
import { ShapeError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { gradArray, gradOf } from './grad.js';
import { type AutoPad, outputLength, resolveAutoPad, windowParams } from './window.js';

/**
 * Pooling over the spatial axes of [N, C, spatial…] (1-D, 2-D or 3-D), ONNX semantics.
 * MaxPool ignores padding (padded taps never win); AveragePool divides by the number of input
 * elements under the window unless countIncludePad, in which case padding counts too — but
 * never the part of a ceil_mode window that hangs past the end padding (as PyTorch and
 * onnxruntime do).
 */
export interface PoolAttrs {
  readonly kernel: readonly number[];
  /** Default 1 per axis. */
  readonly strides?: readonly number[];
  /** ONNX order [begin…, end…]; default 0. Ignored unless autoPad is NOTSET. */
  readonly pads?: readonly number[];
  /** Default 1 per axis. */
  readonly dilations?: readonly number[];
  /** Default NOTSET (use pads). */
  readonly autoPad?: AutoPad;
  readonly ceilMode?: boolean;
  /** AveragePool only: count padded taps in the divisor. Default false. */
  readonly countIncludePad?: boolean;
}

/**
 * MaxPool's Indices output. Each index points at the first tap holding the window's max, in the
 * window's row-major scan order (NaN never wins, as in MaxPool; padding never wins). It is a flat
 * index into the whole input, plane·D1·…·Dn + the position within the plane, where the position
 * is row-major (storageOrder 0: h·W + w) or column-major over the spatial dims (storageOrder 1:
 * h + w·H, and h + w·H + d·H·W in 3-D, as onnxruntime computes it). A window whose input taps are
 * all NaN points at its first input tap; one that holds only padding gets −1.
 */
export interface MaxPoolIndicesAttrs extends PoolAttrs {
  /** 0 (default): row-major; 1: column-major over the spatial dims. */
  readonly storageOrder?: 0 | 1;
}

type PoolKind = 'max' | 'avg' | 'argmax';

interface PoolGeometry {
  /** N·C: the planes pooled independently. */
  readonly planes: number;
  readonly inSpatial: readonly number[];
  readonly outSpatial: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  /** Resolved pads, [begin…, end…]. */
  readonly pads: readonly number[];
  readonly outShape: readonly number[];
}

function poolGeometry(op: string, x: Shape, attrs: PoolAttrs): PoolGeometry {
  if (x.length < 3) throw new ShapeError(`${op}: input must be [N, C, spatial…], got ${fmtShape(x)}`);
  const inSpatial = x.slice(2);
  const r = inSpatial.length;
  const w = windowParams(op, r, attrs);
  const pads = resolveAutoPad(attrs.autoPad ?? 'NOTSET', inSpatial, w.kernel, w.strides, w.dilations, w.pads);
  const outSpatial = inSpatial.map((size, i) =>
    outputLength(op, i, size, w.kernel[i]!, w.strides[i]!, w.dilations[i]!, pads[i]!, pads[i + r]!, attrs.ceilMode),
  );
  return {
    planes: x[0]! * x[1]!,
    inSpatial,
    outSpatial,
    kernel: w.kernel,
    strides: w.strides,
    dilations: w.dilations,
    pads,
    outShape: [x[0]!, x[1]!, ...outSpatial],
  };
}

/** Writes the row-major multi-index of flat index `i` within `dims` into `idx`. */
function unravel(i: number, dims: readonly number[], idx: number[]): void {
  for (let d = dims.length - 1; d >= 0; d--) {
    idx[d] = i % dims[d]!;
    i = Math.floor(i / dims[d]!);
  }
}

/** The spec: every output visits every tap of its window and checks it against the bounds. */
function poolReference(kind: PoolKind, op: string, x: Tensor, attrs: MaxPoolIndicesAttrs): Tensor {
  const g = poolGeometry(op, x.shape, attrs);
  const r = g.kernel.length;
  const inPlane = sizeOf(g.inSpatial);
  const outPlane = sizeOf(g.outSpatial);
  const taps = sizeOf(g.kernel);
  const src = x.dataSync();
  const outDtype = kind === 'argmax' ? 'int64' : x.dtype;
  const out = DTYPES[outDtype].make(g.planes * outPlane);
  const o = new Array<number>(r);
  const k = new Array<number>(r);
  for (let p = 0; p < g.planes; p++) {
    for (let i = 0; i < outPlane; i++) {
      unravel(i, g.outSpatial, o);
      let max = -Infinity;
      let best = -1; // the index of the max, as MaxPool's Indices reports it
      let sum = 0;
      let inside = 0; // taps on input elements
      let padded = 0; // taps on input or padding, not past the end padding
      for (let t = 0; t < taps; t++) {
        unravel(t, g.kernel, k);
        let off = 0;
        let colOff = 0; // the column-major position, for storage_order 1
        let colStride = 1;
        let inInput = true;
        let inPadded = true;
        for (let d = 0; d < r; d++) {
          const pos = o[d]! * g.strides[d]! - g.pads[d]! + k[d]! * g.dilations[d]!;
          const size = g.inSpatial[d]!;
          if (pos < 0 || pos >= size) inInput = false;
          if (pos >= size + g.pads[d + r]!) inPadded = false;
          off = off * size + pos;
          colOff += pos * colStride;
          colStride *= size;
        }
        if (inPadded) padded++;
        if (!inInput) continue;
        inside++;
        const v = src[p * inPlane + off]!;
        const index = p * inPlane + (attrs.storageOrder === 1 ? colOff : off);
        if (best < 0) best = index;
        if (v > max) {
          max = v;
          best = index;
        }
        sum += v;
      }
      const divisor = attrs.countIncludePad ? padded : inside;
      out[p * outPlane + i] = kind === 'max' ? max : kind === 'argmax' ? best : sum / divisor;
    }
  }
  return new Tensor(out, g.outShape, outDtype);
}

/**
 * The windows along one axis, per output position o: the first input index `start` (may be
 * negative), the range [lo, hi) of taps that land inside the input, and `padded`, the taps
 * that land inside input or padding. Precomputing these removes every bounds check from the
 * inner loops.
 */
function axisWindows(size: number, out: number, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number) {
  const start = i32Array(out);
  const lo = i32Array(out);
  const hi = i32Array(out);
  const padded = i32Array(out);
  for (let o = 0; o < out; o++) {
    const s = o * stride - padBegin;
    start[o] = s;
    lo[o] = s >= 0 ? 0 : Math.min(kernel, Math.ceil(-s / dilation));
    hi[o] = Math.max(lo[o]!, Math.min(kernel, Math.ceil((size - s) / dilation)));
    padded[o] = Math.min(kernel, Math.ceil((size + padEnd - s) / dilation));
  }
  return { start, lo, hi, padded };
}

/** Fast float32 kernel for 1-D and 2-D pooling (1-D runs as 2-D with height 1); others use the reference. */
function poolCpu(kind: PoolKind, op: string, x: Tensor, attrs: MaxPoolIndicesAttrs): Tensor {
  if (x.dtype !== 'float32' || x.rank > 4) return poolReference(kind, op, x, attrs);
  const g = poolGeometry(op, x.shape, attrs);
  const r = g.kernel.length;
  const axis = (d: number) => axisWindows(g.inSpatial[d]!, g.outSpatial[d]!, g.kernel[d]!, g.strides[d]!, g.dilations[d]!, g.pads[d]!, g.pads[d + r]!);
  const rows = r === 2 ? axis(0) : axisWindows(1, 1, 1, 1, 1, 0, 0);
  const cols = axis(r - 1);
  const H = r === 2 ? g.inSpatial[0]! : 1;
  const W = g.inSpatial[r - 1]!;
  const dh = r === 2 ? g.dilations[0]! : 1;
  const dw = g.dilations[r - 1]!;
  const OH = rows.start.length;
  const OW = cols.start.length;
  const xd = x.f32();
  // outputBuffer: every output is written below.
  const y = kind === 'argmax' ? f64Array(g.planes * OH * OW) : outputBuffer(g.planes * OH * OW);
  if (kind !== 'argmax' && r === 2) {
    const pads = [g.pads[0]!, g.pads[1]!, g.pads[2]!, g.pads[3]!] as const;
    const geometry = { planes: g.planes, h: H, w: W, oh: OH, ow: OW, kh: g.kernel[0]!, kw: g.kernel[1]!, sh: g.strides[0]!, sw: g.strides[1]!, dh, dw, pads };
    if (wasmPool2d(kind, xd, y as Float32Array, geometry, attrs.countIncludePad === true)) return new Tensor(y, g.outShape, 'float32');
  }
  const colMajor = attrs.storageOrder === 1;
  let yo = 0;
  for (let p = 0; p < g.planes; p++) {
    const xp = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = rows.start[oh]!;
      const hLo = rows.lo[oh]!;
      const hHi = rows.hi[oh]!;
      for (let ow = 0; ow < OW; ow++) {
        const w0 = xp + cols.start[ow]!;
        const wLo = cols.lo[ow]!;
        const wHi = cols.hi[ow]!;
        if (kind === 'max') {
          let m = -Infinity;
          for (let kh = hLo; kh < hHi; kh++) {
            const row = w0 + (h0 + kh * dh) * W;
            for (let kw = wLo; kw < wHi; kw++) {
              const v = xd[row + kw * dw]!;
              if (v > m) m = v;
            }
          }
          y[yo++] = m;
        } else if (kind === 'argmax') {
          // The same scan as 'max', keeping the position (h, w) of the first max.
          let m = -Infinity;
          let bh = -1;
          let bw = -1;
          for (let kh = hLo; kh < hHi; kh++) {
            const h = h0 + kh * dh;
            const row = xp + h * W;
            for (let kw = wLo; kw < wHi; kw++) {
              const w = cols.start[ow]! + kw * dw;
              const v = xd[row + w]!;
              if (bh < 0) {
                bh = h;
                bw = w;
              }
              if (v > m) {
                m = v;
                bh = h;
                bw = w;
              }
            }
          }
          y[yo++] = bh < 0 ? -1 : xp + (colMajor ? bh + bw * H : bh * W + bw);
        } else {
          let s = 0;
          for (let kh = hLo; kh < hHi; kh++) {
            const row = w0 + (h0 + kh * dh) * W;
            for (let kw = wLo; kw < wHi; kw++) s += xd[row + kw * dw]!;
          }
          const divisor = attrs.countIncludePad ? rows.padded[oh]! * cols.padded[ow]! : (hHi - hLo) * (wHi - wLo);
          y[yo++] = s / divisor;
        }
      }
    }
  }
  return new Tensor(y, g.outShape, kind === 'argmax' ? 'int64' : 'float32');
}

/** The card of MaxPool (`maxPool`). */
export const maxPoolCard: OpCard<PoolAttrs> = {
  name: 'MaxPool',
  shape: ([x], attrs) => poolGeometry('MaxPool', x!, attrs).outShape,
  reference: ([x], attrs) => poolReference('max', 'MaxPool', x!, attrs),
  cpu: ([x], attrs) => poolCpu('max', 'MaxPool', x!, attrs),
  grad: maxPoolGrad,
};

/** The card of AveragePool (`averagePool`). */
export const averagePoolCard: OpCard<PoolAttrs> = {
  name: 'AveragePool',
  shape: ([x], attrs) => poolGeometry('AveragePool', x!, attrs).outShape,
  reference: ([x], attrs) => poolReference('avg', 'AveragePool', x!, attrs),
  cpu: ([x], attrs) => poolCpu('avg', 'AveragePool', x!, attrs),
  grad: averagePoolGrad,
};

/** MaxPool's Indices output (int64, the shape of MaxPool's output); see MaxPoolIndicesAttrs. */
export const maxPoolIndicesCard: OpCard<MaxPoolIndicesAttrs> = {
  name: 'MaxPoolIndices',
  shape: ([x], attrs) => poolGeometry('MaxPool', x!, attrs).outShape,
  outputDtype: () => 'int64',
  reference: ([x], attrs) => poolReference('argmax', 'MaxPool', x!, attrs),
  cpu: ([x], attrs) => poolCpu('argmax', 'MaxPool', x!, attrs),
};

/**
 * ONNX MaxPool over the spatial dims of [N, C, …] with `attrs` (kernel, strides, pads, dilations,
 * autoPad, ceilMode). Throws a ShapeError for an input that is not [N, C, spatial…] or attributes
 * that do not fit it.
 *
 * @example
 * ```ts
 * import { Tensor, maxPool } from 'lightconv';
 *
 * maxPool(Tensor.zeros([1, 64, 112, 112]), { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }).shape; // [1, 64, 56, 56]
 * ```
 */
export function maxPool(x: Tensor, attrs: PoolAttrs): Tensor {
  return apply(maxPoolCard, [x], attrs);
}

/**
 * MaxPool with its Indices output.
 *
 * @example
 * ```ts
 * import { Tensor, maxPoolWithIndices } from 'lightconv';
 *
 * const { y, indices } = maxPoolWithIndices(Tensor.randn([1, 1, 4, 4], { seed: 0 }), { kernel: [2, 2], strides: [2, 2] });
 * ```
 */
export function maxPoolWithIndices(x: Tensor, attrs: MaxPoolIndicesAttrs): { y: Tensor; indices: Tensor } {
  return { y: apply(maxPoolCard, [x], attrs), indices: apply(maxPoolIndicesCard, [x], attrs) };
}

/**
 * ONNX AveragePool over the spatial dims of [N, C, …]; padded taps count in the divisor only with
 * `countIncludePad`.
 *
 * @example
 * ```ts
 * import { Tensor, averagePool } from 'lightconv';
 *
 * averagePool(Tensor.ones([1, 8, 4, 4]), { kernel: [2, 2], strides: [2, 2] }).shape; // [1, 8, 2, 2]
 * ```
 */
export function averagePool(x: Tensor, attrs: PoolAttrs): Tensor {
  return apply(averagePoolCard, [x], attrs);
}

// ---------------------------------------------------------------------------------------------
// Global pools: one value per (n, c) plane. The plain loop is already the fast kernel.

function globalShape(op: string, x: Shape): number[] {
  if (x.length < 3) throw new ShapeError(`${op}: input must be [N, C, spatial…], got ${fmtShape(x)}`);
  return [x[0]!, x[1]!, ...x.slice(2).map(() => 1)];
}

function globalPool(kind: PoolKind, op: string, x: Tensor): Tensor {
  const shape = globalShape(op, x.shape);
  const planes = x.shape[0]! * x.shape[1]!;
  const n = sizeOf(x.shape.slice(2));
  const src = x.dataSync();
  const out = DTYPES[x.dtype].make(planes);
  for (let p = 0; p < planes; p++) {
    const end = (p + 1) * n;
    if (kind === 'max') {
      let max = -Infinity;
      for (let i = p * n; i < end; i++) if (src[i]! > max) max = src[i]!;
      out[p] = max;
    } else {
      let sum = 0;
      for (let i = p * n; i < end; i++) sum += src[i]!;
      out[p] = sum / n;
    }
  }
  return new Tensor(out, shape, x.dtype);
}

/** The card of GlobalAveragePool (`globalAveragePool`). */
export const globalAveragePoolCard: OpCard<void> = {
  name: 'GlobalAveragePool',
  shape: ([x]) => globalShape('GlobalAveragePool', x!),
  reference: ([x]) => globalPool('avg', 'GlobalAveragePool', x!),
  cpu([x]) {
    if (x!.dtype !== 'float32') return globalPool('avg', 'GlobalAveragePool', x!);
    const shape = globalShape('GlobalAveragePool', x!.shape);
    const planes = x!.shape[0]! * x!.shape[1]!;
    const n = sizeOf(x!.shape.slice(2));
    const src = x!.dataSync() as Float32Array;
    const out = outputBuffer(planes);
    if (!wasmMeanRows(src, out, planes, n)) {
      for (let p = 0; p < planes; p++) {
        let sum = 0;
        for (let i = p * n, end = i + n; i < end; i++) sum += src[i]!;
        out[p] = sum / n;
      }
    }
    return new Tensor(out, shape);
  },
  grad: globalAveragePoolGrad,
};

/** The card of GlobalMaxPool (`globalMaxPool`). */
export const globalMaxPoolCard: OpCard<void> = {
  name: 'GlobalMaxPool',
  shape: ([x]) => globalShape('GlobalMaxPool', x!),
  reference: ([x]) => globalPool('max', 'GlobalMaxPool', x!),
  grad: globalMaxPoolGrad,
};

/**
 * The mean over all spatial dims: [N, C, …] → [N, C, 1, …, 1].
 *
 * @example
 * ```ts
 * import { Tensor, globalAveragePool } from 'lightconv';
 *
 * globalAveragePool(Tensor.ones([2, 1280, 7, 7])).shape; // [2, 1280, 1, 1]
 * ```
 */
export function globalAveragePool(x: Tensor): Tensor {
  return apply(globalAveragePoolCard, [x], undefined);
}

/**
 * The max over all spatial dims: [N, C, …] → [N, C, 1, …, 1].
 *
 * @example
 * ```ts
 * import { Tensor, globalMaxPool } from 'lightconv';
 *
 * globalMaxPool(Tensor.ones([2, 16, 7, 7])).shape; // [2, 16, 1, 1]
 * ```
 */
export function globalMaxPool(x: Tensor): Tensor {
  return apply(globalMaxPoolCard, [x], undefined);
}

// ---------------------------------------------------------------------------------------------
// Gradients (autograd).

/**
 * MaxPool: each output's gradient goes to the input element its max came from — the first tap
 * holding the maximum in the window's row-major scan order, which is the element MaxPool's
 * Indices output names (PyTorch's max_pool2d backward routes to its returned index the same way;
 * it differs only for NaN, which wins there and never wins here). Overlapping windows add up.
 */
function maxPoolGrad([x]: readonly Tensor[], attrs: PoolAttrs, _y: Tensor, g: Tensor): (Tensor | null)[] {
  const idx = (x!.dtype === 'float32' ? poolCpu : poolReference)('argmax', 'MaxPool', x!, { ...attrs, storageOrder: 0 }).dataSync();
  const gd = g.dataSync();
  const out = gradArray(x!);
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i]!;
    if (k >= 0) out[k] += gd[i]!;
  }
  return [gradOf(x!, out)];
}

/**
 * AveragePool: each output's gradient, divided by the same divisor as the forward (input taps,
 * or input + pad taps with countIncludePad, never the ceil_mode overhang), goes to every input
 * tap of its window.
 */
function averagePoolGrad([x]: readonly Tensor[], attrs: PoolAttrs, _y: Tensor, g: Tensor): (Tensor | null)[] {
  const geo = poolGeometry('AveragePool', x!.shape, attrs);
  const r = geo.kernel.length;
  const inPlane = sizeOf(geo.inSpatial);
  const outPlane = sizeOf(geo.outSpatial);
  const taps = sizeOf(geo.kernel);
  const gd = g.dataSync();
  const acc = f64Array(x!.size);
  const o = new Array<number>(r);
  const k = new Array<number>(r);
  const offs: number[] = [];
  for (let i = 0; i < outPlane; i++) {
    unravel(i, geo.outSpatial, o);
    offs.length = 0;
    let padded = 0;
    for (let t = 0; t < taps; t++) {
      unravel(t, geo.kernel, k);
      let off = 0;
      let inInput = true;
      let inPadded = true;
      for (let d = 0; d < r; d++) {
        const pos = o[d]! * geo.strides[d]! - geo.pads[d]! + k[d]! * geo.dilations[d]!;
        const size = geo.inSpatial[d]!;
        if (pos < 0 || pos >= size) inInput = false;
        if (pos >= size + geo.pads[d + r]!) inPadded = false;
        off = off * size + pos;
      }
      if (inPadded) padded++;
      if (inInput) offs.push(off);
    }
    const divisor = attrs.countIncludePad ? padded : offs.length;
    for (let p = 0; p < geo.planes; p++) {
      const share = gd[p * outPlane + i]! / divisor;
      for (const off of offs) acc[p * inPlane + off] += share;
    }
  }
  const out = gradArray(x!);
  out.set(acc);
  return [gradOf(x!, out)];
}

/** GlobalAveragePool: dy/n to every element of the plane. */
function globalAveragePoolGrad([x]: readonly Tensor[], _attrs: void, _y: Tensor, g: Tensor): (Tensor | null)[] {
  const n = sizeOf(x!.shape.slice(2));
  const gd = g.dataSync();
  const out = gradArray(x!);
  for (let i = 0; i < out.length; i++) out[i] = gd[Math.floor(i / n)]! / n;
  return [gradOf(x!, out)];
}

/** GlobalMaxPool: dy to the first maximum of the plane. */
function globalMaxPoolGrad([x]: readonly Tensor[], _attrs: void, _y: Tensor, g: Tensor): (Tensor | null)[] {
  const n = sizeOf(x!.shape.slice(2));
  const src = x!.dataSync();
  const gd = g.dataSync();
  const out = gradArray(x!);
  for (let p = 0; p < gd.length; p++) {
    let best = -1;
    let max = -Infinity;
    for (let i = p * n; i < (p + 1) * n; i++) {
      const v = src[i]!;
      if (v > max || best < 0) best = i; // NaN never wins, as in the forward
      if (v > max) max = v;
    }
    if (best >= 0) out[best] = gd[p]!;
  }
  return [gradOf(x!, out)];
}
