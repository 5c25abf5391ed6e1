import { DTYPES, f32Array, f64Array } from '../core/dtype.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { type ConvGeometry, im2col } from './conv.js';
import { gradOf } from './grad.js';
import { type MatrixView, requireF32, rowMajor, sgemm } from './gemm.js';
import type { AutoPad } from './window.js';

/**
 * ConvTranspose (ONNX ConvTranspose 1 and 11): the adjoint of Conv with the same weight. Input
 * X [N, C, in…], weight W [C, M/group, k…], optional bias [M]; output [N, M, out…] with
 * out = stride·(in − 1) + output_padding + dilation·(k − 1) + 1 − pad_begin − pad_end.
 * Each input element adds W-weighted copies of itself onto a window of the output.
 *
 * The float32 kernel for 1-D and 2-D is Conv's gradient with respect to its input: per image
 * and group, col = W_gᵀ·X_g by sgemm, then col2im onto the output (the adjoint of Conv's
 * im2col, which the gradients reuse). The reference (and 3-D) runs the direct loops in float64.
 */
export interface ConvTransposeAttrs {
  /** One per spatial axis. */
  readonly strides: readonly number[];
  /** ONNX order [begin_0, …, end_0, …]; the output is cropped by them. */
  readonly pads: readonly number[];
  readonly dilations: readonly number[];
  readonly group: number;
  /** Extra elements added at the end of each output axis. */
  readonly outputPadding: readonly number[];
}

/** Shapes as 3 spatial axes (missing leading axes have size 1, kernel 1, stride 1). */
interface Geometry {
  n: number;
  c: number;
  m: number;
  group: number;
  /** Input channels per group (C / group) and output channels per group (M / group, = W dim 1). */
  cg: number;
  mg: number;
  rank: number;
  inp: number[];
  k: number[];
  s: number[];
  d: number[];
  pb: number[];
  pe: number[];
  out: number[];
  outShape: number[];
}

function geometry(inputs: readonly Shape[], a: ConvTransposeAttrs): Geometry {
  const what = 'ConvTranspose';
  if (inputs.length < 2 || inputs.length > 3) throw new ShapeError(`${what}: expected 2 or 3 inputs (X, W, B?), got ${inputs.length}`);
  const [x, w, b] = inputs as [Shape, Shape, Shape?];
  const rank = x.length - 2;
  if (rank < 1 || rank > 3) throw new ShapeError(`${what}: input must be [N, C, spatial…] with 1 to 3 spatial axes, got ${fmtShape(x)}`);
  if (w.length !== x.length) throw new ShapeError(`${what}: weight ${fmtShape(w)} must have the input's rank ${x.length} (input ${fmtShape(x)})`);
  const group = a.group;
  if (!Number.isSafeInteger(group) || group < 1) throw new ShapeError(`${what}: group must be a positive integer, got ${group}`);
  const c = x[1]!;
  if (w[0] !== c) throw new ShapeError(`${what}: input ${fmtShape(x)} has ${c} channels but weight ${fmtShape(w)} has ${w[0]} (weight is [C, M/group, k…])`);
  if (c % group !== 0) throw new ShapeError(`${what}: ${c} input channels are not divisible by group ${group}`);
  const mg = w[1]!;
  const m = mg * group;
  if (b && (b.length !== 1 || b[0] !== m)) throw new ShapeError(`${what}: bias ${fmtShape(b)} must be [${m}] (weight ${fmtShape(w)}, group ${group})`);
  const list = (name: string, v: readonly number[], len: number, min: number) => {
    if (v.length !== len) throw new ShapeError(`${what}: ${name} has ${v.length} values, expected ${len} for input ${fmtShape(x)}`);
    v.forEach((e, i) => {
      if (!Number.isSafeInteger(e) || e < min) throw new ShapeError(`${what}: ${name}[${i}] = ${e}, expected an integer ≥ ${min}`);
    });
  };
  list('strides', a.strides, rank, 1);
  list('dilations', a.dilations, rank, 1);
  list('pads', a.pads, 2 * rank, 0);
  list('output_padding', a.outputPadding, rank, 0);
  const lead = 3 - rank;
  const fill = (v: readonly number[], one: number) => [...new Array<number>(lead).fill(one), ...v];
  const inp = fill(x.slice(2), 1);
  const k = fill(w.slice(2), 1);
  const s = fill(a.strides, 1);
  const d = fill(a.dilations, 1);
  const pb = fill(a.pads.slice(0, rank), 0);
  const pe = fill(a.pads.slice(rank), 0);
  const op = fill(a.outputPadding, 0);
  const out = inp.map((len, i) => s[i]! * (len - 1) + op[i]! + d[i]! * (k[i]! - 1) + 1 - pb[i]! - pe[i]!);
  out.forEach((o, i) => {
    if (o < 0 || (inp[i] === 0 && i >= lead)) {
      throw new ShapeError(`${what}: input ${fmtShape(x)}, weight ${fmtShape(w)} with pads [${a.pads.join(', ')}] give output length ${o} on spatial axis ${i - lead}`);
    }
  });
  return { n: x[0]!, c, m, group, cg: c / group, mg, rank, inp, k, s, d, pb, pe, out, outShape: [x[0]!, m, ...out.slice(lead)] };
}

/**
 * Pads for auto_pad and output_shape (ONNX ConvTranspose): with a target output length,
 * total = stride·(in − 1) + output_padding + dilation·(k − 1) + 1 − target is split with the odd
 * element at the end for SAME_UPPER and at the beginning otherwise; SAME_* without output_shape
 * target in·stride; VALID pads nothing; NOTSET keeps `pads`. A target longer than that length
 * (total < 0) is reached by extending the end, as extra output padding (ONNX's
 * test_convtranspose_output_shape: output_shape [10, 8] with strides [3, 2] equals output_padding [1, 1]).
 * Returns the pads (begins then ends) and the output padding to use. Throws ShapeError for an
 * output_shape of the wrong length or with values that are not non-negative integers.
 *
 * @example
 * ```ts
 * import { convTransposePads } from 'lightconv';
 *
 * const { pads } = convTransposePads([4, 4], [3, 3], { strides: [2, 2], dilations: [1, 1], outputPadding: [0, 0], autoPad: 'SAME_UPPER' });
 * pads; // [0, 0, 1, 1]: an 8×8 output
 * ```
 */
export function convTransposePads(
  spatial: readonly number[],
  kernel: readonly number[],
  opts: { strides: readonly number[]; dilations: readonly number[]; outputPadding: readonly number[]; autoPad: AutoPad; pads?: readonly number[]; outputShape?: readonly number[] },
): { pads: number[]; outputPadding: number[] } {
  const r = spatial.length;
  const { strides, dilations, outputPadding: outputPaddingIn, autoPad } = opts;
  let target = opts.outputShape ? [...opts.outputShape] : undefined;
  if (target && target.length === r + 2) target = target.slice(2);
  if (target && target.length !== r) throw new ShapeError(`ConvTranspose: output_shape [${target.join(', ')}] has ${target.length} values for ${r} spatial axes`);
  if (!target && (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER')) target = spatial.map((d, i) => d * strides[i]!);
  const outputPadding = spatial.map((_, i) => outputPaddingIn[i] ?? 0);
  if (!target) return { pads: autoPad === 'VALID' ? new Array<number>(2 * r).fill(0) : [...(opts.pads ?? new Array<number>(2 * r).fill(0))], outputPadding };
  const pads = new Array<number>(2 * r);
  for (let i = 0; i < r; i++) {
    const full = strides[i]! * (spatial[i]! - 1) + outputPadding[i]! + dilations[i]! * (kernel[i]! - 1) + 1;
    if (!Number.isSafeInteger(target[i]) || target[i]! < 0) throw new ShapeError(`ConvTranspose: output_shape [${target.join(', ')}] must hold non-negative integers`);
    let total = full - target[i]!;
    if (total < 0) {
      outputPadding[i] = outputPadding[i]! - total;
      total = 0;
    }
    const half = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_UPPER' ? half : total - half;
    pads[i + r] = total - pads[i]!;
  }
  return { pads, outputPadding };
}

/**
 * The direct loops in float64 over every (image, input channel, output channel of its group,
 * input position, tap): y[o] += x[i]·w and, for the gradients, gx[i] += gy[o]·w, gw += x[i]·gy[o].
 */
function direct(
  g: Geometry,
  X: ArrayLike<number>,
  W: ArrayLike<number>,
  Y: Float64Array | null,
  gY: ArrayLike<number> | null,
  gX: Float64Array | null,
  gW: Float64Array | null,
): void {
  const [I0, I1, I2] = g.inp as [number, number, number];
  const [K0, K1, K2] = g.k as [number, number, number];
  const [O0, O1, O2] = g.out as [number, number, number];
  const inSize = I0 * I1 * I2;
  const outSize = O0 * O1 * O2;
  const kSize = K0 * K1 * K2;
  for (let n = 0; n < g.n; n++) {
    for (let c = 0; c < g.c; c++) {
      const gi = Math.floor(c / g.cg);
      const xo = (n * g.c + c) * inSize;
      for (let mm = 0; mm < g.mg; mm++) {
        const m = gi * g.mg + mm;
        const yo = (n * g.m + m) * outSize;
        const wo = (c * g.mg + mm) * kSize;
        for (let i0 = 0; i0 < I0; i0++) {
          for (let i1 = 0; i1 < I1; i1++) {
            for (let i2 = 0; i2 < I2; i2++) {
              const xi = xo + (i0 * I1 + i1) * I2 + i2;
              const xv = X[xi]!;
              let gxs = 0;
              for (let k0 = 0; k0 < K0; k0++) {
                const o0 = i0 * g.s[0]! - g.pb[0]! + k0 * g.d[0]!;
                if (o0 < 0 || o0 >= O0) continue;
                for (let k1 = 0; k1 < K1; k1++) {
                  const o1 = i1 * g.s[1]! - g.pb[1]! + k1 * g.d[1]!;
                  if (o1 < 0 || o1 >= O1) continue;
                  for (let k2 = 0; k2 < K2; k2++) {
                    const o2 = i2 * g.s[2]! - g.pb[2]! + k2 * g.d[2]!;
                    if (o2 < 0 || o2 >= O2) continue;
                    const yi = yo + (o0 * O1 + o1) * O2 + o2;
                    const wi = wo + (k0 * K1 + k1) * K2 + k2;
                    if (Y) Y[yi] += xv * W[wi]!;
                    if (gY) {
                      const gy = gY[yi]!;
                      gxs += gy * W[wi]!;
                      if (gW) gW[wi] += xv * gy;
                    }
                  }
                }
              }
              if (gX) gX[xi] += gxs;
            }
          }
        }
      }
    }
  }
}

/** Conv's geometry for the adjoint conv: its input is our output, its output our input. */
function adjointConv(g: Geometry): ConvGeometry {
  return {
    n: g.n,
    c: g.m,
    h: g.out[1]!,
    w: g.out[2]!,
    m: g.c,
    group: g.group,
    cg: g.mg,
    mg: g.cg,
    kh: g.k[1]!,
    kw: g.k[2]!,
    sh: g.s[1]!,
    sw: g.s[2]!,
    dh: g.d[1]!,
    dw: g.d[2]!,
    pt: g.pb[1]!,
    pl: g.pb[2]!,
    pb: g.pe[1]!,
    pr: g.pe[2]!,
    oh: g.inp[1]!,
    ow: g.inp[2]!,
    outShape: [g.n, g.c, g.inp[1]!, g.inp[2]!],
  };
}

/** Columns per chunk of the col scratch: bounds it at about 4 MiB whatever the layer. */
const COL_BUDGET = 1 << 20;

/**
 * Adds col[r·cols + q] (tap r of input position p0 + q) onto the output element it lands on, the
 * adjoint of Conv's im2col. Positions are walked in row segments; within a row the taps that land
 * inside the output form a column range [lo, hi) fixed per kx, so the inner loop has no tests.
 */
function col2imAdd(col: Float32Array, cols: number, p0: number, Y: Float32Array, yo: number, cg: ConvGeometry): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow } = cg;
  const lo = new Int32Array(kw);
  const hi = new Int32Array(kw);
  for (let kx = 0; kx < kw; kx++) {
    const shift = kx * dw - pl; // output column = ox·sw + shift
    lo[kx] = Math.min(ow, Math.max(0, Math.ceil(-shift / sw)));
    hi[kx] = Math.max(lo[kx]!, Math.min(ow, Math.floor((w - 1 - shift) / sw) + 1));
  }
  let r = 0;
  for (let ci = 0; ci < cg.cg; ci++) {
    const plane = yo + ci * h * w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, r++) {
        const shift = kx * dw - pl;
        let q = r * cols;
        let p = p0;
        const end = p0 + cols;
        while (p < end) {
          const oy = Math.floor(p / ow);
          const ox0 = p - oy * ow;
          const ox1 = Math.min(ow, ox0 + end - p);
          const iy = oy * sh - pt + ky * dh;
          if (iy >= 0 && iy < h) {
            const a = Math.max(ox0, lo[kx]!);
            const b = Math.min(ox1, hi[kx]!);
            const row = plane + iy * w + shift;
            for (let ox = a, c = q + a - ox0; ox < b; ox++, c++) Y[row + ox * sw] += col[c]!;
          }
          q += ox1 - ox0;
          p += ox1 - ox0;
        }
      }
    }
  }
}

/** The transposed view of row-major [rows, cols] data at `offset`. */
function transposed(data: Float32Array, offset: number, cols: number): MatrixView {
  return { data, offset, rowStride: 1, colStride: cols };
}

function fastForward(g: Geometry, X: Float32Array, W: Float32Array, B: Float32Array | null): Float32Array {
  const cg = adjointConv(g);
  const k = g.mg * cg.kh * cg.kw;
  const P = cg.oh * cg.ow;
  const outHW = cg.h * cg.w;
  const Y = f32Array(g.n * g.m * outHW);
  const chunk = Math.max(1, Math.min(P, Math.floor(COL_BUDGET / Math.max(1, k))));
  const col = f32Array(k * chunk);
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.group; gi++) {
      const xo = (n * g.c + gi * g.cg) * P;
      const yo = (n * g.m + gi * g.mg) * outHW;
      for (let p0 = 0; p0 < P; p0 += chunk) {
        const cols = Math.min(chunk, P - p0);
        // col [k, cols] = W_gᵀ [k, C/group] · X_g [C/group, cols]
        sgemm(k, cols, g.cg, 1, transposed(W, gi * g.cg * k, k), { data: X, offset: xo + p0, rowStride: P, colStride: 1 }, 0, col, 0, cols);
        col2imAdd(col, cols, p0, Y, yo, cg);
      }
    }
  }
  if (B) {
    for (let n = 0; n < g.n; n++) {
      for (let m = 0; m < g.m; m++) {
        const o = (n * g.m + m) * outHW;
        const bv = B[m]!;
        for (let i = 0; i < outHW; i++) Y[o + i] += bv;
      }
    }
  }
  return Y;
}

/** ∂X = Conv(∂Y, W) and ∂W += X_g·colᵀ with col = im2col(∂Y), chunked over input positions. */
function fastGrad(g: Geometry, X: Float32Array, W: Float32Array, gY: Float32Array, needX: boolean, needW: boolean) {
  const cg = adjointConv(g);
  const k = g.mg * cg.kh * cg.kw;
  const P = cg.oh * cg.ow;
  const outHW = cg.h * cg.w;
  const gX = needX ? f32Array(g.n * g.c * P) : null;
  const gW = needW ? f32Array(g.c * k) : null;
  const chunk = Math.max(1, Math.min(P, Math.floor(COL_BUDGET / Math.max(1, k))));
  const col = f32Array(k * chunk);
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.group; gi++) {
      const xo = (n * g.c + gi * g.cg) * P;
      const yo = (n * g.m + gi * g.mg) * outHW;
      for (let p0 = 0; p0 < P; p0 += chunk) {
        const cols = Math.min(chunk, P - p0);
        im2col(gY, yo, cg, p0, cols, col);
        // ∂X_g [C/group, cols] = W_g [C/group, k] · col [k, cols]
        if (gX) sgemm(g.cg, cols, k, 1, rowMajor(W, gi * g.cg * k, k), rowMajor(col, 0, cols), 0, gX, xo + p0, P);
        // ∂W_g [C/group, k] += X_g [C/group, cols] · colᵀ [cols, k]
        if (gW) sgemm(g.cg, k, cols, 1, { data: X, offset: xo + p0, rowStride: P, colStride: 1 }, transposed(col, 0, cols), 1, gW, gi * g.cg * k, k);
      }
    }
  }
  return { gX, gW };
}

function floatCheck(inputs: readonly Tensor[]): void {
  for (const t of inputs) if (!DTYPES[t.dtype].isFloat) throw new ValueError(`ConvTranspose: needs float tensors, got ${t.dtype}`);
}

/**
 * The ConvTranspose op card (attributes: {@link ConvTransposeAttrs}); {@link convTranspose}
 * applies it. Float inputs x, w and an optional bias; differentiable in all three.
 */
export const convTransposeCard: OpCard<ConvTransposeAttrs> = {
  name: 'ConvTranspose',
  shape: (inputs, attrs) => geometry(inputs, attrs).outShape,
  macs(inputs, attrs) {
    const g = geometry(inputs, attrs);
    return g.n * g.c * g.mg * g.inp.reduce((p, v) => p * v, 1) * g.k.reduce((p, v) => p * v, 1);
  },
  reference(inputs, attrs) {
    floatCheck(inputs);
    const g = geometry(
      inputs.map((t) => t.shape),
      attrs,
    );
    const [x, w, b] = inputs as [Tensor, Tensor, Tensor?];
    const outHW = g.out[0]! * g.out[1]! * g.out[2]!;
    const Y = f64Array(g.n * g.m * outHW);
    direct(g, x.dataSync(), w.dataSync(), Y, null, null, null);
    if (b) {
      const bd = b.dataSync();
      for (let i = 0; i < Y.length; i++) Y[i] += bd[Math.floor(i / outHW) % g.m]!;
    }
    let out: Float32Array | Float64Array = Y;
    if (x.dtype !== 'float64') {
      out = f32Array(Y.length);
      out.set(Y);
    }
    return new Tensor(out, g.outShape, x.dtype === 'float64' ? 'float64' : 'float32');
  },
  cpu(inputs, attrs) {
    const g = geometry(
      inputs.map((t) => t.shape),
      attrs,
    );
    if (g.rank > 2 || inputs.some((t) => t.dtype !== 'float32')) return convTransposeCard.reference(inputs, attrs);
    const [x, w, b] = inputs as [Tensor, Tensor, Tensor?];
    const Y = fastForward(g, requireF32(x, 'ConvTranspose', 'input'), requireF32(w, 'ConvTranspose', 'weight'), b ? requireF32(b, 'ConvTranspose', 'bias') : null);
    return new Tensor(Y, g.outShape, 'float32');
  },
  grad(inputs, attrs, _y, gOut) {
    const g = geometry(
      inputs.map((t) => t.shape),
      attrs,
    );
    const [x, w, b] = inputs as [Tensor, Tensor, Tensor?];
    const needX = x.requiresGrad;
    const needW = w.requiresGrad;
    const gd = gOut.dataSync();
    let gX: Float32Array | Float64Array | null = null;
    let gW: Float32Array | Float64Array | null = null;
    if (g.rank <= 2 && x.dtype === 'float32' && w.dtype === 'float32' && gd instanceof Float32Array) {
      ({ gX, gW } = fastGrad(g, x.f32(), w.f32(), gd, needX, needW));
    } else if (needX || needW) {
      gX = needX ? f64Array(x.size) : null;
      gW = needW ? f64Array(w.size) : null;
      direct(g, x.dataSync(), w.dataSync(), null, gd, gX, gW);
    }
    let gB: Float64Array | null = null;
    if (b && b.requiresGrad) {
      gB = f64Array(g.m);
      const outHW = g.out[0]! * g.out[1]! * g.out[2]!;
      for (let i = 0; i < gd.length; i++) gB[Math.floor(i / outHW) % g.m] += gd[i]!;
    }
    const as = (t: Tensor, a: Float32Array | Float64Array) => gradOf(t, t.dtype === 'float64' ? (a instanceof Float64Array ? a : Float64Array.from(a)) : a instanceof Float32Array ? a : Float32Array.from(a));
    const out: (Tensor | null)[] = [gX ? as(x, gX) : null, gW ? as(w, gW) : null];
    if (b) out.push(gB ? as(b, gB) : null);
    return out;
  },
};

/** ConvTranspose attributes as a caller gives them: everything optional. */
export interface ConvTransposeOptions {
  strides?: readonly number[];
  pads?: readonly number[];
  dilations?: readonly number[];
  group?: number;
  outputPadding?: readonly number[];
  /** Spatial output lengths (or the full [N, M, …] shape): the pads are derived from it. */
  outputShape?: readonly number[];
  autoPad?: AutoPad;
}

/**
 * Transposed convolution over [N, C, L], [N, C, H, W] or [N, C, D, H, W] with weight
 * [C, M/group, k…] and optional bias [M] (PyTorch's ConvTranspose layout). Defaults: stride 1,
 * no padding, dilation 1, group 1, no output padding. Output length per axis:
 * stride·(in − 1) + output_padding + dilation·(k − 1) + 1 − pads. Throws ValueError for
 * non-float tensors, ShapeError when the shapes do not fit together.
 *
 * @example
 * ```ts
 * import { Tensor, convTranspose } from 'lightconv';
 *
 * const x = Tensor.randn([1, 8, 16, 16], { seed: 0 });
 * const w = Tensor.randn([8, 4, 4, 4], { seed: 1 });
 * const y = convTranspose(x, w, null, { strides: [2, 2], pads: [1, 1, 1, 1] });
 * y.shape; // [1, 4, 32, 32]
 * ```
 */
export function convTranspose(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
  const r = Math.max(0, w.rank - 2);
  const strides = opts.strides ?? new Array<number>(r).fill(1);
  const dilations = opts.dilations ?? new Array<number>(r).fill(1);
  const { pads, outputPadding } = convTransposePads(x.shape.slice(2), w.shape.slice(2), {
    strides,
    dilations,
    outputPadding: opts.outputPadding ?? new Array<number>(r).fill(0),
    autoPad: opts.autoPad ?? 'NOTSET',
    pads: opts.pads,
    outputShape: opts.outputShape,
  });
  const attrs: ConvTransposeAttrs = { strides, pads, dilations, group: opts.group ?? 1, outputPadding };
  return apply(convTransposeCard, bias ? [x, w, bias] : [x, w], attrs);
}
