/** The public face of the kernels: one function per op, and the op cards for benchmarks and backends. */
export type { Activation } from './activation.js';
export { conv, convCard, type ConvAttrs, type ConvOptions } from './conv.js';
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
export { batchNorm, batchNormCard, foldBatchNorm, type BatchNormAttrs } from './normalization.js';
export {
  averagePool,
  averagePoolCard,
  globalAveragePool,
  globalAveragePoolCard,
  globalMaxPool,
  maxPool,
  maxPoolCard,
  type PoolAttrs,
} from './pool.js';
export { reduceMax, reduceMean, reduceMeanCard, reduceMin, reduceSum, reduceSumCard, type ReduceAttrs } from './reduce.js';
export { logSoftmax, softmax, softmaxCard } from './softmax.js';
