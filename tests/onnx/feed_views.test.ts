import { describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { loadOnnx } from '../../src/io/onnx/model.js';
import { modelBytes, node } from './build.js';

/**
 * A view of a graph input (Identity, Reshape, Flatten of x) going dead must not free the input's
 * kernel memory while later nodes still read x. Found by the structure-aware fuzzer: the run
 * returned zeros where it should return x + silu(relu(x)) — silently wrong.
 */
describe('values that are views of a feed', () => {
  for (const [label, view] of [
    ['Identity', node('Identity', ['x'], ['c'])],
    ['Flatten', node('Flatten', ['x'], ['c'], { axis: 1 })],
  ] as const) {
    it(`${label}(x) read early, x read again at the end: the same answer with and without the arena, and on replay`, async () => {
      const bytes = modelBytes({
        nodes: [
          view,
          node('Relu', ['c'], ['n']),
          node('Sigmoid', ['n'], ['sg']),
          node('Mul', ['n', 'sg'], ['silu']),
          node('Relu', ['silu'], ['k']),
          node('Reshape', ['k', 'shape'], ['k4']),
          node('Add', ['k4', 'x'], ['y']),
        ],
        inputs: [{ name: 'x', shape: [1, 4, 6, 6] }],
        outputs: [{ name: 'y' }],
        initializers: { shape: Tensor.fromArray([1, 4, 6, 6], [4], 'int64') },
      });
      const model = await loadOnnx(bytes);
      const x = Tensor.fromArray(Array.from({ length: 144 }, (_, i) => -(i + 1)), [1, 4, 6, 6]);
      // x < 0 everywhere: relu gives 0, so y = x exactly.
      const want = x.toArray();
      for (let run = 0; run < 3; run++) expect(model.runSync(x).y!.toArray(), `run ${run}`).toEqual(want);
      // An onNode hook runs without the arena: the same values.
      expect(model.runSync(x, { onNode: () => undefined }).y!.toArray()).toEqual(want);
    });
  }
});
