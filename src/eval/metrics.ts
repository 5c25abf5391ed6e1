import { ShapeError, ValueError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';

/**
 * Classification metrics with scikit-learn's definitions (zero_division = 0): labels are class
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

/** Predicted classes: the argmax of each row of [N, C] scores. */
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

/** Fraction of predictions equal to the label. */
export function accuracy(yTrue: Labels, yPred: Labels): number {
  const t = arr(yTrue);
  const p = arr(yPred);
  if (t.length !== p.length) throw new ShapeError(`accuracy: ${t.length} labels but ${p.length} predictions`);
  let ok = 0;
  for (let i = 0; i < t.length; i++) if (t[i] === p[i]) ok++;
  return t.length ? ok / t.length : 0;
}

/** counts[true][pred]. */
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

/** Binary ROC-AUC: the probability that a positive outranks a negative, ties counting ½ (Mann–Whitney). */
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

/** ROC-AUC, one-vs-rest per class, averaged 'macro' (default), 'weighted' by support, or 'none'. A class with no positives or no negatives gives NaN. */
export function rocAuc(yTrue: Labels, scores: Tensor, opts: { average?: Average } = {}): number | number[] {
  return oneVsRest(binaryRocAuc, yTrue, scores, opts.average ?? 'macro');
}

/** PR-AUC (average precision), one-vs-rest per class, averaged like rocAuc. */
export function prAuc(yTrue: Labels, scores: Tensor, opts: { average?: Average } = {}): number | number[] {
  return oneVsRest(binaryAveragePrecision, yTrue, scores, opts.average ?? 'macro');
}
