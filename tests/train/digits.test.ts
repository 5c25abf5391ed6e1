import { describe, expect, it } from 'vitest';
import { loadImageFolder, trainTestSplit } from '../../src/data/datasets.js';
import { accuracy, confusionMatrix } from '../../src/eval/metrics.js';
import { evaluate, fit } from '../../src/train/fit.js';
import { AdamW } from '../../src/train/optim.js';
import { cosineSchedule } from '../../src/train/schedule.js';
import { digitsNet } from './digits_net.js';

/**
 * End-to-end training on a real dataset shipped in the repo (datasets/digits: 1,797 UCI
 * handwritten digits, CC BY 4.0), upsampled from 8×8 to 16×16: a MobileNetV3-style net with SE,
 * ECA, hard-swish, depthwise and dilated convs (tests/train/digits_net.ts), AdamW with a
 * warm-up + cosine schedule, 6 epochs, batch 32, a stratified 80/20 split. It reaches about
 * 98 % test accuracy in ~30 s on this (shared, 2-core) machine; the bar is 95 %.
 */
describe('training on the digits dataset', () => {
  it('reaches ≥ 95 % test accuracy from a fixed seed, and a rerun with the seed gives the same numbers', async () => {
    const t0 = performance.now();
    const ds = await loadImageFolder('datasets/digits', { size: 16, channels: 1, mean: [0.5], std: [0.5] });
    expect(ds.images.shape).toEqual([1797, 1, 16, 16]);
    expect(ds.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const { train, test } = trainTestSplit(ds, 0.2, 1);
    expect(train.labels.length + test.labels.length).toBe(1797);

    const run = async (epochs: number) => {
      const net = digitsNet(1);
      const optimizer = new AdamW(net.parameters(), { lr: 4e-3, weightDecay: 1e-4 });
      const { history } = await fit(net, train, { epochs, batchSize: 32, optimizer, schedule: cosineSchedule({ total: 6, warmup: 1 }), seed: 1, validation: test, progress: false });
      return { net, history };
    };
    const { net, history } = await run(6);
    const trainedMs = performance.now() - t0;
    const last = history.at(-1)!;
    expect(last.valAccuracy!).toBeGreaterThanOrEqual(0.95);
    expect(last.loss).toBeLessThan(history[0]!.loss / 5);
    const ev = evaluate(net, test);
    expect(ev.accuracy).toBe(last.valAccuracy);
    expect(accuracy(test.labels, ev.predictions)).toBe(ev.accuracy);
    const cm = confusionMatrix(test.labels, ev.predictions, 10);
    expect(cm.flat().reduce((a, b) => a + b, 0)).toBe(test.labels.length);
    expect(trainedMs).toBeLessThan(60_000);

    // Same seed, same data order, same initialisation: identical numbers (first epoch).
    const again = await run(1);
    expect(again.history[0]!.loss).toBe(history[0]!.loss);
    expect(again.history[0]!.accuracy).toBe(history[0]!.accuracy);
    expect(again.history[0]!.valLoss).toBe(history[0]!.valLoss);
  }, 180_000);
});
