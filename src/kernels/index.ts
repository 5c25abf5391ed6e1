/** The public face of the kernels: one function per op, and the op cards for benchmarks and backends. */
export type { Activation } from './activation.js';
export { conv, convCard, type ConvAttrs, type ConvOptions } from './conv.js';
export { convTranspose, convTransposeCard, convTransposePads, type ConvTransposeAttrs, type ConvTransposeOptions } from './conv_transpose.js';
export { gelu, geluCard, type GeluApproximate, type GeluAttrs } from './gelu.js';
export { resize, resizeCard, type CoordinateMode, type NearestMode, type ResizeAttrs, type ResizeMode, type ResizeOptions } from './resize.js';
export { gemm, gemmCard, matmul, matmulCard, type GemmAttrs } from './gemm.js';
export {
  abs,
  add,
  binary,
  binaryCard,
  clip,
  div,
  erf,
  exp,
  hardSigmoid,
  hardSwish,
  leakyRelu,
  mul,
  neg,
  pow,
  relu,
  sigmoid,
  silu,
  sqrt,
  sub,
  tanh,
  unary,
  unaryCard,
  type BinaryOp,
  type UnaryOp,
} from './elementwise.js';
export {
  concat,
  concatCard,
  flatten,
  flattenCard,
  gather,
  gatherCard,
  identity,
  pad,
  padCard,
  reshape,
  reshapeCard,
  shapeOf,
  squeeze,
  squeezeCard,
  transpose,
  transposeCard,
  unsqueeze,
  unsqueezeCard,
  type PadMode,
} from './movement.js';
export {
  batchNorm,
  batchNormCard,
  batchNormTrain,
  batchNormTrainingCard,
  batchStats,
  foldBatchNorm,
  updateRunningStats,
  type BatchNormAttrs,
} from './normalization.js';
export {
  averagePool,
  averagePoolCard,
  globalAveragePool,
  globalAveragePoolCard,
  globalMaxPool,
  maxPool,
  maxPoolCard,
  maxPoolIndicesCard,
  maxPoolWithIndices,
  type PoolAttrs,
} from './pool.js';
export {
  reduceL1,
  reduceL2,
  reduceLogSumExp,
  reduceMax,
  reduceMean,
  reduceMeanCard,
  reduceMin,
  reduceProd,
  reduceSum,
  reduceSumCard,
  reduceSumSquare,
  type ReduceAttrs,
} from './reduce.js';
export { argMax, argMaxCard, argMin, argMinCard, gatherElements, gatherElementsCard, topK, topKCard, type ArgAttrs, type GatherElementsAttrs, type TopKAttrs } from './select.js';
export { einsum, einsumCard, type EinsumAttrs } from './einsum.js';
export { mod, modCard, type ModAttrs } from './mod.js';
export { scatterND, scatterNDCard, type ScatterNDAttrs, type ScatterReduction } from './scatter.js';
export { logSoftmax, softmax, softmaxCard } from './softmax.js';
export { dequantizeLinear, dequantizeLinearCard, quantizeLinear, quantizeLinearCard, type QuantDType } from './quant.js';
export { instanceNorm, instanceNormCard, layerNorm, layerNormCard, layerNormStats, lrn, lrnCard, type LayerNormAttrs, type LrnAttrs } from './layernorm.js';
export { elu, log, math, mathCard, maximum, minimum, minMaxCard, mish, prelu, preluCard, reciprocal, softplusOf, type MathOp } from './math.js';
export {
  cast,
  castCard,
  compare,
  compareCard,
  constantOfShape,
  constantOfShapeCard,
  expand,
  expandCard,
  logicalNot,
  range,
  rangeCard,
  slice,
  sliceCard,
  split,
  tile,
  tileCard,
  where,
  whereCard,
  type CompareOp,
  type SliceAttrs,
} from './structure.js';
