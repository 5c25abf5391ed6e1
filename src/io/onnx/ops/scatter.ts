import { mod } from '../../../kernels/mod.js';
import { type ScatterReduction, scatterND } from '../../../kernels/scatter.js';
import type { OnnxOp, OnnxOpTable } from '../node.js';

/**
 * ONNX adapters for Mod (src/kernels/mod.ts) and ScatterND (src/kernels/scatter.ts). Index and
 * value errors raised while a node runs name the node (the runner adds it, src/io/onnx/model.ts).
 */

/** Mod 10, 13 (13 only added bfloat16): fmod 0 is Python's %, fmod 1 C's fmod. */
const modOp: OnnxOp = {
  sinceVersion: 10,
  compile(node) {
    const fmod = node.int('fmod', 0);
    if (fmod !== 0 && fmod !== 1) throw node.error(`attribute 'fmod' must be 0 or 1, got ${fmod}`);
    return (inputs) => [mod(node.input(inputs, 0, 'A'), node.input(inputs, 1, 'B'), fmod === 1)];
  },
};

/** ScatterND 11, 13 (bfloat16), 16 (reduction none/add/mul), 18 (max/min). */
const scatterNDOp: OnnxOp = {
  sinceVersion: 11,
  compile(node) {
    const allowed: ScatterReduction[] = node.opset >= 18 ? ['none', 'add', 'mul', 'max', 'min'] : node.opset >= 16 ? ['none', 'add', 'mul'] : ['none'];
    const reduction = node.string('reduction', 'none') as ScatterReduction;
    if (!allowed.includes(reduction)) {
      throw node.error(`reduction '${reduction}' is not defined at opset ${node.opset} (allowed: ${allowed.join(', ')})`);
    }
    return (inputs) => [scatterND(node.input(inputs, 0, 'data'), node.input(inputs, 1, 'indices'), node.input(inputs, 2, 'updates'), reduction)];
  },
};

export const scatterOps: OnnxOpTable = {
  Mod: modOp,
  ScatterND: scatterNDOp,
};
