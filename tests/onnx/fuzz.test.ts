import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LightconvError } from '../../src/core/errors.js';
import { type Limits, setLimits } from '../../src/core/limits.js';
import { Tensor } from '../../src/core/tensor.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { modelBytes, node } from './build.js';

/**
 * Seeded random mutations and truncations of a valid model. The only acceptable outcomes are
 * a model that loads and runs, or a LightconvError — never a RangeError, TypeError, hang or OOM.
 */
const valid = modelBytes({
  nodes: [
    node('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] }),
    node('Relu', ['c'], ['r']),
    node('MaxPool', ['r'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }),
    node('Shape', ['p'], ['s']),
    node('Reshape', ['p', 'flat'], ['f']),
    node('Gemm', ['f', 'fcw', 'fcb'], ['g'], { transB: 1 }),
    node('Unsqueeze', ['g', 'axes'], ['u']),
    node('Squeeze', ['u', 'axes'], ['v']),
    node('Softmax', ['v'], ['y'], { axis: -1 }),
  ],
  inputs: [{ name: 'x', shape: ['batch', 2, 4, 4] }],
  outputs: [{ name: 'y', shape: ['batch', 3] }, { name: 's' }],
  initializers: {
    w: Tensor.randn([4, 2, 3, 3], { seed: 1 }),
    b: Tensor.randn([4], { seed: 2 }),
    flat: Tensor.fromArray([0, -1], [2], 'int64'),
    fcw: Tensor.randn([3, 16], { seed: 3 }),
    fcb: Tensor.randn([3], { seed: 4 }),
    axes: Tensor.fromArray([1], [1], 'int64'),
  },
});

function attempt(bytes: Uint8Array): 'ok' | 'typed-error' {
  try {
    const m = loadOnnxSync(bytes);
    const feeds: Record<string, Tensor> = {};
    for (const i of m.inputs) {
      const shape = (i.shape ?? [1, 2, 4, 4]).map((d) => (typeof d === 'number' ? d : 1));
      feeds[i.name] = i.dtype === 'float32' ? Tensor.randn(shape, { seed: 5 }) : Tensor.zeros(shape, i.dtype ?? 'float32');
    }
    const out = m.runSync(feeds);
    for (const t of Object.values(out)) expect(t).toBeInstanceOf(Tensor);
    return 'ok';
  } catch (e) {
    if (e instanceof LightconvError) return 'typed-error';
    throw e;
  }
}

describe('fuzzing the ONNX reader and runner', () => {
  let restore: Limits;
  // Small budgets so that a mutated dim fails fast instead of allocating gigabytes.
  beforeAll(() => {
    restore = setLimits({ maxTensorBytes: 1 << 24, maxNodes: 1000 });
  });
  afterAll(() => {
    setLimits(restore);
  });

  it('the unmutated model runs', () => {
    expect(attempt(valid)).toBe('ok');
  });

  it('byte mutations give a valid model or a typed error', () => {
    const outcomes = { ok: 0, 'typed-error': 0 };
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const bytes = valid.slice();
        for (const [at, v] of edits) bytes[at] = v;
        outcomes[attempt(bytes)]++;
      }),
      { seed: 20261122, numRuns: 3000 },
    );
    // Both outcomes occur: the mutations reach past the decoder into validation and kernels.
    expect(outcomes.ok).toBeGreaterThan(0);
    expect(outcomes['typed-error']).toBeGreaterThan(0);
  });

  it('truncations and splices give a valid model or a typed error', () => {
    fc.assert(
      fc.property(fc.nat(valid.length), fc.nat(valid.length), fc.uint8Array({ maxLength: 16 }), (cut, at, insert) => {
        attempt(valid.slice(0, cut));
        const spliced = new Uint8Array([...valid.slice(0, at), ...insert, ...valid.slice(at)]);
        attempt(spliced);
      }),
      { seed: 7, numRuns: 1500 },
    );
  });
});
