import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the elementwise op cards. */
export const elementwiseOps: OnnxOpTable = {};
