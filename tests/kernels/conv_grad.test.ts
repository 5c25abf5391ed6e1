import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { type ConvOptions, conv } from '../../src/kernels/conv.js';
import { mul } from '../../src/kernels/elementwise.js';
import { reduceSum } from '../../src/kernels/reduce.js';
import { withWasmKernels } from '../../src/kernels/wasm/runtime.js';

/**
 * The float32 conv gradients (WebAssembly GEMMs for 1×1 convs, the float32 depthwise loops,
 * im2col GEMMs otherwise), through the tape: the loss is Σ R·conv(x, w, b) with a random R,
 * so ∂Y = R.
 */
function grads(x: number[], xs: number[], w: number[], ws: number[], b: number[] | null, r: number[], opts: ConvOptions) {
  const X = new Tensor(Float32Array.from(x), xs).requireGrad();
  const Wt = new Tensor(Float32Array.from(w), ws).requireGrad();
  const B = b ? new Tensor(Float32Array.from(b), [b.length]).requireGrad() : null;
  const y = conv(X, Wt, B, opts);
  reduceSum(mul(y, new Tensor(Float32Array.from(r), y.shape)), [], false).backward();
  return [X.grad!.dataSync(), Wt.grad!.dataSync(), B ? B.grad!.dataSync() : null] as const;
}

/** The same gradients in float64 straight from the definition: every output's taps, one by one. */
function reference(x: number[], xs: number[], w: number[], ws: number[], r: number[], ys: readonly number[], opts: ConvOptions) {
  const [N, C, H, Wd] = xs as [number, number, number, number];
  const [M, CG, KH, KW] = ws as [number, number, number, number];
  const [, , OH, OW] = ys as [number, number, number, number];
  const [sh, sw] = opts.strides ?? [1, 1];
  const [dh, dw] = opts.dilations ?? [1, 1];
  const [pt, pl] = opts.pads ?? [0, 0];
  const mg = M / (opts.group ?? 1);
  const gX = new Float64Array(x.length);
  const gW = new Float64Array(w.length);
  const gB = new Float64Array(M);
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          const d = r[((n * M + m) * OH + oy) * OW + ox]!;
          gB[m] += d;
          for (let ci = 0; ci < CG; ci++) {
            const c = Math.floor(m / mg) * CG + ci;
            for (let ky = 0; ky < KH; ky++)
              for (let kx = 0; kx < KW; kx++) {
                const iy = oy * sh - pt + ky * dh;
                const ix = ox * sw - pl + kx * dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
                const xi = ((n * C + c) * H + iy) * Wd + ix;
                const wi = ((m * CG + ci) * KH + ky) * KW + kx;
                gX[xi] += d * w[wi]!;
                gW[wi] += d * x[xi]!;
              }
          }
        }
  return [gX, gW, gB] as const;
}

function rand(n: number, seed: number): number[] {
  return Array.from(Tensor.rand([n], { seed, low: -1, high: 1 }).dataSync());
}

/**
 * Largest |a − b| relative to the largest |b| of the gradient. Float32 sums of up to ~7000
 * products (the 48×48 case) of values in [−1, 1] carry a relative error of about
 * √terms·6e-8 ≤ 1e-5 of the sum's scale; 1e-4 leaves room and still catches any wrong tap or
 * index (errors of order 1).
 */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 1e-30;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / scale;
}

const TOL = 1e-4;

interface Case {
  name: string;
  n: number;
  c: number;
  m: number;
  hw: [number, number];
  k: [number, number];
  opts: ConvOptions;
  bias: boolean;
}

const cases: Case[] = [
  { name: '1×1 pointwise, odd sizes', n: 3, c: 7, m: 13, hw: [5, 3], k: [1, 1], opts: {}, bias: true },
  { name: '1×1 pointwise, 1×1 planes (SE)', n: 5, c: 16, m: 9, hw: [1, 1], k: [1, 1], opts: {}, bias: true },
  { name: '1×1 pointwise, many channels', n: 2, c: 40, m: 72, hw: [6, 7], k: [1, 1], opts: {}, bias: false },
  { name: '1×1 pointwise, groups', n: 2, c: 6, m: 9, hw: [4, 4], k: [1, 1], opts: { group: 3 }, bias: true },
  { name: '1×1 pointwise, 9×10 planes (a GEMM per image)', n: 3, c: 10, m: 7, hw: [9, 10], k: [1, 1], opts: {}, bias: true },
  { name: '1×1 pointwise, groups, 8×8 planes', n: 2, c: 6, m: 10, hw: [8, 8], k: [1, 1], opts: { group: 2 }, bias: false },
  { name: '1×1 stride 2 (im2col)', n: 2, c: 5, m: 6, hw: [7, 6], k: [1, 1], opts: { strides: [2, 2] }, bias: false },
  { name: 'depthwise 3×3 stride 1 pad 1', n: 2, c: 5, m: 5, hw: [7, 9], k: [3, 3], opts: { group: 5, pads: [1, 1, 1, 1] }, bias: true },
  { name: 'depthwise 3×3 stride 2 pad 1', n: 3, c: 4, m: 4, hw: [8, 7], k: [3, 3], opts: { group: 4, strides: [2, 2], pads: [1, 1, 1, 1] }, bias: false },
  { name: 'depthwise 5×5 stride 2 pad 2', n: 2, c: 3, m: 3, hw: [9, 10], k: [5, 5], opts: { group: 3, strides: [2, 2], pads: [2, 2, 2, 2] }, bias: true },
  { name: 'depthwise 5×5 stride 1, 2×2 planes', n: 4, c: 6, m: 6, hw: [2, 2], k: [5, 5], opts: { group: 6, pads: [2, 2, 2, 2] }, bias: false },
  { name: 'depthwise 3×3 dilation 2, asymmetric pads', n: 2, c: 3, m: 3, hw: [8, 8], k: [3, 3], opts: { group: 3, dilations: [2, 2], pads: [2, 1, 0, 3] }, bias: true },
  { name: 'depthwise 3×3, 48×48 planes (∂W summed over several calls)', n: 3, c: 2, m: 2, hw: [48, 48], k: [3, 3], opts: { group: 2, pads: [1, 1, 1, 1] }, bias: false },
  { name: 'depthwise 3×2 stride (1, 3)', n: 1, c: 2, m: 2, hw: [6, 11], k: [3, 2], opts: { group: 2, strides: [1, 3], pads: [1, 0, 1, 1] }, bias: false },
  { name: 'dense 3×3 stride 2 (stem)', n: 2, c: 3, m: 8, hw: [9, 9], k: [3, 3], opts: { strides: [2, 2], pads: [1, 1, 1, 1] }, bias: false },
  { name: 'dense 3×2 dilation (2, 1), asymmetric pads', n: 3, c: 4, m: 6, hw: [7, 8], k: [3, 2], opts: { dilations: [2, 1], pads: [2, 0, 1, 1] }, bias: true },
  { name: 'dense 3×3 groups 2 (TS im2col path)', n: 2, c: 4, m: 6, hw: [6, 6], k: [3, 3], opts: { group: 2, pads: [1, 1, 1, 1] }, bias: false },
];

describe('float32 conv gradients match a float64 reference', () => {
  for (const wasm of [true, false]) {
    for (const cs of cases) {
      it(`${cs.name}${wasm ? '' : ' (no WebAssembly)'}`, () => {
        const xs = [cs.n, cs.c, ...cs.hw];
        const ws = [cs.m, cs.c / (cs.opts.group ?? 1), ...cs.k];
        const x = rand(xs.reduce((a, b) => a * b), 1);
        const w = rand(ws.reduce((a, b) => a * b), 2);
        const b = cs.bias ? rand(cs.m, 3) : null;
        const probe = conv(new Tensor(Float32Array.from(x), xs), new Tensor(Float32Array.from(w), ws), null, cs.opts);
        const r = rand(probe.size, 4);
        const ref = reference(x, xs, w, ws, r, probe.shape, cs.opts);
        const got = withWasmKernels(wasm, () => grads(x, xs, w, ws, b, r, cs.opts));
        expect(got[0]).toBeInstanceOf(Float32Array);
        expect(relErr(got[0], ref[0])).toBeLessThan(TOL);
        expect(relErr(got[1], ref[1])).toBeLessThan(TOL);
        if (b) expect(relErr(got[2]!, ref[2]!)).toBeLessThan(TOL);
      });
    }
  }
});
