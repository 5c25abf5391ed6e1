import type { Tensor } from '../../../core/tensor.js';
import { reduceL1, reduceL2, reduceLogSumExp, reduceMax, reduceMean, reduceMin, reduceProd, reduceSum, reduceSumSquare } from '../../../kernels/reduce.js';
import { type OnnxOp, type OnnxOpTable, readInts } from '../node.js';

type ReduceFn = (x: Tensor, axes: readonly number[], keepdims: boolean, noopWithEmptyAxes: boolean) => Tensor;

/**
 * `axesInputSince`: the opset that moved axes from an attribute to an optional second input
 * (13 for ReduceSum, 18 for the others); noop_with_empty_axes arrived with it.
 */
function reduceOp(fn: ReduceFn, axesInputSince: number): OnnxOp {
  return {
    compile(node) {
      const keepdims = node.int('keepdims', 1) !== 0;
      const noop = node.int('noop_with_empty_axes', 0) !== 0;
      const attrAxes = node.opset < axesInputSince ? node.ints('axes', []) : undefined;
      return (inputs) => {
        const axesInput = inputs[1];
        const axes = attrAxes ?? (axesInput ? readInts(node, axesInput, 'axes') : []);
        return [fn(node.input(inputs, 0, 'data'), axes, keepdims, noop)];
      };
    },
  };
}

/** ONNX adapters for the reduce op cards (every opset: 1, 11 negative axes, 13, 18 axes as an input). */
export const reduceOps: OnnxOpTable = {
  ReduceSum: reduceOp(reduceSum, 13),
  ReduceMean: reduceOp(reduceMean, 18),
  ReduceMax: reduceOp(reduceMax, 18),
  ReduceMin: reduceOp(reduceMin, 18),
  ReduceProd: reduceOp(reduceProd, 18),
  ReduceL1: reduceOp(reduceL1, 18),
  ReduceL2: reduceOp(reduceL2, 18),
  ReduceSumSquare: reduceOp(reduceSumSquare, 18),
  ReduceLogSumExp: reduceOp(reduceLogSumExp, 18),
};
