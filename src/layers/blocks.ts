import { isGradEnabled } from '../core/autograd.js';
import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Shape, fmtShape } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { conv } from '../kernels/conv.js';
import { add, mul, sigmoid } from '../kernels/elementwise.js';
import { foldBatchNorm } from '../kernels/normalization.js';
import { reshape } from '../kernels/movement.js';
import { Act, type ActivationName, AdaptiveAvgPool2d, BatchNorm2d, Conv1d, Conv2d, Sequential, StochasticDepth, makeActivation } from './layers.js';
import { Module, type ShapeVisitor } from './module.js';

/**
 * torchvision's `_make_divisible`: round v to the nearest multiple of `divisor` (at least
 * `minValue`, default the divisor), going up one step if rounding down lost more than 10 %.
 *
 * @example
 * ```ts
 * import { makeDivisible } from 'lightconv';
 *
 * makeDivisible(16 * 0.75); // 16
 * makeDivisible(36); // 40
 * ```
 */
export function makeDivisible(v: number, divisor = 8, minValue?: number): number {
  const min = minValue ?? divisor;
  let n = Math.max(min, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** BatchNorm settings a builder passes to its blocks: epsilon and PyTorch-sense momentum. */
export interface BnOptions {
  eps: number;
  momentum: number;
}

/**
 * Conv → BatchNorm → activation, torchvision's Conv2dNormActivation: a Sequential whose children
 * are '0' (conv, no bias), '1' (BN) and '2' (the activation, absent when none). Padding is
 * torchvision's (k − 1)/2·dilation, so stride 1 keeps the spatial size.
 *
 * @example
 * ```ts
 * import { ConvBNAct, Rng, Tensor } from 'lightconv';
 *
 * const stem = new ConvBNAct(3, 16, 3, { stride: 2, activation: 'hardswish', bn: { eps: 1e-3, momentum: 0.01 }, rng: new Rng(0) });
 * stem.eval().forward(Tensor.zeros([1, 3, 224, 224])).shape; // [1, 16, 112, 112]
 * ```
 */
export class ConvBNAct extends Sequential {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    opts: { stride?: number; groups?: number; dilation?: number; activation?: ActivationName | null; slope?: number; bn: BnOptions; rng: Rng },
  ) {
    const dilation = opts.dilation ?? 1;
    const layers: Module[] = [
      new Conv2d(inChannels, outChannels, kernelSize, { stride: opts.stride ?? 1, padding: ((kernelSize - 1) / 2) * dilation, dilation, groups: opts.groups ?? 1, bias: false, rng: opts.rng }),
      new BatchNorm2d(outChannels, opts.bn),
    ];
    if (opts.activation) layers.push(makeActivation(opts.activation, opts.slope));
    super(...layers);
  }
  get conv(): Conv2d {
    return this.at(0) as Conv2d;
  }

  /**
   * Inference fast path (eval mode, no tape being recorded, no hooks on the parts): BN folded into
   * the conv weights (W·a, a = γ/√(var + eps)) and the activation run in the conv's epilogue — one
   * pass instead of three, as the ONNX runner does after its BN folding. Otherwise the three modules
   * run one after another (training, Grad-CAM).
   */
  protected override run(x: Tensor): Tensor {
    const parts = this.children().map(([, m]) => m);
    const act = parts[2];
    if (this.training || isGradEnabled() || parts.some((m) => m.training || m.hasHooks()) || (act && !(act instanceof Act))) return super.run(x);
    const c = this.conv;
    const bn = this.bn;
    const f = foldBatchNorm(c.weight, c.bias ?? undefined, bn.weight, bn.bias, bn.runningMean, bn.runningVar, bn.eps);
    return conv(x, f.weight, f.bias, { ...c.attrs(), ...(act ? { activation: (act as Act).spec } : {}) });
  }
  get bn(): BatchNorm2d {
    return this.at(1) as BatchNorm2d;
  }
  override describe(): string {
    return 'ConvBNAct';
  }
}

/**
 * Squeeze-and-excitation (torchvision's SqueezeExcitation, children avgpool, fc1, fc2, activation,
 * scale_activation): x · gate(fc2(act(fc1(avgpool(x))))), with 1×1 convs with bias.
 * MobileNetV3: squeeze = makeDivisible(C/4, 8), ReLU, hard-sigmoid; EfficientNet: squeeze =
 * max(1, block input channels/4), SiLU, sigmoid.
 *
 * @example
 * ```ts
 * import { Rng, SqueezeExcite, Tensor } from 'lightconv';
 *
 * const se = new SqueezeExcite(96, 24, { activation: 'relu', gate: 'hardsigmoid', rng: new Rng(0) });
 * se.forward(Tensor.randn([1, 96, 14, 14], { seed: 1 })).shape; // [1, 96, 14, 14]
 * ```
 */
export class SqueezeExcite extends Module {
  readonly fc1: Conv2d;
  readonly fc2: Conv2d;
  constructor(
    readonly channels: number,
    readonly squeeze: number,
    opts: { activation: ActivationName; gate: 'hardsigmoid' | 'sigmoid'; rng: Rng },
  ) {
    super();
    this.child('avgpool', new AdaptiveAvgPool2d());
    this.fc1 = this.child('fc1', new Conv2d(channels, squeeze, 1, { rng: opts.rng }));
    this.fc2 = this.child('fc2', new Conv2d(squeeze, channels, 1, { rng: opts.rng }));
    this.child('activation', makeActivation(opts.activation));
    this.child('scale_activation', makeActivation(opts.gate));
  }
  describe(): string {
    return `SqueezeExcite(${this.channels} → ${this.squeeze} → ${this.channels})`;
  }
  protected run(x: Tensor): Tensor {
    let s = this.get('avgpool').forward(x);
    s = this.get('activation').forward(this.fc1.forward(s));
    s = this.get('scale_activation').forward(this.fc2.forward(s));
    return mul(s, x);
  }
  protected inferShape(input: Shape, visit?: ShapeVisitor): Shape {
    let s = this.get('avgpool').infer(input, visit);
    s = this.get('activation').infer(this.fc1.infer(s, visit), visit);
    this.get('scale_activation').infer(this.fc2.infer(s, visit), visit);
    return input;
  }
}

/**
 * ECA's adaptive kernel size: k = int(|log2(C)/2 + 1/2|), made odd by adding one (γ = 2, b = 1).
 *
 * @example
 * ```ts
 * import { ecaKernelSize } from 'lightconv';
 *
 * ecaKernelSize(96); // 3
 * ecaKernelSize(1024); // 5
 * ```
 */
export function ecaKernelSize(channels: number): number {
  const k = Math.trunc(Math.abs(Math.log2(channels) / 2 + 0.5));
  return k % 2 === 1 ? k : k + 1;
}

/**
 * Efficient channel attention (children avg_pool, conv): global average pool → 1-D conv of
 * kernel k across the channels (1 → 1 channel, padding (k − 1)/2, no bias) → sigmoid → x · gate.
 * `kernelSize` 'adaptive' picks k from the channel count (ecaKernelSize).
 *
 * @example
 * ```ts
 * import { ECA, Tensor } from 'lightconv';
 *
 * const eca = new ECA(96); // k = 3
 * eca.forward(Tensor.randn([1, 96, 14, 14], { seed: 0 })).shape; // [1, 96, 14, 14]
 * ```
 */
export class ECA extends Module {
  readonly kernelSize: number;
  readonly conv: Conv1d;
  constructor(
    readonly channels: number,
    opts: { kernelSize?: number | 'adaptive'; rng?: Rng } = {},
  ) {
    super();
    const k = opts.kernelSize === undefined || opts.kernelSize === 'adaptive' ? ecaKernelSize(channels) : opts.kernelSize;
    if (!Number.isSafeInteger(k) || k < 1 || k % 2 === 0) throw new ValueError(`ECA: kernel size must be a positive odd integer, got ${k}`);
    this.kernelSize = k;
    this.child('avg_pool', new AdaptiveAvgPool2d());
    this.conv = this.child('conv', new Conv1d(1, 1, k, { padding: (k - 1) / 2, bias: false, rng: opts.rng ?? new Rng(0) }));
  }
  describe(): string {
    return `ECA(${this.channels}, k=${this.kernelSize})`;
  }
  protected run(x: Tensor): Tensor {
    const [n, c] = [x.shape[0]!, x.shape[1]!];
    const y = this.get('avg_pool').forward(x); // [N, C, 1, 1]
    // squeeze(-1).transpose(-1, -2): [N, C, 1] → [N, 1, C] moves no data, so it is a reshape.
    const g = this.conv.forward(reshape(y, [n, 1, c]));
    return mul(x, sigmoid(reshape(g, [n, c, 1, 1])));
  }
  protected inferShape(input: Shape, visit?: ShapeVisitor): Shape {
    this.get('avg_pool').infer(input, visit);
    this.conv.infer([input[0]!, 1, input[1]!], visit);
    return input;
  }
}

/** The channel attention of an inverted-residual block: none, squeeze-excitation or ECA. */
export type AttentionKind = 'none' | 'se' | 'eca';

/** One inverted-residual block: channels, kernel, expansion, attention, activation, stride and dilation. */
export interface InvertedResidualConfig {
  inChannels: number;
  kernel: number;
  expanded: number;
  outChannels: number;
  attention: AttentionKind;
  activation: ActivationName;
  stride: number;
  dilation: number;
  /**
   * Whether the input is added back. Default torchvision's rule: the table's stride is 1 and
   * in = out (a dilated block that runs at stride 1 because of its dilation keeps no residual).
   */
  residual?: boolean;
}

/**
 * The inverted-residual block of MobileNetV3 and EfficientNet (MBConv): a `block` Sequential of
 * [expand 1×1 conv-BN-act (only when expanded ≠ in)] → depthwise k×k conv-BN-act → [attention]
 * → project 1×1 conv-BN, plus the input when stride is 1 and in = out (through stochastic depth
 * in EfficientNet). Indices inside `block` shift when there is no expansion, as in torchvision.
 *
 * @example
 * ```ts
 * import { InvertedResidual, Rng, Tensor } from 'lightconv';
 *
 * const block = new InvertedResidual(
 *   { inChannels: 24, kernel: 5, expanded: 96, outChannels: 40, attention: 'eca', activation: 'hardswish', stride: 2, dilation: 1 },
 *   { bn: { eps: 1e-3, momentum: 0.01 }, rng: new Rng(0), se: 'mobilenet' },
 * );
 * block.eval().forward(Tensor.zeros([1, 24, 28, 28])).shape; // [1, 40, 14, 14]
 * ```
 */
export class InvertedResidual extends Module {
  readonly useResidual: boolean;
  readonly block: Sequential;
  readonly stochasticDepth: StochasticDepth | undefined;

  constructor(
    readonly cfg: InvertedResidualConfig,
    opts: {
      bn: BnOptions;
      rng: Rng;
      /** The SE flavour: MobileNetV3's or EfficientNet's. */
      se: 'mobilenet' | 'efficientnet';
      slope?: number;
      /** EfficientNet: stochastic depth probability (adds a `stochastic_depth` child). */
      stochasticDepth?: number;
      seed?: number;
    },
  ) {
    super();
    const { rng, bn } = opts;
    if (cfg.stride !== 1 && cfg.stride !== 2) throw new ValueError(`InvertedResidual: stride must be 1 or 2, got ${cfg.stride}`);
    // torchvision (MobileNetV3): a dilated block runs at stride 1.
    const stride = cfg.dilation > 1 ? 1 : cfg.stride;
    this.useResidual = cfg.residual ?? (cfg.stride === 1 && cfg.inChannels === cfg.outChannels);
    if (this.useResidual && (stride !== 1 || cfg.inChannels !== cfg.outChannels)) throw new ValueError(`InvertedResidual: a residual needs stride 1 and in = out, got ${cfg.inChannels} → ${cfg.outChannels} at stride ${cfg.stride}`);
    const layers: Module[] = [];
    const act = { activation: cfg.activation, slope: opts.slope, bn, rng };
    if (cfg.expanded !== cfg.inChannels) layers.push(new ConvBNAct(cfg.inChannels, cfg.expanded, 1, act));
    layers.push(new ConvBNAct(cfg.expanded, cfg.expanded, cfg.kernel, { ...act, stride, dilation: cfg.dilation, groups: cfg.expanded }));
    if (cfg.attention === 'se') {
      layers.push(
        opts.se === 'mobilenet'
          ? new SqueezeExcite(cfg.expanded, makeDivisible(cfg.expanded / 4, 8), { activation: 'relu', gate: 'hardsigmoid', rng })
          : new SqueezeExcite(cfg.expanded, Math.max(1, Math.floor(cfg.inChannels / 4)), { activation: 'silu', gate: 'sigmoid', rng }),
      );
    } else if (cfg.attention === 'eca') {
      layers.push(new ECA(cfg.expanded, { rng }));
    }
    layers.push(new ConvBNAct(cfg.expanded, cfg.outChannels, 1, { bn, rng, activation: null }));
    this.block = this.child('block', new Sequential(...layers));
    if (opts.stochasticDepth !== undefined) this.stochasticDepth = this.child('stochastic_depth', new StochasticDepth(opts.stochasticDepth, 'row', { seed: opts.seed ?? 0 }));
  }

  describe(): string {
    const c = this.cfg;
    return `InvertedResidual(${c.inChannels} → ${c.expanded} → ${c.outChannels}, k=${c.kernel}, s=${c.stride}${c.dilation > 1 ? `, d=${c.dilation}` : ''}, ${c.activation}${c.attention !== 'none' ? `, ${c.attention}` : ''}${this.useResidual ? ', residual' : ''})`;
  }

  protected run(x: Tensor): Tensor {
    let y = this.block.forward(x);
    if (!this.useResidual) return y;
    if (this.stochasticDepth) y = this.stochasticDepth.forward(y);
    return add(y, x);
  }

  protected inferShape(input: Shape, visit?: ShapeVisitor): Shape {
    if (input[1] !== this.cfg.inChannels) throw new ShapeError(`${this.describe()}: input ${fmtShape(input)} has ${input[1]} channels, expected ${this.cfg.inChannels}`);
    const out = this.block.infer(input, visit);
    if (this.useResidual && this.stochasticDepth) this.stochasticDepth.infer(out, visit);
    return out;
  }
}
