import type { OnnxOp, OnnxOpTable } from '../node.js';
import { convOps } from './conv.js';
import { elementwiseOps } from './elementwise.js';
import { gemmOps } from './gemm.js';
import { layerOps } from './layers.js';
import { movementOps } from './movement.js';
import { normalizationOps } from './normalization.js';
import { poolOps } from './pool.js';
import { reduceOps } from './reduce.js';
import { scatterOps } from './scatter.js';
import { selectOps } from './select.js';
import { softmaxOps } from './softmax.js';
import { quantOps } from './quant.js';
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
  ...selectOps,
  ...scatterOps,
  ...movementOps,
  ...structureOps,
  ...quantOps,
  ...layerOps,
};

/** The adapter for an op type; own properties only, so 'constructor' or '__proto__' find nothing. */
export function lookupOp(opType: string): OnnxOp | undefined {
  return Object.hasOwn(ONNX_OPS, opType) ? ONNX_OPS[opType] : undefined;
}
