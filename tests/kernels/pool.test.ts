import { describe, expect, it } from 'vitest';
import { OnnxError, ShapeError } from '../../src/core/errors.js';
import { type OpCard, apply, cpuBackend, referenceBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { type AttrValue, OnnxNode } from '../../src/io/onnx/node.js';
import { poolOps } from '../../src/io/onnx/ops/pool.js';
import {
  type PoolAttrs,
  averagePool,
  averagePoolCard,
  globalAveragePool,
  globalMaxPool,
  maxPool,
  maxPoolCard,
  maxPoolIndicesCard,
  maxPoolWithIndices,
} from '../../src/kernels/pool.js';
import { expectClose, randomTensor } from '../helpers.js';

function bothBackends<A>(card: OpCard<A>, inputs: Tensor[], attrs: A): Tensor {
  const ref = apply(card, inputs, attrs, referenceBackend);
  const fast = apply(card, inputs, attrs, cpuBackend);
  expect(ref.shape).toEqual(card.shape(inputs.map((t) => t.shape), attrs));
  expectClose(fast, ref, { atol: 1e-6, rtol: 1e-6 });
  return ref;
}

const range = (shape: number[], from = 1) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromArray(Array.from({ length: n }, (_, i) => i + from), shape);
};

describe('MaxPool and AveragePool: cpu against reference', () => {
  const cases: [string, number[], PoolAttrs][] = [
    ['k3 s1 p1', [2, 3, 7, 9], { kernel: [3, 3], pads: [1, 1, 1, 1] }],
    ['k2 s2 (the classic)', [1, 4, 8, 8], { kernel: [2, 2], strides: [2, 2] }],
    ['1×1 spatial, k3 p1', [2, 3, 1, 1], { kernel: [3, 3], pads: [1, 1, 1, 1] }],
    ['kernel larger than input, with pads', [1, 2, 2, 3], { kernel: [4, 4], pads: [1, 1, 1, 1] }],
    ['stride 2, dilation 2', [1, 2, 9, 11], { kernel: [3, 3], strides: [2, 2], dilations: [2, 2], pads: [2, 1, 2, 1] }],
    ['dilation 2 only', [1, 3, 9, 9], { kernel: [2, 2], dilations: [2, 2] }],
    ['ceil_mode', [1, 2, 8, 8], { kernel: [3, 3], strides: [2, 2], ceilMode: true }],
    ['ceil_mode with pads', [1, 2, 7, 6], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true }],
    ['ceil_mode, stride 3, end pad', [1, 1, 6, 10], { kernel: [2, 2], strides: [3, 3], pads: [0, 0, 1, 1], ceilMode: true }],
    ['asymmetric pads', [1, 2, 5, 6], { kernel: [3, 2], pads: [0, 1, 2, 0] }],
    ['SAME_UPPER s2', [1, 1, 6, 7], { kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER' }],
    ['SAME_LOWER s2', [1, 2, 5, 6], { kernel: [2, 2], strides: [2, 2], autoPad: 'SAME_LOWER' }],
    ['VALID ignores pads', [1, 2, 5, 6], { kernel: [2, 3], pads: [1, 1, 1, 1], autoPad: 'VALID' }],
    ['1-D', [2, 3, 10], { kernel: [3], strides: [2], pads: [1, 1], ceilMode: true }],
    ['1-D dilated', [1, 2, 12], { kernel: [3], dilations: [3], pads: [2, 0] }],
    ['3-D', [1, 2, 5, 6, 7], { kernel: [2, 3, 2], strides: [2, 1, 2], pads: [1, 0, 1, 0, 1, 1] }],
    ['3-D ceil', [1, 1, 4, 5, 5], { kernel: [2, 2, 2], strides: [2, 2, 2], ceilMode: true }],
  ];
  for (const [what, shape, attrs] of cases) {
    it(`MaxPool ${what}`, () => {
      bothBackends(maxPoolCard, [randomTensor(shape, 3)], attrs);
    });
    it(`MaxPool Indices ${what}, both storage orders`, () => {
      const x = randomTensor(shape, 3);
      const y = maxPool(x, attrs);
      for (const storageOrder of [0, 1] as const) {
        const ref = apply(maxPoolIndicesCard, [x], { ...attrs, storageOrder }, referenceBackend);
        const fast = apply(maxPoolIndicesCard, [x], { ...attrs, storageOrder }, cpuBackend);
        expect(ref.dtype).toBe('int64');
        expect(fast.dtype).toBe('int64');
        expect(fast.shape).toEqual(y.shape);
        expect(fast.toArray()).toEqual(ref.toArray());
      }
      // Row-major indices are flat offsets into x that hold the max.
      const idx = apply(maxPoolIndicesCard, [x], attrs, cpuBackend).toArray();
      expect(idx.map((i) => x.dataSync()[i]!)).toEqual(y.toArray());
    });
    for (const countIncludePad of [false, true]) {
      it(`AveragePool ${what}, count_include_pad ${countIncludePad}`, () => {
        bothBackends(averagePoolCard, [randomTensor(shape, 4)], { ...attrs, countIncludePad });
      });
    }
  }

  it('3-D pooling of [1,3,32,32,32] (as in the ONNX node tests)', () => {
    const x = randomTensor([1, 3, 32, 32, 32], 5);
    expect(maxPool(x, { kernel: [2, 2, 2] }).shape).toEqual([1, 3, 31, 31, 31]);
    bothBackends(averagePoolCard, [x], { kernel: [2, 2, 2] });
  });
});

describe('pooling by hand', () => {
  it('k2 s2 max and average on 0…15', () => {
    const x = range([1, 1, 4, 4], 0);
    expect(maxPool(x, { kernel: [2, 2], strides: [2, 2] }).toArray()).toEqual([5, 7, 13, 15]);
    expect(averagePool(x, { kernel: [2, 2], strides: [2, 2] }).toArray()).toEqual([2.5, 4.5, 10.5, 12.5]);
  });

  it('padding is excluded from the average by default, included on request', () => {
    const x = range([1, 1, 3, 3]); // 1…9
    const attrs: PoolAttrs = { kernel: [3, 3], pads: [1, 1, 1, 1] };
    // Corner: (1+2+4+5)/4 excluding pads, /9 including; edge: (1+2+3+4+5+6)/6; centre: 45/9.
    expectClose(averagePool(x, attrs), [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7]);
    expectClose(averagePool(x, { ...attrs, countIncludePad: true }), [12 / 9, 21 / 9, 16 / 9, 27 / 9, 5, 33 / 9, 24 / 9, 39 / 9, 28 / 9]);
    // Padded taps never win a max, even against negative values.
    const negative = Tensor.fromArray([-5, -3, -4, -1], [1, 1, 2, 2]);
    expect(maxPool(negative, { kernel: [3, 3], pads: [1, 1, 1, 1] }).toArray()).toEqual([-1, -1, -1, -1]);
  });

  it('ceil_mode (ONNX test_maxpool_2d_ceil)', () => {
    const x = range([1, 1, 4, 4]);
    expect(maxPool(x, { kernel: [3, 3], strides: [2, 2], ceilMode: true }).toArray()).toEqual([11, 12, 15, 16]);
    expect(maxPool(x, { kernel: [3, 3], strides: [2, 2] }).toArray()).toEqual([11]);
  });

  it('ceil_mode drops a last window that would start in the end padding', () => {
    // Width 6, k2 s3, end pad 1: windows start at 0 and 3; one at 6 would hold only padding.
    const x = range([1, 1, 1, 6]);
    const y = maxPool(x, { kernel: [1, 2], strides: [1, 3], pads: [0, 0, 0, 1], ceilMode: true });
    expect(y.shape).toEqual([1, 1, 1, 2]);
    expect(y.toArray()).toEqual([2, 5]);
  });

  it('ceil_mode with count_include_pad counts end padding but not the overhang past it', () => {
    // Width 6 (values 1…6), k3 s2, pads 1/1, ceil: windows start at −1, 1, 3, 5; the last covers
    // 6, one pad and one tap past the pad.
    const x = range([1, 1, 1, 6]);
    const attrs: PoolAttrs = { kernel: [1, 3], strides: [1, 2], pads: [0, 1, 0, 1], ceilMode: true };
    for (const backend of [cpuBackend, referenceBackend]) {
      expect(apply(averagePoolCard, [x], attrs, backend).toArray()).toEqual([1.5, 3, 5, 6]);
      expect(apply(averagePoolCard, [x], { ...attrs, countIncludePad: true }, backend).toArray()).toEqual([1, 3, 5, 3]);
    }
  });

  it('dilation 2 (ONNX test_maxpool_2d_dilations)', () => {
    const x = range([1, 1, 4, 4]);
    expect(maxPool(x, { kernel: [2, 2], dilations: [2, 2] }).toArray()).toEqual([11, 12, 15, 16]);
  });

  it('MaxPool on uint8 keeps the dtype', () => {
    const x = Tensor.fromArray([3, 250, 7, 1, 0, 9, 200, 4, 5], [1, 1, 3, 3], 'uint8');
    for (const backend of [cpuBackend, referenceBackend]) {
      const y = apply(maxPoolCard, [x], { kernel: [2, 2] }, backend);
      expect(y.dtype).toBe('uint8');
      expect(y.toArray()).toEqual([250, 250, 200, 9]);
    }
  });
});

describe('MaxPool Indices by hand', () => {
  const indices = (x: Tensor, attrs: PoolAttrs, storageOrder: 0 | 1 = 0) =>
    [cpuBackend, referenceBackend].map((b) => apply(maxPoolIndicesCard, [x], { ...attrs, storageOrder }, b).toArray());

  it('k2 s2 on 1…25 (ONNX test_maxpool_with_argmax_2d_precomputed_strides)', () => {
    const x = range([1, 1, 5, 5]);
    // The maxes 7, 9, 17, 19 sit at (h, w) = (1, 1), (1, 3), (3, 1), (3, 3).
    const { y, indices: idx } = maxPoolWithIndices(x, { kernel: [2, 2], strides: [2, 2] });
    expect(y.toArray()).toEqual([7, 9, 17, 19]);
    expect(idx.dtype).toBe('int64');
    expect(idx.shape).toEqual([1, 1, 2, 2]);
    expect(idx.toArray()).toEqual([6, 8, 16, 18]); // h·5 + w
    const col = maxPoolWithIndices(x, { kernel: [2, 2], strides: [2, 2], storageOrder: 1 }).indices;
    expect(col.toArray()).toEqual([6, 16, 8, 18]); // h + w·5
  });

  it('counts whole planes before the position, in both orders', () => {
    // [1, 2, 2, 3] holding 1…12, k2: plane 0's maxes 5, 6 at (1, 1), (1, 2); plane 1 starts at 6.
    const x = range([1, 2, 2, 3]);
    const attrs: PoolAttrs = { kernel: [2, 2] };
    expect(maxPool(x, attrs).toArray()).toEqual([5, 6, 11, 12]);
    for (const got of indices(x, attrs)) expect(got).toEqual([4, 5, 10, 11]); // 6p + 3h + w
    for (const got of indices(x, attrs, 1)) expect(got).toEqual([3, 5, 9, 11]); // 6p + h + 2w
  });

  it('ties go to the first max in row-major scan order, in either storage order', () => {
    // [[0, 5], [5, 0]]: the first 5 scanned is (0, 1): row-major 1, column-major 0 + 1·2 = 2.
    const x = Tensor.fromArray([0, 5, 5, 0], [1, 1, 2, 2]);
    for (const got of indices(x, { kernel: [2, 2] })) expect(got).toEqual([1]);
    for (const got of indices(x, { kernel: [2, 2] }, 1)) expect(got).toEqual([2]);
    const flat = Tensor.ones([1, 1, 2, 3]);
    for (const got of indices(flat, { kernel: [2, 2] })) expect(got).toEqual([0, 1]);
  });

  it('padding never wins, even against negative values; an all-padding window gets −1', () => {
    const negative = Tensor.fromArray([-5, -3, -4, -1], [1, 1, 2, 2]);
    for (const got of indices(negative, { kernel: [3, 3], pads: [1, 1, 1, 1] })) expect(got).toEqual([3, 3, 3, 3]);
    // A 1×1 input, k1 with pads 1: only the centre window touches the input.
    const one = Tensor.fromArray([-7], [1, 1, 1, 1]);
    const attrs: PoolAttrs = { kernel: [1, 1], pads: [1, 1, 1, 1] };
    for (const got of indices(one, attrs)) expect(got).toEqual([-1, -1, -1, -1, 0, -1, -1, -1, -1]);
    expect(maxPool(one, attrs).toArray()[4]).toBe(-7);
  });

  it('NaN never wins; −∞ and all-NaN windows point at their first input tap', () => {
    const x = Tensor.fromArray([Number.NaN, 2, Number.NaN, 1, -Infinity, -Infinity, Number.NaN, Number.NaN], [1, 1, 8]);
    for (const got of indices(x, { kernel: [2], strides: [2] })) expect(got).toEqual([1, 3, 4, 6]);
  });

  it('1-D (either order is the same) and 3-D column-major (h + w·H + d·H·W)', () => {
    const x1 = Tensor.fromArray([3, 1, 4, 1, 5], [1, 1, 5]);
    for (const order of [0, 1] as const) for (const got of indices(x1, { kernel: [2] }, order)) expect(got).toEqual([0, 2, 2, 4]);
    // k1 on [1, 1, 2, 3, 2]: output i is input i, at (a, b, c) = row-major a·6 + b·2 + c.
    const x3 = range([1, 1, 2, 3, 2]);
    for (const got of indices(x3, { kernel: [1, 1, 1] })) expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // Column-major a + 2b + 6c.
    for (const got of indices(x3, { kernel: [1, 1, 1] }, 1)) expect(got).toEqual([0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11]);
  });

  it('uint8 input gives int64 indices', () => {
    const x = Tensor.fromArray([3, 250, 7, 1, 0, 9, 200, 4, 5], [1, 1, 3, 3], 'uint8');
    for (const got of indices(x, { kernel: [2, 2] })) expect(got).toEqual([1, 1, 6, 5]);
  });
});

describe('global pools', () => {
  it('average and max per plane, any spatial rank', () => {
    const x = Tensor.fromArray([1, 2, 3, 4, -1, -2, -3, -6], [1, 2, 2, 2]);
    const avg = globalAveragePool(x);
    expect(avg.shape).toEqual([1, 2, 1, 1]);
    expect(avg.toArray()).toEqual([2.5, -3]);
    expect(globalMaxPool(x).toArray()).toEqual([4, -1]);
    expect(globalAveragePool(x.reshape([1, 2, 4])).shape).toEqual([1, 2, 1]);
    expect(globalMaxPool(x.reshape([1, 1, 2, 2, 2])).shape).toEqual([1, 1, 1, 1, 1]);
    const one = randomTensor([3, 7, 1, 1], 6);
    expect(globalAveragePool(one).toArray()).toEqual(one.toArray());
  });

  it('accumulates long planes in float64', () => {
    const x = Tensor.full([1, 2, 300, 300], 0.1);
    expectClose(globalAveragePool(x), [Math.fround(0.1), Math.fround(0.1)], { atol: 0, rtol: 1e-7 });
  });
});

describe('pool shape errors', () => {
  it('names the op and the offending dims', () => {
    expect(() => maxPool(Tensor.zeros([3, 4]), { kernel: [2] })).toThrow(/MaxPool: input must be \[N, C, spatial…\], got \[3, 4\]/);
    expect(() => maxPool(Tensor.zeros([1, 1, 4, 4]), { kernel: [2] })).toThrow(/MaxPool: kernel_shape has 1 values, expected 2/);
    expect(() => averagePool(Tensor.zeros([1, 1, 3, 3]), { kernel: [5, 5] })).toThrow(
      /AveragePool: window of 5 .* does not fit spatial axis 0 of size 3/,
    );
    expect(() => maxPool(Tensor.zeros([1, 1, 4, 4]), { kernel: [2, 2], strides: [0, 1] })).toThrow(ShapeError);
    expect(() => globalAveragePool(Tensor.zeros([4, 4]))).toThrow(ShapeError);
  });
});

describe('ONNX pool adapters', () => {
  const node = (opType: string, attrs: [string, AttrValue][], outputs = ['y']) =>
    new OnnxNode('pool', opType, '', 12, ['x'], outputs, new Map(attrs));
  const run = (n: OnnxNode, x: Tensor) => poolOps[n.opType]!.compile(n)([x])[0]!;

  it('MaxPool with kernel, strides, pads, ceil_mode', () => {
    const x = randomTensor([1, 2, 7, 7], 7);
    const n = node('MaxPool', [
      ['kernel_shape', [3, 3]],
      ['strides', [2, 2]],
      ['pads', [1, 1, 1, 1]],
      ['ceil_mode', 1],
    ]);
    expectClose(run(n, x), maxPool(x, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true }));
  });

  it('AveragePool with count_include_pad and auto_pad', () => {
    const x = randomTensor([1, 2, 5, 6], 8);
    const n = node('AveragePool', [
      ['kernel_shape', [3, 3]],
      ['pads', [1, 1, 1, 1]],
      ['count_include_pad', 1],
    ]);
    expectClose(run(n, x), averagePool(x, { kernel: [3, 3], pads: [1, 1, 1, 1], countIncludePad: true }));
    const same = node('AveragePool', [
      ['kernel_shape', [2, 2]],
      ['strides', [2, 2]],
      ['auto_pad', 'SAME_LOWER'],
    ]);
    expect(run(same, x).shape).toEqual([1, 2, 3, 3]);
  });

  it('GlobalAveragePool', () => {
    const x = randomTensor([2, 3, 4, 5], 9);
    expectClose(run(node('GlobalAveragePool', []), x), globalAveragePool(x));
  });

  it('MaxPool with the Indices output, storage_order 0 and 1', () => {
    const x = range([1, 1, 5, 5]);
    const attrs: [string, AttrValue][] = [
      ['kernel_shape', [2, 2]],
      ['strides', [2, 2]],
    ];
    const outs = poolOps.MaxPool!.compile(node('MaxPool', attrs, ['y', 'idx']))([x]);
    expect(outs.map((t) => t.toArray())).toEqual([
      [7, 9, 17, 19],
      [6, 8, 16, 18],
    ]);
    expect(outs[1]!.dtype).toBe('int64');
    const col = poolOps.MaxPool!.compile(node('MaxPool', [...attrs, ['storage_order', 1]], ['y', 'idx']))([x]);
    expect(col[1]!.toArray()).toEqual([6, 16, 8, 18]);
    expect(poolOps.MaxPool!.compile(node('MaxPool', attrs, ['y', '']))([x])).toHaveLength(1);
  });

  it('rejects a bad storage_order, a bad auto_pad and bad window attributes at load', () => {
    expect(() => poolOps.MaxPool!.compile(node('MaxPool', [['kernel_shape', [2, 2]], ['storage_order', 2]], ['y', 'idx']))).toThrow(/storage_order must be 0/);
    expect(() => poolOps.MaxPool!.compile(node('MaxPool', [['kernel_shape', [2, 2]]], ['y', '']))).not.toThrow();
    expect(() => poolOps.MaxPool!.compile(node('MaxPool', [['kernel_shape', [2, 2]], ['auto_pad', 'SAME']]))).toThrow(OnnxError);
    expect(() => poolOps.MaxPool!.compile(node('MaxPool', []))).toThrow(/required attribute 'kernel_shape'/);
    expect(() => poolOps.AveragePool!.compile(node('AveragePool', [['kernel_shape', [2, 2]], ['strides', [2]]]))).toThrow(ShapeError);
  });
});
