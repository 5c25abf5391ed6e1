import { describe, expect, it } from 'vitest';
import type { DType } from '../../src/core/dtype.js';
import { OnnxError, ShapeError, ValueError } from '../../src/core/errors.js';
import { cpuBackend, referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { type AttrValue, OnnxNode } from '../../src/io/onnx/node.js';
import { movementOps } from '../../src/io/onnx/ops/movement.js';
import {
  concat,
  flatten,
  gather,
  identity,
  pad,
  reshape,
  shapeOf,
  squeeze,
  transpose,
  transposeCard,
  unsqueeze,
} from '../../src/kernels/movement.js';
import { Rng, randomTensor } from '../helpers.js';

const BACKENDS = [cpuBackend, referenceBackend];

/** 0, 1, 2, … in the given shape and dtype. */
function iota(shape: number[], dtype: DType = 'float32'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromArray(
    Array.from({ length: n }, (_, i) => i),
    shape,
    dtype,
  );
}

const t = (values: number[], shape: number[], dtype: DType = 'float32') => Tensor.fromArray(values, shape, dtype);

describe('Reshape', () => {
  it('infers -1, copies 0 dims and shares the data', () => {
    const x = iota([2, 3, 4]);
    const y = reshape(x, [0, -1]);
    expect(y.shape).toEqual([2, 12]);
    expect(y.dataSync()).toBe(x.dataSync());
    expect(reshape(x, [4, 0, 2]).shape).toEqual([4, 3, 2]);
    expect(reshape(x, [-1]).toArray()).toEqual(x.toArray());
  });

  it('with allowzero a 0 is an empty dim', () => {
    expect(reshape(Tensor.zeros([0, 3]), [3, 0], true).shape).toEqual([3, 0]);
    expect(reshape(Tensor.zeros([0, 3]), [0, 3]).shape).toEqual([0, 3]);
  });

  it('rejects impossible targets', () => {
    const x = iota([2, 3]);
    expect(() => reshape(x, [4, 2])).toThrow(ShapeError);
    expect(() => reshape(x, [4, 2])).toThrow(/6 elements cannot become \[4, 2\]/);
    expect(() => reshape(x, [-1, -1])).toThrow(/more than one -1/);
    expect(() => reshape(x, [4, -1])).toThrow(/cannot infer/);
    expect(() => reshape(x, [1, 1, 0])).toThrow(/dim 2 is 0/);
    expect(() => reshape(x, [-2, -3])).toThrow(/dim 0 is -2/);
    expect(() => reshape(Tensor.zeros([0, 3]), [0, -1], true)).toThrow(/allowzero/);
  });

  it('keeps the dtype', () => {
    const y = reshape(iota([6], 'int64'), [3, 2]);
    expect(y.dtype).toBe('int64');
    expect(y.get(2, 1)).toBe(5);
  });
});

describe('Flatten', () => {
  it('splits the dims at axis', () => {
    const x = iota([2, 3, 4]);
    expect(flatten(x).shape).toEqual([2, 12]);
    expect(flatten(x, 0).shape).toEqual([1, 24]);
    expect(flatten(x, 3).shape).toEqual([24, 1]);
    expect(flatten(x, -1).shape).toEqual([6, 4]);
    expect(flatten(x, -3).shape).toEqual([1, 24]);
    expect(flatten(x, 2).toArray()).toEqual(x.toArray());
  });

  it('rejects an axis outside [-rank, rank]', () => {
    expect(() => flatten(iota([2, 3]), 3)).toThrow(ShapeError);
    expect(() => flatten(iota([2, 3]), -3)).toThrow(/axis -3 is out of range/);
  });
});

describe('Transpose', () => {
  for (const backend of BACKENDS) {
    describe(backend.name, () => {
      const run = <T>(fn: () => T) => withBackend(backend, fn);

      it('transposes a matrix', () => {
        const y = run(() => transpose(t([1, 2, 3, 4, 5, 6], [2, 3])));
        expect(y.shape).toEqual([3, 2]);
        expect(y.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
      });

      it('reverses the axes by default', () => {
        const y = run(() => transpose(iota([2, 3, 4])));
        expect(y.shape).toEqual([4, 3, 2]);
        expect(y.get(3, 1, 0)).toBe(0 * 12 + 1 * 4 + 3);
        expect(y.get(1, 2, 1)).toBe(1 * 12 + 2 * 4 + 1);
      });

      it('moves NCHW to NHWC and back', () => {
        // x[n][c][h][w] = 1000n + 100c + 10h + w
        const x = Tensor.zeros([2, 3, 2, 4]);
        const d = x.dataSync();
        let i = 0;
        for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let h = 0; h < 2; h++) for (let w = 0; w < 4; w++) d[i++] = 1000 * n + 100 * c + 10 * h + w;
        const y = run(() => transpose(x, [0, 2, 3, 1]));
        expect(y.shape).toEqual([2, 2, 4, 3]);
        expect(y.get(1, 1, 3, 2)).toBe(1213);
        expect(y.get(0, 1, 2, 0)).toBe(12);
        expect(Array.from(y.dataSync().subarray(0, 6))).toEqual([0, 100, 200, 1, 101, 201]);
        expect(run(() => transpose(y, [0, 3, 1, 2])).toArray()).toEqual(x.toArray());
      });

      it('keeps integer and bool dtypes', () => {
        const y = run(() => transpose(t([2 ** 40, -3, 7, 9], [2, 2], 'int64')));
        expect(y.dtype).toBe('int64');
        expect(y.toArray()).toEqual([2 ** 40, 7, -3, 9]);
        const b = run(() => transpose(t([1, 0, 0, 1, 1, 0], [3, 2], 'bool')));
        expect(b.dtype).toBe('bool');
        expect(b.toArray()).toEqual([1, 0, 1, 0, 1, 0]);
      });

      it('rejects bad permutations', () => {
        const x = iota([2, 3, 4]);
        expect(() => run(() => transpose(x, [0, 0, 1]))).toThrow(ShapeError);
        expect(() => run(() => transpose(x, [0, 1]))).toThrow(/has 2 entries/);
        expect(() => run(() => transpose(x, [0, 1, 3]))).toThrow(/not a permutation of 0\.\.2/);
      });
    });
  }

  it('fast kernel matches the reference on random shapes and permutations', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 60; trial++) {
      const rank = 1 + rng.int(5);
      // Size-1 dims included on purpose: the fast path drops and merges axes.
      const shape = Array.from({ length: rank }, () => 1 + rng.int(rank > 3 ? 4 : 40));
      const perm = rng.shuffle(Array.from({ length: rank }, (_, i) => i));
      const x = randomTensor(shape, trial);
      const fast = transposeCard.cpu!([x], { perm });
      const ref = transposeCard.reference([x], { perm });
      expect(fast.shape, `${shape} ${perm}`).toEqual(ref.shape);
      expect(fast.toArray(), `${shape} ${perm}`).toEqual(ref.toArray());
    }
  });

  it('handles rank 0 and empty tensors', () => {
    expect(transpose(Tensor.scalar(5)).toArray()).toEqual([5]);
    expect(transpose(Tensor.zeros([2, 0, 3]), [2, 0, 1]).shape).toEqual([3, 2, 0]);
  });
});

describe('Concat', () => {
  it('joins along an axis, negative counted from the end', () => {
    const a = t([1, 2, 3, 4], [2, 2]);
    const b = t([5, 6], [1, 2]);
    const c = t([7, 8, 9, 10, 11, 12], [2, 3]);
    expect(concat([a, b], 0).toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    const y = concat([a, c], -1);
    expect(y.shape).toEqual([2, 5]);
    expect(y.toArray()).toEqual([1, 2, 7, 8, 9, 3, 4, 10, 11, 12]);
  });

  it('keeps the dtype and accepts empty inputs', () => {
    const y = concat([t([1, 2], [2], 'int64'), Tensor.zeros([0], 'int64'), t([3], [1], 'int64')], 0);
    expect(y.dtype).toBe('int64');
    expect(y.toArray()).toEqual([1, 2, 3]);
  });

  it('rejects mismatched shapes, dtypes and axes', () => {
    expect(() => concat([iota([2, 2]), iota([2, 3])], 0)).toThrow(/input 1 has shape \[2, 3\]/);
    expect(() => concat([iota([2, 2]), iota([2])], 0)).toThrow(ShapeError);
    expect(() => concat([iota([2]), iota([2], 'int32')], 0)).toThrow(ValueError);
    expect(() => concat([iota([2])], 1)).toThrow(/axis 1 is out of range/);
    expect(() => concat([], 0)).toThrow(ShapeError);
  });
});

describe('Squeeze and Unsqueeze', () => {
  it('squeezes the given axes, or all 1-dims', () => {
    const x = iota([1, 3, 1, 2]);
    expect(squeeze(x).shape).toEqual([3, 2]);
    expect(squeeze(x, [0]).shape).toEqual([3, 1, 2]);
    expect(squeeze(x, [-2]).shape).toEqual([1, 3, 2]);
    expect(squeeze(x, [2, 0]).dataSync()).toBe(x.dataSync());
  });

  it('rejects squeezing a dim that is not 1, bad and repeated axes', () => {
    const x = iota([1, 3, 1]);
    expect(() => squeeze(x, [1])).toThrow(/axis 1 of input shape \[1, 3, 1\] has size 3/);
    expect(() => squeeze(x, [3])).toThrow(ShapeError);
    expect(() => squeeze(x, [0, -3])).toThrow(/repeat/);
  });

  it('unsqueezes with axes counted in the output rank', () => {
    const x = iota([3, 4]);
    expect(unsqueeze(x, [0]).shape).toEqual([1, 3, 4]);
    expect(unsqueeze(x, [0, -1]).shape).toEqual([1, 3, 4, 1]);
    expect(unsqueeze(x, [3, 1]).shape).toEqual([3, 1, 4, 1]);
    expect(unsqueeze(Tensor.scalar(2), [0]).shape).toEqual([1]);
    expect(() => unsqueeze(x, [4])).toThrow(/axis 4 is out of range for rank 3/);
    expect(() => unsqueeze(x, [1, 1])).toThrow(/repeat/);
  });
});

describe('Gather', () => {
  it('picks rows, negative indices from the end', () => {
    const x = t([1, 2, 3, 4, 5, 6], [3, 2]);
    const y = gather(x, t([2, 0, -1], [3], 'int64'));
    expect(y.shape).toEqual([3, 2]);
    expect(y.toArray()).toEqual([5, 6, 1, 2, 5, 6]);
  });

  it('gathers along an inner axis with 2-D indices', () => {
    const x = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const y = gather(x, t([0, 2, 1, 1], [2, 2], 'int32'), 1);
    expect(y.shape).toEqual([2, 2, 2]);
    expect(y.toArray()).toEqual([1, 3, 2, 2, 4, 6, 5, 5]);
  });

  it('a scalar index drops the axis (as Shape → Gather does)', () => {
    const dims = t([1, 3, 224, 224], [4], 'int64');
    const y = gather(dims, Tensor.scalar(1, 'int64'));
    expect(y.shape).toEqual([]);
    expect(y.dtype).toBe('int64');
    expect(y.toArray()).toEqual([3]);
  });

  it('rejects an out-of-range index, naming it', () => {
    const x = iota([3, 2]);
    expect(() => gather(x, t([0, 3], [2], 'int64'))).toThrow(ValueError);
    expect(() => gather(x, t([0, 3], [2], 'int64'))).toThrow(/index 3 \(at position 1\) is out of range for axis 0 of size 3/);
    expect(() => gather(x, t([-4], [1], 'int64'))).toThrow(/index -4/);
    expect(() => gather(x, t([0], [1]))).toThrow(/indices must be integers/);
    expect(() => gather(x, t([0], [1], 'int64'), 2)).toThrow(ShapeError);
  });
});

describe('Pad', () => {
  const x = t([1, 2, 3, 4, 5, 6], [2, 3]);

  it('constant: pads with the value in ONNX order [begins…, ends…]', () => {
    const y = pad(x, [1, 0, 0, 2], { value: 9 });
    expect(y.shape).toEqual([3, 5]);
    expect(y.toArray()).toEqual([9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9]);
  });

  it('edge repeats the border', () => {
    const y = pad(x, [0, 2, 1, 1], { mode: 'edge' });
    expect(y.shape).toEqual([3, 6]);
    expect(y.toArray()).toEqual([1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6, 4, 4, 4, 5, 6, 6]);
  });

  it('reflect mirrors without repeating the border', () => {
    // numpy.pad([1, 2, 3, 4], (2, 3), 'reflect')
    expect(pad(t([1, 2, 3, 4], [4]), [2, 3], { mode: 'reflect' }).toArray()).toEqual([3, 2, 1, 2, 3, 4, 3, 2, 1]);
    const y = pad(x, [1, 1, 1, 1], { mode: 'reflect' });
    expect(y.toArray()).toEqual([5, 4, 5, 6, 5, 2, 1, 2, 3, 2, 5, 4, 5, 6, 5, 2, 1, 2, 3, 2]);
  });

  it('negative pads crop, before edge and reflect look at the border', () => {
    expect(pad(x, [0, -1, 0, -1]).toArray()).toEqual([2, 5]);
    const v = t([1, 2, 3, 4], [4]);
    expect(pad(v, [-1, 2], { mode: 'edge' }).toArray()).toEqual([2, 3, 4, 4, 4]);
    expect(pad(v, [2, -1], { mode: 'reflect' }).toArray()).toEqual([3, 2, 1, 2, 3]);
    expect(pad(v, [1, -1], { mode: 'constant', value: 7 }).toArray()).toEqual([7, 1, 2, 3]);
  });

  it('keeps integer dtypes, truncating the fill for int64', () => {
    const y = pad(t([5, 6], [2], 'int64'), [1, 1], { value: 2.7 });
    expect(y.dtype).toBe('int64');
    expect(y.toArray()).toEqual([2, 5, 6, 2]);
    expect(pad(t([1], [1], 'bool'), [1, 0], { mode: 'edge' }).toArray()).toEqual([1, 1]);
  });

  it('rejects bad pads', () => {
    expect(() => pad(x, [1, 1])).toThrow(/2 pads for input shape \[2, 3\]; expected 4/);
    expect(() => pad(x, [0, -2, 0, -2])).toThrow(/crop more than the 3 elements of axis 1/);
    expect(() => pad(x, [0, 3, 0, 0], { mode: 'reflect' })).toThrow(/must be smaller than the 3 elements/);
    expect(() => pad(Tensor.zeros([0]), [1, 0], { mode: 'edge' })).toThrow(/no element left/);
    expect(() => pad(x, [0, 0.5, 0, 0])).toThrow(ShapeError);
  });
});

describe('Shape and Identity', () => {
  const x = Tensor.zeros([2, 3, 4, 5]);

  it('returns the dims as int64, sliced and clamped', () => {
    const s = shapeOf(x);
    expect(s.dtype).toBe('int64');
    expect(s.shape).toEqual([4]);
    expect(s.toArray()).toEqual([2, 3, 4, 5]);
    expect(shapeOf(x, -2).toArray()).toEqual([4, 5]);
    expect(shapeOf(x, 1, -1).toArray()).toEqual([3, 4]);
    expect(shapeOf(x, -10, 10).toArray()).toEqual([2, 3, 4, 5]);
    expect(shapeOf(x, 3, 1).toArray()).toEqual([]);
    expect(shapeOf(Tensor.scalar(1)).shape).toEqual([0]);
  });

  it('Identity passes the tensor through', () => {
    const a = t([1, 2, 3], [3], 'uint8');
    const b = identity(a);
    expect(b.dtype).toBe('uint8');
    expect(b.shape).toEqual([3]);
    expect(b.toArray()).toEqual([1, 2, 3]);
  });
});

// ---------------------------------------------------------------------------------------------

function onnxNode(opType: string, opset: number, attrs: Record<string, AttrValue> = {}, nIn = 1, outputs = ['y']): OnnxNode {
  const inputs = Array.from({ length: nIn }, (_, i) => `in${i}`);
  return new OnnxNode(`${opType.toLowerCase()}_0`, opType, '', opset, inputs, outputs, new Map(Object.entries(attrs)));
}

function run(opType: string, opset: number, attrs: Record<string, AttrValue>, inputs: (Tensor | undefined)[], outputs = ['y']): Tensor[] {
  const op = movementOps[opType];
  if (!op) throw new Error(`no adapter for ${opType}`);
  return op.compile(onnxNode(opType, opset, attrs, inputs.length, outputs))(inputs);
}

const i64 = (v: number[]) => t(v, [v.length], 'int64');

describe('ONNX movement adapters', () => {
  it('Reshape reads the shape input (opset ≥ 5) or attribute (older)', () => {
    const x = iota([2, 3]);
    expect(run('Reshape', 13, {}, [x, i64([3, -1])])[0]!.shape).toEqual([3, 2]);
    expect(run('Reshape', 14, { allowzero: 1 }, [Tensor.zeros([0, 2]), i64([2, 0])])[0]!.shape).toEqual([2, 0]);
    expect(run('Reshape', 1, { shape: [6] }, [x])[0]!.shape).toEqual([6]);
    expect(() => run('Reshape', 13, {}, [x])).toThrow(OnnxError);
  });

  it('Flatten, Transpose, Concat, Gather and Identity', () => {
    const x = iota([2, 3, 4]);
    expect(run('Flatten', 13, {}, [x])[0]!.shape).toEqual([2, 12]);
    expect(run('Flatten', 13, { axis: 2 }, [x])[0]!.shape).toEqual([6, 4]);
    expect(run('Transpose', 13, {}, [x])[0]!.shape).toEqual([4, 3, 2]);
    expect(run('Transpose', 13, { perm: [1, 0, 2] }, [x])[0]!.shape).toEqual([3, 2, 4]);
    expect(run('Concat', 13, { axis: -1 }, [x, x])[0]!.shape).toEqual([2, 3, 8]);
    expect(() => movementOps.Concat!.compile(onnxNode('Concat', 13, {}, 2))).toThrow(/required attribute 'axis'/);
    expect(run('Gather', 13, { axis: 1 }, [x, i64([2])])[0]!.shape).toEqual([2, 1, 4]);
    expect(run('Identity', 13, {}, [x])[0]!.toArray()).toEqual(x.toArray());
  });

  it('Squeeze and Unsqueeze take axes as attribute before opset 13, as input from 13', () => {
    const x = iota([1, 3, 1]);
    expect(run('Squeeze', 11, { axes: [0] }, [x])[0]!.shape).toEqual([3, 1]);
    expect(run('Squeeze', 11, {}, [x])[0]!.shape).toEqual([3]);
    expect(run('Squeeze', 13, {}, [x, i64([-1])])[0]!.shape).toEqual([1, 3]);
    expect(run('Squeeze', 13, {}, [x, undefined])[0]!.shape).toEqual([3]);
    expect(run('Unsqueeze', 11, { axes: [0, 4] }, [x])[0]!.shape).toEqual([1, 1, 3, 1, 1]);
    expect(run('Unsqueeze', 13, {}, [x, i64([1])])[0]!.shape).toEqual([1, 1, 3, 1]);
    expect(() => run('Unsqueeze', 13, {}, [x, undefined])).toThrow(/axes/);
    expect(() => movementOps.Unsqueeze!.compile(onnxNode('Unsqueeze', 11))).toThrow(OnnxError);
  });

  it('Pad: attributes before opset 11, inputs after, axes from opset 18', () => {
    const x = t([1, 2, 3, 4], [2, 2]);
    expect(run('Pad', 2, { pads: [0, 1, 0, 0], value: 5 }, [x])[0]!.toArray()).toEqual([5, 1, 2, 5, 3, 4]);
    expect(run('Pad', 11, { mode: 'edge' }, [x, i64([1, 0, 0, 0])])[0]!.toArray()).toEqual([1, 2, 1, 2, 3, 4]);
    expect(run('Pad', 13, {}, [x, i64([0, 0, 0, 1]), Tensor.scalar(-1)])[0]!.toArray()).toEqual([1, 2, -1, 3, 4, -1]);
    expect(run('Pad', 18, {}, [x, i64([1, 1]), undefined, i64([-1])])[0]!.toArray()).toEqual([0, 1, 2, 0, 0, 3, 4, 0]);
    expect(() => run('Pad', 18, {}, [x, i64([1]), undefined, i64([1])])).toThrow(/1 pads for 1 axes/);
    expect(() => movementOps.Pad!.compile(onnxNode('Pad', 19, { mode: 'wrap' }))).toThrow(/mode 'wrap' is not supported/);
  });

  it('Shape gives int64 dims with start and end', () => {
    const x = Tensor.zeros([2, 3, 4]);
    const y = run('Shape', 15, { start: 1 }, [x])[0]!;
    expect(y.dtype).toBe('int64');
    expect(y.toArray()).toEqual([3, 4]);
    expect(run('Shape', 15, { end: -1 }, [x])[0]!.toArray()).toEqual([2, 3]);
  });

  it('Dropout at inference is the identity with an all-true bool mask', () => {
    const x = randomTensor([2, 5], 1);
    const [y, mask] = run('Dropout', 13, {}, [x], ['y', 'mask']);
    expect(y!.toArray()).toEqual(x.toArray());
    expect(mask!.dtype).toBe('bool');
    expect(mask!.toArray()).toEqual(new Array(10).fill(1));
    expect(run('Dropout', 13, {}, [x])).toHaveLength(1);
    // Opset < 12: ratio is an attribute and there is no training mode.
    expect(run('Dropout', 10, { ratio: 0.3 }, [x])[0]!.toArray()).toEqual(x.toArray());
    // Training mode with ratio 0 keeps everything.
    const [z] = run('Dropout', 13, {}, [x, Tensor.scalar(0), Tensor.scalar(1, 'bool')]);
    expect(z!.toArray()).toEqual(x.toArray());
  });

  it('Dropout in training mode drops by the seeded mask and scales the rest', () => {
    const x = Tensor.ones([1000]);
    const train = [x, Tensor.scalar(0.25), Tensor.scalar(1, 'bool')];
    const [y, mask] = run('Dropout', 13, { seed: 3 }, train, ['y', 'mask']);
    const yd = y!.toArray();
    const md = mask!.toArray();
    for (let i = 0; i < 1000; i++) expect(yd[i]).toBeCloseTo(md[i] ? 1 / 0.75 : 0, 6);
    const kept = md.filter((m) => m === 1).length;
    expect(kept).toBeGreaterThan(700);
    expect(kept).toBeLessThan(800);
    // The same seed gives the same mask.
    expect(run('Dropout', 13, { seed: 3 }, train, ['y', 'mask'])[1]!.toArray()).toEqual(md);
    expect(() => run('Dropout', 13, {}, [x, Tensor.scalar(1), Tensor.scalar(1, 'bool')])).toThrow(/ratio 1 must be in \[0, 1\)/);
  });

  it('Constant holds its value attribute', () => {
    const v = t([1.5, 2], [2]);
    expect(run('Constant', 13, { value: v }, [])[0]).toBe(v);
    const ints = run('Constant', 13, { value_ints: [3, -1] }, [])[0]!;
    expect(ints.dtype).toBe('int64');
    expect(ints.shape).toEqual([2]);
    expect(ints.toArray()).toEqual([3, -1]);
    const int = run('Constant', 13, { value_int: 7 }, [])[0]!;
    expect([int.dtype, int.shape, int.toArray()]).toEqual(['int64', [], [7]]);
    expect(run('Constant', 13, { value_float: 0.5 }, [])[0]!.toArray()).toEqual([0.5]);
    expect(run('Constant', 13, { value_floats: [0.5, 1] }, [])[0]!.shape).toEqual([2]);
    expect(() => movementOps.Constant!.compile(onnxNode('Constant', 13, { value_string: 'hi' }, 0))).toThrow(/'value_string' is not supported/);
    expect(() => movementOps.Constant!.compile(onnxNode('Constant', 13, {}, 0))).toThrow(OnnxError);
  });
});
