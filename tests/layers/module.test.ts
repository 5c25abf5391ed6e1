import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { ConvBNAct, ECA, SqueezeExcite, ecaKernelSize, makeDivisible } from '../../src/layers/blocks.js';
import { BatchNorm2d, Conv2d, Dropout, LeakyReLU, Linear, ReLU, Sequential, StochasticDepth } from '../../src/layers/layers.js';
import { mobileNetV3 } from '../../src/models/mobilenetv3.js';
import { captureOutputs } from '../../src/layers/module.js';
import { expectClose } from '../helpers.js';

const tiny = () => mobileNetV3('small', { widthMult: 0.25, numClasses: 5, resolution: 32 });

describe('Module', () => {
  it('names parameters and buffers the torchvision way', () => {
    const net = tiny();
    const names = net.parameterShapes().map((p) => p.name);
    expect(names).toContain('features.0.0.weight');
    expect(names).toContain('features.0.1.weight');
    expect(names).toContain('features.1.block.1.fc1.weight');
    expect(names).toContain('features.1.block.1.fc2.bias');
    expect(names).toContain('classifier.3.bias');
    expect(net.bufferShapes().map((b) => b.name)).toContain('features.0.1.running_var');
    // Parameters are created lazily and marked trainable.
    const [name, w] = net.namedParameters()[0]!;
    expect(name).toBe('features.0.0.weight');
    expect(w.requiresGrad).toBe(true);
    expect(w.shape).toEqual([8, 3, 3, 3]);
  });

  it('freezes and unfreezes by prefix', () => {
    const net = tiny();
    const total = net.parameterCount().total;
    net.freeze();
    expect(net.parameters()).toHaveLength(0);
    net.unfreeze('classifier');
    const trainable = net.parameters();
    expect(trainable).toHaveLength(4);
    expect(trainable.every((t) => t.requiresGrad)).toBe(true);
    expect(net.parameterCount().trainable).toBe(net.get('classifier').parameterCount().total);
    expect(net.namedParameters().find(([n]) => n === 'features.0.0.weight')![1].requiresGrad).toBe(false);
    net.unfreeze('features.1');
    expect(net.parameterCount().trainable).toBe(net.get('classifier').parameterCount().total + net.get('features.1').parameterCount().total);
    expect(net.parameterCount().total).toBe(total);
    // 'features.1' must not match 'features.10'.
    expect(net.namedParameters().find(([n]) => n.startsWith('features.10.'))![1].requiresGrad).toBe(false);
    expect(() => net.freeze('nope')).toThrow(ValueError);
  });

  it('switches train/eval recursively', () => {
    const net = tiny();
    expect(net.get('features.1.block.0.1').training).toBe(true);
    net.eval();
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.train();
    expect(net.get('classifier.2').training).toBe(true);
  });

  it('runs forward hooks on any submodule and removes them', () => {
    const net = tiny().eval();
    const seen: [string, number[]][] = [];
    const off = net.get('features.1.block.1').onForward((m, _x, y) => seen.push([m.describe(), [...y.shape]]));
    const off2 = net.get('classifier.3').onForward((_m, x, y) => seen.push([`head ${x.shape}`, [...y.shape]]));
    net.forward(Tensor.randn([2, 3, 32, 32], { seed: 1 }));
    expect(seen).toEqual([
      ['SqueezeExcite(8 → 8 → 8)', [2, 8, 8, 8]],
      ['head 2,256', [2, 5]],
    ]);
    off();
    off2();
    net.forward(Tensor.randn([1, 3, 32, 32], { seed: 1 }));
    expect(seen).toHaveLength(2);
  });

  it('captures activations of named submodules (or every leaf) for one run', () => {
    const net = tiny().eval();
    const x = Tensor.randn([1, 3, 32, 32], { seed: 5 });
    const { result, outputs } = captureOutputs(net, () => net.forward(x), ['features.0', 'features.3.block.1']);
    expect(result.shape).toEqual([1, 5]);
    expect(outputs.get('features.0')!.shape).toEqual([1, 8, 16, 16]);
    expect(outputs.get('features.3.block.1')!.shape[1]).toBe(24);
    const all = captureOutputs(net, () => net.forward(x)).outputs;
    expect(all.get('classifier.3')!.toArray()).toEqual(result.toArray());
    expect(all.size).toBe(net.namedModules().filter(([, m]) => m.children().length === 0).length);
    // The hooks are gone afterwards.
    expect(captureOutputs(net, () => 0, []).outputs.size).toBe(0);
  });

  it('predict (BN folded into the conv, fused activation) matches the step-by-step forward, and keeps hooks firing', () => {
    const net = tiny();
    for (const [n, t] of net.namedBuffers()) t.dataSync().fill(n.endsWith('running_var') ? 1.3 : 0.2);
    const x = Tensor.randn([2, 3, 32, 32], { seed: 6 });
    const fast = net.predict(x);
    expect(net.training).toBe(true); // restored
    net.eval();
    expectClose(fast, net.forward(x), { atol: 1e-5, rtol: 1e-4 });
    let seen = 0;
    const off = net.get('features.0.0').onForward(() => seen++);
    expectClose(net.predict(x), fast, { atol: 1e-5, rtol: 1e-4 });
    expect(seen).toBe(1);
    off();
  });

  it('round-trips a state dict and checks every shape', () => {
    const a = tiny();
    const b = mobileNetV3('small', { widthMult: 0.25, numClasses: 5, seed: 9 });
    const x = Tensor.randn([1, 3, 32, 32], { seed: 2 });
    a.eval();
    b.eval();
    expect(a.forward(x).toArray()).not.toEqual(b.forward(x).toArray());
    const held = b.namedParameters()[0]![1];
    const version = held.version;
    b.loadStateDict(a.stateDict());
    expect(b.namedParameters()[0]![1]).toBe(held); // copied in place
    expect(held.version).toBe(version + 1); // and caches keyed by the tensor can tell
    expectClose(b.forward(x), a.forward(x), { atol: 0, rtol: 0 });

    const sd = a.stateDict();
    const bad = { ...sd, 'features.0.0.weight': Tensor.zeros([8, 3, 5, 5]) };
    expect(() => b.loadStateDict(bad)).toThrow(ShapeError);
    expect(() => b.loadStateDict(bad)).toThrow(/features\.0\.0\.weight.*\[8, 3, 3, 3\].*\[8, 3, 5, 5\]/);
    const missing = { ...sd };
    delete missing['classifier.3.bias'];
    expect(() => b.loadStateDict(missing)).toThrow(/missing 'classifier\.3\.bias'/);
    expect(() => b.loadStateDict({ ...sd, extra: Tensor.zeros([1]) })).toThrow(/unexpected 'extra'/);
    expect(() => b.loadStateDict(missing, { strict: false })).not.toThrow();
  });

  it('replaces the head', () => {
    const net = tiny();
    const head = net.replaceHead(3);
    expect(net.numClasses).toBe(3);
    expect(net.get('classifier.3')).toBe(head);
    expect(net.eval().forward(Tensor.randn([2, 3, 32, 32], { seed: 3 })).shape).toEqual([2, 3]);
    expect(net.parameterShapes().find((p) => p.name === 'classifier.3.weight')!.shape).toEqual([3, 256]);
  });
});

describe('layers', () => {
  it('BatchNorm2d uses batch statistics in train mode and updates running stats like PyTorch', () => {
    const bn = new BatchNorm2d(2, { eps: 1e-3, momentum: 0.1 });
    const x = Tensor.randn([3, 2, 2, 2], { seed: 4, mean: 1, std: 2 });
    const y = bn.forward(x);
    const d = x.dataSync();
    for (let c = 0; c < 2; c++) {
      const vals: number[] = [];
      for (let n = 0; n < 3; n++) for (let i = 0; i < 4; i++) vals.push(d[(n * 2 + c) * 4 + i]!);
      const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
      const biased = vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length;
      const unbiased = (biased * vals.length) / (vals.length - 1);
      expect(bn.runningMean.dataSync()[c]).toBeCloseTo(0.1 * mean, 6);
      expect(bn.runningVar.dataSync()[c]).toBeCloseTo(0.9 + 0.1 * unbiased, 5);
      const yd = y.dataSync();
      expect(yd[c * 4]).toBeCloseTo((d[c * 4]! - mean) / Math.sqrt(biased + 1e-3), 4);
    }
    expect(() => bn.forward(Tensor.ones([1, 2, 1, 1]))).toThrow(/more than one value per channel/);
    bn.eval();
    const z = bn.forward(x).dataSync();
    expect(z[0]).toBeCloseTo((d[0]! - bn.runningMean.dataSync()[0]!) / Math.sqrt(bn.runningVar.dataSync()[0]! + 1e-3), 4);
  });

  it('Conv2d, Linear and ConvBNAct compute what they say', () => {
    const rng = new Rng(5);
    const lin = new Linear(3, 2, { rng });
    const x = Tensor.fromArray([1, 2, 3], [1, 3]);
    const w = lin.weight.dataSync();
    const b = lin.bias!.dataSync();
    const y = lin.forward(x).dataSync();
    expect(y[1]).toBeCloseTo(w[3]! + 2 * w[4]! + 3 * w[5]! + b[1]!, 5);
    // torchvision padding (k−1)/2·d keeps the size at stride 1, halves it at stride 2.
    const cba = new ConvBNAct(4, 6, 5, { dilation: 2, groups: 2, activation: 'relu', bn: { eps: 1e-5, momentum: 0.1 }, rng });
    expect((cba.at(0) as Conv2d).padding).toBe(4);
    expect(cba.eval().forward(Tensor.randn([1, 4, 9, 9], { seed: 1 })).shape).toEqual([1, 6, 9, 9]);
    expect(cba.infer([1, 4, 9, 9])).toEqual([1, 6, 9, 9]);
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow(ValueError);
  });

  it('Dropout and StochasticDepth: seeded, torchvision semantics, identity in eval', () => {
    const x = Tensor.ones([4, 3, 2, 2]);
    const d = new Dropout(0.5, { seed: 1 });
    const y = d.forward(x).dataSync();
    expect([...y].every((v) => v === 0 || v === 2)).toBe(true);
    expect([...y].some((v) => v === 0) && [...y].some((v) => v === 2)).toBe(true);
    expect(new Dropout(0.5, { seed: 1 }).forward(x).toArray()).toEqual([...y]);
    expect(d.eval().forward(x)).toBe(x);
    const sd = new StochasticDepth(0.5, 'row', { seed: 3 });
    const z = sd.forward(x).dataSync();
    for (let n = 0; n < 4; n++) {
      const row = [...z.subarray(n * 12, (n + 1) * 12)];
      expect(row.every((v) => v === row[0]) && (row[0] === 0 || row[0] === 2)).toBe(true);
    }
    expect(sd.eval().forward(x)).toBe(x);
  });

  it('ECA: adaptive kernel size and the forward definition', () => {
    expect([16, 96, 120, 144, 240, 288, 576].map(ecaKernelSize)).toEqual([3, 3, 3, 5, 5, 5, 5]);
    const eca = new ECA(6, { kernelSize: 3, rng: new Rng(1) });
    const x = Tensor.randn([2, 6, 3, 3], { seed: 7 });
    const y = eca.forward(x).dataSync();
    const w = eca.conv.weight.dataSync();
    const xd = x.dataSync();
    for (let n = 0; n < 2; n++) {
      const m = Array.from({ length: 6 }, (_, c) => Array.from(xd.subarray((n * 6 + c) * 9, (n * 6 + c + 1) * 9)).reduce((a: number, b: number) => a + b, 0) / 9);
      for (let c = 0; c < 6; c++) {
        const s = (c > 0 ? w[0]! * m[c - 1]! : 0) + w[1]! * m[c]! + (c < 5 ? w[2]! * m[c + 1]! : 0);
        const g = 1 / (1 + Math.exp(-s));
        expect(y[(n * 6 + c) * 9 + 4]).toBeCloseTo(xd[(n * 6 + c) * 9 + 4]! * g, 5);
      }
    }
    expect(() => new ECA(8, { kernelSize: 4 })).toThrow(ValueError);
  });

  it('SqueezeExcite and makeDivisible follow torchvision', () => {
    expect([makeDivisible(16 / 4), makeDivisible(96 / 4), makeDivisible(240 / 4), makeDivisible(576 / 4), makeDivisible(0.25 * 72)]).toEqual([8, 24, 64, 144, 24]);
    const se = new SqueezeExcite(8, 4, { activation: 'relu', gate: 'hardsigmoid', rng: new Rng(1) });
    expect(se.children().map(([n]) => n)).toEqual(['avgpool', 'fc1', 'fc2', 'activation', 'scale_activation']);
    expect(se.parameterCount().total).toBe(8 * 4 + 4 + 4 * 8 + 8);
  });

  it('Sequential names children 0, 1, … and infers shapes', () => {
    const s = new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new ReLU(), new LeakyReLU(0.1));
    expect(s.children().map(([n]) => n)).toEqual(['0', '1', '2']);
    expect(s.infer([2, 3, 5, 5])).toEqual([2, 4, 5, 5]);
    expect(() => s.infer([2, 4, 5, 5])).toThrow(ShapeError);
  });
});
