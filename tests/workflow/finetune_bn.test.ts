import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listImageFolder } from '../../src/data/datasets.js';
import { ImageLoader } from '../../src/data/loader.js';
import { stratifiedSplit } from '../../src/eval/splits.js';
import { classificationMetrics } from '../../src/eval/metrics.js';
import { mobileNetV3 } from '../../src/models/mobilenetv3.js';
import { fit, predictProbabilities } from '../../src/train/fit.js';
import { AdamW } from '../../src/train/optim.js';
import { recalibrateBatchNorm } from '../../src/train/precise_bn.js';
import { cosineSchedule } from '../../src/train/schedule.js';
import { trainRun } from '../../src/workflow/train_run.js';
import { imageFolderSubset } from './datasets.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const quiet = () => undefined;

describe('eval mode after training: precise BatchNorm', () => {
  it("MobileNetV3-Small (BN momentum 0.01) scores near chance in eval mode after a short training, and well after recalibrating BN", async () => {
    // 3 digit classes, 16×16: the same failure as the full digits at 32×32 (10 % in eval mode
    // at 89 % training accuracy), in a fraction of the time.
    const root = await imageFolderSubset('datasets/digits', ['0', '1', '2'], 120);
    dirs.push(root);
    const list = await listImageFolder(root);
    const labels = list.items.map((it) => it.label);
    const { train, test } = stratifiedSplit(labels, 0.25, 1);
    const preprocess = { inputSize: 16, resize: 16, crop: 16, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    const trainLoader = new ImageLoader(list, { preprocess, batchSize: 32, shuffle: true, seed: 1, indices: train, dropLast: true, workers: 0 });
    const testLoader = new ImageLoader(list, { preprocess, batchSize: 64, indices: test, workers: 0 });
    const net = mobileNetV3('small', { numClasses: 3, seed: 1 });
    const { history } = await fit(net, trainLoader, { epochs: 4, optimizer: new AdamW(net.parameters(), { lr: 2e-3 }), schedule: cosineSchedule({ total: 4, warmup: 1 }), seed: 1, progress: false });
    expect(history.at(-1)!.accuracy).toBeGreaterThan(0.9);
    const accuracy = async () => {
      const r = await predictProbabilities(net, testLoader);
      return classificationMetrics(r.labels, r.probs, list.classes).accuracy;
    };
    const before = await accuracy();
    const used = await recalibrateBatchNorm(net, (async function* () {
      for await (const b of trainLoader.batches(99)) yield b.images;
    })());
    const after = await accuracy();
    expect(used).toBe(Math.floor(train.length / 32));
    // Chance is 1/3: the running statistics (2 % of the way from their start per step) do not
    // describe the trained weights; the recalibrated ones do.
    expect(before).toBeLessThan(0.6);
    expect(after).toBeGreaterThan(0.9);
  }, 120_000);
});

describe('fine-tuning from an ONNX export', () => {
  it('beats training from scratch on a small labelled set (digits: pretrained on 1,000 images, fine-tuned on 10 per class)', async () => {
    // Pretraining and target images are disjoint (the first 100 files of each class, then the next 40).
    const classes = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    const source = await imageFolderSubset('datasets/digits', classes, 100);
    const target = await imageFolderSubset('datasets/digits', classes, 40, 100);
    dirs.push(source, target);
    const pre = `${source}-pretrain`;
    dirs.push(pre);
    const common = { arch: 'mobilenet_v3_small', inputSize: 16, batch: 16, seed: 2, log: quiet, progress: false, bootstrap: 100, augment: 'none' as const };
    // Pretraining: the run exports its model to ONNX (best.onnx), as a PyTorch export would be.
    const p = await trainRun({ ...common, data: source, epochs: 4, testFraction: 0.2, out: pre });
    expect(p.metrics.test!.accuracy).toBeGreaterThan(0.75);

    // The target: 10 images per class to learn from (≈ 8 after the validation split), 30 to test on.
    // A fresh head replaces the pretrained one (the classes could be others: only the features carry over).
    const scratchOut = `${target}-scratch`;
    const ftOut = `${target}-ft`;
    dirs.push(scratchOut, ftOut);
    const scratch = await trainRun({ ...common, data: target, epochs: 6, testFraction: 0.75, out: scratchOut });
    const ft = await trainRun({ ...common, data: target, epochs: 6, testFraction: 0.75, weights: join(pre, 'best.onnx'), out: ftOut });
    expect(ft.metrics.weights).toBe(join(pre, 'best.onnx'));
    // Same split (same seed and data): both are scored on the same 300 test images.
    expect(ft.metrics.dataset.n_test).toBe(300);
    expect(scratch.metrics.dataset.n_test).toBe(300);
    // Measured: 0.92 fine-tuned vs 0.68 from scratch.
    expect(ft.metrics.test!.accuracy).toBeGreaterThan(scratch.metrics.test!.accuracy + 0.1);
    expect(ft.metrics.test!.accuracy).toBeGreaterThan(0.85);
  }, 300_000);
});
