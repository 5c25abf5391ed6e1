import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { LightconvError } from '../core/errors.js';
import { ARCHS } from '../models/index.js';
import { TrainingAbortedError } from '../train/fit.js';
import { compareRuns, formatComparison } from '../workflow/compare.js';
import { evalRun, predictFiles } from '../workflow/eval_run.js';
import { writeAtomic } from '../workflow/outputs.js';
import { type TrainRunOptions, trainRun } from '../workflow/train_run.js';
import { summaryLines } from '../report/report.js';
import { stringify } from 'csv-stringify/sync';
import { inputPath, inputPaths, intArg, outputFile, outputFolder } from './args.js';

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};
const nonNegInt = (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};
const fraction = (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
};
/** "center,width" (a DICOM VOI window, e.g. -600,1500). */
const windowArg = (v: string): [number, number] => {
  const parts = v.split(',').map((x) => Number(x.trim()));
  if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[1]! < 1) throw new InvalidArgumentError('expected center,width (e.g. -600,1500) with width ≥ 1');
  return [parts[0]!, parts[1]!];
};
const number = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};

/**
 * Ctrl-C during training: the first stops after the current batch (what is complete is
 * written, nothing half-written); a second one exits at once.
 */
function interruptible(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onInt = () => {
    if (ac.signal.aborted) process.exit(130);
    console.error('\nstopping after this batch (Ctrl-C again to quit at once)…');
    ac.abort();
  };
  process.on('SIGINT', onInt);
  return { signal: ac.signal, dispose: () => process.off('SIGINT', onInt) };
}

/** The embedded demo dataset, found from the CLI's own location (the package root holds datasets/). */
export function packagedDataset(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = join(dir, 'datasets', name);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new LightconvError(`the embedded dataset '${name}' is missing from this installation`);
}

interface TrainFlags {
  data: string;
  csv?: string;
  imageCol: string;
  labelCol: string;
  groupCol?: string;
  arch: string;
  weights?: string;
  freeze: 'backbone' | 'none';
  bn: 'frozen' | 'train';
  inputSize: number;
  window?: [number, number];
  epochs: number;
  headEpochs?: number;
  patience?: number;
  batch: number;
  lr?: number;
  folds: number;
  testFraction: number;
  seed: number;
  threads?: number;
  workers?: number;
  augment: 'default' | 'upright' | 'none';
  balance: 'auto' | 'weights' | 'sampling' | 'none';
  explain: number;
  slide?: string;
  slideClass?: string;
  out: string;
}

async function runTraining(o: Omit<TrainRunOptions, 'signal' | 'command'>): Promise<void> {
  const { signal, dispose } = interruptible();
  const t0 = performance.now();
  try {
    const r = await trainRun({ ...o, signal, command: ['lightconv', ...process.argv.slice(2)].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ') });
    console.log('');
    for (const line of summaryLines(r.metrics as never)) console.log(line);
    console.log(`\nwrote ${resolve(o.out)}/ (${r.files.length} files, report.md) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } catch (e) {
    if (e instanceof TrainingAbortedError) {
      console.error(`cancelled after ${e.history.length} epoch(s) of the current model; wrote what was complete to ${resolve(o.out)}/ (metrics.json has status "cancelled")`);
      process.exitCode = 130;
      return;
    }
    throw e;
  } finally {
    dispose();
  }
}

/** Adds train, eval, predict, compare and demo. */
export function register(program: Command): void {
  program
    .command('train')
    .description('train or fine-tune a classifier on a folder of labelled images; writes the model, metrics, plots and a report')
    .requiredOption('--data <dir>', 'images: one folder per class (ImageFolder), or a flat folder with --csv', inputPath('--data', 'folder'))
    .option('--csv <file>', 'CSV naming each image and its label (HAM10000 layout)', inputPath('--csv'))
    .option('--image-col <name>', 'CSV column of the image id or file name (extension optional)', 'image_id')
    .option('--label-col <name>', 'CSV column of the label', 'dx')
    .option('--group-col <name>', 'CSV column of the patient/lesion: its images never straddle train and test')
    .addOption(new Option('--arch <name>', 'architecture').choices([...ARCHS]).makeOptionMandatory())
    .option('--weights <file.onnx>', 'fine-tune from this ONNX export of --arch (torchvision layout)', inputPath('--weights'))
    .addOption(new Option('--bn <mode>', 'fine-tuning: frozen (pretrained BN statistics) or train (batch statistics: a distant domain)').choices(['frozen', 'train']).default('frozen'))
    .addOption(new Option('--freeze <what>', 'backbone: train only the head').choices(['backbone', 'none']).default('none'))
    .option('--input-size <n>', 'square input size', positiveInt, 224)
    .option('--window <center,width>', "DICOM: the VOI window for every image (e.g. -600,1500 for lung CT; default each file's own); stored in the model", windowArg)
    .option('--epochs <n>', 'epochs per model', positiveInt, 20)
    .option('--patience <n>', 'early stopping: stop a model after n epochs without a better validation F1 (default: train every epoch; the best epoch is kept either way)', positiveInt)
    .option('--head-epochs <n>', 'fine-tuning: epochs of the head alone first (default ⌈epochs/4⌉, at most 3)', nonNegInt)
    .option('--batch <n>', 'batch size', positiveInt, 32)
    .option('--lr <x>', 'peak learning rate (default 2e-3 from scratch, 1e-3 fine-tuning)', number)
    .option('--folds <k>', 'k-fold cross-validation (0: none)', nonNegInt, 0)
    .option('--test-fraction <x>', 'held-out test fraction (stratified, grouped with --group-col)', fraction, 0.2)
    .option('--seed <n>', 'seed of splits, initialisation, shuffling and augmentation (0 to 2^32 − 1)', intArg(0, 2 ** 32 - 1), 1)
    .option('--threads <n>', 'threads for the CPU kernels', positiveInt)
    .option('--workers <n>', 'image decoding threads', nonNegInt)
    .addOption(new Option('--augment <kind>', 'training augmentation: default (crop, flips, colour), upright (crop, ±10° rotation: digits, X-rays), none').choices(['default', 'upright', 'none']).default('default'))
    .addOption(new Option('--balance <how>', 'imbalanced classes').choices(['auto', 'weights', 'sampling', 'none']).default('auto'))
    .option('--explain <n>', "Grad-CAM pictures per class in the report, on held-out images (0: none)", nonNegInt, 2)
    .option('--slide <image>', 'a whole image (the slide the patches came from) to slide the classifier over: its heat map goes in the report', inputPath('--slide'))
    .option('--slide-class <name>', 'the class whose probability the slide heat map shows (default the last)')
    .requiredOption('--out <dir>', 'run folder to write', outputFolder('--out'))
    .action(async ({ explain, slide, slideClass, ...o }: TrainFlags) =>
      runTraining({ ...o, explain: { camPerClass: explain, ...(slide ? { slide } : {}), ...(slideClass ? { slideClass } : {}) } }),
    );

  program
    .command('eval')
    .description('evaluate a trained model on a labelled folder: metrics with 95 % CIs, plots, predictions and a report')
    .requiredOption('--model <file.onnx>', 'a model written by lightconv train (classes and preprocessing in its metadata)', inputPath('--model'))
    .requiredOption('--data <dir>', 'labelled images (ImageFolder, or flat with --csv)', inputPath('--data', 'folder'))
    .option('--csv <file>', 'CSV naming each image and its label', inputPath('--csv'))
    .option('--image-col <name>', 'CSV column of the image id', 'image_id')
    .option('--label-col <name>', 'CSV column of the label', 'dx')
    .option('--batch <n>', 'batch size', positiveInt, 32)
    .option('--workers <n>', 'image decoding threads', nonNegInt)
    .option('--seed <n>', 'bootstrap seed (0 to 2^32 − 1)', intArg(0, 2 ** 32 - 1), 1)
    .requiredOption('--out <dir>', 'folder to write', outputFolder('--out'))
    .action(async (o: { model: string; data: string; csv?: string; imageCol: string; labelCol: string; batch: number; workers?: number; seed: number; out: string }) => {
      const r = await evalRun(o);
      for (const line of summaryLines(r as never)) console.log(line);
      console.log(`wrote ${resolve(o.out)}/report.md`);
    });

  program
    .command('predict')
    .description('classify images (or folders of images) with a trained model')
    .requiredOption('--model <file.onnx>', 'a model written by lightconv train', inputPath('--model'))
    .argument('<images...>', 'PNG, JPEG or DICOM files, or folders', inputPaths('image', 'file or folder'))
    .option('--csv <file>', 'write the predictions as CSV', outputFile('--csv'))
    .option('--json', 'print JSON')
    .action(async (inputs: string[], o: { model: string; csv?: string; json?: boolean }) => {
      const r = await predictFiles({ model: o.model, inputs });
      if (o.csv) {
        const text = stringify(r.rows.map((x) => [x.file, x.predicted, x.probability.toFixed(6), ...x.probs.map((p) => p.toFixed(6))]), { header: true, columns: ['file', 'predicted', 'probability', ...r.classes.map((c) => `p_${c}`)] });
        await writeAtomic(o.csv, text);
      }
      if (o.json) return console.log(JSON.stringify(r, null, 2));
      const w = Math.min(60, Math.max(...r.rows.map((x) => x.file.length)));
      for (const x of r.rows) console.log(`${x.file.padEnd(w)}  ${x.predicted}  p=${x.probability.toFixed(4)}`);
      if (o.csv) console.log(`wrote ${o.csv}`);
    });

  program
    .command('compare')
    .description("paired t-test and Wilcoxon signed-rank test across two runs' folds, McNemar's test on their common test images")
    .argument('<runA>', 'a run folder (lightconv train --folds K)', inputPath('run', 'folder'))
    .argument('<runB>', 'another run folder with the same number of folds', inputPath('run', 'folder'))
    .option('--alpha <x>', 'significance level', number, 0.05)
    .option('--json', 'print JSON')
    .action(async (a: string, b: string, o: { alpha: number; json?: boolean }) => {
      const c = await compareRuns(a, b, { alpha: o.alpha });
      if (o.json) return console.log(JSON.stringify(c, null, 2));
      for (const line of formatComparison(c)) console.log(line);
    });

  program
    .command('demo')
    .description('the main job on embedded data: 5-fold cross-validation of a MobileNetV3-Small (ECA variant) on 309 immunohistochemistry patches, then the full report')
    .option('--out <dir>', 'folder to write', outputFolder('--out'), 'lightconv-demo')
    .option('--epochs <n>', 'epochs per model', positiveInt, 12)
    .option('--folds <k>', 'cross-validation folds', positiveInt, 5)
    .option('--threads <n>', 'threads for the CPU kernels', positiveInt)
    .action(async (o: { out: string; epochs: number; folds: number; threads?: number }) => {
      const data = packagedDataset('ihc_patches');
      console.log(`lightconv demo: DAB-positive vs DAB-negative immunohistochemistry patches (${data})`);
      await runTraining({ ...demoOptions(data, o.out), epochs: o.epochs, folds: o.folds, ...(o.threads ? { threads: o.threads } : {}) });
    });
}

/** The demo's settings (also used by the test that checks the demo). */
export function demoOptions(data: string, out: string): Omit<TrainRunOptions, 'signal' | 'command'> {
  const slide = join(packagedDataset('ihc_slide'), 'ihc_colon.png');
  return {
    data,
    arch: 'eca_mobilenet_v3_small',
    inputSize: 32,
    epochs: 12,
    batch: 32,
    folds: 5,
    testFraction: 0.2,
    seed: 1,
    explain: { camPerClass: 2, slide, slideClass: 'dab_positive' },
    out,
  };
}
