import { normAxis } from '../../core/shape.js';
import type { SoftmaxAttrs } from '../../kernels/softmax.js';
import { type Arr, type GpuKernel, type KernelThis } from './types.js';

/**
 * Softmax / LogSoftmax cards (src/kernels/softmax.ts): each thread finds its line's max and sum of
 * exp(x − max) itself (the input viewed as [outer, len, inner] around the axis), then writes its
 * own element. A line is read len times, which is fine for class scores.
 */
interface SoftmaxConstants {
  len: number; inner: number; log: number;
}

export const softmaxKernel = function (this: KernelThis<SoftmaxConstants>, x: Arr): number {
  const o = this.thread.x;
  const block = this.constants.len * this.constants.inner;
  let outer = Math.floor(o / block);
  if (outer * block > o) { outer = outer - 1; }
  if ((outer + 1) * block <= o) { outer = outer + 1; }
  const rest = o - outer * block;
  let l = Math.floor(rest / this.constants.inner);
  if (l * this.constants.inner > rest) { l = l - 1; }
  if ((l + 1) * this.constants.inner <= rest) { l = l + 1; }
  const j = rest - l * this.constants.inner;
  const base = outer * block + j;
  let mx = -3.4e38;
  for (let i = 0; i < this.constants.len; i++) {
    mx = Math.max(mx, x[base + i * this.constants.inner]!);
  }
  let sum = 0;
  for (let i = 0; i < this.constants.len; i++) {
    sum += Math.exp(x[base + i * this.constants.inner]! - mx);
  }
  const z = x[o]! - mx;
  if (this.constants.log === 1) { return z - Math.log(sum); }
  return Math.exp(z) / sum;
};

function gpuSoftmaxOf(log: boolean): GpuKernel<SoftmaxAttrs> {
  return ([x], { axis }) => {
    const xs = x!.shape;
    const a = normAxis(axis, xs.length, log ? 'LogSoftmax' : 'Softmax');
    const inner = xs.slice(a + 1).reduce((p, q) => p * q, 1);
    return {
      kind: 'programs',
      shape: xs,
      programs: [{ name: log ? 'logsoftmax' : 'softmax', source: softmaxKernel, size: x!.size, args: [0], constants: { len: xs[a]!, inner, log: log ? 1 : 0 } }],
    };
  };
}

export const gpuSoftmax = gpuSoftmaxOf(false);
export const gpuLogSoftmax = gpuSoftmaxOf(true);
