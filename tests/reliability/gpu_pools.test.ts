import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { type GpuBackend, gpu } from '../../src/gpu.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { MODES } from '../gpu/common.js';
import { type NodeSpec, modelBytes, node } from '../onnx/build.js';

/**
 * Class 8 on the gpu.js kernels: the max pools let NaN never win and give −∞ for a window of
 * only NaN or −∞; ReduceMax and ReduceMin propagate NaN and give ∓∞ for a line of only ∓∞ — the
 * CPU paths' answers (docs/special-values.md, checked there in tests/reliability/probes.test.ts).
 * Exact equality: a max or min picks one of its inputs, no arithmetic.
 */

// Rows: a NaN among finite values, only NaN, only −∞, NaN first then finite values and −∞,
// and values below −3.4e38 (the kernels' old start) that float32 still holds.
const rows = [
  [1, NaN, 2, 0],
  [NaN, NaN, NaN, NaN],
  [-Infinity, -Infinity, -Infinity, -Infinity],
  [NaN, 5, -Infinity, 3],
  [-3.402e38, -Infinity, -3.401e38, -Infinity],
];
const x = Tensor.fromArray(rows.flat(), [1, rows.length, 1, 4]);
const x1 = x.reshape([1, rows.length, 4]);
const f32 = (v: number) => Math.fround(v);

const WANT: [string, NodeSpec, number[]][] = [
  ['MaxPool 2-D (NaN never wins)', node('MaxPool', ['x'], ['y'], { kernel_shape: [1, 4] }), [2, -Infinity, -Infinity, 5, f32(-3.401e38)]],
  // One window per row over the left padding and x[0]: NaN alone there gives −∞.
  ['MaxPool 1-D with left padding', node('MaxPool', ['x'], ['y'], { kernel_shape: [2], pads: [1, 0], strides: [4] }), [1, -Infinity, -Infinity, -Infinity, f32(-3.402e38)]],
  ['GlobalMaxPool (NaN never wins)', node('GlobalMaxPool', ['x'], ['y']), [2, -Infinity, -Infinity, 5, f32(-3.401e38)]],
  ['ReduceMax (NaN propagates)', node('ReduceMax', ['x'], ['y'], { axes: [3] }), [NaN, NaN, -Infinity, NaN, f32(-3.401e38)]],
  ['ReduceMin (NaN propagates)', node('ReduceMin', ['x'], ['y'], { axes: [3] }), [NaN, NaN, -Infinity, NaN, -Infinity]],
];

describe.each(MODES)('special values: gpu.js max pools and reductions in %s mode', (mode) => {
  let g: GpuBackend;
  beforeAll(async () => {
    g = await gpu({ mode, log: () => {} });
  });
  afterAll(() => g.destroy());

  for (const [name, n, want] of WANT) {
    it(name, () => {
      const input = n.attrs?.kernel_shape && (n.attrs.kernel_shape as number[]).length === 1 ? x1 : x;
      const bytes = modelBytes({ nodes: [n], inputs: [{ name: 'x', shape: [...input.shape] }], outputs: [{ name: 'y' }], opset: 17 });
      for (const optimize of [true, false]) {
        const got = Array.from(withBackend(g, () => loadOnnxSync(bytes, { optimize }).runSync({ x: input })).y!.dataSync() as ArrayLike<number>, Number);
        expect(got, `${name}, gpu.js ${mode}, optimize ${optimize}`).toEqual(want); // NaN equals NaN, −∞ exactly
      }
    });
  }
});
