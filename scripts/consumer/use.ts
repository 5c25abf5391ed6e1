// Compiled by scripts/pack-check.sh against the installed tarball, with skipLibCheck: false, under
// each module resolution a consumer may use: the published declarations must type-check as shipped.
import { Tensor, conv, loadOnnxSync, mobileNetV3, fromNdarray } from 'lightconv';
import { OnnxModel, loadOnnx } from 'lightconv/onnx';
import type { GpuOptions } from 'lightconv/gpu';

const x: Tensor = Tensor.zeros([1, 3, 8, 8]);
const y: Tensor = conv(x, Tensor.zeros([4, 3, 3, 3]));
const opts: GpuOptions = { mode: 'cpu' };
const dispose = (m: OnnxModel): void => m.dispose();
export { y, opts, dispose, loadOnnx, loadOnnxSync, mobileNetV3, fromNdarray };
