import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Shape, fmtShape } from '../core/shape.js';
import { noGrad } from '../core/autograd.js';
import type { Tensor } from '../core/tensor.js';
import { flatten } from '../kernels/movement.js';
import { AdaptiveAvgPool2d, Linear, type Sequential } from '../layers/layers.js';
import { Module, type ShapeVisitor } from '../layers/module.js';
import { type SummaryOptions, type SummaryResult, summarize } from './summary.js';

/** What a builder knows about the network it made (for summaries, export and assembly). */
export interface NetworkInfo {
  /** e.g. 'efficientnet_b0', 'mobilenet_v3_small', 'eca_mobilenet_v3_small', 'light_cnn', 'custom'. */
  readonly arch: string;
  /** The input a forward pass expects by default, e.g. [1, 3, 224, 224]. */
  readonly input: Shape;
}

/**
 * What every native image classifier offers on top of Module: its info (arch, default input),
 * inference without a tape, the head for fine-tuning, and the summary.
 *
 * @example
 * ```ts
 * import { Tensor, efficientNet, type Classifier } from 'lightconv';
 *
 * const net: Classifier = efficientNet('b0');
 * net.replaceHead(3); // a fresh 3-class head for fine-tuning
 * const logits = net.predict(Tensor.zeros([1, 3, 224, 224])); // eval mode, no tape
 * ```
 */
export abstract class Classifier extends Module {
  constructor(
    /** Replaceable, e.g. to change the default input shape of summaries and exports. */
    public info: NetworkInfo,
  ) {
    super();
  }

  /**
   * Inference: the forward pass in eval mode (running BN statistics, no dropout) without recording
   * a tape; every module's train/eval flag is restored afterwards.
   */
  predict(x: Tensor): Tensor {
    const modes = this.namedModules().map(([, m]) => [m, m.training] as const);
    this.eval();
    try {
      return noGrad(() => this.forward(x));
    } finally {
      for (const [m, t] of modes) m.training = t;
    }
  }

  /** The last Linear layer (the head) and its name. */
  head(): { name: string; layer: Linear } {
    const linears = this.namedModules().filter(([, m]) => m instanceof Linear);
    const last = linears[linears.length - 1];
    if (!last) throw new ValueError(`${this.info.arch}: the network has no Linear layer`);
    return { name: last[0], layer: last[1] as Linear };
  }

  get numClasses(): number {
    return this.head().layer.outFeatures;
  }

  /** Replaces the last Linear with a fresh one of `numClasses` outputs (trainable), for fine-tuning. */
  replaceHead(numClasses: number, opts: { seed?: number } = {}): Linear {
    const { name, layer } = this.head();
    const fresh = new Linear(layer.inFeatures, numClasses, { rng: new Rng(opts.seed ?? 0), init: 'pytorch' });
    fresh.training = this.training;
    this.set(name, fresh);
    return fresh;
  }

  /** Per-layer output shapes, parameters and MACs; printed unless `print: false`. */
  summary(opts: SummaryOptions = {}): SummaryResult {
    return summarize(this, { input: this.info.input, ...opts });
  }
}

/**
 * An image classifier in torchvision's layout: `features` (a Sequential), an optional `avgpool`,
 * then flatten(x, 1) and `classifier` (a Sequential ending in a Linear). Child names are
 * torchvision's, so state-dict keys line up (`features.3.block.1.fc1.weight`, `classifier.3.bias`).
 *
 * @example
 * ```ts
 * import { Tensor, mobileNetV3 } from 'lightconv';
 *
 * const net = mobileNetV3('small', { numClasses: 2 }); // a Network
 * console.log(net.get('classifier.3').describe()); // the head, a Linear
 * const logits = net.eval().forward(Tensor.zeros([1, 3, 224, 224]));
 * ```
 */
export class Network extends Classifier {
  readonly features: Sequential;
  classifier: Sequential;
  readonly hasAvgPool: boolean;

  constructor(info: NetworkInfo, features: Sequential, classifier: Sequential, opts: { avgpool?: boolean } = {}) {
    super(info);
    this.hasAvgPool = opts.avgpool ?? true;
    this.features = this.child('features', features);
    if (this.hasAvgPool) this.child('avgpool', new AdaptiveAvgPool2d());
    this.classifier = this.child('classifier', classifier);
  }

  describe(): string {
    return `Network(${this.info.arch})`;
  }

  protected override onChildReplaced(name: string, m: Module): void {
    if (name === 'classifier') this.classifier = m as Sequential;
  }

  protected run(x: Tensor): Tensor {
    if (x.rank !== 4) throw new ShapeError(`${this.info.arch}: input must be [N, C, H, W], got ${fmtShape(x.shape)}`);
    let y = this.features.forward(x);
    if (this.hasAvgPool) y = this.get('avgpool').forward(y);
    return this.classifier.forward(flatten(y, 1));
  }

  protected inferShape(input: Shape, visit?: ShapeVisitor): Shape {
    if (input.length !== 4) throw new ShapeError(`${this.info.arch}: input must be [N, C, H, W], got ${fmtShape(input)}`);
    let s = this.features.infer(input, visit);
    if (this.hasAvgPool) s = this.get('avgpool').infer(s, visit);
    return this.classifier.infer([s[0]!, s.slice(1).reduce((a, b) => a * b, 1)], visit);
  }
}
