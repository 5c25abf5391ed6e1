import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOnnx } from '../../src/io/onnx/model.js';
import { preprocessFromMetadata } from '../../src/data/transforms.js';
import { listImageFolder } from '../../src/data/datasets.js';
import { HEADLINE } from '../../src/eval/metrics.js';
import { stratifiedSplit } from '../../src/eval/splits.js';
import { pairedTTest, wilcoxonSignedRank } from '../../src/eval/stats.js';
import { compareRuns } from '../../src/workflow/compare.js';
import { evalRun, loadTrainedModel, predictFiles } from '../../src/workflow/eval_run.js';
import { TrainingAbortedError } from '../../src/train/fit.js';
import { trainRun } from '../../src/workflow/train_run.js';
import { csvSubset, imageFolderSubset } from './datasets.js';

/**
 * The workflow from a folder of images to a report, on small real datasets the tests have not
 * seen in this form: 4 digit classes (grayscale, ImageFolder) and the IHC patches (colour, a CSV
 * with groups). Models are small and epochs few: these tests check the plumbing and the
 * contracts (files, keys, splits, metadata), not accuracy — accuracy is tested in
 * finetune_bn.test.ts (precise BN, fine-tuning vs scratch) and by scripts/check-readme.ts (the
 * README's digits runs, ≥ 95 %).
 */
const quiet = () => undefined;
const dirs: string[] = [];
let digits: string;
let runA: string;
let runB: string;

beforeAll(async () => {
  digits = await imageFolderSubset('datasets/digits', ['0', '1', '2', '3'], 15);
  dirs.push(digits);
  runA = `${digits}-runA`;
  runB = `${digits}-runB`;
  dirs.push(runA, runB);
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const common = { inputSize: 16, batch: 8, testFraction: 0.2, seed: 3, log: quiet, progress: false, bootstrap: 200 } as const;

describe('lightconv train → eval → predict → compare', () => {
  it('train --folds 3 writes the model, metrics with folds and CIs, history, predictions, plots and the report', async () => {
    const r = await trainRun({ ...common, data: digits, arch: 'mobilenet_v3_small', epochs: 3, folds: 3, out: runA });
    const m = JSON.parse(await readFile(join(runA, 'metrics.json'), 'utf8'));
    for (const k of ['accuracy', 'balanced_accuracy', 'precision_macro', 'recall_macro', 'f1_macro', 'specificity_macro', 'roc_auc_macro', 'pr_auc_macro', 'mcc', 'cohen_kappa', 'ece']) {
      expect(typeof m[k], k).toBe('number');
      expect(Number.isFinite(m[k]), k).toBe(true);
    }
    expect(m.classes).toEqual(['0', '1', '2', '3']);
    expect(Object.keys(m.per_class)).toEqual(['0', '1', '2', '3']);
    for (const c of Object.values(m.per_class) as Record<string, number>[]) {
      for (const k of ['precision', 'recall', 'specificity', 'f1', 'support', 'roc_auc', 'pr_auc']) expect(typeof c[k], k).toBe('number');
    }
    expect(m.evaluated_on).toBe('test');
    // 60 images, 20 % stratified test: 3 per class.
    expect(m.dataset.n_test).toBe(12);
    expect(m.confusion_matrix.flat().reduce((a: number, b: number) => a + b, 0)).toBe(12);
    expect(m.folds).toHaveLength(3);
    expect(m.folds.reduce((a: number, f: { n_val: number }) => a + f.n_val, 0)).toBe(48);
    for (const h of HEADLINE) {
      expect(m.mean[h], h).toBeCloseTo(m.folds.reduce((a: number, f: Record<string, number>) => a + f[h]!, 0) / 3, 12);
      expect(m.std[h], h).toBeGreaterThanOrEqual(0);
      const [lo, hi] = m.ci95[h];
      expect(lo, h).toBeLessThanOrEqual(m[h] + 1e-12);
      expect(hi, h).toBeGreaterThanOrEqual(m[h] - 1e-12);
    }
    expect(m.params).toBeGreaterThan(1e6);
    expect(m.macs).toBeGreaterThan(0);
    expect(m.latency_ms_per_image.median).toBeGreaterThan(0);
    expect(m.latency_ms_per_image.p95).toBeGreaterThanOrEqual(m.latency_ms_per_image.median);

    // history: 3 epochs per fold + 3 for the final model.
    const history = parse(await readFile(join(runA, 'history.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(history).toHaveLength(12);
    expect(history.filter((h) => h.fold === '0')).toHaveLength(3);
    expect(history.filter((h) => h.fold === '1').every((h) => h.val_loss !== '')).toBe(true);

    // predictions: every development image once out of fold, every test image once.
    const preds = parse(await readFile(join(runA, 'predictions.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(preds).toHaveLength(60);
    expect(new Set(preds.map((p) => p.file)).size).toBe(60);
    expect(preds.filter((p) => p.split === 'test')).toHaveLength(12);
    for (const p of preds) expect(Math.abs(['0', '1', '2', '3'].reduce((a, c) => a + Number(p[`p_${c}`]), 0) - 1)).toBeLessThan(1e-4);

    for (const f of ['best.onnx', 'report.md', 'plots/roc.png', 'plots/roc.svg', 'plots/pr.png', 'plots/confusion_matrix.png', 'plots/confusion_matrix_normalized.svg', 'plots/reliability.png', 'plots/training_curves.png', 'plots/folds.png']) {
      expect(existsSync(join(runA, f)), f).toBe(true);
    }
    const report = await readFile(join(runA, 'report.md'), 'utf8');
    for (const s of ['best.onnx', 'history.csv', 'predictions.csv', 'plots/roc.png', 'mobilenet_v3_small']) expect(report).toContain(s);
    // Explanations by default: 2 Grad-CAM pictures per class, on test images.
    expect(report).toContain('## Explanations');
    for (let i = 1; i <= 8; i++) expect(existsSync(join(runA, `explain/gradcam_${i}.png`)), `gradcam_${i}`).toBe(true);
    expect(r.files).toContain('explain/gradcam_8.svg');
    expect(r.files).toContain('report.md');

    // The exported model describes itself: classes and preprocessing in its metadata.
    const model = await loadOnnx(join(runA, 'best.onnx'));
    const meta = Object.fromEntries(model.graph.metadata);
    expect(JSON.parse(meta['lightconv.classes']!)).toEqual(['0', '1', '2', '3']);
    expect(preprocessFromMetadata(meta)).toMatchObject({ inputSize: 16, crop: 16, channels: 3 });
  });

  it('eval and predict use the model alone (no flags); eval on the training folder reproduces what train measured per image', async () => {
    const out = `${runA}-eval`;
    dirs.push(out);
    const e = await evalRun({ model: join(runA, 'best.onnx'), data: digits, out, log: quiet, bootstrap: 200 });
    expect(e.n).toBe(60);
    expect(existsSync(join(out, 'report.md'))).toBe(true);
    expect(existsSync(join(out, 'plots', 'roc.png'))).toBe(true);
    // The final model's test predictions in the run equal eval's on the same files (same model, same preprocessing).
    const runPreds = parse(await readFile(join(runA, 'predictions.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    const evalPreds = new Map((parse(await readFile(join(out, 'predictions.csv'), 'utf8'), { columns: true }) as Record<string, string>[]).map((p) => [p.file, p]));
    for (const p of runPreds.filter((x) => x.split === 'test')) {
      const q = evalPreds.get(p.file)!;
      expect(q.predicted, p.file).toBe(p.predicted);
      for (const c of ['0', '1', '2', '3']) expect(Math.abs(Number(q[`p_${c}`]) - Number(p[`p_${c}`])), p.file).toBeLessThan(1e-4);
    }
    const pr = await predictFiles({ model: join(runA, 'best.onnx'), inputs: [join(digits, '2')] });
    expect(pr.rows).toHaveLength(15);
    expect(pr.classes).toEqual(['0', '1', '2', '3']);
    for (const row of pr.rows) expect(pr.classes).toContain(row.predicted);
  });

  it('compare: paired t-test and Wilcoxon per headline metric over the folds, McNemar on the common test images', async () => {
    await trainRun({ ...common, data: digits, arch: 'light_cnn', epochs: 3, folds: 3, out: runB });
    const c = await compareRuns(runA, runB);
    expect(c.folds).toBe(3);
    expect(c.same_splits).toBe(true);
    expect(c.metrics.map((m) => m.metric)).toEqual([...HEADLINE]);
    for (const m of c.metrics) {
      expect(m.a).toHaveLength(3);
      // The same numbers as the tests themselves on the fold values (checked against SciPy in tests/eval).
      expect(m.t_test.p).toBe(pairedTTest(m.a, m.b).pValue);
      expect(m.wilcoxon.p).toBe(wilcoxonSignedRank(m.a, m.b).pValue);
      if (!Number.isNaN(m.t_test.p)) expect(m.t_test.p >= 0 && m.t_test.p <= 1).toBe(true);
    }
    expect(c.mcnemar?.n).toBe(12);
    expect(c.mcnemar!.p).toBeGreaterThan(0);
    expect(c.mcnemar!.p).toBeLessThanOrEqual(1);
  });
});

describe('CSV layout with groups, no cross-validation', () => {
  it('keeps every group on one side of the test split; selects the best epoch on a validation split', async () => {
    const { dir, csv } = await csvSubset('datasets/ihc_patches', ['dab_negative', 'dab_positive'], 20);
    dirs.push(dir.replace(/\/images$/, ''));
    const out = `${dir}-run`;
    dirs.push(out);
    // A DICOM window (these PNGs ignore it) travels into the model with the rest of the preprocessing.
    const r = await trainRun({ ...common, data: dir, csv, groupCol: 'lesion_id', arch: 'light_cnn', epochs: 2, folds: 0, testFraction: 0.3, window: [-600, 1500], out });
    expect(r.metrics.preprocess.window).toEqual([-600, 1500]);
    expect((await loadTrainedModel(join(out, 'best.onnx'))).preprocess.window).toEqual([-600, 1500]);
    expect(r.metrics.evaluated_on).toBe('test');
    expect(r.metrics.validation).toBeDefined();
    const rows = (parse(await readFile(csv, 'utf8'), { columns: true }) as Record<string, string>[]);
    const group = new Map(rows.map((x) => [`${x.image_id}.png`, x.lesion_id]));
    const preds = parse(await readFile(join(out, 'predictions.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    const testGroups = new Set(preds.filter((p) => p.split === 'test').map((p) => group.get(p.file)));
    const otherGroups = new Set(preds.filter((p) => p.split !== 'test').map((p) => group.get(p.file)));
    expect(testGroups.size).toBeGreaterThan(0);
    for (const g of testGroups) expect(otherGroups.has(g), String(g)).toBe(false);
  });
});

describe('early stopping', () => {
  it('--patience stops a model once validation F1 has not improved for that many epochs', async () => {
    const out = `${digits}-patience`;
    dirs.push(out);
    const r = await trainRun({ ...common, data: digits, arch: 'light_cnn', epochs: 12, patience: 1, folds: 0, explain: false, out });
    const f1 = r.history.map((h) => h.valMetric!);
    const best = f1.indexOf(Math.max(...f1)); // the first epoch reaching the maximum (strict improvement)
    expect(r.history.length).toBe(best + 1 + 1);
    expect(r.history.length).toBeLessThan(12);
    await expect(trainRun({ ...common, data: digits, arch: 'light_cnn', epochs: 2, patience: 0, out: `${out}-bad` })).rejects.toThrow(/--patience must be an integer ≥ 1, got 0/);
  });
});

describe('cancellation', () => {
  it('a run cancelled in its second fold keeps the first fold in metrics.json and predictions.csv', async () => {
    const out = `${digits}-cancelled`;
    dirs.push(out);
    const ac = new AbortController();
    const log = (l: string) => void (/^fold 2 epoch 1:/.test(l) && ac.abort());
    const err = await trainRun({ ...common, log, signal: ac.signal, data: digits, arch: 'light_cnn', epochs: 2, folds: 3, out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingAbortedError);
    const m = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8'));
    expect(m.status).toBe('cancelled');
    expect(m.folds.map((f: { fold: number }) => f.fold)).toEqual([1]);
    expect(m.folds[0].n_val).toBe(16); // a third of the 48 development images
    const preds = parse(await readFile(join(out, 'predictions.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(preds.map((p) => p.split)).toEqual(Array(16).fill('fold1'));
    expect(existsSync(join(out, 'best.onnx'))).toBe(false);
  });
});

describe('bad input: typed errors that name the problem, nothing written', () => {
  it('--folds larger than the smallest class', async () => {
    const out = `${digits}-bad-folds`;
    await expect(trainRun({ ...common, data: digits, arch: 'light_cnn', epochs: 1, folds: 20, out })).rejects.toThrow(/smallest class '0' \(12 images\); every fold needs one of each class \(counted among the 48 development images left after the held-out test set of 12, --test-fraction 0.2\)/);
    expect(existsSync(out)).toBe(false);
  });
  it('a DICOM window of width < 1', async () => {
    const out = `${digits}-bad-window`;
    await expect(trainRun({ ...common, data: digits, arch: 'light_cnn', epochs: 1, window: [40, 0], out })).rejects.toThrow(/--window: window must be \[center, width\] with width ≥ 1/);
    expect(existsSync(out)).toBe(false);
  });
  it('a corrupt held-out test image stops the run before any training, naming the file', async () => {
    // The test split is what trainRun draws: stratifiedSplit of the listed labels with the run's seed.
    const dir = await imageFolderSubset('datasets/digits', ['0', '1', '2', '3'], 15);
    dirs.push(dir);
    const list = await listImageFolder(dir);
    const { test } = stratifiedSplit(Int32Array.from(list.items, (it) => it.label), common.testFraction, common.seed);
    const bad = list.items[test[0]!]!;
    await writeFile(bad.path, 'not an image');
    const out = `${dir}-bad-test-image`;
    const lines: string[] = [];
    await expect(trainRun({ ...common, log: (l) => lines.push(l), data: dir, arch: 'light_cnn', epochs: 1, folds: 2, out })).rejects.toThrow(new RegExp(`${bad.file}: decodeImage: not a PNG or JPEG`));
    expect(lines.filter((l) => /epoch/.test(l))).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });
  it('--weights of another architecture, or of light_cnn at another input size', async () => {
    const out = `${digits}-bad-weights`;
    await expect(trainRun({ ...common, data: digits, arch: 'light_cnn', weights: join(runB, 'best.onnx'), inputSize: 32, epochs: 1, out })).rejects.toThrow(/16×16 inputs.*--input-size 32/);
    await expect(trainRun({ ...common, data: digits, arch: 'efficientnet_b0', weights: join(runA, 'best.onnx'), epochs: 1, out })).rejects.toThrow(/holds a mobilenet_v3_small, not the --arch efficientnet_b0/);
    expect(existsSync(out)).toBe(false);
  });
});
