import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { batchStats } from '../../src/kernels/normalization.js';

/** Two-pass float64 mean and biased variance per channel: the textbook definition. */
function twoPass(d: ArrayLike<number>, [n, c, inner]: [number, number, number]) {
  const mean = new Array<number>(c).fill(0);
  const vr = new Array<number>(c).fill(0);
  for (let i = 0; i < d.length; i++) mean[Math.floor(i / inner) % c] += d[i]! / (n * inner);
  for (let i = 0; i < d.length; i++) vr[Math.floor(i / inner) % c] += (d[i]! - mean[Math.floor(i / inner) % c]!) ** 2 / (n * inner);
  return { mean, vr };
}

describe('batchStats (one pass, shifted)', () => {
  it('matches the two-pass statistics, also for a mean 10⁴ times the spread', () => {
    const shape: [number, number, number] = [4, 3, 50];
    const noise = Tensor.randn([shape[0] * shape[1] * shape[2]], { seed: 5 }).dataSync();
    // Channel c: offset [0, 1e4, −3e3][c], spread 1 (float32 values keep ~3 decimals at 1e4).
    const d = Float32Array.from(noise, (v, i) => [0, 1e4, -3e3][Math.floor(i / shape[2]) % shape[1]]! + v);
    const got = batchStats(new Tensor(d, [shape[0], shape[1], 5, 10]));
    const ref = twoPass(d, shape);
    expect(got.count).toBe(200);
    for (let c = 0; c < 3; c++) {
      // Both are float64 sums of the same float32 inputs; what differs is rounding of order
      // 1e-16 relative to the terms (≤ 1e4), far inside 1e-9 of a variance near 1.
      expect(Math.abs(got.mean[c]! - ref.mean[c]!)).toBeLessThan(1e-9 * Math.max(1, Math.abs(ref.mean[c]!)));
      expect(Math.abs(got.variance[c]! - ref.vr[c]!)).toBeLessThan(1e-9);
      expect(ref.vr[c]!).toBeGreaterThan(0.5);
    }
  });
  it('gives NaN for a channel with no elements', () => {
    const s = batchStats(new Tensor(new Float32Array(0), [0, 2, 3]));
    expect(Number.isNaN(s.mean[0]!)).toBe(true);
    expect(Number.isNaN(s.variance[1]!)).toBe(true);
  });
});
