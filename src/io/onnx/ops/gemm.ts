import { apply } from '../../../core/op.js';
import { fmtShape } from '../../../core/shape.js';
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
    // Gemm 1–6 broadcast C only under a `broadcast` attribute (without it C must be [M, N]) and
    // require C; from 7 on C always broadcasts, and from 11 on it is optional.
    sinceVersion: 1,
    compile(node) {
      const legacy = node.opset < 7;
      const broadcast = legacy && flag(node, 'broadcast');
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
        if (legacy) {
          if (!c) throw node.error(`needs the input C (optional only from opset 11; this node is opset ${node.opset})`);
          const m = attrs.transA ? a.shape[1] : a.shape[0];
          const n = attrs.transB ? b.shape[0] : b.shape[1];
          if (!broadcast && (c.rank !== 2 || c.shape[0] !== m || c.shape[1] !== n)) {
            throw node.error(`C ${fmtShape(c.shape)} must be [${m}, ${n}] without broadcast=1 (opset ${node.opset})`);
          }
        }
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
