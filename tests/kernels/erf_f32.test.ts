import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { erf, erfF32, erfScalar } from '../../src/kernels/elementwise.js';
import { gelu } from '../../src/kernels/gelu.js';

/** The fast kernels' float32-accuracy erf against the float64 fdlibm erf of the reference. */
describe('erfF32', () => {
  it('is within 2 float32 ulps (1.2e-7 absolute) of erfScalar on every 1e-4 step of [−6, 6]', () => {
    const f = new Float32Array(2);
    const u = new Uint32Array(f.buffer);
    let worstUlp = 0;
    let worstAbs = 0;
    for (let i = -60000; i <= 60000; i++) {
      const x = Math.fround(i * 1e-4);
      f[0] = erfF32(x);
      f[1] = erfScalar(x);
      worstAbs = Math.max(worstAbs, Math.abs(f[0]! - f[1]!));
      if (Math.sign(f[0]!) === Math.sign(f[1]!)) worstUlp = Math.max(worstUlp, Math.abs(u[0]! - u[1]!));
    }
    expect(worstUlp).toBeLessThanOrEqual(2);
    expect(worstAbs).toBeLessThanOrEqual(1.2e-7);
  });

  it('keeps the special values: NaN, ±∞ → ±1, −0 → −0', () => {
    expect(erfF32(NaN)).toBeNaN();
    expect(Math.fround(erfF32(Infinity))).toBe(1);
    expect(Math.fround(erfF32(-Infinity))).toBe(-1);
    expect(Object.is(erfF32(-0), -0)).toBe(true);
    const y = erf(Tensor.fromArray([NaN, Infinity, -Infinity, -0, 0], [5])).dataSync();
    expect(Array.from(y)).toEqual([NaN, 1, -1, -0, 0]);
  });

  it('the fast Erf and Gelu kernels agree with the float64 reference within 2e-7', () => {
    const x = Tensor.randn([4096], { seed: 7, std: 3 });
    for (const f of [erf, (t: Tensor) => gelu(t)]) {
      const fast = f(x).dataSync();
      const ref = withBackend(referenceBackend, () => f(x)).dataSync();
      let worst = 0;
      for (let i = 0; i < fast.length; i++) worst = Math.max(worst, Math.abs(fast[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
      expect(worst).toBeLessThan(2e-7 * 4); // erf's 1.2e-7 scaled by |x|/2 ≤ ~6 in GELU, relative to max(1, |y|)
    }
  });
});
