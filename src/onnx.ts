/**
 * lightconv/onnx: reading, running and checking ONNX models.
 *
 * @module lightconv/onnx
 */
export { OnnxGraph, type UnsupportedOp, type ValueInfo } from './io/onnx/graph.js';
export { loadOnnx, loadOnnxSync, readOnnx, OnnxModel, type LoadOptions, type ModelSource, type RunOptions } from './io/onnx/model.js';
export { OnnxNode, type OnnxOp, type OnnxOpTable } from './io/onnx/node.js';
export { ONNX_OPS } from './io/onnx/ops/index.js';
export { decodeTensor, decodeTensorProto, encodeTensor } from './io/onnx/tensor_proto.js';
export { Tensor } from './core/tensor.js';
export { getThreads, setThreads } from './core/threads.js';
export { relaxedSimdEnabled, useRelaxedSimd, useWasmKernels, wasmKernelsEnabled } from './kernels/wasm/runtime.js';
