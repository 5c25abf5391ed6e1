import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { OnnxError, ShapeError, UnsupportedOpError, ValueError } from '../../src/core/errors.js';
import { cpuBackend, referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { findCases } from '../../src/cli/conformance.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { einsum, einsumCard } from '../../src/kernels/einsum.js';
import { matmul, matmulCard } from '../../src/kernels/gemm.js';
import {
  reduceL1,
  reduceL1Card,
  reduceL2,
  reduceL2Card,
  reduceLogSumExp,
  reduceProd,
  reduceProdCard,
  reduceSumSquare,
  reduceSumSquareCard,
} from '../../src/kernels/reduce.js';
import { argMax, argMin, gatherElements, topK } from '../../src/kernels/select.js';
import { gradcheck } from '../../src/train/gradcheck.js';
import { expectClose } from '../helpers.js';
import { modelBytes, node } from './build.js';
import { expectNodeCases } from './node_cases.js';

const NODE_CASES = join(import.meta.dirname, '../fixtures/onnx-node-select');

/**
 * ONNX 1.12's backend node tests for ArgMax, ArgMin, TopK, GatherElements, Einsum and the
 * ReduceL1/L2/SumSquare/LogSumExp/Prod ops (`scripts/make_onnx_node_fixtures.py select`
 * regenerates them). Cases expected to fail, each with its reason: none — every generated case
 * passes within the runner's default tolerance (abs 1e-4 + rel 1e-3; integer outputs exactly).
 */
const EXPECTED_FAILURES: Record<string, string> = {};

describe("ONNX backend node tests for the selection, Einsum and norm-reduce ops (ONNX's own generators)", async () => {
  const cases = await findCases([NODE_CASES]);
  it('finds the regenerated cases', () => expect(cases.length).toBeGreaterThanOrEqual(83));
  it('passes every case except the listed ones', () => expectNodeCases(NODE_CASES, cases, EXPECTED_FAILURES));
});

const x64 = (shape: number[], seed: number, lo = -1, hi = 1) => {
  const t = Tensor.rand(shape, { seed, low: lo, high: hi });
  return new Tensor(Float64Array.from(t.dataSync()), shape, 'float64');
};
const i64 = (values: number[], shape: number[]) => Tensor.fromArray(values, shape, 'int64');

describe('gradients (gradcheck, float64 reference kernels)', () => {
  it('TopK values (largest and smallest, inner axis) and GatherElements (repeated and negative indices)', () => {
    gradcheck((x) => topK(x, 2, 1).values, [x64([3, 4, 2], 1)]);
    gradcheck((x) => topK(x, 3, -1, false).values, [x64([2, 5], 2)]);
    // Index 0 of row 0 is picked twice: its gradient is the sum of both (scatter-add).
    const idx = i64([0, 0, -1, 1, 2, -3], [2, 3]);
    gradcheck((d) => gatherElements(d, idx, 1), [x64([2, 3], 3)]);
    gradcheck((d) => gatherElements(d, i64([1, 0, 1, 1, 0, 0], [2, 3]), 0), [x64([2, 4], 4)]);
  });

  it('ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp (several axes, with and without keepdims)', () => {
    // L1 and L2 inputs keep away from 0, where |x| has its kink and √ its singularity.
    const away = (shape: number[], seed: number) => {
      const t = x64(shape, seed, 0.2, 2);
      const d = t.dataSync();
      for (let i = 0; i < d.length; i += 3) d[i] = -d[i]!;
      return t;
    };
    for (const [axes, keep] of [[[1], true], [[0, 2], false], [[], true]] as [number[], boolean][]) {
      gradcheck((x) => reduceL1(x, axes, keep), [away([2, 3, 4], 5)]);
      gradcheck((x) => reduceL2(x, axes, keep), [away([2, 3, 4], 6)]);
      gradcheck((x) => reduceSumSquare(x, axes, keep), [x64([2, 3, 4], 7)]);
      gradcheck((x) => reduceLogSumExp(x, axes, keep), [x64([2, 3, 4], 8, -3, 3)]);
    }
  });

  it('ReduceProd, also with one zero in a group and with two', () => {
    gradcheck((x) => reduceProd(x, [1], false), [x64([3, 4], 9, 0.5, 1.5)]);
    const x = x64([3, 4], 10, 0.5, 1.5);
    const d = x.dataSync();
    d[1] = 0; // row 0: one zero, whose gradient is the product of the others
    d[8] = 0; // row 2: two zeros, every gradient 0
    d[10] = 0;
    gradcheck((t) => reduceProd(t, [1], true), [x]);
    gradcheck((t) => reduceProd(t, [0, 1], false), [x]);
  });

  it('Einsum: batch matmuls, transposes, sums, diagonals, outer and inner products, broadcast ...', () => {
    gradcheck((a, b) => einsum('bij,bjk->bik', a, b), [x64([2, 3, 4], 11), x64([2, 4, 5], 12)]);
    gradcheck((q, k) => einsum('bhid,bhjd->bhij', q, k), [x64([1, 2, 3, 4], 13), x64([1, 2, 5, 4], 14)]);
    gradcheck((a) => einsum('ij->ji', a), [x64([3, 4], 15)]);
    gradcheck((a) => einsum('ij->i', a), [x64([3, 4], 16)]);
    gradcheck((a) => einsum('...ii->...i', a), [x64([2, 3, 3], 17)]);
    gradcheck((a) => einsum('ii', a), [x64([4, 4], 18)]); // implicit: the trace
    gradcheck((a, b) => einsum('i,i', a, b), [x64([5], 19), x64([5], 20)]);
    gradcheck((a, b) => einsum('i,j->ij', a, b), [x64([3], 21), x64([4], 22)]);
    // '...' dims broadcast: b's batch dim of 1 is summed back in its gradient.
    gradcheck((a, b) => einsum('...ij,...jk->...ik', a, b), [x64([3, 2, 4], 23), x64([1, 4, 2], 24)]);
    // A subscript only one operand has (summed before the product).
    gradcheck((a, b) => einsum('ij,jk->k', a, b), [x64([2, 3], 25), x64([3, 4], 26)]);
  });
});

describe('fast CPU kernels against the float64 references', () => {
  it('Einsum runs float32 contractions on the GEMM and agrees with the reference loop', () => {
    const spy = vi.spyOn(matmulCard, 'cpu');
    try {
      const cases: [string, number[][]][] = [
        ['bij,bjk->bik', [[3, 5, 7], [3, 7, 4]]],
        ['bhid,bhjd->bhij', [[2, 3, 6, 8], [2, 3, 5, 8]]],
        ['bhij,bhjd->bhid', [[2, 3, 6, 5], [2, 3, 5, 8]]],
        ['bij,jk->bki', [[2, 4, 3], [3, 5]]],
        ['ij,jk', [[4, 6], [6, 3]]],
        ['i,i->', [[9], [9]]],
        ['i,j->ji', [[3], [4]]],
      ];
      cases.forEach(([eq, shapes], c) => {
        const xs = shapes.map((s, i) => Tensor.randn(s, { seed: 40 + 3 * c + i }));
        const calls = spy.mock.calls.length;
        const fast = einsumCard.cpu!(xs, { equation: eq });
        expect(spy.mock.calls.length, eq).toBe(calls + 1);
        // Same products, summed in float32 by the GEMM and in float64 by the loop: round-off only.
        expectClose(fast, einsumCard.reference(xs, { equation: eq }), { atol: 1e-5, rtol: 1e-5, what: eq });
      });
      // Not contractions a GEMM computes: a diagonal, and float64 operands, take the loop.
      const before = spy.mock.calls.length;
      einsumCard.cpu!([Tensor.randn([3, 3])], { equation: 'ii->i' });
      einsumCard.cpu!([x64([2, 3], 1), x64([3, 2], 2)], { equation: 'ij,jk->ik' });
      expect(spy.mock.calls.length).toBe(before);
    } finally {
      spy.mockRestore();
    }
  });

  it("Einsum's float32 gradients (through the GEMM) equal the float64 ones", () => {
    const a = Tensor.randn([2, 3, 4, 5], { seed: 50 });
    const b = Tensor.randn([2, 3, 6, 5], { seed: 51 });
    const w = Tensor.randn([2, 3, 4, 6], { seed: 52 });
    const grads = (dtype: 'float32' | 'float64', backend = cpuBackend) => {
      const cast = (t: Tensor) => (dtype === 'float32' ? t.clone() : new Tensor(Float64Array.from(t.dataSync()), t.shape, 'float64'));
      const [ga, gb] = [cast(a).requireGrad(), cast(b).requireGrad()];
      withBackend(backend, () => einsum('bhid,bhjd->bhij', ga, gb)).backward(cast(w));
      return [ga.grad!, gb.grad!];
    };
    const f32 = grads('float32');
    const f64 = grads('float64', referenceBackend);
    // Sums of 6 (resp. 4) float32 products of |x| ≲ 4 against float64: round-off well below 1e-5 of the scale.
    expectClose(f32[0]!, f64[0]!, { atol: 1e-5, rtol: 1e-5 });
    expectClose(f32[1]!, f64[1]!, { atol: 1e-5, rtol: 1e-5 });
  });

  it('ReduceProd, L1, L2 and SumSquare: CPU passes equal the reference (float32, int32)', () => {
    const x = Tensor.randn([3, 4, 5, 2], { seed: 60 });
    const xi = Tensor.fromArray(
      Array.from({ length: 24 }, (_, i) => (i % 5) - 2),
      [2, 3, 4],
      'int32',
    );
    for (const card of [reduceProdCard, reduceL1Card, reduceL2Card, reduceSumSquareCard]) {
      for (const attrs of [
        { axes: [1, 2], keepdims: true },
        { axes: [0, 3], keepdims: false },
        { axes: [], keepdims: false },
        { axes: [], keepdims: true, noopWithEmptyAxes: true },
      ]) {
        // Both accumulate in float64 and round once to float32: equal up to the summation order.
        expectClose(card.cpu!([x], attrs), card.reference([x], attrs), { atol: 1e-6, rtol: 1e-6, what: card.name });
      }
      const a = { axes: [-1], keepdims: false };
      expect([...card.cpu!([xi], a).dataSync()], card.name).toEqual([...card.reference([xi], a).dataSync()]);
    }
  });
});

describe('values at the edges', () => {
  it('ReduceLogSumExp is stable for large inputs and keeps ±∞', () => {
    const y = reduceLogSumExp(Tensor.fromArray([1000, 1000, -1000, -1000, -Infinity, -Infinity, Infinity, 0], [4, 2]), [1], false).dataSync();
    expect(y[0]).toBeCloseTo(1000 + Math.LN2, 3);
    expect(y[1]).toBeCloseTo(-1000 + Math.LN2, 3);
    expect(y[2]).toBe(-Infinity);
    expect(y[3]).toBe(Infinity);
    // Empty-set values: a product over nothing is 1, a log-sum-exp −∞, a norm 0.
    const empty = Tensor.zeros([2, 0]);
    expect([...reduceProd(empty, [1], false).dataSync()]).toEqual([1, 1]);
    expect([...reduceLogSumExp(empty, [1], false).dataSync()]).toEqual([-Infinity, -Infinity]);
    expect([...reduceL2(empty, [1], false).dataSync()]).toEqual([0, 0]);
  });

  it('ArgMax/ArgMin ties and NaN; TopK ties take the lower index first', () => {
    const x = Tensor.fromArray([1, 3, 3, 0, 0, 2, NaN, 5, 1], [3, 3]);
    expect([...argMax(x, 1, false).dataSync()]).toEqual([1, 2, 0]);
    expect([...argMax(x, 1, false, true).dataSync()]).toEqual([2, 2, 0]);
    expect([...argMin(x, 1, false).dataSync()]).toEqual([0, 0, 0]);
    expect([...argMin(x, 1, false, true).dataSync()]).toEqual([0, 1, 0]);
    expect(argMax(x, 0).dtype).toBe('int64');
    const t = topK(Tensor.fromArray([2, 7, 2, 7, 1], [5]), 3);
    expect([...t.indices.dataSync()]).toEqual([1, 3, 0]);
    expect([...t.values.dataSync()]).toEqual([7, 7, 2]);
    expect([...topK(Tensor.fromArray([2, 7, 2, 7, 1], [5]), 3, 0, false).indices.dataSync()]).toEqual([4, 0, 2]);
  });
});

describe('Einsum shapes: empty dims, implicit order, broadcast ...', () => {
  it('agrees with MatMul on broadcast batch dims and gives zeros for an empty contraction', () => {
    const a = Tensor.randn([3, 1, 2, 4], { seed: 70 });
    const b = Tensor.randn([2, 4, 5], { seed: 71 });
    // The same float32 products in another summation order: round-off only.
    expectClose(einsum('...ij,...jk->...ik', a, b), matmul(a, b), { atol: 1e-5, rtol: 1e-5 });
    const y = einsum('ij,jk->ik', Tensor.randn([2, 0]), Tensor.randn([0, 3]));
    expect(y.shape).toEqual([2, 3]);
    expect([...y.dataSync()]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(einsum('ij,jk->ik', Tensor.randn([0, 4]), Tensor.randn([4, 3])).shape).toEqual([0, 3]);
    // numpy's implicit order is by character code: upper case before lower case.
    expect(einsum('aB,Ca', Tensor.randn([3, 2]), Tensor.randn([4, 3])).shape).toEqual([2, 4]);
  });
});

describe('opset forms (the 1.12 node tests use one version of each)', () => {
  const x = Tensor.fromArray([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], [3, 4]);
  const one = (op: string, opset: number, attrs: Record<string, number | number[] | string>, extra: Record<string, Tensor> = {}, outputs = ['y']) =>
    loadOnnxSync(
      modelBytes({
        nodes: [node(op, ['x', ...Object.keys(extra)], outputs, attrs, 'the_node')],
        inputs: [{ name: 'x' }],
        outputs: outputs.map((name) => ({ name })),
        initializers: extra,
        opset,
      }),
    ).runSync({ x });

  it('TopK-1 (k attribute), TopK-10 (K input), TopK-11 (smallest, axis 0)', () => {
    const r1 = one('TopK', 1, { k: 2 }, {}, ['v', 'i']);
    expect([...r1.v!.dataSync()]).toEqual([4, 3, 9, 6, 8, 5]);
    expect([...r1.i!.dataSync()]).toEqual([2, 0, 1, 3, 3, 0]);
    expect(r1.i!.dtype).toBe('int64');
    const r10 = one('TopK', 10, {}, { K: i64([2], [1]) }, ['v', 'i']);
    expect([...r10.v!.dataSync()]).toEqual([4, 3, 9, 6, 8, 5]);
    const r11 = one('TopK', 11, { axis: 0, largest: 0, sorted: 1 }, { K: i64([1], [1]) }, ['v', 'i']);
    expect([...r11.v!.dataSync()]).toEqual([3, 1, 2, 1]);
    expect([...r11.i!.dataSync()]).toEqual([0, 0, 1, 0]);
  });

  it('ArgMax-1 (default axis 0, keepdims) and ArgMin-12 (select_last_index, negative axis)', () => {
    const a = one('ArgMax', 1, {}).y!;
    expect(a.shape).toEqual([1, 4]);
    expect([...a.dataSync()]).toEqual([1, 1, 2, 2]); // column 0 ties (5, 5): the first
    const b = one('ArgMin', 12, { axis: -1, keepdims: 0, select_last_index: 1 }).y!;
    expect([...b.dataSync()]).toEqual([3, 2, 1]);
  });

  it('Reduce*-1/11/13 (axes attribute) and Reduce*-18 (axes input, noop_with_empty_axes)', () => {
    const sumsq = [3 * 3 + 1 + 16 + 1, 25 + 81 + 4 + 36, 25 + 9 + 25 + 64];
    for (const opset of [1, 11, 13]) {
      expect([...one('ReduceSumSquare', opset, { axes: [opset >= 11 ? -1 : 1], keepdims: 0 }).y!.dataSync()]).toEqual(sumsq);
    }
    expect([...one('ReduceSumSquare', 18, { keepdims: 0 }, { axes: i64([1], [1]) }).y!.dataSync()]).toEqual(sumsq);
    expectClose(one('ReduceL2', 18, { keepdims: 0 }, { axes: i64([-1], [1]) }).y!, sumsq.map(Math.sqrt), { atol: 1e-6 });
    expect(one('ReduceProd', 18, {}).y!.toArray()).toEqual([3 * 4 * 5 * 9 * 2 * 6 * 5 * 3 * 5 * 8]);
    // noop_with_empty_axes with no axes: the input unchanged.
    expect(one('ReduceL1', 18, { noop_with_empty_axes: 1 }).y!.toArray()).toEqual(x.toArray());
    expect(one('ReduceLogSumExp', 18, { keepdims: 1 }, { axes: i64([0], [1]) }).y!.shape).toEqual([1, 4]);
  });

  it('GatherElements-11 and Einsum-12 (implicit output, spaces in the equation)', () => {
    const g = one('GatherElements', 11, { axis: 1 }, { idx: i64([3, 0, -4, 1, 1, 2], [3, 2]) }).y!;
    expect([...g.dataSync()]).toEqual([1, 3, 5, 9, 3, 5]);
    const e = one('Einsum', 12, { equation: 'ij , kj' }, { b: Tensor.fromArray([1, 0, 0, 1], [1, 4]) }).y!;
    expect(e.shape).toEqual([3, 1]);
    expect([...e.dataSync()]).toEqual([4, 11, 13]);
  });
});

describe('typed errors', () => {
  it('TopK with k larger than the axis', () => {
    expect(() => topK(Tensor.zeros([2, 3]), 4, 1)).toThrow(ShapeError);
    expect(() => topK(Tensor.zeros([2, 3]), 4, 1)).toThrow(/k = 4 exceeds the size 3 of axis 1 of the input \[2, 3\]/);
    const m = loadOnnxSync(
      modelBytes({
        nodes: [node('TopK', ['x', 'k'], ['v', 'i'], {}, 'top')],
        inputs: [{ name: 'x' }],
        outputs: [{ name: 'v' }, { name: 'i' }],
        initializers: { k: i64([9], [1]) },
        opset: 11,
      }),
    );
    expect(() => m.runSync({ x: Tensor.zeros([2, 5]) })).toThrow(/TopK node 'top'.*k = 9 exceeds the size 5/);
  });

  it('GatherElements with an index out of range names the node, the index and the axis size', () => {
    expect(() => gatherElements(Tensor.zeros([2, 3]), i64([0, 3], [2, 1]), 1)).toThrow(ValueError);
    const m = loadOnnxSync(
      modelBytes({
        nodes: [node('GatherElements', ['x', 'idx'], ['y'], { axis: 1 }, 'pick')],
        inputs: [{ name: 'x' }],
        outputs: [{ name: 'y' }],
        initializers: { idx: i64([0, -4], [2, 1]) },
        opset: 13,
      }),
    );
    expect(() => m.runSync({ x: Tensor.zeros([2, 3]) })).toThrow(ValueError);
    expect(() => m.runSync({ x: Tensor.zeros([2, 3]) })).toThrow(/GatherElements node 'pick'.*index -4 .*out of range for axis 1 of size 3/);
  });

  it('Einsum: mismatched sizes, too many operands, malformed equations', () => {
    expect(() => einsum('bij,bjk->bik', Tensor.zeros([2, 3, 4]), Tensor.zeros([2, 5, 6]))).toThrow(ShapeError);
    expect(() => einsum('bij,bjk->bik', Tensor.zeros([2, 3, 4]), Tensor.zeros([2, 5, 6]))).toThrow(/subscript 'j' is 5 on axis 1 of operand 1 \[2, 5, 6\] but 4 on axis 2 of operand 0/);
    expect(() => einsum('ij->j', Tensor.zeros([2, 3, 4]))).toThrow(/rank 3/);
    const model = (equation: string, n: number) =>
      modelBytes({
        nodes: [node('Einsum', ['a', 'b', 'c'].slice(0, n), ['y'], { equation }, 'heads')],
        inputs: ['a', 'b', 'c'].slice(0, n).map((name) => ({ name })),
        outputs: [{ name: 'y' }],
        opset: 12,
      });
    expect(() => loadOnnxSync(model('ij,jk,kl->il', 3))).toThrow(UnsupportedOpError);
    expect(() => loadOnnxSync(model('ij,jk,kl->il', 3))).toThrow(/Einsum \(equation 'ij,jk,kl->il' has 3 operands.*\) at 'heads'/);
    expect(() => loadOnnxSync(model('ij,jk->iz', 2))).toThrow(OnnxError);
    expect(() => loadOnnxSync(model('i.j->i', 1))).toThrow(/Einsum node 'heads'.*stray '\.'/);
  });
});
