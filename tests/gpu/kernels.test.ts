import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OpCard, apply, referenceBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { type GpuBackend, gpu } from '../../src/gpu.js';
import type { Activation } from '../../src/kernels/activation.js';
import { type ConvAttrs, convCard } from '../../src/kernels/conv.js';
import { type BinaryOp, type UnaryOp, binaryCard, unaryCard } from '../../src/kernels/elementwise.js';
import { GEMM_DEFAULTS, type GemmAttrs, gemmCard, matmulCard } from '../../src/kernels/gemm.js';
import { concatCard, flattenCard, identityCard, padCard, reshapeCard, squeezeCard, transposeCard, unsqueezeCard } from '../../src/kernels/movement.js';
import { batchNormCard } from '../../src/kernels/normalization.js';
import { type PoolAttrs, averagePoolCard, globalAveragePoolCard, globalMaxPoolCard, maxPoolCard } from '../../src/kernels/pool.js';
import { type ReduceAttrs, reduceMaxCard, reduceMeanCard, reduceMinCard, reduceSumCard } from '../../src/kernels/reduce.js';
import { logSoftmaxCard, softmaxCard } from '../../src/kernels/softmax.js';
import { expectClose, randomTensor } from '../helpers.js';
import { MODES, convAttrs, tol } from './common.js';

/**
 * Every op card's gpu.js kernel against its reference kernel, on the randomized and odd cases of
 * the CPU tests (1×1 spatial, kernel larger than the input, stride 2 with dilation 2, reductions
 * longer than gpu.js's 1000-iteration loop limit). gpu.js runs here in its `cpu` mode (the kernel
 * source translated to JavaScript) and its `webasm` mode (translated to WebAssembly, f32 math):
 * the same translation front end as the GL backends, with no GPU. `headlessgl` needs the native
 * `gl` package, which the default install does not build (it joins where built); the browser
 * test covers WebGL2 and WebGL.
 *
 * Tolerance: float32 sums in another order than the float64 reference; atol grows with the
 * reduction length k (scaled to max|y| by expectClose).
 */


const ACTIVATIONS: Activation[] = [
  { kind: 'none' },
  { kind: 'relu' },
  { kind: 'leaky_relu', alpha: 0.1 },
  { kind: 'clip', min: -0.5, max: 0.5 },
  { kind: 'clip', min: 0, max: Infinity },
  { kind: 'sigmoid' },
  { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 },
  { kind: 'hard_swish' },
  { kind: 'silu' },
  { kind: 'tanh' },
];

const conv = convAttrs;

describe.each(MODES)('GPU kernels in gpu.js %s mode match the reference', (mode) => {
  let g: GpuBackend;
  const messages: string[] = [];
  let seed = 1;

  beforeAll(async () => {
    g = await gpu({ mode, log: (m) => messages.push(m) });
  });
  afterAll(() => g.destroy());

  /** Runs the card on the GPU backend and on the reference; compares; frees the GPU result. */
  function check<A>(card: OpCard<A>, inputs: Tensor[], attrs: A, k = 1): Tensor {
    const out = apply(card, inputs, attrs, g);
    const ref = apply(card, inputs, attrs, referenceBackend);
    expectClose(out, ref, { ...tol(k), what: `${card.name} ${inputs.map((t) => JSON.stringify(t.shape)).join(' ')} ${JSON.stringify(attrs)}` });
    out.dispose();
    return ref;
  }
  const rnd = (shape: number[]) => randomTensor(shape, seed++);

  describe('Conv', () => {
    const cases: [string, number[], number[], ConvAttrs][] = [
      ['pointwise', [2, 16, 5, 5], [24, 16, 1, 1], conv([1, 1], [0, 0, 0, 0], [1, 1], 1)],
      ['pointwise 1×1 spatial', [3, 8, 1, 1], [5, 8, 1, 1], conv([1, 1], [0, 0, 0, 0], [1, 1], 1)],
      ['grouped pointwise', [2, 8, 3, 3], [6, 4, 1, 1], conv([1, 1], [0, 0, 0, 0], [1, 1], 2)],
      ['1152 channels 1×1 (past the 1000-iteration loop limit)', [1, 1152, 2, 3], [7, 1152, 1, 1], conv([1, 1], [0, 0, 0, 0], [1, 1], 1)],
      ['3×3 pad 1', [2, 5, 7, 6], [4, 5, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 1)],
      ['3×3 stride 2 asymmetric pads', [1, 3, 9, 8], [6, 3, 3, 3], conv([2, 2], [0, 1, 1, 0], [1, 1], 1)],
      ['depthwise 3×3', [2, 6, 8, 7], [6, 1, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 6)],
      ['depthwise 5×5 stride 2', [1, 8, 11, 9], [8, 1, 5, 5], conv([2, 2], [2, 2, 2, 2], [1, 1], 8)],
      ['depthwise multiplier 2', [1, 3, 6, 6], [6, 1, 3, 3], conv([1, 1], [1, 1, 1, 1], [1, 1], 3)],
      ['stride 2 dilation 2', [1, 4, 13, 12], [5, 4, 3, 3], conv([2, 2], [2, 2, 2, 2], [2, 2], 1)],
      ['dilated depthwise', [1, 4, 9, 9], [4, 1, 3, 3], conv([1, 1], [2, 2, 2, 2], [2, 2], 4)],
      ['kernel larger than the input', [1, 2, 2, 3], [3, 2, 4, 4], conv([1, 1], [2, 2, 2, 2], [1, 1], 1)],
      ['1-D', [2, 4, 10], [3, 4, 3], conv([2], [1, 1], [1], 1)],
    ];
    it.each(cases)('%s', (_, x, w, attrs) => {
      check(convCard, [rnd(x), rnd(w), rnd([w[0]!])], attrs, w[1]! * (w[2] ?? 1) * (w[3] ?? 1));
    });
    it('without bias', () => check(convCard, [rnd([1, 4, 5, 5]), rnd([3, 4, 3, 3])], conv([1, 1], [1, 1, 1, 1], [1, 1], 1), 36));
    it.each(ACTIVATIONS.map((a) => [JSON.stringify(a), a] as const))('fuses bias + %s', (_, a) => {
      check(convCard, [rnd([2, 6, 4, 3]), rnd([5, 6, 3, 3]).reshape([5, 6, 3, 3]), rnd([5])], conv([1, 1], [1, 1, 1, 1], [1, 1], 1, a), 54);
    });
  });

  describe('Gemm and MatMul', () => {
    const gemm = (over: Partial<GemmAttrs>): GemmAttrs => ({ ...GEMM_DEFAULTS, ...over });
    it.each([
      ['plain', [5, 7], [7, 3], null, gemm({})],
      ['transA', [7, 5], [7, 3], [3], gemm({ transA: true })],
      ['transB', [5, 7], [3, 7], [5, 1], gemm({ transB: true, alpha: 0.5, beta: 2 })],
      ['both', [7, 5], [3, 7], [5, 3], gemm({ transA: true, transB: true })],
      ['scalar C', [4, 6], [6, 2], [], gemm({ beta: -1 })],
      ['beta 0 ignores C', [4, 6], [6, 2], [4, 2], gemm({ beta: 0 })],
      ['K 1100', [3, 1100], [1100, 4], [4], gemm({ activation: { kind: 'relu' } })],
      ['classifier (transB, hard-swish)', [2, 64], [10, 64], [10], gemm({ transB: true, activation: { kind: 'hard_swish' } })],
    ] as const)('%s', (_, a, b, c, attrs) => {
      const inputs = [rnd([...a]), rnd([...b])];
      if (c) inputs.push(rnd([...c]));
      check(gemmCard, inputs, attrs, 1100);
    });
    it.each([
      ['2-D', [5, 7], [7, 3]],
      ['batched', [2, 3, 4], [2, 4, 3]],
      ['shared right operand', [3, 4, 70], [70, 9]],
      ['shared left operand', [4, 5], [3, 5, 2]],
      ['1-D left', [7], [7, 3]],
      ['1-D right', [2, 5, 7], [7]],
      ['broadcast batch dims (CPU fallback)', [2, 1, 3, 4], [1, 3, 4, 2]],
    ] as const)('MatMul %s', (_, a, b) => {
      check(matmulCard, [rnd([...a]), rnd([...b])], undefined, 70);
    });
  });

  describe('elementwise', () => {
    const unaryOps: UnaryOp[] = [...ACTIVATIONS, { kind: 'neg' }, { kind: 'abs' }, { kind: 'exp' }, { kind: 'erf' }];
    it.each(unaryOps.map((op) => [JSON.stringify(op), op] as const))('Unary %s', (_, op) => {
      check(unaryCard, [Tensor.rand([2, 3, 5, 7], { seed: seed++, low: -8, high: 8 })], op);
    });
    it('Unary sqrt', () => check(unaryCard, [Tensor.rand([3, 40], { seed: seed++, low: 0, high: 9 })], { kind: 'sqrt' }));
    const shapes: [number[], number[]][] = [
      [[2, 3, 4, 5], [2, 3, 4, 5]],
      [[2, 3, 4, 5], []],
      [[], [2, 3]],
      [[2, 3, 4, 5], [2, 3, 1, 1]],
      [[2, 3, 4, 5], [3, 1, 1]],
      [[2, 3, 4, 5], [5]],
      [[3, 1, 5], [1, 4, 1]],
      [[1, 3, 1, 1], [2, 3, 4, 5]],
      [[2, 1, 3, 1, 2, 1, 2], [1, 2, 1, 2, 1, 2, 1]],
    ];
    const ops: BinaryOp[] = ['Add', 'Sub', 'Mul', 'Div'];
    it.each(ops.flatMap((op) => shapes.map(([a, b]) => [op, JSON.stringify(a), JSON.stringify(b), a, b] as const)))('%s %s ∘ %s', (op, _, __, a, b) => {
      check(binaryCard, [rnd(a), rnd(b)], op);
    });
    it('Pow (CPU fallback, still right)', () => check(binaryCard, [Tensor.rand([3, 4], { seed: seed++, low: 0.1, high: 2 }), rnd([4])], 'Pow'));
  });

  describe('pooling and batch norm', () => {
    const cases: [string, number[], PoolAttrs][] = [
      ['k3 s1 p1', [2, 3, 7, 9], { kernel: [3, 3], pads: [1, 1, 1, 1] }],
      ['k2 s2', [1, 4, 8, 8], { kernel: [2, 2], strides: [2, 2] }],
      ['1×1 spatial, k3 p1', [2, 3, 1, 1], { kernel: [3, 3], pads: [1, 1, 1, 1] }],
      ['kernel larger than input', [1, 2, 2, 3], { kernel: [4, 4], pads: [1, 1, 1, 1] }],
      ['stride 2 dilation 2', [1, 2, 9, 11], { kernel: [3, 3], strides: [2, 2], dilations: [2, 2], pads: [2, 1, 2, 1] }],
      ['ceil mode', [1, 2, 7, 7], { kernel: [3, 3], strides: [2, 2], ceilMode: true }],
      ['count_include_pad', [1, 2, 6, 5], { kernel: [3, 3], pads: [1, 1, 1, 1], countIncludePad: true }],
      ['ceil mode + count_include_pad', [1, 2, 6, 6], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true, countIncludePad: true }],
      ['SAME_UPPER', [1, 2, 7, 6], { kernel: [3, 2], strides: [2, 2], autoPad: 'SAME_UPPER' }],
      ['1-D', [2, 3, 11], { kernel: [3], strides: [2], pads: [1, 1] }],
      ['3-D (CPU fallback)', [1, 2, 4, 4, 4], { kernel: [2, 2, 2] }],
    ];
    it.each(cases)('MaxPool %s', (_, x, attrs) => {
      check(maxPoolCard, [rnd(x)], attrs);
    });
    it.each(cases)('AveragePool %s', (_, x, attrs) => {
      check(averagePoolCard, [rnd(x)], attrs, 9);
    });
    it.each([[[2, 5, 7, 6]], [[1, 3, 40, 40]], [[2, 4, 9]], [[1, 2, 1, 1]]])('global pools %j', (x) => {
      const t = rnd(x);
      check(globalAveragePoolCard, [t], undefined, 1600);
      check(globalMaxPoolCard, [t], undefined);
    });
    it.each(ACTIVATIONS.slice(0, 4).map((a) => [a.kind, a] as const))('BatchNormalization + %s', (_, activation) => {
      const c = 5;
      const v = Tensor.rand([c], { seed: seed++, low: 0.1, high: 2 });
      check(batchNormCard, [rnd([2, c, 4, 3]), rnd([c]), rnd([c]), rnd([c]), v], { epsilon: 1e-3, activation });
      check(batchNormCard, [rnd([3, c]), rnd([c]), rnd([c]), rnd([c]), v], { epsilon: 1e-5 });
    });
  });

  describe('softmax and reductions', () => {
    it.each([
      [[2, 1000], -1],
      [[2, 3, 4], 1],
      [[3, 4], 0],
      [[5], 0],
    ] as const)('Softmax / LogSoftmax %j axis %d', (x, axis) => {
      const t = Tensor.rand([...x], { seed: seed++, low: -20, high: 20 });
      check(softmaxCard, [t], { axis }, 1000);
      check(logSoftmaxCard, [t], { axis }, 1000);
    });
    const cases: [string, number[], ReduceAttrs][] = [
      ['H, W keepdims', [2, 3, 4, 5], { axes: [2, 3], keepdims: true }],
      ['C', [2, 3, 4, 5], { axes: [1], keepdims: false }],
      ['all', [2, 3, 4], { axes: [], keepdims: true }],
      ['negative axis', [2, 3, 4], { axes: [-1], keepdims: false }],
      ['long line (1200)', [2, 1200], { axes: [1], keepdims: true }],
      ['non-adjacent axes (CPU fallback)', [2, 3, 4, 5], { axes: [0, 2], keepdims: true }],
      ['noop with empty axes', [2, 3], { axes: [], keepdims: true, noopWithEmptyAxes: true }],
    ];
    it.each(cases)('Reduce* %s', (_, x, attrs) => {
      const t = rnd(x);
      for (const card of [reduceSumCard, reduceMeanCard, reduceMaxCard, reduceMinCard]) check(card, [t], attrs, 1200);
    });
  });

  describe('movement', () => {
    it.each([
      [[[2, 3, 4], [2, 5, 4]], 1],
      [[[2, 3], [4, 3], [1, 3]], 0],
      [[[2, 3, 1], [2, 3, 2], [2, 3, 3], [2, 3, 1]], -1],
      [[[2, 3]], 1],
    ] as const)('Concat %j axis %d', (shapes, axis) => {
      check(concatCard, shapes.map((s) => rnd([...s])), { axis });
    });
    it.each([
      [[2, 3, 4], [2, 0, 1]],
      [[2, 3, 4, 5], [0, 2, 3, 1]],
      [[2, 3, 4, 5], undefined],
      [[1, 3, 1, 5], [3, 2, 1, 0]],
      [[2, 1, 3, 2, 2, 1, 2, 3], [7, 6, 5, 4, 3, 2, 1, 0]],
    ] as const)('Transpose %j perm %j', (x, perm) => {
      check(transposeCard, [rnd([...x])], perm ? { perm: [...perm] } : {});
    });
    it.each([
      [[2, 3, 4, 5], [0, 0, 1, 2, 0, 0, 2, 1], 'constant', 0.5],
      [[2, 3, 4, 5], [0, 1, 1, 2, 0, 0, 2, 1], 'edge', 0],
      [[2, 3, 4, 5], [0, 0, 2, 3, 0, 0, 1, 4], 'reflect', 0],
      [[1, 3, 6, 6], [0, 0, -1, 1, 0, 0, 2, -2], 'constant', 0],
      [[1, 3, 6, 6], [0, 0, -1, 2, 0, 0, 1, -2], 'reflect', 0],
      [[7], [2, 3], 'reflect', 0],
      [[3, 4], [1, -1, 0, 2], 'edge', 0],
      [[1, 2, 2, 2, 2], [0, 0, 1, 1, 1, 0, 0, 1, 1, 1], 'constant', 0],
    ] as const)('Pad %j pads %j %s', (x, pads, mode, value) => {
      check(padCard, [rnd([...x])], { pads: [...pads], mode, value });
    });
    it('Reshape, Flatten, Squeeze, Unsqueeze and Identity are views of one device buffer', () => {
      const x = g.upload(rnd([2, 3, 1, 4]));
      const before = g.stats().liveBuffers;
      const views = [
        apply(reshapeCard, [x], { shape: [6, -1] }, g),
        apply(flattenCard, [x], { axis: 2 }, g),
        apply(squeezeCard, [x], { axes: [2] }, g),
        apply(unsqueezeCard, [x], { axes: [0] }, g),
        apply(identityCard, [x], undefined, g),
        x.reshape([24]),
      ];
      expect(g.stats().liveBuffers).toBe(before);
      expect(views.map((v) => v.shape)).toEqual([[6, 4], [6, 4], [2, 3, 4], [1, 2, 3, 1, 4], [2, 3, 1, 4], [24]]);
      for (const v of views) expect(Array.from(v.dataSync())).toEqual(Array.from(x.dataSync()));
      x.dispose();
      expect(g.stats().liveBuffers).toBe(before); // the views still hold it
      views.forEach((v) => v.dispose());
      expect(g.stats().liveBuffers).toBe(before - 1);
    });
  });

  it('frees every result: no live buffers remain', () => {
    expect(g.stats().liveBuffers).toBe(0);
  });

  it('reports coverage and one message per op and reason', () => {
    const cov = g.coverage();
    expect(cov.Conv!.gpu).toBeGreaterThan(10);
    expect(cov.Conv!.cpu).toBe(0);
    expect(cov.Unary!.reasons).toEqual(['erf has no GPU kernel']);
    expect(cov.MaxPool!.reasons).toEqual(['3-D pooling (the kernel does 1-D and 2-D)']);
    expect(cov.MatMul!.reasons).toEqual(['broadcast batch dims']);
    expect(cov.Pad!.reasons).toEqual(['rank 5 (the kernel pads up to 4 dims)']);
    const fallbacks = messages.filter((m) => m.includes('runs on the CPU:'));
    expect(new Set(fallbacks).size).toBe(fallbacks.length);
    expect(fallbacks).toContain('lightconv/gpu: Binary runs on the CPU: Pow has no GPU kernel (GLSL pow is undefined for negative bases)');
  });
});
