import { apply } from '../../../core/op.js';
import { gemmCard, matmulCard } from '../../../kernels/gemm.js';
import type { OnnxNode, OnnxOpTable } from '../node.js';
import { fusedActivation } from './conv.js';

function flag(node: OnnxNode, name: string): boolean {
  const v = node.int(name, 0);
  if (v !== 0 && v !== 1) throw node.error(`${name} must be 0 or 1, got ${v}`);
  return v === 1;
}

/** ONNX adapters for the gemm op cards. */
export const gemmOps: OnnxOpTable = {
  Gemm: {
    // Gemm 1–6 broadcast C only under a `broadcast` attribute; from 7 on it always broadcasts.
    sinceVersion: 7,
    compile(node) {
      const attrs = {
        alpha: node.float('alpha', 1),
        beta: node.float('beta', 1),
        transA: flag(node, 'transA'),
        transB: flag(node, 'transB'),
        // The same internal fusion attributes as Conv (see fusedActivation).
        activation: fusedActivation(node),
      };
      return (inputs) => {
        const [a, b, c] = inputs;
        if (!a || !b) throw node.error('needs the inputs A and B');
        return [apply(gemmCard, c ? [a, b, c] : [a, b], attrs)];
      };
    },
  },
  MatMul: {
    sinceVersion: 1,
    compile(node) {
      return (inputs) => {
        const [a, b] = inputs;
        if (!a || !b) throw node.error('needs the inputs A and B');
        return [apply(matmulCard, [a, b], undefined)];
      };
    },
  },
};
