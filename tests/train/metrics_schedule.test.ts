import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { accuracy, argmax, binaryAveragePrecision, binaryRocAuc, confusionMatrix, prAuc, precisionRecallF1, rocAuc } from '../../src/eval/metrics.js';
import { SGD } from '../../src/train/optim.js';
import { cosineSchedule, exponentialSchedule, setLr, stepSchedule } from '../../src/train/schedule.js';

// Hand-computed: 3 classes, 8 samples.
const yTrue = [0, 0, 0, 1, 1, 2, 2, 2];
const yPred = [0, 1, 0, 1, 2, 2, 2, 0];

describe('metrics (hand-computed values)', () => {
  it('confusion matrix and accuracy', () => {
    expect(confusionMatrix(yTrue, yPred)).toEqual([
      [2, 1, 0],
      [0, 1, 1],
      [1, 0, 2],
    ]);
    expect(accuracy(yTrue, yPred)).toBe(5 / 8);
  });
  it('precision / recall / F1: per class, macro, weighted, micro', () => {
    // class 0: tp 2, predicted 3, support 3 → P 2/3, R 2/3, F1 2/3
    // class 1: tp 1, predicted 2, support 2 → P 1/2, R 1/2, F1 1/2
    // class 2: tp 2, predicted 3, support 3 → P 2/3, R 2/3, F1 2/3
    const none = precisionRecallF1(yTrue, yPred, { average: 'none' });
    expect(none.precision).toEqual([2 / 3, 1 / 2, 2 / 3]);
    expect(none.recall).toEqual([2 / 3, 1 / 2, 2 / 3]);
    expect(none.support).toEqual([3, 2, 3]);
    const macro = precisionRecallF1(yTrue, yPred);
    expect(macro.f1 as number).toBeCloseTo((2 / 3 + 1 / 2 + 2 / 3) / 3, 12);
    const weighted = precisionRecallF1(yTrue, yPred, { average: 'weighted' });
    expect(weighted.precision as number).toBeCloseTo((3 * 2 / 3 + 2 * 0.5 + 3 * 2 / 3) / 8, 12);
    expect(precisionRecallF1(yTrue, yPred, { average: 'micro' }).f1).toBe(5 / 8);
    // A class never predicted: precision 0 (zero_division = 0).
    expect(precisionRecallF1([0, 1], [0, 0], { average: 'none' }).precision).toEqual([0.5, 0]);
  });
  it('binary ROC-AUC and average precision, with ties', () => {
    // Positives score 0.8, 0.4; negatives 0.6, 0.4, 0.1. Pairs: (0.8 > all 3) = 3, (0.4: > 0.1, tie 0.4, < 0.6) = 1.5 → 4.5/6.
    const pos = [true, false, true, false, false];
    const s = [0.8, 0.6, 0.4, 0.4, 0.1];
    expect(binaryRocAuc(pos, s)).toBeCloseTo(0.75, 12);
    // Thresholds 0.8: R ½ P 1; 0.6: R ½; 0.4: R 1, P 2/4 → AP = ½·1 + ½·½ = 0.75.
    expect(binaryAveragePrecision(pos, s)).toBeCloseTo(0.75, 12);
    expect(binaryRocAuc([true, true], [1, 2])).toBeNaN();
  });
  it('one-vs-rest ROC-AUC and PR-AUC on [N, C] scores', () => {
    const scores = Tensor.fromArray([0.7, 0.2, 0.1, 0.3, 0.4, 0.3, 0.2, 0.2, 0.6, 0.5, 0.1, 0.4], [4, 3]);
    const y = [0, 1, 2, 2];
    expect(argmax(scores)).toEqual([0, 1, 2, 0]);
    // class 0: pos 0.7 vs neg 0.3, 0.2, 0.5 → 1; class 1: pos 0.4 vs 0.2, 0.2, 0.1 → 1;
    // class 2: pos 0.6, 0.4 vs neg 0.1, 0.3 → 1.
    expect(rocAuc(y, scores, { average: 'none' })).toEqual([1, 1, 1]);
    expect(prAuc(y, scores)).toBeCloseTo(1, 12);
    const y2 = [0, 1, 2, 0];
    // class 0: pos 0.7, 0.5 vs neg 0.3, 0.2 → 1; class 1: pos 0.4 vs 0.2, 0.2, 0.1 → 1; class 2: pos 0.6 vs 0.1, 0.3, 0.4 → 1.
    expect(rocAuc(y2, scores, { average: 'weighted' })).toBeCloseTo(1, 12);
    // class 2 with y = [0, 2, 2, 0]: pos 0.3, 0.6 vs neg 0.1, 0.4 → (1 + 0 + 1 + 1)/4 = 0.75.
    expect((rocAuc([0, 2, 2, 0], scores, { average: 'none' }) as number[])[2]).toBeCloseTo(0.75, 12);
  });
});

describe('schedules (closed forms of PyTorch’s StepLR, ExponentialLR, LinearLR + CosineAnnealingLR)', () => {
  it('step, exponential, warm-up + cosine', () => {
    const s = stepSchedule(2, 0.5);
    expect([0, 1, 2, 3, 4].map((t) => s.factor(t))).toEqual([1, 1, 0.5, 0.5, 0.25]);
    expect(exponentialSchedule(0.9).factor(2)).toBeCloseTo(0.81, 12);
    const c = cosineSchedule({ total: 10, warmup: 2, startFactor: 0.1, minFactor: 0.01 });
    expect(c.factor(0)).toBeCloseTo(0.1, 12);
    expect(c.factor(1)).toBeCloseTo(0.55, 12);
    expect(c.factor(2)).toBeCloseTo(1, 12);
    expect(c.factor(6)).toBeCloseTo(0.01 + 0.99 * 0.5, 12);
    expect(c.factor(10)).toBeCloseTo(0.01, 12);
    expect(c.factor(20)).toBeCloseTo(0.01, 12);
  });
  it('setLr scales every parameter group from its own initial lr', () => {
    const a = Tensor.zeros([1]).requireGrad();
    const b = Tensor.zeros([1]).requireGrad();
    const opt = new SGD([{ params: [a] }, { params: [b], options: { lr: 0.01 } }], { lr: 0.1 });
    setLr(opt, stepSchedule(1, 0.5), 2);
    expect(opt.groups.map((g) => g.options.lr)).toEqual([0.025, 0.0025]);
  });
});
