/**
 * The `models` namespace: the builders, plus `weights` to load a torchvision ONNX export into the
 * built network. It sits above src/io (it reads ONNX files), unlike the builders themselves.
 */
import { loadOnnxWeights } from '../io/onnx/assemble.js';
import type { ModelSource } from '../io/onnx/model.js';
import { type EfficientNetOptions, type EfficientNetVariant, efficientNet } from './efficientnet.js';
import { fromArch } from './index.js';
import { type LightCnnOptions, lightCnn } from './light_cnn.js';
import { type MobileNetV3Options, mobileNetV3 } from './mobilenetv3.js';
import type { Network } from './network.js';
import { type ResNet, type ResNetOptions, resnet50 as buildResnet50 } from './resnet.js';

/** Builder options plus `weights`: an ONNX file (or bytes) whose weights are loaded, shapes checked. */
type WithWeights<O> = O & { weights: ModelSource };

/** EfficientNet `variant` ('b0' default); with `opts.weights`, a Promise of the network with that ONNX file's weights loaded. */
function efficientnet(variant?: EfficientNetVariant, opts?: EfficientNetOptions): Network;
function efficientnet(variant: EfficientNetVariant, opts: WithWeights<EfficientNetOptions>): Promise<Network>;
function efficientnet(variant: EfficientNetVariant = 'b0', opts: EfficientNetOptions & { weights?: ModelSource } = {}): Network | Promise<Network> {
  const net = efficientNet(variant, opts);
  return opts.weights === undefined ? net : loadOnnxWeights(net, opts.weights);
}

/** MobileNetV3 `variant` ('small' default); with `opts.weights`, a Promise of the network with that ONNX file's weights loaded. */
function mobilenetV3(variant?: 'small' | 'large', opts?: MobileNetV3Options): Network;
function mobilenetV3(variant: 'small' | 'large', opts: WithWeights<MobileNetV3Options>): Promise<Network>;
function mobilenetV3(variant: 'small' | 'large' = 'small', opts: MobileNetV3Options & { weights?: ModelSource } = {}): Network | Promise<Network> {
  const net = mobileNetV3(variant, opts);
  return opts.weights === undefined ? net : loadOnnxWeights(net, opts.weights);
}

/** The small CNN of `lightCnn`; with `opts.weights`, a Promise of the network with those weights loaded. */
function lightcnn(opts?: LightCnnOptions): Network;
function lightcnn(opts: WithWeights<LightCnnOptions>): Promise<Network>;
function lightcnn(opts: LightCnnOptions & { weights?: ModelSource } = {}): Network | Promise<Network> {
  const net = lightCnn(opts);
  return opts.weights === undefined ? net : loadOnnxWeights(net, opts.weights);
}

/** ResNet-50; with `opts.weights`, a Promise of the network with that ONNX file's weights loaded. */
function resnet50(opts?: Omit<ResNetOptions, 'layers'>): ResNet;
function resnet50(opts: WithWeights<Omit<ResNetOptions, 'layers'>>): Promise<ResNet>;
function resnet50(opts: Omit<ResNetOptions, 'layers'> & { weights?: ModelSource } = {}): ResNet | Promise<ResNet> {
  const net = buildResnet50(opts);
  return opts.weights === undefined ? net : loadOnnxWeights(net, opts.weights);
}

/**
 * `models.efficientnet('b0', { numClasses: 3 })`,
 * `models.mobilenetV3('small', { attention: 'eca', activation: 'leaky_relu', dilation: true, numClasses: 4 })`,
 * `await models.efficientnet('b0', { weights: 'efficientnet_b0.onnx' })` (numClasses must match the file).
 *
 * @example
 * ```ts
 * import { Tensor, models } from 'lightconv';
 *
 * const net = models.efficientnet('b0', { numClasses: 3 });
 * const logits = net.eval().forward(Tensor.randn([1, 3, 224, 224], { seed: 0 })); // [1, 3]
 * const pretrained = await models.mobilenetV3('small', { weights: 'mobilenet_v3_small.onnx' });
 * ```
 */
export const models = {
  /** EfficientNet `variant` ('b0' default); with `opts.weights`, a Promise of the network with that ONNX file's weights loaded. */
  efficientnet,
  /** MobileNetV3 `variant` ('small' default); with `opts.weights`, a Promise of the network with that ONNX file's weights loaded. */
  mobilenetV3,
  /** The small CNN of `lightCnn`; with `opts.weights`, a Promise of the network with those weights loaded. */
  lightCnn: lightcnn,
  /** ResNet-50; with `opts.weights`, a Promise of the network with that ONNX file's weights loaded. */
  resnet50,
  /** A classifier by architecture name (`fromArch`), e.g. 'efficientnet_b0', 'mobilenet_v3_small'. */
  fromArch,
};
