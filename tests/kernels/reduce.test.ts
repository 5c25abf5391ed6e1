import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../src/core/errors.js';
import { type OpCard, apply, cpuBackend, referenceBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { OnnxNode, type AttrValue } from '../../src/io/onnx/node.js';
import { reduceOps } from '../../src/io/onnx/ops/reduce.js';
import {
  type ReduceAttrs,
  reduceMax,
  reduceMaxCard,
  reduceMean,
  reduceMeanCard,
  reduceMin,
  reduceMinCard,
  reduceSum,
  reduceSumCard,
} from '../../src/kernels/reduce.js';
import { expectClose, randomTensor } from '../helpers.js';

const cards: [string, OpCard<ReduceAttrs>][] = [
  ['ReduceSum', reduceSumCard],
  ['ReduceMean', reduceMeanCard],
  ['ReduceMax', reduceMaxCard],
  ['ReduceMin', reduceMinCard],
];

function bothBackends(card: OpCard<ReduceAttrs>, x: Tensor, attrs: ReduceAttrs, tol = { atol: 1e-6, rtol: 1e-6 }): Tensor {
  const ref = apply(card, [x], attrs, referenceBackend);
  const fast = apply(card, [x], attrs, cpuBackend);
  expect(ref.shape).toEqual(card.shape([x.shape], attrs));
  expectClose(fast, ref, tol);
  return ref;
}

describe('reductions: cpu against reference', () => {
  const shape = [2, 3, 4, 5];
  const x = randomTensor(shape, 1);
  // Every subset of the 4 axes (the empty one meaning all axes), both keepdims.
  for (const [name, card] of cards) {
    for (let bits = 0; bits < 16; bits++) {
      const axes = [0, 1, 2, 3].filter((a) => bits & (1 << a));
      for (const keepdims of [true, false]) {
        it(`${name} axes [${axes}] keepdims ${keepdims}`, () => {
          bothBackends(card, x, { axes, keepdims });
        });
      }
    }
    it(`${name} with negative axes, size-1 dims and a rank-0 input`, () => {
      bothBackends(card, randomTensor([3, 1, 4, 1, 2], 2), { axes: [-1, 1, -3], keepdims: true });
      bothBackends(card, randomTensor([3, 1, 4, 1, 2], 2), { axes: [0, 4], keepdims: false });
      bothBackends(card, Tensor.scalar(3), { axes: [], keepdims: true });
    });
  }
});

describe('reductions by hand', () => {
  const x = Tensor.fromArray([1, 2, 3, 4], [2, 2]);

  it('mean, sum, max, min with keepdims and axes', () => {
    const m = reduceMean(x, [1], false);
    expect(m.shape).toEqual([2]);
    expect(m.toArray()).toEqual([1.5, 3.5]);
    const all = reduceMean(x);
    expect(all.shape).toEqual([1, 1]);
    expect(all.toArray()).toEqual([2.5]);
    expect(reduceSum(x, [0]).toArray()).toEqual([4, 6]);
    expect(reduceSum(x, [0]).shape).toEqual([1, 2]);
    expect(reduceMax(x, [-1], false).toArray()).toEqual([2, 4]);
    expect(reduceMin(x, [], false).shape).toEqual([]);
    expect(reduceMin(x, [], false).toArray()).toEqual([1]);
  });

  it('noop_with_empty_axes returns the input unchanged', () => {
    const y = reduceSum(x, [], true, true);
    expect(y.shape).toEqual([2, 2]);
    expect(y.toArray()).toEqual([1, 2, 3, 4]);
  });

  it('integer inputs keep their dtype (a mean truncates)', () => {
    const i = Tensor.fromArray([1, 2, 7, 8], [2, 2], 'int32');
    for (const backend of [cpuBackend, referenceBackend]) {
      const mean = apply(reduceMeanCard, [i], { axes: [1], keepdims: false }, backend);
      expect(mean.dtype).toBe('int32');
      expect(mean.toArray()).toEqual([1, 7]);
      expect(apply(reduceSumCard, [Tensor.fromArray([200, 100], [2], 'uint8')], { axes: [], keepdims: false }, backend).toArray()).toEqual([44]);
      expect(apply(reduceMaxCard, [Tensor.fromArray([3, 250, 7], [3], 'uint8')], { axes: [0], keepdims: false }, backend).toArray()).toEqual([250]);
    }
  });

  it('long reductions accumulate in float64', () => {
    // 0.1 (as float32) summed 100 000 times: a float32 running sum drifts by ~1e-3 relative.
    const v = Math.fround(0.1);
    const long = Tensor.full([2, 100_000], v);
    for (const backend of [cpuBackend, referenceBackend]) {
      expectClose(apply(reduceMeanCard, [long], { axes: [1], keepdims: false }, backend), [v, v], { atol: 0, rtol: 1e-7 });
      expectClose(apply(reduceSumCard, [long], { axes: [1], keepdims: false }, backend), [v * 1e5, v * 1e5], { atol: 0, rtol: 1e-7 });
      // Reduced axis outside a kept one (the row-accumulator path).
      const cols = Tensor.full([5000, 3], v);
      expectClose(apply(reduceMeanCard, [cols], { axes: [0], keepdims: true }, backend), [v, v, v], { atol: 0, rtol: 1e-7 });
    }
    const x = randomTensor([3, 1500, 4], 5);
    bothBackends(reduceMeanCard, x, { axes: [1], keepdims: true });
    bothBackends(reduceSumCard, x, { axes: [0, 1], keepdims: false }, { atol: 1e-6, rtol: 1e-6 });
  });

  it('rejects bad and repeated axes', () => {
    expect(() => reduceMean(x, [2])).toThrow(/ReduceMean: axis 2 is out of range for rank 2/);
    expect(() => reduceSum(x, [1, -1])).toThrow(/ReduceSum: axis -1 appears twice/);
    expect(() => reduceMax(x, [0.5])).toThrow(ShapeError);
  });
});

describe('ONNX reduce adapters', () => {
  const node = (opType: string, opset: number, inputs: string[], attrs: [string, AttrValue][] = []) =>
    new OnnxNode('r', opType, '', opset, inputs, ['y'], new Map(attrs));
  const run = (n: OnnxNode, inputs: (Tensor | undefined)[]) => reduceOps[n.opType]!.compile(n)(inputs)[0]!;
  const x = randomTensor([2, 3, 4, 5], 7);
  const axes = (v: number[]) => Tensor.fromArray(v, [v.length], 'int64');

  it('axes as attribute (ReduceMean before opset 18), keepdims default 1', () => {
    const y = run(node('ReduceMean', 13, ['x'], [['axes', [2, 3]]]), [x]);
    expect(y.shape).toEqual([2, 3, 1, 1]);
    expectClose(y, reduceMean(x, [2, 3], true));
    expectClose(run(node('ReduceMean', 13, ['x'], [['axes', [-2, -1]], ['keepdims', 0]]), [x]), reduceMean(x, [2, 3], false));
    expectClose(run(node('ReduceMean', 13, ['x']), [x]), reduceMean(x));
    expectClose(run(node('ReduceMax', 13, ['x'], [['axes', [0]]]), [x]), reduceMax(x, [0]));
  });

  it('axes as input (opset 18; ReduceSum from 13), noop_with_empty_axes', () => {
    expectClose(run(node('ReduceMean', 18, ['x', 'axes']), [x, axes([1])]), reduceMean(x, [1]));
    expectClose(run(node('ReduceSum', 13, ['x', 'axes']), [x, axes([-1])]), reduceSum(x, [-1]));
    expectClose(run(node('ReduceSum', 13, ['x']), [x, undefined]), reduceSum(x));
    expectClose(run(node('ReduceSum', 13, ['x', ''], [['noop_with_empty_axes', 1]]), [x, undefined]), x);
    expectClose(run(node('ReduceMin', 18, ['x', 'axes'], [['keepdims', 0]]), [x, axes([0, 2])]), reduceMin(x, [0, 2], false));
  });
});
