import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/errors.js';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { OnnxNode, type AttrValue } from '../../src/io/onnx/node.js';
import { gemmOps } from '../../src/io/onnx/ops/gemm.js';
import { type GemmAttrs, gemm, gemmCard, matmul, matmulCard, rowMajor, sgemm } from '../../src/kernels/gemm.js';
import { expectClose, randomTensor } from '../helpers.js';

/**
 * Tolerance: the reference sums in float64; sgemm adds in double in another order and rounds C
 * to float32 between blocks of 256 products, so results differ by a few float32 ulps of the
 * output's magnitude. atol 1e-5 × max|y| covers that; a wrong index or a missing term does not.
 */
const TOL = { atol: 1e-5, rtol: 1e-4 };

function bothBackends(f: () => Tensor): [Tensor, Tensor] {
  return [f(), withBackend(referenceBackend, f)];
}

describe('gemm', () => {
  it.each([
    [5, 7, 6],
    // M = 1 or N = 1 take the matrix-vector path (dot products or axpy order, by layout).
    [1, 9, 6],
    [5, 9, 1],
    [1, 1030, 3],
    [3, 1030, 1],
  ])('matches the reference for every transA/transB/alpha/beta/C-broadcast combination (M %i, K %i, N %i)', (M, K, N) => {
    const cShapes: (number[] | null)[] = [null, [], [1], [N], [1, N], [M, 1], [1, 1], [M, N]];
    let seed = 1;
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = randomTensor(transA ? [K, M] : [M, K], seed++);
        const b = randomTensor(transB ? [N, K] : [K, N], seed++);
        for (const cShape of cShapes) {
          const c = cShape ? randomTensor(cShape, seed++) : null;
          for (const alpha of [1, 0.5, -2]) {
            for (const beta of [1, 0, 0.25]) {
              const attrs = { transA, transB, alpha, beta };
              const [fast, ref] = bothBackends(() => gemm(a, b, c, attrs));
              expect(fast.shape).toEqual([M, N]);
              expectClose(fast, ref, { ...TOL, what: JSON.stringify({ ...attrs, cShape }) });
            }
          }
        }
      }
    }
  });

  it('hand-computed: [[1,2],[3,4]]·[[5,6],[7,8]], then alpha 2, beta 1 and a row bias', () => {
    const a = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    const b = Tensor.fromArray([5, 6, 7, 8], [2, 2]);
    for (const y of bothBackends(() => gemm(a, b))) expect(y.toArray()).toEqual([19, 22, 43, 50]);
    const c = Tensor.fromArray([1, -1], [2]);
    for (const y of bothBackends(() => gemm(a, b, c, { alpha: 2 }))) expect(y.toArray()).toEqual([39, 43, 87, 99]);
    // Aᵀ·B with a column bias [2, 1] and beta 10.
    const col = Tensor.fromArray([1, 2], [2, 1]);
    for (const y of bothBackends(() => gemm(a, b, col, { transA: true, beta: 10 }))) expect(y.toArray()).toEqual([36, 40, 58, 64]);
  });

  it('spans several cache blocks (M 67, K 260, N 1029)', () => {
    const a = randomTensor([67, 260], 40);
    const b = randomTensor([1029, 260], 41);
    const c = randomTensor([1029], 42);
    const [fast, ref] = bothBackends(() => gemm(a, b, c, { transB: true, alpha: 0.75, beta: 0.5 }));
    expectClose(fast, ref, TOL);
  });

  it('fuses an activation', () => {
    const a = randomTensor([9, 4], 50);
    const b = randomTensor([4, 11], 51);
    const [fast, ref] = bothBackends(() => gemm(a, b, null, { activation: { kind: 'relu' } }));
    expectClose(fast, ref, TOL);
    expect(Math.min(...fast.toArray())).toBe(0);
  });

  it('beta = 0 does not read C (NaN in C stays out)', () => {
    const a = randomTensor([2, 3], 60);
    const b = randomTensor([3, 2], 61);
    const c = Tensor.full([2, 2], NaN);
    for (const y of bothBackends(() => gemm(a, b, c, { beta: 0 }))) expect(y.toArray().every(Number.isFinite)).toBe(true);
  });

  it('K = 0 gives beta·C', () => {
    const c = Tensor.fromArray([1, 2, 3], [3]);
    for (const y of bothBackends(() => gemm(Tensor.zeros([2, 0]), Tensor.zeros([0, 3]), c, { beta: 2 }))) {
      expect(y.toArray()).toEqual([2, 4, 6, 2, 4, 6]);
    }
  });

  it('shape errors name Gemm and the dims', () => {
    const attrs: GemmAttrs = { alpha: 1, beta: 1, transA: false, transB: false, activation: { kind: 'none' } };
    expect(() => gemmCard.shape([[2, 3], [4, 5]], attrs)).toThrow(ShapeError);
    expect(() => gemmCard.shape([[2, 3], [4, 5]], attrs)).toThrow(/Gemm.*K = 3.*K = 4/);
    expect(() => gemmCard.shape([[2, 3], [3, 5], [2]], attrs)).toThrow(/Gemm: C \[2\].*\[2, 5\]/);
    expect(() => gemmCard.shape([[2, 3], [3, 5], [3, 5]], attrs)).toThrow(/Gemm: C \[3, 5\]/);
    expect(() => gemmCard.shape([[2, 3], [3, 5], [1, 2, 5]], attrs)).toThrow(ShapeError);
    expect(() => gemmCard.shape([[3], [3, 5]], attrs)).toThrow(/Gemm: A must be rank 2/);
    expect(gemmCard.shape([[3, 2], [5, 3]], { ...attrs, transA: true, transB: true })).toEqual([2, 5]);
    expect(gemmCard.macs!([[2, 3], [3, 5]], attrs)).toBe(30);
  });

  it('only float32', () => {
    expect(() => gemm(Tensor.zeros([2, 2], 'int32'), Tensor.zeros([2, 2]))).toThrow(ValueError);
    expect(() => gemm(Tensor.zeros([2, 2], 'int32'), Tensor.zeros([2, 2]))).toThrow(/Gemm/);
  });
});

describe('sgemm', () => {
  it('writes only its block of a larger C, with strided (transposed) operands', () => {
    // C is 4×9; write the 3×5 block at row 1, column 2 from Aᵀ (A stored 6×3) and B (6×5).
    const A = randomTensor([6, 3], 70).f32();
    const B = randomTensor([6, 5], 71).f32();
    const C = new Float32Array(36).fill(7);
    sgemm(3, 5, 6, 1, { data: A, offset: 0, rowStride: 1, colStride: 3 }, rowMajor(B, 0, 5), 0, C, 1 * 9 + 2, 9);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 9; j++) {
        const inside = i >= 1 && i < 4 && j >= 2 && j < 7;
        if (!inside) expect(C[i * 9 + j]).toBe(7);
        else {
          let s = 0;
          for (let p = 0; p < 6; p++) s += A[p * 3 + (i - 1)]! * B[p * 5 + (j - 2)]!;
          expect(C[i * 9 + j]).toBeCloseTo(s, 5);
        }
      }
    }
  });
});

describe('matmul', () => {
  const check = (a: number[], b: number[], out: number[]) => {
    const A = randomTensor(a, a.length * 10 + 1);
    const B = randomTensor(b, b.length * 10 + 2);
    const [fast, ref] = bothBackends(() => matmul(A, B));
    expect(fast.shape).toEqual(out);
    expectClose(fast, ref, { ...TOL, what: `matmul ${JSON.stringify(a)} ${JSON.stringify(b)}` });
  };

  it('2-D', () => check([5, 7], [7, 3], [5, 3]));
  it('batched with the same batch dims', () => check([2, 3, 4], [2, 4, 3], [2, 3, 3]));
  it('broadcasts batch dims both ways', () => {
    check([2, 1, 4, 3], [3, 3, 5], [2, 3, 4, 5]);
    check([1, 4, 3], [2, 3, 2], [2, 4, 2]);
    check([4, 3], [2, 3, 5], [2, 4, 5]);
  });
  it('a shared right operand folds the batch into one GEMM', () => check([3, 4, 70], [70, 9], [3, 4, 9]));
  it('1-D operands are promoted and the added dim dropped', () => {
    check([3], [3], []);
    check([3], [3, 4], [4]);
    check([3], [2, 3, 4], [2, 4]);
    check([2, 4, 3], [3], [2, 4]);
  });
  it('hand-computed', () => {
    const a = Tensor.fromArray([1, 2, 3], [3]);
    const b = Tensor.fromArray([4, 5, 6], [3]);
    for (const y of bothBackends(() => matmul(a, b))) expect(y.toArray()).toEqual([32]);
    // Batch of two 1×2 rows against one 2×2 matrix.
    const rows = Tensor.fromArray([1, 0, 0, 1], [2, 1, 2]);
    const m = Tensor.fromArray([1, 2, 3, 4], [2, 2]);
    for (const y of bothBackends(() => matmul(rows, m))) expect(y.toArray()).toEqual([1, 2, 3, 4]);
  });
  it('shape errors name MatMul and the dims', () => {
    expect(() => matmulCard.shape([[2, 3], [4, 5]])).toThrow(/MatMul.*K = 3.*K = 4/);
    expect(() => matmulCard.shape([[2, 2, 3], [3, 3, 5]])).toThrow(/MatMul.*2 vs 3/);
    expect(() => matmulCard.shape([[], [3]])).toThrow(ShapeError);
    expect(matmulCard.macs!([[2, 1, 4, 3], [3, 3, 5]])).toBe(6 * 4 * 3 * 5);
  });
  it('only float32', () => {
    expect(() => matmul(Tensor.zeros([2, 2], 'float64'), Tensor.zeros([2, 2]))).toThrow(/MatMul/);
  });
});

describe('ONNX Gemm and MatMul adapters', () => {
  const node = (op: string, attrs: [string, AttrValue][]) => new OnnxNode('g0', op, '', 13, ['a', 'b', 'c'], ['y'], new Map(attrs));
  it('Gemm reads alpha, beta, transA, transB and the fused activation', () => {
    const a = randomTensor([3, 5], 80);
    const b = randomTensor([4, 5], 81);
    const c = randomTensor([4], 82);
    const run = gemmOps.Gemm!.compile(
      node('Gemm', [
        ['transB', 1],
        ['alpha', 0.5],
        ['beta', 2],
        ['_activation', 'relu'],
      ]),
    );
    expectClose(run([a, b, c])[0]!, gemm(a, b, c, { transB: true, alpha: 0.5, beta: 2, activation: { kind: 'relu' } }), TOL);
    expectClose(run([a, b, undefined])[0]!, gemm(a, b, null, { transB: true, alpha: 0.5, activation: { kind: 'relu' } }), TOL);
  });
  it('Gemm rejects a transA that is not 0 or 1', () => {
    expect(() => gemmOps.Gemm!.compile(node('Gemm', [['transA', 2]]))).toThrow(/Gemm node 'g0'.*transA/);
  });
  it('MatMul', () => {
    const a = randomTensor([2, 3, 4], 90);
    const b = randomTensor([4, 2], 91);
    expectClose(gemmOps.MatMul!.compile(node('MatMul', []))([a, b])[0]!, matmul(a, b), TOL);
  });
});
