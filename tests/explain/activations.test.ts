import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interpolateViridis } from 'd3-scale-chromatic';
import { describe, expect, it } from 'vitest';
import { register } from '../../src/cli/activations.js';
import { ValueError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { decodeImage } from '../../src/data/image.js';
import { activationMaps, saveActivationMaps } from '../../src/explain/activations.js';
import { loadOnnx } from '../../src/io/onnx/model.js';
import { Conv2d, Flatten, Linear, ReLU, Sequential } from '../../src/layers/layers.js';
import { mobileNetV3 } from '../../src/models/index.js';
import { runCommand } from '../helpers.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/models');

function pixel(img: { width: number; rgb: Uint8Array }, x: number, y: number): number[] {
  const o = (y * img.width + x) * 3;
  return [img.rgb[o]!, img.rgb[o + 1]!, img.rgb[o + 2]!];
}

function hexRgb(c: string): number[] {
  const m = /^#(..)(..)(..)$/.exec(c)!;
  return [1, 2, 3].map((i) => parseInt(m[i]!, 16));
}

describe('activationMaps', () => {
  it('draws each channel scaled to its own min–max, enlarged nearest-neighbour, constant channels grey', async () => {
    // Channel 0 = the input ramp, channel 1 = 10 × the ramp (same picture, other range), channel 2 = −ramp
    // (after ReLU: all zero, a constant channel).
    const conv = new Conv2d(1, 3, 1, { bias: false });
    conv.loadStateDict({ weight: Tensor.fromArray([1, 10, -1], [3, 1, 1, 1]) });
    const net = new Sequential(conv, new ReLU());
    const ramp = Tensor.fromArray(Array.from({ length: 16 }, (_, i) => i + 1), [1, 1, 4, 4]);
    const [m] = await activationMaps(net, ramp, { layers: ['1'] });
    expect(m!.shape).toEqual([1, 3, 4, 4]);
    expect(m!.constant).toEqual([2]);
    expect(m!.range).toEqual([0, 160]);
    const img = decodeImage(m!.png);
    expect([img.width, img.height]).toEqual([m!.width, m!.height]);
    // 4×4 maps are enlarged to 96 px tiles (×2 in the PNG): 24 px per map pixel → 48 PNG pixels.
    for (const t of m!.tiles) expect([t.width, t.height]).toEqual([192, 192]);
    const lowest = hexRgb(interpolateViridis(0));
    const highest = hexRgb(interpolateViridis(1));
    for (const c of [0, 1]) {
      const t = m!.tiles[c]!;
      const first = pixel(img, t.x + 10, t.y + 10); // map pixel [0, 0]: the channel's minimum
      const last = pixel(img, t.x + t.width - 10, t.y + t.height - 10); // [3, 3]: its maximum
      first.forEach((v, i) => expect(Math.abs(v - lowest[i]!)).toBeLessThanOrEqual(2));
      last.forEach((v, i) => expect(Math.abs(v - highest[i]!)).toBeLessThanOrEqual(2));
      // Nearest-neighbour: a map pixel is one flat 48×48 square.
      expect(pixel(img, t.x + 2, t.y + 2)).toEqual(pixel(img, t.x + 45, t.y + 45));
    }
    // Channels 0 and 1 hold the same picture at different scales: identical tiles.
    const [a, b] = [m!.tiles[0]!, m!.tiles[1]!];
    for (const [dx, dy] of [[60, 20], [100, 150], [170, 90]] as const) expect(pixel(img, a.x + dx, a.y + dy)).toEqual(pixel(img, b.x + dx, b.y + dy));
    const g = m!.tiles[2]!;
    expect(pixel(img, g.x + 50, g.y + 50)).toEqual([150, 150, 150]);
  });

  it('native MobileNetV3: default layers are the spatial blocks of features; at most 64 channels per grid', async () => {
    const net = mobileNetV3('small', { widthMult: 0.5, numClasses: 3, resolution: 64, seed: 1 });
    const maps = await activationMaps(net, join(FIXTURES, 'mnv3_mini', 'image.png'));
    expect(maps.map((m) => m.layer)).toEqual(maps.map((_, i) => `features.${i}`));
    expect(maps.every((m) => m.shape[2]! * m.shape[3]! > 1)).toBe(true);
    expect(maps[0]!.shape).toEqual([1, 8, 32, 32]);
    const wide = maps.find((m) => m.channels > 64);
    if (wide) expect(wide.shown).toBe(64);
    const few = await activationMaps(net, Tensor.randn([3, 64, 64], { seed: 1 }), { layers: ['features.3'], maxChannels: 5 });
    expect(few[0]!.shown).toBe(5);
    expect(few[0]!.tiles).toHaveLength(5);
  });

  it('ONNX graphs: layers by exporter scope (the block\'s last node), node name or output name', async () => {
    const model = await loadOnnx(join(FIXTURES, 'mnv3_mini', 'model.onnx'));
    const image = join(FIXTURES, 'mnv3_mini', 'image.png');
    const maps = await activationMaps(model, image);
    expect(maps.map((m) => m.layer)).toEqual(['features.0', 'features.1', 'features.2', 'features.3', 'features.4', 'features.5', 'features.6']);
    expect(maps[3]!.source).toBe('/features/features.3/Add');
    const [byNode] = await activationMaps(model, image, { layers: ['/features/features.3/Add'] });
    expect(byNode!.range).toEqual(maps[3]!.range);
    const [byValue] = await activationMaps(model, image, { layers: ['/features/features.3/Add_output_0'] });
    expect(byValue!.range).toEqual(maps[3]!.range);
  });

  it("ONNX export of a long flat Sequential (light_cnn): each spatial layer of 'features' is drawn", async () => {
    const { fromArch } = await import('../../src/models/index.js');
    const { exportOnnxBytes } = await import('../../src/io/onnx/export.js');
    const net = fromArch('light_cnn', { numClasses: 2, resolution: 16 });
    const onnx = await loadOnnx(exportOnnxBytes(net, { input: [1, 3, 16, 16] }));
    const maps = await activationMaps(onnx, Tensor.randn([1, 3, 16, 16], { seed: 1 }));
    // Its nodes are named '/features/0/Conv_0' …: blocks features.0, features.3, … (BN and ReLU fold into the conv).
    expect(maps.length).toBeGreaterThanOrEqual(4);
    expect(maps.every((m) => /^features\.\d+$/.test(m.layer) && m.shape.length === 4)).toBe(true);
    // The ReLU runs inside the conv (the loader's fusion): the label says so, as the values are past it.
    expect(maps[0]!.source).toMatch(/^\/features\/0\/Conv_\d+ \(Conv with its relu fused\)$/);
    expect(maps[0]!.range[0]).toBeGreaterThanOrEqual(0);
  });

  it('typed errors: an unknown layer lists the valid ones, a layer without maps says so', async () => {
    const net = mobileNetV3('small', { widthMult: 0.5, numClasses: 3, resolution: 32, seed: 1 });
    const x = Tensor.randn([1, 3, 32, 32], { seed: 2 });
    const count = net.namedModules().length - 1;
    await expect(activationMaps(net, x, { layers: ['features.99'] })).rejects.toThrow(ValueError);
    await expect(activationMaps(net, x, { layers: ['features.99'] })).rejects.toThrow(new RegExp(`no layer 'features.99'; valid module paths: 'features', 'features.0', .* \\(first 20 of ${count}\\)`));
    await expect(activationMaps(net, x, { layers: ['classifier.0'] })).rejects.toThrow(/'classifier.0' outputs \[1, \d+\], not channel maps/);
    const onnx = await loadOnnx(join(FIXTURES, 'eca_mini', 'model.onnx'));
    await expect(activationMaps(onnx, x, { layers: ['nope'] })).rejects.toThrow(/no layer 'nope'; valid blocks and node names: 'stem', 'dw', 'pw', 'eca1'/);
    await expect(activationMaps(net, Tensor.randn([2, 2], { seed: 1 }))).rejects.toThrow(/must be \[C, H, W\] or \[N, C, H, W\], got \[2, 2\]/);
    // A graph that declares a non-square input cannot take an image (preprocessed to a square).
    const { Network } = await import('../../src/models/network.js');
    const { exportOnnxBytes } = await import('../../src/io/onnx/export.js');
    const wide = new Network({ arch: 'wide', input: [1, 3, 16, 24] }, new Sequential(new Conv2d(3, 2, 3, { padding: 1 }), new ReLU()), new Sequential(new Linear(2, 2)));
    const wideOnnx = await loadOnnx(exportOnnxBytes(wide, { input: [1, 3, 16, 24] }));
    const img = { width: 30, height: 20, rgb: new Uint8Array(30 * 20 * 3) };
    await expect(activationMaps(wideOnnx, img, { preprocess: { inputSize: 16, resize: 16, crop: 16, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] } })).rejects.toThrow(/\[1, 3, 16, 16\] cannot be fitted to the model, whose graph declares 16×24 inputs; images are resized and centre-cropped to a square/);
    expect((await activationMaps(wideOnnx, Tensor.zeros([1, 3, 16, 24])))[0]!.shape).toEqual([1, 2, 16, 24]);
    // A model without any spatial layer: an error rather than an empty folder.
    const mlp = new Sequential(new Flatten(), new Linear(12, 2));
    await expect(activationMaps(mlp, Tensor.randn([1, 3, 2, 2], { seed: 1 }))).rejects.toThrow(/no layer with channel maps larger than 1×1 for an input \[1, 3, 2, 2\]/);
  });

  it('saveActivationMaps writes one PNG per layer and an index.md that shows them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lightconv-act-'));
    const model = await loadOnnx(join(FIXTURES, 'eca_mini', 'model.onnx'));
    const { maps, files } = await saveActivationMaps(model, join(FIXTURES, 'eca_mini', 'image.png'), dir, { layers: ['pw', 'eca1', 'maxpool'] });
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['1_pw.png', '2_eca1.png', '3_maxpool.png', 'index.md']);
    const index = readFileSync(join(dir, 'index.md'), 'utf8');
    for (const m of maps) {
      expect(index).toContain(`## ${m.layer}`);
      expect(index).toContain(`${m.channels} channels of ${m.shape[2]}×${m.shape[3]}`);
    }
    expect(index).toContain('![eca1](2_eca1.png)');
    expect(decodeImage(new Uint8Array(readFileSync(files[1]!))).width).toBe(maps[1]!.width);
  });
});

describe('lightconv activations', () => {
  it('writes the grids of an ONNX model for an image', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'lightconv-act-cli-')), 'maps');
    const text = await runCommand(register, ['activations', '--model', join(FIXTURES, 'mnv3_mini', 'model.onnx'), '--image', join(FIXTURES, 'mnv3_mini', 'image.png'), '--out', out, '--layers', 'features.1,features.4', '--max-channels', '16']);
    expect(text).toMatch(/features\.1 +\[1, 8, 8, 8\] +8\/8 channels/);
    expect(text).toMatch(/features\.4 +\[1, 24, 2, 2\] +16\/24 channels/);
    expect(text).toMatch(/wrote 2 PNGs and index\.md/);
    expect(existsSync(join(out, '1_features.1.png'))).toBe(true);
    expect(existsSync(join(out, 'index.md'))).toBe(true);
    await expect(runCommand(register, ['activations', '--model', join(FIXTURES, 'mnv3_mini', 'model.onnx'), '--image', join(FIXTURES, 'mnv3_mini', 'image.png'), '--out', out, '--layers', 'features.77'])).rejects.toThrow(/no layer 'features.77'/);
  });
});
