import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findCases, runCase } from '../../src/cli/conformance.js';
import { onnx } from '../../src/io/onnx/proto/onnx.js';
import { tensorFromProto } from '../../src/io/onnx/tensor_proto.js';

// A few-KB stand-in for torchvision's Swin-T (docs/torchvision.md), from
// `scripts/make_torchvision_models.py --small-fixture`: F.pad sized from the tensor's shape, which
// PyTorch exports with a step −1 Slice ending at −INT64_MAX. Swin-T failed to load on that value.
const ROOT = 'tests/fixtures/torchvision-small';

describe('torchvision small fixtures (PyTorch exports)', () => {
  it('holds −INT64_MAX as an int64 Slice end, the value Swin-T failed on', () => {
    // −(2^63 − 1) little-endian: 0x8000000000000001.
    const needle = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0x80]);
    for (const opset of [13, 17]) expect(readFileSync(join(ROOT, `pad_opset${opset}`, 'model.onnx')).includes(needle)).toBe(true);
  });

  it('reads −INT64_MAX as −(2^53 − 1) from raw_data and int64_data; its neighbour stays an error', () => {
    const raw = (v: bigint) => new Uint8Array(new BigInt64Array([v]).buffer);
    const t = (p: onnx.TensorProto.$Properties) => tensorFromProto({ name: 'ends', dims: [1], data_type: 7, ...p }, 't').toArray();
    expect(t({ raw_data: raw(-(2n ** 63n) + 1n) })).toEqual([-Number.MAX_SAFE_INTEGER]);
    // The same value as a protobuf Long: high word 0x80000000, low word 1.
    expect(t({ int64_data: [{ low: 1, high: -0x80000000, unsigned: false }] as never })).toEqual([-Number.MAX_SAFE_INTEGER]);
    expect(() => t({ raw_data: raw(-(2n ** 63n) + 2n) })).toThrow(/'ends'.*safe integer/);
  });

  it("loads and matches PyTorch's outputs at opsets 13 and 17", async () => {
    // The pad fixtures only (swin_block_opset17 beside them is tests/onnx/scatter_ops.test.ts's).
    const cases = await findCases([join(ROOT, 'pad_opset13'), join(ROOT, 'pad_opset17')]);
    expect(cases).toHaveLength(2);
    for (const c of cases) {
      // The conformance default (abs 1e-4 + rel 1e-3): one float32 conv, errors ~1e-7 here.
      const r = await runCase(c, ROOT);
      expect(r.detail).toBeUndefined();
      expect(r.status).toBe('pass');
      expect(r.sets).toBe(1);
    }
  });
});
