import { describe, expect, it } from 'vitest';
import { AutogradError, noGrad } from '../../src/core/autograd.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import type { Activation } from '../../src/kernels/activation.js';
import { conv } from '../../src/kernels/conv.js';
import { dropout } from '../../src/kernels/dropout.js';
import { add, binary, mul, unary } from '../../src/kernels/elementwise.js';
import { gemm, matmul } from '../../src/kernels/gemm.js';
import { concat, flatten, gather, pad, reshape, squeeze, transpose, unsqueeze } from '../../src/kernels/movement.js';
import { batchNorm, batchNormTrain } from '../../src/kernels/normalization.js';
import { averagePool, globalAveragePool, globalMaxPool, maxPool } from '../../src/kernels/pool.js';
import { reduceMax, reduceMean, reduceSum } from '../../src/kernels/reduce.js';
import { logSoftmax, softmax } from '../../src/kernels/softmax.js';
import { gradcheck } from '../../src/train/gradcheck.js';

/** Seeded values in [lo, hi) as a tensor of `dtype`. */
function rnd(shape: number[], seed: number, dtype: 'float32' | 'float64' = 'float64', lo = -1, hi = 1): Tensor {
  const t = Tensor.rand(shape, { seed, low: lo, high: hi });
  return dtype === 'float64' ? new Tensor(Float64Array.from(t.dataSync()), shape, 'float64') : t;
}

/** Values kept ≥ `gap` away from each kink, so finite differences never straddle one. */
function awayFrom(t: Tensor, kinks: number[], gap = 1e-3): Tensor {
  const d = t.dataSync();
  for (let i = 0; i < d.length; i++) for (const k of kinks) if (Math.abs(d[i]! - k) < gap) d[i] = k + (d[i]! >= k ? gap : -gap);
  return t;
}

describe('tape', () => {
  it('accumulates the gradient of a tensor used twice, into leaves, and frees the graph', () => {
    const x = Tensor.fromArray([1, -2, 3], [3]).requireGrad();
    const y = mul(x, x); // x used twice by one op
    const z = reduceSum(add(y, x), [], false); // and again by another
    z.backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([3, -3, 7]); // 2x + 1
    expect(() => z.backward()).toThrow(AutogradError);
    // A second forward + backward accumulates into .grad, as in PyTorch.
    reduceSum(mul(x, x), [], false).backward();
    expect(Array.from(x.grad!.dataSync())).toEqual([5, -7, 13]);
  });

  it('records nothing under noGrad or through detach, and wants a gradient for non-scalars', () => {
    const x = Tensor.fromArray([1, 2], [2]).requireGrad();
    const y = noGrad(() => mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    const d = mul(x, x).detach();
    expect(d.requiresGrad).toBe(false);
    const v = mul(x, x);
    expect(() => v.backward()).toThrow(/non-scalar/);
    v.backward(Tensor.fromArray([1, 1], [2]));
    expect(Array.from(x.grad!.dataSync())).toEqual([2, 4]);
    expect(() => d.backward(Tensor.fromArray([1, 1], [2]))).toThrow(AutogradError);
  });

  it('leaves without requiresGrad get no gradient', () => {
    const a = Tensor.fromArray([1, 2], [2]).requireGrad();
    const b = Tensor.fromArray([3, 4], [2]);
    reduceSum(mul(a, b), [], false).backward();
    expect(Array.from(a.grad!.dataSync())).toEqual([3, 4]);
    expect(b.grad).toBeNull();
  });
});

// Float64 checks on the reference kernels: gradcheck's own defaults (eps 1e-6, atol 1e-5, rtol 1e-3).
describe('gradient checks in float64 (eps 1e-6, atol 1e-5, rtol 1e-3)', () => {
  const acts: Activation[] = [
    { kind: 'relu' },
    { kind: 'leaky_relu', alpha: 0.1 },
    { kind: 'clip', min: 0, max: 6 },
    { kind: 'sigmoid' },
    { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 },
    { kind: 'hard_swish' },
    { kind: 'silu' },
    { kind: 'tanh' },
  ];
  for (const a of acts) {
    it(`activation ${a.kind}`, () => {
      const x = awayFrom(rnd([2, 3, 4, 5], 1, 'float64', -7, 7), [-3, 0, 3, 6]);
      gradcheck((t) => unary(t, a), [x]);
    });
  }
  it('exp, sqrt, erf, abs, neg', () => {
    for (const kind of ['exp', 'erf', 'neg'] as const) gradcheck((t) => unary(t, { kind }), [rnd([7], 2)]);
    gradcheck((t) => unary(t, { kind: 'sqrt' }), [rnd([7], 3, 'float64', 0.5, 2)]);
    gradcheck((t) => unary(t, { kind: 'abs' }), [awayFrom(rnd([7], 4), [0])]);
  });
  it('broadcasting Add/Sub/Mul/Div/Pow reduce over the broadcast dims', () => {
    for (const op of ['Add', 'Sub', 'Mul', 'Div'] as const) {
      gradcheck((a, b) => binary(a, b, op), [rnd([2, 3, 4, 4], 5), rnd([2, 3, 1, 1], 6, 'float64', 0.5, 1.5)]);
      gradcheck((a, b) => binary(a, b, op), [rnd([3, 1], 7, 'float64', 0.5, 1.5), rnd([4], 8, 'float64', 0.5, 1.5)]);
    }
    gradcheck((a, b) => binary(a, b, 'Pow'), [rnd([3, 4], 9, 'float64', 0.5, 2), rnd([4], 10)]);
  });
  it('pooling: max (with pads, dilation, overlap), average (pads, count_include_pad, ceil_mode), global', () => {
    const x = rnd([2, 2, 7, 6], 11);
    gradcheck((t) => maxPool(t, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 2] }), [x]);
    gradcheck((t) => averagePool(t, { kernel: [3, 3], strides: [2, 2], pads: [1, 0, 1, 1] }), [x]);
    gradcheck((t) => averagePool(t, { kernel: [3, 2], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true, ceilMode: true }), [x]);
    gradcheck((t) => globalAveragePool(t), [x]);
    gradcheck((t) => globalMaxPool(t), [x]);
  });
  it('reductions, softmax and log-softmax', () => {
    const x = rnd([2, 3, 4], 12);
    gradcheck((t) => reduceSum(t, [1], false), [x]);
    gradcheck((t) => reduceMean(t, [0, 2], true), [x]);
    gradcheck((t) => reduceMax(t, [2], false), [x]);
    gradcheck((t) => softmax(t, 1), [x]);
    gradcheck((t) => logSoftmax(t, -1), [x]);
  });
  it('movement: reshape, flatten, transpose, concat, squeeze, unsqueeze, pad, gather', () => {
    const x = rnd([2, 3, 1, 4], 13);
    gradcheck((t) => reshape(t, [6, -1]), [x]);
    gradcheck((t) => flatten(t, 2), [x]);
    gradcheck((t) => transpose(t, [3, 0, 2, 1]), [x]);
    gradcheck((t) => squeeze(t, [2]), [x]);
    gradcheck((t) => unsqueeze(t, [0]), [x]);
    gradcheck((a, b) => concat([a, b, a], 1), [x, rnd([2, 2, 1, 4], 14)]);
    gradcheck((t) => pad(t, [0, 1, 0, 2, 1, 0, 0, 1], { mode: 'reflect' }), [rnd([2, 3, 2, 4], 15)]);
    gradcheck((t) => pad(t, [1, 0, 0, 2, 0, 1, 0, 0], { value: 0.5 }), [x]);
    gradcheck((t, i) => gather(t, i!, 1), [x, Tensor.fromArray([2, 0, 2, -1], [4], 'int64')], { skip: [1] });
  });
  it('batch norm in training mode (batch statistics) and at inference', () => {
    const x = rnd([3, 4, 3, 2], 16, 'float64', -2, 3);
    const s = rnd([4], 17, 'float64', 0.5, 1.5);
    const b = rnd([4], 18);
    gradcheck((t, sc, bi) => batchNormTrain(t, sc!, bi!, { epsilon: 1e-5 }).y, [x, s, b]);
    gradcheck((t, sc, bi, m, v) => batchNorm(t, sc!, bi!, m!, v!, { epsilon: 1e-3 }), [x, s, b, rnd([4], 19), rnd([4], 20, 'float64', 0.5, 2)]);
  });
  it('dropout uses the forward mask', () => {
    const x = rnd([4, 5], 21);
    const mask = new Rng(3);
    const y = dropout(x.clone().requireGrad(), 0.4, mask);
    const kept = Array.from(y.dataSync(), (v) => (v === 0 ? 0 : 1));
    expect(kept.some((k) => k === 0) && kept.some((k) => k === 1)).toBe(true);
    gradcheck((t) => dropout(t, 0.4, new Rng(3)), [x]);
  });
});

/**
 * Conv, Gemm and MatMul kernels are float32-only. These ops are linear in each input, and so is
 * the checked scalar Σ w·f, so a central difference is exact for any step: eps = 1 removes the
 * truncation error entirely and the float32 round-off of f (≈ 1e-7 relative, accumulated in
 * float64 by the reference kernels) is divided by 2, not by 2e-6. atol 1e-4, rtol 1e-3.
 */
describe('gradient checks of the float32 linear cards (eps 1, exact for linear ops)', () => {
  const lin = { eps: 1, atol: 1e-4, rtol: 1e-3 };
  it('conv: stride, asymmetric pads, dilation, groups, depthwise, 1-D, bias', () => {
    const cases: [number[], number[], object][] = [
      [[2, 4, 7, 6], [6, 2, 3, 3], { strides: [2, 1], pads: [1, 0, 2, 1], dilations: [1, 2], group: 2 }],
      [[1, 3, 6, 6], [3, 1, 3, 3], { pads: [2, 2, 2, 2], dilations: [2, 2], group: 3 }], // dilated depthwise
      [[2, 3, 5, 5], [4, 3, 1, 1], {}], // pointwise
      [[2, 3, 5, 5], [4, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }],
      [[2, 1, 9], [1, 1, 3], { pads: [1, 1] }], // 1-D (ECA)
    ];
    cases.forEach(([xs, ws, o], i) => {
      const x = rnd(xs, 30 + i, 'float32');
      const w = rnd(ws, 40 + i, 'float32');
      const b = rnd([ws[0]!], 50 + i, 'float32');
      gradcheck((a, c, d) => conv(a, c!, d, o), [x, w, b], lin);
    });
  });
  it('gemm (transposes, alpha, beta, broadcast C) and batched broadcasting matmul', () => {
    gradcheck((a, b, c) => gemm(a, b!, c, { transB: true, alpha: 0.5, beta: 2 }), [rnd([3, 4], 60, 'float32'), rnd([5, 4], 61, 'float32'), rnd([5], 62, 'float32')], lin);
    gradcheck((a, b, c) => gemm(a, b!, c, { transA: true }), [rnd([4, 3], 63, 'float32'), rnd([4, 2], 64, 'float32'), rnd([3, 1], 65, 'float32')], lin);
    gradcheck((a, b) => matmul(a, b!), [rnd([2, 1, 3, 4], 66, 'float32'), rnd([3, 4, 2], 67, 'float32')], lin);
    gradcheck((a, b) => matmul(a, b!), [rnd([4], 68, 'float32'), rnd([2, 4, 3], 69, 'float32')], lin);
  });
});

/**
 * Compositions through float32 convs: eps 1e-2. Round-off of f (≈ 1e-7·|f| over a few hundred
 * terms) divided by 2·eps gives ≈ 1e-5; the truncation error eps²·f'''/6 stays below 1e-4 for
 * these smooth pieces (inputs kept away from kinks). So atol 1e-3, rtol 1e-2.
 */
describe('gradient checks of compositions (float32, eps 1e-2, atol 1e-3, rtol 1e-2)', () => {
  const f32 = { eps: 1e-2, atol: 1e-3, rtol: 1e-2 };
  it('dilated depthwise conv → training BN → hard-swish', () => {
    const x = rnd([2, 3, 6, 6], 70, 'float32');
    const w = rnd([3, 1, 3, 3], 71, 'float32');
    const s = rnd([3], 72, 'float32', 0.5, 1.5);
    const b = rnd([3], 73, 'float32');
    gradcheck((a, ww, ss, bb) => unary(batchNormTrain(conv(a, ww!, null, { pads: [2, 2, 2, 2], dilations: [2, 2], group: 3 }), ss!, bb!).y, { kind: 'hard_swish' }), [x, w, s, b], f32);
  });
  it('fused activations: conv + tanh, gemm + sigmoid, inference BN + silu (the epilogue derivative)', () => {
    gradcheck((a, w, b) => conv(a, w!, b, { pads: [1, 1, 1, 1], activation: { kind: 'tanh' } }), [rnd([1, 2, 4, 4], 100, 'float32'), rnd([3, 2, 3, 3], 101, 'float32'), rnd([3], 102, 'float32')], f32);
    gradcheck((a, b, c) => gemm(a, b!, c, { transB: true, activation: { kind: 'sigmoid' } }), [rnd([3, 4], 103, 'float32'), rnd([2, 4], 104, 'float32'), rnd([2], 105, 'float32')], f32);
    gradcheck((t, sc, bi) => batchNorm(t, sc!, bi!, Tensor.zeros([2]), Tensor.ones([2]), { epsilon: 1e-3, activation: { kind: 'silu' } }), [rnd([2, 2, 3, 3], 106, 'float32'), rnd([2], 107, 'float32', 0.5, 1.5), rnd([2], 108, 'float32')], f32);
  });
  it('squeeze-and-excitation: x · hard-sigmoid(fc2(relu(fc1(gap(x)))))', () => {
    const x = rnd([2, 4, 3, 3], 80, 'float32');
    const w1 = rnd([2, 4, 1, 1], 81, 'float32');
    const b1 = rnd([2], 82, 'float32', 0.3, 0.5); // live ReLUs, as in the shared fixture
    const w2 = rnd([4, 2, 1, 1], 83, 'float32');
    const b2 = rnd([4], 84, 'float32');
    const se = (a: Tensor, p: Tensor, q: Tensor, r: Tensor, s: Tensor) =>
      mul(a, unary(conv(unary(conv(globalAveragePool(a), p, q), { kind: 'relu' }), r, s), { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 }));
    gradcheck((a, p, q, r, s) => se(a, p!, q!, r!, s!), [x, w1, b1, w2, b2], f32);
  });
  it('ECA: x · sigmoid(conv1d over channels of gap(x))', () => {
    const x = rnd([2, 5, 3, 3], 90, 'float32');
    const w = rnd([1, 1, 3], 91, 'float32');
    const eca = (a: Tensor, k: Tensor) => {
      const y = transpose(squeeze(globalAveragePool(a), [-1]), [0, 2, 1]);
      const z = unsqueeze(transpose(conv(y, k, null, { pads: [1, 1] }), [0, 2, 1]), [-1]);
      return mul(a, unary(z, { kind: 'sigmoid' }));
    };
    gradcheck((a, k) => eca(a, k!), [x, w], f32);
  });
});

describe('tape depth', () => {
  it('back-propagates through a chain of 20 000 ops without overflowing the stack', () => {
    const x = Tensor.fromArray([0.5], [1]).requireGrad();
    let y: Tensor = x;
    for (let i = 0; i < 20_000; i++) y = unary(y, { kind: 'neg' });
    reduceSum(y, [], false).backward();
    expect(x.grad!.dataSync()[0]).toBe(1); // (−1)^20000
  });
});
