import type { OnnxOpTable } from '../node.js';
import { convOps } from './conv.js';
import { elementwiseOps } from './elementwise.js';
import { gemmOps } from './gemm.js';
import { movementOps } from './movement.js';
import { normalizationOps } from './normalization.js';
import { poolOps } from './pool.js';
import { reduceOps } from './reduce.js';
import { softmaxOps } from './softmax.js';

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
};
