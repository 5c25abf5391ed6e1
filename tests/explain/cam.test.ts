import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interpolateInferno } from 'd3-scale-chromatic';
import { describe, expect, it } from 'vitest';
import { register } from '../../src/cli/gradcam.js';
import { AutogradError, noGrad } from '../../src/core/autograd.js';
import { ShapeError, ValueError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { Tensor } from '../../src/core/tensor.js';
import { type RgbImage, decodeImage, encodePng } from '../../src/data/image.js';
import { type Preprocess, preprocessImage, preprocessToMetadata } from '../../src/data/transforms.js';
import { type Cam, camFaithfulness, gradCam, gradCams, heatAtPixels, overlayFigure, saveHeatMap, saveOverlay, slideHeatMap } from '../../src/explain/index.js';
import { assemble } from '../../src/io/onnx/assemble.js';
import { exportOnnx } from '../../src/io/onnx/export.js';
import { loadOnnx } from '../../src/io/onnx/model.js';
import { add, mul, relu } from '../../src/kernels/elementwise.js';
import { reduceSum } from '../../src/kernels/reduce.js';
import { captureOutputs } from '../../src/layers/module.js';
import { Conv2d, Linear, ReLU, Sequential } from '../../src/layers/layers.js';
import { Network } from '../../src/models/network.js';
import { runCommand } from '../helpers.js';

const FIX = join(import.meta.dirname, '../fixtures/explain');
const ref = JSON.parse(readFileSync(join(FIX, 'cam.json'), 'utf8')) as {
  logits: number[];
  preprocess: Preprocess;
  cases: { layer: string; class: number; activation_shape: number[]; gradcam_raw: number[]; gradcampp_raw: number[]; gradcam_upsampled: { file: string } }[];
  saliency: { file: string; class: number };
};
const f32 = (file: string) => new Float32Array(new Uint8Array(readFileSync(join(FIX, file))).buffer);
const IMAGE = join(FIX, 'image.png');
const tmp = () => mkdtempSync(join(tmpdir(), 'lightconv-cam-'));

/** Identity preprocessing for the constructed models: a pixel of 255 becomes 1. */
const RAW = (size: number): Preprocess => ({ inputSize: size, resize: size, crop: size, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] });

/**
 * A model whose answer is known: a 1×1 conv computes R − B per pixel, ReLU, the global mean m,
 * then logits (1 − 4m, 4m − 1): class 1 ('dab_positive') grows with the share of red pixels.
 */
function redDetector(size = 32): Network {
  const net = new Network({ arch: 'red_detector', input: [1, 3, size, size] }, new Sequential(new Conv2d(3, 1, 1), new ReLU()), new Sequential(new Linear(1, 2)));
  net.loadStateDict({
    'features.0.weight': Tensor.fromArray([1, 0, -1], [1, 3, 1, 1]),
    'features.0.bias': Tensor.fromArray([0], [1]),
    'classifier.0.weight': Tensor.fromArray([-4, 4], [2, 1]),
    'classifier.0.bias': Tensor.fromArray([1, -1], [2]),
  });
  return net.eval();
}
const CLASSES = ['dab_negative', 'dab_positive'];
const softmax1 = (logitPos: number) => 1 / (1 + Math.exp(-2 * logitPos)); // p(class 1) for logits (−l, l)

/** [1, 3, H, W]: red (R = 1) where `red(y, x)`, else blue (B = 1). */
function redBlue(H: number, W: number, red: (y: number, x: number) => boolean): Tensor {
  const t = Tensor.zeros([1, 3, H, W]);
  const d = t.f32();
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) d[(red(y, x) ? 0 : 2) * H * W + y * W + x] = 1;
  return t;
}

function rgbOf(t: Tensor): RgbImage {
  const [, , H, W] = t.shape as number[];
  const d = t.f32();
  const rgb = new Uint8Array(H! * W! * 3);
  for (let i = 0; i < H! * W!; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(d[c * H! * W! + i]! * 255);
  return { width: W!, height: H!, rgb };
}

/** In [0, 1], the largest value 1 — up to the bilinear upsampling of a layer's map, which may miss a cell's centre. */
function inUnitRange(cam: Cam): void {
  expect(cam.map.length).toBe(cam.width * cam.height);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of cam.map) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  expect(lo).toBeGreaterThanOrEqual(0);
  expect(hi).toBeLessThanOrEqual(1);
  if (cam.layer === null) expect(hi).toBeCloseTo(1, 6);
  else expect(hi).toBeGreaterThan(0.9);
}

describe('Tensor.retainGrad', () => {
  it('keeps the gradient of an intermediate tensor; leaves unchanged', () => {
    const x = Tensor.fromArray([1, -2, 3], [3]).requireGrad();
    const run = (retain: boolean) => {
      const a = mul(x, Tensor.fromArray([2, 2, 2], [3])); // a = 2x
      if (retain) a.retainGrad();
      reduceSum(mul(a, a), [], false).backward(); // d/da Σ a² = 2a
      return a;
    };
    const plain = run(false);
    expect(plain.grad).toBeNull(); // the default: only leaves keep gradients
    x.grad = null;
    const a = run(true);
    expect(Array.from(a.grad!.f32())).toEqual([4, -8, 12]);
    expect(Array.from(x.grad!.f32())).toEqual([8, -16, 24]); // d/dx = 2a · 2, unchanged by retainGrad
    expect(x.retainGrad()).toBe(x); // a leaf: a no-op
    expect(x.retainsGrad).toBe(false);
  });

  it('sums the paths through a retained tensor used twice, and stays null without a backward through it', () => {
    const x = Tensor.fromArray([1, 2], [2]).requireGrad();
    const a = relu(x).retainGrad();
    const unused = relu(x).retainGrad();
    // loss = Σ a·a + Σ 3a: d/da = 2a + 3
    reduceSum(add(mul(a, a), mul(a, Tensor.fromArray([3, 3], [2]))), [], false).backward();
    expect(Array.from(a.grad!.f32())).toEqual([5, 7]);
    expect(unused.grad).toBeNull();
  });

  it('is an error on a tensor that is not on the tape', () => {
    const y = noGrad(() => relu(Tensor.fromArray([1], [1]).requireGrad()));
    expect(() => y.retainGrad()).toThrow(AutogradError);
  });

  it('gives a hooked layer output its gradient after captureOutputs + backward (the Grad-CAM route)', () => {
    const net = redDetector(4);
    const x = redBlue(4, 4, (y) => y < 2).requireGrad();
    const { result, outputs } = captureOutputs(net, () => net.forward(x), ['features.1']);
    const act = outputs.get('features.1')!.retainGrad();
    const seed = Tensor.fromArray([0, 1], [1, 2]);
    result.backward(seed);
    // logit_1 = 4 · mean(act) − 1: d/d act = 4 / 16 everywhere.
    expect(Array.from(act.grad!.f32())).toEqual(new Array(16).fill(0.25));
  });
});

describe('gradCam against PyTorch (tests/fixtures/explain, scripts/make_cam_fixture.py)', async () => {
  // Tolerance: |lightconv − PyTorch| ≤ 1e-4 · max|PyTorch map| (+1e-7 absolute). Both run float32
  // through ~50 layers forward and back; the ONNX graph has BN folded into the convs (PyTorch
  // does not), which changes the rounding of every conv. Measured: ≤ 1e-5 relative.
  const onnx = await loadOnnx(join(FIX, 'mnv3s.onnx'));
  const native = await assemble(join(FIX, 'mnv3s.onnx'));
  const close = (got: ArrayLike<number>, want: ArrayLike<number>) => {
    expect(got.length).toBe(want.length);
    const scale = Math.max(...Array.from(want, Math.abs));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThanOrEqual(1e-4 * scale + 1e-7);
  };
  for (const [label, model] of [['ONNX graph', onnx], ['assembled native module', native]] as const) {
    it(`${label}: Grad-CAM and Grad-CAM++ at two layers, the upsampled map, and the plain input gradient`, async () => {
      if (label === 'ONNX graph') {
        // Same input as PyTorch's: the logits agree.
        const x = new Tensor(preprocessImage(decodeImage(new Uint8Array(readFileSync(IMAGE))), ref.preprocess), [1, 3, 96, 96]);
        close(onnx.runSync(x).logits!.f32(), ref.logits);
      }
      for (const c of ref.cases) {
        const cam = await gradCam(model, IMAGE, { layer: c.layer, target: c.class, preprocess: ref.preprocess });
        expect(cam.layer).toBe(c.layer);
        expect([cam.raw!.height, cam.raw!.width]).toEqual(c.activation_shape.slice(1));
        close(cam.raw!.map, c.gradcam_raw);
        close(cam.map, f32(c.gradcam_upsampled.file));
        const pp = await gradCam(model, IMAGE, { layer: c.layer, target: c.class, preprocess: ref.preprocess, method: 'gradcam++' });
        close(pp.raw!.map, c.gradcampp_raw);
      }
      const sal = await gradCam(model, IMAGE, { method: 'saliency', target: ref.saliency.class, preprocess: ref.preprocess, smoothGrad: { samples: 1, noise: 0 } });
      close(sal.raw!.map, f32(ref.saliency.file));
      // The default layer: the last conv with maps larger than 1×1, named as the module.
      const d = await gradCam(model, IMAGE, { preprocess: ref.preprocess });
      expect(d.layer).toBe('features.12');
      expect(d.classIndex).toBe(ref.cases[0]!.class); // the predicted class
      expect(d.score).toBeCloseTo(Math.exp(ref.logits[d.classIndex]!) / ref.logits.reduce((s, v) => s + Math.exp(v), 0), 5);
    });
  }
});

describe('gradCam methods', () => {
  it('gradCams: a batch through one backward equals each image alone (ONNX graph and native module)', async () => {
    const onnx = await loadOnnx(join(FIX, 'mnv3s.onnx'));
    const slide = decodeImage(new Uint8Array(readFileSync(join(import.meta.dirname, '../../datasets/ihc_slide/ihc_colon.png'))));
    const { crop } = await import('../../src/data/transforms.js');
    const images = [IMAGE, crop(slide, 0, 0, 96, 96), crop(slide, 200, 300, 96, 96)];
    for (const model of [onnx, await assemble(join(FIX, 'mnv3s.onnx'))]) {
      for (const method of ['gradcam', 'gradcam++'] as const) {
        // Batches of 2: the second batch holds one image; the last image asks for class 3.
        const cams = await gradCams(model, images, { method, layer: 'features.8', preprocess: ref.preprocess, batch: 2, targets: [undefined, undefined, 3] });
        expect(cams).toHaveLength(3);
        for (const [i, img] of images.entries()) {
          const one = await gradCam(model, img, { method, layer: 'features.8', preprocess: ref.preprocess, ...(i === 2 ? { target: 3 } : {}) });
          expect(cams[i]!.classIndex).toBe(one.classIndex);
          expect(cams[i]!.score).toBeCloseTo(one.score, 6);
          // float32 sums in another order (batched kernels): relative 1e-4 of the map's scale.
          const scale = Math.max(...one.raw!.map);
          for (let j = 0; j < one.raw!.map.length; j++) expect(Math.abs(cams[i]!.raw!.map[j]! - one.raw!.map[j]!)).toBeLessThanOrEqual(1e-4 * scale + 1e-7);
        }
        expect(cams[2]!.classIndex).toBe(3);
      }
    }
  });

  it('each method returns a map at the input resolution in [0, 1], on an ONNX graph and a native module', async () => {
    const onnx = await loadOnnx(join(FIX, 'mnv3s.onnx'));
    for (const model of [onnx, redDetector(32)]) {
      const image = model === onnx ? IMAGE : redBlue(32, 32, (y, x) => (x - 10) ** 2 + (y - 20) ** 2 < 40);
      const size = model === onnx ? 96 : 32;
      for (const method of ['gradcam', 'gradcam++', 'occlusion', 'saliency'] as const) {
        // The red detector for its class 1, whose evidence (the red disc) is there to find.
        const cam = await gradCam(model, image, { method, ...(model === onnx ? { preprocess: ref.preprocess } : { target: 1 }), smoothGrad: { samples: 4, noise: 0.1 }, occlusion: { patch: size / 4, stride: size / 4 } });
        expect([cam.method, cam.width, cam.height]).toEqual([method, size, size]);
        inUnitRange(cam);
        expect(cam.layer === null).toBe(method === 'occlusion' || method === 'saliency');
      }
    }
  });

  it('Grad-CAM of the constructed model is its red map; the layer is found past the ReLU', async () => {
    const x = redBlue(8, 8, (y, x) => x < 3);
    const cam = await gradCam(redDetector(8), x, { target: 1, classes: CLASSES });
    expect(cam.layer).toBe('features.1');
    expect(cam.className).toBe('dab_positive');
    for (let i = 0; i < 64; i++) expect(cam.raw!.map[i]).toBeCloseTo(i % 8 < 3 ? 4 / 64 : 0, 7); // α = 4/64, A = 1 on red
    expect(cam.score).toBeCloseTo(softmax1(4 * (24 / 64) - 1), 6);
    // For class 0 every weight is negative: the ReLU leaves nothing.
    const neg = await gradCam(redDetector(8), x, { target: 'dab_negative', classes: CLASSES });
    expect(Math.max(...neg.map)).toBe(0);
  });

  it('occlusion finds a red square, with the drop of the centre pixel computed by hand', async () => {
    // Square rows 8–15, cols 16–23 in 32×32; patch 4, stride 2.
    const x = redBlue(32, 32, (y, x) => y >= 8 && y < 16 && x >= 16 && x < 24);
    const cam = await gradCam(redDetector(32), x, { method: 'occlusion', target: 1, occlusion: { patch: 4, stride: 2, batch: 7 } });
    const raw = cam.raw!.map;
    // Every patch covering (12, 20) lies inside the square and removes 16 of its 64 red pixels
    // (the fill, the image mean, has R − B < 0).
    const p0 = softmax1((4 * 64) / 1024 - 1);
    const p1 = softmax1((4 * 48) / 1024 - 1);
    expect(raw[12 * 32 + 20]).toBeCloseTo(p0 - p1, 6);
    // No patch over pixels 4+ away from the square touches it: no drop at all there.
    for (let y = 0; y < 32; y++) {
      for (let xx = 0; xx < 32; xx++) {
        const far = y < 8 - 3 || y > 15 + 3 || xx < 16 - 3 || xx > 23 + 3;
        if (far) expect(Math.abs(raw[y * 32 + xx]!)).toBeLessThan(1e-7);
      }
    }
    const best = cam.map.indexOf(1);
    expect([Math.floor(best / 32) >= 8 && Math.floor(best / 32) < 16, best % 32 >= 16 && best % 32 < 24]).toEqual([true, true]);
  });

  it('SmoothGrad is the mean of the plain saliency maps of the seeded noisy copies', async () => {
    const net = redDetector(16);
    const x = redBlue(16, 16, (y, xx) => (xx - 6) ** 2 + (y - 9) ** 2 < 20);
    const samples = 3;
    const noise = 0.3;
    const sg = await gradCam(net, x, { method: 'saliency', target: 1, smoothGrad: { samples, noise }, seed: 5 });
    // The same noise, drawn here in the same order (sample by sample, value by value): σ = noise · (max − min).
    const rng = new Rng(5);
    const d = x.f32();
    const sigma = noise * (Math.max(...d) - Math.min(...d));
    const mean = new Float64Array(256);
    for (let k = 0; k < samples; k++) {
      const noisy = new Tensor(Float32Array.from(d, (v) => v + rng.normal(0, sigma)), x.shape);
      const plain = await gradCam(net, noisy, { method: 'saliency', target: 1, smoothGrad: { samples: 1, noise: 0 } });
      plain.raw!.map.forEach((v, i) => (mean[i] += v / samples));
    }
    // Noise moves pixels across the ReLU: the mean is not any one sample's map.
    const one = await gradCam(net, x, { method: 'saliency', target: 1, smoothGrad: { samples: 1, noise: 0 } });
    expect(Array.from(one.raw!.map)).not.toEqual(Array.from(mean, Math.fround));
    // Sums of three float32 values in another order: 1e-6 of the largest.
    const scale = Math.max(...mean);
    for (let i = 0; i < 256; i++) expect(Math.abs(sg.raw!.map[i]! - mean[i]!)).toBeLessThanOrEqual(1e-6 * scale);
  });

  it('occlusion of a confident model: drops computed in float64, not float32 rounding noise', async () => {
    // The red detector with its logits scaled by 12: class 0's margin is 12·(2 − 8m) = 18 for the
    // square below, so p = 1 − 1.5e-8 and every occluded p rounds to 1 in float32.
    const net = redDetector(32);
    net.loadStateDict({ 'classifier.0.weight': Tensor.fromArray([-48, 48], [2, 1]), 'classifier.0.bias': Tensor.fromArray([12, -12], [2]) }, { strict: false });
    const x = redBlue(32, 32, (y, x) => y >= 8 && y < 16 && x >= 16 && x < 24);
    const cam = await gradCam(net, x, { method: 'occlusion', target: 0, occlusion: { patch: 4, stride: 2 } });
    const p0 = (m: number) => 1 / (1 + Math.exp(12 * (8 * m - 2))); // p(class 0), in float64
    // Occluding 16 of the 64 red pixels makes class 0 surer: a negative drop of about 1.2e-8.
    const want = p0(64 / 1024) - p0(48 / 1024);
    expect(want).toBeLessThan(-1e-8);
    // Relative 1e-4: the logits are exact in float32 (small integers times 1/64 steps); the rest is float64.
    expect(Math.abs(cam.raw!.map[12 * 32 + 20]! - want)).toBeLessThanOrEqual(1e-4 * Math.abs(want));
    // The figure says that the largest drop is tiny, so the bright spots are not read as strong evidence.
    const redCam = await gradCam(net, x, { method: 'occlusion', target: 1, occlusion: { patch: 4, stride: 2 } });
    expect(Math.max(...redCam.raw!.map)).toBeLessThan(0.01);
    expect((await overlayFigure(redCam, rgbOf(x))).svg).toContain('No patch lowered the probability by even 0.01');
    // Target 0 gains from every patch: no drop at all, said the same way.
    expect((await overlayFigure(cam, rgbOf(x))).svg).toContain('No patch lowered the probability by even 0.01 (largest 0.00)');
    // The unscaled detector: occluding a quarter of the square drops p by 0.018, no such line.
    const plain = await gradCam(redDetector(32), x, { method: 'occlusion', target: 1, occlusion: { patch: 4, stride: 2 } });
    expect((await overlayFigure(plain, rgbOf(x))).svg).not.toContain('No patch lowered');
    // A labelled image: the title says whether the explained class is the true one.
    const [, wrong, right] = await Promise.all([null, overlayFigure(plain, rgbOf(x), { trueClass: 'blue' }), overlayFigure(plain, rgbOf(x), { trueClass: plain.className })]);
    expect(wrong.svg).toContain(`for '${plain.className}' — wrong: the true class is 'blue'`);
    expect(right.svg).toContain(`for '${plain.className}' — the true class`);
  });

  it('works on a model written with lightconv metadata (class names, preprocessing) given by path', async () => {
    const dir = tmp();
    const file = join(dir, 'red.onnx');
    await exportOnnx(redDetector(16), file, { metadata: { 'lightconv.classes': JSON.stringify(CLASSES), ...preprocessToMetadata(RAW(16)) } });
    const img = rgbOf(redBlue(16, 16, (y) => y < 5));
    const cam = await gradCam(file, img, { target: 'dab_positive' });
    expect([cam.className, cam.classIndex]).toEqual(['dab_positive', 1]);
    // The graph's default layer: past the Relu, named after its module.
    expect(cam.layer).toBe('features.1');
    for (let i = 0; i < 256; i++) expect(cam.map[i]).toBeCloseTo(i < 5 * 16 ? 1 : 0, 6);
    expect(cam.region).toEqual({ x: 0, y: 0, width: 16, height: 16, imageWidth: 16, imageHeight: 16 });
    const byIndex = await gradCam(file, img, { target: '1', method: 'gradcam++' });
    expect(byIndex.className).toBe('dab_positive');
  });
});

describe('camFaithfulness', () => {
  it("Grad-CAM's deletion curve falls faster than a random map's (and its insertion curve rises faster)", async () => {
    // Left half red: deleting red first (Grad-CAM's order) drives p to its floor at half the pixels.
    const net = redDetector(32);
    const x = redBlue(32, 32, (_y, xx) => xx < 16);
    const cam = await gradCam(net, x, { target: 1 });
    const rng = new Rng(7);
    const random = { map: Float32Array.from({ length: 1024 }, () => rng.next()), width: 32, height: 32 };
    const g = await camFaithfulness(net, x, cam, { steps: 16 });
    const r = await camFaithfulness(net, x, random, { steps: 16, target: 1 });
    expect(g.className).toBe('1');
    // At half the pixels, Grad-CAM's order has removed every red pixel: logits (1, −1).
    expect(g.deletion.fractions[8]).toBe(0.5);
    expect(g.deletion.probs[8]).toBeCloseTo(softmax1(-1), 6);
    expect(g.deletion.probs[0]).toBeCloseTo(softmax1(4 * 0.5 - 1), 6);
    expect(g.deletion.auc).toBeLessThan(r.deletion.auc - 0.05);
    expect(g.insertion.auc).toBeGreaterThan(r.insertion.auc + 0.05);
  });
});

describe('errors', async () => {
  const onnx = await loadOnnx(join(FIX, 'mnv3s.onnx'));
  it('names an unknown layer and lists the valid ones', async () => {
    await expect(gradCam(redDetector(8), redBlue(8, 8, () => true), { layer: 'features.9' })).rejects.toThrow(/no layer 'features\.9'.*'features', 'features\.0', 'features\.1'.*\(6\)/);
    await expect(gradCam(onnx, IMAGE, { layer: 'features.99' })).rejects.toThrow(/no layer 'features\.99'.*'features\.12'.*\(20 of \d+\)/);
  });

  it('names an unknown class and lists the classes', async () => {
    const x = redBlue(8, 8, () => true);
    await expect(gradCam(redDetector(8), x, { target: 'tumour', classes: CLASSES })).rejects.toThrow(ValueError);
    await expect(gradCam(redDetector(8), x, { target: 'tumour', classes: CLASSES })).rejects.toThrow(/no class 'tumour'.*0 'dab_negative', 1 'dab_positive'/);
    await expect(gradCam(redDetector(8), x, { target: 2, method: 'occlusion' })).rejects.toThrow(/class index 2 is out of range \(0…1\)/);
    // A digit string (as from --class) that is no class name is an index.
    await expect(gradCam(redDetector(8), x, { target: '7', classes: CLASSES })).rejects.toThrow(/class index 7 is out of range \(0…1\); the model's classes: 0 'dab_negative', 1 'dab_positive'/);
    await expect(gradCam(redDetector(8), x, { classes: ['a', 'b', 'c'] })).rejects.toThrow(/3 class names given but the model has 2 outputs/);
  });

  it('refuses a model without spatial maps and a layer that has none', async () => {
    await expect(gradCam(redDetector(8), redBlue(1, 1, () => true))).rejects.toThrow(/no convolution with spatial output/);
    await expect(gradCam(redDetector(8), redBlue(8, 8, () => true), { layer: 'classifier.0' })).rejects.toThrow(/outputs \[1, 2\], not channel maps/);
  });

  it('refuses an image that cannot be fitted to the model', async () => {
    await expect(gradCam(onnx, Tensor.zeros([1, 3, 64, 64]))).rejects.toThrow(ShapeError);
    await expect(gradCam(onnx, Tensor.zeros([1, 3, 64, 64]))).rejects.toThrow(/cannot be fitted.*96×96/);
    await expect(gradCam(onnx, Tensor.zeros([1, 1, 96, 96]))).rejects.toThrow(/1 channel .* takes 3/);
    await expect(gradCam(onnx, Tensor.zeros([2, 3, 96, 96]))).rejects.toThrow(/one image/);
    // A graph that declares a non-square input: an image (always preprocessed to a square) cannot go in.
    const wide = new Network({ arch: 'wide', input: [1, 3, 16, 24] }, new Sequential(new Conv2d(3, 2, 3, { padding: 1 }), new ReLU()), new Sequential(new Linear(2, 2)));
    const { exportOnnxBytes } = await import('../../src/io/onnx/export.js');
    const wideOnnx = await loadOnnx(exportOnnxBytes(wide, { input: [1, 3, 16, 24] }));
    await expect(gradCam(wideOnnx, rgbOf(redBlue(20, 30, () => true)), { preprocess: RAW(16) })).rejects.toThrow(/\[1, 3, 16, 16\] cannot be fitted to .* declares 16×24 inputs; images are resized and centre-cropped to a square 16×16, so this model takes only a tensor \[1, 3, 16, 24\]/);
    await expect(gradCam(wideOnnx, Tensor.zeros([1, 3, 16, 16]))).rejects.toThrow(/declares 16×24 inputs; pass an image \(it is resized\) or a tensor of that size/);
    expect((await gradCam(wideOnnx, Tensor.zeros([1, 3, 16, 24]), { method: 'saliency', smoothGrad: { samples: 1, noise: 0 } })).width).toBe(24);
    await expect(gradCam(redDetector(8), { width: 4, height: 4, rgb: new Uint8Array(5) })).rejects.toThrow(ShapeError);
    await expect(gradCam(redDetector(8), redBlue(8, 8, () => true), { method: 'lime' as never })).rejects.toThrow(/unknown method 'lime'/);
  });
});

describe('drawing', () => {
  it('saveOverlay writes a PNG of the figure with the colour bar legend (and the SVG)', async () => {
    const cam = await gradCam(await loadOnnx(join(FIX, 'mnv3s.onnx')), IMAGE, { preprocess: ref.preprocess });
    const dir = tmp();
    const out = join(dir, 'cam.png');
    await saveOverlay(cam, IMAGE, out, { svg: true });
    const bytes = new Uint8Array(readFileSync(out));
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const fig = await overlayFigure(cam, IMAGE);
    const img = decodeImage(bytes);
    expect([img.width, img.height]).toEqual([fig.width, fig.height]);
    expect(img.width).toBeGreaterThan(2 * 2 * 96); // two panels of at least the image's size, at 2×
    const svg = readFileSync(join(dir, 'cam.svg'), 'utf8');
    expect(svg).toContain("Grad-CAM for '0'");
    expect(svg).toContain('importance for the class');
    expect(svg).toContain('linearGradient');
    // The legend's pure colour-map ends are drawn (the overlay only has them blended with the image).
    const near = (c: number[]) => {
      for (let i = 0; i < img.width * img.height; i++) if (Math.abs(img.rgb[i * 3]! - c[0]!) + Math.abs(img.rgb[i * 3 + 1]! - c[1]!) + Math.abs(img.rgb[i * 3 + 2]! - c[2]!) <= 6) return true;
      return false;
    };
    const rgb = (s: string) => (/^#(..)(..)(..)$/.exec(s) ?? []).slice(1).map((h) => parseInt(h, 16));
    expect(rgb(interpolateInferno(0))).toHaveLength(3);
    expect(near(rgb(interpolateInferno(0)))).toBe(true);
    expect(near(rgb(interpolateInferno(1)))).toBe(true);
  });

  it('slideHeatMap classifies every tile (batched) and saveHeatMap draws them over the image', async () => {
    // 64×48: left 24 columns red. Tiles 16, stride 8 → 7 × 5.
    const img = rgbOf(redBlue(48, 64, (_y, x) => x < 24));
    const heat = await slideHeatMap(redDetector(16), img, { tile: 16, stride: 8, preprocess: RAW(16), classes: CLASSES, batch: 4 });
    expect([heat.width, heat.height, heat.className]).toEqual([7, 5, 'dab_positive']); // default: the last class
    for (let r = 0; r < 5; r++) {
      for (let c = 0; c < 7; c++) {
        const red = Math.max(0, Math.min(16, 24 - c * 8)); // red columns in the tile
        expect(heat.map[r * 7 + c]).toBeCloseTo(softmax1((4 * red) / 16 - 1), 6);
      }
    }
    const px = heatAtPixels(heat);
    expect(px.length).toBe(64 * 48);
    expect(px[0]).toBeCloseTo(heat.map[0]!, 6); // one tile covers the corner
    expect(Number.isNaN(px[63])).toBe(false); // 6·8 + 16 = 64: every column covered
    const dir = tmp();
    await saveHeatMap(heat, img, join(dir, 'slide.png'));
    const png = decodeImage(new Uint8Array(readFileSync(join(dir, 'slide.png'))));
    expect(png.width).toBeGreaterThan(400);
    await expect(saveHeatMap(heat, rgbOf(redBlue(8, 8, () => true)), join(dir, 'x.png'))).rejects.toThrow(/made on a 64×48 image/);
    await expect(slideHeatMap(redDetector(16), img, { tile: 100, stride: 8 })).rejects.toThrow(/tile 100 is larger than the image/);
  });
});

describe('lightconv gradcam', () => {
  it('writes the overlay PNG for a model file and an image', async () => {
    const dir = tmp();
    const model = join(dir, 'red.onnx');
    await exportOnnx(redDetector(16), model, { metadata: { 'lightconv.classes': JSON.stringify(CLASSES), ...preprocessToMetadata(RAW(16)) } });
    const image = join(dir, 'img.png');
    const { writeFileSync } = await import('node:fs');
    const img = rgbOf(redBlue(16, 16, (y, x) => x > 8 && y > 4));
    writeFileSync(image, encodePng(img.rgb, 16, 16));
    const out = join(dir, 'cam.png');
    const log = await runCommand(register, ['gradcam', '--model', model, '--image', image, '--class', 'dab_positive', '--method', 'gradcam++', '--out', out]);
    expect(log).toMatch(/gradcam\+\+: class 1 'dab_positive' \(probability 0\.\d+\) at layer features\.1 \(16×16 maps\)/);
    expect(log).not.toMatch(/coarse/);
    expect(existsSync(out)).toBe(true);
    expect(Array.from(readFileSync(out).subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    await expect(runCommand(register, ['gradcam', '--model', model, '--image', image, '--method', 'lime', '--out', out])).rejects.toThrow(/expected one of gradcam/);
  });

  it("says when the default layer's maps are coarser than 4×4 (MobileNetV3-Small at 96 px: 3×3)", async () => {
    const dir = tmp();
    const log = await runCommand(register, ['gradcam', '--model', join(FIX, 'mnv3s.onnx'), '--image', IMAGE, '--out', join(dir, 'cam.png')]);
    expect(log).toMatch(/at layer features\.12 \(3×3 maps\)/);
    expect(log).toMatch(/the maps are coarse: an earlier layer \(--layer\) gives finer ones/);
  });
});
