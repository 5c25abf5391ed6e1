import { afterEach, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { conv } from '../../src/kernels/conv.js';
import { slice } from '../../src/kernels/structure.js';
import { gemm } from '../../src/kernels/gemm.js';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { relaxedSimdEnabled, relaxedSimdSupported, runtime, useRelaxedSimd } from '../../src/kernels/wasm/runtime.js';

/**
 * Relaxed SIMD's fused multiply-add in the GEMM kernels (opt-in). Node 20 has no relaxed SIMD
 * without a flag, so there the switch must change nothing; on Node 22 and 24 (CI runs the suite
 * on both) the fused kernels run and must agree with the float64 reference as the plain ones do.
 */
const bits = (t: Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

function maxRelErr(got: Tensor, ref: Tensor): number {
  const a = got.dataSync();
  const b = ref.dataSync();
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let err = 0;
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / scale;
}

afterEach(() => useRelaxedSimd(false));

describe('relaxed SIMD (fused multiply-add GEMMs)', () => {
  const x = Tensor.randn([4, 32, 14, 14], { seed: 1 });
  const w = Tensor.randn([48, 32, 3, 3], { seed: 2 });
  const b = Tensor.randn([48], { seed: 3 });
  const run = () => conv(x, w, b, { pads: [1, 1, 1, 1], activation: { kind: 'relu' } });

  it('is off by default, and on only where the engine validates relaxed_madd', () => {
    expect(relaxedSimdEnabled()).toBe(false);
    useRelaxedSimd(true);
    expect(relaxedSimdEnabled()).toBe(relaxedSimdSupported() && runtime() !== null);
  });

  it('where unsupported, switching it on changes no bit', () => {
    if (relaxedSimdSupported()) return;
    const plain = bits(run());
    useRelaxedSimd(true);
    expect(bits(run())).toEqual(plain);
  });

  it('where supported, the fused kernels agree with the float64 reference as the plain ones do, and keep batch independence', () => {
    if (!relaxedSimdSupported() || !runtime()) return;
    const ref = withBackend(referenceBackend, run);
    const plain = run();
    useRelaxedSimd(true);
    const fused = run();
    // K = 288 products per output: float32 rounding keeps both well inside 1e-5 of the output scale.
    expect(maxRelErr(plain, ref)).toBeLessThan(1e-5);
    expect(maxRelErr(fused, ref)).toBeLessThan(1e-5);
    // One image alone (the GEMV kernel) has the bits it has in the batch (the GEMM kernel).
    const one = conv(slice(x, [0], [1], [0]), w, b, { pads: [1, 1, 1, 1], activation: { kind: 'relu' } });
    expect(bits(one)).toEqual(bits(fused).slice(0, one.size));
    // Gemm (a Linear layer) runs the fused kernels too.
    const a = Tensor.randn([5, 300], { seed: 4 });
    const m = Tensor.randn([40, 300], { seed: 5 });
    const g = gemm(a, m, null, { transB: true });
    expect(maxRelErr(g, withBackend(referenceBackend, () => gemm(a, m, null, { transB: true })))).toBeLessThan(1e-5);
  });
});
