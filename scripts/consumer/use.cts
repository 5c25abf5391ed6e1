// The same through require (CommonJS consumers under node16/nodenext).
import lc = require('lightconv');
import onnx = require('lightconv/onnx');
export const t: lc.Tensor = lc.Tensor.zeros([2]);
export const load = onnx.loadOnnx;
