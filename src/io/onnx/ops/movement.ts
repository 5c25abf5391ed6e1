import { DTYPES } from '../../../core/dtype.js';
import { normAxis } from '../../../core/shape.js';
import { Rng } from '../../../core/rng.js';
import { Tensor } from '../../../core/tensor.js';
import {
  type PadMode,
  concat,
  flatten,
  gather,
  identity,
  pad,
  reshape,
  shapeOf,
  squeeze,
  transpose,
  unsqueeze,
} from '../../../kernels/movement.js';
import { type OnnxNode, type OnnxOpTable, readInts } from '../node.js';

type Inputs = ReadonlyArray<Tensor | undefined>;



/** Axes from the attribute (before opset 13) or from an optional input (opset 13 on). */
function axesOf(node: OnnxNode, inputs: Inputs, attr: number[] | undefined): number[] | undefined {
  if (node.opset < 13) return attr;
  const t = inputs[1];
  return t ? readInts(node, t, 'axes') : undefined;
}

/** The value a Constant node holds, from whichever one of its value attributes is set. */
function constantValue(node: OnnxNode): Tensor {
  const set = [...node.attrs.keys()];
  if (set.length !== 1) throw node.error(`expected exactly one value attribute, got ${set.length ? set.join(', ') : 'none'}`);
  const key = set[0]!;
  switch (key) {
    case 'value':
      return node.tensor('value')!;
    case 'value_float':
      return Tensor.scalar(node.float(key), 'float32');
    case 'value_floats': {
      const v = node.floats(key);
      return Tensor.fromArray(v, [v.length], 'float32');
    }
    case 'value_int':
      return Tensor.scalar(node.int(key), 'int64');
    case 'value_ints': {
      const v = node.ints(key);
      return Tensor.fromArray(v, [v.length], 'int64');
    }
    default:
      // value_string(s) and sparse_value: the engine has no string or sparse tensors.
      throw node.error(`attribute '${key}' is not supported`);
  }
}

/** ONNX adapters for the movement op cards. */
export const movementOps: OnnxOpTable = {
  Reshape: {
    compile(node) {
      const allowzero = node.int('allowzero', 0) !== 0;
      // Opset 5 moved the target shape from an attribute to an input.
      const attrShape = node.opset < 5 ? node.ints('shape') : undefined;
      return (inputs) => {
        const shape = attrShape ?? readInts(node, node.input(inputs, 1, 'shape'), 'shape');
        return [reshape(node.input(inputs, 0, 'data'), shape, allowzero)];
      };
    },
  },

  Flatten: {
    compile(node) {
      const axis = node.int('axis', 1);
      return (inputs) => [flatten(node.input(inputs, 0, 'input'), axis)];
    },
  },

  Transpose: {
    compile(node) {
      const perm = node.has('perm') ? node.ints('perm') : undefined;
      return (inputs) => [transpose(node.input(inputs, 0, 'data'), perm)];
    },
  },

  Concat: {
    compile(node) {
      const axis = node.opset < 4 ? node.int('axis', 1) : node.int('axis');
      return (inputs) => [concat(inputs.map((t, i) => t ?? node.input(inputs, i, 'input')), axis)];
    },
  },

  Squeeze: {
    compile(node) {
      const attr = node.opset < 13 && node.has('axes') ? node.ints('axes') : undefined;
      return (inputs) => {
        const axes = axesOf(node, inputs, attr);
        // An empty axes list means "not given" (squeeze every size-1 dim), as in onnxruntime.
        return [squeeze(node.input(inputs, 0, 'data'), axes?.length ? axes : undefined)];
      };
    },
  },

  Unsqueeze: {
    compile(node) {
      const attr = node.opset < 13 ? node.ints('axes') : undefined;
      return (inputs) => {
        const axes = axesOf(node, inputs, attr);
        if (!axes) throw node.error('input 1 (axes) is missing');
        return [unsqueeze(node.input(inputs, 0, 'data'), axes)];
      };
    },
  },

  Gather: {
    compile(node) {
      const axis = node.int('axis', 0);
      return (inputs) => [gather(node.input(inputs, 0, 'data'), node.input(inputs, 1, 'indices'), axis)];
    },
  },

  Pad: {
    // Opset 1 named the attribute 'paddings'; nothing still in use is that old.
    sinceVersion: 2,
    compile(node) {
      const mode = node.string('mode', 'constant');
      if (mode !== 'constant' && mode !== 'edge' && mode !== 'reflect') throw node.error(`mode '${mode}' is not supported`);
      // Before opset 11, pads and the fill value are attributes; from 11 on they are inputs.
      const attrPads = node.opset < 11 ? node.ints('pads') : undefined;
      const attrValue = node.opset < 11 ? node.float('value', 0) : 0;
      return (inputs) => {
        const x = node.input(inputs, 0, 'data');
        let pads = attrPads ?? readInts(node, node.input(inputs, 1, 'pads'), 'pads');
        const fill = inputs[2];
        const value = fill && fill.size > 0 ? fill.dataSync()[0]! : attrValue;
        // Opset 18: pads may cover only some axes; spread them over the full rank.
        const axesInput = node.opset >= 18 ? inputs[3] : undefined;
        if (axesInput) {
          const axes = readInts(node, axesInput, 'axes');
          if (pads.length !== 2 * axes.length) throw node.error(`${pads.length} pads for ${axes.length} axes; expected ${2 * axes.length}`);
          const full = new Array<number>(2 * x.rank).fill(0);
          axes.forEach((a, k) => {
            const ax = normAxis(a, x.rank, 'Pad');
            full[ax] = pads[k]!;
            full[ax + x.rank] = pads[k + axes.length]!;
          });
          pads = full;
        }
        return [pad(x, pads, { mode: mode as PadMode, value })];
      };
    },
  },

  Shape: {
    compile(node) {
      const start = node.int('start', 0);
      const end = node.has('end') ? node.int('end') : undefined;
      return (inputs) => [shapeOf(node.input(inputs, 0, 'data'), start, end)];
    },
  },

  Identity: {
    compile(node) {
      return (inputs) => [identity(node.input(inputs, 0, 'input'))];
    },
  },

  Dropout: {
    compile(node) {
      const wantMask = node.outputs.length > 1 && node.outputs[1] !== '';
      // The mask became bool in opset 10; before that it had the data's type.
      const boolMask = node.opset >= 10;
      // Before opset 12 the ratio is an attribute and there is no training mode.
      const attrRatio = node.opset < 12 ? node.float('ratio', 0.5) : 0.5;
      // One generator per compiled node: a run is reproducible from the model's seed, but
      // numpy's (onnx reference) random mask cannot be, so training-mode outputs differ from it.
      const rng = new Rng(node.int('seed', 0));
      return (inputs) => {
        const x = node.input(inputs, 0, 'data');
        const maskDtype = boolMask ? 'bool' : x.dtype;
        const ratio = node.opset >= 12 && inputs[1] ? node.scalar(inputs[1], 'ratio') : attrRatio;
        const training = node.opset >= 12 && inputs[2] ? node.scalar(inputs[2], 'training_mode') !== 0 : false;
        if (!training || ratio === 0) return wantMask ? [identity(x), Tensor.ones(x.shape, maskDtype)] : [identity(x)];
        if (!(ratio > 0 && ratio < 1)) throw node.error(`ratio ${ratio} must be in [0, 1)`);
        const scale = 1 / (1 - ratio);
        const src = x.dataSync();
        const out = DTYPES[x.dtype].make(x.size);
        const mask = DTYPES[maskDtype].make(x.size);
        for (let i = 0; i < src.length; i++) {
          if (rng.next() >= ratio) {
            out[i] = src[i]! * scale;
            mask[i] = 1;
          }
        }
        const y = new Tensor(out, x.shape, x.dtype);
        return wantMask ? [y, new Tensor(mask, x.shape, maskDtype)] : [y];
      };
    },
  },

  Constant: {
    compile(node) {
      const value = constantValue(node);
      return () => [value];
    },
  },
};
