import type { ConvGeometry } from '../conv.js';
import { f32Array, f64Array } from '../../core/dtype.js';
import { Fn, I32, V128 } from './emit.js';
import { f32Index, runtime } from './runtime.js';
import { scratchBytes } from './budget.js';

/**
 * The filter gradient of a float32 depthwise conv (group = C = M) on WebAssembly SIMD:
 * ∂W[c, ky, kx] = Σ_n Σ_o dY[n, c, o]·Xpad[n, c, o·s + (ky·dh, kx)], with X in zero-bordered
 * planes so that every window lies inside. One filter row (kx = 0 … kw − 1, unit dilation
 * across) is contiguous in the padded plane, so each output adds dY·(the row as one or two
 * vectors) into kh·⌈kw/4⌉ vector sums: 10 vector multiply-adds per output for a 5×5 filter
 * instead of 25 scalar ones. The lanes past kw read neighbouring floats and are dropped.
 * Float32 vector sums of at most ~4096 products (a few images' worth), added up in float64.
 *
 * Returns null (nothing done) when the WebAssembly kernels are unavailable or the geometry is
 * one this kernel leaves to the JS loops (horizontal dilation, filters wider or taller than 8).
 */
export function wasmDepthwiseWeightGrad(X: Float32Array, dY: Float32Array, g: ConvGeometry): Float32Array | null {
  const { n, c, h, w, kh, kw, sh, sw, dh, pt, pl, oh, ow } = g;
  if (g.dw !== 1 || kw > 8 || kh > 8 || n * c * oh * ow === 0) return null;
  const rt = runtime();
  if (!rt) return null;
  const nv = kw <= 4 ? 1 : 2;
  const name = `dwgradw_${kh}x${nv}`;
  const kernel = rt.kernel(name, () => [weightGradKernel(name, kh, nv)]);
  const wp = w + pl + g.pr;
  const hp = h + pt + g.pb;
  const planes = n * c;
  const outFloats = kh * nv * 4;
  // + 8 floats: the last row's vectors read up to 7 floats past the last plane.
  const floats = [planes * h * w, planes * hp * wp + 8, planes * oh * ow, outFloats];
  const base = rt.alloc(scratchBytes(4 * floats.reduce((a, b) => a + ((b + 15) & ~15), 0)));
  try {
    const at: number[] = [];
    let o = base;
    for (const f of floats) {
      at.push(o);
      o += 4 * ((f + 15) & ~15);
    }
    const [pX, pPad, pDY, pOut] = at as [number, number, number, number];
    const v = rt.f32();
    v.set(X.subarray(0, planes * h * w), f32Index(pX));
    v.set(dY.subarray(0, planes * oh * ow), f32Index(pDY));
    v.fill(0, f32Index(pPad) + planes * hp * wp, f32Index(pPad) + planes * hp * wp + 8);
    for (let p = 0; p < planes; p++) rt.call('padplane', pX + 4 * p * h * w, h, w, pPad + 4 * p * hp * wp, wp, pt, pl, hp);
    // Images per call: each float32 vector sum takes at most ~4096 products; the calls' sums
    // are added up in float64.
    const per = Math.max(1, Math.min(n, Math.floor(4096 / (oh * ow))));
    const acc = f64Array(c * kh * kw);
    const r0 = f32Index(pOut);
    for (let ch = 0; ch < c; ch++) {
      for (let n0 = 0; n0 < n; n0 += per) {
        const cnt = Math.min(per, n - n0);
        v.fill(0, r0, r0 + kh * nv * 4);
        kernel(pPad + 4 * (n0 * c + ch) * hp * wp, 4 * c * hp * wp, pDY + 4 * (n0 * c + ch) * oh * ow, 4 * c * oh * ow, cnt, oh, ow, 4 * sh * wp, 4 * sw, 4 * dh * wp, pOut);
        for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) acc[(ch * kh + ky) * kw + kx] += v[r0 + ky * nv * 4 + kx]!;
      }
    }
    const gW = f32Array(acc.length);
    gW.set(acc);
    return gW;
  } finally {
    rt.release(base);
  }
}

/**
 * dwgradw_{kh}x{nv}(pad, padStride, dy, dyStride, n, oh, ow, rowStep, colStep, tapRow, out):
 * for the n planes pad + i·padStride (padded X) and dy + i·dyStride (dY, oh×ow each), sums
 * dY[o]·(nv vectors at pad + oy·rowStep + ox·colStep + ky·tapRow) for ky < kh into kh·nv
 * vector sums, and adds them to out[(ky·nv + v)·4 …]. Strides and steps in bytes.
 */
function weightGradKernel(name: string, kh: number, nv: number): Fn {
  const f = new Fn(name, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [pad, padStride, dy, dyStride, n, oh, ow, rowStep, colStep, tapRow, out] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const acc = Array.from({ length: kh * nv }, () => f.local(V128));
  const d = f.local(V128);
  const i = f.local(I32);
  const oy = f.local(I32);
  const rowA = f.local(I32);
  const a = f.local(I32);
  const t = f.local(I32);
  const o = f.local(I32);
  const e = f.local(I32);
  const rowBytes = f.local(I32);
  for (const r of acc) f.v128Zero().set(r);
  f.get(ow).i32(4).mul().set(rowBytes);
  f.i32(0).set(i);
  f.block().loop();
  {
    f.get(i).get(n).geS().brIf(1);
    f.get(pad).set(rowA);
    f.get(dy).set(o);
    f.i32(0).set(oy);
    f.block().loop();
    {
      f.get(oy).get(oh).geS().brIf(1);
      f.get(rowA).set(a);
      f.get(o).get(rowBytes).add().set(e);
      f.block().loop();
      {
        f.get(o).get(e).geU().brIf(1);
        f.get(o).loadSplat(0).set(d);
        f.get(a).set(t);
        for (let ky = 0; ky < kh; ky++) {
          if (ky > 0) f.get(t).get(tapRow).add().set(t);
          for (let q = 0; q < nv; q++) {
            const r = acc[ky * nv + q]!;
            f.get(r).get(t).v128Load(16 * q).get(d).fmul().fadd().set(r);
          }
        }
        f.get(a).get(colStep).add().set(a);
        f.get(o).i32(4).add().set(o);
        f.br(0);
      }
      f.end().end();
      f.get(rowA).get(rowStep).add().set(rowA);
      f.get(oy).i32(1).add().set(oy);
      f.br(0);
    }
    f.end().end();
    f.get(pad).get(padStride).add().set(pad);
    f.get(dy).get(dyStride).add().set(dy);
    f.get(i).i32(1).add().set(i);
    f.br(0);
  }
  f.end().end();
  acc.forEach((r, q) => {
    f.get(out).get(out).v128Load(16 * q).get(r).fadd().v128Store(16 * q);
  });
  return f;
}
