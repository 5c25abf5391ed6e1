import { DTYPES, f64Array, f32Array } from '../core/dtype.js';
import { ShapeError } from '../core/errors.js';
import { type OpCard, apply } from '../core/op.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { type Activation, NO_ACTIVATION, activateInPlace, activationFn } from './activation.js';
import { gradArray, gradOf, preActivationGrad } from './grad.js';
import { outputBuffer } from '../core/storage.js';
import { wasmChannelAffine } from './wasm/elementwise.js';
import { wasmActivation } from './wasm/runtime.js';

/**
 * Batch normalisation at inference, per channel (axis 1) of any [N, C, …] input:
 * y = scale·(x − mean)/sqrt(var + epsilon) + bias, then an optional fused activation.
 * Epsilon is the model's: MobileNetV3 uses 1e-3, EfficientNet 1e-5 (ONNX's default).
 */
export interface BatchNormAttrs {
  readonly epsilon: number;
  /** Applied to the normalised value (BN + ReLU fused); default none. */
  readonly activation?: Activation;
}

const PARAMS = ['scale', 'bias', 'mean', 'var'] as const;

function checkParams(op: string, channels: number, params: readonly (Shape | undefined)[], names: readonly string[] = PARAMS): void {
  names.forEach((name, i) => {
    const p = params[i];
    if (!p || p.length !== 1 || p[0] !== channels) {
      throw new ShapeError(`${op}: ${name} has shape ${p ? fmtShape(p) : '(missing)'}, expected [${channels}]`);
    }
  });
}

/**
 * The per-channel affine map y = a·x + b equivalent to the normalisation, in float64:
 * a = scale/sqrt(var + eps), b = bias − mean·a.
 */
export function batchNormAffine(scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: number): { a: Float64Array; b: Float64Array } {
  return affineOf(scale.dataSync(), bias.dataSync(), mean.dataSync(), variance.dataSync(), epsilon);
}

function affineOf(s: ArrayLike<number>, bi: ArrayLike<number>, m: ArrayLike<number>, v: ArrayLike<number>, epsilon: number): { a: Float64Array; b: Float64Array } {
  const c = s.length;
  const a = f64Array(c);
  const b = f64Array(c);
  for (let i = 0; i < c; i++) {
    a[i] = s[i]! / Math.sqrt(v[i]! + epsilon);
    b[i] = bi[i]! - m[i]! * a[i]!;
  }
  return { a, b };
}

/** The fast loop of every batch norm: y = a[c]·x + b[c] per channel plane of a float32 [N, C, …] input. */
function applyChannelAffine(x: Tensor, { a, b }: { a: Float64Array; b: Float64Array }, activation?: Activation, out = f32Array(x.size)): Tensor {
  const C = x.shape[1]!;
  const inner = sizeOf(x.shape.slice(2));
  const xd = x.f32();
  for (let start = 0, c = 0; start < out.length; start += inner, c = (c + 1) % C) {
    const ac = a[c]!;
    const bc = b[c]!;
    const end = start + inner;
    for (let i = start; i < end; i++) out[i] = ac * xd[i]! + bc;
    // While the plane is still in cache.
    if (activation) activateInPlace(out, activation, start, end);
  }
  return new Tensor(out, x.shape, 'float32');
}

/**
 * The inference BatchNormalization op card (attributes: {@link BatchNormAttrs}); inputs x, scale,
 * bias, mean, variance. {@link batchNorm} applies it.
 */
export const batchNormCard: OpCard<BatchNormAttrs> = {
  name: 'BatchNormalization',
  shape([x, ...params]) {
    if (x!.length < 2) throw new ShapeError(`BatchNormalization: input must be [N, C, …], got ${fmtShape(x!)}`);
    checkParams('BatchNormalization', x![1]!, params);
    return x!;
  },

  reference([x, scale, bias, mean, variance], attrs) {
    const act = activationFn(attrs.activation ?? NO_ACTIVATION);
    const C = x!.shape[1]!;
    const inner = sizeOf(x!.shape.slice(2));
    const xd = x!.dataSync();
    const s = scale!.dataSync();
    const b = bias!.dataSync();
    const m = mean!.dataSync();
    const v = variance!.dataSync();
    const out = DTYPES[x!.dtype].make(x!.size);
    for (let i = 0; i < out.length; i++) {
      const c = Math.floor(i / inner) % C;
      out[i] = act((s[c]! * (xd[i]! - m[c]!)) / Math.sqrt(v[c]! + attrs.epsilon) + b[c]!);
    }
    return new Tensor(out, x!.shape, x!.dtype);
  },

  cpu(inputs, attrs) {
    const [x, scale, bias, mean, variance] = inputs as Tensor[];
    if (x!.dtype !== 'float32') return batchNormCard.reference(inputs, attrs);
    const affine = () => batchNormAffine(scale!, bias!, mean!, variance!, attrs.epsilon);
    // In a graph run: the WebAssembly kernel, in place in kernel memory.
    const C = x!.shape[1]!;
    const inner = sizeOf(x!.shape.slice(2));
    const out = outputBuffer(x!.size);
    const act = attrs.activation ?? NO_ACTIVATION;
    const params = [scale!, bias!, mean!, variance!].map((t) => t.dataSync());
    if (wasmChannelAffine(x!.f32(), out, x!.shape[0]!, C, inner, params, attrs.epsilon, affine, act)) {
      if (wasmActivation(act.kind) === 'none' && act.kind !== 'none') activateInPlace(out, act);
      return new Tensor(out, x!.shape, 'float32');
    }
    return applyChannelAffine(x!, affine(), attrs.activation, out);
  },
  grad: batchNormGrad,
};

/**
 * Inference batch norm of an [N, C, …] input with per-channel scale, bias, running mean and
 * running variance (each [C]): y = scale·(x − mean)/sqrt(var + epsilon) + bias, then
 * `attrs.activation` if given. Default epsilon 1e-5 (ONNX's). Throws ShapeError for an input of
 * rank below 2 or a parameter that is not [C].
 *
 * @example
 * ```ts
 * import { Tensor, batchNorm } from 'lightconv';
 *
 * const x = Tensor.randn([2, 4, 8, 8], { seed: 0 });
 * const [scale, bias, mean, variance] = [Tensor.ones([4]), Tensor.zeros([4]), Tensor.zeros([4]), Tensor.ones([4])];
 * const y = batchNorm(x, scale, bias, mean, variance, { epsilon: 1e-3, activation: { kind: 'relu' } });
 * ```
 */
export function batchNorm(
  x: Tensor,
  scale: Tensor,
  bias: Tensor,
  mean: Tensor,
  variance: Tensor,
  attrs: BatchNormAttrs = { epsilon: 1e-5 },
): Tensor {
  return apply(batchNormCard, [x, scale, bias, mean, variance], attrs);
}

// ---------------------------------------------------------------------------------------------
// Training mode: normalise with the statistics of the batch itself.

/**
 * Batch normalisation in training mode (ONNX BatchNormalization with training_mode=1, opset 14+):
 * y = scale·(x − μ)/sqrt(σ² + epsilon) + bias, where μ and σ² are the mean and the *biased*
 * (population, divide by n) variance of channel c over N and every spatial position. The inputs
 * are [x, scale, bias]; the running statistics are not inputs of the card (see
 * `updateRunningStats`). It is the forward of training-mode BN for autograd.
 */
export interface BatchNormTrainAttrs {
  readonly epsilon: number;
}

/** Per-channel batch statistics, in float64: mean and biased variance. */
export interface BatchStats {
  readonly mean: Float64Array;
  readonly variance: Float64Array;
  /** Elements per channel, N·spatial. */
  readonly count: number;
}

/**
 * The mean and biased variance of every channel of an [N, C, …] input over N and the spatial
 * dims, accumulated in float64 in one pass over x: Σ(x − k) and Σ(x − k)² with k the channel's
 * first element, so that a large mean does not cancel the variance away (the error of
 * E[(x − k)²] − E[x − k]² is relative to (μ − k)²/σ², and k is one of the channel's own values).
 * A channel with no elements gets NaN.
 *
 * @example
 * ```ts
 * import { Tensor, batchStats } from 'lightconv';
 *
 * const stats = batchStats(Tensor.fromArray([1, 3, 5, 7], [2, 1, 2]));
 * [stats.mean[0], stats.variance[0], stats.count]; // [4, 5, 4]
 * ```
 */
export function batchStats(x: Tensor): BatchStats {
  const C = x.shape[1]!;
  const inner = sizeOf(x.shape.slice(2));
  const count = C === 0 ? 0 : x.size / C;
  const xd = x.dataSync();
  const mean = f64Array(C);
  const variance = f64Array(C);
  const shift = f64Array(C);
  for (let c = 0; c < C && inner > 0 && c * inner < xd.length; c++) shift[c] = xd[c * inner]!;
  for (let start = 0, c = 0; start < xd.length; start += inner, c = (c + 1) % C) {
    const k = shift[c]!;
    let s = 0;
    let q = 0;
    for (let i = start; i < start + inner; i++) {
      const d = xd[i]! - k;
      s += d;
      q += d * d;
    }
    mean[c] += s;
    variance[c] += q;
  }
  for (let c = 0; c < C; c++) {
    const m = mean[c]! / count;
    variance[c] = Math.max(0, variance[c]! / count - m * m);
    mean[c] = m + shift[c]!;
  }
  return { mean, variance, count };
}

/**
 * The statistics each training-mode kernel normalised its output with, keyed by that output, so
 * that `batchNormTrain` can return them without a second pass (a backend whose kernel does not
 * record them costs one recomputation, with the same result).
 */
const usedStats = new WeakMap<Tensor, BatchStats>();

/**
 * The training-mode BatchNormalization op card (attributes: `BatchNormTrainAttrs`, the
 * epsilon); inputs x, scale, bias. {@link batchNormTrain} applies it and also returns the batch
 * statistics.
 */
export const batchNormTrainingCard: OpCard<BatchNormTrainAttrs> = {
  name: 'BatchNormalizationTraining',
  shape([x, ...params]) {
    if (x!.length < 2) throw new ShapeError(`BatchNormalizationTraining: input must be [N, C, …], got ${fmtShape(x!)}`);
    checkParams('BatchNormalizationTraining', x![1]!, params, ['scale', 'bias']);
    return x!;
  },

  reference([x, scale, bias], attrs) {
    const stats = batchStats(x!);
    const C = x!.shape[1]!;
    const inner = sizeOf(x!.shape.slice(2));
    const xd = x!.dataSync();
    const s = scale!.dataSync();
    const b = bias!.dataSync();
    const out = DTYPES[x!.dtype].make(x!.size);
    for (let i = 0; i < out.length; i++) {
      const c = Math.floor(i / inner) % C;
      out[i] = (s[c]! * (xd[i]! - stats.mean[c]!)) / Math.sqrt(stats.variance[c]! + attrs.epsilon) + b[c]!;
    }
    const y = new Tensor(out, x!.shape, x!.dtype);
    usedStats.set(y, stats);
    return y;
  },

  cpu(inputs, attrs) {
    const [x, scale, bias] = inputs as Tensor[];
    if (x!.dtype !== 'float32') return batchNormTrainingCard.reference(inputs, attrs);
    const stats = batchStats(x!);
    const y = applyChannelAffine(x!, affineOf(scale!.dataSync(), bias!.dataSync(), stats.mean, stats.variance, attrs.epsilon));
    usedStats.set(y, stats);
    return y;
  },
  grad: batchNormTrainGrad,
};

/**
 * Training-mode batch norm: the output and the batch mean and biased variance it was normalised
 * with ([C] tensors in x's dtype; what ONNX opsets 9–13 called saved_mean / saved_var, before
 * inversion). Feed them to `updateRunningStats` for the new running statistics. Default epsilon
 * 1e-5. Throws ShapeError for an input of rank below 2 or a scale or bias that is not [C].
 *
 * @example
 * ```ts
 * import { Tensor, batchNormTrain } from 'lightconv';
 *
 * const x = Tensor.randn([8, 4, 6, 6], { seed: 0 });
 * const { y, mean, variance } = batchNormTrain(x, Tensor.ones([4]), Tensor.zeros([4]));
 * mean.shape; // [4]
 * ```
 */
export function batchNormTrain(
  x: Tensor,
  scale: Tensor,
  bias: Tensor,
  attrs: BatchNormTrainAttrs = { epsilon: 1e-5 },
): { y: Tensor; mean: Tensor; variance: Tensor } {
  const y = apply(batchNormTrainingCard, [x, scale, bias], attrs);
  const stats = usedStats.get(y) ?? batchStats(x);
  const C = x.shape[1]!;
  const dtype = DTYPES[x.dtype].isFloat ? x.dtype : 'float32';
  const mean = DTYPES[dtype].make(C);
  const variance = DTYPES[dtype].make(C);
  mean.set(stats.mean);
  variance.set(stats.variance);
  return { y, mean: new Tensor(mean, [C], dtype), variance: new Tensor(variance, [C], dtype) };
}

/**
 * The running statistics after one training step, in float64, returned in the running tensors'
 * dtype: running_mean·momentum + batch_mean·(1 − momentum), and likewise for the variance.
 *
 * - `momentum` follows ONNX (default 0.9): the weight of the *old* value. PyTorch's momentum m is
 *   the weight of the new batch value, so PyTorch's m is ONNX's 1 − m (its default 0.1 is 0.9 here).
 * - The variance blended in: ONNX's spec and ONNX 1.12's reference (and so its node tests) use
 *   the biased batch variance, as returned by `batchNormTrain`. PyTorch blends the unbiased one,
 *   σ²·n/(n − 1); pass `unbiasedCount: n` (the elements per channel, N·spatial) for that.
 *
 * Throws ShapeError when the four tensors are not all [C].
 *
 * @example
 * ```ts
 * import { Tensor, updateRunningStats } from 'lightconv';
 *
 * const { mean, variance } = updateRunningStats(Tensor.zeros([2]), Tensor.ones([2]), Tensor.fromArray([1, 2], [2]), Tensor.fromArray([4, 4], [2]), { momentum: 0.9 });
 * mean.toArray(); // [0.1, 0.2]
 * variance.toArray(); // [1.3, 1.3]
 * ```
 */
export function updateRunningStats(
  runningMean: Tensor,
  runningVar: Tensor,
  batchMean: Tensor,
  batchVar: Tensor,
  opts: { momentum: number; unbiasedCount?: number },
): { mean: Tensor; variance: Tensor } {
  const C = batchMean.size;
  checkParams('updateRunningStats', C, [runningMean.shape, runningVar.shape, batchMean.shape, batchVar.shape], ['running_mean', 'running_var', 'batch_mean', 'batch_var']);
  const { momentum, unbiasedCount: n } = opts;
  const bessel = n === undefined ? 1 : n / (n - 1);
  const blend = (running: Tensor, batch: Tensor, factor: number): Tensor => {
    const r = running.dataSync();
    const b = batch.dataSync();
    const out = DTYPES[running.dtype].make(C);
    for (let c = 0; c < C; c++) out[c] = r[c]! * momentum + b[c]! * factor * (1 - momentum);
    return new Tensor(out, [C], running.dtype);
  };
  return { mean: blend(runningMean, batchMean, 1), variance: blend(runningVar, batchVar, bessel) };
}

/**
 * Folds an inference batch norm into the conv (or Gemm) before it: with a = scale/sqrt(var + eps),
 * W'[o, …] = a[o]·W[o, …] and b'[o] = a[o]·(b[o] − mean[o]) + bnBias[o]. The weight's first dim
 * must be the output channels (Conv, and Gemm with transB=1; not ConvTranspose). Computed in
 * float64, returned in the weight's dtype. `bias` undefined means a conv without bias. Throws
 * ShapeError when the batch-norm parameters or the bias are not [out channels].
 *
 * @example
 * ```ts
 * import { Tensor, foldBatchNorm } from 'lightconv';
 *
 * const w = Tensor.randn([16, 3, 3, 3], { seed: 0 });
 * const bn = { scale: Tensor.ones([16]), bias: Tensor.zeros([16]), mean: Tensor.randn([16], { seed: 1 }), variance: Tensor.ones([16]) };
 * const folded = foldBatchNorm(w, undefined, bn.scale, bn.bias, bn.mean, bn.variance, 1e-5); // { weight: [16, 3, 3, 3], bias: [16] }
 * ```
 */
export function foldBatchNorm(
  weight: Tensor,
  bias: Tensor | undefined,
  scale: Tensor,
  bnBias: Tensor,
  mean: Tensor,
  variance: Tensor,
  epsilon: number,
): { weight: Tensor; bias: Tensor } {
  const cout = weight.shape[0];
  if (cout === undefined) throw new ShapeError('foldBatchNorm: weight must have an output-channel dim, got a scalar');
  checkParams('foldBatchNorm', cout, [scale.shape, bnBias.shape, mean.shape, variance.shape]);
  if (bias && (bias.rank !== 1 || bias.size !== cout)) throw new ShapeError(`foldBatchNorm: conv bias has shape ${fmtShape(bias.shape)}, expected [${cout}]`);
  const { a } = batchNormAffine(scale, bnBias, mean, variance, epsilon);
  const per = weight.size / cout;
  const w = weight.dataSync();
  const w2 = DTYPES[weight.dtype].make(weight.size);
  for (let i = 0; i < w.length; i++) w2[i] = w[i]! * a[Math.floor(i / per)]!;
  const bb = bnBias.dataSync();
  const m = mean.dataSync();
  const b0 = bias?.dataSync();
  const b2 = DTYPES[weight.dtype].make(cout);
  for (let o = 0; o < cout; o++) b2[o] = a[o]! * ((b0 ? b0[o]! : 0) - m[o]!) + bb[o]!;
  return { weight: new Tensor(w2, weight.shape, weight.dtype), bias: new Tensor(b2, [cout], weight.dtype) };
}

// ---------------------------------------------------------------------------------------------
// Gradients (autograd), per channel c over its n = N·spatial elements, in float64.

/** Per-channel sums Σ g and Σ g·(x − shift[c]) over N and the spatial dims. */
function channelSums(x: ArrayLike<number>, g: ArrayLike<number>, C: number, inner: number, shift: ArrayLike<number>): { sg: Float64Array; sgx: Float64Array } {
  const sg = f64Array(C);
  const sgx = f64Array(C);
  for (let start = 0, c = 0; start < x.length; start += inner, c = (c + 1) % C) {
    const m = shift[c]!;
    let a = 0;
    let b = 0;
    for (let i = start; i < start + inner; i++) {
      a += g[i]!;
      b += g[i]! * (x[i]! - m);
    }
    sg[c] += a;
    sgx[c] += b;
  }
  return { sg, sgx };
}

function paramGrad(t: Tensor, values: Float64Array): Tensor | null {
  if (!t.requiresGrad) return null;
  const out = gradArray(t);
  out.set(values);
  return gradOf(t, out);
}

/**
 * Inference batch norm, y = s·(x − μ)/σ + b with σ = sqrt(var + eps) from the running stats:
 * ∂x = dy·s/σ, ∂s = Σ dy·(x − μ)/σ, ∂b = Σ dy, ∂μ = −Σ dy·s/σ, ∂var = −½·Σ dy·s·(x − μ)/σ³.
 */
function batchNormGrad(inputs: readonly Tensor[], attrs: BatchNormAttrs, y: Tensor, gOut: Tensor): (Tensor | null)[] {
  const [x, scale, bias, mean, variance] = inputs as Tensor[];
  const dY = preActivationGrad(batchNormCard as OpCard<BatchNormAttrs & { activation: Activation }>, inputs, { ...attrs, activation: attrs.activation ?? NO_ACTIVATION }, y, gOut);
  const C = x!.shape[1]!;
  const inner = sizeOf(x!.shape.slice(2));
  const xd = x!.dataSync();
  const s = scale!.dataSync();
  const m = mean!.dataSync();
  const v = variance!.dataSync();
  const inv = f64Array(C);
  for (let c = 0; c < C; c++) inv[c] = 1 / Math.sqrt(v[c]! + attrs.epsilon);
  const { sg, sgx } = channelSums(xd, dY, C, inner, m);
  let gx: Tensor | null = null;
  if (x!.requiresGrad) {
    const out = gradArray(x!);
    for (let i = 0; i < out.length; i++) out[i] = dY[i]! * s[Math.floor(i / inner) % C]! * inv[Math.floor(i / inner) % C]!;
    gx = gradOf(x!, out);
  }
  const gs = f64Array(C);
  const gm = f64Array(C);
  const gv = f64Array(C);
  for (let c = 0; c < C; c++) {
    gs[c] = sgx[c]! * inv[c]!;
    gm[c] = -sg[c]! * s[c]! * inv[c]!;
    gv[c] = -0.5 * s[c]! * sgx[c]! * inv[c]! ** 3;
  }
  return [gx, paramGrad(scale!, gs), paramGrad(bias!, sg), paramGrad(mean!, gm), paramGrad(variance!, gv)];
}

/**
 * Training-mode batch norm, with x̂ = (x − μ_B)/σ_B from the batch's own mean and biased
 * variance: ∂b = Σ dy, ∂s = Σ dy·x̂, ∂x = (s/σ_B)·(dy − mean(dy) − x̂·mean(dy·x̂)) — the batch
 * statistics depend on x, which gives the two mean terms.
 */
function batchNormTrainGrad(inputs: readonly Tensor[], attrs: BatchNormTrainAttrs, y: Tensor, gOut: Tensor): (Tensor | null)[] {
  const [x, scale, bias] = inputs as Tensor[];
  const stats = usedStats.get(y) ?? batchStats(x!); // the forward's own statistics when it kept them
  const C = x!.shape[1]!;
  const inner = sizeOf(x!.shape.slice(2));
  const xd = x!.dataSync();
  const g = gOut.dataSync();
  const s = scale!.dataSync();
  const inv = f64Array(C);
  for (let c = 0; c < C; c++) inv[c] = 1 / Math.sqrt(stats.variance[c]! + attrs.epsilon);
  const { sg, sgx } = channelSums(xd, g, C, inner, stats.mean);
  const gs = f64Array(C);
  for (let c = 0; c < C; c++) gs[c] = sgx[c]! * inv[c]!; // Σ dy·x̂
  let gx: Tensor | null = null;
  if (x!.requiresGrad) {
    const out = gradArray(x!);
    const n = stats.count;
    for (let start = 0, c = 0; start < xd.length; start += inner, c = (c + 1) % C) {
      const k = s[c]! * inv[c]!;
      const mg = sg[c]! / n;
      const mgx = gs[c]! / n;
      const mu = stats.mean[c]!;
      const iv = inv[c]!;
      for (let i = start; i < start + inner; i++) out[i] = k * (g[i]! - mg - (xd[i]! - mu) * iv * mgx);
    }
    gx = gradOf(x!, out);
  }
  return [gx, paramGrad(scale!, gs), paramGrad(bias!, sg)];
}
