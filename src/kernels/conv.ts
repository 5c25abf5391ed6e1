import { f64Array, f32Array, i32Array } from '../core/dtype.js';
import { ShapeError } from '../core/errors.js';
import { checkedSize } from '../core/limits.js';
import { apply, type OpCard } from '../core/op.js';
import { type Shape, fmtShape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { type Activation, NO_ACTIVATION, activateInPlace, activationFn } from './activation.js';
import { gradArray, gradOf, preActivationGrad } from './grad.js';
import { matmulF32, requireF32, rowMajor, sgemm } from './gemm.js';
import { outputLength, windowParams } from './window.js';
import { wasmConv } from './wasm/conv.js';
import { wasmPointwiseGrad } from './wasm/convgrad.js';
import { wasmDepthwiseWeightGrad } from './wasm/dwgrad.js';
import { outputBuffer } from '../core/storage.js';
import { f32Index, forgetConstant, runtime, wasmKernelsEnabled } from './wasm/runtime.js';
import { scratchBytes } from './wasm/budget.js';

/**
 * Convolution (ONNX Conv, really cross-correlation) over NCHW data: 1-D (input [N, C, L],
 * weight [M, C/group, k]) and 2-D (input [N, C, H, W], weight [M, C/group, kH, kW]), with an
 * optional bias [M] and a fused activation applied to the output.
 */
export interface ConvAttrs {
  /** One per spatial axis. */
  readonly strides: readonly number[];
  /** ONNX order: [begin_0, begin_1, …, end_0, end_1, …]; may be asymmetric. */
  readonly pads: readonly number[];
  readonly dilations: readonly number[];
  /** Channel groups: C and M must both be multiples; group = C = M is depthwise. */
  readonly group: number;
  readonly activation: Activation;
}

/**
 * Everything the kernels need, with a 1-D conv seen as a 2-D conv of height 1 (a 1-D conv
 * is exactly that), so each kernel is written once.
 */
export interface ConvGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  m: number;
  group: number;
  /** Input channels per group (= weight dim 1). */
  cg: number;
  /** Output channels per group. */
  mg: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** Pads: top, left, bottom, right. */
  pt: number;
  pl: number;
  pb: number;
  pr: number;
  oh: number;
  ow: number;
  outShape: number[];
}

/**
 * The last geometry per attrs object: `apply` checks shapes with the card's shape rule and the
 * kernel then needs the same geometry for the same attrs and shapes (tensors' shape arrays
 * never change, so they compare by identity).
 */
const lastGeometry = new WeakMap<ConvAttrs, { shapes: readonly Shape[]; g: ConvGeometry }>();

export function convGeometry(inputs: readonly Shape[], attrs: ConvAttrs): ConvGeometry {
  const hit = lastGeometry.get(attrs);
  if (hit && hit.shapes.length === inputs.length && hit.shapes.every((s, i) => s === inputs[i])) return hit.g;
  const g = computeGeometry(inputs, attrs);
  lastGeometry.set(attrs, { shapes: [...inputs], g });
  return g;
}

function computeGeometry(inputs: readonly Shape[], attrs: ConvAttrs): ConvGeometry {
  if (inputs.length < 2 || inputs.length > 3) throw new ShapeError(`Conv: expected 2 or 3 inputs (X, W, B?), got ${inputs.length}`);
  const [x, wt, bias] = inputs as [Shape, Shape, Shape?];
  if (x.length !== 3 && x.length !== 4) {
    throw new ShapeError(`Conv: input must be [N, C, L] (1-D) or [N, C, H, W] (2-D), got ${fmtShape(x)}`);
  }
  if (wt.length !== x.length) throw new ShapeError(`Conv: weight ${fmtShape(wt)} must have the input's rank ${x.length} (input ${fmtShape(x)})`);
  const group = attrs.group;
  if (!Number.isSafeInteger(group) || group < 1) throw new ShapeError(`Conv: group must be a positive integer, got ${group}`);
  const [n, c] = [x[0]!, x[1]!];
  const [m, cg] = [wt[0]!, wt[1]!];
  if (cg * group !== c) {
    throw new ShapeError(`Conv: input ${fmtShape(x)} has ${c} channels but weight ${fmtShape(wt)} with group ${group} expects ${cg} × ${group} = ${cg * group}`);
  }
  if (m % group !== 0) throw new ShapeError(`Conv: ${m} output channels (weight ${fmtShape(wt)}) are not divisible by group ${group}`);
  if (bias && (bias.length !== 1 || bias[0] !== m)) {
    throw new ShapeError(`Conv: bias ${fmtShape(bias)} must be [${m}], one per output channel of weight ${fmtShape(wt)}`);
  }
  const rank = x.length - 2;
  const p = windowParams('Conv', rank, { kernel: wt.slice(2), strides: attrs.strides, dilations: attrs.dilations, pads: attrs.pads });
  const spatial = x.slice(2);
  const out = spatial.map((size, i) =>
    outputLength('Conv', i, size, p.kernel[i]!, p.strides[i]!, p.dilations[i]!, p.pads[i]!, p.pads[i + rank]!),
  );
  checkedSize([n, m, ...out], 'Conv output');
  // Height-1 view of a 1-D conv: the extra leading axis has kernel 1, stride 1, no pads.
  const two = rank === 2;
  return {
    n,
    c,
    h: two ? spatial[0]! : 1,
    w: spatial[rank - 1]!,
    m,
    group,
    cg,
    mg: m / group,
    kh: two ? p.kernel[0]! : 1,
    kw: p.kernel[rank - 1]!,
    sh: two ? p.strides[0]! : 1,
    sw: p.strides[rank - 1]!,
    dh: two ? p.dilations[0]! : 1,
    dw: p.dilations[rank - 1]!,
    pt: two ? p.pads[0]! : 0,
    pl: p.pads[rank - 1]!,
    pb: two ? p.pads[2]! : 0,
    pr: p.pads[2 * rank - 1]!,
    oh: two ? out[0]! : 1,
    ow: out[rank - 1]!,
    outShape: [n, m, ...out],
  };
}

/**
 * The Conv op card (attributes: {@link ConvAttrs}, geometry from `convGeometry`);
 * {@link conv} applies it. Inputs x, w and an optional bias; differentiable in all three.
 */
export const convCard: OpCard<ConvAttrs> = {
  name: 'Conv',
  shape(inputs, attrs) {
    return convGeometry(inputs, attrs).outShape;
  },
  macs(inputs, attrs) {
    const g = convGeometry(inputs, attrs);
    return g.n * g.m * g.oh * g.ow * g.cg * g.kh * g.kw;
  },
  reference(inputs, attrs) {
    const g = convGeometry(
      inputs.map((t) => t.shape),
      attrs,
    );
    const [X, W, B] = convData(inputs);
    const act = activationFn(attrs.activation);
    const y = f32Array(g.n * g.m * g.oh * g.ow);
    let o = 0;
    for (let n = 0; n < g.n; n++) {
      for (let m = 0; m < g.m; m++) {
        const c0 = Math.floor(m / g.mg) * g.cg; // first input channel of m's group
        for (let oy = 0; oy < g.oh; oy++) {
          for (let ox = 0; ox < g.ow; ox++) {
            let s = B ? B[m]! : 0;
            for (let ci = 0; ci < g.cg; ci++) {
              for (let ky = 0; ky < g.kh; ky++) {
                const iy = oy * g.sh - g.pt + ky * g.dh;
                if (iy < 0 || iy >= g.h) continue; // zero padding
                for (let kx = 0; kx < g.kw; kx++) {
                  const ix = ox * g.sw - g.pl + kx * g.dw;
                  if (ix < 0 || ix >= g.w) continue;
                  s += X[((n * g.c + c0 + ci) * g.h + iy) * g.w + ix]! * W[((m * g.cg + ci) * g.kh + ky) * g.kw + kx]!;
                }
              }
            }
            y[o++] = act(s);
          }
        }
      }
    }
    return new Tensor(y, g.outShape);
  },
  cpu(inputs, attrs) {
    const g = convGeometry(
      inputs.map((t) => t.shape),
      attrs,
    );
    const [X, W, B] = convData(inputs);
    const size = g.n * g.m * g.oh * g.ow;
    let y: Float32Array;
    // WebAssembly SIMD kernels first (src/kernels/wasm); the TS kernels below are the fallback.
    if (wasmKernelsEnabled()) {
      if (inputs[1]!.requiresGrad) forgetConstant(W); // being trained: never cache its packed copy
      y = outputBuffer(size);
      if (wasmConv(X, W, B, y, g, attrs.activation)) return new Tensor(y, g.outShape);
      y.fill(0);
    } else y = f32Array(size);
    const unpadded = g.pt === 0 && g.pl === 0 && g.pb === 0 && g.pr === 0;
    if (g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && unpadded) pointwiseConv(X, W, B, y, g, attrs.activation);
    else if (g.group === g.c && g.m === g.c && padsWithinWindow(g)) depthwiseConv(X, W, B, y, g, attrs.activation);
    else im2colConv(X, W, B, y, g, attrs.activation);
    return new Tensor(y, g.outShape);
  },
  grad: convGrad,
};

/**
 * Whether every pad is smaller than the window span, so each window still touches the input.
 * Larger pads are legal but would make the depthwise scratch plane arbitrarily big; those
 * rare convs take the im2col path.
 */
function padsWithinWindow(g: ConvGeometry): boolean {
  const spanH = (g.kh - 1) * g.dh + 1;
  const spanW = (g.kw - 1) * g.dw + 1;
  return g.pt < spanH && g.pb < spanH && g.pl < spanW && g.pr < spanW;
}

function convData(inputs: readonly Tensor[]): [Float32Array, Float32Array, Float32Array | null] {
  const b = inputs[2];
  return [requireF32(inputs[0]!, 'Conv', 'input'), requireF32(inputs[1]!, 'Conv', 'weight'), b ? requireF32(b, 'Conv', 'bias') : null];
}

/** A 1×1, stride-1, unpadded conv is a GEMM on NCHW as it stands: Y[m, p] = Σc W[m, c]·X[c, p]. */
function pointwiseConv(X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const hw = g.h * g.w;
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.group; gi++) {
      const epilogue = B ? { bias: B, biasOffset: gi * g.mg, activation: act } : { activation: act };
      sgemm(
        g.mg,
        hw,
        g.cg,
        1,
        rowMajor(W, gi * g.mg * g.cg, g.cg),
        rowMajor(X, (n * g.c + gi * g.cg) * hw, hw),
        0,
        y,
        (n * g.m + gi * g.mg) * hw,
        hw,
        epilogue,
      );
    }
  }
}

/**
 * Depthwise conv (group = C = M): one small filter per channel, done directly. Outputs whose
 * window lies inside the input (the interior) take loops with no bounds tests; 3×3 and 5×5
 * filters (all that MobileNetV3 and EfficientNet use) get unrolled kernels with the taps in
 * locals. Border outputs clip their window instead. When the border is a large share of the
 * work (small planes: 7×7 with a 5×5 filter has 40 border outputs of 49), the channel is first
 * copied into a zero-bordered scratch plane so that every output is interior.
 */
function depthwiseConv(X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const { c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const taps = kh * kw;
  // Interior: oy·sh − pt ≥ 0 and oy·sh − pt + (kh−1)·dh ≤ h − 1 (likewise for ox).
  const oyLo = Math.min(oh, Math.ceil(pt / sh));
  const oyHi = Math.max(oyLo, Math.min(oh, Math.floor((h - 1 + pt - (kh - 1) * dh) / sh) + 1));
  const oxLo = Math.min(ow, Math.ceil(pl / sw));
  const oxHi = Math.max(oxLo, Math.min(ow, Math.floor((w - 1 + pl - (kw - 1) * dw) / sw) + 1));
  const border = oh * ow - (oyHi - oyLo) * (oxHi - oxLo);
  // Copying costs about one tap per input pixel; clipped border outputs cost a slow tap each.
  const copy = border > 0 && h * w < border * taps;
  const wp = w + pl + g.pr;
  if (copy) depthwiseScratch = growZeroed(depthwiseScratch, (h + pt + g.pb) * wp);
  else if (border > 0) clipColumns(g);
  for (let plane = 0; plane < g.n * c; plane++) {
    const ch = plane % c;
    const xo = plane * h * w;
    const yo = plane * oh * ow;
    const wo = ch * taps;
    const bias = B ? B[ch]! : 0;
    if (copy) {
      // Only the interior is written, so the zero border stays zero from channel to channel.
      const pad = depthwiseScratch;
      for (let iy = 0, s = xo; iy < h; iy++) {
        for (let ix = 0, d = (iy + pt) * wp + pl; ix < w; ix++) pad[d++] = X[s++]!;
      }
      depthwiseInterior(pad, 0, wp, W, wo, bias, y, yo, g, 0, oh, 0, ow);
    } else {
      depthwiseInterior(X, xo - pt * w - pl, w, W, wo, bias, y, yo, g, oyLo, oyHi, oxLo, oxHi);
      if (border > 0) depthwiseBorder(X, xo, W, wo, bias, y, yo, g, oyLo, oyHi, oxLo, oxHi);
    }
    activateInPlace(y, act, yo, yo + oh * ow);
  }
}

/** Zero-padded plane for depthwiseConv; reused across calls, re-zeroed per call. */
let depthwiseScratch: Float32Array = f32Array(0);

function growZeroed(buf: Float32Array, size: number): Float32Array {
  if (buf.length < size) return f32Array(size);
  buf.fill(0, 0, size);
  return buf;
}

/** Per output column ox: the taps kx in [kxRange[2·ox], kxRange[2·ox + 1]) land inside the row. */
let kxRange = i32Array(0);

function clipColumns(g: ConvGeometry): void {
  if (kxRange.length < 2 * g.ow) kxRange = i32Array(2 * g.ow);
  for (let ox = 0; ox < g.ow; ox++) {
    const ix0 = ox * g.sw - g.pl;
    kxRange[2 * ox] = ix0 >= 0 ? 0 : Math.ceil(-ix0 / g.dw);
    kxRange[2 * ox + 1] = Math.min(g.kw, Math.floor((g.w - 1 - ix0) / g.dw) + 1);
  }
}

/**
 * The depthwise outputs outside the interior [oyLo, oyHi) × [oxLo, oxHi): each window is
 * clipped to the input, rows per output row and columns through kxRange (see clipColumns).
 */
function depthwiseBorder(
  X: Float32Array,
  xo: number,
  W: Float32Array,
  wo: number,
  bias: number,
  y: Float32Array,
  yo: number,
  g: ConvGeometry,
  oyLo: number,
  oyHi: number,
  oxLo: number,
  oxHi: number,
): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const kx = kxRange;
  for (let oy = 0; oy < oh; oy++) {
    const iy0 = oy * sh - pt;
    const kyLo = iy0 >= 0 ? 0 : Math.ceil(-iy0 / dh);
    const kyHi = Math.min(kh, Math.floor((h - 1 - iy0) / dh) + 1);
    const skip = oy >= oyLo && oy < oyHi; // interior row: only its ends are border
    for (let ox = 0; ox < ow; ox++) {
      if (skip && ox >= oxLo && ox < oxHi) {
        ox = oxHi - 1;
        continue;
      }
      const kxLo = kx[2 * ox]!;
      const kxHi = kx[2 * ox + 1]!;
      let s = bias;
      for (let ky = kyLo; ky < kyHi; ky++) {
        const r = xo + (iy0 + ky * dh) * w + ox * sw - pl;
        const wk = wo + ky * kw;
        for (let k = kxLo; k < kxHi; k++) s += W[wk + k]! * X[r + k * dw]!;
      }
      y[yo + oy * ow + ox] = s;
    }
  }
}

/**
 * Depthwise outputs [oy0, oy1) × [ox0, ox1) of one channel, whose windows all lie inside `src`:
 * window (oy, ox) starts at src[so + oy·sh·stride + ox·sw].
 */
function depthwiseInterior(
  src: Float32Array,
  so: number,
  stride: number,
  W: Float32Array,
  wo: number,
  bias: number,
  y: Float32Array,
  yo: number,
  g: ConvGeometry,
  oy0: number,
  oy1: number,
  ox0: number,
  ox1: number,
): void {
  if (ox0 >= ox1) return;
  if (g.kh === 3 && g.kw === 3) depthwise3x3(src, so, stride, W, wo, bias, y, yo, g, oy0, oy1, ox0, ox1);
  else if (g.kh === 5 && g.kw === 5) depthwise5x5(src, so, stride, W, wo, bias, y, yo, g, oy0, oy1, ox0, ox1);
  else depthwiseAny(src, so, stride, W, wo, bias, y, yo, g, oy0, oy1, ox0, ox1);
}

/** Any filter size. */
function depthwiseAny(src: Float32Array, so: number, stride: number, W: Float32Array, wo: number, bias: number, y: Float32Array, yo: number, g: ConvGeometry, oy0: number, oy1: number, ox0: number, ox1: number): void {
  const { kh, kw, sh, sw, dh, dw, ow } = g;
  const rowStep = dh * stride;
  for (let oy = oy0; oy < oy1; oy++) {
    for (let ox = ox0, o = yo + oy * ow + ox0, a = so + oy * sh * stride + ox0 * sw; ox < ox1; ox++, o++, a += sw) {
      let s = bias;
      for (let ky = 0; ky < kh; ky++) {
        const r = a + ky * rowStep;
        const wk = wo + ky * kw;
        for (let kx = 0; kx < kw; kx++) s += W[wk + kx]! * src[r + kx * dw]!;
      }
      y[o] = s;
    }
  }
}

function depthwise3x3(src: Float32Array, so: number, stride: number, W: Float32Array, wo: number, bias: number, y: Float32Array, yo: number, g: ConvGeometry, oy0: number, oy1: number, ox0: number, ox1: number): void {
  const { sh, sw, dh, dw, ow } = g;
  const w00 = W[wo]!, w01 = W[wo + 1]!, w02 = W[wo + 2]!;
  const w10 = W[wo + 3]!, w11 = W[wo + 4]!, w12 = W[wo + 5]!;
  const w20 = W[wo + 6]!, w21 = W[wo + 7]!, w22 = W[wo + 8]!;
  const rowStep = dh * stride;
  const d1 = dw, d2 = 2 * dw;
  for (let oy = oy0; oy < oy1; oy++) {
    for (let ox = ox0, o = yo + oy * ow + ox0, r0 = so + oy * sh * stride + ox0 * sw; ox < ox1; ox++, o++, r0 += sw) {
      const r1 = r0 + rowStep, r2 = r1 + rowStep;
      y[o] = bias +
        w00 * src[r0]! + w01 * src[r0 + d1]! + w02 * src[r0 + d2]! +
        w10 * src[r1]! + w11 * src[r1 + d1]! + w12 * src[r1 + d2]! +
        w20 * src[r2]! + w21 * src[r2 + d1]! + w22 * src[r2 + d2]!;
    }
  }
}

function depthwise5x5(src: Float32Array, so: number, stride: number, W: Float32Array, wo: number, bias: number, y: Float32Array, yo: number, g: ConvGeometry, oy0: number, oy1: number, ox0: number, ox1: number): void {
  const { sh, sw, dh, dw, ow } = g;
  const w00 = W[wo]!, w01 = W[wo + 1]!, w02 = W[wo + 2]!, w03 = W[wo + 3]!, w04 = W[wo + 4]!;
  const w10 = W[wo + 5]!, w11 = W[wo + 6]!, w12 = W[wo + 7]!, w13 = W[wo + 8]!, w14 = W[wo + 9]!;
  const w20 = W[wo + 10]!, w21 = W[wo + 11]!, w22 = W[wo + 12]!, w23 = W[wo + 13]!, w24 = W[wo + 14]!;
  const w30 = W[wo + 15]!, w31 = W[wo + 16]!, w32 = W[wo + 17]!, w33 = W[wo + 18]!, w34 = W[wo + 19]!;
  const w40 = W[wo + 20]!, w41 = W[wo + 21]!, w42 = W[wo + 22]!, w43 = W[wo + 23]!, w44 = W[wo + 24]!;
  const rowStep = dh * stride;
  const d1 = dw, d2 = 2 * dw, d3 = 3 * dw, d4 = 4 * dw;
  for (let oy = oy0; oy < oy1; oy++) {
    for (let ox = ox0, o = yo + oy * ow + ox0, r0 = so + oy * sh * stride + ox0 * sw; ox < ox1; ox++, o++, r0 += sw) {
      const r1 = r0 + rowStep, r2 = r1 + rowStep, r3 = r2 + rowStep, r4 = r3 + rowStep;
      y[o] = bias +
        w00 * src[r0]! + w01 * src[r0 + d1]! + w02 * src[r0 + d2]! + w03 * src[r0 + d3]! + w04 * src[r0 + d4]! +
        w10 * src[r1]! + w11 * src[r1 + d1]! + w12 * src[r1 + d2]! + w13 * src[r1 + d3]! + w14 * src[r1 + d4]! +
        w20 * src[r2]! + w21 * src[r2 + d1]! + w22 * src[r2 + d2]! + w23 * src[r2 + d3]! + w24 * src[r2 + d4]! +
        w30 * src[r3]! + w31 * src[r3 + d1]! + w32 * src[r3 + d2]! + w33 * src[r3 + d3]! + w34 * src[r3 + d4]! +
        w40 * src[r4]! + w41 * src[r4 + d1]! + w42 * src[r4 + d2]! + w43 * src[r4 + d3]! + w44 * src[r4 + d4]!;
    }
  }
}

/** Largest im2col chunk, in floats (1 MiB): big enough for long GEMM rows, small enough for L2/L3. */
const COL_BUDGET = 1 << 18;
/** Reused im2col scratch; grows to the largest chunk seen and is never shrunk. */
let colScratch = f32Array(0);

/**
 * General conv: for each image and group, unfold the receptive fields of a range of output
 * positions into columns (im2col, K = C/group·kH·kW rows) and multiply by the group's weights
 * [M/group, K]. Chunking the positions bounds the scratch and keeps it in cache for the GEMM.
 */
function im2colConv(X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const k = g.cg * g.kh * g.kw;
  const positions = g.oh * g.ow;
  const chunk = Math.max(1, Math.min(positions, Math.floor(COL_BUDGET / Math.max(1, k))));
  if (colScratch.length < k * chunk) colScratch = f32Array(k * chunk);
  const col = colScratch;
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.group; gi++) {
      const epilogue = B ? { bias: B, biasOffset: gi * g.mg, activation: act } : { activation: act };
      const xo = (n * g.c + gi * g.cg) * g.h * g.w;
      for (let p0 = 0; p0 < positions; p0 += chunk) {
        const cols = Math.min(chunk, positions - p0);
        im2col(X, xo, g, p0, cols, col);
        sgemm(g.mg, cols, k, 1, rowMajor(W, gi * g.mg * k, k), rowMajor(col, 0, cols), 0, y, (n * g.m + gi * g.mg) * positions + p0, positions, epilogue);
      }
    }
  }
}

/**
 * Writes col[d0 + r·ld + q] = input tap r of output position p0 + q (0 in the padding, and for
 * q in [cols, ld)), for the cg channels starting at `xo`; r runs over (channel, ky, kx). Used
 * by the TypeScript im2col conv and, for strides the SIMD im2col lacks, by the WebAssembly one.
 */
export function im2col(X: Float32Array, xo: number, g: ConvGeometry, p0: number, cols: number, col: Float32Array, d0 = 0, ld = cols): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow } = g;
  let r = 0;
  for (let ci = 0; ci < g.cg; ci++) {
    const plane = xo + ci * h * w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, r++) {
        // Output columns whose tap (ky, kx) lands inside the row: ox in [lo, hi).
        const shift = kx * dw - pl;
        const lo = Math.max(0, Math.ceil(-shift / sw));
        const hi = Math.max(lo, Math.floor((w - 1 - shift) / sw) + 1);
        let d = d0 + r * ld;
        let oy = Math.floor(p0 / ow);
        let ox = p0 - oy * ow;
        let left = cols;
        while (left > 0) {
          const end = Math.min(ow, ox + left);
          left -= end - ox;
          const iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= h) {
            col.fill(0, d, d + end - ox);
            d += end - ox;
            ox = end;
          } else {
            const src = plane + iy * w + shift;
            const a = Math.min(Math.max(ox, lo), end);
            const b = Math.min(Math.max(a, hi), end);
            for (; ox < a; ox++) col[d++] = 0;
            if (sw === 1) {
              col.set(X.subarray(src + ox, src + b), d);
              d += b - ox;
              ox = b;
            } else for (; ox < b; ox++) col[d++] = X[src + ox * sw]!;
            for (; ox < end; ox++) col[d++] = 0;
          }
          ox = 0;
          oy++;
        }
        col.fill(0, d0 + r * ld + cols, d0 + (r + 1) * ld);
      }
    }
  }
}

/** Conv attributes as a caller gives them: everything optional. */
export interface ConvOptions {
  strides?: readonly number[];
  pads?: readonly number[];
  dilations?: readonly number[];
  group?: number;
  activation?: Activation;
}

/**
 * Conv over [N, C, L] or [N, C, H, W] with weight [M, C/group, k…] and optional bias [M].
 * Defaults: stride 1, no padding, dilation 1, group 1, no activation. `pads` are begins then
 * ends ([top, left, bottom, right] in 2-D); a fused `activation` is applied to the output.
 * Throws ShapeError when the shapes do not fit together (channels, group, kernel larger than
 * the padded input).
 *
 * @example
 * ```ts
 * import { Tensor, conv } from 'lightconv';
 *
 * const x = Tensor.randn([1, 3, 32, 32], { seed: 0 });
 * const w = Tensor.randn([16, 3, 3, 3], { seed: 1 });
 * const y = conv(x, w, Tensor.zeros([16]), { strides: [2, 2], pads: [1, 1, 1, 1], activation: { kind: 'relu' } });
 * y.shape; // [1, 16, 16, 16]
 * ```
 */
export function conv(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  const r = Math.max(0, w.rank - 2);
  const attrs: ConvAttrs = {
    strides: opts.strides ?? new Array<number>(r).fill(1),
    pads: opts.pads ?? new Array<number>(2 * r).fill(0),
    dilations: opts.dilations ?? new Array<number>(r).fill(1),
    group: opts.group ?? 1,
    activation: opts.activation ?? NO_ACTIVATION,
  };
  return apply(convCard, bias ? [x, w, bias] : [x, w], attrs);
}

// ---------------------------------------------------------------------------------------------
// Gradient (autograd). For dY = ∂loss/∂Y (after the fused activation's derivative):
//   ∂B[m] = Σ dY[n, m, ·]; ∂W[m, c, ky, kx] = Σ dY[n, m, o]·X[n, c, tap(o)]; ∂X[n, c, i] = Σ dY·W
// over the same taps as the forward, so stride, padding, dilation and groups need no special
// case. Float32 dense convs use im2col + sgemm (∂W = dY·colᵀ, ∂col = Wᵀ·dY then col2im), 1×1 ones
// the WebAssembly GEMM (wasm/convgrad.ts); float32 depthwise convs their own float32 kernels
// (depthwiseGradF32); float64 inputs (gradient checks) the direct loops, accumulating in float64.

function convGrad(inputs: readonly Tensor[], attrs: ConvAttrs, y: Tensor, gOut: Tensor): (Tensor | null)[] {
  const g = convGeometry(
    inputs.map((t) => t.shape),
    attrs,
  );
  const [x, w, b] = inputs as [Tensor, Tensor, Tensor?];
  const dY = preActivationGrad(convCard, inputs, attrs, y, gOut);
  const needX = x.requiresGrad;
  const needW = w.requiresGrad;
  const P = g.oh * g.ow;
  let gB: Float32Array | Float64Array | null = null;
  if (b && b.requiresGrad) {
    gB = gradArray(b);
    for (let n = 0; n < g.n; n++) {
      for (let m = 0; m < g.m; m++) {
        let s = 0;
        const o = (n * g.m + m) * P;
        for (let p = 0; p < P; p++) s += dY[o + p]!;
        gB[m] += s;
      }
    }
  }
  const allF32 = x.dtype === 'float32' && w.dtype === 'float32' && dY instanceof Float32Array;
  const depthwise = g.cg === 1 && g.mg === 1;
  let gX: Float32Array | Float64Array | null = null;
  let gW: Float32Array | Float64Array | null = null;
  if (allF32 && !depthwise) {
    ({ gX, gW } = convGradGemm(x.f32(), w.f32(), dY, g, needX, needW));
  } else if (allF32 && g.group === g.c && g.m === g.c) {
    ({ gX, gW } = depthwiseGradF32(x.f32(), w.f32(), dY, g, needX, needW));
  } else {
    ({ gX, gW } = convGradDirect(x.dataSync(), w.dataSync(), dY, g, needX, needW));
  }
  return [needX && gX ? gradOf(x, castTo(x, gX)) : null, needW && gW ? gradOf(w, castTo(w, gW)) : null, b ? (gB ? gradOf(b, gB) : null) : null].slice(0, inputs.length);
}

function castTo(t: Tensor, a: Float32Array | Float64Array): Float32Array | Float64Array {
  if (t.dtype === 'float64') return a instanceof Float64Array ? a : Float64Array.from(a);
  return a instanceof Float32Array ? a : Float32Array.from(a);
}

/**
 * The direct loops, one filter tap at a time: for each (image, output channel, input channel,
 * ky, kx), the outputs whose tap lands inside the input form a rectangle [oyLo, oyHi) ×
 * [oxLo, oxHi), so the inner loop runs without bounds tests:
 * ∂W[m, ci, ky, kx] += Σ dY[o]·X[tap(o)] and ∂X[tap(o)] += dY[o]·W[m, ci, ky, kx].
 */
function convGradDirect(X: ArrayLike<number>, W: ArrayLike<number>, dY: ArrayLike<number>, g: ConvGeometry, needX: boolean, needW: boolean) {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  // ∂X gathers at most kh·kw·(M/group) terms per element: float32 holds them for float32 inputs.
  const gX = needX ? (X instanceof Float32Array ? f32Array(g.n * g.c * h * w) : f64Array(g.n * g.c * h * w)) : null;
  const gW = needW ? f64Array(g.m * g.cg * kh * kw) : null;
  // Valid output ranges per tap row / column.
  const yLo = i32Array(kh);
  const yHi = i32Array(kh);
  const xLo = i32Array(kw);
  const xHi = i32Array(kw);
  for (let ky = 0; ky < kh; ky++) {
    const off = ky * dh - pt; // iy = oy·sh + off
    yLo[ky] = Math.min(oh, Math.max(0, Math.ceil(-off / sh)));
    yHi[ky] = Math.max(yLo[ky]!, Math.min(oh, Math.floor((h - 1 - off) / sh) + 1));
  }
  for (let kx = 0; kx < kw; kx++) {
    const off = kx * dw - pl;
    xLo[kx] = Math.min(ow, Math.max(0, Math.ceil(-off / sw)));
    xHi[kx] = Math.max(xLo[kx]!, Math.min(ow, Math.floor((w - 1 - off) / sw) + 1));
  }
  for (let n = 0; n < g.n; n++) {
    for (let m = 0; m < g.m; m++) {
      const c0 = Math.floor(m / g.mg) * g.cg;
      const yo = (n * g.m + m) * oh * ow;
      for (let ci = 0; ci < g.cg; ci++) {
        const xo = (n * g.c + c0 + ci) * h * w;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const wi = ((m * g.cg + ci) * kh + ky) * kw + kx;
            const wv = W[wi]!;
            const x0 = xLo[kx]!;
            const x1 = xHi[kx]!;
            let s = 0;
            for (let oy = yLo[ky]!; oy < yHi[ky]!; oy++) {
              const yr = yo + oy * ow;
              const xr = xo + (oy * sh - pt + ky * dh) * w + kx * dw - pl; // + ox·sw
              if (gX) for (let ox = x0; ox < x1; ox++) gX[xr + ox * sw] += dY[yr + ox]! * wv;
              if (gW) for (let ox = x0; ox < x1; ox++) s += dY[yr + ox]! * X[xr + ox * sw]!;
            }
            if (gW) gW[wi] += s;
          }
        }
      }
    }
  }
  return { gX, gW };
}

/**
 * Float32 dense convs: 1×1 stride-1 unpadded convs, and other convs of one group through their
 * im2col columns, on the WebAssembly GEMM (wasm/convgrad.ts, images side by side). Otherwise (no
 * WebAssembly, or groups) per image and group, ∂W += dY·colᵀ and ∂X = col2im(Wᵀ·dY), the
 * products through the Gemm card's fast kernel (matmulF32); a 1×1 conv reads X as col.
 */
function convGradGemm(X: Float32Array, W: Float32Array, dY: Float32Array, g: ConvGeometry, needX: boolean, needW: boolean) {
  const k = g.cg * g.kh * g.kw;
  const P = g.oh * g.ow;
  const direct = g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.pt === 0 && g.pl === 0 && g.pb === 0 && g.pr === 0;
  if (direct && wasmKernelsEnabled()) {
    const r = wasmPointwiseGrad(X, W, dY, g, needX, needW);
    if (r) return r;
  }
  if (!direct && g.group === 1 && wasmKernelsEnabled()) {
    const r = im2colGradWasm(X, W, dY, g, needX, needW);
    if (r) return r;
  }
  const gX = needX ? f32Array(g.n * g.c * g.h * g.w) : null;
  const gW = needW ? f32Array(g.m * k) : null;
  const col = direct || !needW ? null : f32Array(k * P);
  for (let n = 0; n < g.n; n++) {
    for (let gi = 0; gi < g.group; gi++) {
      const xo = (n * g.c + gi * g.cg) * g.h * g.w;
      const yo = (n * g.m + gi * g.mg) * P;
      if (gW) {
        // col: [k, P], the receptive fields of every output position.
        if (col) im2col(X, xo, g, 0, P, col);
        const part = col ? matmulF32(dY, yo, g.mg, P, false, col, 0, k, P, true) : matmulF32(dY, yo, g.mg, P, false, X, xo, k, P, true);
        const wo = gi * g.mg * k;
        for (let i = 0; i < part.length; i++) gW[wo + i] += part[i]!;
      }
      if (gX) {
        const dcol = matmulF32(W, gi * g.mg * k, g.mg, k, true, dY, yo, g.mg, P, false); // [k, P]
        if (direct) gX.set(dcol, xo);
        else col2imAdd(dcol, gX, xo, g);
      }
    }
  }
  return { gX, gW };
}

/** Floats of im2col columns per chunk of images in im2colGradWasm (16 MiB). */
const GRAD_COL_FLOATS = 1 << 22;

/**
 * A dense (group 1) conv's gradients through the 1×1 gradient kernels: the im2col columns
 * of a chunk of images, [images, C·kH·kW, P], are the input of a 1×1 conv with weight
 * [M, C·kH·kW] (the weight as it is stored) giving dY, so ∂W comes out directly and ∂X is
 * col2im of the columns' gradient. Null when the WebAssembly kernels are unavailable.
 */
function im2colGradWasm(X: Float32Array, W: Float32Array, dY: Float32Array, g: ConvGeometry, needX: boolean, needW: boolean) {
  const k = g.cg * g.kh * g.kw;
  const P = g.oh * g.ow;
  const imgs = Math.max(1, Math.min(g.n, Math.floor(GRAD_COL_FLOATS / Math.max(1, k * P))));
  const col = f32Array(imgs * k * P);
  const gX = needX ? f32Array(g.n * g.c * g.h * g.w) : null;
  let gW: Float32Array | null = null;
  for (let n0 = 0; n0 < g.n; n0 += imgs) {
    const cnt = Math.min(imgs, g.n - n0);
    if (needW) for (let j = 0; j < cnt; j++) im2col(X, (n0 + j) * g.c * g.h * g.w, g, 0, P, col, j * k * P, P); // ∂X needs no columns
    const flat: ConvGeometry = { ...g, n: cnt, c: k, cg: k, h: g.oh, w: g.ow, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, pt: 0, pl: 0, pb: 0, pr: 0, outShape: [cnt, g.m, g.oh, g.ow] };
    const r = wasmPointwiseGrad(col.subarray(0, cnt * k * P), W, dY.subarray(n0 * g.m * P, (n0 + cnt) * g.m * P), flat, needX, needW);
    if (!r) return null;
    if (r.gW) {
      if (!gW) gW = r.gW;
      else for (let i = 0; i < gW.length; i++) gW[i] += r.gW[i]!;
    }
    if (gX && r.gX) for (let j = 0; j < cnt; j++) col2imAdd(r.gX.subarray(j * k * P, (j + 1) * k * P), gX, (n0 + j) * g.c * g.h * g.w, g);
  }
  return { gX, gW };
}

/** Adds col[r, p] back onto the input tap it was read from (the adjoint of im2col). */
function col2imAdd(col: Float32Array, gX: Float32Array, xo: number, g: ConvGeometry): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  let r = 0;
  for (let ci = 0; ci < g.cg; ci++) {
    const plane = xo + ci * h * w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, r++) {
        let q = r * oh * ow;
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= h) {
            q += ow;
            continue;
          }
          const row = plane + iy * w;
          for (let ox = 0; ox < ow; ox++, q++) {
            const ix = ox * sw - pl + kx * dw;
            if (ix >= 0 && ix < w) gX[row + ix] += col[q]!;
          }
        }
      }
    }
  }
}

/**
 * Float32 depthwise conv (group = C = M) gradients.
 * ∂X is itself a depthwise conv: of dY, with every filter flipped, after putting sh − 1 zero rows
 * (sw − 1 zero columns) between dY's rows (columns) when strided, padded by span − 1 − pad on the
 * leading sides and whatever makes the output the input's size on the trailing ones. It runs on
 * the forward's WebAssembly depthwise kernel when that covers the geometry, else as JS loops.
 * ∂W[c, tap] = Σ dY·X over the tap's shifted window: per plane, X is copied into a zero-bordered
 * scratch plane so that every window lies inside it, and each tap is one dot product without
 * bounds tests (summed in double precision, as JS numbers are).
 */
function depthwiseGradF32(X: Float32Array, W: Float32Array, dY: Float32Array, g: ConvGeometry, needX: boolean, needW: boolean) {
  const gX = needX ? depthwiseInputGrad(W, dY, g) : null;
  const gW = needW ? depthwiseWeightGrad(X, dY, g) : null;
  return { gX, gW };
}

function depthwiseWeightGrad(X: Float32Array, dY: Float32Array, g: ConvGeometry): Float32Array {
  if (wasmKernelsEnabled()) {
    const r = wasmDepthwiseWeightGrad(X, dY, g);
    if (r) return r;
  }
  const { c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const taps = kh * kw;
  const wp = w + pl + g.pr;
  const hp = h + pt + g.pb;
  const acc = f64Array(c * taps);
  depthwiseScratch = growZeroed(depthwiseScratch, hp * wp);
  const pad = depthwiseScratch;
  // Offset of each tap in the padded plane. The taps are the inner loop: MobileNet's late planes
  // are 2×2 to 4×4, too short for an inner loop over output columns.
  const off = i32Array(taps);
  for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) off[ky * kw + kx] = ky * dh * wp + kx * dw;
  const sums = f64Array(taps);
  for (let plane = 0; plane < g.n * c; plane++) {
    const ch = plane % c;
    // Only the interior is written, so the zero border stays zero from plane to plane.
    for (let iy = 0, s = plane * h * w; iy < h; iy++) pad.set(X.subarray(s + iy * w, s + (iy + 1) * w), (iy + pt) * wp + pl);
    const yo = plane * oh * ow;
    if (kh === 3 && kw === 3) weightGrad3x3(dY, yo, pad, off, oh, ow, sh * wp, sw, acc, ch * 9);
    else {
      sums.fill(0);
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0, o = yo + oy * ow, a = oy * sh * wp; ox < ow; ox++, o++, a += sw) {
          const d = dY[o]!;
          for (let t = 0; t < taps; t++) sums[t] += d * pad[a + off[t]!]!;
        }
      }
      for (let t = 0; t < taps; t++) acc[ch * taps + t] += sums[t]!;
    }
  }
  return Float32Array.from(acc);
}

/** depthwiseWeightGrad's loop for 3×3 filters, with the nine sums in locals. */
function weightGrad3x3(dY: Float32Array, yo: number, pad: Float32Array, off: Int32Array, oh: number, ow: number, rowStep: number, sw: number, acc: Float64Array, ao: number): void {
  const o0 = off[0]!, o1 = off[1]!, o2 = off[2]!, o3 = off[3]!, o4 = off[4]!, o5 = off[5]!, o6 = off[6]!, o7 = off[7]!, o8 = off[8]!;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0, o = yo + oy * ow, a = oy * rowStep; ox < ow; ox++, o++, a += sw) {
      const d = dY[o]!;
      s0 += d * pad[a + o0]!;
      s1 += d * pad[a + o1]!;
      s2 += d * pad[a + o2]!;
      s3 += d * pad[a + o3]!;
      s4 += d * pad[a + o4]!;
      s5 += d * pad[a + o5]!;
      s6 += d * pad[a + o6]!;
      s7 += d * pad[a + o7]!;
      s8 += d * pad[a + o8]!;
    }
  }
  acc[ao] += s0;
  acc[ao + 1] += s1;
  acc[ao + 2] += s2;
  acc[ao + 3] += s3;
  acc[ao + 4] += s4;
  acc[ao + 5] += s5;
  acc[ao + 6] += s6;
  acc[ao + 7] += s7;
  acc[ao + 8] += s8;
}

function depthwiseInputGrad(W: Float32Array, dY: Float32Array, g: ConvGeometry): Float32Array {
  const { n, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow } = g;
  const taps = kh * kw;
  const gX = f32Array(n * c * h * w);
  // The transposed geometry: input dY with zeros inserted (hu × wu), filters flipped.
  const hu = (oh - 1) * sh + 1;
  const wu = (ow - 1) * sw + 1;
  const tpt = (kh - 1) * dh - pt;
  const tpl = (kw - 1) * dw - pl;
  const tpb = h - hu + pt;
  const tpr = w - wu + pl;
  if (wasmKernelsEnabled() && tpt >= 0 && tpl >= 0 && tpb >= 0 && tpr >= 0 && taps <= 49) {
    const flipped = f32Array(c * taps);
    for (let ch = 0; ch < c; ch++) for (let t = 0; t < taps; t++) flipped[ch * taps + t] = W[ch * taps + taps - 1 - t]!;
    const t: ConvGeometry = { ...g, h: hu, w: wu, sh: 1, sw: 1, pt: tpt, pl: tpl, pb: tpb, pr: tpr, oh: h, ow: w, outShape: [n, c, h, w] };
    const rt = runtime();
    if (sh === 1 && sw === 1) {
      if (wasmConv(dY, flipped, null, gX, t, NO_ACTIVATION)) return gX;
    } else if (rt) {
      // dY with the zeros between, written straight into kernel memory, where the conv reads
      // it in place (no JavaScript array to allocate, and no copy in).
      const size = n * c * hu * wu;
      const ptr = rt.alloc(scratchBytes(4 * size));
      try {
        const v = rt.f32();
        const o = f32Index(ptr);
        v.fill(0, o, o + size);
        for (let plane = 0; plane < n * c; plane++) {
          for (let oy = 0; oy < oh; oy++) {
            const s = (plane * oh + oy) * ow;
            const d = o + (plane * hu + oy * sh) * wu;
            for (let ox = 0; ox < ow; ox++) v[d + ox * sw] = dY[s + ox]!;
          }
        }
        if (wasmConv(v.subarray(o, o + size), flipped, null, gX, t, NO_ACTIVATION)) return gX;
      } finally {
        rt.release(ptr);
      }
    }
    gX.fill(0);
  }
  // JS: scatter each output's dY·W onto its window in a zero-bordered plane, then keep the interior.
  const wp = w + pl + g.pr;
  const hp = h + pt + g.pb;
  depthwiseScratch = growZeroed(depthwiseScratch, hp * wp);
  const acc = depthwiseScratch;
  for (let plane = 0; plane < n * c; plane++) {
    const wo = (plane % c) * taps;
    const yo = plane * oh * ow;
    acc.fill(0, 0, hp * wp);
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const wv = W[wo + ky * kw + kx]!;
        for (let oy = 0; oy < oh; oy++) {
          const yr = yo + oy * ow;
          const xr = (oy * sh + ky * dh) * wp + kx * dw;
          for (let ox = 0; ox < ow; ox++) acc[xr + ox * sw] += dY[yr + ox]! * wv;
        }
      }
    }
    for (let iy = 0, d = plane * h * w; iy < h; iy++, d += w) gX.set(acc.subarray((iy + pt) * wp + pl, (iy + pt) * wp + pl + w), d);
  }
  return gX;
}
