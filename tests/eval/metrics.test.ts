import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/errors.js';
import {
  HEADLINE,
  balancedAccuracy,
  calibrationCurve,
  classificationMetrics,
  cohenKappa,
  expectedCalibrationError,
  logLoss,
  matthewsCorrcoef,
  precisionRecallCurve,
  rocCurve,
  specificity,
} from '../../src/eval/metrics.js';

/**
 * Against scikit-learn 1.2 (tests/fixtures/eval/metrics.json, scripts/make_eval_fixtures.py).
 * Tolerances: 1e-12 absolute for everything derived from counts (accuracy … kappa, curves,
 * specificity) and for AUC / AP / ECE, whose only difference from the reference is the order of
 * float64 additions (AUC here is Mann–Whitney, scikit-learn integrates the curve: the same sum,
 * rounded differently, ≤ 1e-15 on these sizes); 1e-12 relative for log loss (a mean of logs).
 */
interface Case {
  name: string;
  classes: number;
  y: number[];
  probs: number[][];
  pred: number[];
  never_predicted: number[];
  numpy: { ece15: number };
  sklearn: Record<string, number> & {
    confusion_matrix: number[][];
    per_class: Record<'precision' | 'recall' | 'f1' | 'support' | 'specificity' | 'roc_auc' | 'average_precision', number[]>;
  };
  curves?: {
    class: number;
    roc: { fpr: number[]; tpr: number[]; thresholds: number[] };
    roc_drop_intermediate: { fpr: number[]; tpr: number[]; thresholds: number[] };
    pr: { precision: number[]; recall: number[]; thresholds: number[] };
  };
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/eval/metrics.json', import.meta.url), 'utf8')) as { cases: Case[] };
const names = (C: number) => Array.from({ length: C }, (_, i) => `class_${i}`);

function close(actual: readonly number[], expected: readonly number[], tol: number, what: string) {
  expect(actual.length, `${what} length`).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!), `${what}[${i}]: ${a} vs ${expected[i]}`).toBeLessThanOrEqual(tol));
}

describe('classificationMetrics against scikit-learn', () => {
  it('the fixture covers binary and multiclass, ties and a class never predicted', () => {
    expect(fixture.cases.map((c) => c.classes)).toEqual(expect.arrayContaining([2, 3, 4, 5, 10]));
    expect(fixture.cases.some((c) => c.never_predicted.length > 0)).toBe(true);
  });

  for (const c of fixture.cases) {
    it(c.name, () => {
      const C = c.classes;
      const m = classificationMetrics(c.y, c.probs, names(C));
      const sk = c.sklearn;
      expect(m.n).toBe(c.y.length);
      expect(m.classes).toEqual(names(C));
      expect(m.confusion_matrix).toEqual(sk.confusion_matrix);
      for (const k of ['accuracy', 'balanced_accuracy', 'precision_macro', 'recall_macro', 'f1_macro', 'precision_weighted', 'recall_weighted', 'f1_weighted', 'mcc', 'cohen_kappa', 'roc_auc_macro'] as const) {
        expect(Math.abs(m[k] - sk[k]!), `${k}: ${m[k]} vs ${sk[k]}`).toBeLessThanOrEqual(1e-12);
      }
      expect(Math.abs(m.log_loss - sk.log_loss!) / sk.log_loss!).toBeLessThanOrEqual(1e-12);
      expect(Math.abs(m.ece - c.numpy.ece15)).toBeLessThanOrEqual(1e-12);
      const pc = sk.per_class;
      const per = (k: 'precision' | 'recall' | 'f1' | 'support' | 'specificity' | 'roc_auc' | 'pr_auc') => names(C).map((n) => m.per_class[n]![k]);
      close(per('precision'), pc.precision, 1e-12, 'precision');
      close(per('recall'), pc.recall, 1e-12, 'recall');
      close(per('f1'), pc.f1, 1e-12, 'f1');
      expect(per('support')).toEqual(pc.support);
      close(per('specificity'), pc.specificity, 1e-12, 'specificity');
      close(per('roc_auc'), pc.roc_auc, 1e-12, 'roc_auc');
      close(per('pr_auc'), pc.average_precision, 1e-12, 'average precision');
      // Macro averages are the plain means of the per-class values.
      expect(m.pr_auc_macro).toBeCloseTo(pc.average_precision.reduce((s, v) => s + v, 0) / C, 12);
      expect(m.specificity_macro).toBeCloseTo(pc.specificity.reduce((s, v) => s + v, 0) / C, 12);
      for (const n of c.never_predicted) expect(m.per_class[`class_${n}`]!.precision).toBe(0);
      // The same through the row-major Float64Array form (Float32Array would round the probabilities).
      const flat = Float64Array.from(c.probs.flat());
      expect(classificationMetrics(c.y, flat, names(C))).toEqual(m);
      // The single-metric functions agree with the gathered ones.
      expect(balancedAccuracy(c.y, c.pred)).toBe(m.balanced_accuracy);
      expect(matthewsCorrcoef(c.y, c.pred)).toBe(m.mcc);
      expect(cohenKappa(c.y, c.pred)).toBe(m.cohen_kappa);
      expect(specificity(c.y, c.pred, C)).toEqual(per('specificity'));
      expect(logLoss(c.y, c.probs)).toBe(m.log_loss);
      expect(expectedCalibrationError(c.y, c.probs)).toBe(m.ece);
    });
  }

  it('a Float32Array of probabilities is accepted (float32 rounding only)', () => {
    const c = fixture.cases.find((k) => k.name === 'three_smooth')!;
    const m = classificationMetrics(c.y, Float32Array.from(c.probs.flat()), names(3));
    expect(m.accuracy).toBeCloseTo(c.sklearn.accuracy!, 12);
    expect(Math.abs(m.log_loss - c.sklearn.log_loss!)).toBeLessThan(1e-6);
  });

  it('HEADLINE names fields of ClassificationMetrics', () => {
    const c = fixture.cases[0]!;
    const m = classificationMetrics(c.y, c.probs, names(2));
    expect(HEADLINE).toHaveLength(10);
    for (const h of HEADLINE) expect(typeof m[h]).toBe('number');
  });
});

describe('curves against scikit-learn', () => {
  for (const c of fixture.cases.filter((k) => k.curves)) {
    it(`${c.name}, class ${c.curves!.class}`, () => {
      const k = c.curves!.class;
      const pos = c.y.map((v) => v === k);
      const s = c.probs.map((r) => r[k]!);
      const roc = rocCurve(pos, s);
      close(roc.fpr, c.curves!.roc.fpr, 1e-12, 'fpr');
      close(roc.tpr, c.curves!.roc.tpr, 1e-12, 'tpr');
      expect(roc.thresholds[0]).toBe(Infinity);
      expect(roc.thresholds.slice(1)).toEqual(c.curves!.roc.thresholds);
      const dropped = rocCurve(pos, s, { dropIntermediate: true });
      close(dropped.fpr, c.curves!.roc_drop_intermediate.fpr, 1e-12, 'fpr (drop_intermediate)');
      close(dropped.tpr, c.curves!.roc_drop_intermediate.tpr, 1e-12, 'tpr (drop_intermediate)');
      expect(dropped.thresholds.slice(1)).toEqual(c.curves!.roc_drop_intermediate.thresholds);
      const pr = precisionRecallCurve(pos, s);
      close(pr.precision, c.curves!.pr.precision, 1e-12, 'precision');
      close(pr.recall, c.curves!.pr.recall, 1e-12, 'recall');
      expect(pr.thresholds).toEqual(c.curves!.pr.thresholds);
    });
  }

  it('no positives: recall 1 throughout (scikit-learn), tpr NaN', () => {
    const pr = precisionRecallCurve([false, false], [0.2, 0.7]);
    expect(pr.recall).toEqual([1, 1, 0]);
    expect(pr.precision).toEqual([0, 0, 1]);
    expect(rocCurve([false, false], [0.2, 0.7]).tpr.every(Number.isNaN)).toBe(true);
  });
});

describe('calibration (hand-computed)', () => {
  it('bins (k/M, (k+1)/M] on the top-class probability; ECE', () => {
    // Top-class confidences 0.9 (right), 0.8 (wrong), 0.55 (right), 0.5 (wrong: the tie predicts
    // class 0, the first maximum) in 4 bins: (0.75, 1]: 2 rows, conf 0.85, acc 0.5;
    // (0.5, 0.75]: conf 0.55, acc 1; (0.25, 0.5]: conf 0.5, acc 0; (0, 0.25]: empty.
    const y = [0, 0, 1, 1];
    const p = [[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.5, 0.5]];
    const c = calibrationCurve(y, p, 4);
    expect(c.count).toEqual([0, 1, 1, 2]);
    expect(c.accuracy.slice(1)).toEqual([0, 1, 0.5]);
    expect(c.confidence[1]).toBeCloseTo(0.5, 15);
    expect(c.confidence[3]).toBeCloseTo(0.85, 15);
    expect(Number.isNaN(c.accuracy[0]!)).toBe(true);
    // ECE = Σ |B|/N·|acc − conf| = (1/4)·0.5 + (1/4)·0.45 + (2/4)·0.35.
    expect(expectedCalibrationError(y, p, 4)).toBeCloseTo(0.25 * 0.5 + 0.25 * 0.45 + 0.5 * 0.35, 12);
  });
  it('log loss clips at float64 epsilon and renormalises (scikit-learn)', () => {
    expect(logLoss([0], [[0, 1]])).toBeCloseTo(-Math.log(2.220446049250313e-16 / (2.220446049250313e-16 + 1 - 2.220446049250313e-16)), 9);
    expect(logLoss([1, 0], [[0.2, 0.6], [0.5, 0.5]])).toBeCloseTo(-(Math.log(0.75) + Math.log(0.5)) / 2, 14);
  });
});

describe('typed errors', () => {
  it('bad shapes, labels and values', () => {
    expect(() => classificationMetrics([0, 1], [[0.5, 0.5]], ['a', 'b'])).toThrow(ShapeError);
    expect(() => classificationMetrics([0, 1], [[0.5, 0.5], [0.5]], ['a', 'b'])).toThrow(/row 1 has 1 values, expected 2/);
    expect(() => classificationMetrics([0, 1], new Float32Array(3), ['a', 'b'])).toThrow(/3 values for 2 labels × 2 classes/);
    expect(() => classificationMetrics([0, 2], [[0.5, 0.5], [0.5, 0.5]], ['a', 'b'])).toThrow(/label 2 at 1 is not a class index/);
    expect(() => classificationMetrics([0, 1], [[0.5, NaN], [0.5, 0.5]], ['a', 'b'])).toThrow(/row 0, class 1 is NaN/);
    expect(() => classificationMetrics([0], [[1]], ['a'])).toThrow(ValueError);
    expect(() => classificationMetrics([], [], ['a', 'b'])).toThrow(/no samples/);
    expect(() => classificationMetrics([0, 1], [[1, 0], [0, 1]], ['a', 'a'])).toThrow(/repeat/);
    expect(() => rocCurve([true], [0.1, 0.2])).toThrow(ShapeError);
    expect(() => rocCurve([true, false], [NaN, 0.2])).toThrow(/score 0 is NaN/);
    expect(() => calibrationCurve([0], [[1, 0]], 0)).toThrow(ValueError);
  });
});
