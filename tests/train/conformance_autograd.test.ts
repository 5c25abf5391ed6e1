import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAutogradCase, runAutogradCase } from '../../src/cli/conformance_autograd.js';
import { readOnnx } from '../../src/io/onnx/model.js';
import { decodeTensorProto } from '../../src/io/onnx/tensor_proto.js';
import { OnnxTrainable } from '../../src/train/onnx_trainable.js';
import { expectClose } from '../helpers.js';

const FIXTURE = 'tests/fixtures/autograd';

describe('autograd conformance (training reference from PyTorch, scripts/make_autograd_fixture.py)', () => {
  it('matches forward, every gradient, BN running stats, 3 Nesterov-SGD and 3 AdamW steps', async () => {
    expect(await isAutogradCase(FIXTURE)).toBe(true);
    const results = await runAutogradCase(FIXTURE, 'tests/fixtures');
    expect(results.map((r) => r.name)).toEqual(['autograd/forward', 'autograd/gradients', 'autograd/bn running stats after 1 forward', 'autograd/sgd', 'autograd/adamw']);
    for (const r of results) expect(r.status, `${r.name}: ${r.detail}`).toBe('pass');
    const grads = results[1]!;
    expect(grads.sets).toBe(19); // 18 parameters + the input
    expect(results[3]!.sets).toBeGreaterThan(30); // losses, params, buffers, momentum buffers
  });

  it('fails (and says where) when the manifest describes another loss', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lc-ag-'));
    try {
      await cp(FIXTURE, dir, { recursive: true });
      const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
      m.training_semantics.loss = m.training_semantics.loss.replace(/label_smoothing=[0-9.]+/, 'label_smoothing=0.3');
      await writeFile(join(dir, 'manifest.json'), JSON.stringify(m));
      const results = await runAutogradCase(dir, dir);
      const fwd = results.find((r) => r.name.endsWith('forward'))!;
      expect(fwd.status).toBe('fail');
      expect(fwd.detail).toMatch(/loss/);
      expect(results.find((r) => r.name.endsWith('bn running stats after 1 forward'))!.status).toBe('pass'); // BN does not depend on the loss
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('OnnxTrainable', () => {
  it('finds parameters and BN buffers, and in eval mode reproduces the eval-mode export', async () => {
    const net = new OnnxTrainable(await readOnnx(`${FIXTURE}/model.onnx`));
    expect(net.namedParameters().map(([n]) => n)).toContain('dw.weight');
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(net.namedBuffers().map(([n]) => n)).toEqual(expect.arrayContaining(['bn1.running_mean', 'bn1.running_var', 'bn1.num_batches_tracked']));
    const pb = async (f: string) => decodeTensorProto(new Uint8Array(await readFile(`${FIXTURE}/test_data_set_0/${f}`)), f).tensor;
    net.eval();
    expectClose(net.forward(await pb('input_0.pb')), await pb('output_0.pb'), { atol: 1e-5, rtol: 1e-4 });
    expect(net.namedBuffers().find(([n]) => n === 'bn1.num_batches_tracked')![1].dataSync()[0]).toBe(0); // eval mode leaves the stats alone
  });
});
