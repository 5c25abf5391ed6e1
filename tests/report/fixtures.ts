/**
 * Realistic inputs for the report tests: scores of a seeded three-class classifier, with ROC
 * and PR curves, calibration bins and a confusion matrix computed from them here (the figures
 * take plain data; the library's own metrics live in src/eval).
 */
import type { HistoryRow, PrCurve, ReliabilityBins, RocCurve } from '../../src/report/plots.js';
import { HEADLINE, type ClassificationMetrics } from '../../src/eval/metrics.js';
import type { RunMetricsJson } from '../../src/report/report.js';

export const CLASSES = ['dab_negative', 'dab_positive_weak', 'dab_positive_strong_membranous_staining'];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gauss(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** Softmax scores of N samples, the true class shifted up by `sep` logits. */
export function simulate(n = 300, seed = 1, sep = 1.8) {
  const rnd = mulberry32(seed);
  const C = CLASSES.length;
  const y: number[] = [];
  const p: number[][] = [];
  for (let i = 0; i < n; i++) {
    const t = rnd() < 0.5 ? 0 : rnd() < 0.6 ? 1 : 2;
    const z = Array.from({ length: C }, (_, c) => gauss(rnd) + (c === t ? sep : 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    y.push(t);
    p.push(e.map((v) => v / s));
  }
  return { y, p };
}

/** One-vs-rest ROC curve (points at every distinct threshold) and its trapezoidal AUC. */
export function roc(y: number[], score: number[], label: string): RocCurve {
  const idx = score.map((_, i) => i).sort((a, b) => score[b]! - score[a]!);
  const P = y.filter((v) => v === 1).length;
  const N = y.length - P;
  const fpr = [0];
  const tpr = [0];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < idx.length; k++) {
    if (y[idx[k]!] === 1) tp++;
    else fp++;
    if (k === idx.length - 1 || score[idx[k + 1]!] !== score[idx[k]!]) {
      fpr.push(fp / N);
      tpr.push(tp / P);
    }
  }
  let auc = 0;
  for (let i = 1; i < fpr.length; i++) auc += ((fpr[i]! - fpr[i - 1]!) * (tpr[i]! + tpr[i - 1]!)) / 2;
  return { label, fpr, tpr, auc };
}

/** One-vs-rest PR curve in order of decreasing recall (as scikit-learn returns it) and its AP. */
export function pr(y: number[], score: number[], label: string): PrCurve {
  const idx = score.map((_, i) => i).sort((a, b) => score[b]! - score[a]!);
  const P = y.filter((v) => v === 1).length;
  const recall = [0];
  const precision = [1];
  let tp = 0;
  let ap = 0;
  for (let k = 0; k < idx.length; k++) {
    if (y[idx[k]!] === 1) tp++;
    if (k === idx.length - 1 || score[idx[k + 1]!] !== score[idx[k]!]) {
      const r = tp / P;
      const pr = tp / (k + 1);
      ap += (r - recall[recall.length - 1]!) * pr;
      recall.push(r);
      precision.push(pr);
    }
  }
  return { label, recall: recall.reverse(), precision: precision.reverse(), ap, prevalence: P / y.length };
}

export function curves(n = 300, seed = 1) {
  const { y, p } = simulate(n, seed);
  const rocs = CLASSES.map((c, k) => roc(y.map((t) => (t === k ? 1 : 0)), p.map((r) => r[k]!), c));
  const prs = CLASSES.map((c, k) => pr(y.map((t) => (t === k ? 1 : 0)), p.map((r) => r[k]!), c));
  // Macro ROC: mean TPR over a common FPR grid.
  const grid = Array.from({ length: 101 }, (_, i) => i / 100);
  const interp = (xs: number[], ys: number[], x: number) => {
    let j = 0;
    while (j < xs.length - 1 && xs[j + 1]! <= x) j++;
    return ys[j]!;
  };
  const macroTpr = grid.map((x) => rocs.reduce((a, r) => a + interp(r.fpr, r.tpr, x), 0) / rocs.length);
  rocs.push({ label: 'macro average', fpr: grid, tpr: macroTpr, auc: rocs.reduce((a, r) => a + r.auc, 0) / rocs.length });
  const pred = p.map((r) => r.indexOf(Math.max(...r)));
  const cm = CLASSES.map((_, t) => CLASSES.map((_, q) => y.filter((v, i) => v === t && pred[i] === q).length));
  const M = 10;
  const bins: ReliabilityBins = { confidence: Array(M).fill(0), accuracy: Array(M).fill(0), count: Array(M).fill(0) };
  let ece = 0;
  p.forEach((r, i) => {
    const conf = Math.max(...r);
    const b = Math.min(M - 1, Math.floor(conf * M));
    bins.count[b]!++;
    bins.confidence[b]! += conf;
    bins.accuracy[b]! += pred[i] === y[i] ? 1 : 0;
  });
  for (let b = 0; b < M; b++) {
    if (bins.count[b]! > 0) {
      bins.confidence[b]! /= bins.count[b]!;
      bins.accuracy[b]! /= bins.count[b]!;
      ece += (bins.count[b]! / p.length) * Math.abs(bins.confidence[b]! - bins.accuracy[b]!);
    }
  }
  return { y, p, pred, rocs, prs, cm, bins, ece };
}

/** A plausible history: loss decaying with noise, cosine learning rate, per fold. */
export function history(epochs = 12, folds = 1, seed = 3): HistoryRow[] {
  const rnd = mulberry32(seed);
  const rows: HistoryRow[] = [];
  for (let f = 1; f <= folds; f++) {
    for (let e = 1; e <= epochs; e++) {
      const loss = 1.1 * Math.exp(-e / 4) + 0.15 + 0.03 * rnd();
      const valLoss = 1.0 * Math.exp(-e / 5) + 0.3 + 0.06 * rnd() + 0.01 * e;
      rows.push({
        epoch: e,
        fold: folds > 1 ? f : undefined,
        loss,
        accuracy: Math.min(1, 1 - 0.6 * Math.exp(-e / 3) - 0.02 * rnd()),
        valLoss,
        valAccuracy: Math.min(1, 1 - 0.6 * Math.exp(-e / 4) - 0.1 + 0.05 * rnd()),
        valMetric: Math.min(1, 1 - 0.5 * Math.exp(-e / 4) - 0.05 + 0.04 * rnd()),
        lr: 1e-3 * 0.5 * (1 + Math.cos((Math.PI * (e - 1)) / epochs)),
      });
    }
  }
  return rows;
}

const RUN_CLASSES = ['dab_negative', 'dab_positive', 'weird|name'];

/** A coherent metrics object from a confusion matrix (AUCs and calibration made up: the report only prints them). */
function metricsFrom(cm: number[][], seed: number): ClassificationMetrics {
  const n = cm.flat().reduce((a, b) => a + b, 0);
  const C = cm.length;
  const per_class: ClassificationMetrics['per_class'] = {};
  const col = (p: number) => cm.reduce((a, r) => a + r[p]!, 0);
  const row = (t: number) => cm[t]!.reduce((a, b) => a + b, 0);
  RUN_CLASSES.forEach((c, k) => {
    const tp = cm[k]![k]!;
    const precision = tp / col(k);
    const recall = tp / row(k);
    const specificity = (n - row(k) - col(k) + tp) / (n - row(k));
    per_class[c] = { precision, recall, specificity, f1: (2 * precision * recall) / (precision + recall), support: row(k), roc_auc: 0.9 + 0.01 * k + 0.001 * seed, pr_auc: 0.8 + 0.02 * k };
  });
  const mean = (f: (p: ClassificationMetrics['per_class'][string]) => number) => RUN_CLASSES.reduce((a, c) => a + f(per_class[c]!), 0) / C;
  const accuracy = cm.reduce((a, r, i) => a + r[i]!, 0) / n;
  return {
    n,
    classes: RUN_CLASSES,
    accuracy,
    balanced_accuracy: mean((p) => p.recall),
    precision_macro: mean((p) => p.precision),
    recall_macro: mean((p) => p.recall),
    f1_macro: mean((p) => p.f1),
    specificity_macro: mean((p) => p.specificity),
    roc_auc_macro: mean((p) => p.roc_auc),
    pr_auc_macro: mean((p) => p.pr_auc),
    precision_weighted: mean((p) => p.precision),
    recall_weighted: accuracy,
    f1_weighted: mean((p) => p.f1),
    mcc: accuracy - 0.1,
    cohen_kappa: accuracy - 0.12,
    ece: 0.0412,
    log_loss: 0.4321,
    confusion_matrix: cm,
    per_class,
  };
}

/** A RUN/metrics.json with three folds and a held-out test set. */
export function runMetricsFixture(): RunMetricsJson {
  const folds = [
    [[40, 3, 2], [4, 30, 1], [2, 2, 20]],
    [[38, 5, 2], [3, 31, 1], [1, 3, 20]],
    [[41, 2, 2], [5, 29, 1], [2, 1, 21]],
  ].map((cm, i) => ({ fold: i + 1, ...metricsFrom(cm, i) }));
  const mean: Record<string, number> = {};
  const std: Record<string, number> = {};
  for (const k of HEADLINE) {
    const v = folds.map((f) => f[k]);
    mean[k] = v.reduce((a, b) => a + b, 0) / v.length;
    std[k] = Math.sqrt(v.reduce((a, b) => a + (b - mean[k]!) ** 2, 0) / (v.length - 1));
  }
  const test = metricsFrom([[20, 2, 1], [1, 15, 1], [0, 2, 10]], 9);
  const ci95 = Object.fromEntries(HEADLINE.map((k) => [k, [test[k] - 0.05, Math.min(1, test[k] + 0.04)] as [number, number]]));
  return {
    version: 1,
    created: '2025-01-02T03:04:05.000Z',
    command: 'lightconv train datasets/ihc --arch mobilenet_v3_small --folds 3 --test-fraction 0.2',
    arch: 'mobilenet_v3_small',
    weights: 'pretrained.onnx',
    input_size: 64,
    epochs: 12,
    batch: 32,
    seed: 1,
    dataset: { root: 'datasets/ihc', layout: 'folder', n: 267, classes: RUN_CLASSES, counts: { dab_negative: 135, dab_positive: 88, 'weird|name': 44 } },
    params: 1_523_456,
    macs: 56_012_345,
    latency_ms_per_image: { median: 1.234, p95: 1.5, batch: 1, threads: 1, backend: 'cpu' },
    ...test,
    ci95,
    folds,
    mean,
    std,
    oof: metricsFrom([[119, 10, 6], [12, 90, 3], [5, 6, 61]], 5),
    test: { ...test, ci95 },
    files: { history: 'history.csv', predictions: 'predictions.csv', model: 'best.onnx', plots: { roc: 'plots/roc.png', confusion: 'plots/confusion.png', 'my plot': 'plots/my plot.png' } },
  };
}

