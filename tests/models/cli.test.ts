import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { register } from '../../src/cli/models.js';
import { runNativeCase } from '../../src/cli/native.js';
import { findCases } from '../../src/cli/conformance.js';
import { runCommand } from '../helpers.js';
import { OnnxGraph } from '../../src/io/onnx/graph.js';

function cli(...args: string[]): Promise<string> {
  return runCommand(register, args);
}

const fixtures = join(__dirname, '..', 'fixtures', 'models');

describe('CLI: summary, export, conformance --native', () => {
  afterEach(() => vi.restoreAllMocks());

  it('summary --json has params, trainable_params, macs and layers', async () => {
    const j = JSON.parse(await cli('summary', 'mobilenet_v3_small', '--json'));
    expect(j.params).toBe(2_542_856);
    expect(j.trainable_params).toBe(2_542_856);
    expect(j.macs).toBe(56_510_400);
    expect(j.flops).toBe(2 * 56_510_400);
    expect(j.layers.length).toBeGreaterThan(100);
    expect(j.layers[0]).toMatchObject({ name: 'features.0.0', output: [1, 16, 112, 112] });
    const big = JSON.parse(await cli('summary', 'efficientnet_b0', '--input', '2x3x240x240', '--json', '--classes', '3'));
    expect(big.input).toEqual([2, 3, 240, 240]);
    expect(big.output).toEqual([2, 3]);
    const text = await cli('summary', join(fixtures, 'mnv3_mini', 'model.onnx'));
    expect(text).toMatch(/MACs: .*torchvision's "GFLOPS"/);
    expect(text).toMatch(/features\.1\.block\.0\.0/);
  });

  it('export writes a loadable opset-17 model with the requested classes', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'lightconv-cli-')), 'lc.onnx');
    const msg = await cli('export', 'light_cnn', '--out', out, '--classes', '4', '--seed', '3');
    expect(msg).toMatch(/light_cnn, .* parameters, 4 classes/);
    const g = OnnxGraph.decode(new Uint8Array(readFileSync(out)));
    expect(g.outputs[0]!.shape).toEqual(['batch', 4]);
    expect(g.initializers.get('classifier.4.weight')!.shape).toEqual([4, 196]);
    await expect(cli('export', 'resnet9000', '--out', out)).rejects.toThrow(/neither an ONNX file nor an architecture/);
  });

  it('conformance --native passes the torchvision fixtures and skips what it does not recognise', async () => {
    const results = [];
    for (const dir of await findCases([fixtures])) results.push(await runNativeCase(dir, fixtures));
    const by = Object.fromEntries(results.map((r) => [r.name, r]));
    for (const n of ['mnv3_mini', 'mnv3_mini_bn', 'mnv3_mini_opset11', 'effnet_mini']) {
      expect(by[n]!.status, `${n}: ${by[n]!.detail}`).toBe('pass');
      expect(by[n]!.sets).toBe(2);
    }
    expect(by.eca_mini!.status).toBe('skip');
    expect(by.ops_mix!.status).toBe('skip');
  });
});
