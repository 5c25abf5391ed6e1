import { describe, expect, it } from 'vitest';
import { OnnxError, ShapeError, ValueError } from '../../src/core/errors.js';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { OnnxNode, type AttrValue } from '../../src/io/onnx/node.js';
import { convOps } from '../../src/io/onnx/ops/conv.js';
import { type Activation, activationFn } from '../../src/kernels/activation.js';
import { type ConvAttrs, type ConvOptions, conv, convCard } from '../../src/kernels/conv.js';
import { Rng, expectClose, randomTensor } from '../helpers.js';

/**
 * Tolerance: the reference sums in float64; the fast kernels also add in double but in another
 * order, and the GEMM rounds C to float32 between blocks of 256 products. The difference is a
 * few float32 ulps of the output's magnitude, so atol 1e-5 × max|y| leaves wide room, while an
 * indexing or padding bug moves outputs by order max|y|.
 */
const TOL = { atol: 1e-5, rtol: 1e-4 };

let seed = 1;

/** Random input, weight and (optionally) bias; the fast kernel checked against the reference. */
function checkAgainstReference(x: number[], w: number[], opts: ConvOptions = {}, withBias = true): Tensor {
  const X = randomTensor(x, seed++);
  const W = randomTensor(w, seed++);
  const B = withBias ? randomTensor([w[0]!], seed++) : null;
  const fast = conv(X, W, B, opts);
  const ref = withBackend(referenceBackend, () => conv(X, W, B, opts));
  expectClose(fast, ref, { ...TOL, what: `conv x${JSON.stringify(x)} w${JSON.stringify(w)} ${JSON.stringify(opts)}` });
  return fast;
}

const ACTIVATIONS: Activation[] = [
  { kind: 'none' },
  { kind: 'relu' },
  { kind: 'leaky_relu', alpha: 0.1 },
  { kind: 'clip', min: -0.5, max: 0.5 },
  { kind: 'sigmoid' },
  { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 },
  { kind: 'hard_swish' },
  { kind: 'silu' },
  { kind: 'tanh' },
];

describe('conv: 1×1 stride-1 unpadded (GEMM on NCHW)', () => {
  it('matches the reference with bias', () => {
    checkAgainstReference([2, 16, 5, 5], [24, 16, 1, 1]);
  });
  it('handles 1×1 spatial size', () => {
    checkAgainstReference([3, 8, 1, 1], [5, 8, 1, 1]);
  });
  it('handles groups', () => {
    checkAgainstReference([2, 8, 3, 3], [6, 4, 1, 1], { group: 2 });
  });
  it('handles a long reduction (1100 channels, several K blocks, ragged M)', () => {
    checkAgainstReference([1, 1100, 4, 5], [9, 1100, 1, 1]);
  });
  it('handles more rows and columns than one cache block (M 67, H·W 1050)', () => {
    checkAgainstReference([1, 20, 35, 30], [67, 20, 1, 1]);
  });
  it.each(ACTIVATIONS.map((a) => [a.kind, a] as const))('fuses bias + %s', (_, activation) => {
    const X = randomTensor([2, 12, 4, 3], 101);
    const W = randomTensor([10, 12, 1, 1], 102);
    const B = randomTensor([10], 103);
    // Expected: the reference without activation, then the activation applied on its own.
    const plain = withBackend(referenceBackend, () => conv(X, W, B)).dataSync();
    const f = activationFn(activation);
    const expected = Float32Array.from(plain, (v) => f(v));
    expectClose(conv(X, W, B, { activation }), expected, TOL);
    expectClose(
      withBackend(referenceBackend, () => conv(X, W, B, { activation })),
      expected,
      TOL,
    );
  });
});

describe('conv: depthwise (group = C = M)', () => {
  it('3×3 stride 1 pad 1, small plane (copied into a padded scratch)', () => {
    checkAgainstReference([2, 6, 8, 7], [6, 1, 3, 3], { group: 6, pads: [1, 1, 1, 1] });
  });
  it('3×3 stride 1 pad 1, large plane (direct interior + clipped border)', () => {
    checkAgainstReference([1, 3, 40, 41], [3, 1, 3, 3], { group: 3, pads: [1, 1, 1, 1] });
  });
  it('3×3 stride 2 with asymmetric pads', () => {
    checkAgainstReference([1, 8, 9, 9], [8, 1, 3, 3], { group: 8, strides: [2, 2], pads: [0, 0, 1, 1] });
    checkAgainstReference([1, 4, 50, 47], [4, 1, 3, 3], { group: 4, strides: [2, 2], pads: [1, 0, 0, 1] });
  });
  it('3×3 stride 2 dilation 2, both paths', () => {
    checkAgainstReference([1, 5, 11, 12], [5, 1, 3, 3], { group: 5, strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2] });
    checkAgainstReference([1, 3, 81, 80], [3, 1, 3, 3], { group: 3, strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2] });
  });
  it('5×5 stride 2 dilation 2', () => {
    checkAgainstReference([2, 6, 13, 14], [6, 1, 5, 5], { group: 6, strides: [2, 2], dilations: [2, 2], pads: [4, 4, 4, 4] });
  });
  it('5×5 on a 7×7 plane (almost all border)', () => {
    checkAgainstReference([1, 16, 7, 7], [16, 1, 5, 5], { group: 16, pads: [2, 2, 2, 2] });
  });
  it('5×5 on a large plane (direct path) and unpadded', () => {
    checkAgainstReference([1, 2, 205, 206], [2, 1, 5, 5], { group: 2, pads: [2, 2, 2, 2] });
    checkAgainstReference([1, 3, 12, 9], [3, 1, 5, 5], { group: 3 });
  });
  it('other kernel sizes: 7×7, 1×3 and 2×4, with dilation', () => {
    checkAgainstReference([1, 4, 12, 12], [4, 1, 7, 7], { group: 4, pads: [3, 3, 3, 3] });
    checkAgainstReference([1, 2, 60, 61], [2, 1, 7, 7], { group: 2, pads: [3, 6, 3, 6], dilations: [1, 2] });
    checkAgainstReference([1, 3, 8, 14], [3, 1, 1, 3], { group: 3, dilations: [1, 3], strides: [1, 2], pads: [0, 3, 0, 2] });
    checkAgainstReference([1, 4, 6, 9], [4, 1, 1, 3], { group: 4, pads: [0, 1, 0, 1] });
    checkAgainstReference([1, 3, 9, 8], [3, 1, 2, 4], { group: 3, strides: [2, 1], pads: [1, 2, 0, 1] });
  });
  it('kernel larger than the input, with padding', () => {
    checkAgainstReference([1, 3, 2, 3], [3, 1, 5, 5], { group: 3, pads: [2, 2, 2, 2] });
  });
  it('pads wider than the window (all-padding outputs)', () => {
    checkAgainstReference([1, 3, 4, 4], [3, 1, 3, 3], { group: 3, pads: [3, 4, 3, 2] });
  });
  it('bias + activation', () => {
    checkAgainstReference([1, 6, 9, 9], [6, 1, 3, 3], { group: 6, pads: [1, 1, 1, 1], activation: { kind: 'hard_swish' } });
  });
  it('1-D depthwise (ECA-style, C = 1) and multi-channel', () => {
    checkAgainstReference([2, 1, 16], [1, 1, 5], { pads: [2, 2] }, false);
    checkAgainstReference([2, 3, 20], [3, 1, 5], { group: 3, pads: [2, 2], strides: [2] });
    checkAgainstReference([1, 2, 90], [2, 1, 3], { group: 2, pads: [2, 1], dilations: [2] });
  });
  it('reuses its scratch across calls without leaking values', () => {
    checkAgainstReference([1, 2, 6, 6], [2, 1, 5, 5], { group: 2, pads: [2, 2, 2, 2] });
    checkAgainstReference([1, 2, 5, 4], [2, 1, 3, 3], { group: 2, pads: [1, 0, 0, 1] });
    checkAgainstReference([1, 2, 6, 6], [2, 1, 5, 5], { group: 2, pads: [1, 2, 2, 1] });
  });
});

describe('conv: random small configurations', () => {
  it('every path matches the reference on 300 seeded random shapes and attributes', () => {
    const rng = new Rng(2024);
    const pick = (lo: number, hi: number) => lo + rng.int(hi - lo + 1);
    let tried = 0;
    while (tried < 300) {
      const depthwise = rng.next() < 0.5;
      const c = pick(1, 4);
      const group = depthwise ? c : c % 2 === 0 && rng.next() < 0.3 ? 2 : 1;
      const m = depthwise ? c : group * pick(1, 3);
      const [kh, kw] = [pick(1, 5), pick(1, 5)];
      const [sh, sw] = [pick(1, 4), pick(1, 4)];
      const [dh, dw] = [pick(1, 3), pick(1, 3)];
      const spanH = (kh - 1) * dh + 1;
      const spanW = (kw - 1) * dw + 1;
      const pads = [pick(0, spanH - 1), pick(0, spanW - 1), pick(0, spanH - 1), pick(0, spanW - 1)];
      const [h, w] = [pick(1, 14), pick(1, 14)];
      if (h + pads[0]! + pads[2]! < spanH || w + pads[1]! + pads[3]! < spanW) continue;
      tried++;
      checkAgainstReference([pick(1, 2), c, h, w], [m, c / group, kh, kw], { group, strides: [sh, sw], dilations: [dh, dw], pads }, rng.next() < 0.5);
    }
  });
});

describe('conv: general (im2col + GEMM)', () => {
  it('3×3 pad 1 with bias and relu', () => {
    checkAgainstReference([2, 5, 9, 8], [7, 5, 3, 3], { pads: [1, 1, 1, 1], activation: { kind: 'relu' } });
  });
  it('kernel larger than the input, with padding', () => {
    checkAgainstReference([1, 2, 3, 3], [3, 2, 5, 5], { pads: [2, 2, 2, 2] });
    checkAgainstReference([1, 2, 2, 2], [3, 2, 5, 5], { pads: [2, 2, 2, 2] });
  });
  it('stride 2 with dilation 2', () => {
    checkAgainstReference([1, 3, 15, 14], [4, 3, 3, 3], { strides: [2, 2], dilations: [2, 2], pads: [1, 1, 1, 1] });
  });
  it('asymmetric pads', () => {
    checkAgainstReference([1, 3, 7, 6], [5, 3, 3, 2], { pads: [1, 0, 2, 3] });
  });
  it('groups = 2, and a channel multiplier (group = C, M = 2C)', () => {
    checkAgainstReference([2, 6, 7, 7], [4, 3, 3, 3], { group: 2, pads: [1, 1, 1, 1] });
    checkAgainstReference([1, 3, 6, 6], [6, 1, 3, 3], { group: 3, pads: [1, 1, 1, 1] });
  });
  it('1×1 with stride 2 or padding', () => {
    checkAgainstReference([1, 4, 7, 7], [5, 4, 1, 1], { strides: [2, 2] });
    checkAgainstReference([1, 4, 3, 3], [5, 4, 1, 1], { pads: [1, 0, 0, 1] });
  });
  it('a stem conv: 3→16, 3×3, stride 2', () => {
    checkAgainstReference([1, 3, 32, 32], [16, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], activation: { kind: 'hard_swish' } });
  });
  it('a long reduction (K = 128·3·3 = 1152)', () => {
    checkAgainstReference([1, 128, 6, 6], [5, 128, 3, 3], { pads: [1, 1, 1, 1] });
  });
  it('output positions split over several im2col chunks', () => {
    checkAgainstReference([1, 30, 40, 40], [6, 30, 3, 3], { pads: [1, 1, 1, 1] });
  });
  it('1-D conv with stride, asymmetric pads and dilation', () => {
    checkAgainstReference([2, 4, 17], [6, 4, 3], { strides: [2], pads: [1, 2], dilations: [2] });
  });
  it('zero batch gives an empty output', () => {
    const y = checkAgainstReference([0, 3, 5, 5], [4, 3, 3, 3]);
    expect(y.shape).toEqual([0, 4, 3, 3]);
  });
});

describe('conv: hand-computed cases', () => {
  const both = (f: () => Tensor): Tensor[] => [f(), withBackend(referenceBackend, f)];

  it('2×2 ones kernel over 1..9 (valid)', () => {
    const x = Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    const w = Tensor.ones([1, 1, 2, 2]);
    for (const y of both(() => conv(x, w))) {
      expect(y.shape).toEqual([1, 1, 2, 2]);
      expect(y.toArray()).toEqual([12, 16, 24, 28]);
    }
  });
  it('3×3 ones kernel, pad 1, counts the neighbours inside the image', () => {
    const x = Tensor.ones([1, 1, 3, 3]);
    const w = Tensor.ones([1, 1, 3, 3]);
    for (const y of both(() => conv(x, w, null, { pads: [1, 1, 1, 1] }))) expect(y.toArray()).toEqual([4, 6, 4, 6, 9, 6, 4, 6, 4]);
  });
  it('depthwise 1×1 scales each channel and adds its bias', () => {
    const x = Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const w = Tensor.fromArray([2, -1], [2, 1, 1, 1]);
    const b = Tensor.fromArray([0.5, 10], [2]);
    for (const y of both(() => conv(x, w, b, { group: 2 }))) expect(y.toArray()).toEqual([2.5, 4.5, 6.5, 8.5, 5, 4, 3, 2]);
  });
  it('1-D: cross-correlation (not flipped), and stride 2 with pads', () => {
    const x = Tensor.fromArray([1, 2, 3, 4], [1, 1, 4]);
    for (const y of both(() => conv(x, Tensor.fromArray([1, -1], [1, 1, 2])))) expect(y.toArray()).toEqual([-1, -1, -1]);
    const x5 = Tensor.fromArray([1, 2, 3, 4, 5], [1, 1, 5]);
    for (const y of both(() => conv(x5, Tensor.ones([1, 1, 3]), null, { strides: [2], pads: [1, 1] }))) expect(y.toArray()).toEqual([3, 9, 9]);
  });
  it('groups: each output sees only its group of input channels', () => {
    // Channels 0,1 → output 0 (weights 1, 10); channels 2,3 → output 1 (weights 100, 1000).
    const x = Tensor.fromArray([1, 2, 3, 4], [1, 4, 1, 1]);
    const w = Tensor.fromArray([1, 10, 100, 1000], [2, 2, 1, 1]);
    for (const y of both(() => conv(x, w, null, { group: 2 }))) expect(y.toArray()).toEqual([21, 4300]);
  });
});

describe('conv: shape rule', () => {
  const x = Tensor.zeros([1, 6, 5, 5]);
  const expectShapeError = (f: () => unknown, ...parts: string[]) => {
    expect(f).toThrow(ShapeError);
    try {
      f();
    } catch (e) {
      for (const p of ['Conv', ...parts]) expect((e as Error).message).toContain(p);
    }
  };

  it('channels must match weight dim 1 × group', () => {
    expectShapeError(() => conv(x, Tensor.zeros([4, 4, 3, 3])), '6', '4');
    expectShapeError(() => conv(x, Tensor.zeros([4, 2, 3, 3]), null, { group: 2 }), '6', '2');
  });
  it('M must be divisible by group', () => {
    expectShapeError(() => conv(x, Tensor.zeros([4, 2, 3, 3]), null, { group: 3 }), '4', 'group 3');
  });
  it('bias must be [M]', () => {
    expectShapeError(() => conv(x, Tensor.zeros([4, 6, 3, 3]), Tensor.zeros([5])), '[5]', '4');
  });
  it('the window must fit', () => {
    expectShapeError(() => conv(x, Tensor.zeros([4, 6, 7, 3])), 'window', '7');
    expectShapeError(() => conv(x, Tensor.zeros([4, 6, 3, 3]), null, { dilations: [3, 1] }), 'window', 'dilation 3');
  });
  it('ranks and attribute lengths', () => {
    expectShapeError(() => conv(x, Tensor.zeros([4, 6, 3])), '[4, 6, 3]');
    expectShapeError(() => conv(Tensor.zeros([1, 6, 2, 2, 2]), Tensor.zeros([4, 6, 1, 1, 1])), '[1, 6, 2, 2, 2]');
    expectShapeError(() => conv(x, Tensor.zeros([4, 6, 3, 3]), null, { strides: [1] }), 'strides');
    expectShapeError(() => conv(x, Tensor.zeros([4, 6, 3, 3]), null, { pads: [1, 1] }), 'pads');
    expectShapeError(() => conv(x, Tensor.zeros([4, 6, 3, 3]), null, { group: 0 }), 'group');
  });
  it('only float32', () => {
    const x64 = Tensor.zeros([1, 6, 5, 5], 'float64');
    expect(() => conv(x64, Tensor.zeros([4, 6, 3, 3]))).toThrow(ValueError);
    expect(() => conv(x64, Tensor.zeros([4, 6, 3, 3]))).toThrow(/Conv/);
  });
  it('counts MACs', () => {
    const attrs: ConvAttrs = { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 2, activation: { kind: 'none' } };
    // Output 3×3; each of 2·4·9 outputs sums 3 channels × 3×3 taps.
    expect(convCard.macs!([[2, 6, 5, 5], [4, 3, 3, 3]], attrs)).toBe(2 * 4 * 9 * 27);
  });
});

describe('ONNX Conv adapter', () => {
  const node = (attrs: [string, AttrValue][], inputs = ['x', 'w']) => new OnnxNode('c0', 'Conv', '', 17, inputs, ['y'], new Map(attrs));
  const run = (attrs: [string, AttrValue][], ...inputs: Tensor[]) => convOps.Conv!.compile(node(attrs))(inputs)[0]!;
  const x = randomTensor([1, 2, 6, 6], 7);
  const w = randomTensor([3, 2, 3, 3], 8);
  const b = randomTensor([3], 9);

  it('SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning', () => {
    // 6 wide, kernel 3, stride 2: out 3, total pad (3−1)·2 + 3 − 6 = 1.
    const upper = run([['auto_pad', 'SAME_UPPER'], ['strides', [2, 2]]], x, w, b);
    const lower = run([['auto_pad', 'SAME_LOWER'], ['strides', [2, 2]]], x, w, b);
    expect(upper.shape).toEqual([1, 3, 3, 3]);
    expectClose(upper, conv(x, w, b, { strides: [2, 2], pads: [0, 0, 1, 1] }), TOL);
    expectClose(lower, conv(x, w, b, { strides: [2, 2], pads: [1, 1, 0, 0] }), TOL);
  });
  it('SAME keeps the size at stride 1; VALID pads nothing', () => {
    expect(run([['auto_pad', 'SAME_UPPER']], x, w).shape).toEqual([1, 3, 6, 6]);
    const valid = run([['auto_pad', 'VALID'], ['strides', [2, 2]]], x, w);
    expect(valid.shape).toEqual([1, 3, 2, 2]);
    expectClose(valid, conv(x, w, null, { strides: [2, 2] }), TOL);
  });
  it('explicit attributes, with kernel_shape given or taken from the weight', () => {
    const attrs: [string, AttrValue][] = [['pads', [1, 0, 0, 1]], ['dilations', [1, 2]], ['strides', [1, 2]]];
    const expected = conv(x, w, b, { pads: [1, 0, 0, 1], dilations: [1, 2], strides: [1, 2] });
    expectClose(run(attrs, x, w, b), expected, TOL);
    expectClose(run([...attrs, ['kernel_shape', [3, 3]]], x, w, b), expected, TOL);
  });
  it('1-D conv with SAME_UPPER', () => {
    const x1 = randomTensor([2, 1, 16], 10);
    const w1 = randomTensor([1, 1, 5], 11);
    expectClose(run([['auto_pad', 'SAME_UPPER']], x1, w1), conv(x1, w1, null, { pads: [2, 2] }), TOL);
  });
  it('builds the fused activation from _activation, _alpha, _beta, _min, _max', () => {
    const cases: [[string, AttrValue][], Activation][] = [
      [[['_activation', 'relu']], { kind: 'relu' }],
      [[['_activation', 'clip'], ['_min', 0], ['_max', 0.5]], { kind: 'clip', min: 0, max: 0.5 }],
      [[['_activation', 'leaky_relu'], ['_alpha', 0.2]], { kind: 'leaky_relu', alpha: 0.2 }],
      [[['_activation', 'leaky_relu']], { kind: 'leaky_relu', alpha: 0.01 }],
      [[['_activation', 'hard_sigmoid']], { kind: 'hard_sigmoid', alpha: 0.2, beta: 0.5 }],
      [[['_activation', 'hard_sigmoid'], ['_alpha', 1 / 6], ['_beta', 0.25]], { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.25 }],
      [[['_activation', 'hard_swish']], { kind: 'hard_swish' }],
      [[['_activation', 'silu']], { kind: 'silu' }],
    ];
    for (const [attrs, activation] of cases) {
      expectClose(run([['pads', [1, 1, 1, 1]], ...attrs], x, w, b), conv(x, w, b, { pads: [1, 1, 1, 1], activation }), { ...TOL, what: JSON.stringify(attrs) });
    }
  });
  it('rejects bad attributes with an OnnxError naming the node', () => {
    const bad: [string, AttrValue][][] = [
      [['auto_pad', 'SAME']],
      [['_activation', 'gelu']],
      [['_alpha', 0.1]],
      [['group', 0]],
      [['strides', [0, 1]]],
      [['pads', [1, 1, 1]]],
      [['strides', [1, 1]], ['dilations', [1]]],
      [['auto_pad', 'VALID'], ['pads', [1, 1, 1, 1]]],
      [['kernel_shape', [3, 3, 3]]],
    ];
    for (const attrs of bad) {
      expect(() => convOps.Conv!.compile(node(attrs)), JSON.stringify(attrs)).toThrow(OnnxError);
      expect(() => convOps.Conv!.compile(node(attrs)), JSON.stringify(attrs)).toThrow(/Conv node 'c0'/);
    }
  });
  it('checks kernel_shape against the weight at run time', () => {
    expect(() => run([['kernel_shape', [5, 5]]], x, w)).toThrow(OnnxError);
    expect(() => run([['kernel_shape', [3]]], x, w)).toThrow(/spatial axes/);
  });
});
