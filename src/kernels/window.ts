import { ShapeError } from '../core/errors.js';

/**
 * Sliding-window geometry shared by convolution and pooling, per spatial axis.
 * Pads follow ONNX's order: [begin_0, begin_1, …, end_0, end_1, …] (for 2-D: top, left, bottom, right).
 */
export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

/**
 * Explicit pads for auto_pad. SAME_* keep out = ceil(in / stride); the odd pixel of padding
 * goes to the end for SAME_UPPER and to the beginning for SAME_LOWER. VALID pads nothing.
 */
export function resolveAutoPad(
  autoPad: AutoPad,
  spatial: readonly number[],
  kernel: readonly number[],
  strides: readonly number[],
  dilations: readonly number[],
  pads: readonly number[],
): number[] {
  const n = spatial.length;
  if (autoPad === 'NOTSET') return [...pads];
  if (autoPad === 'VALID') return new Array<number>(2 * n).fill(0);
  const out = new Array<number>(2 * n);
  for (let i = 0; i < n; i++) {
    const o = Math.ceil(spatial[i]! / strides[i]!);
    const total = Math.max(0, (o - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - spatial[i]!);
    const small = Math.floor(total / 2);
    out[i] = autoPad === 'SAME_UPPER' ? small : total - small;
    out[i + n] = total - out[i]!;
  }
  return out;
}

/**
 * Output length of one spatial axis. With ceilMode the last window may hang over the end,
 * but (as in PyTorch and onnxruntime) it must start inside the input or its begin padding.
 */
export function outputLength(
  op: string,
  axis: number,
  size: number,
  kernel: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
  ceilMode = false,
): number {
  const span = dilation * (kernel - 1) + 1;
  const room = size + padBegin + padEnd - span;
  if (room < 0) {
    throw new ShapeError(
      `${op}: window of ${span} (kernel ${kernel}, dilation ${dilation}) does not fit spatial axis ${axis} of size ${size} with pads ${padBegin}+${padEnd}`,
    );
  }
  let out = (ceilMode ? Math.ceil(room / stride) : Math.floor(room / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padBegin) out--;
  return out;
}

/** Checks the lengths and values of window attributes and fills their defaults. */
export function windowParams(
  op: string,
  spatialRank: number,
  p: { kernel: readonly number[]; strides?: readonly number[]; dilations?: readonly number[]; pads?: readonly number[] },
): { kernel: number[]; strides: number[]; dilations: number[]; pads: number[] } {
  const check = (name: string, v: readonly number[], len: number, min: number) => {
    if (v.length !== len) throw new ShapeError(`${op}: ${name} has ${v.length} values, expected ${len}`);
    v.forEach((x, i) => {
      if (!Number.isSafeInteger(x) || x < min) throw new ShapeError(`${op}: ${name}[${i}] = ${x}, expected an integer ≥ ${min}`);
    });
    return [...v];
  };
  return {
    kernel: check('kernel_shape', p.kernel, spatialRank, 1),
    strides: check('strides', p.strides ?? new Array(spatialRank).fill(1), spatialRank, 1),
    dilations: check('dilations', p.dilations ?? new Array(spatialRank).fill(1), spatialRank, 1),
    pads: check('pads', p.pads ?? new Array(2 * spatialRank).fill(0), 2 * spatialRank, 0),
  };
}
