import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/errors.js';
import { type OpCard, apply, cpuBackend, referenceBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { OnnxNode } from '../../src/io/onnx/node.js';
import { softmaxOps } from '../../src/io/onnx/ops/softmax.js';
import { type SoftmaxAttrs, logSoftmax, logSoftmaxCard, softmax, softmaxCard } from '../../src/kernels/softmax.js';
import { expectClose, randomTensor } from '../helpers.js';

const scaled = (shape: number[], seed: number, k: number) => Tensor.fromArray(randomTensor(shape, seed).toArray().map((v) => v * k), shape);

describe('Softmax and LogSoftmax: cpu against reference', () => {
  const cards: [string, OpCard<SoftmaxAttrs>][] = [
    ['Softmax', softmaxCard],
    ['LogSoftmax', logSoftmaxCard],
  ];
  const cases: [number[], number][] = [
    [[3, 4, 5], 0],
    [[3, 4, 5], 1],
    [[3, 4, 5], 2],
    [[3, 4, 5], -1],
    [[2, 1000], -1],
    [[2, 3, 7, 5], -3],
    [[7], 0],
    [[4, 1], 1],
    [[0, 3], 1],
  ];
  for (const [name, card] of cards) {
    for (const [shape, axis] of cases) {
      it(`${name} ${JSON.stringify(shape)} axis ${axis}`, () => {
        const x = scaled(shape, 1, 20);
        const ref = apply(card, [x], { axis }, referenceBackend);
        expectClose(apply(card, [x], { axis }, cpuBackend), ref, { atol: 1e-6, rtol: 1e-6 });
        expect(ref.shape).toEqual(x.shape);
      });
    }
  }
});

describe('softmax by hand', () => {
  it('matches known values and is shift-invariant (max subtracted)', () => {
    const p = [0.09003057317038046, 0.24472847105479764, 0.6652409557748218];
    expectClose(softmax(Tensor.fromArray([1, 2, 3], [1, 3])), p, { atol: 1e-7 });
    expectClose(softmax(Tensor.fromArray([1000, 1001, 1002], [1, 3])), p, { atol: 1e-7 });
    expectClose(softmax(Tensor.fromArray([-1000, -999, -998], [3], 'float64')), p, { atol: 1e-15 });
    expectClose(logSoftmax(Tensor.fromArray([1001, 1002, 1003], [3])), [-2.40760596444438, -1.4076059644443804, -0.40760596444438046], { atol: 1e-7 });
  });

  it('sums to one along the axis only', () => {
    const y = softmax(scaled([2, 3, 4], 2, 5), 1);
    for (let n = 0; n < 2; n++) {
      for (let w = 0; w < 4; w++) expect(y.get(n, 0, w) + y.get(n, 1, w) + y.get(n, 2, w)).toBeCloseTo(1, 6);
    }
  });

  it('rejects a bad axis and integer input', () => {
    expect(() => softmax(Tensor.zeros([2, 3]), 2)).toThrow(/Softmax: axis 2 is out of range for rank 2/);
    expect(() => logSoftmax(Tensor.zeros([2, 3]), -3)).toThrow(ShapeError);
    expect(() => softmax(Tensor.zeros([2], 'int32'))).toThrow(ValueError);
  });
});

describe('ONNX Softmax adapter', () => {
  const node = (opType: string, opset: number, axis?: number) =>
    new OnnxNode('s', opType, '', opset, ['x'], ['y'], new Map(axis === undefined ? [] : [['axis', axis]]));
  const run = (n: OnnxNode, x: Tensor) => softmaxOps[n.opType]!.compile(n)([x])[0]!;
  const x = scaled([2, 3, 4], 3, 3);

  it('opset ≥ 13: along axis, default −1', () => {
    expectClose(run(node('Softmax', 13), x), softmax(x, -1));
    expectClose(run(node('Softmax', 13, 1), x), softmax(x, 1));
    expectClose(run(node('LogSoftmax', 13, 0), x), logSoftmax(x, 0));
  });

  it('opset < 13: flattened to 2-D at axis, default 1', () => {
    // Default axis 1 on [2,3,4]: each batch item's 12 values form one distribution.
    const y = run(node('Softmax', 11), x);
    expect(y.shape).toEqual([2, 3, 4]);
    expectClose(y, softmax(x.reshape([2, 12]), 1).reshape([2, 3, 4]));
    expectClose(run(node('LogSoftmax', 11, 2), x), logSoftmax(x, 2));
    expectClose(run(node('Softmax', 11, 0), x), softmax(x.reshape([1, 24]), 1).reshape([2, 3, 4]));
    expect(() => run(node('Softmax', 11, 3), x)).toThrow(/axis 3 is out of range/);
  });
});
