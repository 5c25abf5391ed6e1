import { LightconvError, ValueError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import { setThreads } from '../core/threads.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/image.js';
import { type ImageList, listCsvImages, listImageFolder } from '../data/datasets.js';
import { ImageLoader } from '../data/loader.js';
import { type Preprocess, type TransformSpec, checkPreprocess, defaultAugment, preprocessToMetadata, uprightAugment } from '../data/transforms.js';
import { type ClassificationMetrics, HEADLINE, classificationMetrics } from '../eval/metrics.js';
import { stratifiedKFold, stratifiedSplit } from '../eval/splits.js';
import { bootstrapCI, meanStd } from '../eval/stats.js';
import { measureLatency } from '../eval/latency.js';
import { assemble } from '../io/onnx/assemble.js';
import { readRegularFile } from '../io/files.js';
import { compileForInference, exportOnnxBytes } from '../io/onnx/export.js';
import { BatchNorm2d } from '../layers/layers.js';
import { ARCHS, fromArch } from '../models/index.js';
import type { Classifier } from '../models/network.js';
import { type EpochLog, TrainingAbortedError, earlyStopping, fit, predictProbabilities } from '../train/fit.js';
import { crossEntropy } from '../train/losses.js';
import { AdamW } from '../train/optim.js';
import { recalibrateBatchNorm } from '../train/precise_bn.js';
import { cosineSchedule } from '../train/schedule.js';
import { type ExplainedImage, type RunExplanationOptions, type RunExplanations, writeRunExplanations } from './explanations.js';
import { type HistoryRow, type PredictionRow, writeRunOutputs } from './outputs.js';

/**
 * `lightconv train`: from a folder of labelled images to a trained, exported model and a report.
 *
 * 1. List the images (ImageFolder or a CSV), split off a held-out test set (stratified, grouped
 *    by patient/lesion when `groupCol` is given) when `testFraction` > 0.
 * 2. With `folds` ≥ 2: stratified (grouped) k-fold cross-validation on the rest; each fold trains
 *    a fresh model on the other folds (15 % of them selecting its best epoch) and predicts its
 *    own fold, which took no part in training or selection (out-of-fold predictions for every
 *    development image).
 * 3. The final model trains on 85 % of the development images, the other 15 % selecting its best
 *    epoch (macro F1); it is exported to RUN/best.onnx with its classes and preprocessing in the
 *    metadata, timed, and evaluated on the test set with bootstrap CIs.
 *
 * Training: from scratch, AdamW with warm-up + cosine; BN statistics recalibrated on training
 * batches before every validation and before export (precise BN: eval mode would otherwise use
 * running averages that lag far behind the weights). With `weights` (a torchvision-layout ONNX
 * export of `arch`): fastai's fine_tune — a new head trained alone for `headEpochs`, then every
 * layer with the backbone at a tenth of the head's learning rate; BN folded into the convs by the
 * pretrained BN statistics stay fixed (BN in eval mode; its affine weights train).
 */
export interface TrainRunOptions {
  /** The image folder (ImageFolder layout, or the flat folder that `csv` labels). */
  data: string;
  csv?: string;
  imageCol?: string;
  labelCol?: string;
  groupCol?: string;
  arch: string;
  /** A torchvision-layout ONNX export of `arch` to fine-tune from. */
  weights?: string;
  /**
   * Fine-tuning: BatchNorm 'frozen' (default; eval mode with the pretrained statistics — right for
   * a related domain and few images) or 'train' (batch statistics, recalibrated before every
   * validation — for a distant domain with enough images, e.g. histology weights on digits).
   */
  bn?: 'frozen' | 'train';
  /** 'backbone': only the head (and with weights, nothing else) ever trains. */
  freeze?: 'backbone' | 'none';
  inputSize?: number;
  /** DICOM VOI window [center, width] for every DICOM image, e.g. [-600, 1500] for lung CT (default: each file's own); stored in the model with the rest of its preprocessing. */
  window?: [number, number];
  epochs?: number;
  /** Early stopping: a model stops after this many epochs without a better validation macro F1 (default: none; the best epoch is restored either way). */
  patience?: number;
  /** Fine-tuning: epochs of the head alone before all layers train (default ⌈epochs/4⌉, at most 3). */
  headEpochs?: number;
  batch?: number;
  /** Peak learning rate (default 2e-3 from scratch, 1e-3 fine-tuning). */
  lr?: number;
  folds?: number;
  testFraction?: number;
  seed?: number;
  threads?: number;
  /** Training augmentation: 'default' (random resized crop, flips, light colour jitter), 'upright' (crop and ±10° rotation, no flips), 'none', or specs. */
  augment?: 'default' | 'upright' | 'none' | TransformSpec[];
  /** Imbalanced classes: 'weights' (inverse-frequency loss weights), 'sampling' (class-balanced batches), 'none', 'auto' (weights when the largest class is ≥ 1.5× the smallest). */
  balance?: 'auto' | 'weights' | 'sampling' | 'none';
  /** Decoding worker threads (default 1). */
  workers?: number;
  /** The report's explanations: Grad-CAM of evaluated images and a slide heat map (false: none; default 2 Grad-CAM pictures per class). */
  explain?: RunExplanationOptions | false;
  /** Bootstrap resamples for the CIs (default 1000). */
  bootstrap?: number;
  out: string;
  signal?: AbortSignal;
  /** One line per event (epoch ends, fold results); default console.log. */
  log?: (line: string) => void;
  /** Progress bars (default: when stdout is a terminal). */
  progress?: boolean;
  /** The command line, recorded in metrics.json. */
  command?: string;
}

export interface TrainRunResult {
  /** The body of RUN/metrics.json. */
  metrics: RunMetrics;
  model: Classifier;
  history: HistoryRow[];
  /** Files written, relative to `out`. */
  files: string[];
}

export type MetricsWithCi = ClassificationMetrics & { ci95: Record<string, [number, number]> };

export interface RunMetrics extends Partial<ClassificationMetrics> {
  version: 1;
  status: 'complete' | 'cancelled';
  created: string;
  command: string | null;
  arch: string;
  weights: string | null;
  input_size: number;
  epochs: number;
  batch: number;
  seed: number;
  lr: number;
  /** K of the k-fold cross-validation (0: none). */
  n_folds: number;
  test_fraction: number;
  preprocess: Preprocess;
  augment: TransformSpec[];
  /** What the top-level metrics describe. */
  evaluated_on: 'test' | 'out-of-fold' | 'validation' | 'none';
  dataset: { root: string; layout: string; csv: string | null; n: number; classes: string[]; counts: Record<string, number>; groups: number | null; n_dev: number; n_test: number };
  params?: number;
  macs?: number;
  latency_ms_per_image?: { median: number; p95: number; batch: number; threads: number; backend: string };
  ci95?: Record<string, [number, number]>;
  /** One entry per cross-validation fold (its validation images), with --folds. */
  folds?: (ClassificationMetrics & { fold: number; best_epoch: number; n_train: number; n_val: number })[];
  mean?: Record<string, number>;
  std?: Record<string, number>;
  oof?: ClassificationMetrics;
  test?: MetricsWithCi;
  validation?: ClassificationMetrics;
  files?: Record<string, unknown>;
}

const DEFAULTS = { inputSize: 224, epochs: 20, batch: 32, folds: 0, testFraction: 0.2, seed: 1 };

function archInputFixed(arch: string): boolean {
  // light_cnn flattens its last feature map into a Linear layer: its input size is part of the weights.
  return arch === 'light_cnn';
}

/**
 * Lists the images of a run's data options.
 *
 * @example
 * ```ts
 * import { listData } from 'lightconv';
 *
 * const list = await listData({ data: 'data/HAM10000/images', csv: 'data/HAM10000/metadata.csv', groupCol: 'lesion_id' });
 * console.log(list.classes, list.items.length);
 * ```
 */
export async function listData(o: { data: string; csv?: string; imageCol?: string; labelCol?: string; groupCol?: string; classes?: readonly string[] }): Promise<ImageList> {
  if (o.csv) return listCsvImages(o.data, o.csv, { imageCol: o.imageCol ?? 'image_id', labelCol: o.labelCol ?? 'dx', ...(o.groupCol ? { groupCol: o.groupCol } : {}), ...(o.classes ? { classes: [...o.classes] } : {}) });
  if (o.groupCol) throw new ValueError('--group-col needs --csv (the groups are read from the CSV)');
  return listImageFolder(o.data);
}

/**
 * `lightconv train`: lists the data, splits off a stratified test set (and cross-validation folds),
 * trains `arch` (from scratch or fine-tuning `weights`), evaluates with bootstrap CIs, and writes
 * the run folder `out` (model.onnx with its metadata, metrics.json, history and predictions CSVs,
 * plots, report). Throws a ValueError for bad options or data; `signal` cancels.
 *
 * @example
 * ```ts
 * import { trainRun } from 'lightconv';
 *
 * const { metrics, files } = await trainRun({
 *   data: 'data/skin-lesions', arch: 'mobilenet_v3_small', epochs: 20, folds: 5, out: 'runs/exp1',
 * });
 * ```
 */
export async function trainRun(opts: TrainRunOptions): Promise<TrainRunResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const inputSize = opts.inputSize ?? DEFAULTS.inputSize;
  const epochs = opts.epochs ?? DEFAULTS.epochs;
  const batch = opts.batch ?? DEFAULTS.batch;
  const folds = opts.folds ?? DEFAULTS.folds;
  const testFraction = opts.testFraction ?? DEFAULTS.testFraction;
  const seed = opts.seed ?? DEFAULTS.seed;
  if (!(ARCHS as readonly string[]).includes(opts.arch)) throw new ValueError(`--arch: unknown architecture '${opts.arch}'; known: ${ARCHS.join(', ')}`);
  for (const [name, v, min] of [['--input-size', inputSize, 16], ['--epochs', epochs, 1], ['--batch', batch, 2]] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new ValueError(`${name} must be an integer ≥ ${min}, got ${v}`);
  }
  if (opts.patience !== undefined && (!Number.isSafeInteger(opts.patience) || opts.patience < 1)) throw new ValueError(`--patience must be an integer ≥ 1, got ${opts.patience}`);
  if (folds !== 0 && (!Number.isSafeInteger(folds) || folds < 2)) throw new ValueError(`--folds must be 0 (no cross-validation) or an integer ≥ 2, got ${folds}`);
  if (!(testFraction >= 0 && testFraction < 1)) throw new ValueError(`--test-fraction must be in [0, 1), got ${testFraction}`);
  if (archInputFixed(opts.arch) && inputSize % 16 !== 0) throw new ValueError(`--input-size: ${opts.arch} needs a multiple of 16, got ${inputSize}`);
  if (opts.threads !== undefined) setThreads(opts.threads);

  const list = await listData(opts);
  const classes = list.classes;
  const C = classes.length;
  const labels = Int32Array.from(list.items, (it) => it.label);
  const groups = opts.groupCol ? list.items.map((it) => it.group ?? '') : undefined;
  const counts = Object.fromEntries(classes.map((c, k) => [c, labels.filter((y) => y === k).length]));
  const finetune = opts.weights !== undefined;
  const lr = opts.lr ?? (finetune ? 1e-3 : 2e-3);
  const preprocess: Preprocess = checkPreprocess({ inputSize, resize: inputSize, crop: inputSize, channels: 3, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], ...(opts.window ? { window: opts.window } : {}) }, '--window');
  const augment: TransformSpec[] = Array.isArray(opts.augment) ? opts.augment : opts.augment === 'none' ? [] : opts.augment === 'upright' ? uprightAugment(inputSize) : defaultAugment(inputSize);
  // A regular file only (a FIFO would hang the read), read whole.
  const weightsBytes = finetune ? await readRegularFile(opts.weights!, { error: (m) => new LightconvError(`--weights: ${m}`) }) : null;

  // Splits: indices into list.items.
  const all = [...labels.keys()];
  const split = testFraction > 0 ? stratifiedSplit(labels, testFraction, seed, groups, { classNames: classes }) : { train: all, test: [] as number[] };
  const dev = split.train;
  const test = split.test;
  const pick = <T>(xs: ArrayLike<T>, idx: readonly number[]) => idx.map((i) => xs[i]!);

  const metrics: RunMetrics = {
    version: 1,
    status: 'complete',
    created: new Date().toISOString(),
    command: opts.command ?? null,
    arch: opts.arch,
    weights: opts.weights ?? null,
    input_size: inputSize,
    epochs,
    batch,
    seed,
    lr,
    n_folds: folds,
    test_fraction: testFraction,
    preprocess,
    augment,
    evaluated_on: 'none',
    dataset: { root: list.root, layout: list.layout, csv: opts.csv ?? null, n: list.items.length, classes: [...classes], counts, groups: groups ? new Set(groups).size : null, n_dev: dev.length, n_test: test.length },
  };
  const history: HistoryRow[] = [];
  const predictions: PredictionRow[] = [];
  const loaders: ImageLoader[] = [];
  /** 'train': augmented, shuffled; 'calib': precise-BN batches (train-mode BN, so no batch of one); 'eval'. */
  const loader = (idx: number[], kind: 'train' | 'calib' | 'eval') => {
    const train = kind === 'train';
    const l = new ImageLoader(list, {
      preprocess,
      ...(train ? { augment } : {}),
      batchSize: batch,
      // Precise BN needs batches mixed as in training: sorted batches (one class each) would
      // average within-class variances and miss the variance between classes.
      shuffle: kind !== 'eval',
      // BN in train mode cannot normalise a batch of one image (one value per channel at 1×1).
      dropLast: kind !== 'eval' && idx.length > batch,
      seed,
      indices: idx,
      ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
      ...(train && balanceMode(opts.balance, pick(labels, idx), C) === 'sampling' ? { balanced: true } : {}),
    });
    loaders.push(l);
    return l;
  };
  /** Ends the decoding threads of the loaders opened so far (after each model). */
  const closeLoaders = async () => {
    await Promise.all(loaders.splice(0).map((l) => l.close()));
  };

  /** Builds the network: fresh, or the export's weights with a new head. */
  const build = async (foldSeed: number): Promise<{ net: Classifier; frozenBn: boolean }> => {
    if (!weightsBytes) return { net: fromArch(opts.arch, { numClasses: C, seed: foldSeed, resolution: inputSize }), frozenBn: false };
    const net = await assemble(weightsBytes);
    if (net.info.arch !== opts.arch) throw new ValueError(`--weights: '${opts.weights}' holds a ${net.info.arch}, not the --arch ${opts.arch}`);
    const declared = net.info.input;
    if (archInputFixed(opts.arch) && declared[2] !== inputSize) {
      throw new ValueError(`--weights: '${opts.weights}' is a ${opts.arch} for ${declared[2]}×${declared[3]} inputs (its classifier depends on the size), not --input-size ${inputSize}`);
    }
    net.replaceHead(C, { seed: foldSeed });
    // BN stays in eval mode with the pretrained statistics throughout fine-tuning (Keras'
    // advice for fine-tuning; folded BN is an identity anyway): statistics re-estimated from a
    // few hundred target images, or batch statistics of small batches, shift the features that
    // the pretrained layers and the new head rely on (measured: 36 % vs 80 % test accuracy on 5
    // digit classes with 8 images each). BN's affine weights still train.
    return { net, frozenBn: (opts.bn ?? 'frozen') === 'frozen' };
  };

  /** Trains one model on `trainIdx`, selecting the best epoch on `valIdx`. */
  const trainOne = async (fold: number, trainIdx: number[], valIdx: number[]) => {
    const { net, frozenBn } = await build(seed + fold);
    const trainData = loader(trainIdx, 'train');
    const calib = loader(trainIdx, 'calib');
    const val = loader(valIdx, 'eval');
    const yTrain = pick(labels, trainIdx);
    const weights = balanceMode(opts.balance, yTrain, C) === 'weights' ? inverseFrequency(yTrain, C) : null;
    const lossFn = (o: Tensor, y: Int32Array) => crossEntropy(o, y, weights ? { weight: weights } : {});
    let phase = 'all';
    let offset = 0;
    const preciseBn = frozenBn ? undefined : async (m: unknown) => void (await recalibrateBatchNorm(m as Classifier, imagesOf(calib), { maxBatches: 16 }));
    const common = {
      batchSize: batch,
      seed: seed + fold,
      loss: lossFn,
      validation: val,
      restoreBest: true,
      validationMetric: { name: 'f1_macro', fn: (y: Int32Array, p: Float32Array) => classificationMetrics(y, p, [...classes]).f1_macro },
      ...(preciseBn ? { beforeValidation: preciseBn } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.progress !== undefined ? { progress: opts.progress } : {}),
      // Each epoch joins the run's history as it ends, so a cancelled run still writes it.
      callbacks: [
        {
          onEpochEnd: (l: EpochLog) => {
            history.push({ fold, ...l, epoch: l.epoch + offset, phase });
            log(epochLine(fold, { ...l, epoch: l.epoch + offset }, phase));
          },
        },
      ],
    };
    // A fresh stopper per fit (the head phase and the all-layers phase each count their own epochs).
    const stopping = () => ({ callbacks: [...common.callbacks, ...(opts.patience ? [earlyStopping({ monitor: 'valMetric', mode: 'max', patience: opts.patience })] : [])] });
    let bestEpoch = 0;
    const headEpochs = finetune ? Math.min(opts.headEpochs ?? Math.min(3, Math.ceil(epochs / 4)), epochs) : 0;
    const head = net.head();
    if (headEpochs > 0) {
      phase = 'head';
      net.freeze().unfreeze(head.name);
      const r = await fit(net, trainData, { ...common, ...stopping(), epochs: headEpochs, frozenBatchNorm: frozenBn, optimizer: new AdamW(net.parameters(), { lr, weightDecay: 1e-4 }), schedule: cosineSchedule({ total: headEpochs, warmup: 0 }) });
      bestEpoch = r.bestEpoch;
      offset = headEpochs;
    }
    const rest = epochs - headEpochs;
    if (rest > 0) {
      phase = headEpochs > 0 ? 'all' : 'train';
      const headParams = new Set(head.layer.parameters());
      if (opts.freeze === 'backbone') net.freeze().unfreeze(head.name);
      else net.unfreeze();
      const params = net.parameters();
      const backbone = params.filter((p) => !headParams.has(p));
      const groups = finetune ? [{ params: backbone, options: { lr: lr / 10 } }, { params: params.filter((p) => headParams.has(p)) }] : [{ params }];
      const optimizer = new AdamW(groups, { lr, weightDecay: finetune ? 1e-4 : 5e-4 });
      const r = await fit(net, trainData, { ...common, ...stopping(), epochs: rest, frozenBatchNorm: frozenBn || opts.freeze === 'backbone', optimizer, schedule: cosineSchedule({ total: rest, warmup: finetune ? 0 : Math.min(2, Math.floor(rest / 5)) }) });
      if (r.bestEpoch > 0) bestEpoch = r.bestEpoch + offset;
    }
    return { net, bestEpoch };
  };

  const predict = async (net: Classifier, idx: number[]) => {
    const r = await predictProbabilities(net, loader(idx, 'eval'), { batchSize: batch });
    return { probs: r.probs, labels: r.labels };
  };
  const addPredictions = (idx: number[], probs: Float32Array, split: string) => {
    idx.forEach((i, r) => predictions.push({ file: list.items[i]!.file, split, label: labels[i]!, probs: Array.from(probs.subarray(r * C, (r + 1) * C)) }));
  };

  let finalRows: ExplainedImage[] = [];
  const explained = (idx: number[], probs: Float32Array): ExplainedImage[] =>
    idx.map((i, r) => ({ path: list.items[i]!.path, file: list.items[i]!.file, label: labels[i]!, probs: probs.subarray(r * C, (r + 1) * C) }));

  /** 85 % of `idx` to train on, 15 % to select the best epoch (stratified, grouped). */
  const innerSplit = (idx: number[]) => {
    const inner = stratifiedSplit(pick(labels, idx), 0.15, seed + 1, groups ? pick(groups, idx) : undefined, { classNames: classes });
    return { train: inner.train.map((j) => idx[j]!), val: inner.test.map((j) => idx[j]!) };
  };

  let final: Classifier | null = null;
  try {
    // Training reads every development image in its first epoch, the held-out test images only
    // at the very end: decode them now, so that a corrupt or oversized test image stops the run
    // at its start, naming the file, instead of after every model has trained.
    if (test.length > 0) {
      for await (const b of loader(test, 'eval').batches(0)) void b;
      await closeLoaders();
    }
    if (folds >= 2) {
      const devLabels = Int32Array.from(dev, (i) => labels[i]!);
      const devGroups = groups ? dev.map((i) => groups[i]!) : undefined;
      let splits: ReturnType<typeof stratifiedKFold>;
      try {
        splits = stratifiedKFold(devLabels, folds, seed, devGroups, { classNames: classes });
      } catch (e) {
        // The class sizes it counts are the development images', not the folder's: say so.
        if (e instanceof ValueError && test.length > 0) throw new ValueError(`${e.message} (counted among the ${dev.length} development images left after the held-out test set of ${test.length}, --test-fraction ${testFraction})`);
        throw e;
      }
      const oof = new Float32Array(dev.length * C);
      // In metrics from the start, so that a cancelled run keeps the folds that finished.
      const foldsMetrics: NonNullable<RunMetrics['folds']> = [];
      metrics.folds = foldsMetrics;
      for (const [k, s] of splits.entries()) {
        // The fold's own images only score the model: its best epoch is chosen on 15 % of the
        // other folds' images (selecting on the scored images would bias the fold's result upwards).
        const { train: trainIdx, val: selectIdx } = innerSplit(s.train.map((j) => dev[j]!));
        const valIdx = s.val.map((j) => dev[j]!);
        log(`fold ${k + 1}/${folds}: training on ${trainIdx.length} images, selecting the best epoch on ${selectIdx.length}, scoring on ${valIdx.length}`);
        const { net, bestEpoch } = await trainOne(k + 1, trainIdx, selectIdx);
        const p = await predict(net, valIdx);
        await closeLoaders();
        s.val.forEach((j, r) => oof.set(p.probs.subarray(r * C, (r + 1) * C), j * C));
        addPredictions(valIdx, p.probs, `fold${k + 1}`);
        const m = classificationMetrics(p.labels, p.probs, [...classes]);
        foldsMetrics.push({ fold: k + 1, best_epoch: bestEpoch, n_train: trainIdx.length, n_val: valIdx.length, ...m });
        log(`fold ${k + 1}/${folds}: best epoch ${bestEpoch}, ${headlineLine(m)}`);
      }
      metrics.mean = {};
      metrics.std = {};
      for (const h of HEADLINE) {
        const { mean, std } = meanStd(foldsMetrics.map((f) => f[h as keyof ClassificationMetrics] as number));
        metrics.mean[h] = mean;
        metrics.std[h] = std;
      }
      metrics.oof = classificationMetrics(devLabels, oof, [...classes]);
      log(`cross-validation (${folds} folds, mean ± std): ${HEADLINE.slice(0, 5).map((h) => `${h} ${metrics.mean![h]!.toFixed(3)} ± ${metrics.std![h]!.toFixed(3)}`).join(', ')}`);
    }
    // The final model: all development images but 15 %, which select its best epoch (a model's
    // last epoch can be a poor one: validation loss spikes under a high learning rate).
    {
      const { train: trainIdx, val: valIdx } = innerSplit(dev);
      log(`final model: training on ${trainIdx.length} images, selecting the best epoch on ${valIdx.length}`);
      const { net } = await trainOne(0, trainIdx, valIdx);
      const p = await predict(net, valIdx);
      await closeLoaders();
      finalRows = explained(valIdx, p.probs);
      // With folds these images already have out-of-fold predictions in predictions.csv.
      if (folds < 2) addPredictions(valIdx, p.probs, 'validation');
      metrics.validation = classificationMetrics(p.labels, p.probs, [...classes]);
      final = net;
    }

    const input = [1, 3, inputSize, inputSize];
    const s = final.summary({ input, print: false });
    metrics.params = s.params;
    metrics.macs = s.macs;
    const compiled = compileForInference(final, { input });
    const x = Tensor.zeros(input);
    const lat = await measureLatency(() => compiled.run(x), { warmup: 3, runs: 20 });
    metrics.latency_ms_per_image = { median: lat.median, p95: lat.p95, batch: 1, threads: (await import('../core/threads.js')).getThreads(), backend: 'cpu' };

    if (test.length > 0) {
      const p = await predict(final, test);
      addPredictions(test, p.probs, 'test');
      finalRows = explained(test, p.probs);
      const m = classificationMetrics(p.labels, p.probs, [...classes]);
      metrics.test = { ...m, ci95: bootstrapCI(p.labels, p.probs, [...classes], { n: opts.bootstrap ?? 1000, seed }) };
      log(`held-out test (${test.length} images): ${headlineLine(m)}`);
    }
    const headline = metrics.test ?? metrics.oof ?? metrics.validation;
    metrics.evaluated_on = metrics.test ? 'test' : metrics.oof ? 'out-of-fold' : 'validation';
    if (headline) Object.assign(metrics, headline);
    if (!metrics.test && headline) {
      const src = metrics.oof ? { y: Int32Array.from(dev, (i) => labels[i]!), p: oofProbs(predictions, dev, list, C) } : null;
      if (src) metrics.ci95 = bootstrapCI(src.y, src.p, [...classes], { n: opts.bootstrap ?? 1000, seed });
    } else if (metrics.test) metrics.ci95 = metrics.test.ci95;

    const modelBytes = exportOnnxBytes(final, { input, metadata: modelMetadata(classes, preprocess, opts.arch) });
    // Explained with the final model, on images it did not train on (the test set, else its selection images).
    let explanations: RunExplanations | undefined;
    if (opts.explain !== false) {
      const ex = { ...(opts.explain ?? {}) };
      if (ex.slide && ex.tile === undefined) ex.tile = await trainingImageSide(list.items[0]!.path);
      explanations = await writeRunExplanations(opts.out, final, classes, preprocess, finalRows, ex);
    }
    const files = await writeRunOutputs(opts.out, { metrics, history, predictions, classes: [...classes], modelBytes, ...(explanations ? { explanations } : {}) });
    return { metrics, model: final, history, files };
  } catch (e) {
    if (e instanceof TrainingAbortedError) {
      // Ctrl-C: what is complete (epochs logged, folds finished) is written; no model, no plots.
      metrics.status = 'cancelled';
      await writeRunOutputs(opts.out, { metrics, history, predictions, classes: [...classes], modelBytes: null });
      throw new TrainingAbortedError(e.history);
    }
    throw e;
  } finally {
    await closeLoaders();
  }
}

/** The side of a training image (a slide's tiles default to it: tiles look like the patches). */
async function trainingImageSide(path: string): Promise<number> {
  const { readImage } = await import('../data/decode.js');
  const img = await readImage(path);
  return Math.min(img.width, img.height);
}

/**
 * The ONNX metadata that makes an exported model self-describing (eval/predict/run need no flags).
 *
 * @example
 * ```ts
 * import { modelMetadata } from 'lightconv';
 *
 * const preprocess = { inputSize: 64, resize: 64, crop: 64, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
 * const metadata = modelMetadata(['a', 'b'], preprocess, 'light_cnn');
 * ```
 */
export function modelMetadata(classes: readonly string[], preprocess: Preprocess, arch: string): Record<string, string> {
  return { ...preprocessToMetadata(preprocess), 'lightconv.classes': JSON.stringify(classes), 'lightconv.arch': arch };
}

function balanceMode(b: TrainRunOptions['balance'], y: ArrayLike<number>, C: number): 'weights' | 'sampling' | 'none' {
  const mode = b ?? 'auto';
  if (mode !== 'auto') return mode;
  const counts = new Array<number>(C).fill(0);
  for (let i = 0; i < y.length; i++) counts[y[i]!]!++;
  return Math.max(...counts) >= 1.5 * Math.min(...counts) ? 'weights' : 'none';
}

/** scikit-learn's 'balanced' class weights: n / (C · count). */
function inverseFrequency(y: ArrayLike<number>, C: number): number[] {
  const counts = new Array<number>(C).fill(0);
  for (let i = 0; i < y.length; i++) counts[y[i]!]!++;
  return counts.map((c) => (c ? y.length / (C * c) : 0));
}

async function* imagesOf(l: ImageLoader): AsyncIterable<Tensor> {
  for await (const b of l.batches(0)) yield b.images;
}

function oofProbs(rows: PredictionRow[], dev: number[], list: ImageList, C: number): Float32Array {
  const byFile = new Map(rows.filter((r) => r.split.startsWith('fold')).map((r) => [r.file, r.probs]));
  const out = new Float32Array(dev.length * C);
  dev.forEach((i, r) => out.set(byFile.get(list.items[i]!.file) ?? [], r * C));
  return out;
}

function epochLine(fold: number, l: EpochLog, phase: string): string {
  const f = (v: number | undefined, d = 4) => (v === undefined ? '-' : v.toFixed(d));
  return `${fold ? `fold ${fold} ` : 'final '}epoch ${l.epoch}${phase === 'head' ? ' (head)' : ''}: loss ${f(l.loss)} acc ${f(l.accuracy, 3)}${l.valLoss !== undefined ? `  val loss ${f(l.valLoss)} acc ${f(l.valAccuracy, 3)} f1 ${f(l.valMetric, 3)}` : ''}  lr ${l.lr.toExponential(1)}  ${(l.timeMs / 1000).toFixed(1)} s`;
}

export function headlineLine(m: ClassificationMetrics): string {
  return `accuracy ${m.accuracy.toFixed(3)}, balanced ${m.balanced_accuracy.toFixed(3)}, F1 ${m.f1_macro.toFixed(3)}, ROC-AUC ${m.roc_auc_macro.toFixed(3)}`;
}
