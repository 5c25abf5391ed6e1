import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { Linear, Sequential } from '../../src/layers/index.js';
import { Rng } from '../../src/core/rng.js';
import { fit, predictProbabilities } from '../../src/train/fit.js';
import { SGD } from '../../src/train/optim.js';

/** Two separable Gaussian blobs in 2-D: a linear model learns them in a few epochs. */
function blobs(n: number, seed: number): { images: Tensor; labels: Int32Array } {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    x[2 * i] = (y[i] ? 1.5 : -1.5) + rng.normal();
    x[2 * i + 1] = rng.normal();
  }
  return { images: new Tensor(x, [n, 2]), labels: y };
}

describe('fit: restoreBest with a validation metric', () => {
  it('a tie on the metric goes to the epoch with the lower validation loss, whose weights are restored', async () => {
    const net = new Sequential(new Linear(2, 2, { rng: new Rng(1) }));
    const train = blobs(200, 1);
    const validation = blobs(60, 2);
    // A metric that ties on every epoch: the first epoch would win without the tie-break.
    const { history, bestEpoch } = await fit(net, train, {
      epochs: 6, batchSize: 20, seed: 1, progress: false, optimizer: new SGD(net.parameters(), { lr: 0.05 }),
      validation, validationMetric: { name: 'constant', fn: () => 1 }, restoreBest: true,
    });
    const lowest = history.reduce((a, h) => (h.valLoss! < a.valLoss! ? h : a));
    // The loss falls over these epochs, so the lowest is not the first.
    expect(lowest.epoch).toBeGreaterThan(1);
    expect(bestEpoch).toBe(lowest.epoch);
    // The restored weights are that epoch's: the validation loss recomputed is the logged one
    // (same weights, data and batches; 1e-6 relative allows for nothing but float32 rounding).
    const again = await predictProbabilities(net, validation, { batchSize: 20 });
    expect(Math.abs(again.loss - lowest.valLoss!)).toBeLessThanOrEqual(1e-6 * lowest.valLoss!);
  });

  it('without a tie the best metric wins, whatever the loss', async () => {
    const net = new Sequential(new Linear(2, 2, { rng: new Rng(1) }));
    // The metric peaks at epoch 2 (a made-up score per call).
    let calls = 0;
    const { bestEpoch } = await fit(net, blobs(200, 1), {
      epochs: 4, batchSize: 20, seed: 1, progress: false, optimizer: new SGD(net.parameters(), { lr: 0.05 }),
      validation: blobs(60, 2), validationMetric: { name: 'peak', fn: () => [0.5, 0.9, 0.7, 0.7][calls++]! }, restoreBest: true,
    });
    expect(bestEpoch).toBe(2);
  });
});
