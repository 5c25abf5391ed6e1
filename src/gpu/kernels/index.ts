import type { OpCard } from '../../core/op.js';
import { convCard } from '../../kernels/conv.js';
import { binaryCard, unaryCard } from '../../kernels/elementwise.js';
import { gemmCard, matmulCard } from '../../kernels/gemm.js';
import { concatCard, flattenCard, identityCard, padCard, reshapeCard, shapeCard, squeezeCard, transposeCard, unsqueezeCard } from '../../kernels/movement.js';
import { batchNormCard } from '../../kernels/normalization.js';
import { averagePoolCard, globalAveragePoolCard, globalMaxPoolCard, maxPoolCard } from '../../kernels/pool.js';
import { reduceMaxCard, reduceMeanCard, reduceMinCard, reduceSumCard } from '../../kernels/reduce.js';
import { logSoftmaxCard, softmaxCard } from '../../kernels/softmax.js';
import { gpuConv } from './conv.js';
import { gpuBinary, gpuUnary } from './elementwise.js';
import { gpuGemm, gpuMatMul } from './gemm.js';
import { gpuConcat, gpuPad, gpuTranspose, gpuView } from './movement.js';
import { gpuBatchNorm } from './normalization.js';
import { gpuAveragePool, gpuGlobalAveragePool, gpuGlobalMaxPool, gpuMaxPool } from './pool.js';
import { gpuReduce } from './reduce.js';
import { gpuLogSoftmax, gpuSoftmax } from './softmax.js';
import { type GpuKernel, cpuPlan } from './types.js';

/** One entry: a card and its GPU planner, typed together so the pair cannot mismatch. */
function entry<A>(card: OpCard<A>, kernel: GpuKernel<A>): [OpCard<unknown>, GpuKernel<unknown>] {
  return [card as OpCard<unknown>, kernel as GpuKernel<unknown>];
}

/**
 * The GPU kernel of each op card, keyed by the card. Cards not listed (Gather,
 * MaxPoolIndices, BatchNormalizationTraining, …) run on the CPU with a message.
 */
export const GPU_KERNELS: ReadonlyMap<OpCard<unknown>, GpuKernel<unknown>> = new Map([
  entry(convCard, gpuConv),
  entry(gemmCard, gpuGemm),
  entry(matmulCard, gpuMatMul),
  entry(unaryCard, gpuUnary),
  entry(binaryCard, gpuBinary),
  entry(maxPoolCard, gpuMaxPool),
  entry(averagePoolCard, gpuAveragePool),
  entry(globalAveragePoolCard, gpuGlobalAveragePool),
  entry(globalMaxPoolCard, gpuGlobalMaxPool),
  entry(batchNormCard, gpuBatchNorm),
  entry(softmaxCard, gpuSoftmax),
  entry(logSoftmaxCard, gpuLogSoftmax),
  entry(reduceSumCard, gpuReduce('ReduceSum', 0)),
  entry(reduceMeanCard, gpuReduce('ReduceMean', 1)),
  entry(reduceMaxCard, gpuReduce('ReduceMax', 2)),
  entry(reduceMinCard, gpuReduce('ReduceMin', 3)),
  entry(concatCard, gpuConcat),
  entry(transposeCard, gpuTranspose),
  entry(padCard, gpuPad),
  entry(reshapeCard, gpuView(reshapeCard)),
  entry(flattenCard, gpuView(flattenCard)),
  entry(squeezeCard, gpuView(squeezeCard)),
  entry(unsqueezeCard, gpuView(unsqueezeCard)),
  entry(identityCard, gpuView(identityCard)),
  // Shape reads only the dims: its CPU kernel never reads the device buffer back.
  entry(shapeCard, () => cpuPlan('it reads only the dims (no data leaves the device)')),
]);
