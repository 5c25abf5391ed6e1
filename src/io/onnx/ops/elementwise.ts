import { fmtShape } from '../../../core/shape.js';
import type { Tensor } from '../../../core/tensor.js';
import { type BinaryOp, type UnaryOp, binary, clipOp, unary } from '../../../kernels/elementwise.js';
import { reshape } from '../../../kernels/movement.js';
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

/**
 * Opset 7 introduced numpy-style broadcasting. Before (opsets 1 and 6), B broadcast only with
 * the attribute broadcast=1: B's shape matches A's dims from `axis` on (suffix-aligned without
 * `axis`), and B is reshaped to A's rank so that the normal broadcasting does the rest. Without
 * broadcast=1 the shapes must be equal. Opset 1's consumed_inputs is an in-place hint, ignored.
 */
function binaryOp(op: BinaryOp): OnnxOp {
  return {
    sinceVersion: 1,
    compile(node) {
      if (node.opset >= 7) return (inputs) => [binary(node.input(inputs, 0, 'A'), node.input(inputs, 1, 'B'), op)];
      const broadcast = node.int('broadcast', 0);
      if (broadcast !== 0 && broadcast !== 1) throw node.error(`broadcast must be 0 or 1, got ${broadcast}`);
      const axis = node.has('axis') ? node.int('axis') : undefined;
      return (inputs) => {
        const a = node.input(inputs, 0, 'A');
        const b = node.input(inputs, 1, 'B');
        return [binary(a, broadcast ? legacyBroadcast(node, a, b, axis) : sameShape(node, a, b), op)];
      };
    },
  };
}

function sameShape(node: OnnxNode, a: Tensor, b: Tensor): Tensor {
  if (a.shape.join() !== b.shape.join()) {
    throw node.error(`A ${fmtShape(a.shape)} and B ${fmtShape(b.shape)} differ; opset ${node.opset} broadcasts only with broadcast=1`);
  }
  return b;
}

/** B reshaped to A's rank with its dims placed from `axis` (or at the end), as opsets 1–6 broadcast. */
function legacyBroadcast(node: OnnxNode, a: Tensor, b: Tensor, axis: number | undefined): Tensor {
  // A one-element B is a scalar whatever its rank (the spec's example: B of shape (1, 1)).
  if (b.size === 1 && b.rank > 0) return reshape(b, []);
  const r = a.rank;
  const k = b.rank;
  const start = axis === undefined ? r - k : axis < 0 ? axis + r : axis;
  if (k > r || start < 0 || start + k > r) {
    throw node.error(`B ${fmtShape(b.shape)} does not fit A ${fmtShape(a.shape)} from axis ${axis ?? start}`);
  }
  const bad = b.shape.findIndex((d, i) => d !== a.shape[start + i] && d !== 1);
  if (bad >= 0) throw node.error(`B ${fmtShape(b.shape)} does not match A ${fmtShape(a.shape)} from axis ${start}: dim ${bad} is ${b.shape[bad]}, A has ${a.shape[start + bad]}`);
  if (start + k === r) return b; // suffix-aligned: numpy broadcasting as is
  return reshape(b, [...b.shape, ...new Array<number>(r - start - k).fill(1)]);
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
