/**
 * lightconv/gpu — the GPU backend over gpu.js (an optional peer dependency: npm install gpu.js).
 *
 *   import { useBackend } from 'lightconv';
 *   import { gpu } from 'lightconv/gpu';
 *   useBackend(await gpu());            // or gpu({ mode: 'webgl2' | 'webgl' | 'headlessgl' | 'webasm' | 'cpu' })
 *
 * Nothing here runs at import time; gpu.js is loaded by gpu().
 *
 * Backend selection and tensors are re-exported so that a page can use this entry with
 * `lightconv/onnx` alone. Every entry also bundles for the browser: bundlers pick the package's
 * browser build (package.json exports, "browser" condition), which shares one Tensor class across
 * the three entries and leaves out Node's parts (file paths, worker threads, pngjs).
 *
 * @module lightconv/gpu
 */
export { getBackend, useBackend, withBackend, cpuBackend, referenceBackend } from './core/op.js';
export { Tensor, tidy } from './core/tensor.js';
export { gpu, type GpuBackend, type GpuInfo, type GpuJsConstructor, type GpuMode, type GpuOptions, type GpuStats, type OpCoverage } from './gpu/backend.js';
export { GPU_KERNELS } from './gpu/kernels/index.js';
export { GPU_GRADS } from './gpu/kernels/grad.js';
export type { GpuKernel, GpuPlan, GpuProgram } from './gpu/kernels/types.js';
