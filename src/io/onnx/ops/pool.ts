import { type MaxPoolIndicesAttrs, type PoolAttrs, averagePool, globalAveragePool, globalMaxPool, maxPool, maxPoolWithIndices } from '../../../kernels/pool.js';
import { type AutoPad, windowParams } from '../../../kernels/window.js';
import type { OnnxNode, OnnxOpTable } from '../node.js';

const AUTO_PADS: readonly string[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/** The window attributes shared by MaxPool and AveragePool, checked at load. */
function poolAttrs(node: OnnxNode): PoolAttrs {
  const autoPad = node.string('auto_pad', 'NOTSET');
  if (!AUTO_PADS.includes(autoPad)) throw node.error(`auto_pad '${autoPad}' is not one of ${AUTO_PADS.join(', ')}`);
  const optional = (name: string) => (node.has(name) ? node.ints(name) : undefined);
  const attrs: PoolAttrs = {
    kernel: node.ints('kernel_shape'),
    strides: optional('strides'),
    pads: optional('pads'),
    dilations: optional('dilations'),
    autoPad: autoPad as AutoPad,
    ceilMode: node.int('ceil_mode', 0) !== 0,
    countIncludePad: node.int('count_include_pad', 0) !== 0,
  };
  // Lengths and values do not depend on the input: reject bad ones now rather than at run time.
  const w = windowParams(node.label, attrs.kernel.length, attrs);
  // As in onnxruntime: a pad as wide as the window would make windows of padding only (an
  // average of nothing, a max of -inf), so pads must be smaller than the kernel.
  const rank = w.kernel.length;
  w.pads.forEach((p, i) => {
    const k = w.kernel[i % rank]!;
    if (p >= k) throw node.error(`pads[${i}] = ${p} must be smaller than kernel_shape[${i % rank}] = ${k}`);
  });
  return attrs;
}

/** ONNX adapters for the pool op cards. */
export const poolOps: OnnxOpTable = {
  MaxPool: {
    compile(node) {
      const storageOrder = node.int('storage_order', 0);
      if (storageOrder !== 0 && storageOrder !== 1) throw node.error(`storage_order must be 0 (row major) or 1 (column major), got ${storageOrder}`);
      const attrs: MaxPoolIndicesAttrs = { ...poolAttrs(node), storageOrder };
      if (node.outputs.length > 1 && node.outputs[1] !== '') {
        return (inputs) => {
          const { y, indices } = maxPoolWithIndices(node.input(inputs, 0, 'X'), attrs);
          return [y, indices];
        };
      }
      return (inputs) => [maxPool(node.input(inputs, 0, 'X'), attrs)];
    },
  },

  AveragePool: {
    compile(node) {
      const attrs = poolAttrs(node);
      return (inputs) => [averagePool(node.input(inputs, 0, 'X'), attrs)];
    },
  },

  GlobalAveragePool: {
    compile: (node) => (inputs) => [globalAveragePool(node.input(inputs, 0, 'X'))],
  },

  GlobalMaxPool: {
    compile: (node) => (inputs) => [globalMaxPool(node.input(inputs, 0, 'X'))],
  },
};
