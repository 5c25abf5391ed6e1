/**
 * lightconv — a CNN engine in TypeScript. Tensors and backends, the op kernels, ONNX models,
 * image loading and ndarray interop. Nothing here has side effects at import.
 */
export { Tensor, tidy, type DeviceStorage, type TensorLike } from './core/tensor.js';
export type { DType, TypedArray } from './core/dtype.js';
export type { Shape } from './core/shape.js';
export { Rng } from './core/rng.js';
export { getLimits, setLimits, type Limits } from './core/limits.js';
export { LightconvError, OnnxError, ResourceLimitError, ShapeError, UnsupportedOpError, ValueError } from './core/errors.js';
export { apply, cpuBackend, getBackend, referenceBackend, useBackend, withBackend, type Backend, type OpCard } from './core/op.js';
export { getThreads, setThreads } from './core/threads.js';
export { markConstant, useWasmKernels, wasmKernelsEnabled, wasmSimdSupported, withWasmKernels } from './kernels/wasm/runtime.js';
export * from './kernels/index.js';
export * from './onnx.js';
export * from './layers/index.js';
export * from './models/index.js';
export { models } from './models/api.js';
export { AssembleError, assemble, assembleGraph, loadOnnxWeights, type AssembleReport } from './io/onnx/assemble.js';
export { compileForInference, exportOnnx, exportOnnxBytes, toOnnxModel, type ExportOptions } from './io/onnx/export.js';
export { fromNdarray, toNdarray } from './io/ndarray.js';
export * from './train/index.js';
export { loadImageFolder, subset, trainTestSplit, type ImageDataset, type ImageFolderOptions } from './io/datasets.js';
export { dropout, dropoutCard, type DropoutAttrs } from './kernels/dropout.js';
export {
  IMAGENET_MEAN,
  IMAGENET_STD,
  centerCrop,
  decodeImage,
  encodePng,
  loadImageTensor,
  resizeShorter,
  toTensor,
  type LoadImageOptions,
  type RgbImage,
} from './io/image.js';
