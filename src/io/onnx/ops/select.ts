import { UnsupportedOpError, ValueError } from '../../../core/errors.js';
import { einsum, parseEinsum } from '../../../kernels/einsum.js';
import { argMax, argMin, gatherElements, topK } from '../../../kernels/select.js';
import { type OnnxOp, type OnnxOpTable, readInts } from '../node.js';

/**
 * ONNX adapters for the selection ops (src/kernels/select.ts) and Einsum (src/kernels/einsum.ts).
 * Every opset version reads the same way where later ones only added attributes whose defaults
 * give the earlier behaviour (ArgMax's select_last_index, TopK's largest and sorted) or types.
 */

/** ArgMax / ArgMin 1, 11 (negative axis), 12 (select_last_index), 13 (bfloat16). */
function argOp(fn: typeof argMax): OnnxOp {
  return {
    compile(node) {
      const axis = node.int('axis', 0);
      const keepdims = node.int('keepdims', 1) !== 0;
      const last = node.int('select_last_index', 0) !== 0;
      return (inputs) => [fn(node.input(inputs, 0, 'data'), axis, keepdims, last)];
    },
  };
}

/** TopK 1 (k attribute), 10 (K input), 11 (largest, sorted; negative axis). */
const topKOp: OnnxOp = {
  compile(node) {
    const axis = node.int('axis', -1);
    const largest = node.int('largest', 1) !== 0;
    // sorted = 0 leaves the order to the runtime: the sorted order is one valid answer.
    node.int('sorted', 1);
    const attrK = node.opset < 10 ? node.int('k') : undefined;
    return (inputs) => {
      const x = node.input(inputs, 0, 'X');
      let k = attrK;
      if (k === undefined) {
        const ks = readInts(node, node.input(inputs, 1, 'K'), 'K');
        if (ks.length !== 1) throw node.error(`K must hold one value, got ${ks.length}`);
        k = ks[0]!;
      }
      const { values, indices } = topK(x, k, axis, largest);
      return [values, indices];
    };
  },
};

/** GatherElements 11, 13 (negative indices in both). */
const gatherElementsOp: OnnxOp = {
  sinceVersion: 11,
  compile(node) {
    const axis = node.int('axis', 0);
    return (inputs) => [gatherElements(node.input(inputs, 0, 'data'), node.input(inputs, 1, 'indices'), axis)];
  },
};

/**
 * Einsum 12. The equation is checked at load: a malformed one is an OnnxError, one with more
 * than two operands (beyond what the kernel runs) an UnsupportedOpError naming node and equation.
 */
const einsumOp: OnnxOp = {
  sinceVersion: 12,
  compile(node) {
    const equation = node.string('equation');
    let operands: number;
    try {
      operands = parseEinsum(equation).inputs.length;
    } catch (e) {
      if (e instanceof ValueError) throw node.error(e.message);
      throw e;
    }
    if (operands !== node.inputs.length) throw node.error(`equation '${equation}' has ${operands} operands but the node has ${node.inputs.length} inputs`);
    if (operands > 2) {
      throw new UnsupportedOpError(
        [{ opType: 'Einsum', domain: node.domain, nodes: [node.name], reason: `equation '${equation}' has ${operands} operands; only one or two are supported` }],
        `node '${node.name}'`,
      );
    }
    return (inputs) => {
      const xs = inputs.map((t, i) => node.input(inputs, i, `Inputs[${i}]`));
      return [einsum(equation, ...xs)];
    };
  },
};

export const selectOps: OnnxOpTable = {
  ArgMax: argOp(argMax),
  ArgMin: argOp(argMin),
  TopK: topKOp,
  GatherElements: gatherElementsOp,
  Einsum: einsumOp,
};
