import type { OnnxOpTable } from '../node.js';

/** ONNX adapters for the movement op cards. */
export const movementOps: OnnxOpTable = {};
