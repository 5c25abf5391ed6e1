import { describe, expect, it } from 'vitest';
import { ARCHS, efficientNet, fromArch, lightCnn, mobileNetV3, resnet50 } from '../../src/models/index.js';

// torchvision's num_params and the MACs of Conv/Linear layers (torchvision's "GFLOPS").
describe('summary: torchvision counts, from shapes alone (no weights allocated)', () => {
  it('EfficientNet B0…B7 parameter counts', () => {
    const want = { b0: 5_288_548, b1: 7_794_184, b2: 9_109_994, b3: 12_233_232, b4: 19_341_616, b5: 30_389_784, b6: 43_040_704, b7: 66_347_960 };
    for (const [v, n] of Object.entries(want)) {
      const s = efficientNet(v as 'b0').summary({ print: false });
      expect(s.params, v).toBe(n);
      expect(s.trainable_params, v).toBe(n);
    }
  });

  it('EfficientNet-B0: ~0.39 G MACs (torchvision GFLOPS 0.39)', () => {
    const s = efficientNet('b0').summary({ print: false });
    expect(s.macs).toBe(385_814_752);
    expect(s.flops).toBe(2 * s.macs);
    expect(s.output).toEqual([1, 1000]);
    expect(s.input).toEqual([1, 3, 224, 224]);
  });

  it('MobileNetV3 Small / Large', () => {
    const small = mobileNetV3('small').summary({ print: false });
    expect(small.params).toBe(2_542_856);
    expect(small.macs).toBe(56_510_400); // torchvision: 0.057
    const large = mobileNetV3('large').summary({ print: false });
    expect(large.params).toBe(5_483_032);
    expect(Math.round(large.macs / 1e6)).toBe(217); // torchvision: 0.217
  });

  it('the improved MobileNetV3-Small and light_cnn match their fixtures', () => {
    const eca = mobileNetV3('small', { attention: 'eca', activation: 'leaky_relu', dilation: true, numClasses: 4 }).summary({ print: false });
    expect(eca.params).toBe(1_060_355);
    expect(eca.macs).toBe(55_042_760);
    const l = lightCnn().summary({ print: false });
    expect(l.params).toBe(690_887);
    expect(l.macs).toBe(126_625_116);
  });

  it('ResNet-50, the papers\' baseline: 25,557,032 parameters, 4.09 G MACs', () => {
    const s = resnet50().summary({ print: false });
    expect(s.params).toBe(25_557_032);
    expect(s.macs).toBe(4_089_184_256);
    expect(s.layers.find((l) => l.name === 'layer2.0.downsample.0')).toMatchObject({ output: [1, 512, 28, 28] });
  });

  it('B7 is counted without allocating its 66 M weights', () => {
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const s = efficientNet('b7').summary({ print: false });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(50e6);
    expect(s.size_bytes).toBeGreaterThan(4 * 66_347_960);
  });

  it('reports frozen parameters, per-layer rows and prints a table', () => {
    const net = mobileNetV3('small', { numClasses: 3 });
    net.freeze().unfreeze('classifier');
    const lines: string[] = [];
    const s = net.summary({ input: [2, 3, 224, 224], log: (l) => lines.push(l) });
    expect(s.trainable_params).toBe(576 * 1024 + 1024 + 1024 * 3 + 3);
    expect(s.frozen_params).toBe(s.params - s.trainable_params);
    expect(s.macs).toBe(2 * (56_510_400 - 1024 * 1000 + 1024 * 3));
    const stem = s.layers.find((l) => l.name === 'features.0.0')!;
    expect(stem).toMatchObject({ output: [2, 16, 112, 112], params: 432, macs: 2 * 16 * 112 * 112 * 27 });
    expect(lines.join('\n')).toMatch(/torchvision's "GFLOPS" column counts these MACs/);
    expect(lines.join('\n')).toMatch(/features\.1\.block\.1\.fc1/);
  });

  it('every CLI architecture builds', () => {
    for (const a of ARCHS) expect(fromArch(a, { numClasses: 2 }).summary({ print: false }).output).toEqual([1, 2]);
    expect(() => fromArch('resnet9000')).toThrow(/unknown architecture/);
  });
});
