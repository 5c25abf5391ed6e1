import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/core/autograd.js';
import { ShapeError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { toOnnxModel } from '../../src/io/onnx/export.js';
import { OnnxGraph } from '../../src/io/onnx/graph.js';
import { AssembleError, assembleGraph, loadOnnxWeights } from '../../src/io/onnx/assemble.js';
import { readOnnx } from '../../src/io/onnx/model.js';
import { decodeTensor } from '../../src/io/onnx/tensor_proto.js';
import { models } from '../../src/models/api.js';
import { mobileNetV3 } from '../../src/models/mobilenetv3.js';
import { expectClose } from '../helpers.js';

const dir = (name: string) => join(__dirname, '..', 'fixtures', 'models', name);
const pb = (name: string, set: number, kind: 'input' | 'output') => decodeTensor(new Uint8Array(readFileSync(join(dir(name), `test_data_set_${set}`, `${kind}_0.pb`))));

async function assembled(name: string) {
  return assembleGraph(await readOnnx(join(dir(name), 'model.onnx')), name);
}

function checkSets(name: string, run: (x: Tensor) => Tensor): void {
  for (const set of [0, 1]) {
    const y = noGrad(() => run(pb(name, set, 'input')));
    // The fixtures' tolerance: |y − ref| ≤ 1e-4 + 1e-3·|ref|.
    expectClose(y, pb(name, set, 'output'), { atol: 1e-4, rtol: 1e-3, what: `${name} set ${set}` });
  }
}

describe('assemble: torchvision ONNX → native module', () => {
  it('MobileNetV3 with BN folded into the convs (default export)', async () => {
    const { net, report } = await assembled('mnv3_mini');
    expect(report.family).toBe('mobilenet_v3');
    expect(report.bnNodes).toBe(0);
    expect(net.training).toBe(false);
    checkSets('mnv3_mini', (x) => net.forward(x));
    // Folded: the native BN is an exact identity plus the folded bias.
    const bn = net.stateDict();
    expect([...bn['features.0.1.weight']!.dataSync()].every((v) => v === 1)).toBe(true);
    expect(bn['features.0.1.running_var']!.dataSync()[0]).toBeCloseTo(1 - 1e-3, 7);
  });

  it('MobileNetV3 with BatchNormalization kept: names are PyTorch names, values copied', async () => {
    const g = await readOnnx(join(dir('mnv3_mini_bn'), 'model.onnx'));
    const { net, report } = assembleGraph(g, 'mnv3_mini_bn');
    expect(report.bnNodes).toBe(g.nodes.filter((n) => n.opType === 'BatchNormalization').length);
    checkSets('mnv3_mini_bn', (x) => net.forward(x));
    const sd = net.stateDict();
    const named = [...g.initializers].filter(([n]) => /^(features|classifier)\./.test(n));
    expect(named.length).toBeGreaterThan(20);
    for (const [n, t] of named) {
      expect(sd[n], n).toBeDefined();
      expect(sd[n]!.shape, n).toEqual(t.shape);
      expect(sd[n]!.toArray(), n).toEqual(t.toArray());
    }
  });

  it('opset 11 (hard-swish as HardSigmoid + Mul) and EfficientNet with BN kept', async () => {
    const a = await assembled('mnv3_mini_opset11');
    checkSets('mnv3_mini_opset11', (x) => a.net.forward(x));
    const b = await assembled('effnet_mini');
    expect(b.report.family).toBe('efficientnet');
    expect(b.report.bnNodes).toBe(22);
    checkSets('effnet_mini', (x) => b.net.forward(x));
    expect(b.net.get('features.2.0.block.2').describe()).toBe('SqueezeExcite(48 → 2 → 48)');
  });

  it('loads weights into a builder: models.efficientnet(…, { weights })', async () => {
    const net = await models.efficientnet('b0', { widthMult: 0.25, depthMult: 0.25, numClasses: 10, weights: join(dir('effnet_mini'), 'model.onnx') });
    checkSets('effnet_mini', (x) => net.forward(x));
    // The weights are trainable parameters.
    expect(net.parameters().length).toBeGreaterThan(0);
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
  });

  it('a mismatch is a typed error naming both sides', async () => {
    const wrong = mobileNetV3('small', { widthMult: 0.25, numClasses: 10 });
    const err = await loadOnnxWeights(wrong, join(dir('mnv3_mini'), 'model.onnx')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect(String(err)).toMatch(/native '[\w.]+'.*(\[[\d, ]+\]|no counterpart)/);
    const net = await models.efficientnet('b0', { widthMult: 0.25, depthMult: 0.25, numClasses: 7 }, );
    await expect(loadOnnxWeights(net, join(dir('effnet_mini'), 'model.onnx'))).rejects.toThrow(/classifier\.1\.weight' is \[7, 320\] but the ONNX model's is \[10, 320\]/);
  });

  it('recognises the standard tables by name, follows Identity-merged initializers, checks hard-sigmoid constants', () => {
    const small = mobileNetV3('small', { numClasses: 3, resolution: 64 }).eval();
    const proto = toOnnxModel(small);
    expect(assembleGraph(OnnxGraph.fromProto(proto)).net.info.arch).toBe('mobilenet_v3_small');
    // PyTorch's exporter merges equal initializers into Identity nodes: point a bias at one.
    const g = proto.graph!;
    const conv = g.node!.find((n) => n.op_type === 'Conv' && n.input!.length === 3)!;
    g.node!.unshift({ op_type: 'Identity', name: 'merged', input: [conv.input![2]!], output: ['merged_bias'] });
    conv.input![2] = 'merged_bias';
    const x = Tensor.randn([1, 3, 64, 64], { seed: 1 });
    expectClose(assembleGraph(OnnxGraph.fromProto(proto)).net.predict(x), small.predict(x), { atol: 1e-6, rtol: 1e-5 });
    // ONNX's default hard-sigmoid (α = 0.2) is not the one the native layers compute.
    g.node!.find((n) => n.op_type === 'HardSigmoid')!.attribute!.find((a) => a.name === 'alpha')!.f = 0.2;
    expect(() => assembleGraph(OnnxGraph.fromProto(proto))).toThrow(/HardSigmoid α = 0\.2/);
  });

  it('graphs of other architectures are refused with an AssembleError', async () => {
    await expect(assembled('eca_mini')).rejects.toThrow(AssembleError);
    await expect(assembled('ops_mix')).rejects.toThrow(AssembleError);
  });
});
