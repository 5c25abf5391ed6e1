import type { OnnxOp, OnnxOpTable } from '../node.js';
import { convOps } from './conv.js';
import { elementwiseOps } from './elementwise.js';
import { gemmOps } from './gemm.js';
import { movementOps } from './movement.js';
import { normalizationOps } from './normalization.js';
import { poolOps } from './pool.js';
import { reduceOps } from './reduce.js';
import { softmaxOps } from './softmax.js';
import { structureOps } from './structure.js';

/** Every ONNX op (default domain) the engine runs, by op_type. */
export const ONNX_OPS: OnnxOpTable = {
  ...convOps,
  ...gemmOps,
  ...elementwiseOps,
  ...poolOps,
  ...normalizationOps,
  ...softmaxOps,
  ...reduceOps,
  ...movementOps,
  ...structureOps,
};

/** The adapter for an op type; own properties only, so 'constructor' or '__proto__' find nothing. */
export function lookupOp(opType: string): OnnxOp | undefined {
  return Object.hasOwn(ONNX_OPS, opType) ? ONNX_OPS[opType] : undefined;
}
