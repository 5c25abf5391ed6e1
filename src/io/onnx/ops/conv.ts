import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the conv op cards. */
export const convOps: OnnxOpTable = {};
