import type { Rng } from '../core/rng.js';
import type { Tensor } from '../core/tensor.js';
import type { OnnxNode } from '../io/onnx/node.js';
import { dropout } from '../kernels/dropout.js';

/** An ONNX Dropout node in training mode, through the differentiable dropout card (ratio from the input or attribute). */
export function dropoutCardFn(node: OnnxNode, args: readonly (Tensor | undefined)[], rng: Rng): Tensor[] {
  const x = node.input(args, 0, 'data');
  const ratio = node.opset >= 12 ? (args[1] ? node.scalar(args[1], 'ratio') : 0.5) : node.float('ratio', 0.5);
  return [ratio === 0 ? x : dropout(x, ratio, rng)];
}
