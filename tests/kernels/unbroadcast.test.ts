import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { unbroadcast } from '../../src/kernels/grad.js';

/** Σ over every element of `full` into the target element it broadcasts from (numpy rules), naively. */
function naive(g: Float64Array, full: number[], target: number[]): number[] {
  const out = new Array<number>(target.reduce((a, b) => a * b, 1)).fill(0);
  const lead = full.length - target.length;
  const idx = new Array<number>(full.length).fill(0);
  for (let i = 0; i < g.length; i++) {
    let o = 0;
    for (let d = lead; d < full.length; d++) o = o * target[d - lead]! + (target[d - lead] === 1 ? 0 : idx[d]!);
    out[o] += g[i]!;
    for (let d = full.length - 1; d >= 0; d--) {
      if (++idx[d]! < full[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

describe('unbroadcast', () => {
  const cases: [number[], number[]][] = [
    [[4, 6, 5, 3], [4, 6, 1, 1]], // SE gate
    [[4, 6, 5, 3], [6, 1, 1]], // per-channel bias
    [[4, 6, 5, 3], [1, 6, 5, 3]],
    [[4, 6, 5, 3], [3]],
    [[4, 6, 5, 3], [5, 1]],
    [[4, 1, 5, 3], [1, 1, 5, 1]],
    [[2, 3, 4, 5, 2], [3, 1, 5, 1]], // more than two merged runs: the general loop
    [[7, 9], []],
    [[1, 1], [1]],
    [[2, 0, 3], [1, 0, 1]],
  ];
  for (const [full, target] of cases) {
    it(`[${full}] → [${target}]`, () => {
      const n = full.reduce((a, b) => a * b, 1);
      // Float64 gradients of integers: every sum is exact, whatever the order, so toEqual holds.
      const g = Float64Array.from({ length: n }, (_, i) => ((i * 7919) % 23) - 11);
      const t = new Tensor(new Float64Array(target.reduce((a, b) => a * b, 1)), target, 'float64');
      const got = unbroadcast(g, full, t);
      expect(got.shape).toEqual(target);
      expect(Array.from(got.dataSync())).toEqual(naive(g, full, target));
    });
  }
});
