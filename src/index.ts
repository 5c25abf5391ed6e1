/**
 * lightconv — a CNN engine in TypeScript. Tensors and backends, the op kernels, ONNX models,
 * image loading and ndarray interop. Nothing here has side effects at import.
 *
 * @module lightconv
 */
export { Tensor, tidy, type DeviceStorage, type TensorLike } from './core/tensor.js';
export type { DType, TypedArray } from './core/dtype.js';
export type { Shape } from './core/shape.js';
export { Rng } from './core/rng.js';
export { getLimits, setLimits, type Limits } from './core/limits.js';
export { LightconvError, OnnxError, ResourceLimitError, ShapeError, UnsupportedOpError, ValueError } from './core/errors.js';
export { apply, cpuBackend, getBackend, referenceBackend, useBackend, withBackend, type Backend, type OpCard } from './core/op.js';
export { getThreads, setThreads } from './core/threads.js';
export { markConstant, relaxedSimdEnabled, relaxedSimdSupported, useRelaxedSimd, useWasmKernels, wasmKernelsEnabled, wasmSimdSupported, withWasmKernels } from './kernels/wasm/runtime.js';
export * from './kernels/index.js';
export * from './onnx.js';
export * from './layers/index.js';
export * from './models/index.js';
export { models } from './models/api.js';
export { AssembleError, assemble, assembleGraph, loadOnnxWeights, type AssembleReport } from './io/onnx/assemble.js';
export { compileForInference, exportOnnx, exportOnnxBytes, toOnnxModel, type ExportOptions } from './io/onnx/export.js';
export { fromNdarray, toNdarray } from './io/ndarray.js';
export * from './train/index.js';
export * from './eval/index.js';
export * from './report/index.js';
export * from './workflow/index.js';
export * from './explain/index.js';
export {
  listCsvImages,
  listImageFiles,
  listImageFolder,
  loadImageFolder,
  subset,
  subsetList,
  trainTestSplit,
  type CsvImagesOptions,
  type ImageDataset,
  type ImageFolderOptions,
  type ImageItem,
  type ImageList,
} from './data/datasets.js';
export { decodeAnyImage, readImage, type DecodeOptions } from './data/decode.js';
export { ImageLoader, loadTensors, type Batch, type ImageLoaderOptions, type LoaderStats } from './data/loader.js';
export {
  applyTransform,
  defaultAugment,
  uprightAugment,
  preprocessFromMetadata,
  preprocessImage,
  preprocessToMetadata,
  type Preprocess,
  type TransformSpec,
} from './data/transforms.js';
/** The transform builders (resize, centerCrop, randomResizedCrop, …), under one name beside the image functions they share names with. */
export * as transforms from './data/transforms.js';
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
} from './data/image.js';
