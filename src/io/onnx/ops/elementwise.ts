import type { Tensor } from '../../../core/tensor.js';
import { type BinaryOp, type UnaryOp, binary, clipOp, unary } from '../../../kernels/elementwise.js';
import type { OnnxNode, OnnxOp, OnnxOpTable } from '../node.js';

type Inputs = ReadonlyArray<Tensor | undefined>;



/**
 * A one-input op whose function comes from the node's attributes. sinceVersion 6: older
 * opsets carry the legacy consumed_inputs attribute.
 */
function unaryOp(toOp: (node: OnnxNode) => UnaryOp, sinceVersion = 6): OnnxOp {
  return {
    sinceVersion,
    compile(node) {
      const op = toOp(node);
      return (inputs) => [unary(node.input(inputs, 0, 'X'), op)];
    },
  };
}

/** Opset 7 introduced numpy-style broadcasting (before, a 'broadcast' attribute and 'axis'). */
function binaryOp(op: BinaryOp): OnnxOp {
  return {
    sinceVersion: 7,
    compile(node) {
      return (inputs) => [binary(node.input(inputs, 0, 'A'), node.input(inputs, 1, 'B'), op)];
    },
  };
}

/** ONNX adapters for the elementwise op cards. */
export const elementwiseOps: OnnxOpTable = {
  Relu: unaryOp(() => ({ kind: 'relu' })),
  LeakyRelu: unaryOp((n) => ({ kind: 'leaky_relu', alpha: n.float('alpha', 0.01) })),
  // ONNX's defaults; PyTorch exports its Hardsigmoid with alpha 1/6 written out.
  HardSigmoid: unaryOp((n) => ({ kind: 'hard_sigmoid', alpha: n.float('alpha', 0.2), beta: n.float('beta', 0.5) })),
  HardSwish: unaryOp(() => ({ kind: 'hard_swish' }), 14),
  Sigmoid: unaryOp(() => ({ kind: 'sigmoid' })),
  Tanh: unaryOp(() => ({ kind: 'tanh' })),
  Erf: unaryOp(() => ({ kind: 'erf' }), 9),
  Exp: unaryOp(() => ({ kind: 'exp' })),
  Sqrt: unaryOp(() => ({ kind: 'sqrt' })),
  Neg: unaryOp(() => ({ kind: 'neg' })),
  Abs: unaryOp(() => ({ kind: 'abs' })),

  Clip: {
    sinceVersion: 6,
    compile(node) {
      // Before opset 11, min and max are attributes; from 11 on, optional scalar inputs.
      if (node.opset < 11) {
        const op = clipOp(node.float('min', -Infinity), node.float('max', Infinity));
        return (inputs) => [unary(node.input(inputs, 0, 'input'), op)];
      }
      return (inputs) => {
        const [, min, max] = inputs;
        const op = clipOp(min && node.scalar(min, 'min'), max && node.scalar(max, 'max'));
        return [unary(node.input(inputs, 0, 'input'), op)];
      };
    },
  },

  Add: binaryOp('Add'),
  Sub: binaryOp('Sub'),
  Mul: binaryOp('Mul'),
  Div: binaryOp('Div'),
  Pow: binaryOp('Pow'),
};
