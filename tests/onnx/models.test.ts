import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { loadImageTensor } from '../../src/data/image.js';
import { loadOnnx } from '../../src/io/onnx/model.js';
import { decodeTensor } from '../../src/io/onnx/tensor_proto.js';
import { findCases, runCase } from '../../src/cli/conformance.js';
import { expectClose } from '../helpers.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/models');
const EXAMPLES = join(import.meta.dirname, '../../examples');

/**
 * Whole models exported from PyTorch (tests/fixtures/models, made by scripts/make_fixtures.py),
 * compared with PyTorch's float32 outputs within each fixture's recommended tolerance
 * (abs 1e-4 / 2e-4, rel 1e-3: ten times the float32-vs-float64 gap the generator measured).
 */
describe('PyTorch-exported fixture models', async () => {
  const cases = await findCases([FIXTURES]);
  it('finds every fixture', () => expect(cases.length).toBeGreaterThanOrEqual(7));
  for (const dir of cases) {
    it(`${dir.split('/').pop()} matches PyTorch`, async () => {
      const r = await runCase(dir, FIXTURES);
      expect(r.detail ?? '').toBe('');
      expect(r.status).toBe('pass');
      expect(r.sets).toBeGreaterThanOrEqual(2);
    });
  }

  it('gives the same logits with and without graph optimisation, and on the reference kernels', async () => {
    const dir = join(FIXTURES, 'mnv3_mini_bn');
    const x = decodeTensor(readFileSync(join(dir, 'test_data_set_1/input_0.pb')));
    const ref = decodeTensor(readFileSync(join(dir, 'test_data_set_1/output_0.pb')));
    const fast = await loadOnnx(join(dir, 'model.onnx'));
    const plain = await loadOnnx(join(dir, 'model.onnx'), { optimize: false });
    expect(fast.plan.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(0);
    expect(plain.plan.filter((n) => n.opType === 'BatchNormalization').length).toBeGreaterThan(0);
    expectClose((await fast.run({ input: x })).logits!, ref, { atol: 1e-4, rtol: 1e-3 });
    expectClose((await plain.run({ input: x })).logits!, ref, { atol: 1e-4, rtol: 1e-3 });
    const slow = withBackend(referenceBackend, () => plain.runSync({ input: x }));
    expectClose(slow.logits!, ref, { atol: 1e-4, rtol: 1e-3 });
  });

  it('fuses activations into convs', async () => {
    const m = await loadOnnx(join(FIXTURES, 'effnet_mini/model.onnx'));
    const ops = m.plan.map((n) => n.opType);
    // SiLU = Sigmoid + Mul fuses into the conv; the SE gates' Sigmoid + Mul remain.
    expect(m.graph.nodes.filter((n) => n.opType === 'Sigmoid').length).toBeGreaterThan(ops.filter((o) => o === 'Sigmoid').length);
    expect(m.plan.some((n) => n.attrs.get('_activation') === 'silu')).toBe(true);
  });
});

describe('the shipped digits demo', () => {
  const ref = JSON.parse(readFileSync(join(EXAMPLES, 'digits-reference.json'), 'utf8'));
  const files = readdirSync(EXAMPLES).filter((f) => /^digit-\d\.png$/.test(f));

  it('classifies every shipped digit as PyTorch does, within 1e-4', async () => {
    const model = await loadOnnx(join(EXAMPLES, 'digits.onnx'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const img of ref.images as { file: string; label: number; pil_path: { logits: number[] } }[]) {
      // The CLI's path: PIL-exact 8-bit resize to 32×32, then (v/255 − 0.5)/0.5.
      const x = await loadImageTensor(join(EXAMPLES, img.file), { resize: 32, crop: 32, channels: 1, mean: [0.5], std: [0.5] });
      expect(x.shape).toEqual([1, 1, 32, 32]);
      const logits = (await model.run({ input: x })).logits!;
      expectClose(logits, Tensor.fromArray(img.pil_path.logits, [1, 10]), { atol: 1e-4, rtol: 1e-3, what: img.file });
      const d = logits.toArray();
      expect(d.indexOf(Math.max(...d))).toBe(img.label);
    }
  });
});
