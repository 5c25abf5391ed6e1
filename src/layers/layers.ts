import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import type { Activation } from '../kernels/activation.js';
import { type ConvAttrs, conv, convCard } from '../kernels/conv.js';
import { mul, unary } from '../kernels/elementwise.js';
import { gemm } from '../kernels/gemm.js';
import { flatten } from '../kernels/movement.js';
import { batchNorm, batchNormTrain, updateRunningStats } from '../kernels/normalization.js';
import { globalAveragePool, maxPool } from '../kernels/pool.js';
import { Module, type ShapeVisitor, init } from './module.js';

const NONE: Activation = { kind: 'none' };

function need(cond: boolean, msg: string): void {
  if (!cond) throw new ValueError(msg);
}

function posInt(v: number, what: string): void {
  need(Number.isSafeInteger(v) && v >= 1, `${what} must be a positive integer, got ${v}`);
}

// ---------------------------------------------------------------------------------------------
// Convolutions

/** Options of `Conv2d`, PyTorch's defaults: stride 1, padding 0, dilation 1, groups 1, bias on; `rng` seeds the weights (default Rng(0)). */
export interface Conv2dOptions {
  stride?: number;
  /** Zero padding on every side; default 0. torchvision's conv blocks use (k − 1)/2·dilation. */
  padding?: number;
  dilation?: number;
  groups?: number;
  /** Default true (PyTorch's default); torchvision's conv-BN blocks use false. */
  bias?: boolean;
  rng?: Rng;
}

/**
 * 2-D convolution, PyTorch's Conv2d: weight [out, in/groups, k, k], bias [out].
 *
 * @example
 * ```ts
 * import { Conv2d, Rng, Tensor } from 'lightconv';
 *
 * const conv = new Conv2d(3, 16, 3, { stride: 2, padding: 1, bias: false, rng: new Rng(1) });
 * conv.forward(Tensor.zeros([1, 3, 224, 224])).shape; // [1, 16, 112, 112]
 * console.log(conv.weight.shape); // [16, 3, 3, 3]
 * ```
 */
export class Conv2d extends Module {
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;
  readonly hasBias: boolean;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    super();
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.groups = opts.groups ?? 1;
    this.hasBias = opts.bias ?? true;
    for (const [v, w] of [[inChannels, 'in_channels'], [outChannels, 'out_channels'], [kernelSize, 'kernel_size'], [this.stride, 'stride'], [this.dilation, 'dilation'], [this.groups, 'groups']] as const) posInt(v, `Conv2d: ${w}`);
    need(Number.isSafeInteger(this.padding) && this.padding >= 0, `Conv2d: padding must be a non-negative integer, got ${this.padding}`);
    need(inChannels % this.groups === 0 && outChannels % this.groups === 0, `Conv2d: in_channels ${inChannels} and out_channels ${outChannels} must be divisible by groups ${this.groups}`);
    const rng = opts.rng ?? new Rng(0);
    this.param('weight', [outChannels, inChannels / this.groups, kernelSize, kernelSize], init.kaimingFanOut, rng);
    if (this.hasBias) this.param('bias', [outChannels], init.zeros, rng);
  }

  get weight(): Tensor {
    return this.paramTensor('weight');
  }

  get bias(): Tensor | null {
    return this.hasBias ? this.paramTensor('bias') : null;
  }

  /** The convolution attributes (strides, pads, dilations, group) as the conv kernel takes them. */
  attrs(): ConvAttrs {
    const p = this.padding;
    return { strides: [this.stride, this.stride], pads: [p, p, p, p], dilations: [this.dilation, this.dilation], group: this.groups, activation: NONE };
  }

  describe(): string {
    const extra = [this.stride !== 1 && `s=${this.stride}`, this.padding && `p=${this.padding}`, this.dilation !== 1 && `d=${this.dilation}`, this.groups !== 1 && `g=${this.groups}`, !this.hasBias && 'no bias'].filter(Boolean);
    return `Conv2d(${this.inChannels}, ${this.outChannels}, k=${this.kernelSize}${extra.length ? `, ${extra.join(', ')}` : ''})`;
  }

  protected run(x: Tensor): Tensor {
    return conv(x, this.weight, this.bias, this.attrs());
  }

  private shapes(input: Shape): Shape[] {
    return [input, [this.outChannels, this.inChannels / this.groups, this.kernelSize, this.kernelSize]];
  }

  protected inferShape(input: Shape): Shape {
    if (input.length !== 4) throw new ShapeError(`${this.describe()}: input must be [N, C, H, W], got ${fmtShape(input)}`);
    return convCard.shape(this.shapes(input), this.attrs());
  }

  override macs(input: Shape): number {
    return convCard.macs!(this.shapes(input), this.attrs());
  }
}

/**
 * 1-D convolution over [N, C, L] (PyTorch's Conv1d), as ECA uses across channels:
 * weight [out, in/groups, k].
 *
 * @example
 * ```ts
 * import { Conv1d, Tensor } from 'lightconv';
 *
 * const conv = new Conv1d(1, 1, 3, { padding: 1, bias: false });
 * conv.forward(Tensor.zeros([2, 1, 64])).shape; // [2, 1, 64]
 * ```
 */
export class Conv1d extends Module {
  readonly padding: number;
  readonly hasBias: boolean;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: { padding?: number; bias?: boolean; rng?: Rng } = {},
  ) {
    super();
    posInt(kernelSize, 'Conv1d: kernel_size');
    this.padding = opts.padding ?? 0;
    this.hasBias = opts.bias ?? true;
    const rng = opts.rng ?? new Rng(0);
    // PyTorch's default (kaiming-uniform, a = √5): U(±1/√fan_in).
    const bound = 1 / Math.sqrt(inChannels * kernelSize);
    this.param('weight', [outChannels, inChannels, kernelSize], init.uniform(bound), rng);
    if (this.hasBias) this.param('bias', [outChannels], init.uniform(bound), rng);
  }

  get weight(): Tensor {
    return this.paramTensor('weight');
  }

  get bias(): Tensor | null {
    return this.hasBias ? this.paramTensor('bias') : null;
  }

  /** The convolution attributes (strides, pads, dilations, group) as the conv kernel takes them. */
  attrs(): ConvAttrs {
    return { strides: [1], pads: [this.padding, this.padding], dilations: [1], group: 1, activation: NONE };
  }

  describe(): string {
    return `Conv1d(${this.inChannels}, ${this.outChannels}, k=${this.kernelSize}${this.padding ? `, p=${this.padding}` : ''}${this.hasBias ? '' : ', no bias'})`;
  }

  protected run(x: Tensor): Tensor {
    return conv(x, this.weight, this.bias, this.attrs());
  }

  protected inferShape(input: Shape): Shape {
    return convCard.shape([input, [this.outChannels, this.inChannels, this.kernelSize]], this.attrs());
  }

  override macs(input: Shape): number {
    return convCard.macs!([input, [this.outChannels, this.inChannels, this.kernelSize]], this.attrs());
  }
}

// ---------------------------------------------------------------------------------------------
// Batch norm and linear

/**
 * BatchNorm2d, PyTorch semantics. Train mode normalises with the batch's statistics and updates
 * the running ones as PyTorch does: new = (1 − momentum)·old + momentum·batch, with the *unbiased*
 * batch variance for running_var (momentum is PyTorch's: the weight of the new value; ONNX's
 * momentum is 1 − this). Eval mode uses the running statistics. Epsilon is the model's:
 * MobileNetV3 1e-3 (momentum 0.01), EfficientNet-B0…B4 1e-5 (momentum 0.1), B5…B7 1e-3 / 0.01.
 *
 * @example
 * ```ts
 * import { BatchNorm2d, Tensor } from 'lightconv';
 *
 * const bn = new BatchNorm2d(16, { eps: 1e-3, momentum: 0.01 });
 * const y = bn.forward(Tensor.randn([8, 16, 4, 4], { seed: 0 })); // train mode: batch statistics
 * bn.eval(); // from now on: running statistics
 * ```
 */
export class BatchNorm2d extends Module {
  readonly eps: number;
  /** PyTorch's sense: new = (1 − m)·old + m·batch. Mutable for recalibration (src/train/precise_bn.ts). */
  momentum: number;

  constructor(
    readonly numFeatures: number,
    opts: { eps?: number; momentum?: number } = {},
  ) {
    super();
    posInt(numFeatures, 'BatchNorm2d: num_features');
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const rng = new Rng(0);
    this.param('weight', [numFeatures], init.ones, rng);
    this.param('bias', [numFeatures], init.zeros, rng);
    this.buffer('running_mean', [numFeatures], init.zeros);
    this.buffer('running_var', [numFeatures], init.ones);
  }

  get weight(): Tensor {
    return this.paramTensor('weight');
  }
  get bias(): Tensor {
    return this.paramTensor('bias');
  }
  get runningMean(): Tensor {
    return this.bufferTensor('running_mean');
  }
  get runningVar(): Tensor {
    return this.bufferTensor('running_var');
  }

  describe(): string {
    return `BatchNorm2d(${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum})`;
  }

  protected run(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.numFeatures) throw new ShapeError(`${this.describe()}: input must be [N, ${this.numFeatures}, H, W], got ${fmtShape(x.shape)}`);
    if (!this.training) return batchNorm(x, this.weight, this.bias, this.runningMean, this.runningVar, { epsilon: this.eps });
    const count = x.size / this.numFeatures;
    // As PyTorch: one value per channel has no variance to normalise with (nor an unbiased one).
    if (count <= 1) throw new ValueError(`${this.describe()}: train mode needs more than one value per channel, got input ${fmtShape(x.shape)}`);
    const { y, mean, variance } = batchNormTrain(x, this.weight, this.bias, { epsilon: this.eps });
    const next = updateRunningStats(this.runningMean, this.runningVar, mean, variance, { momentum: 1 - this.momentum, unbiasedCount: count });
    this.setBuffer('running_mean', next.mean);
    this.setBuffer('running_var', next.variance);
    return y;
  }

  protected inferShape(input: Shape): Shape {
    if (input.length !== 4 || input[1] !== this.numFeatures) throw new ShapeError(`${this.describe()}: input must be [N, ${this.numFeatures}, H, W], got ${fmtShape(input)}`);
    return input;
  }
}

/**
 * y = x·Wᵀ + b over [N, in] (PyTorch's Linear: weight [out, in]).
 *
 * @example
 * ```ts
 * import { Linear, Tensor } from 'lightconv';
 *
 * const fc = new Linear(1280, 10);
 * fc.forward(Tensor.zeros([4, 1280])).shape; // [4, 10]
 * ```
 */
export class Linear extends Module {
  readonly hasBias: boolean;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; rng?: Rng; init?: 'pytorch' | 'mobilenet' | 'efficientnet' } = {},
  ) {
    super();
    posInt(inFeatures, 'Linear: in_features');
    posInt(outFeatures, 'Linear: out_features');
    this.hasBias = opts.bias ?? true;
    const rng = opts.rng ?? new Rng(0);
    const kind = opts.init ?? 'pytorch';
    // PyTorch default: U(±1/√in) for both; torchvision's MobileNetV3 N(0, 0.01) and bias 0;
    // EfficientNet U(±1/√out) and bias 0.
    const w = kind === 'mobilenet' ? init.normal(0.01) : kind === 'efficientnet' ? init.uniform(1 / Math.sqrt(outFeatures)) : init.uniform(1 / Math.sqrt(inFeatures));
    this.param('weight', [outFeatures, inFeatures], w, rng);
    if (this.hasBias) this.param('bias', [outFeatures], kind === 'pytorch' ? init.uniform(1 / Math.sqrt(inFeatures)) : init.zeros, rng);
  }

  get weight(): Tensor {
    return this.paramTensor('weight');
  }

  get bias(): Tensor | null {
    return this.hasBias ? this.paramTensor('bias') : null;
  }

  describe(): string {
    return `Linear(${this.inFeatures}, ${this.outFeatures})`;
  }

  protected run(x: Tensor): Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) throw new ShapeError(`${this.describe()}: input must be [N, ${this.inFeatures}], got ${fmtShape(x.shape)}`);
    return gemm(x, this.weight, this.bias, { transB: true });
  }

  protected inferShape(input: Shape): Shape {
    if (input.length !== 2 || input[1] !== this.inFeatures) throw new ShapeError(`${this.describe()}: input must be [N, ${this.inFeatures}], got ${fmtShape(input)}`);
    return [input[0]!, this.outFeatures];
  }

  override macs(input: Shape): number {
    return input[0]! * this.inFeatures * this.outFeatures;
  }
}

// ---------------------------------------------------------------------------------------------
// Activations

/**
 * A pointwise activation (the kernels' Activation spec).
 *
 * @example
 * ```ts
 * import { Act, Tensor } from 'lightconv';
 *
 * const hsig = new Act({ kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 }, 'Hardsigmoid');
 * const y = hsig.forward(Tensor.zeros([2]));
 * ```
 */
export class Act extends Module {
  constructor(
    readonly spec: Activation,
    private readonly label: string,
  ) {
    super();
  }
  describe(): string {
    return this.label;
  }
  protected run(x: Tensor): Tensor {
    return unary(x, this.spec);
  }
  protected inferShape(input: Shape): Shape {
    return input;
  }
}

/**
 * max(0, x).
 *
 * @example
 * ```ts
 * import { ReLU, Tensor } from 'lightconv';
 *
 * new ReLU().forward(Tensor.fromArray([-1, 2], [2])).toArray(); // [0, 2]
 * ```
 */
export class ReLU extends Act {
  constructor() {
    super({ kind: 'relu' }, 'ReLU');
  }
}
/**
 * min(max(0, x), 6).
 *
 * @example
 * ```ts
 * import { ReLU6, Tensor } from 'lightconv';
 *
 * new ReLU6().forward(Tensor.fromArray([-1, 8], [2])).toArray(); // [0, 6]
 * ```
 */
export class ReLU6 extends Act {
  constructor() {
    super({ kind: 'clip', min: 0, max: 6 }, 'ReLU6');
  }
}
/**
 * Leaky-ReLU; slope 0.01 by default (PyTorch's and ONNX's default).
 *
 * @example
 * ```ts
 * import { LeakyReLU, Tensor } from 'lightconv';
 *
 * new LeakyReLU(0.1).forward(Tensor.fromArray([-1, 2], [2])).toArray(); // [-0.1, 2]
 * ```
 */
export class LeakyReLU extends Act {
  constructor(readonly negativeSlope = 0.01) {
    super({ kind: 'leaky_relu', alpha: negativeSlope }, `LeakyReLU(${negativeSlope})`);
  }
}
/**
 * PyTorch's hard-sigmoid: relu6(x + 3)/6, i.e. alpha 1/6, beta 1/2 (not ONNX's default 0.2).
 *
 * @example
 * ```ts
 * import { Hardsigmoid, Tensor } from 'lightconv';
 *
 * new Hardsigmoid().forward(Tensor.zeros([1])).toArray(); // [0.5]
 * ```
 */
export class Hardsigmoid extends Act {
  constructor() {
    super({ kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 }, 'Hardsigmoid');
  }
}
/**
 * x · relu6(x + 3) / 6 (MobileNetV3).
 *
 * @example
 * ```ts
 * import { Hardswish, Tensor } from 'lightconv';
 *
 * new Hardswish().forward(Tensor.fromArray([-4, 4], [2])).toArray(); // [0, 4]
 * ```
 */
export class Hardswish extends Act {
  constructor() {
    super({ kind: 'hard_swish' }, 'Hardswish');
  }
}
/**
 * x · sigmoid(x) (EfficientNet's Swish).
 *
 * @example
 * ```ts
 * import { SiLU, Tensor } from 'lightconv';
 *
 * const y = new SiLU().forward(Tensor.randn([1, 8, 4, 4], { seed: 0 }));
 * ```
 */
export class SiLU extends Act {
  constructor() {
    super({ kind: 'silu' }, 'SiLU');
  }
}
/**
 * 1 / (1 + e^−x).
 *
 * @example
 * ```ts
 * import { Sigmoid, Tensor } from 'lightconv';
 *
 * new Sigmoid().forward(Tensor.zeros([1])).toArray(); // [0.5]
 * ```
 */
export class Sigmoid extends Act {
  constructor() {
    super({ kind: 'sigmoid' }, 'Sigmoid');
  }
}

/** An activation by name, as builders and configs give it (`makeActivation`). */
export type ActivationName = 'relu' | 'relu6' | 'leaky_relu' | 'hardsigmoid' | 'hardswish' | 'silu' | 'sigmoid';

/**
 * The activation layer for `name` (`slope`: leaky_relu's negative slope, default 0.01).
 *
 * @example
 * ```ts
 * import { makeActivation } from 'lightconv';
 *
 * const act = makeActivation('leaky_relu', 0.1); // a LeakyReLU
 * ```
 */
export function makeActivation(name: ActivationName, slope = 0.01): Act {
  switch (name) {
    case 'relu':
      return new ReLU();
    case 'relu6':
      return new ReLU6();
    case 'leaky_relu':
      return new LeakyReLU(slope);
    case 'hardsigmoid':
      return new Hardsigmoid();
    case 'hardswish':
      return new Hardswish();
    case 'silu':
      return new SiLU();
    case 'sigmoid':
      return new Sigmoid();
  }
}

// ---------------------------------------------------------------------------------------------
// Pooling, reshaping, regularisation

/**
 * AdaptiveAvgPool2d(1): the mean of every channel plane, [N, C, H, W] → [N, C, 1, 1].
 *
 * @example
 * ```ts
 * import { AdaptiveAvgPool2d, Tensor } from 'lightconv';
 *
 * new AdaptiveAvgPool2d().forward(Tensor.ones([2, 576, 7, 7])).shape; // [2, 576, 1, 1]
 * ```
 */
export class AdaptiveAvgPool2d extends Module {
  constructor() {
    super();
  }
  describe(): string {
    return 'AdaptiveAvgPool2d(1)';
  }
  protected run(x: Tensor): Tensor {
    return globalAveragePool(x);
  }
  protected inferShape(input: Shape): Shape {
    if (input.length < 3) throw new ShapeError(`AdaptiveAvgPool2d: input must be [N, C, H, W], got ${fmtShape(input)}`);
    return [input[0]!, input[1]!, ...input.slice(2).map(() => 1)];
  }
}

/**
 * PyTorch's MaxPool2d over [N, C, H, W]: stride defaults to the kernel size, padding 0.
 *
 * @example
 * ```ts
 * import { MaxPool2d, Tensor } from 'lightconv';
 *
 * const pool = new MaxPool2d(3, { stride: 2, padding: 1 });
 * pool.forward(Tensor.zeros([1, 64, 112, 112])).shape; // [1, 64, 56, 56]
 * ```
 */
export class MaxPool2d extends Module {
  readonly stride: number;
  readonly padding: number;
  readonly ceilMode: boolean;
  constructor(
    readonly kernelSize: number,
    opts: { stride?: number; padding?: number; ceilMode?: boolean } = {},
  ) {
    super();
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.ceilMode = opts.ceilMode ?? false;
  }
  describe(): string {
    return `MaxPool2d(${this.kernelSize}, s=${this.stride}${this.padding ? `, p=${this.padding}` : ''}${this.ceilMode ? ', ceil' : ''})`;
  }
  private attrs() {
    const p = this.padding;
    return { kernel: [this.kernelSize, this.kernelSize], strides: [this.stride, this.stride], pads: [p, p, p, p], ceilMode: this.ceilMode };
  }
  protected run(x: Tensor): Tensor {
    return maxPool(x, this.attrs());
  }
  protected inferShape(input: Shape): Shape {
    if (input.length !== 4) throw new ShapeError(`${this.describe()}: input must be [N, C, H, W], got ${fmtShape(input)}`);
    const out = (n: number) => {
      const span = n + 2 * this.padding - this.kernelSize;
      const q = this.ceilMode ? Math.ceil(span / this.stride) : Math.floor(span / this.stride);
      let o = q + 1;
      if (this.ceilMode && (o - 1) * this.stride >= n + this.padding) o--; // last window must start inside
      return o;
    };
    const [h, w] = [out(input[2]!), out(input[3]!)];
    if (h < 1 || w < 1) throw new ShapeError(`${this.describe()}: input ${fmtShape(input)} is smaller than the window`);
    return [input[0]!, input[1]!, h, w];
  }
}

/**
 * flatten(x, 1): [N, …] → [N, rest].
 *
 * @example
 * ```ts
 * import { Flatten, Tensor } from 'lightconv';
 *
 * new Flatten().forward(Tensor.zeros([2, 576, 1, 1])).shape; // [2, 576]
 * ```
 */
export class Flatten extends Module {
  describe(): string {
    return 'Flatten';
  }
  protected run(x: Tensor): Tensor {
    return flatten(x, 1);
  }
  protected inferShape(input: Shape): Shape {
    return [input[0]!, sizeOf(input.slice(1))];
  }
}

/**
 * Passes its input through (a placeholder, e.g. where a head was removed).
 *
 * @example
 * ```ts
 * import { Identity, Tensor } from 'lightconv';
 *
 * new Identity().forward(Tensor.ones([2])); // the same tensor
 * ```
 */
export class Identity extends Module {
  describe(): string {
    return 'Identity';
  }
  protected run(x: Tensor): Tensor {
    return x;
  }
  protected inferShape(input: Shape): Shape {
    return input;
  }
}

/**
 * Dropout: in train mode each element is zeroed with probability p and the rest scaled by
 * 1/(1 − p); identity in eval mode. The mask comes from the layer's own seeded generator
 * (`seed`), so runs repeat. Composed from `mul` with a constant mask, so gradients flow.
 *
 * @example
 * ```ts
 * import { Dropout, Tensor } from 'lightconv';
 *
 * const drop = new Dropout(0.2, { seed: 1 });
 * const y = drop.forward(Tensor.ones([4, 8])); // train mode: some zeros, the rest 1.25
 * drop.eval(); // identity
 * ```
 */
export class Dropout extends Module {
  private rng: Rng;
  constructor(
    readonly p = 0.5,
    opts: { seed?: number } = {},
  ) {
    super();
    need(p >= 0 && p <= 1, `Dropout: p must be in [0, 1], got ${p}`);
    this.rng = new Rng(opts.seed ?? 0);
  }
  describe(): string {
    return `Dropout(p=${this.p})`;
  }
  protected run(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const keep = 1 / (1 - this.p);
    const m = new Float32Array(x.size);
    for (let i = 0; i < m.length; i++) m[i] = this.rng.next() < this.p ? 0 : this.p === 1 ? 0 : keep;
    return mul(x, new Tensor(m, x.shape));
  }
  protected inferShape(input: Shape): Shape {
    return input;
  }
}

/**
 * Stochastic depth, torchvision's 'row' mode: in train mode each sample of the batch keeps the
 * residual branch with probability 1 − p (scaled by 1/(1 − p)) or drops it entirely; identity in
 * eval mode or when p = 0. Seeded like Dropout.
 *
 * @example
 * ```ts
 * import { StochasticDepth, Tensor } from 'lightconv';
 *
 * const sd = new StochasticDepth(0.2);
 * const branch = sd.forward(Tensor.ones([8, 16, 4, 4])); // whole samples dropped in train mode
 * ```
 */
export class StochasticDepth extends Module {
  private rng: Rng;
  constructor(
    readonly p: number,
    readonly mode: 'row' | 'batch' = 'row',
    opts: { seed?: number } = {},
  ) {
    super();
    need(p >= 0 && p <= 1, `StochasticDepth: p must be in [0, 1], got ${p}`);
    this.rng = new Rng(opts.seed ?? 0);
  }
  describe(): string {
    return `StochasticDepth(p=${+this.p.toFixed(4)}, mode=${this.mode})`;
  }
  protected run(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const survival = 1 - this.p;
    const shape = this.mode === 'row' ? [x.shape[0]!, ...x.shape.slice(1).map(() => 1)] : x.shape.map(() => 1);
    const noise = new Float32Array(sizeOf(shape));
    for (let i = 0; i < noise.length; i++) noise[i] = this.rng.next() < survival ? (survival > 0 ? 1 / survival : 1) : 0;
    return mul(x, new Tensor(noise, shape));
  }
  protected inferShape(input: Shape): Shape {
    return input;
  }
}

/**
 * Children named '0', '1', … run in order (PyTorch's Sequential, so names line up).
 *
 * @example
 * ```ts
 * import { Conv2d, ReLU, Sequential, Tensor } from 'lightconv';
 *
 * const net = new Sequential(new Conv2d(3, 8, 3, { padding: 1 }), new ReLU());
 * net.append(new Conv2d(8, 8, 3, { padding: 1 }));
 * console.log(net.length, net.at(1).describe()); // 3 'ReLU'
 * net.forward(Tensor.zeros([1, 3, 32, 32]));
 * ```
 */
export class Sequential extends Module {
  constructor(...layers: Module[]) {
    super();
    layers.forEach((l, i) => this.child(String(i), l));
  }
  get length(): number {
    return this.children().length;
  }
  /** The i-th child (0-based); a ValueError when there is none. */
  at(i: number): Module {
    return this.get(String(i));
  }
  /** Adds `m` as the next child (named by its index). */
  append(m: Module): this {
    this.child(String(this.length), m);
    return this;
  }
  describe(): string {
    return 'Sequential';
  }
  protected run(x: Tensor): Tensor {
    for (const [, m] of this.children()) x = m.forward(x);
    return x;
  }
  protected inferShape(input: Shape, visit?: ShapeVisitor): Shape {
    for (const [, m] of this.children()) input = m.infer(input, visit);
    return input;
  }
}
