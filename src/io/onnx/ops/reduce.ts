import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the reduce op cards. */
export const reduceOps: OnnxOpTable = {};
