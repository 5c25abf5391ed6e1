import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the gemm op cards. */
export const gemmOps: OnnxOpTable = {};
