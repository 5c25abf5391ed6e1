import ndarray from 'ndarray';
import { describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { fromNdarray, toNdarray } from '../../src/io/ndarray.js';

describe('fromNdarray', () => {
  it('copies a contiguous float32 ndarray', () => {
    const nd = ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const t = fromNdarray(nd);
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([2, 3]);
    expect(t.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.dataSync()).not.toBe(nd.data);
  });

  it('copies a transposed (non-contiguous) view in its logical order', () => {
    const nd = ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]).transpose(1, 0);
    expect(nd.stride).toEqual([1, 3]);
    const t = fromNdarray(nd);
    expect(t.shape).toEqual([3, 2]);
    expect(t.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('honours offsets, steps and negative strides', () => {
    const base = ndarray(new Int32Array(Array.from({ length: 24 }, (_, i) => i)), [2, 3, 4]);
    // base[1, :, ::-2] → rows 12..15, 16..19, 20..23 read backwards in steps of 2
    const view = base.pick(1, null, null).step(1, -2);
    const t = fromNdarray(view);
    expect(t.dtype).toBe('int32');
    expect(t.shape).toEqual([3, 2]);
    expect(t.toArray()).toEqual([15, 13, 19, 17, 23, 21]);
    expect(fromNdarray(base.hi(2, 2, 2).lo(0, 1, 0)).toArray()).toEqual([4, 5, 16, 17]);
  });

  it('maps data types: float64 → float32, integer types kept, or as asked', () => {
    expect(fromNdarray(ndarray(new Float64Array([0.1]))).dtype).toBe('float32');
    expect(fromNdarray(ndarray(new Float64Array([0.1])), { dtype: 'float64' }).toArray()).toEqual([0.1]);
    expect(fromNdarray(ndarray(new Uint8Array([255]))).dtype).toBe('uint8');
    expect(fromNdarray(ndarray(new Uint8ClampedArray([7]))).dtype).toBe('uint8');
    expect(fromNdarray(ndarray(new Int16Array([-2]))).toArray()).toEqual([-2]);
    expect(fromNdarray(ndarray([1.5, 2.5])).dtype).toBe('float32');
    expect(fromNdarray(ndarray(new Float32Array([1, 2])), { dtype: 'int32' }).dtype).toBe('int32');
  });

  it('BigInt64 data becomes exact int64, rejecting unsafe integers', () => {
    const t = fromNdarray(ndarray(new BigInt64Array([-(2n ** 50n), 3n])));
    expect(t.dtype).toBe('int64');
    expect(t.toArray()).toEqual([-(2 ** 50), 3]);
    expect(() => fromNdarray(ndarray(new BigInt64Array([2n ** 60n])))).toThrow(ValueError);
  });

  it('handles rank 0 and empty arrays', () => {
    expect(fromNdarray(ndarray(new Float32Array([4]), [])).shape).toEqual([]);
    expect(fromNdarray(ndarray(new Float32Array([4]), [])).toArray()).toEqual([4]);
    expect(fromNdarray(ndarray(new Float32Array(0), [0, 3])).shape).toEqual([0, 3]);
  });
});

describe('toNdarray', () => {
  it('views the tensor data with the same shape', () => {
    const t = Tensor.fromArray([1, 2, 3, 4, 5, 6], [3, 2]);
    const nd = toNdarray(t);
    expect(nd.shape).toEqual([3, 2]);
    expect(nd.data).toBe(t.dataSync());
    expect(nd.get(2, 1)).toBe(6);
    expect(nd.get(1, 0)).toBe(3);
  });

  it('round-trips through fromNdarray, including integer dtypes', () => {
    for (const t of [Tensor.fromArray([1, -2, 3, 2 ** 40], [2, 2], 'int64'), Tensor.fromArray([9, 8, 7], [3, 1, 1], 'uint8')]) {
      const back = fromNdarray(toNdarray(t), { dtype: t.dtype });
      expect(back.shape).toEqual(t.shape);
      expect(back.dtype).toBe(t.dtype);
      expect(back.toArray()).toEqual(t.toArray());
    }
    const f = Tensor.rand([2, 3, 4], { seed: 1 });
    expect(fromNdarray(toNdarray(f).transpose(2, 0, 1)).shape).toEqual([4, 2, 3]);
    expect(fromNdarray(toNdarray(f)).toArray()).toEqual(f.toArray());
  });
});
