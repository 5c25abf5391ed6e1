import { ShapeError, ValueError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';

/**
 * Evaluation metrics with scikit-learn's definitions (zero_division = 0), the curves behind the
 * ROC, PR and reliability plots, and `classificationMetrics`, which gathers them. Labels are class
 * indices 0…C−1, predictions class indices, scores an [N, C] matrix (probabilities or logits;
 * only their order matters) or, for two classes, a vector of positive-class scores.
 */
export type Average = 'macro' | 'weighted' | 'micro' | 'none';

type Labels = ArrayLike<number> | Tensor;

function arr(x: Labels): ArrayLike<number> {
  return 'dataSync' in x ? x.dataSync() : x;
}

function classCount(...xs: ArrayLike<number>[]): number {
  let c = 0;
  for (const x of xs) for (let i = 0; i < x.length; i++) c = Math.max(c, x[i]! + 1);
  return c;
}

/**
 * Predicted classes: the argmax of each row of [N, C] scores.
 *
 * @example
 * ```ts
 * import { Tensor, argmax } from 'lightconv';
 *
 * argmax(Tensor.fromArray([0.1, 0.9, 0.7, 0.3], [2, 2])); // [1, 0]
 * ```
 */
export function argmax(scores: Tensor): number[] {
  if (scores.rank !== 2) throw new ShapeError(`argmax: scores must be [N, C], got [${scores.shape}]`);
  const [n, c] = scores.shape as [number, number];
  const d = scores.dataSync();
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (d[i * c + j]! > d[i * c + best]!) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * Fraction of predictions equal to the label.
 *
 * @example
 * ```ts
 * import { accuracy } from 'lightconv';
 *
 * accuracy([0, 1, 1, 2], [0, 1, 2, 2]); // 0.75
 * ```
 */
export function accuracy(yTrue: Labels, yPred: Labels): number {
  const t = arr(yTrue);
  const p = arr(yPred);
  if (t.length !== p.length) throw new ShapeError(`accuracy: ${t.length} labels but ${p.length} predictions`);
  let ok = 0;
  for (let i = 0; i < t.length; i++) if (t[i] === p[i]) ok++;
  return t.length ? ok / t.length : 0;
}

/**
 * counts[true][pred].
 *
 * @example
 * ```ts
 * import { confusionMatrix } from 'lightconv';
 *
 * confusionMatrix([0, 1, 1], [0, 1, 0]); // [[1, 0], [1, 1]] (rows: true class)
 * ```
 */
export function confusionMatrix(yTrue: Labels, yPred: Labels, numClasses?: number): number[][] {
  const t = arr(yTrue);
  const p = arr(yPred);
  if (t.length !== p.length) throw new ShapeError(`confusionMatrix: ${t.length} labels but ${p.length} predictions`);
  const C = numClasses ?? classCount(t, p);
  const m = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  for (let i = 0; i < t.length; i++) {
    if (!(t[i]! >= 0 && t[i]! < C && p[i]! >= 0 && p[i]! < C)) throw new ValueError(`confusionMatrix: label ${t[i]} or prediction ${p[i]} at ${i} is not in [0, ${C})`);
    m[t[i]!]![p[i]!]!++;
  }
  return m;
}

function averaged(per: number[], support: number[], avg: Average, micro: number): number | number[] {
  if (avg === 'none') return per;
  if (avg === 'micro') return micro;
  if (avg === 'macro') return per.reduce((a, b) => a + b, 0) / per.length;
  const total = support.reduce((a, b) => a + b, 0);
  return total ? per.reduce((a, v, i) => a + v * support[i]!, 0) / total : 0;
}

/**
 * Precision, recall and F1 per class, then averaged: 'macro' (unweighted mean over classes),
 * 'weighted' (by support, the true count of each class), 'micro' (from the pooled counts,
 * which equals accuracy for single-label data) or 'none' (the per-class arrays).
 *
 * @example
 * ```ts
 * import { precisionRecallF1 } from 'lightconv';
 *
 * const { precision, recall, f1, support } = precisionRecallF1([0, 1, 1, 2], [0, 1, 2, 2], { average: 'macro' });
 * ```
 */
export function precisionRecallF1(
  yTrue: Labels,
  yPred: Labels,
  opts: { average?: Average; numClasses?: number } = {},
): { precision: number | number[]; recall: number | number[]; f1: number | number[]; support: number[] } {
  const m = confusionMatrix(yTrue, yPred, opts.numClasses);
  const C = m.length;
  const tp = m.map((row, c) => row[c]!);
  const predicted = Array.from({ length: C }, (_, c) => m.reduce((a, row) => a + row[c]!, 0));
  const support = m.map((row) => row.reduce((a, b) => a + b, 0));
  const div = (a: number, b: number) => (b === 0 ? 0 : a / b);
  const precision = tp.map((t, c) => div(t, predicted[c]!));
  const recall = tp.map((t, c) => div(t, support[c]!));
  const f1 = precision.map((p, c) => div(2 * p * recall[c]!, p + recall[c]!));
  const sumTp = tp.reduce((a, b) => a + b, 0);
  const n = support.reduce((a, b) => a + b, 0);
  const avg = opts.average ?? 'macro';
  const micro = div(sumTp, n);
  return { precision: averaged(precision, support, avg, micro), recall: averaged(recall, support, avg, micro), f1: averaged(f1, support, avg, micro), support };
}

/** Scores of class c per sample from [N, C] scores (or a vector of positive-class scores when C = 2, c = 1). */
function columnOf(scores: Tensor, c: number): number[] {
  const d = scores.dataSync();
  if (scores.rank === 1) return Array.from(d, (v) => (c === 1 ? v : -v));
  const C = scores.shape[1]!;
  return Array.from({ length: scores.shape[0]! }, (_, i) => d[i * C + c]!);
}

/**
 * Binary ROC-AUC: the probability that a positive outranks a negative, ties counting ½
 * (Mann–Whitney).
 *
 * @example
 * ```ts
 * import { binaryRocAuc } from 'lightconv';
 *
 * binaryRocAuc([true, false, true, false], [0.9, 0.1, 0.4, 0.6]); // 0.75
 * ```
 */
export function binaryRocAuc(positive: readonly boolean[], score: readonly number[]): number {
  const idx = score.map((_, i) => i).sort((a, b) => score[a]! - score[b]!);
  let rankSum = 0;
  let nPos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j < idx.length && score[idx[j]!] === score[idx[i]!]) j++;
    const avgRank = (i + 1 + j) / 2; // 1-based ranks i+1…j share their mean
    for (let k = i; k < j; k++) if (positive[idx[k]!]) {
      rankSum += avgRank;
      nPos++;
    }
    i = j;
  }
  const nNeg = idx.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * Binary average precision (PR-AUC as scikit-learn's average_precision_score):
 * Σ_k (R_k − R_{k−1})·P_k over the distinct score thresholds, highest first.
 *
 * @example
 * ```ts
 * import { binaryAveragePrecision } from 'lightconv';
 *
 * const ap = binaryAveragePrecision([true, false, true], [0.8, 0.7, 0.3]);
 * ```
 */
export function binaryAveragePrecision(positive: readonly boolean[], score: readonly number[]): number {
  const idx = score.map((_, i) => i).sort((a, b) => score[b]! - score[a]!);
  const nPos = positive.filter(Boolean).length;
  if (nPos === 0) return NaN;
  let tp = 0;
  let fp = 0;
  let prevRecall = 0;
  let ap = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j < idx.length && score[idx[j]!] === score[idx[i]!]) {
      if (positive[idx[j]!]) tp++;
      else fp++;
      j++;
    }
    const recall = tp / nPos;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
    i = j;
  }
  return ap;
}

function oneVsRest(metric: (pos: boolean[], s: number[]) => number, yTrue: Labels, scores: Tensor, average: Average): number | number[] {
  const t = arr(yTrue);
  const C = scores.rank === 1 ? 2 : scores.shape[1]!;
  if ((scores.shape[0] ?? 0) !== t.length) throw new ShapeError(`scores have ${scores.shape[0]} rows for ${t.length} labels`);
  if (scores.rank === 1) return metric(Array.from(t, (y) => y === 1), columnOf(scores, 1));
  const per: number[] = [];
  const support: number[] = [];
  for (let c = 0; c < C; c++) {
    const pos = Array.from(t, (y) => y === c);
    per.push(metric(pos, columnOf(scores, c)));
    support.push(pos.filter(Boolean).length);
  }
  if (average === 'none') return per;
  return averaged(per, support, average === 'micro' ? 'macro' : average, 0);
}

/**
 * ROC-AUC, one-vs-rest per class, averaged 'macro' (default), 'weighted' by support, or 'none'. A
 * class with no positives or no negatives gives NaN.
 *
 * @example
 * ```ts
 * import { Tensor, rocAuc } from 'lightconv';
 *
 * const scores = Tensor.fromArray([0.8, 0.2, 0.3, 0.7, 0.6, 0.4], [3, 2]);
 * const auc = rocAuc([0, 1, 1], scores); // macro over the classes
 * ```
 */
export function rocAuc(yTrue: Labels, scores: Tensor, opts: { average?: Average } = {}): number | number[] {
  return oneVsRest(binaryRocAuc, yTrue, scores, opts.average ?? 'macro');
}

/**
 * PR-AUC (average precision), one-vs-rest per class, averaged like rocAuc.
 *
 * @example
 * ```ts
 * import { Tensor, prAuc } from 'lightconv';
 *
 * const scores = Tensor.fromArray([0.8, 0.2, 0.3, 0.7, 0.6, 0.4], [3, 2]);
 * const perClass = prAuc([0, 1, 1], scores, { average: 'none' }) as number[];
 * ```
 */
export function prAuc(yTrue: Labels, scores: Tensor, opts: { average?: Average } = {}): number | number[] {
  return oneVsRest(binaryAveragePrecision, yTrue, scores, opts.average ?? 'macro');
}

// ---------------------------------------------------------------------------------------------
// Metrics of one set of predicted probabilities (the workflow's evaluation).

/** Per-class one-vs-rest metrics, as in ClassificationMetrics.per_class. */
export interface PerClassMetrics {
  precision: number;
  recall: number;
  specificity: number;
  f1: number;
  support: number;
  roc_auc: number;
  pr_auc: number;
}

/** Everything `classificationMetrics` computes; also the body of a run's metrics.json. */
export interface ClassificationMetrics {
  n: number;
  classes: string[];
  accuracy: number;
  balanced_accuracy: number;
  precision_macro: number;
  recall_macro: number;
  f1_macro: number;
  specificity_macro: number;
  roc_auc_macro: number;
  pr_auc_macro: number;
  precision_weighted: number;
  recall_weighted: number;
  f1_weighted: number;
  mcc: number;
  cohen_kappa: number;
  ece: number;
  log_loss: number;
  /** counts[true][pred]. */
  confusion_matrix: number[][];
  per_class: Record<string, PerClassMetrics>;
}

/** The metrics that are bootstrapped, averaged over folds and tested between runs. */
export const HEADLINE = [
  'accuracy',
  'balanced_accuracy',
  'precision_macro',
  'recall_macro',
  'f1_macro',
  'specificity_macro',
  'roc_auc_macro',
  'pr_auc_macro',
  'mcc',
  'cohen_kappa',
] as const;
export type HeadlineMetric = (typeof HEADLINE)[number];

/** Probabilities as rows (`ArrayLike<number>[]`) or one N×C row-major array. */
export type Probabilities = readonly ArrayLike<number>[] | ArrayLike<number>;

/**
 * Probabilities as one row-major Float64Array, checked against n rows of C finite values.
 *
 * @example
 * ```ts
 * import { probabilityMatrix } from 'lightconv';
 *
 * const m = probabilityMatrix([[0.9, 0.1], [0.2, 0.8]], 2, 2); // Float64Array [0.9, 0.1, 0.2, 0.8]
 * ```
 */
export function probabilityMatrix(probs: Probabilities, n: number, C: number, where = 'probabilities'): Float64Array {
  const out = new Float64Array(n * C);
  const rows = Array.isArray(probs) && (probs.length === 0 || typeof probs[0] !== 'number');
  if (rows) {
    const r = probs as readonly ArrayLike<number>[];
    if (r.length !== n) throw new ShapeError(`${where}: ${r.length} rows for ${n} labels`);
    r.forEach((row, i) => {
      if (row.length !== C) throw new ShapeError(`${where}: row ${i} has ${row.length} values, expected ${C} (one per class)`);
      for (let j = 0; j < C; j++) out[i * C + j] = row[j]!;
    });
  } else {
    const f = probs as ArrayLike<number>;
    if (f.length !== n * C) throw new ShapeError(`${where}: ${f.length} values for ${n} labels × ${C} classes (expected ${n * C}, row-major)`);
    for (let i = 0; i < f.length; i++) out[i] = f[i]!;
  }
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) throw new ValueError(`${where}: row ${Math.floor(i / C)}, class ${i % C} is ${out[i]} (must be finite)`);
  }
  return out;
}

function checkLabels(yTrue: ArrayLike<number>, C: number, where: string): void {
  for (let i = 0; i < yTrue.length; i++) {
    const y = yTrue[i]!;
    if (!(Number.isInteger(y) && y >= 0 && y < C)) throw new ValueError(`${where}: label ${y} at ${i} is not a class index in [0, ${C})`);
  }
}

/** argmax of each row (the first of equal maxima, as numpy.argmax). */
function rowArgmax(p: Float64Array, n: number, C: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < C; j++) if (p[i * C + j]! > p[i * C + best]!) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * Specificity of each class, one-vs-rest: TN / (TN + FP); 0 where a class has no negatives
 * (zero_division = 0).
 *
 * @example
 * ```ts
 * import { specificity } from 'lightconv';
 *
 * specificity([0, 1, 1, 0], [0, 1, 0, 0]); // per class: [0.5, 1]
 * ```
 */
export function specificity(yTrue: Labels, yPred: Labels, numClasses?: number): number[] {
  const m = confusionMatrix(yTrue, yPred, numClasses);
  const n = m.reduce((a, row) => a + row.reduce((s, v) => s + v, 0), 0);
  return m.map((row, c) => {
    const support = row.reduce((s, v) => s + v, 0);
    const predicted = m.reduce((s, r) => s + r[c]!, 0);
    const fp = predicted - row[c]!;
    const tn = n - support - fp;
    return tn + fp === 0 ? 0 : tn / (tn + fp);
  });
}

/**
 * Balanced accuracy as scikit-learn's: the mean recall over the classes that occur in yTrue.
 *
 * @example
 * ```ts
 * import { balancedAccuracy } from 'lightconv';
 *
 * balancedAccuracy([0, 0, 0, 1], [0, 0, 0, 0]); // 0.5
 * ```
 */
export function balancedAccuracy(yTrue: Labels, yPred: Labels): number {
  const m = confusionMatrix(yTrue, yPred);
  let sum = 0;
  let k = 0;
  m.forEach((row, c) => {
    const support = row.reduce((s, v) => s + v, 0);
    if (support > 0) {
      sum += row[c]! / support;
      k++;
    }
  });
  return k ? sum / k : NaN;
}

/**
 * Matthews correlation coefficient, multiclass (Gorodkin's R_K), as scikit-learn's
 * matthews_corrcoef: 0 when undefined.
 *
 * @example
 * ```ts
 * import { matthewsCorrcoef } from 'lightconv';
 *
 * matthewsCorrcoef([0, 1, 1, 0], [0, 1, 0, 0]); // 0.577…
 * ```
 */
export function matthewsCorrcoef(yTrue: Labels, yPred: Labels): number {
  const m = confusionMatrix(yTrue, yPred);
  const t = m.map((row) => row.reduce((s, v) => s + v, 0));
  const p = m.map((_, c) => m.reduce((s, r) => s + r[c]!, 0));
  const correct = m.reduce((s, row, c) => s + row[c]!, 0);
  const n = t.reduce((s, v) => s + v, 0);
  const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);
  const covTP = correct * n - dot(t, p);
  const covPP = n * n - dot(p, p);
  const covTT = n * n - dot(t, t);
  return covPP * covTT === 0 ? 0 : covTP / Math.sqrt(covTT * covPP);
}

/**
 * Cohen's kappa (unweighted), as scikit-learn's cohen_kappa_score: NaN when chance agreement is 1.
 *
 * @example
 * ```ts
 * import { cohenKappa } from 'lightconv';
 *
 * cohenKappa([0, 1, 1, 0], [0, 1, 0, 0]); // 0.5
 * ```
 */
export function cohenKappa(yTrue: Labels, yPred: Labels): number {
  const m = confusionMatrix(yTrue, yPred);
  const C = m.length;
  const rowSum = m.map((row) => row.reduce((s, v) => s + v, 0));
  const colSum = m.map((_, c) => m.reduce((s, r) => s + r[c]!, 0));
  const n = rowSum.reduce((s, v) => s + v, 0);
  // 1 − observed disagreement / expected disagreement, in scikit-learn's order of operations.
  let observed = 0;
  let expected = 0;
  for (let i = 0; i < C; i++) {
    for (let j = 0; j < C; j++) {
      if (i === j) continue;
      observed += m[i]![j]!;
      expected += (rowSum[i]! * colSum[j]!) / n;
    }
  }
  return 1 - observed / expected;
}

/**
 * Per-bin mean confidence, accuracy and count, binning the top-class probability into `bins`
 * equal-width intervals (0, 1/M], (1/M, 2/M], …, ((M−1)/M, 1] (a confidence of exactly 0 joins the
 * first bin). Accuracy is whether the argmax is the label. Empty bins have NaN confidence and accuracy.
 *
 * @example
 * ```ts
 * import { calibrationCurve } from 'lightconv';
 *
 * const { confidence, accuracy, count } = calibrationCurve([0, 1], [[0.9, 0.1], [0.3, 0.7]], 10);
 * ```
 */
export function calibrationCurve(yTrue: ArrayLike<number>, probs: Probabilities, bins = 10): { confidence: number[]; accuracy: number[]; count: number[] } {
  if (!(Number.isInteger(bins) && bins >= 1)) throw new ValueError(`calibrationCurve: bins must be a positive integer, got ${bins}`);
  const n = yTrue.length;
  const C = inferClasses(probs, n, 'calibrationCurve');
  const p = probabilityMatrix(probs, n, C, 'calibrationCurve');
  checkLabels(yTrue, C, 'calibrationCurve');
  return calibrationBins(yTrue, p, n, C, bins);
}

function calibrationBins(yTrue: ArrayLike<number>, p: Float64Array, n: number, C: number, bins: number) {
  const pred = rowArgmax(p, n, C);
  const conf = new Array<number>(bins).fill(0);
  const acc = new Array<number>(bins).fill(0);
  const count = new Array<number>(bins).fill(0);
  for (let i = 0; i < n; i++) {
    const c = p[i * C + pred[i]!]!;
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(c * bins) - 1));
    conf[b] += c;
    acc[b] += pred[i] === yTrue[i] ? 1 : 0;
    count[b]++;
  }
  return {
    confidence: conf.map((s, b) => (count[b] ? s / count[b]! : NaN)),
    accuracy: acc.map((s, b) => (count[b] ? s / count[b]! : NaN)),
    count,
  };
}

/**
 * Expected calibration error (Guo et al. 2017, "On calibration of modern neural networks"):
 * Σ_b |B_b|/N · |accuracy(B_b) − confidence(B_b)| over `bins` (default 15) equal-width bins of
 * the top-class probability, binned as calibrationCurve.
 *
 * @example
 * ```ts
 * import { expectedCalibrationError } from 'lightconv';
 *
 * const ece = expectedCalibrationError([0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]);
 * ```
 */
export function expectedCalibrationError(yTrue: ArrayLike<number>, probs: Probabilities, bins = 15): number {
  if (!(Number.isInteger(bins) && bins >= 1)) throw new ValueError(`expectedCalibrationError: bins must be a positive integer, got ${bins}`);
  const n = yTrue.length;
  if (n === 0) throw new ValueError('expectedCalibrationError: no samples');
  const C = inferClasses(probs, n, 'expectedCalibrationError');
  const p = probabilityMatrix(probs, n, C, 'expectedCalibrationError');
  checkLabels(yTrue, C, 'expectedCalibrationError');
  return calibrationBinsEce(yTrue, p, n, C, bins);
}

/** float64 machine epsilon: scikit-learn's log_loss clips with eps = 'auto', finfo(float64).eps for float64 input. */
export const LOG_LOSS_EPS = 2.220446049250313e-16;

/**
 * Mean cross-entropy of the labels under the probabilities, as scikit-learn's log_loss (≥ 1.2)
 * with `labels = 0…C−1`: each probability is clipped to [eps, 1 − eps] (eps = float64 machine
 * epsilon by default, scikit-learn's 'auto' for float64 input), each row renormalised to sum 1,
 * then −mean log p[label]. Computed in float64 whatever the input type.
 *
 * @example
 * ```ts
 * import { logLoss } from 'lightconv';
 *
 * logLoss([0, 1], [[0.9, 0.1], [0.2, 0.8]]); // (−ln 0.9 − ln 0.8) / 2
 * ```
 */
export function logLoss(yTrue: ArrayLike<number>, probs: Probabilities, opts: { eps?: number } = {}): number {
  const n = yTrue.length;
  if (n === 0) throw new ValueError('logLoss: no samples');
  const C = inferClasses(probs, n, 'logLoss');
  const p = probabilityMatrix(probs, n, C, 'logLoss');
  checkLabels(yTrue, C, 'logLoss');
  return logLossOf(yTrue, p, n, C, opts.eps ?? LOG_LOSS_EPS);
}

function logLossOf(yTrue: ArrayLike<number>, p: Float64Array, n: number, C: number, eps: number): number {
  const clip = (v: number) => Math.min(1 - eps, Math.max(eps, v));
  let loss = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < C; j++) sum += clip(p[i * C + j]!);
    loss -= Math.log(clip(p[i * C + yTrue[i]!]!) / sum);
  }
  return loss / n;
}

/** Number of classes of the probabilities: the row length, or length / n for a flat array. */
function inferClasses(probs: Probabilities, n: number, where: string): number {
  if (Array.isArray(probs) && probs.length > 0 && typeof probs[0] !== 'number') return (probs[0] as ArrayLike<number>).length;
  const len = (probs as ArrayLike<number>).length;
  if (n === 0 || len % n !== 0) throw new ShapeError(`${where}: ${len} values cannot be ${n} rows of probabilities`);
  return len / n;
}

/**
 * scikit-learn's _binary_clf_curve: at each distinct score, highest first, the counts of
 * false and true positives among the samples scoring at least that.
 */
function binaryClfCurve(positive: readonly boolean[], score: readonly number[], where: string): { fps: number[]; tps: number[]; thresholds: number[] } {
  if (positive.length !== score.length) throw new ShapeError(`${where}: ${positive.length} labels but ${score.length} scores`);
  score.forEach((s, i) => {
    if (Number.isNaN(s)) throw new ValueError(`${where}: score ${i} is NaN`);
  });
  const idx = score.map((_, i) => i).sort((a, b) => score[b]! - score[a]! || a - b);
  const fps: number[] = [];
  const tps: number[] = [];
  const thresholds: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < idx.length; k++) {
    if (positive[idx[k]!]) tp++;
    else fp++;
    if (k === idx.length - 1 || score[idx[k + 1]!] !== score[idx[k]!]) {
      fps.push(fp);
      tps.push(tp);
      thresholds.push(score[idx[k]!]!);
    }
  }
  return { fps, tps, thresholds };
}

/**
 * ROC curve with scikit-learn's roc_curve definitions: one point per distinct score
 * (drop_intermediate = false by default; true drops the collinear points as scikit-learn's
 * default does), preceded by (0, 0) at threshold +Infinity (scikit-learn ≥ 1.3; 1.2 wrote
 * max + 1 there). fpr is NaN throughout when there are no negatives, tpr when there are no positives.
 *
 * @example
 * ```ts
 * import { rocCurve } from 'lightconv';
 *
 * const { fpr, tpr, thresholds } = rocCurve([true, false, true, false], [0.9, 0.1, 0.4, 0.6]);
 * ```
 */
export function rocCurve(positive: readonly boolean[], score: readonly number[], opts: { dropIntermediate?: boolean } = {}): { fpr: number[]; tpr: number[]; thresholds: number[] } {
  let { fps, tps, thresholds } = binaryClfCurve(positive, score, 'rocCurve');
  if (opts.dropIntermediate && fps.length > 2) {
    // Keep the ends and every point where the curve changes direction (second difference ≠ 0).
    const keep = fps.map((_, i) => i === 0 || i === fps.length - 1 || fps[i + 1]! - 2 * fps[i]! + fps[i - 1]! !== 0 || tps[i + 1]! - 2 * tps[i]! + tps[i - 1]! !== 0);
    fps = fps.filter((_, i) => keep[i]);
    tps = tps.filter((_, i) => keep[i]);
    thresholds = thresholds.filter((_, i) => keep[i]);
  }
  const nNeg = fps.length ? fps[fps.length - 1]! : 0;
  const nPos = tps.length ? tps[tps.length - 1]! : 0;
  return {
    fpr: [0, ...fps].map((v) => v / nNeg),
    tpr: [0, ...tps].map((v) => v / nPos),
    thresholds: [Infinity, ...thresholds],
  };
}

/**
 * Precision–recall curve with scikit-learn's precision_recall_curve definitions (1.2–1.7,
 * drop_intermediate = false): thresholds are the distinct scores in increasing order; precision
 * and recall at each, then a final point (precision 1, recall 0) with no threshold. Recall is 1
 * throughout when there are no positives, as scikit-learn sets it.
 *
 * @example
 * ```ts
 * import { precisionRecallCurve } from 'lightconv';
 *
 * const { precision, recall } = precisionRecallCurve([true, false, true], [0.8, 0.7, 0.3]);
 * ```
 */
export function precisionRecallCurve(positive: readonly boolean[], score: readonly number[]): { precision: number[]; recall: number[]; thresholds: number[] } {
  const { fps, tps, thresholds } = binaryClfCurve(positive, score, 'precisionRecallCurve');
  const nPos = tps.length ? tps[tps.length - 1]! : 0;
  const precision = tps.map((t, i) => (t + fps[i]! === 0 ? 0 : t / (t + fps[i]!))).reverse();
  const recall = tps.map((t) => (nPos === 0 ? 1 : t / nPos)).reverse();
  return { precision: [...precision, 1], recall: [...recall, 0], thresholds: [...thresholds].reverse() };
}

/**
 * All the evaluation metrics of one set of predicted probabilities, scikit-learn's definitions
 * (zero_division = 0). Predictions are the argmax of each row (the first of equal maxima).
 * Macro and weighted averages run over all `classes` (scikit-learn with labels = 0…C−1);
 * balanced accuracy over the classes present in yTrue, as scikit-learn's. roc_auc and pr_auc
 * are one-vs-rest on each class's probability column (AUC by Mann–Whitney with ties counting ½,
 * PR-AUC = average precision); their macro averages are the plain means over classes, NaN when a
 * class has no positives or (AUC) no negatives. For two classes with complementary probabilities
 * roc_auc_macro equals scikit-learn's binary roc_auc_score(y, p[:, 1]). ECE uses 15 bins, log
 * loss clips at float64 epsilon (see expectedCalibrationError, logLoss).
 *
 * @example
 * ```ts
 * import { classificationMetrics } from 'lightconv';
 *
 * const m = classificationMetrics([0, 1, 1], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], ['benign', 'malignant']);
 * console.log(m.accuracy, m.roc_auc_macro, m.f1_macro);
 * ```
 */
export function classificationMetrics(yTrue: ArrayLike<number>, probs: Probabilities, classes: readonly string[]): ClassificationMetrics {
  const C = classes.length;
  if (C < 2) throw new ValueError(`classificationMetrics: need at least 2 classes, got ${C}`);
  if (new Set(classes).size !== C) throw new ValueError(`classificationMetrics: class names repeat (${classes.join(', ')})`);
  const n = yTrue.length;
  if (n === 0) throw new ValueError('classificationMetrics: no samples');
  const p = probabilityMatrix(probs, n, C, 'classificationMetrics');
  checkLabels(yTrue, C, 'classificationMetrics');
  const y = Int32Array.from(yTrue as ArrayLike<number>);
  const pred = rowArgmax(p, n, C);

  const cm = confusionMatrix(y, pred, C);
  const none = precisionRecallF1(y, pred, { average: 'none', numClasses: C });
  const prec = none.precision as number[];
  const rec = none.recall as number[];
  const f1 = none.f1 as number[];
  const support = none.support;
  const spec = specificity(y, pred, C);
  const rocs: number[] = [];
  const aps: number[] = [];
  for (let c = 0; c < C; c++) {
    const pos = Array.from(y, (v) => v === c);
    const col = Array.from({ length: n }, (_, i) => p[i * C + c]!);
    rocs.push(binaryRocAuc(pos, col));
    aps.push(binaryAveragePrecision(pos, col));
  }
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const weighted = (v: number[]) => v.reduce((s, x, c) => s + x * support[c]!, 0) / n;
  const perClass: Record<string, PerClassMetrics> = {};
  classes.forEach((name, c) => {
    perClass[name] = { precision: prec[c]!, recall: rec[c]!, specificity: spec[c]!, f1: f1[c]!, support: support[c]!, roc_auc: rocs[c]!, pr_auc: aps[c]! };
  });
  return {
    n,
    classes: [...classes],
    accuracy: accuracy(y, pred),
    balanced_accuracy: balancedAccuracy(y, pred),
    precision_macro: mean(prec),
    recall_macro: mean(rec),
    f1_macro: mean(f1),
    specificity_macro: mean(spec),
    roc_auc_macro: mean(rocs),
    pr_auc_macro: mean(aps),
    precision_weighted: weighted(prec),
    recall_weighted: weighted(rec),
    f1_weighted: weighted(f1),
    mcc: matthewsCorrcoef(y, pred),
    cohen_kappa: cohenKappa(y, pred),
    ece: calibrationBinsEce(y, p, n, C, 15),
    log_loss: logLossOf(y, p, n, C, LOG_LOSS_EPS),
    confusion_matrix: cm,
    per_class: perClass,
  };
}

function calibrationBinsEce(y: ArrayLike<number>, p: Float64Array, n: number, C: number, bins: number): number {
  const c = calibrationBins(y, p, n, C, bins);
  return c.count.reduce((s, k, b) => (k ? s + (k / n) * Math.abs(c.accuracy[b]! - c.confidence[b]!) : s), 0);
}
