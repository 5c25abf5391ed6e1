import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPU } from 'gpu.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { getBackend, useBackend, withBackend } from '../../src/core/op.js';
import { Tensor, tidy } from '../../src/core/tensor.js';
import { findCases, runCase } from '../../src/cli/conformance.js';
import { type GpuBackend, type GpuMode, gpu } from '../../src/gpu.js';
import { loadOnnx } from '../../src/io/onnx/model.js';
import { decodeTensor } from '../../src/io/onnx/tensor_proto.js';
import { add, relu } from '../../src/kernels/elementwise.js';
import { expectClose } from '../helpers.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/models');

describe.each<GpuMode>(['cpu', 'webasm'])('whole models on the GPU backend (gpu.js %s mode)', (mode) => {
  let g: GpuBackend;
  const messages: string[] = [];
  beforeAll(async () => {
    g = await gpu({ mode, log: (m) => messages.push(m) });
  });
  afterAll(() => g.destroy());

  it('passes every PyTorch fixture within its tolerance', async () => {
    const cases = await findCases([FIXTURES]);
    expect(cases.length).toBeGreaterThanOrEqual(7);
    const prev = getBackend();
    useBackend(g);
    try {
      for (const dir of cases) {
        const r = await runCase(dir, FIXTURES);
        expect(r.detail ?? '', r.name).toBe('');
        expect(r.status, r.name).toBe('pass');
      }
    } finally {
      useBackend(prev);
    }
    const cov = g.coverage();
    expect(cov.Conv!.cpu).toBe(0);
    expect(cov.Gemm!.cpu).toBe(0);
  });

  it('keeps intermediates on the device and leaks nothing over many runs', async () => {
    const dir = join(FIXTURES, 'mnv3_mini');
    const model = await loadOnnx(join(dir, 'model.onnx'));
    const x = decodeTensor(readFileSync(join(dir, 'test_data_set_1/input_0.pb')));
    const ref = decodeTensor(readFileSync(join(dir, 'test_data_set_1/output_0.pb')));
    const base = g.stats().liveBuffers;
    const run = async () => {
      const { logits } = await withBackend(g, () => model.run({ input: x }));
      expect(logits!.device?.backend).toBe(g); // one readback, by the caller
      expectClose(await logits!.data(), ref, { atol: 1e-4, rtol: 1e-3 });
      logits!.dispose();
    };
    await run();
    const after1 = g.stats();
    expect(after1.liveBuffers).toBe(base);
    for (let i = 0; i < 15; i++) await run();
    const after = g.stats();
    expect(after.liveBuffers).toBe(base);
    expect(after.kernels).toBe(after1.kernels); // compiled once per op and shape
    expect(after.cachedUploads).toBe(after1.cachedUploads); // weights uploaded once
  });

  it('frees a run’s intermediates also when it stops with an error', async () => {
    const model = await loadOnnx(join(FIXTURES, 'mnv3_mini/model.onnx'));
    const base = g.stats().liveBuffers;
    let seen = 0;
    const stopAt10 = () => {
      if (++seen === 10) throw new Error('stop');
    };
    expect(() => withBackend(g, () => model.runSync({ input: Tensor.zeros([1, 3, 32, 32]) }, { onNode: stopAt10 }))).toThrow('stop');
    expect(g.stats().liveBuffers).toBe(base);
  });

  it('tidy() frees device tensors made inside it except the result; `using` frees on scope exit', () => {
    const base = g.stats().liveBuffers;
    const a = Tensor.rand([4, 5], { seed: 1 });
    const kept = tidy(() => withBackend(g, () => relu(add(relu(a), a))));
    expect(g.stats().liveBuffers).toBe(base + 1);
    expect(Array.from(kept.dataSync())).toEqual(Array.from(a.dataSync(), (v) => Math.max(0, Math.max(0, v) + v)));
    kept.dispose();
    kept.dispose(); // idempotent
    expect(g.stats().liveBuffers).toBe(base);
    {
      using t = g.upload(a);
      expect(g.stats().liveBuffers).toBe(base + 1);
      expect(t.device).not.toBeNull();
    }
    expect(g.stats().liveBuffers).toBe(base);
  });

  it('reading a tensor disposed before it was read is a ValueError; a read copy stays', () => {
    const t = g.upload(Tensor.ones([3]));
    t.dispose();
    expect(() => t.dataSync()).toThrow(ValueError);
    const u = g.upload(Tensor.ones([3]));
    expect(Array.from(u.dataSync())).toEqual([1, 1, 1]);
    u.dispose();
    expect(Array.from(u.dataSync())).toEqual([1, 1, 1]);
  });

  it('says which gpu.js mode runs, once', () => {
    expect(messages.filter((m) => m.includes(`mode '${mode}' runs on the CPU`))).toHaveLength(1);
    expect(g.info).toEqual({ mode, renderer: null, software: true });
  });
});

describe('gpu() chooses explicitly', () => {
  it('rejects a mode that is not available here instead of falling back silently', async () => {
    if (!GPU.isHeadlessGLSupported) await expect(gpu({ mode: 'headlessgl', log: () => {} })).rejects.toThrow(/headlessgl' is not available/);
    await expect(gpu({ mode: 'webgl2', log: () => {} })).rejects.toThrow(/webgl2' is not available/);
    await expect(gpu({ mode: 'webgpu', log: () => {} })).rejects.toThrow(/webgpu/);
  });
  it('defaults to headlessgl where built, else webasm, and says so', async () => {
    const said: string[] = [];
    const g = await gpu({ log: (m) => said.push(m) });
    const expected = GPU.isHeadlessGLSupported ? 'headlessgl' : 'webasm';
    expect(g.info.mode).toBe(expected);
    expect(g.name).toBe(`gpu:${expected}`);
    expect(said.length).toBeLessThanOrEqual(1);
    g.destroy();
    expect(() => g.upload(Tensor.ones([1]))).toThrow(/destroyed/);
  });
});
