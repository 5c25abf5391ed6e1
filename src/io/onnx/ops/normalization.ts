import { batchNorm, batchNormTrain, updateRunningStats } from '../../../kernels/normalization.js';
import type { OnnxOpTable } from '../node.js';
import { fusedActivation } from './conv.js';

/** ONNX adapters for the normalization op cards. */
export const normalizationOps: OnnxOpTable = {
  BatchNormalization: {
    sinceVersion: 1,
    compile(node) {
      const extraOutputs = node.outputs.slice(1).some((o) => o !== '');
      const training = node.int('training_mode', 0);
      if (training !== 0 && training !== 1) throw node.error(`training_mode must be 0 or 1, got ${training}`);
      if (node.opset < 7) {
        // Opsets 1 and 6: is_test (default 0) and opset 1's consumed_inputs (an in-place hint,
        // ignored). A node whose only output is Y runs inference (the running statistics) whatever
        // is_test says, as legacy Dropout does and as the graph optimiser's Conv+BN folding assumes:
        // exporters of that era often left is_test unset on inference graphs. The training outputs
        // are refused.
        const isTest = node.int('is_test', 0);
        if (isTest !== 0 && isTest !== 1) throw node.error(`is_test must be 0 or 1, got ${isTest}`);
        if (extraOutputs) throw node.error(`training mode (the running mean/var outputs) is supported from opset 14, this node is opset ${node.opset}`);
      } else if (node.opset < 14) {
        // Opsets 7–13 had no training_mode: the four extra outputs (mean, var, saved_mean,
        // saved_var) signalled training, with a loosely specified saved_var.
        if (training === 1 || extraOutputs) {
          throw node.error(`training mode (the running mean/var outputs) is supported from opset 14, this node is opset ${node.opset}`);
        }
      } else if (training === 0 && extraOutputs) {
        throw node.error('the running mean/var outputs are only valid with training_mode=1');
      }
      // Opsets 1–8: spatial=0 would mean per-element (not per-channel) statistics.
      if (node.int('spatial', 1) !== 1) throw node.error('spatial=0 is not supported');
      // MobileNetV3 exports epsilon 1e-3, EfficientNet 1e-5: always the node's value.
      const epsilon = node.float('epsilon', 1e-5);

      // The load-time optimiser may fuse a following activation (BN + ReLU in DenseNet's layers).
      const activation = fusedActivation(node);
      if (training === 1) {
        if (activation.kind !== 'none') throw node.error('a fused activation needs inference mode');
        // ONNX momentum is the weight of the old running value (PyTorch's momentum m is ONNX's 1 − m).
        const momentum = node.float('momentum', 0.9);
        if (!Number.isFinite(momentum)) throw node.error(`momentum must be finite, got ${momentum}`);
        return (inputs) => {
          const x = node.input(inputs, 0, 'X');
          const { y, mean, variance } = batchNormTrain(x, node.input(inputs, 1, 'scale'), node.input(inputs, 2, 'B'), { epsilon });
          if (!extraOutputs) return [y];
          // The spec's ReduceVar is the population variance: the biased batch variance is blended.
          const running = updateRunningStats(node.input(inputs, 3, 'input_mean'), node.input(inputs, 4, 'input_var'), mean, variance, { momentum });
          return [y, running.mean, running.variance];
        };
      }

      return (inputs) => [
        batchNorm(
          node.input(inputs, 0, 'X'),
          node.input(inputs, 1, 'scale'),
          node.input(inputs, 2, 'B'),
          node.input(inputs, 3, 'input_mean'),
          node.input(inputs, 4, 'input_var'),
          { epsilon, activation },
        ),
      ];
    },
  },
};
