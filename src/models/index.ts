/** Model builders: families from tables, plus the summary. */
import { ValueError } from '../core/errors.js';
import { type EfficientNetVariant, efficientNet } from './efficientnet.js';
import { lightCnn } from './light_cnn.js';
import { mobileNetV3 } from './mobilenetv3.js';
import type { Classifier } from './network.js';
import { resnet50 } from './resnet.js';

export { EFFICIENTNET_TABLE, EFFICIENTNET_VARIANTS, buildEfficientNet, efficientNet, efficientNetStages, type EfficientNetOptions, type EfficientNetVariant, type MBConvRow } from './efficientnet.js';
export { MOBILENET_V3_TABLES, buildMobileNetV3, mobileNetV3, mobileNetV3Configs, type MobileNetV3Options, type MobileNetV3Row } from './mobilenetv3.js';
export { lightCnn, type LightCnnOptions } from './light_cnn.js';
export { Classifier, Network, type NetworkInfo } from './network.js';
export { Bottleneck, ResNet, resnet50, type ResNetOptions } from './resnet.js';
export { formatSummary, summarize, type SummaryLayer, type SummaryOptions, type SummaryResult } from './summary.js';

/** Architecture names the CLI and `fromArch` accept. */
export const ARCHS = [
  'efficientnet_b0',
  'efficientnet_b1',
  'efficientnet_b2',
  'efficientnet_b3',
  'efficientnet_b4',
  'efficientnet_b5',
  'efficientnet_b6',
  'efficientnet_b7',
  'mobilenet_v3_small',
  'mobilenet_v3_large',
  'eca_mobilenet_v3_small',
  'light_cnn',
  'resnet50',
] as const;

/** One of `ARCHS`: an architecture name that `fromArch` builds. */
export type ArchName = (typeof ARCHS)[number];

/**
 * Builds an architecture by its name (as on the command line). `resolution`: the square input
 * size the network is built for (light_cnn's classifier depends on it; for the others it is the
 * default input of summaries and exports).
 *
 * @example
 * ```ts
 * import { fromArch } from 'lightconv';
 *
 * const net = fromArch('eca_mobilenet_v3_small', { numClasses: 4, seed: 1 });
 * console.log(net.parameterCount().total);
 * ```
 */
export function fromArch(name: string, opts: { numClasses?: number; seed?: number; resolution?: number } = {}): Classifier {
  const m = /^efficientnet_(b[0-7])$/.exec(name);
  if (m) return efficientNet(m[1] as EfficientNetVariant, opts);
  switch (name) {
    case 'mobilenet_v3_small':
      return mobileNetV3('small', opts);
    case 'mobilenet_v3_large':
      return mobileNetV3('large', opts);
    case 'eca_mobilenet_v3_small':
      return mobileNetV3('small', { ...opts, attention: 'eca', activation: 'leaky_relu', dilation: true });
    case 'light_cnn':
      return lightCnn(opts);
    case 'resnet50':
      return resnet50(opts);
  }
  throw new ValueError(`unknown architecture '${name}'; known: ${ARCHS.join(', ')}`);
}
