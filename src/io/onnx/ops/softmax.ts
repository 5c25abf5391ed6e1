import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the softmax op cards. */
export const softmaxOps: OnnxOpTable = {};
