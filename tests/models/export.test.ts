import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/core/autograd.js';
import { ValueError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { assembleGraph } from '../../src/io/onnx/assemble.js';
import { compileForInference, exportOnnx, exportOnnxBytes } from '../../src/io/onnx/export.js';
import { OnnxGraph } from '../../src/io/onnx/graph.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { Module } from '../../src/layers/module.js';
import { Sequential } from '../../src/layers/layers.js';
import { efficientNet } from '../../src/models/efficientnet.js';
import { lightCnn } from '../../src/models/light_cnn.js';
import { buildMobileNetV3, mobileNetV3, mobileNetV3Configs } from '../../src/models/mobilenetv3.js';
import type { InvertedResidual } from '../../src/layers/blocks.js';
import type { Classifier } from '../../src/models/network.js';
import { ResNet } from '../../src/models/resnet.js';
import { expectClose } from '../helpers.js';

type Ort = typeof import('onnxruntime-node');
let ort: Ort | undefined;
try {
  ort = await import('onnxruntime-node');
} catch (e) {
  console.warn(`export.test: onnxruntime-node could not be loaded (${(e as Error).message}); the onnxruntime round-trip tests are skipped`);
}

/** Non-trivial BN statistics and affine parameters, so that exporting them wrongly would show. */
function randomiseBn(net: Module, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, t] of Object.entries(net.stateDict())) {
    const d = t.dataSync();
    for (let i = 0; i < d.length; i++) {
      if (name.endsWith('running_mean')) d[i] = rng.normal(0, 0.1);
      else if (name.endsWith('running_var')) d[i] = rng.uniform(0.5, 1.5);
      else if (name.endsWith('.bias')) d[i] = rng.normal(0, 0.05);
    }
  }
}

const nets: [string, () => Classifier][] = [
  ['improved MobileNetV3-Small (ECA, Leaky-ReLU, dilation)', () => mobileNetV3('small', { widthMult: 0.5, attention: 'eca', activation: 'leaky_relu', dilation: true, numClasses: 4, resolution: 64, seed: 1 })],
  ['MobileNetV3-Large (SE, hard-sigmoid)', () => mobileNetV3('large', { widthMult: 0.25, numClasses: 5, resolution: 48, seed: 2 })],
  ['EfficientNet (SiLU, SE, stochastic depth)', () => efficientNet('b0', { widthMult: 0.25, depthMult: 0.25, numClasses: 3, resolution: 32, seed: 3 })],
  ['light_cnn (MaxPool, Flatten, Linear)', () => lightCnn({ resolution: 32, numClasses: 7, seed: 4 })],
];

describe('exportOnnx: native → ONNX opset 17', () => {
  for (const [what, make] of nets) {
    it.skipIf(!ort)(`${what}: onnxruntime-node reproduces lightconv's outputs`, async () => {
      const net = make();
      randomiseBn(net, 5);
      net.eval();
      const [, c, h, w] = net.info.input as number[];
      const x = Tensor.randn([2, c!, h!, w!], { seed: 6 });
      const ours = noGrad(() => net.forward(x));
      const bytes = exportOnnxBytes(net);
      const session = await ort!.InferenceSession.create(bytes);
      const r = await session.run({ input: new ort!.Tensor('float32', x.f32(), [...x.shape]) });
      const theirs = r.logits!;
      expect(theirs.dims).toEqual(ours.shape);
      expectClose(theirs.data as Float32Array, ours, { atol: 1e-5, rtol: 1e-4, what });
    });
  }

  it('round-trips through the engine: the graph runs and reassembles to the same model', () => {
    const net = mobileNetV3('small', { widthMult: 0.5, attention: 'eca', activation: 'leaky_relu', dilation: true, numClasses: 4, resolution: 64, seed: 1 });
    randomiseBn(net, 7);
    net.eval();
    const x = Tensor.randn([1, 3, 64, 64], { seed: 8 });
    const ours = noGrad(() => net.forward(x));
    const bytes = exportOnnxBytes(net);
    const graph = OnnxGraph.decode(bytes);
    expect(graph.opsets.get('')).toBe(17);
    expect(graph.initializers.get('features.10.block.2.conv.weight')?.shape).toEqual([1, 1, 5]);
    expectClose(loadOnnxSync(bytes).runSync(x).logits!, ours, { atol: 1e-5, rtol: 1e-4 });
    const { net: back, report } = assembleGraph(graph);
    expect(report.bnNodes).toBeGreaterThan(0);
    expect(Object.keys(back.stateDict()).sort()).toEqual(Object.keys(net.stateDict()).sort());
    expectClose(noGrad(() => back.forward(x)), ours, { atol: 1e-6, rtol: 1e-5 });
  });

  it('EfficientNet and light_cnn reassemble from their exports', () => {
    for (const net of [efficientNet('b0', { widthMult: 0.25, depthMult: 0.5, numClasses: 3, resolution: 32, seed: 11 }), lightCnn({ resolution: 32, numClasses: 5, seed: 12 })]) {
      randomiseBn(net, 13);
      net.eval();
      const x = Tensor.randn([2, 3, 32, 32], { seed: 14 });
      const { net: back } = assembleGraph(OnnxGraph.decode(exportOnnxBytes(net)));
      expect(Object.keys(back.stateDict()).sort(), net.info.arch).toEqual(Object.keys(net.stateDict()).sort());
      expectClose(back.predict(x), net.predict(x), { atol: 1e-6, rtol: 1e-5, what: net.info.arch });
    }
  });

  it('ResNet: onnxruntime reproduces it and it reassembles from its export (downsample branches)', async () => {
    const net = new ResNet({ layers: [2, 1, 1, 1], numClasses: 3, resolution: 32, seed: 6 });
    randomiseBn(net, 9);
    net.eval();
    const x = Tensor.randn([2, 3, 32, 32], { seed: 10 });
    const bytes = exportOnnxBytes(net);
    if (ort) {
      const r = await (await ort.InferenceSession.create(bytes)).run({ input: new ort.Tensor('float32', x.f32(), [...x.shape]) });
      expectClose(r.logits!.data as Float32Array, net.predict(x), { atol: 1e-5, rtol: 1e-4, what: 'ResNet via onnxruntime' });
    }
    const { net: back, report } = assembleGraph(OnnxGraph.decode(bytes));
    expect(report.family).toBe('resnet');
    expect(Object.keys(back.stateDict()).sort()).toEqual(Object.keys(net.stateDict()).sort());
    expectClose(noGrad(() => back.forward(x)), noGrad(() => net.forward(x)), { atol: 1e-6, rtol: 1e-5 });
  });

  it("torchvision's dilated stage: a stride-2 row run at stride 1 keeps no residual, and assembly sees that", () => {
    const { blocks, lastChannel } = mobileNetV3Configs('small', { widthMult: 0.25 });
    // torchvision's dilated=True with reduced_tail: the last stage at dilation 2, 48 → 48 channels.
    const dilated = blocks.map((b, i) => (i >= 8 ? { ...b, dilation: 2, outChannels: i === 8 ? b.inChannels : b.outChannels } : b));
    for (let i = 9; i < dilated.length; i++) dilated[i] = { ...dilated[i]!, inChannels: dilated[8]!.outChannels, outChannels: dilated[8]!.outChannels };
    const net = buildMobileNetV3('dilated', dilated, lastChannel, { numClasses: 3, resolution: 64, seed: 2 });
    expect((net.get('features.9') as InvertedResidual).useResidual).toBe(false); // stride 2 in the table
    expect((net.get('features.10') as InvertedResidual).useResidual).toBe(true);
    randomiseBn(net, 3);
    net.eval();
    const x = Tensor.randn([1, 3, 64, 64], { seed: 4 });
    const { net: back } = assembleGraph(OnnxGraph.decode(exportOnnxBytes(net)));
    expect((back.get('features.9') as InvertedResidual).useResidual).toBe(false);
    expectClose(noGrad(() => back.forward(x)), noGrad(() => net.forward(x)), { atol: 1e-6, rtol: 1e-5 });
  });

  it('writes atomically and refuses modules it cannot express', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'lightconv-export-'));
    const file = join(folder, 'net.onnx');
    const net = lightCnn({ resolution: 16, numClasses: 2 }).eval();
    await exportOnnx(net, file);
    expect(readdirSync(folder)).toEqual(['net.onnx']);
    expect(OnnxGraph.decode(new Uint8Array(readFileSync(file))).outputs[0]!.shape).toEqual(['batch', 2]);
    class Odd extends Module {
      describe() {
        return 'Odd';
      }
      protected run(x: Tensor) {
        return x;
      }
      protected inferShape(s: readonly number[]) {
        return s;
      }
    }
    expect(() => exportOnnxBytes(new Sequential(new Odd()), { input: [1, 3, 4, 4] })).toThrow(ValueError);
    expect(() => exportOnnxBytes(new Sequential(new Odd()), { input: [1, 3, 4, 4] })).toThrow(/Odd/);
  });
});

describe('compileForInference', () => {
  it('gives the native forward outputs (eval) from the graph runner, and is a snapshot', () => {
    const net = mobileNetV3('small', { numClasses: 5, widthMult: 0.5, seed: 3 }) as Module;
    randomiseBn(net, 4);
    net.eval();
    const x = Tensor.randn([2, 3, 64, 64], { seed: 5 });
    const native = noGrad(() => net.forward(x));
    const fast = compileForInference(net, { input: [1, 3, 64, 64] });
    const out = Object.values(fast.runSync(x))[0]!;
    // Same float32 ops in another order (BN folded at load): a tolerance scaled to the logits.
    expectClose(out, native, { atol: 1e-4, rtol: 1e-4, what: 'compiled vs native' });
    // Changing the native weights afterwards does not reach the compiled copy.
    const w = Object.values(net.stateDict()).find((t) => t.rank === 4)!;
    w.dataSync().fill(0);
    expect(Array.from(Object.values(fast.runSync(x))[0]!.dataSync())).toEqual(Array.from(out.dataSync()));
  });
});
