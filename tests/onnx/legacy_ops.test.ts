import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCases } from '../../src/cli/conformance.js';
import { OnnxError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { modelBytes, node } from './build.js';
import { expectNodeCases } from './node_cases.js';

const CASES = join(import.meta.dirname, '../fixtures/onnx-legacy');

/**
 * The opset 1–9 forms of Add/Sub/Mul/Div/Pow, Gemm, BatchNormalization and Dropout
 * (scripts/make_onnx_legacy_fixtures.py, numpy expected outputs). Cases expected to fail, with
 * reasons: none. Tolerance: the runner's default (abs 1e-4 + rel 1e-3), float32 kernels against
 * float64 numpy references.
 */
const EXPECTED_FAILURES: Record<string, string> = {};

describe('legacy ONNX op forms (opsets 1–9)', async () => {
  const cases = await findCases([CASES]);
  it('finds every generated case, each op at its legacy opsets', () => {
    const names = cases.map((c) => basename(c));
    expect(names.length).toBe(26);
    for (const prefix of ['add', 'sub', 'mul', 'div', 'pow', 'gemm', 'batchnorm', 'dropout', 'legacy_cnn']) {
      expect(names.some((n) => n.startsWith(prefix)), prefix).toBe(true);
    }
    for (const opset of ['opset1', 'opset6', 'opset7', 'opset9']) expect(names.some((n) => n.endsWith(opset)), opset).toBe(true);
  });
  it('passes every case except the listed ones', () => expectNodeCases(CASES, cases, EXPECTED_FAILURES, { sets: 1 }));
});

describe('legacy forms the engine refuses, with OnnxErrors naming the node', () => {
  const model = (nodes: ReturnType<typeof node>[], inputs: string[], opset: number, outputs = ['y']) =>
    loadOnnxSync(modelBytes({ nodes, inputs: inputs.map((name) => ({ name })), outputs: outputs.map((name) => ({ name })), opset }));
  const t = (...shape: number[]) => Tensor.randn(shape, { seed: shape.length });

  it('Add-6 without broadcast=1 on different shapes, and a B that does not fit A from axis', async () => {
    const plain = model([node('Add', ['a', 'b'], ['y'], {}, 'add0')], ['a', 'b'], 6);
    await expect(plain.run({ a: t(2, 3), b: t(3) })).rejects.toThrow(OnnxError);
    await expect(plain.run({ a: t(2, 3), b: t(3) })).rejects.toThrow("Add node 'add0': A [2, 3] and B [3] differ; opset 6 broadcasts only with broadcast=1");
    const axis = model([node('Mul', ['a', 'b'], ['y'], { broadcast: 1, axis: 1 }, 'mul0')], ['a', 'b'], 6);
    await expect(axis.run({ a: t(2, 3, 4), b: t(4) })).rejects.toThrow(/Mul node 'mul0': B \[4\] does not match A \[2, 3, 4\] from axis 1/);
    await expect(axis.run({ a: t(2, 3, 4), b: t(3, 4, 5) })).rejects.toThrow(/Mul node 'mul0': B \[3, 4, 5\] does not fit A \[2, 3, 4\]/);
    // The same shapes broadcast normally from opset 7.
    const seven = model([node('Add', ['a', 'b'], ['y'])], ['a', 'b'], 7);
    expect((await seven.run({ a: t(2, 3), b: t(3) })).y!.shape).toEqual([2, 3]);
  });

  it('Gemm-6 without C, or with a C other than [M, N] without broadcast=1', async () => {
    const noC = model([node('Gemm', ['a', 'b'], ['y'], {}, 'g0')], ['a', 'b'], 6);
    await expect(noC.run({ a: t(2, 3), b: t(3, 4) })).rejects.toThrow("Gemm node 'g0': needs the input C (optional only from opset 11; this node is opset 6)");
    const vecC = model([node('Gemm', ['a', 'b', 'c'], ['y'], {}, 'g1')], ['a', 'b', 'c'], 6);
    await expect(vecC.run({ a: t(2, 3), b: t(3, 4), c: t(4) })).rejects.toThrow("Gemm node 'g1': C [4] must be [2, 4] without broadcast=1 (opset 6)");
  });

  it('BatchNormalization spatial=0 and the opset-6 training outputs', () => {
    const bn = (attrs: Record<string, number>, outputs: string[], opset: number) =>
      model([node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], outputs, attrs, 'bn0')], ['x', 's', 'b', 'm', 'v'], opset, outputs);
    expect(() => bn({ spatial: 0, is_test: 1 }, ['y'], 6)).toThrow("BatchNormalization node 'bn0': spatial=0 is not supported");
    expect(() => bn({ is_test: 0 }, ['y', 'mean', 'var'], 6)).toThrow(/BatchNormalization node 'bn0': training mode .* this node is opset 6/);
    expect(() => bn({ is_test: 2 }, ['y'], 1)).toThrow(/is_test must be 0 or 1, got 2/);
  });
});
