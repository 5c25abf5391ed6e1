import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { SGD } from '../../src/train/optim.js';

describe('SGD on float32 parameters (the typed fast path)', () => {
  it('matches the update rule evaluated with float32 storage, bit for bit, over three steps', () => {
    const n = 1000;
    const p = Tensor.randn([n], { seed: 1 }).requireGrad();
    const o = { lr: 0.01, momentum: 0.9, dampening: 0.25, weightDecay: 1e-4 };
    const opt = new SGD([p], o);
    // The rule with float32 storage (Float32Array stores round exactly as the optimizer's do).
    const w = Float32Array.from(p.dataSync());
    const buf = new Float32Array(n);
    for (let s = 0; s < 3; s++) {
      const g = Tensor.randn([n], { seed: 10 + s });
      p.grad = g;
      opt.step();
      const gd = g.dataSync();
      for (let i = 0; i < n; i++) {
        const d = gd[i]! + o.weightDecay * w[i]!;
        buf[i] = s === 0 ? d : o.momentum * buf[i]! + (1 - o.dampening) * d;
        w[i] = w[i]! - o.lr * buf[i]!;
      }
      expect(p.dataSync()).toEqual(w);
    }
    expect(p.dataSync()).toBeInstanceOf(Float32Array);
  });
});
