import { noGrad } from '../core/autograd.js';
import { ValueError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { BatchNorm2d } from '../layers/layers.js';
import type { Module } from '../layers/module.js';

/**
 * Precise BatchNorm: recomputes every BN layer's running statistics as the plain average of the
 * batch statistics over `batches` (forward passes in train mode, no tape, parameters untouched).
 *
 * Why: eval mode normalises with the running statistics, an exponential average with momentum
 * 0.01 in MobileNetV3 (torchvision) — after a few hundred steps they still mix in statistics of
 * weights long gone, and a net that fits its training data scores near chance in eval mode.
 * Averaging over ~10–50 batches of the final weights gives the statistics eval mode needs.
 * (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021; fvcore's update_bn_stats.)
 *
 * Dropout and stochastic depth run in train mode as during training, so the statistics match
 * what the layers saw; the model's train/eval flags and BN momenta are restored afterwards.
 * Returns the number of batches used (0 when the model has no BN).
 *
 * @example
 * ```ts
 * import { Tensor, mobileNetV3, recalibrateBatchNorm } from 'lightconv';
 *
 * const net = mobileNetV3('small', { numClasses: 2 });
 * const batches = Array.from({ length: 20 }, (_, i) => Tensor.randn([8, 3, 96, 96], { seed: i }));
 * const used = await recalibrateBatchNorm(net, batches, { maxBatches: 20 }); // then net.eval()
 * ```
 */
export async function recalibrateBatchNorm(model: Module, batches: Iterable<Tensor> | AsyncIterable<Tensor>, opts: { maxBatches?: number } = {}): Promise<number> {
  const bns = model.namedModules().map(([, m]) => m).filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
  if (bns.length === 0) return 0;
  const max = opts.maxBatches ?? Infinity;
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  const momenta = bns.map((b) => b.momentum);
  let k = 0;
  try {
    model.train();
    for await (const x of batches as AsyncIterable<Tensor>) {
      if (k >= max) break;
      // Cumulative average: the k-th batch gets weight 1/k, so after K batches each running
      // statistic is the mean of the K batch statistics (the first batch replaces the old value).
      k++;
      for (const b of bns) b.momentum = 1 / k;
      noGrad(() => model.forward(x));
    }
  } finally {
    bns.forEach((b, i) => (b.momentum = momenta[i]!));
    for (const [m, t] of modes) m.training = t;
  }
  if (k === 0) throw new ValueError('recalibrateBatchNorm: no batches');
  return k;
}
