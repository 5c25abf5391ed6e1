import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { add, mul } from '../../src/kernels/elementwise.js';
import { gather } from '../../src/kernels/movement.js';
import { reduceSum } from '../../src/kernels/reduce.js';
import { binaryCrossEntropyWithLogits, crossEntropy, mseLoss } from '../../src/train/losses.js';
import { Adam, AdamW, SGD, clipGradNorm, type Optimizer } from '../../src/train/optim.js';
import { expectClose } from '../helpers.js';

// Reference values: PyTorch 1.13 in float64 (F.cross_entropy, F.binary_cross_entropy_with_logits,
// F.mse_loss, torch.optim.*), computed once with Debian's /usr/bin/python3 and pasted here.
// Both sides are float64, so they agree to round-off: atol 1e-12.
const REF = {"plain": [1.35319798518959, [0.03685125012057974, 0.001834715709194557, 0.022351413046870494, -0.06103737887664477, -0.2525321039149128, 0.0892991688979968, 0.054162683823491875, 0.10907025119342414, 0.2146380866293241, 0.07896093936330338, -0.30428522708598915, 0.010686201093361661]], "smooth": [1.4781979851895901, [0.020184583453913073, -0.01483195095747211, 0.005684746380203827, -0.011037378876644776, -0.20253210391491283, 0.07263250223133014, 0.037496017156825205, 0.09240358452675748, 0.19797141996265744, 0.06229427269663672, -0.25428522708598916, -0.005980465573305004]], "smooth_w": [1.2941330509981568, [0.03676764600817397, -0.030672995555001224, 0.02407621558462889, -0.03017086603780158, -0.1984920424439918, 0.060430794009563325, 0.04853748468133314, 0.08952376375309537, 0.12284808964239399, 0.017991277252813864, -0.12278539760589294, -0.018053969289314922]], "sum_w": [3.4115124915611594, [0.13806678178356538, -0.04188138298681409, 0.08640500273240194, -0.1825904015291532, -0.676536219538357, 0.22459494436134023, 0.15405025275723755, 0.2978910224197793, 0.3452506994355841, 0.08620762040169835, -0.4123920167233313, -0.019066303113951136]], "ignore": [0.9850914559998656, [0.06903339089178269, -0.020940691493407045, 0.04320250136620097, -0.0912952007645766, 0.0, 0.0, 0.0, 0.0, 0.17262534971779206, 0.04310381020084918, -0.20619600836166566, -0.009533151556975568]], "bce": [0.9076820424836588, [-0.1258468895993818, 0.04482357022833252, 0.09977958604686664, 0.07502766711458703, -0.07092624719805683, -0.07938117723520277]], "mse_sum": [20.669999999999998, [-1.0, -2.0, 3.4, -0.4, -1.4, -8.0]], "sgd_damp": [[-0.07774886478532499, -0.0066559248749999845, 0.0033279624374999922], [0.25274137258531904, 0.19495632340843597]], "sgd_nest": [[-0.40552825889777305, 0.17241600000000004, -0.08620800000000002], [0.23327029785845266, 0.19053816216280953]], "adam_ams": [[0.7027062456022098, -0.20134300404046368, -0.04444385090231279], [0.2701498990324781, 0.17014612243016328]], "adamw": [[0.5746042408600555, -0.14458563527894708, -0.06146996358463614], [0.2659123991832152, 0.1673339989026379]]} as const;

const f64 = (v: readonly number[], shape: number[]) => Tensor.fromArray(v, shape, 'float64');
const tight = { atol: 1e-12, rtol: 1e-10 };

describe('losses match PyTorch (float64)', () => {
  const z = () => f64([1, -2, 0.5, 3, 0.1, 0.2, -0.3, 0.4, 2, 1, 0, -1], [3, 4]).requireGrad();
  const labels = [3, 0, 2];
  const weight = [1, 2, 0.5, 1.5];
  const cases: [keyof typeof REF, Parameters<typeof crossEntropy>[2]][] = [
    ['plain', {}],
    ['smooth', { labelSmoothing: 0.2 }],
    ['smooth_w', { labelSmoothing: 0.2, weight }],
    ['sum_w', { weight, reduction: 'sum', labelSmoothing: 0.1 }],
    ['ignore', { ignoreIndex: 0, labelSmoothing: 0.1, weight }],
  ];
  for (const [name, opts] of cases) {
    it(`cross-entropy ${name}`, () => {
      const logits = z();
      const loss = crossEntropy(logits, labels, opts);
      expectClose([loss.dataSync()[0]!], [REF[name][0] as number], tight);
      loss.backward();
      expectClose(logits.grad!.dataSync(), REF[name][1] as readonly number[], tight);
    });
  }
  it('cross-entropy rejects bad labels', () => {
    expect(() => crossEntropy(z(), [0, 4, 1])).toThrow(/label 4/);
    expect(() => crossEntropy(z(), [0, 1])).toThrow(/2 labels for 3 rows/);
  });
  it('BCE with logits (pos_weight) and MSE (sum)', () => {
    const x = f64([0.5, -1, 2, -0.2, 0.3, -3], [2, 3]).requireGrad();
    const t = f64([1, 0, 0.3, 0, 1, 1], [2, 3]);
    const l = binaryCrossEntropyWithLogits(x, t, { posWeight: [2, 1, 0.5] });
    expectClose([l.dataSync()[0]!], [REF.bce[0]], tight);
    l.backward();
    expectClose(x.grad!.dataSync(), REF.bce[1], tight);
    x.grad = null;
    const m = mseLoss(x, t, { reduction: 'sum' });
    expectClose([m.dataSync()[0]!], [REF.mse_sum[0]], tight);
    m.backward();
    expectClose(x.grad!.dataSync(), REF.mse_sum[1], tight);
  });
});

describe('optimizers match torch.optim (two parameter groups, the second with lr 0.01, 3 steps)', () => {
  // loss = (s+1)·Σp² + p0·q0 + Σq³ at step s.
  function run(make: (groups: { params: Tensor[]; options?: { lr: number } }[]) => Optimizer<{ lr: number }>): [number[], number[]] {
    const p = f64([1, -0.5, 0.25], [3]).requireGrad();
    const q = f64([0.3, 0.2], [2]).requireGrad();
    const opt = make([{ params: [p] }, { params: [q], options: { lr: 0.01 } }]);
    for (let s = 0; s < 3; s++) {
      opt.zeroGrad();
      const i0 = Tensor.fromArray([0], [1], 'int64');
      const loss = add(add(mul(reduceSum(mul(p, p), [], false), f64([s + 1], [])), reduceSum(mul(gather(p, i0), gather(q, i0)), [], false)), reduceSum(mul(mul(q, q), q), [], false));
      loss.backward();
      opt.step();
    }
    return [Array.from(p.dataSync()), Array.from(q.dataSync())];
  }
  const check = (got: [number[], number[]], ref: readonly (readonly number[])[]) => {
    expectClose(got[0], ref[0]!, tight);
    expectClose(got[1], ref[1]!, tight);
  };
  it('SGD with momentum, dampening and weight decay', () => check(run((g) => new SGD(g, { lr: 0.1, momentum: 0.9, dampening: 0.5, weightDecay: 0.01 })), REF.sgd_damp));
  it('SGD with Nesterov momentum', () => check(run((g) => new SGD(g, { lr: 0.1, momentum: 0.9, nesterov: true })), REF.sgd_nest));
  it('Adam with L2 weight decay and amsgrad', () => check(run((g) => new Adam(g, { lr: 0.1, betas: [0.8, 0.9], eps: 1e-6, weightDecay: 0.1, amsgrad: true })), REF.adam_ams));
  it('AdamW (decoupled weight decay)', () => check(run((g) => new AdamW(g, { lr: 0.1, weightDecay: 0.5 })), REF.adamw));

  it('skips frozen parameters and those without a gradient; zeroGrad clears', () => {
    const a = Tensor.fromArray([1, 2], [2]).requireGrad();
    const b = Tensor.fromArray([3], [1]).requireGrad(false);
    const c = Tensor.fromArray([5], [1]).requireGrad();
    const opt = new SGD([a, b, c], { lr: 0.5 });
    a.grad = Tensor.fromArray([1, 1], [2]);
    b.grad = Tensor.fromArray([1], [1]);
    opt.step();
    expect(Array.from(a.dataSync())).toEqual([0.5, 1.5]);
    expect(Array.from(b.dataSync())).toEqual([3]);
    expect(Array.from(c.dataSync())).toEqual([5]);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
  });

  it('clipGradNorm scales to the global norm (torch.nn.utils.clip_grad_norm_)', () => {
    const a = Tensor.fromArray([0], [1]).requireGrad();
    const b = Tensor.fromArray([0, 0], [2]).requireGrad();
    a.grad = Tensor.fromArray([3], [1]);
    b.grad = Tensor.fromArray([0, 4], [2]);
    const old = b.grad;
    expect(clipGradNorm([a, b], 1)).toBe(5);
    expectClose(a.grad.dataSync(), [3 / (5 + 1e-6)], { atol: 1e-7 });
    expectClose(b.grad.dataSync(), [0, 4 / (5 + 1e-6)], { atol: 1e-7 });
    expect(Array.from(old.dataSync())).toEqual([0, 4]); // not written in place
    expect(clipGradNorm([a, b], 10)).toBeCloseTo(1, 5);
  });
});
