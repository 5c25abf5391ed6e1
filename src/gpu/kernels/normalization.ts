import type { BatchNormAttrs } from '../../kernels/normalization.js';
import { type Arr, type GpuKernel, type KernelThis, activationConstants } from './types.js';

/** BatchNormalization card (inference, src/kernels/normalization.ts): per channel of [N, C, …]. */
interface BatchNormConstants {
  c: number; inner: number; eps: number; act: number; p1: number; p2: number;
}

export const batchNormKernel = function (this: KernelThis<BatchNormConstants>, x: Arr, scale: Arr, bias: Arr, mean: Arr, variance: Arr): number {
  const o = this.thread.x;
  let t = Math.floor(o / this.constants.inner);
  if (t * this.constants.inner > o) { t = t - 1; }
  if ((t + 1) * this.constants.inner <= o) { t = t + 1; }
  let ch = t - Math.floor(t / this.constants.c) * this.constants.c;
  if (ch < 0) { ch = ch + this.constants.c; }
  if (ch >= this.constants.c) { ch = ch - this.constants.c; }
  const s = (scale[ch]! * (x[o]! - mean[ch]!)) / Math.sqrt(variance[ch]! + this.constants.eps) + bias[ch]!;
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

export const gpuBatchNorm: GpuKernel<BatchNormAttrs> = ([x], attrs) => {
  const xs = x!.shape;
  const inner = xs.slice(2).reduce((a, b) => a * b, 1);
  return {
    kind: 'programs',
    shape: xs,
    programs: [
      {
        name: 'batchnorm',
        source: batchNormKernel,
        size: x!.size,
        args: [0, 1, 2, 3, 4],
        constants: { c: xs[1]!, inner, eps: attrs.epsilon, ...activationConstants(attrs.activation) },
      },
    ],
  };
};
