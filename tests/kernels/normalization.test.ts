import { describe, expect, it } from 'vitest';
import { OnnxError, ShapeError } from '../../src/core/errors.js';
import { apply, cpuBackend, referenceBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { OnnxNode } from '../../src/io/onnx/node.js';
import { normalizationOps } from '../../src/io/onnx/ops/normalization.js';
import type { Activation } from '../../src/kernels/activation.js';
import {
  type BatchNormAttrs,
  batchNorm,
  batchNormCard,
  batchNormTrain,
  batchNormTrainingCard,
  batchStats,
  foldBatchNorm,
  updateRunningStats,
} from '../../src/kernels/normalization.js';
import { expectClose, randomTensor } from '../helpers.js';

/** Per-channel parameters with a positive variance. */
function bnParams(c: number, seed: number): [Tensor, Tensor, Tensor, Tensor] {
  const scale = Tensor.rand([c], { seed, low: 0.5, high: 1.5 });
  const bias = randomTensor([c], seed + 1);
  const mean = randomTensor([c], seed + 2);
  const variance = Tensor.rand([c], { seed: seed + 3, low: 0.1, high: 2 });
  return [scale, bias, mean, variance];
}

describe('BatchNormalization', () => {
  const activations: (Activation | undefined)[] = [undefined, { kind: 'relu' }, { kind: 'hard_swish' }, { kind: 'leaky_relu', alpha: 0.1 }];
  for (const shape of [[4, 3], [2, 3, 5], [2, 5, 4, 3], [1, 2, 3, 4, 5], [1, 6, 1, 1]]) {
    for (const activation of activations) {
      it(`cpu matches reference on ${JSON.stringify(shape)} with ${activation?.kind ?? 'no'} activation`, () => {
        const inputs = [randomTensor(shape, 1), ...bnParams(shape[1]!, 10)];
        const attrs: BatchNormAttrs = { epsilon: 1e-3, activation };
        const ref = apply(batchNormCard, inputs, attrs, referenceBackend);
        expectClose(apply(batchNormCard, inputs, attrs, cpuBackend), ref, { atol: 1e-6, rtol: 1e-5 });
      });
    }
  }

  it('computes y = scale·(x − mean)/sqrt(var + eps) + bias per channel', () => {
    // N = 2, C = 2: channel 0 → (x − 1)/2, channel 1 → 2·(x − 2) + 1.
    const x = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    const y = batchNorm(x, Tensor.fromArray([1, 2], [2]), Tensor.fromArray([0, 1], [2]), Tensor.fromArray([1, 2], [2]), Tensor.fromArray([4, 1], [2]), {
      epsilon: 0,
    });
    expect(y.toArray()).toEqual([0, 1, 1, 5]);
    // Epsilon matters where the variance is small: 1/sqrt(0 + 1e-3) vs 1/sqrt(0 + 1e-5).
    const one = Tensor.ones([1]);
    const zero = Tensor.zeros([1]);
    const x1 = Tensor.ones([1, 1, 1, 1]);
    expectClose(batchNorm(x1, one, zero, zero, zero, { epsilon: 1e-3 }), [1 / Math.sqrt(1e-3)]);
    expectClose(batchNorm(x1, one, zero, zero, zero), [1 / Math.sqrt(1e-5)]);
    // The fused activation applies after the affine map.
    const [ones, zeros] = [Tensor.ones([2]), Tensor.zeros([2])];
    const relu: Activation = { kind: 'relu' };
    expect(batchNorm(Tensor.fromArray([-3, 3], [1, 2]), ones, zeros, zeros, ones, { epsilon: 0, activation: relu }).toArray()).toEqual([0, 3]);
  });

  it('rejects parameters that do not match the channels', () => {
    const x = Tensor.zeros([2, 3, 4, 4]);
    const [s, b, m, v] = bnParams(3, 20);
    expect(() => batchNorm(x, Tensor.ones([4]), b, m, v)).toThrow(/BatchNormalization: scale has shape \[4\], expected \[3\]/);
    expect(() => batchNorm(x, s, b, m, Tensor.ones([3, 1]))).toThrow(/var has shape \[3, 1\]/);
    expect(() => batchNorm(Tensor.zeros([3]), s, b, m, v)).toThrow(ShapeError);
  });
});

describe('foldBatchNorm', () => {
  // A "conv" as a matrix: y[o] = Σ_k W[o, k]·v[k] + b[o], then BN per output channel o.
  function convThenBn(w: Tensor, b: Tensor | undefined, v: Tensor, bn: [Tensor, Tensor, Tensor, Tensor], eps: number): number[] {
    const [cout, k] = [w.shape[0]!, w.size / w.shape[0]!];
    const y = new Array<number>(cout).fill(0);
    for (let o = 0; o < cout; o++) {
      for (let i = 0; i < k; i++) y[o] += w.dataSync()[o * k + i]! * v.dataSync()[i]!;
      y[o] += b ? b.dataSync()[o]! : 0;
    }
    return batchNorm(Tensor.fromArray(y, [1, cout]), ...bn, { epsilon: eps }).toArray();
  }
  function conv(w: Tensor, b: Tensor, v: Tensor): number[] {
    const [cout, k] = [w.shape[0]!, w.size / w.shape[0]!];
    return Array.from({ length: cout }, (_, o) => {
      let s = b.dataSync()[o]!;
      for (let i = 0; i < k; i++) s += w.dataSync()[o * k + i]! * v.dataSync()[i]!;
      return s;
    });
  }

  for (const withBias of [false, true]) {
    it(`folds BN into a conv weight [Cout, Cin, kh, kw] ${withBias ? 'with' : 'without'} a conv bias`, () => {
      const w = randomTensor([5, 3, 3, 3], 30);
      const b = withBias ? randomTensor([5], 31) : undefined;
      const v = randomTensor([27], 32);
      const bn = bnParams(5, 33);
      const folded = foldBatchNorm(w, b, ...bn, 1e-3);
      expect(folded.weight.shape).toEqual([5, 3, 3, 3]);
      expect(folded.bias.shape).toEqual([5]);
      expectClose(conv(folded.weight, folded.bias, v), convThenBn(w, b, v, bn, 1e-3), { atol: 1e-5 });
    });
  }

  it('checks shapes', () => {
    const bn = bnParams(4, 40);
    expect(() => foldBatchNorm(Tensor.zeros([5, 2]), undefined, ...bn, 1e-5)).toThrow(/foldBatchNorm: scale has shape \[4\], expected \[5\]/);
    expect(() => foldBatchNorm(Tensor.zeros([4, 2]), Tensor.zeros([3]), ...bn, 1e-5)).toThrow(ShapeError);
  });
});

describe('ONNX BatchNormalization adapter', () => {
  const node = (attrs: [string, number][], outputs = ['y'], opset = 15) =>
    new OnnxNode('bn', 'BatchNormalization', '', opset, ['x', 's', 'b', 'm', 'v'], outputs, new Map(attrs));
  const x = randomTensor([2, 3, 4, 4], 50);
  const params = bnParams(3, 51);

  it('uses the node epsilon, 1e-5 by default', () => {
    const run = (n: OnnxNode) => normalizationOps.BatchNormalization!.compile(n)([x, ...params])[0]!;
    expectClose(run(node([])), batchNorm(x, ...params, { epsilon: 1e-5 }));
    expectClose(run(node([['epsilon', 1e-3]])), batchNorm(x, ...params, { epsilon: 1e-3 }));
  });

  it('rejects extra outputs without training mode, and training before opset 14', () => {
    const compile = (n: OnnxNode) => normalizationOps.BatchNormalization!.compile(n);
    expect(() => compile(node([], ['y', 'mean', 'var']))).toThrow(/only valid with training_mode=1/);
    expect(() => compile(node([['training_mode', 2]], ['y', 'mean', 'var']))).toThrow(/training_mode must be 0 or 1/);
    expect(() => compile(node([], ['y', 'mean', 'var', 'saved_mean', 'saved_var'], 9))).toThrow(/from opset 14/);
    expect(() => compile(node([['training_mode', 1]], ['y', 'mean', 'var'], 9))).toThrow(OnnxError);
    expect(() => compile(node([['spatial', 0]], ['y'], 8))).toThrow(OnnxError);
    expect(() => compile(node([], ['y', '', '']))).not.toThrow();
    expect(() => compile(node([['training_mode', 1], ['momentum', Number.NaN]], ['y', 'mean', 'var']))).toThrow(/momentum/);
  });

  it('training mode: Y from the batch statistics, running stats blended with momentum (biased variance)', () => {
    const compile = (n: OnnxNode) => normalizationOps.BatchNormalization!.compile(n);
    const { x: xb, scale, bias } = trainingExample();
    const runMean = Tensor.fromArray([0, 10], [2]);
    const runVar = Tensor.fromArray([1, 1], [2]);
    // Batch mean [4, 1], biased var [5, 1]; momentum 0.9 keeps 90% of the old value.
    const outs = compile(node([['training_mode', 1], ['epsilon', 0]], ['y', 'mean', 'var']))([xb, scale, bias, runMean, runVar]);
    expect(outs).toHaveLength(3);
    expectClose(outs[0]!, trainingExample().y, { atol: 1e-6 });
    expectClose(outs[1]!, [0.4, 9.1], { atol: 1e-7 });
    expectClose(outs[2]!, [0.9 + 0.5, 0.9 + 0.1], { atol: 1e-7 });
    const m5 = compile(node([['training_mode', 1], ['epsilon', 0], ['momentum', 0.5]], ['y', 'mean', 'var']))([xb, scale, bias, runMean, runVar]);
    expectClose(m5[1]!, [2, 5.5], { atol: 1e-7 });
    expectClose(m5[2]!, [3, 1], { atol: 1e-7 });
    // Only Y requested: still the batch statistics, not the running ones.
    const onlyY = compile(node([['training_mode', 1], ['epsilon', 0]], ['y', '', '']))([xb, scale, bias, runMean, runVar]);
    expectClose(onlyY[0]!, trainingExample().y, { atol: 1e-6 });
    // Running stats of the wrong size are a shape error naming them.
    expect(() => compile(node([['training_mode', 1]], ['y', 'mean', 'var']))([xb, scale, bias, Tensor.zeros([3]), runVar])).toThrow(
      /running_mean has shape \[3\], expected \[2\]/,
    );
  });
});

/**
 * x: [N=2, C=2, 2]. Channel 0 holds 1, 3 | 5, 7: mean 4, biased variance (9+1+1+9)/4 = 5.
 * Channel 1 holds 0, 0 | 2, 2: mean 1, variance 1. With scale [1, 2], bias [0, 1], epsilon 0:
 * channel 0 → (x − 4)/√5, channel 1 → 2·(x − 1) + 1.
 */
function trainingExample() {
  const r5 = Math.sqrt(5);
  return {
    x: Tensor.fromArray([1, 3, 0, 0, 5, 7, 2, 2], [2, 2, 2]),
    scale: Tensor.fromArray([1, 2], [2]),
    bias: Tensor.fromArray([0, 1], [2]),
    y: [-3 / r5, -1 / r5, -1, -1, 1 / r5, 3 / r5, 3, 3],
  };
}

describe('BatchNormalization in training mode', () => {
  it('normalises with the batch mean and biased variance (by hand)', () => {
    const { x, scale, bias, y } = trainingExample();
    for (const backend of [cpuBackend, referenceBackend]) {
      expectClose(apply(batchNormTrainingCard, [x, scale, bias], { epsilon: 0 }, backend), y, { atol: 1e-6 });
    }
    const out = batchNormTrain(x, scale, bias, { epsilon: 0 });
    expectClose(out.y, y, { atol: 1e-6 });
    expect(out.mean.shape).toEqual([2]);
    expect(out.mean.dtype).toBe('float32');
    expect(out.mean.toArray()).toEqual([4, 1]);
    expect(out.variance.toArray()).toEqual([5, 1]);
    // Epsilon joins the batch variance: channel 1 becomes 2·(x − 1)/√2 + 1.
    const eps1 = batchNormTrain(x, scale, bias, { epsilon: 1 });
    expectClose(eps1.y.toArray().filter((_, i) => Math.floor(i / 2) % 2 === 1), [1 - Math.SQRT2, 1 - Math.SQRT2, 1 + Math.SQRT2, 1 + Math.SQRT2], {
      atol: 1e-6,
    });
    expect(eps1.variance.toArray()).toEqual([5, 1]);
  });

  it('is the inference card fed with the batch statistics', () => {
    const x = randomTensor([3, 4, 5, 6], 60);
    const [scale, bias] = bnParams(4, 61);
    const { y, mean, variance } = batchNormTrain(x, scale, bias, { epsilon: 1e-3 });
    expectClose(y, batchNorm(x, scale, bias, mean, variance, { epsilon: 1e-3 }), { atol: 1e-6 });
    // Every channel of the output has mean bias and variance scale²·var/(var + eps).
    const s = batchStats(y);
    for (let c = 0; c < 4; c++) {
      expect(s.mean[c]).toBeCloseTo(bias.dataSync()[c]!, 5);
      const v = variance.dataSync()[c]!;
      expect(s.variance[c]).toBeCloseTo((scale.dataSync()[c]! ** 2 * v) / (v + 1e-3), 5);
    }
    expect(s.count).toBe(3 * 30);
  });

  for (const shape of [[4, 3], [2, 3, 5], [2, 5, 4, 3], [1, 2, 3, 4, 5], [3, 6, 1, 1]]) {
    it(`cpu matches reference on ${JSON.stringify(shape)}`, () => {
      const x = randomTensor(shape, 70);
      const [scale, bias] = bnParams(shape[1]!, 71);
      const ref = apply(batchNormTrainingCard, [x, scale, bias], { epsilon: 1e-5 }, referenceBackend);
      expectClose(apply(batchNormTrainingCard, [x, scale, bias], { epsilon: 1e-5 }, cpuBackend), ref, { atol: 1e-5, rtol: 1e-5 });
    });
  }

  it('keeps a small variance exact under a large mean (float64, two passes)', () => {
    // 1000 ± 0.5 alternating: mean 1000, variance exactly 0.25.
    const n = 4096;
    const x = Tensor.fromArray(Array.from({ length: n }, (_, i) => 1000 + (i % 2 ? 0.5 : -0.5)), [n / 64, 1, 64]);
    const { mean, variance } = batchNormTrain(x, Tensor.ones([1]), Tensor.zeros([1]), { epsilon: 0 });
    expect(mean.toArray()).toEqual([1000]);
    expect(variance.toArray()).toEqual([0.25]);
  });

  it('updates running statistics: ONNX momentum, biased variance unless asked for PyTorch’s unbiased one', () => {
    const runMean = Tensor.fromArray([0, 10], [2]);
    const runVar = Tensor.fromArray([1, 1], [2]);
    const batchMean = Tensor.fromArray([4, 1], [2]);
    const batchVar = Tensor.fromArray([5, 1], [2]);
    const onnx = updateRunningStats(runMean, runVar, batchMean, batchVar, { momentum: 0.9 });
    expectClose(onnx.mean, [0.4, 9.1], { atol: 1e-7 });
    expectClose(onnx.variance, [1.4, 1.0], { atol: 1e-7 });
    // PyTorch momentum 0.1 = ONNX 0.9, and var·n/(n − 1) with n = 4: 20/3 and 4/3.
    const torch = updateRunningStats(runMean, runVar, batchMean, batchVar, { momentum: 0.9, unbiasedCount: 4 });
    expectClose(torch.mean, [0.4, 9.1], { atol: 1e-7 });
    expectClose(torch.variance, [0.9 + 2 / 3, 0.9 + 0.4 / 3], { atol: 1e-7 });
    expect(() => updateRunningStats(runMean, Tensor.ones([2, 1]), batchMean, batchVar, { momentum: 0.9 })).toThrow(/running_var has shape \[2, 1\]/);
  });

  it('rejects parameters that do not match the channels', () => {
    const x = Tensor.zeros([2, 3, 4]);
    expect(() => batchNormTrain(x, Tensor.ones([4]), Tensor.zeros([3]))).toThrow(/BatchNormalizationTraining: scale has shape \[4\], expected \[3\]/);
    expect(() => batchNormTrain(x, Tensor.ones([3]), Tensor.zeros([1]))).toThrow(/bias has shape \[1\]/);
    expect(() => batchNormTrain(Tensor.zeros([3]), Tensor.ones([3]), Tensor.zeros([3]))).toThrow(ShapeError);
  });
});
