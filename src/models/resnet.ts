import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Shape, fmtShape } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { add } from '../kernels/elementwise.js';
import { flatten } from '../kernels/movement.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU, Sequential } from '../layers/layers.js';
import { Module, type ShapeVisitor } from '../layers/module.js';
import { Classifier } from './network.js';

/**
 * torchvision's Bottleneck (ResNet v1.5: the stride sits in the 3×3 conv): 1×1 → 3×3 → 1×1
 * (×4 channels), each with BN, ReLU after the first two and after the residual add; `downsample`
 * (1×1 conv + BN) when the shape changes. `downsample` is registered right after `bn1` so that the
 * layer order matches the order in which an ONNX graph's convs become ready (names are unaffected).
 *
 * @example
 * ```ts
 * import { Bottleneck, Tensor, resnet50 } from 'lightconv';
 *
 * const block = resnet50().get('layer1.0') as Bottleneck; // 64 → 256 channels
 * const y = block.eval().forward(Tensor.zeros([1, 64, 56, 56])); // [1, 256, 56, 56]
 * ```
 */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly downsample: Sequential | undefined;

  constructor(
    readonly inplanes: number,
    readonly planes: number,
    readonly stride: number,
    rng: Rng,
  ) {
    super();
    const out = planes * Bottleneck.expansion;
    this.child('conv1', new Conv2d(inplanes, planes, 1, { bias: false, rng }));
    this.child('bn1', new BatchNorm2d(planes));
    if (stride !== 1 || inplanes !== out) this.downsample = this.child('downsample', new Sequential(new Conv2d(inplanes, out, 1, { stride, bias: false, rng }), new BatchNorm2d(out)));
    this.child('conv2', new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false, rng }));
    this.child('bn2', new BatchNorm2d(planes));
    this.child('conv3', new Conv2d(planes, out, 1, { bias: false, rng }));
    this.child('bn3', new BatchNorm2d(out));
    this.child('relu', new ReLU());
  }

  describe(): string {
    return `Bottleneck(${this.inplanes} → ${this.planes} → ${this.planes * Bottleneck.expansion}, s=${this.stride})`;
  }

  protected run(x: Tensor): Tensor {
    const relu = this.get('relu');
    let y = relu.forward(this.get('bn1').forward(this.get('conv1').forward(x)));
    y = relu.forward(this.get('bn2').forward(this.get('conv2').forward(y)));
    y = this.get('bn3').forward(this.get('conv3').forward(y));
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return relu.forward(add(y, identity));
  }

  protected inferShape(input: Shape, visit?: ShapeVisitor): Shape {
    if (input[1] !== this.inplanes) throw new ShapeError(`${this.describe()}: input ${fmtShape(input)} has ${input[1]} channels, expected ${this.inplanes}`);
    let s = this.get('bn1').infer(this.get('conv1').infer(input, visit), visit);
    s = this.get('bn2').infer(this.get('conv2').infer(s, visit), visit);
    s = this.get('bn3').infer(this.get('conv3').infer(s, visit), visit);
    if (this.downsample) this.downsample.infer(input, visit);
    return this.get('relu').infer(s, visit);
  }
}

/** Options of `ResNet` / `resnet50`: 1000 classes and 224×224 input by default. */
export interface ResNetOptions {
  numClasses?: number;
  /** Bottleneck blocks per stage; default ResNet-50's [3, 4, 6, 3]. */
  layers?: readonly [number, number, number, number];
  resolution?: number;
  seed?: number;
}

/**
 * torchvision's ResNet with Bottleneck blocks: conv1, bn1, relu, maxpool, layer1…layer4, avgpool,
 * fc.
 *
 * @example
 * ```ts
 * import { ResNet } from 'lightconv';
 *
 * const resnet101 = new ResNet({ layers: [3, 4, 23, 3], numClasses: 10 });
 * ```
 */
export class ResNet extends Classifier {
  constructor(opts: ResNetOptions = {}) {
    const layers = opts.layers ?? [3, 4, 6, 3];
    const r = opts.resolution ?? 224;
    super({ arch: layers.join() === '3,4,6,3' ? 'resnet50' : `resnet(${layers.join(', ')})`, input: [1, 3, r, r] });
    if (layers.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new ValueError(`ResNet: blocks per stage must be positive integers, got [${layers.join(', ')}]`);
    const rng = new Rng(opts.seed ?? 0);
    this.child('conv1', new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false, rng }));
    this.child('bn1', new BatchNorm2d(64));
    this.child('relu', new ReLU());
    this.child('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    let inplanes = 64;
    layers.forEach((n, i) => {
      const planes = 64 * 2 ** i;
      const stage = new Sequential();
      for (let j = 0; j < n; j++) {
        stage.append(new Bottleneck(inplanes, planes, j === 0 && i > 0 ? 2 : 1, rng));
        inplanes = planes * Bottleneck.expansion;
      }
      this.child(`layer${i + 1}`, stage);
    });
    this.child('avgpool', new AdaptiveAvgPool2d());
    this.child('fc', new Linear(inplanes, opts.numClasses ?? 1000, { rng }));
  }

  describe(): string {
    return `ResNet(${this.info.arch})`;
  }

  /** The modules before the classifier, in order. */
  private trunk(): Module[] {
    return this.children()
      .filter(([n]) => n !== 'fc')
      .map(([, m]) => m);
  }

  protected run(x: Tensor): Tensor {
    if (x.rank !== 4) throw new ShapeError(`${this.info.arch}: input must be [N, C, H, W], got ${fmtShape(x.shape)}`);
    for (const m of this.trunk()) x = m.forward(x);
    return this.get('fc').forward(flatten(x, 1));
  }

  protected inferShape(input: Shape, visit?: ShapeVisitor): Shape {
    if (input.length !== 4) throw new ShapeError(`${this.info.arch}: input must be [N, C, H, W], got ${fmtShape(input)}`);
    for (const m of this.trunk()) input = m.infer(input, visit);
    return this.get('fc').infer([input[0]!, input.slice(1).reduce((a, b) => a * b, 1)], visit);
  }
}

/**
 * ResNet-50, the baseline the lightweight papers compare against (25,557,032 parameters, 4.09 G
 * MACs).
 *
 * @example
 * ```ts
 * import { resnet50 } from 'lightconv';
 *
 * const net = resnet50({ numClasses: 2 });
 * console.log(net.parameterCount().total);
 * ```
 */
export function resnet50(opts: Omit<ResNetOptions, 'layers'> = {}): ResNet {
  return new ResNet({ ...opts, layers: [3, 4, 6, 3] });
}
