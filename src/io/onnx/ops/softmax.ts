import { sizeOf } from '../../../core/shape.js';
import type { Tensor } from '../../../core/tensor.js';
import { logSoftmax, softmax } from '../../../kernels/softmax.js';
import type { OnnxOp, OnnxOpTable } from '../node.js';

/**
 * Opset 13 changed the meaning of axis. From 13: along `axis` (default −1). Before: the input
 * is flattened to 2-D [prod(dims before axis), prod(dims from axis on)] and normalised along
 * the second dim (default axis 1).
 */
function softmaxOp(fn: (x: Tensor, axis: number) => Tensor): OnnxOp {
  return {
    compile(node) {
      const legacy = node.opset < 13;
      const axis = node.int('axis', legacy ? 1 : -1);
      return (inputs) => {
        const x = node.input(inputs, 0, 'input');
        if (!legacy) return [fn(x, axis)];
        const a = axis < 0 ? axis + x.rank : axis;
        if (!(a >= 0 && a < x.rank)) throw node.error(`axis ${axis} is out of range for rank ${x.rank}`);
        const rows = sizeOf(x.shape.slice(0, a));
        const cols = sizeOf(x.shape.slice(a));
        return [fn(x.reshape([rows, cols]), 1).reshape(x.shape)];
      };
    },
  };
}

/** ONNX adapters for the softmax op cards. */
export const softmaxOps: OnnxOpTable = {
  Softmax: softmaxOp(softmax),
  LogSoftmax: softmaxOp(logSoftmax),
};
