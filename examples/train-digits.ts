// Training with the building blocks: MobileNetV3-Small from scratch on the UCI digits (shipped in
// datasets/digits), evaluated in eval mode. Run: npx tsx examples/train-digits.ts
import {
  AdamW, ImageLoader, classificationMetrics, cosineSchedule, fit, listImageFolder, mobileNetV3,
  predictProbabilities, recalibrateBatchNorm, stratifiedSplit, uprightAugment, type Preprocess,
} from 'lightconv';

const data = await listImageFolder('datasets/digits');                   // 1,797 images, classes '0'…'9'
const { train, test } = stratifiedSplit(data.items.map((it) => it.label), 0.2, 1);
const preprocess: Preprocess = { inputSize: 32, resize: 32, crop: 32, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
const trainSet = new ImageLoader(data, { preprocess, augment: uprightAugment(32), batchSize: 32, shuffle: true, seed: 1, indices: train, dropLast: true });
const calibration = new ImageLoader(data, { preprocess, batchSize: 32, shuffle: true, seed: 2, indices: train, dropLast: true });
const testSet = new ImageLoader(data, { preprocess, batchSize: 64, indices: test });

const net = mobileNetV3('small', { numClasses: 10, seed: 1 });
const { history } = await fit(net, trainSet, {
  epochs: 10, seed: 1,
  optimizer: new AdamW(net.parameters(), { lr: 2e-3, weightDecay: 5e-4 }),
  schedule: cosineSchedule({ total: 10, warmup: 1 }),
});
// Eval mode normalises with BN's running statistics; with MobileNetV3's momentum of 0.01 they
// still describe weights of many steps ago. Re-estimate them from (unaugmented) training batches.
await recalibrateBatchNorm(net, (async function* () {
  for await (const batch of calibration.batches(0)) yield batch.images;
})());
const { probs, labels } = await predictProbabilities(net, testSet);
const m = classificationMetrics(labels, probs, data.classes);
console.log(`training accuracy ${history.at(-1)!.accuracy.toFixed(3)}; test accuracy ${m.accuracy.toFixed(3)}, macro F1 ${m.f1_macro.toFixed(3)}`);
await Promise.all([trainSet.close(), calibration.close(), testSet.close()]);
