import type { PoolAttrs } from '../../kernels/pool.js';
import { resolveAutoPad, windowParams } from '../../kernels/window.js';
import { type Arr, type GpuKernel, type KernelThis, cpuPlan } from './types.js';

/** MaxPool / AveragePool cards (src/kernels/pool.ts), 1-D and 2-D (1-D as height 1). */
interface PoolConstants {
  h: number; w: number; oh: number; ow: number; kh: number; kw: number;
  sh: number; sw: number; dh: number; dw: number; pt: number; pl: number; pb: number; pr: number;
  isMax: number; countPad: number;
}

export const poolKernel = function (this: KernelThis<PoolConstants>, x: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.ow);
  let ox = o - t * this.constants.ow;
  if (ox < 0) { t = t - 1; ox = ox + this.constants.ow; }
  if (ox >= this.constants.ow) { t = t + 1; ox = ox - this.constants.ow; }
  let plane = Math.floor(t / this.constants.oh);
  let oy = t - plane * this.constants.oh;
  if (oy < 0) { plane = plane - 1; oy = oy + this.constants.oh; }
  if (oy >= this.constants.oh) { plane = plane + 1; oy = oy - this.constants.oh; }
  const iy0 = oy * this.constants.sh - this.constants.pt;
  const ix0 = ox * this.constants.sw - this.constants.pl;
  const base = plane * this.constants.h * this.constants.w;
  // From −∞ (gpu.js writes it as −FLT_MAX in GLSL) with `v > mx`: NaN never wins and a window
  // of only NaN or −∞ gives −∞, as the CPU MaxPool (docs/special-values.md).
  let mx = -Infinity;
  let sum = 0;
  let inside = 0;
  let rows = 0;
  let cols = 0;
  for (let ky = 0; ky < this.constants.kh; ky++) {
    const iy = iy0 + ky * this.constants.dh;
    if (iy < this.constants.h + this.constants.pb) { rows += 1; }
    if (iy >= 0 && iy < this.constants.h) {
      for (let kx = 0; kx < this.constants.kw; kx++) {
        const ix = ix0 + kx * this.constants.dw;
        if (ix >= 0 && ix < this.constants.w) {
          const v = x[base + iy * this.constants.w + ix]!;
          if (v > mx) { mx = v; }
          sum += v;
          inside += 1;
        }
      }
    }
  }
  for (let kx = 0; kx < this.constants.kw; kx++) {
    const ix = ix0 + kx * this.constants.dw;
    if (ix < this.constants.w + this.constants.pr) { cols += 1; }
  }
  if (this.constants.isMax === 1) { return mx; }
  if (this.constants.countPad === 1) { return sum / (rows * cols); }
  return sum / inside;
};

function gpuPool(isMax: boolean): GpuKernel<PoolAttrs> {
  return ([x], attrs) => {
    const xs = x!.shape;
    if (xs.length !== 3 && xs.length !== 4) return cpuPlan(`${xs.length - 2}-D pooling (the kernel does 1-D and 2-D)`);
    const r = xs.length - 2;
    const spatial = xs.slice(2);
    const p = windowParams(isMax ? 'MaxPool' : 'AveragePool', r, attrs);
    const pads = resolveAutoPad(attrs.autoPad ?? 'NOTSET', spatial, p.kernel, p.strides, p.dilations, p.pads);
    const two = r === 2;
    const out = spatial.map((size, i) => {
      const span = p.dilations[i]! * (p.kernel[i]! - 1) + 1;
      const room = size + pads[i]! + pads[i + r]! - span;
      let o = (attrs.ceilMode ? Math.ceil(room / p.strides[i]!) : Math.floor(room / p.strides[i]!)) + 1;
      if (attrs.ceilMode && (o - 1) * p.strides[i]! >= size + pads[i]!) o--;
      return o;
    });
    const oh = two ? out[0]! : 1;
    const ow = out[r - 1]!;
    // A window wholly in the padding has no input taps: MaxPool gives −∞ and AveragePool 0/0 there.
    const shape = [xs[0]!, xs[1]!, ...out];
    return {
      kind: 'programs',
      shape,
      programs: [
        {
          name: isMax ? 'maxpool' : 'avgpool',
          source: poolKernel,
          size: xs[0]! * xs[1]! * oh * ow,
          args: [0],
          constants: {
            h: two ? spatial[0]! : 1, w: spatial[r - 1]!, oh, ow,
            kh: two ? p.kernel[0]! : 1, kw: p.kernel[r - 1]!,
            sh: two ? p.strides[0]! : 1, sw: p.strides[r - 1]!,
            dh: two ? p.dilations[0]! : 1, dw: p.dilations[r - 1]!,
            pt: two ? pads[0]! : 0, pl: pads[r - 1]!, pb: two ? pads[2]! : 0, pr: pads[2 * r - 1]!,
            isMax: isMax ? 1 : 0, countPad: attrs.countIncludePad ? 1 : 0,
          },
        },
      ],
    };
  };
}

export const gpuMaxPool = gpuPool(true);
export const gpuAveragePool = gpuPool(false);

/** GlobalAveragePool / GlobalMaxPool cards: one output per (n, c) plane. */
interface GlobalConstants {
  len: number; isMax: number;
}

export const globalPoolKernel = function (this: KernelThis<GlobalConstants>, x: Arr): number {
  const base = this.thread.x * this.constants.len;
  let mx = -Infinity; // as poolKernel: NaN never wins, only NaN or −∞ gives −∞
  let sum = 0;
  for (let i = 0; i < this.constants.len; i++) {
    const v = x[base + i]!;
    if (v > mx) { mx = v; }
    sum += v;
  }
  if (this.constants.isMax === 1) { return mx; }
  return sum / this.constants.len;
};

function gpuGlobalPool(isMax: boolean): GpuKernel<void> {
  return ([x]) => {
    const xs = x!.shape;
    const planes = xs[0]! * xs[1]!;
    const len = xs.slice(2).reduce((a, b) => a * b, 1);
    return {
      kind: 'programs',
      shape: [xs[0]!, xs[1]!, ...xs.slice(2).map(() => 1)],
      programs: [{ name: isMax ? 'globalmax' : 'globalavg', source: globalPoolKernel, size: planes, args: [0], constants: { len, isMax: isMax ? 1 : 0 } }],
    };
  };
}

export const gpuGlobalAveragePool = gpuGlobalPool(false);
export const gpuGlobalMaxPool = gpuGlobalPool(true);
