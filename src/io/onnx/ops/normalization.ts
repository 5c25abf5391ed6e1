import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the normalization op cards. */
export const normalizationOps: OnnxOpTable = {};
