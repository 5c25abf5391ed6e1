import type { DType } from '../../../core/dtype.js';
import { normAxis } from '../../../core/shape.js';
import { Tensor } from '../../../core/tensor.js';
import { binary } from '../../../kernels/elementwise.js';
import { instanceNorm, layerNorm, layerNormStats, lrn } from '../../../kernels/layernorm.js';
import { type MathOp, math, maximum, minimum, prelu } from '../../../kernels/math.js';
import { identity } from '../../../kernels/movement.js';
import {
  type CompareOp,
  cast,
  compare,
  constantOfShape,
  evenSplitSizes,
  expand,
  logicalNot,
  range,
  slice,
  split,
  tile,
  where,
} from '../../../kernels/structure.js';
import { dtypeFromOnnx, onnxTypeName } from '../tensor_proto.js';
import { type OnnxNode, type OnnxOp, type OnnxOpTable, readInts } from '../node.js';

type Inputs = ReadonlyArray<Tensor | undefined>;

/** The tensors actually given to a variadic op (at least one). */
function present(node: OnnxNode, inputs: Inputs): Tensor[] {
  const xs = inputs.filter((t): t is Tensor => t !== undefined);
  if (xs.length === 0) throw node.error('needs at least one input');
  return xs;
}

/** Sum/Max/Min/Mean of any number of inputs, folded pairwise with broadcasting (opset 8 on; 6–7 need equal shapes, which broadcasting accepts too). */
function variadic(kind: 'Sum' | 'Max' | 'Min' | 'Mean'): OnnxOp {
  return {
    sinceVersion: 6,
    compile(node) {
      return (inputs) => {
        const xs = present(node, inputs);
        if (xs.length === 1) return [identity(xs[0]!)];
        let acc = xs[0]!;
        for (const x of xs.slice(1)) {
          acc = kind === 'Max' ? maximum(acc, x) : kind === 'Min' ? minimum(acc, x) : binary(acc, x, 'Add');
        }
        if (kind === 'Mean') acc = binary(acc, Tensor.scalar(xs.length, acc.dtype), 'Div');
        return [acc];
      };
    },
  };
}

function mathOp(toOp: (node: OnnxNode) => MathOp, sinceVersion: number): OnnxOp {
  return {
    sinceVersion,
    compile(node) {
      const op = toOp(node);
      return (inputs) => [math(node.input(inputs, 0, 'X'), op)];
    },
  };
}

function compareOp(op: CompareOp, sinceVersion: number): OnnxOp {
  return {
    sinceVersion,
    compile(node) {
      return (inputs) => [compare(node.input(inputs, 0, 'A'), node.input(inputs, 1, 'B'), op)];
    },
  };
}

/** An ONNX element type attribute as an engine dtype, or an OnnxError for types the engine has no storage for. */
function dtypeAttr(node: OnnxNode, t: number, what: string): DType {
  const d = dtypeFromOnnx(t);
  if (!d) throw node.error(`${what} ${onnxTypeName(t)} is not supported (the engine has no such tensors)`);
  return d;
}

/** A scalar input's single value. */
function scalarOf(node: OnnxNode, inputs: Inputs, i: number, what: string): number {
  return node.scalar(node.input(inputs, i, what), what);
}

/** ONNX adapters for the structure, math and extra normalization op cards. */
export const structureOps: OnnxOpTable = {
  Slice: {
    compile(node) {
      // Opset 1: starts/ends/axes are attributes (no steps); from 10 they are inputs.
      if (node.opset < 10) {
        const starts = node.ints('starts');
        const ends = node.ints('ends');
        const axes = node.has('axes') ? node.ints('axes') : undefined;
        return (inputs) => [slice(node.input(inputs, 0, 'data'), starts, ends, axes)];
      }
      return (inputs) => {
        const [, , , axesT, stepsT] = inputs;
        const starts = readInts(node, node.input(inputs, 1, 'starts'), 'starts');
        const ends = readInts(node, node.input(inputs, 2, 'ends'), 'ends');
        const axes = axesT ? readInts(node, axesT, 'axes') : undefined;
        const steps = stepsT ? readInts(node, stepsT, 'steps') : undefined;
        return [slice(node.input(inputs, 0, 'data'), starts, ends, axes, steps)];
      };
    },
  },

  Split: {
    compile(node) {
      const axis = node.int('axis', 0);
      const outputs = node.outputs.length;
      // Sizes: the `split` attribute (opsets 1–12), the optional `split` input (1, and 13 on),
      // or num_outputs (18 on); without any, equal parts, one per output (the last smaller from 18).
      const attrSplit = node.opset < 13 && node.has('split') ? node.ints('split') : undefined;
      const numOutputs = node.opset >= 18 && node.has('num_outputs') ? node.int('num_outputs') : undefined;
      if (numOutputs !== undefined && numOutputs !== outputs) throw node.error(`num_outputs is ${numOutputs} but the node has ${outputs} outputs`);
      return (inputs) => {
        const x = node.input(inputs, 0, 'input');
        const a = normAxis(axis, x.rank, node.label);
        const splitT = inputs[1];
        let sizes = attrSplit ?? (splitT ? readInts(node, splitT, 'split') : undefined);
        if (!sizes) {
          const dim = x.shape[a]!;
          if (numOutputs === undefined && dim % outputs !== 0) throw node.error(`dim ${a} (${dim}) does not split into ${outputs} equal parts`);
          sizes = evenSplitSizes(dim, outputs, node.label);
        }
        if (sizes.length !== outputs) throw node.error(`${sizes.length} split sizes for ${outputs} outputs`);
        return split(x, sizes, a);
      };
    },
  },

  LayerNormalization: {
    sinceVersion: 17,
    compile(node) {
      const axis = node.int('axis', -1);
      const epsilon = node.float('epsilon', 1e-5);
      // stash_type picks the precision of the statistics; they are always computed in float64 here.
      node.int('stash_type', 1);
      const wantMean = (node.outputs[1] ?? '') !== '';
      const wantInv = (node.outputs[2] ?? '') !== '';
      return (inputs) => {
        const x = node.input(inputs, 0, 'X');
        const y = layerNorm(x, node.input(inputs, 1, 'Scale'), inputs[2], { axis, epsilon });
        const outs = [y];
        if (wantMean || wantInv) outs.push(layerNormStats(x, 'mean', { axis, epsilon }));
        if (wantInv) outs.push(layerNormStats(x, 'invStdDev', { axis, epsilon }));
        return outs;
      };
    },
  },

  InstanceNormalization: {
    sinceVersion: 6,
    compile(node) {
      const epsilon = node.float('epsilon', 1e-5);
      return (inputs) => [instanceNorm(node.input(inputs, 0, 'input'), node.input(inputs, 1, 'scale'), node.input(inputs, 2, 'B'), epsilon)];
    },
  },

  LRN: {
    compile(node) {
      const attrs = { size: node.int('size'), alpha: node.float('alpha', 1e-4), beta: node.float('beta', 0.75), bias: node.float('bias', 1) };
      if (attrs.size < 1) throw node.error(`size must be positive, got ${attrs.size}`);
      return (inputs) => [lrn(node.input(inputs, 0, 'X'), attrs)];
    },
  },

  ConstantOfShape: {
    sinceVersion: 9,
    compile(node) {
      const v = node.tensor('value');
      if (v && v.size !== 1) throw node.error(`value must hold one element, got ${v.size}`);
      const value = v ? v.dataSync()[0]! : 0;
      const dtype = v ? v.dtype : 'float32';
      return (inputs) => [constantOfShape(readInts(node, node.input(inputs, 0, 'input'), 'shape'), value, dtype)];
    },
  },

  // The element count as an int64 scalar: metadata, like Shape, so no kernel runs.
  Size: {
    compile(node) {
      return (inputs) => [Tensor.scalar(node.input(inputs, 0, 'data').size, 'int64')];
    },
  },

  Expand: {
    sinceVersion: 8,
    compile(node) {
      return (inputs) => [expand(node.input(inputs, 0, 'input'), readInts(node, node.input(inputs, 1, 'shape'), 'shape'))];
    },
  },

  Tile: {
    sinceVersion: 6,
    compile(node) {
      return (inputs) => [tile(node.input(inputs, 0, 'input'), readInts(node, node.input(inputs, 1, 'repeats'), 'repeats'))];
    },
  },

  Where: {
    sinceVersion: 9,
    compile(node) {
      return (inputs) => [where(node.input(inputs, 0, 'condition'), node.input(inputs, 1, 'X'), node.input(inputs, 2, 'Y'))];
    },
  },

  Cast: {
    sinceVersion: 6,
    compile(node) {
      const to = dtypeAttr(node, node.int('to'), 'target type');
      return (inputs) => [cast(node.input(inputs, 0, 'input'), to)];
    },
  },

  // Cast to the element type of a second tensor (whose values are not read).
  CastLike: {
    sinceVersion: 15,
    compile(node) {
      return (inputs) => [cast(node.input(inputs, 0, 'input'), node.input(inputs, 1, 'target_type').dtype)];
    },
  },

  Range: {
    sinceVersion: 11,
    compile(node) {
      return (inputs) => {
        const dtype = node.input(inputs, 0, 'start').dtype;
        return [range(scalarOf(node, inputs, 0, 'start'), scalarOf(node, inputs, 1, 'limit'), scalarOf(node, inputs, 2, 'delta'), dtype)];
      };
    },
  },

  Equal: compareOp('Equal', 7),
  Less: compareOp('Less', 7),
  Greater: compareOp('Greater', 7),
  LessOrEqual: compareOp('LessOrEqual', 12),
  GreaterOrEqual: compareOp('GreaterOrEqual', 12),
  And: compareOp('And', 7),
  Or: compareOp('Or', 7),
  Xor: compareOp('Xor', 7),
  Not: {
    compile(node) {
      return (inputs) => [logicalNot(node.input(inputs, 0, 'X'))];
    },
  },

  Sum: variadic('Sum'),
  Mean: variadic('Mean'),
  Max: variadic('Max'),
  Min: variadic('Min'),

  Log: mathOp(() => ({ kind: 'log' }), 6),
  Reciprocal: mathOp(() => ({ kind: 'reciprocal' }), 6),
  Floor: mathOp(() => ({ kind: 'floor' }), 6),
  Ceil: mathOp(() => ({ kind: 'ceil' }), 6),
  Round: mathOp(() => ({ kind: 'round' }), 11),
  Sign: mathOp(() => ({ kind: 'sign' }), 9),
  Softplus: mathOp(() => ({ kind: 'softplus' }), 1),
  Softsign: mathOp(() => ({ kind: 'softsign' }), 1),
  Mish: mathOp(() => ({ kind: 'mish' }), 18),
  Elu: mathOp((n) => ({ kind: 'elu', alpha: n.float('alpha', 1) }), 6),
  Celu: mathOp((n) => ({ kind: 'celu', alpha: n.float('alpha', 1) }), 12),
  Selu: mathOp((n) => ({ kind: 'selu', alpha: n.float('alpha', 1.67326319217681884765625), gamma: n.float('gamma', 1.05070102214813232421875) }), 6),
  ThresholdedRelu: mathOp((n) => ({ kind: 'thresholded_relu', alpha: n.float('alpha', 1) }), 10),
  PRelu: {
    sinceVersion: 7,
    compile(node) {
      return (inputs) => [prelu(node.input(inputs, 0, 'X'), node.input(inputs, 1, 'slope'))];
    },
  },
};
