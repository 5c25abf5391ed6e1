import { Rng } from '../../src/core/rng.js';
import { AdaptiveAvgPool2d, ConvBNAct, Flatten, InvertedResidual, Linear, Sequential } from '../../src/layers/index.js';

/**
 * A small MobileNetV3-style digit classifier for 16×16 grayscale input, from src/layers:
 * stem conv-BN-hard-swish (stride 2) → inverted residual with squeeze-and-excitation →
 * inverted residual with ECA and a dilated (d = 2) depthwise conv → 1×1 conv → pool → linear.
 * 7,109 parameters.
 */
export function digitsNet(seed: number): Sequential {
  const rng = new Rng(seed);
  const bn = { eps: 1e-3, momentum: 0.1 };
  return new Sequential(
    new ConvBNAct(1, 16, 3, { stride: 2, activation: 'hardswish', bn, rng }),
    new InvertedResidual({ inChannels: 16, kernel: 3, expanded: 32, outChannels: 16, attention: 'se', activation: 'hardswish', stride: 1, dilation: 1 }, { bn, rng, se: 'mobilenet' }),
    new InvertedResidual({ inChannels: 16, kernel: 3, expanded: 48, outChannels: 24, attention: 'eca', activation: 'hardswish', stride: 1, dilation: 2 }, { bn, rng, se: 'mobilenet' }),
    new ConvBNAct(24, 64, 1, { activation: 'hardswish', bn, rng }),
    new AdaptiveAvgPool2d(),
    new Flatten(),
    new Linear(64, 10, { rng }),
  );
}
