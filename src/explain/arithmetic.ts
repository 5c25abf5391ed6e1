import { ValueError } from '../core/errors.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { type Activation, activationFn } from '../kernels/activation.js';

/**
 * The arithmetic of one output element, written out: the multiply-adds of a conv window, a
 * linear row or a pool window, the bias, then the steps that follow (BN, activation, …).
 * Computed in float64 from the layer's own float32 inputs and weights; `output` is the layer's
 * float32 value, and `computed` the float64 result, which agree within `tolerance`.
 */
export interface Arithmetic {
  layer: string;
  index: number[];
  /** The multiply-adds: input value × weight for each term (conv window, linear row, pool window: weight 1 or 1/k). */
  terms: { input: number; weight: number; inputIndex: number[]; weightIndex?: number[] }[];
  /** Σ input × weight (a max pool: the largest input). */
  sum: number;
  bias?: number;
  /** Steps after the sum, in order, each with its value: BN, activation, residual add … */
  post: { op: string; formula: string; value: number }[];
  /** Equals the layer's output at `index`. */
  output: number;
  /** The whole computation in plain words and numbers, multi-line. */
  text: string;
  /** The float64 result of the written-out computation. */
  computed: number;
  /**
   * How far `computed` may be from `output`: the kernels sum in float32 in their own order, which
   * differs from an exact sum by at most about K·2⁻²⁴·Σ|x·w| for K terms and in practice by
   * √K·2⁻²⁴·Σ|x·w|; 1e-5·(Σ|x·w| + |bias|) covers that for every layer of these networks (K ≤ 1 152),
   * then it is carried through the post steps (scaled by BN's factor and the activation's slope).
   */
  tolerance: number;
}

export type Term = Arithmetic['terms'][number];
export type PostOp = Arithmetic['post'][number];

/** Relative tolerance of a float32 sum against its float64 value, of Σ|terms| (see Arithmetic.tolerance). */
export const SUM_RTOL = 1e-5;
/** Pointwise float32 functions (exp in sigmoid, divisions) against float64: relative plus an absolute floor. */
const POINT_RTOL = 1e-5;
const POINT_ATOL = 1e-7;
/** Terms written out in `text`; the `terms` array always holds all of them. */
const TEXT_TERMS = 48;

// ---------------------------------------------------------------------------------------------
// Numbers and ranges in words

const MINUS = '\u2212';

/**
 * A number for people: 4 significant digits, a real minus sign, no trailing zeros.
 *
 * @example
 * ```ts
 * import { fmtNum } from 'lightconv';
 *
 * fmtNum(-0.00001234); // '−1.234e-5'
 * fmtNum(3.14159, 3); // '3.14'
 * ```
 */
export function fmtNum(x: number, digits = 4): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : `${MINUS}∞`;
  if (x === 0) return '0';
  const a = Math.abs(x);
  let s: string;
  if (a >= 1e6 || a < 1e-4) s = a.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  else {
    s = a.toPrecision(digits);
    if (s.includes('.')) s = s.replace(/\.?0+$/, '');
  }
  return x < 0 ? `${MINUS}${s}` : s;
}

/**
 * 'lo…hi'
 *
 * @example
 * ```ts
 * import { fmtRange } from 'lightconv';
 *
 * fmtRange(-1.5, 2); // '−1.5…2'
 * ```
 */
export function fmtRange(lo: number, hi: number): string {
  return `${fmtNum(lo)}…${fmtNum(hi)}`;
}

export function fmtIndex(index: readonly number[]): string {
  return `[${index.join(', ')}]`;
}

export function fmtPercent(part: number, whole: number): string {
  return whole === 0 ? '0 %' : `${(100 * part / whole).toFixed(1)} %`;
}

/** Min and max of an array (NaN ignored). */
export function rangeOf(d: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** The position of the largest value (first one on ties). */
export function argMax(d: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < d.length; i++) if (d[i]! > d[best]!) best = i;
  return best;
}

export function argMin(d: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < d.length; i++) if (d[i]! < d[best]!) best = i;
  return best;
}

// ---------------------------------------------------------------------------------------------
// Indices

/** Checks a multi-index against a shape: a ValueError naming the layer and the shape when it does not fit. */
export function checkIndex(layer: string, shape: Shape, index: readonly number[]): void {
  const ok = Array.isArray(index) && index.length === shape.length && index.every((k, i) => Number.isInteger(k) && k >= 0 && k < shape[i]!);
  if (!ok) {
    const got = Array.isArray(index) ? fmtIndex(index) : String(index);
    throw new ValueError(`${layer}: index ${got} is outside its output of shape ${fmtShape(shape)} (one index per dim, each 0 ≤ i < size)`);
  }
}

export function flatOf(shape: Shape, index: readonly number[]): number {
  let off = 0;
  for (let i = 0; i < shape.length; i++) off = off * shape[i]! + index[i]!;
  return off;
}

export function unflat(shape: Shape, flat: number): number[] {
  const out = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i]!;
    out[i] = flat % d;
    flat = Math.floor(flat / d);
  }
  return out;
}

/** The index into a broadcast operand of shape `s` for an output index (ONNX/numpy broadcasting). */
export function broadcastIndex(s: Shape, outIndex: readonly number[]): number[] {
  const r = outIndex.length;
  return s.map((d, i) => (d === 1 ? 0 : outIndex[r - s.length + i]!));
}

function valueAt(t: Tensor, index: readonly number[]): number {
  return t.dataSync()[flatOf(t.shape, index)]!;
}

// ---------------------------------------------------------------------------------------------
// Post steps (BN, activation) and assembling the result

/** A step applied to the running value after the sum: how it is computed, and the layer's real value after it. */
export interface PostStage {
  op: string;
  /** The float64 computation from the previous value. */
  apply: (prev: number) => number;
  /** The formula with the numbers filled in, from the previous value. */
  formula: (prev: number) => string;
  /** The layer's float32 value after this step. */
  actual: number;
  /** How much the step can magnify a difference in its input (|BN scale|, an activation's largest slope). */
  gain: number;
}

export function bnStage(op: string, stats: { mean: number; variance: number; eps: number; gamma: number; beta: number }, actual: number): PostStage {
  const { mean, variance, eps, gamma, beta } = stats;
  const a = gamma / Math.sqrt(variance + eps);
  return {
    op,
    apply: (x) => a * x + (beta - mean * a),
    formula: (x) => `(${fmtNum(x)} ${MINUS} ${fmtParen(mean)}) / √(${fmtNum(variance)} + ${fmtNum(eps)}) × ${fmtParen(gamma)} + ${fmtParen(beta)} = ${fmtNum(actual)}`,
    actual,
    gain: Math.abs(a),
  };
}

function fmtParen(x: number): string {
  return x < 0 ? `(${fmtNum(x)})` : fmtNum(x);
}

/** An activation's name and formula in words. */
export function activationName(a: Activation): string {
  switch (a.kind) {
    case 'none':
      return 'identity';
    case 'relu':
      return 'ReLU';
    case 'leaky_relu':
      return `LeakyReLU(${fmtNum(a.alpha)})`;
    case 'clip':
      return a.min === 0 && a.max === 6 ? 'ReLU6' : `clip(${fmtNum(a.min)}, ${fmtNum(a.max)})`;
    case 'sigmoid':
      return 'sigmoid';
    case 'hard_sigmoid':
      return 'hard-sigmoid';
    case 'hard_swish':
      return 'hard-swish';
    case 'silu':
      return 'SiLU';
    case 'tanh':
      return 'tanh';
  }
}

function activationFormula(a: Activation, x: number, y: number): string {
  const v = fmtParen(x);
  const r = fmtNum(y);
  switch (a.kind) {
    case 'none':
      return `${v} = ${r}`;
    case 'relu':
      return `max(0, ${fmtNum(x)}) = ${r}`;
    case 'leaky_relu':
      return x >= 0 ? `${fmtNum(x)} ≥ 0, kept: ${r}` : `${fmtNum(a.alpha)} × ${v} = ${r}`;
    case 'clip':
      return `min(max(${fmtNum(x)}, ${fmtNum(a.min)}), ${fmtNum(a.max)}) = ${r}`;
    case 'sigmoid':
      return `1 / (1 + e^${fmtParen(-x)}) = ${r}`;
    case 'hard_sigmoid':
      return `min(max(${fmtNum(a.alpha)} × ${v} + ${fmtNum(a.beta)}, 0), 1) = ${r}`;
    case 'hard_swish':
      return `${v} × min(max(${v} + 3, 0), 6) / 6 = ${r}`;
    case 'silu':
      return `${v} × sigmoid(${fmtNum(x)}) = ${r}`;
    case 'tanh':
      return `tanh(${fmtNum(x)}) = ${r}`;
  }
}

/** The largest slope of an activation (how much it can magnify an error in its input). */
function activationGain(a: Activation): number {
  switch (a.kind) {
    case 'hard_swish':
      return 1.5;
    case 'silu':
      return 1.1;
    case 'sigmoid':
      return 0.25;
    case 'hard_sigmoid':
      return Math.abs(a.alpha);
    case 'leaky_relu':
      return Math.max(1, Math.abs(a.alpha));
    default:
      return 1;
  }
}

export function activationStage(a: Activation, actual: number, op = activationName(a)): PostStage {
  const f = activationFn(a);
  return { op, apply: f, formula: (x) => activationFormula(a, x, actual), actual, gain: activationGain(a) };
}

/** A stage adding another value (the residual input). */
export function addStage(op: string, other: number, what: string, actual: number): PostStage {
  return { op, apply: (x) => x + other, formula: (x) => `${fmtNum(x)} + ${fmtParen(other)} (${what}) = ${fmtNum(actual)}`, actual, gain: 1 };
}

/** A stage multiplying by a factor (an attention gate). */
export function scaleStage(op: string, factor: number, what: string, actual: number): PostStage {
  return { op, apply: (x) => x * factor, formula: (x) => `${fmtNum(x)} × ${fmtNum(factor)} (${what}) = ${fmtNum(actual)}`, actual, gain: Math.abs(factor) };
}

interface Assembly {
  layer: string;
  index: number[];
  /** The first line: what is computed. */
  head: string;
  terms: Term[];
  /** How each term is written: default 'input[…] × weight[…] = x × w'. */
  termText?: (t: Term) => string;
  sum: number;
  sumText?: string;
  bias?: number;
  /** The layer's float32 value right after sum + bias (the conv's own output when post steps follow). */
  sumActual: number;
  post?: PostStage[];
  output: number;
  /** Tolerance of the sum against sumActual; default SUM_RTOL·(Σ|x·w| + |bias|). */
  tolerance?: number;
  /** Extra lines after the result. */
  notes?: string[];
}

function defaultTermText(t: Term, padding?: ReadonlySet<number[]>): string {
  const pad = padding?.has(t.inputIndex) ? ' (padding)' : '';
  const w = t.weightIndex ? `weight${fmtIndex(t.weightIndex)}` : 'weight';
  return `input${fmtIndex(t.inputIndex)}${pad} × ${w} = ${fmtParen(t.input)} × ${fmtParen(t.weight)} = ${fmtNum(t.input * t.weight)}`;
}

/** Builds the Arithmetic: the float64 chain, its tolerance and the text. */
export function assemble(a: Assembly): Arithmetic {
  let scale = Math.abs(a.bias ?? 0);
  for (const t of a.terms) scale += Math.abs(t.input * t.weight);
  let tol = a.tolerance ?? SUM_RTOL * scale;
  let computed = a.sum + (a.bias ?? 0);
  const lines = [a.head];
  const show = a.terms.length <= TEXT_TERMS ? a.terms : a.terms.slice(0, TEXT_TERMS);
  const tt = a.termText ?? defaultTermText;
  for (const t of show) lines.push(`  ${tt(t)}`);
  if (a.terms.length > show.length) lines.push(`  … and ${a.terms.length - show.length} more terms (all of them are in \`terms\`)`);
  lines.push(a.sumText ?? `sum = ${fmtNum(a.sum)}`);
  if (a.bias !== undefined) lines.push(`+ bias ${fmtParen(a.bias)} = ${fmtNum(a.sum + a.bias)}`);
  const post: PostOp[] = [];
  let prevActual = a.sumActual;
  for (const s of a.post ?? []) {
    // The next step sees the layer's float32 value; its own rounding adds to the carried difference.
    tol = tol * s.gain + POINT_RTOL * Math.max(Math.abs(s.actual), Math.abs(prevActual)) + POINT_ATOL;
    computed = s.apply(computed);
    const formula = s.formula(prevActual);
    post.push({ op: s.op, formula, value: s.actual });
    lines.push(`${s.op}: ${formula}`);
    prevActual = s.actual;
  }
  const diff = Math.abs(computed - a.output);
  lines.push(`output${fmtIndex(a.index)} = ${fmtNum(a.output, 7)} (the layer's float32 value; computed here in float64: ${fmtNum(computed, 7)}, difference ${fmtNum(diff, 2)}${diff <= tol ? `, within the tolerance ${fmtNum(tol, 2)}` : `, MORE than the tolerance ${fmtNum(tol, 2)}`})`);
  if (a.notes) lines.push(...a.notes);
  return {
    layer: a.layer,
    index: [...a.index],
    terms: a.terms,
    sum: a.sum,
    ...(a.bias !== undefined ? { bias: a.bias } : {}),
    post,
    output: a.output,
    text: lines.join('\n'),
    computed,
    tolerance: tol,
  };
}

// ---------------------------------------------------------------------------------------------
// Per kind

export interface ConvParams {
  weight: Tensor;
  bias?: Tensor | null;
  /** One per spatial axis. */
  strides: readonly number[];
  /** ONNX order [begin…, end…]. */
  pads: readonly number[];
  dilations: readonly number[];
  group: number;
}

/**
 * One output of a 1-D or 2-D convolution: the window of every input channel of its group ×
 * the weights (padded taps shown as zeros, with their out-of-range input index), the sum, the bias.
 */
export function convArithmetic(layer: string, x: Tensor, p: ConvParams, y: Tensor, index: number[], post: PostStage[] = [], final?: number): Arithmetic {
  checkIndex(layer, y.shape, index);
  const two = x.rank === 4;
  const [C, H, W] = two ? [x.shape[1]!, x.shape[2]!, x.shape[3]!] : [x.shape[1]!, 1, x.shape[2]!];
  const ws = p.weight.shape;
  const [M, cg, kh, kw] = two ? [ws[0]!, ws[1]!, ws[2]!, ws[3]!] : [ws[0]!, ws[1]!, 1, ws[2]!];
  const [sh, sw] = two ? [p.strides[0]!, p.strides[1]!] : [1, p.strides[0]!];
  const [dh, dw] = two ? [p.dilations[0]!, p.dilations[1]!] : [1, p.dilations[0]!];
  const [pt, pl] = two ? [p.pads[0]!, p.pads[1]!] : [0, p.pads[0]!];
  const n = index[0]!;
  const m = index[1]!;
  const [oy, ox] = two ? [index[2]!, index[3]!] : [0, index[2]!];
  const g = Math.floor(m / (M / p.group));
  const xd = x.dataSync();
  const wd = p.weight.dataSync();
  const terms: Term[] = [];
  let sum = 0;
  const padding = new Set<number[]>();
  for (let ci = 0; ci < cg; ci++) {
    const c = g * cg + ci;
    for (let ky = 0; ky < kh; ky++) {
      const iy = oy * sh - pt + ky * dh;
      for (let kx = 0; kx < kw; kx++) {
        const ix = ox * sw - pl + kx * dw;
        const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
        const v = inside ? xd[((n * C + c) * H + iy) * W + ix]! : 0;
        const wv = wd[((m * cg + ci) * kh + ky) * kw + kx]!;
        sum += v * wv;
        const inputIndex = two ? [n, c, iy, ix] : [n, c, ix];
        if (!inside) padding.add(inputIndex);
        terms.push({ input: v, weight: wv, inputIndex, weightIndex: two ? [m, ci, ky, kx] : [m, ci, kx] });
      }
    }
  }
  const bias = p.bias ? p.bias.dataSync()[m]! : undefined;
  const window = two ? `${kh}×${kw}` : `${kw}`;
  const groupWords = p.group === 1 ? `${cg} input channel${cg === 1 ? '' : 's'}` : cg === 1 ? `input channel ${g * cg} only (depthwise: one channel per filter)` : `input channels ${g * cg}…${g * cg + cg - 1} (group ${g} of ${p.group})`;
  const head =
    `${layer}: output${fmtIndex(index)} = Σ input × weight over ${groupWords} × a ${window} window` +
    `${two ? ` at rows ${oy * sh - pt}…${oy * sh - pt + (kh - 1) * dh}, columns ${ox * sw - pl}…${ox * sw - pl + (kw - 1) * dw}` : ` at positions ${ox * sw - pl}…${ox * sw - pl + (kw - 1) * dw}`}` +
    `${dh > 1 || dw > 1 ? ` (dilation ${two ? `${dh}×${dw}` : dw}: every ${dw === 2 ? 'second' : `${dw}th`} pixel)` : ''}; ${terms.length} terms${padding.size ? `, ${padding.size} of them padding (zeros)` : ''}`;
  const sumActual = valueAt(y, index);
  return assemble({ layer, index, head, terms, termText: (t) => defaultTermText(t, padding), sum, ...(bias !== undefined ? { bias } : {}), sumActual, post, output: final ?? (post.length ? post[post.length - 1]!.actual : sumActual) });
}

/** One output of y = x·Wᵀ + b (W [out, in]; `transposed` false: W is [in, out], as ONNX Gemm with transB 0 holds it). */
export function linearArithmetic(layer: string, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, y: Tensor, index: number[], opts: { transposed?: boolean; alpha?: number; beta?: number; post?: PostStage[] } = {}): Arithmetic {
  checkIndex(layer, y.shape, index);
  const [n, o] = [index[0]!, index[1]!];
  const K = x.shape[1]!;
  const outer = weight.shape[opts.transposed === false ? 1 : 0]!;
  const xd = x.dataSync();
  const wd = weight.dataSync();
  const alpha = opts.alpha ?? 1;
  const terms: Term[] = [];
  let sum = 0;
  for (let k = 0; k < K; k++) {
    const v = xd[n * K + k]!;
    const wv = alpha * (opts.transposed === false ? wd[k * outer + o]! : wd[o * K + k]!);
    sum += v * wv;
    terms.push({ input: v, weight: wv, inputIndex: [n, k], weightIndex: opts.transposed === false ? [k, o] : [o, k] });
  }
  let b: number | undefined;
  if (bias) {
    const bd = bias.dataSync();
    b = (opts.beta ?? 1) * (bias.size === 1 ? bd[0]! : bias.rank === 2 ? bd[flatOf(bias.shape, broadcastIndex(bias.shape, index))]! : bd[o]!);
  }
  const head = `${layer}: output${fmtIndex(index)} = Σ input × weight over the ${K} inputs of row ${n}${alpha !== 1 ? ` (weights × alpha ${fmtNum(alpha)})` : ''}${b !== undefined ? ' + bias' : ''}`;
  const sumActual = valueAt(y, index);
  return assemble({ layer, index, head, terms, sum, ...(b !== undefined ? { bias: b } : {}), sumActual, post: opts.post ?? [], output: opts.post?.length ? opts.post[opts.post.length - 1]!.actual : sumActual });
}

export interface PoolParams {
  kind: 'max' | 'avg';
  kernel: readonly number[];
  strides: readonly number[];
  /** ONNX order [begin…, end…]. */
  pads: readonly number[];
  dilations?: readonly number[];
  /** Average pool: whether padded taps count in the divisor. */
  countIncludePad?: boolean;
}

/**
 * One output of a 2-D (or 1-D) max or average pool. Max: the window's values (weight 1) and which
 * one won, padding never wins. Average: each value × 1/count, count = the taps inside the input
 * (or all taps with countIncludePad, never the part of a window past the end padding).
 */
export function poolArithmetic(layer: string, x: Tensor, p: PoolParams, y: Tensor, index: number[]): Arithmetic {
  checkIndex(layer, y.shape, index);
  const two = x.rank === 4;
  const [C, H, W] = two ? [x.shape[1]!, x.shape[2]!, x.shape[3]!] : [x.shape[1]!, 1, x.shape[2]!];
  const [kh, kw] = two ? [p.kernel[0]!, p.kernel[1]!] : [1, p.kernel[0]!];
  const [sh, sw] = two ? [p.strides[0]!, p.strides[1]!] : [1, p.strides[0]!];
  const dil = p.dilations ?? (two ? [1, 1] : [1]);
  const [dh, dw] = two ? [dil[0]!, dil[1]!] : [1, dil[0]!];
  const [pt, pl, pb, pr] = two ? [p.pads[0]!, p.pads[1]!, p.pads[2]!, p.pads[3]!] : [0, p.pads[0]!, 0, p.pads[1]!];
  const [n, c] = [index[0]!, index[1]!];
  const [oy, ox] = two ? [index[2]!, index[3]!] : [0, index[2]!];
  const xd = x.dataSync();
  const taps: { v: number; idx: number[]; inside: boolean; inPad: boolean }[] = [];
  for (let ky = 0; ky < kh; ky++) {
    const iy = oy * sh - pt + ky * dh;
    for (let kx = 0; kx < kw; kx++) {
      const ix = ox * sw - pl + kx * dw;
      const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
      // A tap past the end padding (ceil mode) is not a padded tap: it counts for nothing.
      const inPad = iy >= -pt && iy < H + pb && ix >= -pl && ix < W + pr;
      taps.push({ v: inside ? xd[((n * C + c) * H + iy) * W + ix]! : 0, idx: two ? [n, c, iy, ix] : [n, c, ix], inside, inPad });
    }
  }
  const actual = valueAt(y, index);
  const win = two ? `${kh}×${kw}` : `${kw}`;
  if (p.kind === 'max') {
    const real = taps.filter((t) => t.inside);
    let best = real[0];
    for (const t of real) if (best === undefined || t.v > best.v || Number.isNaN(t.v)) best = t;
    const terms = real.map((t) => ({ input: t.v, weight: 1, inputIndex: t.idx }));
    const skipped = taps.length - real.length;
    const head = `${layer}: output${fmtIndex(index)} = the largest of the ${real.length} input values under the ${win} window${skipped ? ` (${skipped} padded taps never win)` : ''}`;
    return assemble({
      layer,
      index,
      head,
      terms,
      termText: (t) => `input${fmtIndex(t.inputIndex)} = ${fmtNum(t.input)}${t === terms[real.indexOf(best!)] ? '  ← the largest' : ''}`,
      sum: best ? best.v : -Infinity,
      sumText: `max = ${fmtNum(best ? best.v : -Infinity)}, at input${fmtIndex(best ? best.idx : [])}`,
      sumActual: actual,
      output: actual,
      tolerance: 0,
    });
  }
  const counted = taps.filter((t) => (p.countIncludePad ? t.inPad : t.inside));
  const outside = new Set(counted.filter((t) => !t.inside).map((t) => t.idx));
  const count = counted.length;
  const terms = counted.map((t) => ({ input: t.v, weight: 1 / count, inputIndex: t.idx }));
  let total = 0;
  for (const t of counted) total += t.v;
  const sum = total / count;
  const head = `${layer}: output${fmtIndex(index)} = the mean of the ${win} window: the sum of ${count} values / ${count}${p.countIncludePad ? ' (padded zeros counted)' : counted.length < taps.length ? ` (the ${taps.length - count} padded taps are not counted)` : ''}`;
  return assemble({
    layer,
    index,
    head,
    terms,
    termText: (t) => `input${fmtIndex(t.inputIndex)}${outside.has(t.inputIndex) ? ' (padding)' : ''} = ${fmtNum(t.input)}`,
    sum,
    sumText: `sum = ${fmtNum(total)}; ${fmtNum(total)} / ${count} = ${fmtNum(sum)}`,
    sumActual: actual,
    output: actual,
  });
}

/** One output of a global average pool: the mean of the whole H×W plane. */
export function globalPoolArithmetic(layer: string, x: Tensor, y: Tensor, index: number[]): Arithmetic {
  checkIndex(layer, y.shape, index);
  const [n, c] = [index[0]!, index[1]!];
  const plane = sizeOf(x.shape.slice(2));
  const spatial = x.shape.slice(2);
  const xd = x.dataSync();
  const base = (n * x.shape[1]! + c) * plane;
  const terms: Term[] = [];
  let total = 0;
  for (let i = 0; i < plane; i++) {
    const v = xd[base + i]!;
    total += v;
    terms.push({ input: v, weight: 1 / plane, inputIndex: [n, c, ...unflat(spatial, i)] });
  }
  const actual = valueAt(y, index);
  return assemble({
    layer,
    index,
    head: `${layer}: output${fmtIndex(index)} = the mean of channel ${c}'s whole ${spatial.join('×')} map (${plane} values)`,
    terms,
    termText: (t) => `input${fmtIndex(t.inputIndex)} = ${fmtNum(t.input)}`,
    sum: total / plane,
    sumText: `sum = ${fmtNum(total)}; ${fmtNum(total)} / ${plane} = ${fmtNum(total / plane)}`,
    sumActual: actual,
    output: actual,
  });
}

/** One output of batch norm (inference): y = (x − mean)/√(var + eps)·γ + β, as x·a + b. */
export function batchNormArithmetic(layer: string, x: Tensor, stats: { mean: Tensor; variance: Tensor; gamma: Tensor; beta: Tensor; eps: number }, y: Tensor, index: number[]): Arithmetic {
  checkIndex(layer, y.shape, index);
  const c = index[1]!;
  const mean = stats.mean.dataSync()[c]!;
  const variance = stats.variance.dataSync()[c]!;
  const gamma = stats.gamma.dataSync()[c]!;
  const beta = stats.beta.dataSync()[c]!;
  const a = gamma / Math.sqrt(variance + stats.eps);
  const b = beta - mean * a;
  const v = valueAt(x, index);
  const actual = valueAt(y, index);
  return assemble({
    layer,
    index,
    head: `${layer}: output${fmtIndex(index)} = (x ${MINUS} mean) / √(var + ε) × γ + β with channel ${c}'s running mean ${fmtNum(mean)}, var ${fmtNum(variance)}, ε ${fmtNum(stats.eps)}, γ ${fmtNum(gamma)}, β ${fmtNum(beta)} — the same as x × ${fmtNum(a)} + ${fmtParen(b)}`,
    terms: [{ input: v, weight: a, inputIndex: [...index] }],
    termText: (t) => `input${fmtIndex(t.inputIndex)} × scale γ/√(var + ε) = ${fmtParen(t.input)} × ${fmtNum(t.weight)} = ${fmtNum(t.input * t.weight)}`,
    sum: v * a,
    bias: b,
    sumActual: actual,
    output: actual,
    notes: [`as written: (${fmtNum(v)} ${MINUS} ${fmtParen(mean)}) / √(${fmtNum(variance)} + ${fmtNum(stats.eps)}) × ${fmtParen(gamma)} + ${fmtParen(beta)} = ${fmtNum(a * v + b)}`],
  });
}

/** One output of a pointwise activation. */
export function activationArithmetic(layer: string, a: Activation, x: Tensor, y: Tensor, index: number[]): Arithmetic {
  checkIndex(layer, y.shape, index);
  const v = valueAt(x, index);
  const actual = valueAt(y, index);
  return assemble({
    layer,
    index,
    head: `${layer}: output${fmtIndex(index)} = ${activationName(a)}(input${fmtIndex(index)})`,
    terms: [{ input: v, weight: 1, inputIndex: [...index] }],
    termText: (t) => `input${fmtIndex(t.inputIndex)} = ${fmtNum(t.input)}`,
    sum: v,
    sumText: `x = ${fmtNum(v)}`,
    sumActual: v,
    post: [activationStage(a, actual)],
    output: actual,
    tolerance: 0,
  });
}

export type BinaryKind = 'Add' | 'Sub' | 'Mul' | 'Div';

/** One output of an elementwise op of two tensors (broadcast), e.g. a residual add or an attention multiply. */
export function binaryArithmetic(layer: string, op: BinaryKind, a: Tensor, b: Tensor, y: Tensor, index: number[], names: [string, string] = ['a', 'b']): Arithmetic {
  checkIndex(layer, y.shape, index);
  const ia = broadcastIndex(a.shape, index);
  const ib = broadcastIndex(b.shape, index);
  const va = valueAt(a, ia);
  const vb = valueAt(b, ib);
  const actual = valueAt(y, index);
  const sym = { Add: '+', Sub: MINUS, Mul: '×', Div: '/' }[op];
  const head = `${layer}: output${fmtIndex(index)} = ${names[0]}${fmtIndex(ia)} ${sym} ${names[1]}${fmtIndex(ib)}${b.size < y.size && op !== 'Add' && op !== 'Sub' ? ` (${names[1]} ${fmtShape(b.shape)} is broadcast)` : ''}`;
  if (op === 'Mul' || op === 'Div') {
    const w = op === 'Mul' ? vb : 1 / vb;
    return assemble({
      layer,
      index,
      head,
      terms: [{ input: va, weight: w, inputIndex: ia, weightIndex: ib }],
      termText: () => `${fmtParen(va)} ${sym} ${fmtParen(vb)} = ${fmtNum(op === 'Mul' ? va * vb : va / vb)}`,
      sum: op === 'Mul' ? va * vb : va / vb,
      sumActual: actual,
      output: actual,
      tolerance: POINT_RTOL * Math.abs(actual) + POINT_ATOL,
    });
  }
  const sb = op === 'Add' ? 1 : -1;
  return assemble({
    layer,
    index,
    head,
    terms: [
      { input: va, weight: 1, inputIndex: ia },
      { input: vb, weight: sb, inputIndex: ib },
    ],
    termText: (t) => `${t.inputIndex === ia ? names[0] : names[1]}${fmtIndex(t.inputIndex)} = ${fmtNum(t.input)}`,
    sum: va + sb * vb,
    sumText: `${fmtNum(va)} ${sym} ${fmtParen(vb)} = ${fmtNum(va + sb * vb)}`,
    sumActual: actual,
    output: actual,
  });
}

/** One output of softmax along `axis`: e^(x − max) / Σ e^(x − max). */
export function softmaxArithmetic(layer: string, x: Tensor, y: Tensor, axis: number, index: number[], labels?: readonly string[]): Arithmetic {
  checkIndex(layer, y.shape, index);
  const xd = x.dataSync();
  const len = x.shape[axis]!;
  const terms: Term[] = [];
  const others: number[] = [];
  for (let k = 0; k < len; k++) {
    const idx = [...index];
    idx[axis] = k;
    others.push(xd[flatOf(x.shape, idx)]!);
  }
  const max = Math.max(...others);
  let total = 0;
  for (let k = 0; k < len; k++) {
    const idx = [...index];
    idx[axis] = k;
    const e = Math.exp(others[k]! - max);
    total += e;
    terms.push({ input: others[k]!, weight: 1, inputIndex: idx });
  }
  const me = others[index[axis]!]!;
  const eMe = Math.exp(me - max);
  const actual = valueAt(y, index);
  const label = (k: number) => (labels?.[k] !== undefined ? ` (${labels[k]})` : '');
  return assemble({
    layer,
    index,
    head: `${layer}: output${fmtIndex(index)} = e^(x ${MINUS} max) / Σ e^(x ${MINUS} max) over the ${len} scores along axis ${axis}`,
    terms,
    termText: (t) => `score${fmtIndex(t.inputIndex)}${label(t.inputIndex[axis]!)} = ${fmtNum(t.input)} → e^(${fmtNum(t.input)} ${MINUS} ${fmtParen(max)}) = ${fmtNum(Math.exp(t.input - max))}`,
    sum: total,
    sumText: `Σ e^(x ${MINUS} max) = ${fmtNum(total)}`,
    sumActual: total,
    post: [{ op: 'divide', apply: () => eMe / total, formula: () => `${fmtNum(eMe)} / ${fmtNum(total)} = ${fmtNum(actual)}`, actual, gain: 0 }],
    output: actual,
    tolerance: 0,
  });
}

/**
 * One output of an op that only moves values (flatten, reshape, dropout at inference): which input
 * it is. `source` names where the value comes from when that is not the step's own input.
 */
export function copyArithmetic(layer: string, what: string, x: Tensor, y: Tensor, index: number[], source = 'input'): Arithmetic {
  checkIndex(layer, y.shape, index);
  const flat = flatOf(y.shape, index);
  const from = unflat(x.shape, flat);
  const v = x.dataSync()[flat]!;
  const actual = valueAt(y, index);
  return assemble({
    layer,
    index,
    head: `${layer}: output${fmtIndex(index)} is ${source}${fmtIndex(from)} unchanged (${what})`,
    terms: [{ input: v, weight: 1, inputIndex: from }],
    termText: (t) => `${source}${fmtIndex(t.inputIndex)} = ${fmtNum(t.input)}`,
    sum: v,
    sumActual: actual,
    output: actual,
    tolerance: 0,
  });
}
