import { describe, expect, it } from 'vitest';
import { type DType } from '../../src/core/dtype.js';
import { OnnxError, ShapeError, ValueError } from '../../src/core/errors.js';
import { type OpCard, apply, cpuBackend, referenceBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { type AttrValue, OnnxNode } from '../../src/io/onnx/node.js';
import { elementwiseOps } from '../../src/io/onnx/ops/elementwise.js';
import {
  type BinaryOp,
  type UnaryOp,
  add,
  binary,
  binaryCard,
  clip,
  div,
  erf,
  erfScalar,
  hardSigmoid,
  hardSwish,
  leakyRelu,
  mul,
  neg,
  pow,
  relu,
  sigmoid,
  sub,
  unary,
  unaryCard,
} from '../../src/kernels/elementwise.js';
import { expectClose, randomTensor } from '../helpers.js';

/** Runs a card on both backends, checks the fast kernel against the reference and the shape rule. */
function bothBackends<A>(card: OpCard<A>, inputs: Tensor[], attrs: A, tol = { atol: 1e-6, rtol: 1e-6 }): Tensor {
  const ref = apply(card, inputs, attrs, referenceBackend);
  const fast = apply(card, inputs, attrs, cpuBackend);
  expect(fast.dtype).toBe(ref.dtype);
  expect(ref.shape).toEqual(card.shape(inputs.map((t) => t.shape), attrs));
  expectClose(fast, ref, tol);
  return ref;
}

const ints = (values: number[], dtype: DType, shape = [values.length]) => Tensor.fromArray(values, shape, dtype);

function onnxNode(opType: string, opset: number, inputs: string[], attrs: [string, AttrValue][] = []): OnnxNode {
  return new OnnxNode('n', opType, '', opset, inputs, ['y'], new Map(attrs));
}

describe('unary card', () => {
  const ops: UnaryOp[] = [
    { kind: 'relu' },
    { kind: 'leaky_relu', alpha: 0.01 },
    { kind: 'hard_sigmoid', alpha: 0.2, beta: 0.5 },
    { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 },
    { kind: 'hard_swish' },
    { kind: 'sigmoid' },
    { kind: 'silu' },
    { kind: 'tanh' },
    { kind: 'clip', min: -1, max: 2 },
    { kind: 'erf' },
    { kind: 'exp' },
    { kind: 'sqrt' },
    { kind: 'neg' },
    { kind: 'abs' },
    { kind: 'none' },
  ];
  for (const op of ops) {
    it(`cpu matches reference: ${JSON.stringify(op)}`, () => {
      // Values in [-5, 5): both sides of every kink; sqrt gets |x|.
      const values = randomTensor([2, 3, 5, 7], 1).toArray().map((v) => (op.kind === 'sqrt' ? Math.abs(v) : v) * 5);
      const input = Tensor.fromArray(values, [2, 3, 5, 7]);
      bothBackends(unaryCard, [input], op);
    });
  }

  it('computes known values', () => {
    const x = Tensor.fromArray([-4, -1, 0, 1, 4], [5]);
    expect(relu(x).toArray()).toEqual([0, 0, 0, 1, 4]);
    expectClose(leakyRelu(x), [-0.04, -0.01, 0, 1, 4]);
    expectClose(hardSigmoid(x), [0, 0.3, 0.5, 0.7, 1]);
    expectClose(hardSigmoid(x, 1 / 6, 0.5), [0, 1 / 3, 0.5, 2 / 3, 1]);
    expectClose(hardSwish(x), [0, -1 / 3, 0, 2 / 3, 4]);
    expectClose(sigmoid(x), [0.01798620996209156, 0.2689414213699951, 0.5, 0.7310585786300049, 0.9820137900379085]);
    expect(neg(x).toArray()).toEqual([4, 1, -0, -1, -4]);
  });

  it('clips, with min > max giving max everywhere (numpy and ONNX)', () => {
    const x = Tensor.fromArray([-3, 0, 3, 7], [4]);
    expect(clip(x, 0, 6).toArray()).toEqual([0, 0, 3, 6]);
    expect(clip(x, undefined, 1).toArray()).toEqual([-3, 0, 1, 1]);
    expect(clip(x, 5, 2).toArray()).toEqual([2, 2, 2, 2]);
  });

  it('erf is accurate to double precision (values from a high-precision erf)', () => {
    const cases: [number, number][] = [
      [-3, -0.9999779095030014],
      [-1.5, -0.9661051464753108],
      [-1e-3, -0.0011283787909692365],
      [0, 0],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [0.84375, 0.7672256612323416],
      [1, 0.8427007929497149],
      [1.25, 0.9229001282564582],
      [2, 0.9953222650189527],
      [2.857, 0.9999466417399131],
      [3.5, 0.9999992569016276],
      [5.9, 0.9999999999999999],
      [6.5, 1],
    ];
    for (const [x, want] of cases) expect(Math.abs(erfScalar(x) - want)).toBeLessThanOrEqual(2e-16);
    expect(erfScalar(Infinity)).toBe(1);
    expect(erfScalar(-Infinity)).toBe(-1);
    expect(erfScalar(NaN)).toBeNaN();
    // float32 tensors: the float64 value rounded once.
    const t = erf(Tensor.fromArray(cases.map((c) => c[0]), [cases.length]));
    expectClose(t, cases.map((c) => c[1]), { atol: 1e-7, rtol: 0 });
    const t64 = erf(Tensor.fromArray(cases.map((c) => c[0]), [cases.length], 'float64'));
    expectClose(t64, cases.map((c) => c[1]), { atol: 2e-16, rtol: 0 });
  });

  it('integer dtypes: Relu, Clip, Neg, Abs keep the dtype; float-only ops refuse', () => {
    for (const backend of [cpuBackend, referenceBackend]) {
      const i8 = ints([-128, -5, 0, 5, 127], 'int8');
      const c = apply(unaryCard, [i8], { kind: 'clip', min: -10, max: 10 }, backend);
      expect(c.dtype).toBe('int8');
      expect(c.toArray()).toEqual([-10, -5, 0, 5, 10]);
      expect(apply(unaryCard, [ints([-3, 4], 'int32')], { kind: 'relu' }, backend).toArray()).toEqual([0, 4]);
      // numpy: -uint8(1) = 255, -int8(-128) = -128.
      expect(apply(unaryCard, [ints([0, 1, 200], 'uint8')], { kind: 'neg' }, backend).toArray()).toEqual([0, 255, 56]);
      expect(apply(unaryCard, [ints([-128, 3], 'int8')], { kind: 'neg' }, backend).toArray()).toEqual([-128, -3]);
      expect(apply(unaryCard, [ints([-7, 7], 'int64')], { kind: 'abs' }, backend).toArray()).toEqual([7, 7]);
      expect(() => apply(unaryCard, [ints([1], 'int32')], { kind: 'sigmoid' }, backend)).toThrow(ValueError);
    }
  });
});

describe('binary card', () => {
  const ops: BinaryOp[] = ['Add', 'Sub', 'Mul', 'Div', 'Pow'];
  const patterns: [number[], number[]][] = [
    [[2, 3, 4, 5], [2, 3, 4, 5]], // same shape
    [[2, 3, 4, 5], []], // scalar right
    [[], [2, 3, 4, 5]], // scalar left
    [[2, 3, 4, 5], [1]], // one-element vector
    [[2, 3, 4, 5], [2, 3, 1, 1]], // SE gate
    [[2, 3, 1, 1], [2, 3, 4, 5]],
    [[2, 3, 4, 5], [3, 1, 1]], // per channel, batch broadcast
    [[2, 3, 4, 5], [5]], // last axis
    [[2, 3, 4, 5], [4, 1]], // middle axis
    [[2, 1, 4, 1], [1, 3, 1, 5]], // both sides broadcast
    [[3, 1], [1, 4]], // outer product
    [[1, 7], [6, 1]],
    [[2, 3, 4, 5], [1, 3, 4, 1]],
    [[1, 1], [1, 1]],
    [[], []],
    [[0, 3], [3]], // empty
    [[5, 1, 3], [5, 2, 3]],
  ];
  for (const op of ops) {
    for (const [sa, sb] of patterns) {
      it(`${op} ${JSON.stringify(sa)} ∘ ${JSON.stringify(sb)}: cpu matches reference`, () => {
        let a = randomTensor(sa, 11);
        let b = randomTensor(sb, 12);
        // Pow: positive bases; Div: divisors away from 0.
        if (op === 'Pow') a = add(unary(a, { kind: 'abs' }), Tensor.scalar(0.1));
        if (op === 'Div') b = add(unary(b, { kind: 'abs' }), Tensor.scalar(0.5));
        bothBackends(binaryCard, [a, b], op);
      });
    }
  }

  it('broadcasts by hand', () => {
    const a = Tensor.fromArray([1, 2, 3], [1, 3]);
    const b = Tensor.fromArray([10, 20], [2, 1]);
    const s = add(a, b);
    expect(s.shape).toEqual([2, 3]);
    expect(s.toArray()).toEqual([11, 12, 13, 21, 22, 23]);
    expect(sub(a, b).toArray()).toEqual([-9, -8, -7, -19, -18, -17]);
    // SE gate: every channel plane times its own value.
    const x = Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const g = Tensor.fromArray([0.5, 2], [1, 2, 1, 1]);
    expect(mul(x, g).toArray()).toEqual([0.5, 1, 1.5, 2, 10, 12, 14, 16]);
    expect(div(Tensor.fromArray([1, 4, 9], [3]), Tensor.scalar(2)).toArray()).toEqual([0.5, 2, 4.5]);
    expect(pow(Tensor.fromArray([2, 3], [2]), Tensor.scalar(2)).toArray()).toEqual([4, 9]);
  });

  it('integer dtypes wrap, truncate and keep the base dtype for Pow', () => {
    for (const backend of [cpuBackend, referenceBackend]) {
      const run = (a: Tensor, b: Tensor, op: BinaryOp) => apply(binaryCard, [a, b], op, backend);
      const u8 = (v: number[]) => ints(v, 'uint8');
      // numpy uint8: modulo 256.
      expect(run(u8([250, 3, 16, 7, 7]), u8([10, 5, 17, 2, 0]), 'Add').toArray()).toEqual([4, 8, 33, 9, 7]);
      expect(run(u8([250, 3, 16, 7, 7]), u8([10, 5, 17, 2, 0]), 'Sub').toArray()).toEqual([240, 254, 255, 5, 7]);
      expect(run(u8([250, 3, 16, 7, 7]), u8([10, 5, 17, 2, 0]), 'Mul').toArray()).toEqual([196, 15, 16, 14, 0]);
      // Integer division truncates; a zero divisor gives 0 (numpy's result).
      expect(run(u8([250, 3, 16, 7, 7]), u8([10, 5, 17, 2, 0]), 'Div').toArray()).toEqual([25, 0, 0, 3, 0]);
      expect(run(ints([-7, 7, -7], 'int32'), ints([2, -2, 0], 'int32'), 'Div').toArray()).toEqual([-3, -3, 0]);
      expect(run(ints([-7, 9], 'int64'), ints([2, 4], 'int64'), 'Div').toArray()).toEqual([-3, 2]);
      // int32 products wrap modulo 2^32.
      expect(run(ints([65536, 2147483647], 'int32'), ints([65536, 2], 'int32'), 'Mul').toArray()).toEqual([0, -2]);
      expect(run(ints([127], 'int8'), ints([1], 'int8'), 'Add').toArray()).toEqual([-128]);
      // Pow: the output has the base's dtype.
      const p1 = run(ints([1, 2, 3], 'int64'), Tensor.fromArray([4, 5, 0.5], [3]), 'Pow');
      expect(p1.dtype).toBe('int64');
      expect(p1.toArray()).toEqual([1, 32, 1]);
      const p2 = run(Tensor.fromArray([2, 3, 4], [3]), ints([2, 3, -1], 'int32'), 'Pow');
      expect(p2.dtype).toBe('float32');
      expect(p2.toArray()).toEqual([4, 27, 0.25]);
      expect(run(ints([2, 3], 'int32'), ints([10, 3], 'int32'), 'Pow').toArray()).toEqual([1024, 27]);
      // Broadcast integer rows.
      expect(run(u8([200, 100]), ints([100], 'uint8', []), 'Add').toArray()).toEqual([44, 200]);
    }
  });

  it('rejects mismatched dtypes (Pow excepted) and shapes that do not broadcast', () => {
    expect(() => add(Tensor.zeros([2]), ints([1, 2], 'int32'))).toThrow(ValueError);
    expect(() => add(Tensor.zeros([2, 3]), Tensor.zeros([4]))).toThrow(ShapeError);
    expect(() => mul(Tensor.zeros([2, 3, 4]), Tensor.zeros([3, 1, 5]))).toThrow(/Mul: shapes \[2, 3, 4\] and \[3, 1, 5\] do not broadcast/);
    expect(() => binary(Tensor.zeros([2]), Tensor.zeros([3]), 'Pow')).toThrow(ShapeError);
  });
});

describe('ONNX elementwise adapters', () => {
  const run = (node: OnnxNode, inputs: (Tensor | undefined)[]) => elementwiseOps[node.opType]!.compile(node)(inputs)[0]!;
  const x = Tensor.fromArray([-8, -1, 0, 0.5, 9], [5]);

  it('reads attributes with ONNX defaults', () => {
    expectClose(run(onnxNode('LeakyRelu', 16, ['x']), [x]), [-0.08, -0.01, 0, 0.5, 9]);
    expectClose(run(onnxNode('LeakyRelu', 16, ['x'], [['alpha', 0.1]]), [x]), [-0.8, -0.1, 0, 0.5, 9]);
    expectClose(run(onnxNode('HardSigmoid', 6, ['x']), [x]), [0, 0.3, 0.5, 0.6, 1]);
    expectClose(run(onnxNode('HardSigmoid', 6, ['x'], [['alpha', 1 / 6], ['beta', 0.5]]), [x]), [0, 1 / 3, 0.5, 0.5833333, 1]);
    expectClose(run(onnxNode('Erf', 13, ['x']), [Tensor.fromArray([1], [1])]), [0.8427007929497149]);
  });

  it('Clip: min/max as optional inputs from opset 11, attributes before', () => {
    const min = Tensor.scalar(-1);
    const max = Tensor.scalar(6);
    expect(run(onnxNode('Clip', 13, ['x', 'min', 'max']), [x, min, max]).toArray()).toEqual([-1, -1, 0, 0.5, 6]);
    expect(run(onnxNode('Clip', 13, ['x', '', 'max']), [x, undefined, max]).toArray()).toEqual([-8, -1, 0, 0.5, 6]);
    expect(run(onnxNode('Clip', 13, ['x']), [x]).toArray()).toEqual(x.toArray());
    expect(run(onnxNode('Clip', 6, ['x'], [['min', 0], ['max', 6]]), [x]).toArray()).toEqual([0, 0, 0, 0.5, 6]);
    const i8 = ints([-100, 5, 100], 'int8');
    expect(run(onnxNode('Clip', 13, ['x', 'min']), [i8, ints([-10], 'int8', [])]).toArray()).toEqual([-10, 5, 100]);
    expect(() => run(onnxNode('Clip', 13, ['x', 'min']), [x, Tensor.zeros([2])])).toThrow(OnnxError);
  });

  it('binary ops broadcast and report a missing input', () => {
    const a = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = Tensor.fromArray([1, 2, 3], [3]);
    expect(run(onnxNode('Sub', 14, ['a', 'b']), [a, b]).toArray()).toEqual([0, 0, 0, 3, 3, 3]);
    expect(run(onnxNode('Pow', 15, ['a', 'b']), [a, b]).toArray()).toEqual([1, 4, 27, 4, 25, 216]);
    expect(() => run(onnxNode('Add', 14, ['a', '']), [a, undefined])).toThrow(OnnxError);
  });
});
