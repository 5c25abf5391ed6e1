/** Training: autograd helpers, losses, optimizers, schedules, the fit loop, metrics, checkpoints. */
export { AutogradError, isGradEnabled, noGrad } from '../core/autograd.js';
export { GradcheckError, gradcheck, type GradcheckOptions } from './gradcheck.js';
export { binaryCrossEntropyWithLogits, crossEntropy, mseLoss, type CrossEntropyOptions, type Reduction } from './losses.js';
export { Adam, AdamW, Optimizer, SGD, clipGradNorm, type AdamOptions, type OptimizerStateSpec, type ParamGroup, type ParamGroupSpec, type SgdOptions } from './optim.js';
export { cosineSchedule, exponentialSchedule, setLr, stepSchedule, type Schedule } from './schedule.js';
export {
  TrainingAbortedError,
  checkpointCallback,
  earlyStopping,
  evaluate,
  fit,
  predictProbabilities,
  takeRows,
  type BatchSource,
  type ValidationMetric,
  type Callback,
  type EpochLog,
  type FitContext,
  type FitOptions,
  type LabelledData,
  type Trainable,
} from './fit.js';
export { recalibrateBatchNorm } from './precise_bn.js';
export { CheckpointError, decodeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint, type CheckpointIo, type CheckpointModel } from './checkpoint.js';
export { OnnxTrainable } from './onnx_trainable.js';
