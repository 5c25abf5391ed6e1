import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpCard } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { type GpuBackend, gpu } from '../../src/gpu.js';
import type { Activation } from '../../src/kernels/activation.js';
import { type ConvAttrs, convCard } from '../../src/kernels/conv.js';
import { type BinaryOp, type UnaryOp, binaryCard, unaryCard } from '../../src/kernels/elementwise.js';
import { GEMM_DEFAULTS, type GemmAttrs, gemmCard, matmulCard } from '../../src/kernels/gemm.js';
import { concatCard, flattenCard, padCard, reshapeCard, transposeCard } from '../../src/kernels/movement.js';
import { type ReduceAttrs, reduceMeanCard, reduceSumCard } from '../../src/kernels/reduce.js';
import { logSoftmaxCard, softmaxCard } from '../../src/kernels/softmax.js';
import { batchNormCard, batchNormTrainingCard } from '../../src/kernels/normalization.js';
import { type PoolAttrs, averagePoolCard, globalAveragePoolCard, globalMaxPoolCard, maxPoolCard } from '../../src/kernels/pool.js';
import { expectClose, randomTensor } from '../helpers.js';
import { MODES, convAttrs, tol } from './common.js';

/**
 * The GPU backward kernels (src/gpu/kernels/grad.ts) against each card's CPU `grad`, on
 * randomized cases, in gpu.js's `cpu` and `webasm` modes. The hook is called directly with the
 * same inputs, output and output gradient; every input requires grad unless the case says not.
 *
 * Tolerance: float32 sums in another order than the CPU's float64 loops; atol grows with the
 * longest reduction of the case (k), scaled to max|grad| by expectClose.
 */


const ACTIVATIONS: Activation[] = [
  { kind: 'relu' },
  { kind: 'leaky_relu', alpha: 0.1 },
  { kind: 'clip', min: -0.5, max: 0.5 },
  { kind: 'clip', min: 0, max: Infinity },
  { kind: 'clip', min: 0, max: 6 },
  { kind: 'sigmoid' },
  { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 },
  { kind: 'hard_swish' },
  { kind: 'silu' },
  { kind: 'tanh' },
];

const conv = convAttrs;

describe.each(MODES)('GPU backward kernels in gpu.js %s mode match the cards’ grad', (mode) => {
  let g: GpuBackend;
  const messages: string[] = [];
  let seed = 1;

  beforeAll(async () => {
    g = await gpu({ mode, log: (m) => messages.push(m) });
  });
  afterAll(() => {
    expect(g.stats().liveBuffers).toBe(0);
    g.destroy();
  });

  const rnd = (shape: number[], scale = 1, shift = 0) => {
    const t = randomTensor(shape, seed++);
    if (scale === 1 && shift === 0) return t;
    return new Tensor(t.f32().map((v) => v * scale + shift), t.shape);
  };

  /** The GPU backward and the card's grad on the same call; compares; frees the GPU gradients. */
  function check<A>(card: OpCard<A>, inputs: Tensor[], attrs: A, k = 1, want: boolean[] = inputs.map(() => true)): void {
    inputs.forEach((t, i) => (t.requiresGrad = want[i]!));
    const y = card.cpu ? card.cpu(inputs, attrs) : card.reference(inputs, attrs);
    const gOut = rnd([...y.shape]);
    const cpu = card.grad!(inputs, attrs, y, gOut);
    const before = g.coverage()[`${card.name} backward`]?.gpu ?? 0;
    const dev = g.grad(card, inputs, attrs, y, gOut);
    const what = `${card.name} ${inputs.map((t) => JSON.stringify(t.shape)).join(' ')} ${JSON.stringify(attrs)}`;
    expect(dev, `${what}: ran on the GPU (${messages.join('; ')})`).toBeDefined();
    expect(g.coverage()[`${card.name} backward`]!.gpu).toBe(before + 1);
    inputs.forEach((t, i) => {
      const a = dev![i] ?? null;
      if (!want[i]) {
        expect(a, `${what}: no gradient for input ${i}`).toBeNull();
        return;
      }
      expect(a, `${what}: gradient of input ${i}`).not.toBeNull();
      expect(a!.device, `${what}: gradient ${i} stays on the device`).not.toBeNull();
      expectClose(a!, cpu[i]!, { ...tol(k), what: `${what} ∂input ${i}` });
      a!.dispose();
    });
  }

  describe('unary and activations', () => {
    const ops: UnaryOp[] = [...ACTIVATIONS, { kind: 'neg' }, { kind: 'abs' }, { kind: 'exp' }];
    it.each(ops.map((o) => [JSON.stringify(o), o] as const))('%s', (_, op) => check(unaryCard, [rnd([2, 3, 5, 7], 5)], op));
    it('sqrt', () => check(unaryCard, [rnd([3, 40], 1, 2)], { kind: 'sqrt' }));
  });

  describe('binary with broadcasting', () => {
    const cases: [BinaryOp, number[], number[]][] = [];
    for (const op of ['Add', 'Sub', 'Mul', 'Div'] as BinaryOp[]) {
      cases.push([op, [2, 3, 4, 5], [2, 3, 4, 5]], [op, [2, 3, 4, 5], [3, 1, 1]], [op, [1, 3, 1, 5], [2, 3, 4, 5]], [op, [4, 5], [5]], [op, [6, 1], []], [op, [2, 16, 1, 1], [2, 16, 7, 7]]);
    }
    it.each(cases)('%s %j %j', (op, a, b) => {
      const tb = op === 'Div' ? rnd(b, 1, 2.5) : rnd(b);
      const k = Math.max(...a, ...b) ** 2 * 2;
      check(binaryCard, [rnd(a), tb], op, k);
    });
    it('one operand without grad', () => check(binaryCard, [rnd([2, 8, 3, 3]), rnd([2, 8, 1, 1])], 'Mul', 9, [true, false]));
    it('a broadcast of 4 separate runs falls back to the card’s grad, with a message', () => {
      const a = rnd([2, 3, 2, 3, 2, 3, 2]).requireGrad();
      const b = rnd([3, 1, 3, 1, 3, 1]).requireGrad();
      const y = binaryCard.reference([a, b], 'Add');
      expect(g.grad(binaryCard, [a, b], 'Add', y, rnd([...y.shape]))).toBeUndefined();
      expect(messages).toContain('lightconv/gpu: Add backward runs on the CPU: a broadcast over more than 3 separate runs of dims'.replace('Add', binaryCard.name));
      expect(g.coverage()[`${binaryCard.name} backward`]!.cpu).toBeGreaterThan(0);
    });
  });

  it('GlobalAveragePool', () => check(globalAveragePoolCard, [rnd([2, 5, 4, 3])], undefined));
  it('an op without a backward kernel falls back (GlobalMaxPool)', () => {
    const x = rnd([1, 2, 3, 3]).requireGrad();
    const y = globalMaxPoolCard.reference([x], undefined);
    expect(g.grad(globalMaxPoolCard, [x], undefined, y, rnd([1, 2, 1, 1]))).toBeUndefined();
    expect(messages).toContain('lightconv/gpu: GlobalMaxPool backward runs on the CPU: no gpu.js backward kernel');
    expect(g.coverage()['GlobalMaxPool backward']).toEqual({ gpu: 0, cpu: 1, reasons: ['no gpu.js backward kernel'] });
  });

  describe('Conv (input, weight and bias gradients)', () => {
    const cases: [string, number[], number[], ConvAttrs][] = [
      ['pointwise', [2, 16, 5, 5], [24, 16, 1, 1], conv([1, 1], [0, 0, 0, 0], [1, 1], 1)],
      ['grouped pointwise', [2, 8, 3, 3], [6, 4, 1, 1], conv([1, 1], [0, 0, 0, 0], [1, 1], 2)],
      ['3×3 pad 1', [2, 5, 7, 6], [4, 5, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 1)],
      ['3×3 stride 2 asymmetric pads', [1, 3, 9, 8], [6, 3, 3, 3], conv([2, 2], [0, 1, 1, 0], [1, 1], 1)],
      ['depthwise 3×3', [2, 6, 8, 7], [6, 1, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 6)],
      ['depthwise 5×5 stride 2', [1, 8, 11, 9], [8, 1, 5, 5], conv([2, 2], [2, 2, 2, 2], [1, 1], 8)],
      ['depthwise multiplier 2', [1, 3, 6, 6], [6, 1, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 3)],
      ['stride 2 dilation 2', [1, 4, 13, 12], [5, 4, 3, 3], conv([2, 2], [2, 2, 2, 2], [2, 2], 1)],
      ['stride 3 (taps that skip outputs)', [2, 3, 10, 11], [4, 3, 2, 2], conv([3, 3], [0, 0, 1, 1], [1, 1], 1)],
      ['kernel larger than the input', [1, 2, 2, 3], [3, 2, 4, 4], conv([1, 1], [2, 2, 2, 2], [1, 1], 1)],
      ['1-D', [2, 4, 10], [3, 4, 3], conv([2], [1, 1], [1], 1)],
      ['1100 weight-gradient terms (past the 1000-iteration loop limit)', [11, 2, 10, 10], [3, 2, 1, 1], conv([1, 1], [0, 0, 0, 0], [1, 1], 1)],
    ];
    const k = (x: number[], w: number[], y: readonly number[]) => Math.max(w[0]! * (w[2] ?? 1) * (w[3] ?? 1), x[0]! * y.slice(2).reduce((p, q) => p * q, 1));
    it.each(cases)('%s', (_, x, w, attrs) => {
      const inputs = [rnd(x), rnd(w), rnd([w[0]!])];
      check(convCard, inputs, attrs, k(x, w, convCard.shape([x, w], attrs)));
    });
    it('without bias, input without grad (a first layer)', () => {
      check(convCard, [rnd([2, 3, 6, 6]), rnd([4, 3, 3, 3])], conv([1, 1], [1, 1, 1, 1], [1, 1], 1), 72, [false, true]);
    });
    it.each(ACTIVATIONS.map((a) => [JSON.stringify(a), a] as const))('through a fused %s', (_, a) => {
      check(convCard, [rnd([2, 6, 4, 3]), rnd([5, 6, 3, 3]), rnd([5])], conv([1, 1], [1, 1, 1, 1], [1, 1], 1, a), 54);
    });
  });

  describe('max and average pooling', () => {
    const cases: [string, number[], PoolAttrs][] = [
      ['k3 s1 p1 (overlapping windows)', [2, 3, 7, 9], { kernel: [3, 3], pads: [1, 1, 1, 1] }],
      ['k2 s2', [1, 4, 8, 8], { kernel: [2, 2], strides: [2, 2] }],
      ['1×1 spatial, k3 p1', [2, 3, 1, 1], { kernel: [3, 3], pads: [1, 1, 1, 1] }],
      ['kernel larger than input', [1, 2, 2, 3], { kernel: [4, 4], pads: [1, 1, 1, 1] }],
      ['stride 2 dilation 2', [1, 2, 9, 11], { kernel: [3, 3], strides: [2, 2], dilations: [2, 2], pads: [2, 1, 2, 1] }],
      ['ceil mode', [1, 2, 7, 7], { kernel: [3, 3], strides: [2, 2], ceilMode: true }],
      ['count_include_pad', [1, 2, 6, 5], { kernel: [3, 3], pads: [1, 1, 1, 1], countIncludePad: true }],
      ['ceil mode + count_include_pad', [1, 2, 6, 6], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true, countIncludePad: true }],
      ['SAME_UPPER', [1, 2, 7, 6], { kernel: [3, 2], strides: [2, 2], autoPad: 'SAME_UPPER' }],
      ['1-D', [2, 3, 11], { kernel: [3], strides: [2], pads: [1, 1] }],
    ];
    it.each(cases)('MaxPool %s', (_, x, attrs) => check(maxPoolCard, [rnd(x)], attrs, 9));
    it.each(cases)('AveragePool %s', (_, x, attrs) => check(averagePoolCard, [rnd(x)], attrs, 9));
    it('MaxPool with ties routes to the first maximal tap', () => {
      const x = new Tensor(rnd([2, 3, 6, 6]).f32().map((v) => Math.round(v * 2)), [2, 3, 6, 6]);
      check(maxPoolCard, [x], { kernel: [3, 3], pads: [1, 1, 1, 1] }, 9);
    });
    it('3-D pooling falls back to the card’s grad', () => {
      const x = rnd([1, 2, 4, 4, 4]).requireGrad();
      const y = maxPoolCard.reference([x], { kernel: [2, 2, 2] });
      expect(g.grad(maxPoolCard, [x], { kernel: [2, 2, 2] }, y, rnd([...y.shape]))).toBeUndefined();
      expect(messages).toContain('lightconv/gpu: MaxPool backward runs on the CPU: 3-D pooling (the kernel does 1-D and 2-D)');
    });
  });

  describe('movement', () => {
    it.each([[[0, 2, 3, 1]], [[2, 0, 1]], [undefined]] as const)('Transpose %j', (perm) => {
      const x = rnd(perm?.length === 3 ? [4, 5, 6] : [2, 3, 4, 5]);
      check(transposeCard, [x], perm ? { perm: [...perm] } : {});
    });
    it('Flatten (a view of the gradient, no launch)', () => {
      const x = rnd([2, 3, 4]).requireGrad();
      const gOut = g.upload(rnd([2, 12]));
      const [gx] = g.grad(flattenCard, [x], { axis: 1 }, gOut, gOut)!;
      expect(gx!.shape).toEqual([2, 3, 4]);
      expect(gx!.device!.handle).toBe(gOut.device!.handle);
      expectClose(gx!, gOut.dataSync());
      gx!.dispose();
      gOut.dispose();
    });
    it('Reshape of a host gradient (uploaded)', () => {
      const x = rnd([2, 6]).requireGrad();
      const gOut = rnd([3, 4]);
      const [gx] = g.grad(reshapeCard, [x], { shape: [3, 4] }, gOut, gOut)!;
      expect(gx!.shape).toEqual([2, 6]);
      expect(gx!.device).not.toBeNull();
      expectClose(gx!, gOut.dataSync());
      gx!.dispose();
    });
  });

  describe('softmax, reductions, concat', () => {
    it.each([
      ['Softmax last axis', [3, 10], -1],
      ['Softmax channels of NCHW', [2, 5, 3, 4], 1],
      ['Softmax over 1100', [2, 1100], 1],
    ] as const)('%s', (_, shape, axis) => check(softmaxCard, [rnd([...shape], 4)], { axis }, shape[axis < 0 ? shape.length + axis : axis]));
    it.each([
      ['LogSoftmax last axis', [3, 10], -1],
      ['LogSoftmax axis 0', [4, 3, 2], 0],
    ] as const)('%s', (_, shape, axis) => check(logSoftmaxCard, [rnd([...shape], 4)], { axis }, shape[axis < 0 ? shape.length + axis : axis]));
    it.each([
      ['ReduceMean over H, W keepdims', reduceMeanCard, [2, 3, 4, 5], { axes: [2, 3], keepdims: true }],
      ['ReduceMean over C', reduceMeanCard, [2, 3, 4, 5], { axes: [1], keepdims: false }],
      ['ReduceSum over everything', reduceSumCard, [3, 4, 5], { axes: [], keepdims: false }],
      ['ReduceSum over the last axis, negative', reduceSumCard, [3, 4, 5], { axes: [-1], keepdims: true }],
    ] as const)('%s', (_, card, shape, attrs) => check(card as OpCard<ReduceAttrs>, [rnd([...shape])], { ...attrs, axes: [...attrs.axes] } as ReduceAttrs));
    it('Concat of 3 along channels, the middle one without grad', () => {
      check(concatCard, [rnd([2, 3, 4]), rnd([2, 5, 4]), rnd([2, 1, 4])], { axis: 1 }, 1, [true, false, true]);
    });
    it('Concat along the last axis', () => check(concatCard, [rnd([3, 2]), rnd([3, 4])], { axis: -1 }));
    it.each([
      ['NCHW spatial', [2, 3, 4, 5], [0, 0, 1, 2, 0, 0, 2, 1]],
      ['with a crop (negative pads)', [2, 3, 6, 5], [0, 1, -1, 0, 0, 0, 2, -2]],
      ['1-D', [7], [3, 2]],
    ] as const)('Pad constant %s', (_, shape, pads) => check(padCard, [rnd([...shape])], { pads: [...pads], mode: 'constant', value: 0.5 }));
    it('reflect padding falls back to the card’s grad', () => {
      const x = rnd([1, 2, 4, 4]).requireGrad();
      const attrs = { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'reflect' as const, value: 0 };
      const y = padCard.reference([x], attrs);
      expect(g.grad(padCard, [x], attrs, y, rnd([...y.shape]))).toBeUndefined();
      expect(messages).toContain('lightconv/gpu: Pad backward runs on the CPU: reflect padding (the GPU backward kernel does constant padding)');
    });
  });

  describe('batch norm', () => {
    const bn = (c: number) => [rnd([c]), rnd([c]), rnd([c]), rnd([c], 0.5, 1)];
    it.each([
      ['inference, all inputs', [2, 5, 4, 3], [true, true, true, true, true], undefined],
      ['inference, x / scale / bias (frozen stats)', [3, 4, 7, 7], [true, true, true, false, false], undefined],
      ['inference, fused relu', [2, 3, 5, 5], [true, true, true, false, false], { kind: 'relu' } as Activation],
      ['inference, [N, C]', [6, 5], [true, true, true, true, true], undefined],
    ] as const)('%s', (_, xs, want, activation) => {
      const attrs = { epsilon: 1e-3, ...(activation ? { activation } : {}) };
      check(batchNormCard, [rnd([...xs]), ...bn(xs[1])], attrs, xs.reduce((p, q) => p * q, 1) / xs[1], [...want]);
    });
    it.each([
      ['training', [4, 6, 5, 5], [true, true, true]],
      ['training, 1200 per channel', [3, 2, 20, 20], [true, true, true]],
      ['training, x only', [2, 3, 4, 4], [true, false, false]],
      ['training, parameters only', [2, 3, 4, 4], [false, true, true]],
    ] as const)('%s', (_, xs, want) => {
      const x = new Tensor(rnd([...xs]).f32().map((v, i) => v * 2 + (i % 3)), [...xs]);
      check(batchNormTrainingCard, [x, rnd([xs[1]]), rnd([xs[1]])], { epsilon: 1e-5 }, xs.reduce((p, q) => p * q, 1) / xs[1], [...want]);
    });
  });

  describe('Gemm', () => {
    const gemm = (over: Partial<GemmAttrs>): GemmAttrs => ({ ...GEMM_DEFAULTS, ...over });
    it.each([
      ['plain', [5, 7], [7, 3], null, gemm({})],
      ['transA', [7, 5], [7, 3], [3], gemm({ transA: true })],
      ['transB', [5, 7], [3, 7], [5, 1], gemm({ transB: true, alpha: 0.5, beta: 2 })],
      ['both', [7, 5], [3, 7], [5, 3], gemm({ transA: true, transB: true })],
      ['scalar C', [4, 6], [6, 2], [], gemm({ beta: -1 })],
      ['K 1100, relu', [3, 1100], [1100, 4], null, gemm({ activation: { kind: 'relu' } })],
      ['M 1100 (long ∂B sum)', [1100, 3], [3, 4], [4], gemm({})],
      ['classifier (transB, hard-swish)', [2, 64], [10, 64], null, gemm({ transB: true, activation: { kind: 'hard_swish' } })],
      ['with C, transB, relu', [3, 20], [5, 20], [5], gemm({ transB: true, activation: { kind: 'relu' } })],
      ['with C, transA, alpha / beta, sigmoid', [20, 3], [20, 5], [3, 1], gemm({ transA: true, alpha: 0.5, beta: 2, activation: { kind: 'sigmoid' } })],
    ] as const)('%s', (_, a, b, c, attrs) => {
      const inputs = [rnd([...a]), rnd([...b]), ...(c ? [rnd([...c])] : [])];
      check(gemmCard, inputs, attrs, Math.max(...a, ...b));
    });
    it.each([
      [[5, 7], [7, 3]],
      [[2, 1100], [1100, 3]],
      [[1100, 2], [2, 3]],
    ])('MatMul %j %j', (a, b) => check(matmulCard, [rnd(a), rnd(b)], undefined, Math.max(...a, ...b)));
    it('batched MatMul falls back to the card’s grad', () => {
      const a = rnd([2, 3, 4]).requireGrad();
      const b = rnd([4, 5]).requireGrad();
      const y = matmulCard.reference([a, b], undefined);
      expect(g.grad(matmulCard, [a, b], undefined, y, rnd([...y.shape]))).toBeUndefined();
    });
  });
});
