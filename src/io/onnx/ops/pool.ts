import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the pool op cards. */
export const poolOps: OnnxOpTable = {};
