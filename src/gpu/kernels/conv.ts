import type { ConvAttrs } from '../../kernels/conv.js';
import { type Arr, type GpuKernel, type KernelThis, activationConstants, cpuPlan } from './types.js';

/** The constants of convKernel: the conv seen as 2-D (a 1-D conv is height 1), plus the epilogue. */
interface ConvConstants {
  c: number; h: number; w: number; m: number; oh: number; ow: number;
  cg: number; mg: number; kh: number; kw: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number;
  hasBias: number; act: number; p1: number; p2: number;
}

/**
 * Conv card (src/kernels/conv.ts) on the GPU: one output element per thread, gathering its window
 * over the group's input channels; covers standard, pointwise, grouped, depthwise and dilated
 * convs, with the bias and activation fused. `b` is the bias, or any buffer when hasBias is 0.
 */
export const convKernel = function (this: KernelThis<ConvConstants>, x: Arr, wt: Arr, b: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.ow);
  let ox = o - t * this.constants.ow;
  if (ox < 0) { t = t - 1; ox = ox + this.constants.ow; }
  if (ox >= this.constants.ow) { t = t + 1; ox = ox - this.constants.ow; }
  let t2 = Math.floor(t / this.constants.oh);
  let oy = t - t2 * this.constants.oh;
  if (oy < 0) { t2 = t2 - 1; oy = oy + this.constants.oh; }
  if (oy >= this.constants.oh) { t2 = t2 + 1; oy = oy - this.constants.oh; }
  let n = Math.floor(t2 / this.constants.m);
  let m = t2 - n * this.constants.m;
  if (m < 0) { n = n - 1; m = m + this.constants.m; }
  if (m >= this.constants.m) { n = n + 1; m = m - this.constants.m; }
  let g = Math.floor(m / this.constants.mg);
  if (g * this.constants.mg > m) { g = g - 1; }
  if ((g + 1) * this.constants.mg <= m) { g = g + 1; }
  let s = 0;
  if (this.constants.hasBias === 1) { s = b[m]!; }
  const iy0 = oy * this.constants.sh - this.constants.pt;
  const ix0 = ox * this.constants.sw - this.constants.pl;
  const xBase = (n * this.constants.c + g * this.constants.cg) * this.constants.h;
  const wBase = m * this.constants.cg * this.constants.kh;
  for (let ci = 0; ci < this.constants.cg; ci++) {
    for (let ky = 0; ky < this.constants.kh; ky++) {
      const iy = iy0 + ky * this.constants.dh;
      if (iy >= 0 && iy < this.constants.h) {
        const xRow = ((xBase + ci * this.constants.h) + iy) * this.constants.w;
        const wRow = ((wBase + ci * this.constants.kh) + ky) * this.constants.kw;
        for (let kx = 0; kx < this.constants.kw; kx++) {
          const ix = ix0 + kx * this.constants.dw;
          if (ix >= 0 && ix < this.constants.w) {
            s += x[xRow + ix]! * wt[wRow + kx]!;
          }
        }
      }
    }
  }
  let v = s;
  if (this.constants.act === 1) { if (s < 0) { v = 0; } }
  if (this.constants.act === 2) { if (s < 0) { v = this.constants.p1 * s; } }
  if (this.constants.act === 3) { if (s < this.constants.p1) { v = this.constants.p1; } if (s > this.constants.p2) { v = this.constants.p2; } }
  if (this.constants.act === 4) { v = 1 / (1 + Math.exp(-s)); if (s < -88.72283905206835) { v = 0; } }
  if (this.constants.act === 5) { v = this.constants.p1 * s + this.constants.p2; if (v < 0) { v = 0; } if (v > 1) { v = 1; } }
  if (this.constants.act === 6) { v = s * (Math.min(Math.max(s + 3, 0), 6) / 6); }
  if (this.constants.act === 7) { v = s / (1 + Math.exp(-s)); if (s < -88.72283905206835) { v = s * 0; } }
  if (this.constants.act === 8) { v = Math.tanh(Math.min(Math.max(s, -15), 15)); }
  return v;
};

export const gpuConv: GpuKernel<ConvAttrs> = (inputs, attrs) => {
  const [x, w, b] = inputs;
  const xs = x!.shape;
  const ws = w!.shape;
  if (xs.length !== 4 && xs.length !== 3) return cpuPlan(`rank-${xs.length} input`);
  const two = xs.length === 4;
  const r = two ? 2 : 1;
  const kh = two ? ws[2]! : 1;
  const kw = ws[r + 1]!;
  const sh = two ? attrs.strides[0]! : 1;
  const sw = attrs.strides[r - 1]!;
  const dh = two ? attrs.dilations[0]! : 1;
  const dw = attrs.dilations[r - 1]!;
  const pt = two ? attrs.pads[0]! : 0;
  const pl = attrs.pads[r - 1]!;
  const pb = two ? attrs.pads[2]! : 0;
  const pr = attrs.pads[2 * r - 1]!;
  const h = two ? xs[2]! : 1;
  const wd = xs[r + 1]!;
  const oh = Math.floor((h + pt + pb - (dh * (kh - 1) + 1)) / sh) + 1;
  const ow = Math.floor((wd + pl + pr - (dw * (kw - 1) + 1)) / sw) + 1;
  const [n, c] = [xs[0]!, xs[1]!];
  const m = ws[0]!;
  const shape = two ? [n, m, oh, ow] : [n, m, ow];
  return {
    kind: 'programs',
    shape,
    programs: [
      {
        name: 'conv',
        source: convKernel,
        size: n * m * oh * ow,
        args: b ? [0, 1, 2] : [0, 1, 0],
        constants: {
          c, h, w: wd, m, oh, ow, cg: ws[1]!, mg: m / attrs.group, kh, kw, sh, sw, dh, dw, pt, pl,
          hasBias: b ? 1 : 0,
          ...activationConstants(attrs.activation),
        },
      },
    ],
  };
};
