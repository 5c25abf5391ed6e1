import { describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { type RgbImage, centerCrop as cropImage, encodePng, loadImageTensor } from '../../src/data/image.js';
import {
  type Preprocess,
  type TransformSpec,
  adjustBrightness,
  adjustHue,
  adjustSaturation,
  applyTransform,
  centerCrop,
  checkTransform,
  colorJitter,
  compose,
  defaultAugment,
  preprocessFromMetadata,
  preprocessImage,
  preprocessToMetadata,
  randomHorizontalFlip,
  randomResizedCrop,
  randomRotation,
  randomVerticalFlip,
  resize,
  resizeTo,
  resizedCropParams,
  rotate,
} from '../../src/data/transforms.js';
import { pattern } from './fixtures.js';

const img = (w: number, h: number, seed = 0): RgbImage => ({ width: w, height: h, rgb: pattern(w, h, seed) });
const px = (im: RgbImage, x: number, y: number) => Array.from(im.rgb.subarray((y * im.width + x) * 3, (y * im.width + x) * 3 + 3));

describe('transform specs', () => {
  it('are plain JSON: a round trip through JSON gives the same results', () => {
    const specs = [...defaultAugment(16), randomRotation(20), resize(20), resizeTo(9, 7), centerCrop([6, 8])];
    const pipeline = compose(specs);
    const back = JSON.parse(JSON.stringify(pipeline)) as TransformSpec;
    expect(back).toEqual(pipeline);
    const a = applyTransform(pipeline, img(30, 24), new Rng(5));
    const b = applyTransform(back, img(30, 24), new Rng(5));
    expect(b).toEqual(a);
  });

  it('are validated, naming the spec', () => {
    expect(() => randomHorizontalFlip(1.5)).toThrow(/p must be in \[0, 1\]/);
    expect(() => randomResizedCrop(0)).toThrow(ValueError);
    expect(() => randomResizedCrop(8, { scale: [0.5, 0.2] })).toThrow(/scale must be/);
    expect(() => colorJitter({ hue: 0.7 })).toThrow(/hue 0.7 must be in \[0, 0.5\]/);
    expect(() => checkTransform({ kind: 'sharpen' } as unknown as TransformSpec)).toThrow(/unknown kind 'sharpen'/);
    expect(() => checkTransform(compose([{ kind: 'resize', size: -1 }]))).toThrow(/transforms\[0\].*size must be a positive integer/);
  });

  it('are deterministic from the seed, and the seed matters', () => {
    const aug = compose(defaultAugment(12));
    const src = img(20, 16);
    const out = (seed: number) => applyTransform(aug, src, new Rng(seed));
    expect(out(3)).toEqual(out(3));
    const distinct = new Set(Array.from({ length: 8 }, (_, s) => Buffer.from(out(s).rgb).toString('hex')));
    expect(distinct.size).toBeGreaterThan(4);
  });
});

describe('geometry', () => {
  it('flips exactly, p = 0 never and p = 1 always; p = 0.5 about half the time', () => {
    const src = img(5, 3);
    const h = applyTransform(randomHorizontalFlip(1), src, new Rng(0));
    const v = applyTransform(randomVerticalFlip(1), src, new Rng(0));
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 5; x++) {
        expect(px(h, x, y)).toEqual(px(src, 4 - x, y));
        expect(px(v, x, y)).toEqual(px(src, x, 2 - y));
      }
    }
    expect(applyTransform(randomHorizontalFlip(0), src, new Rng(0))).toBe(src);
    const rng = new Rng(1);
    let flipped = 0;
    for (let i = 0; i < 400; i++) if (applyTransform(randomHorizontalFlip(0.5), src, rng) !== src) flipped++;
    // Binomial(400, 0.5): sd 10; ±50 is 5 sd.
    expect(Math.abs(flipped - 200)).toBeLessThan(50);
  });

  it('random resized crops stay inside the image, within the scale and ratio ranges (up to rounding)', () => {
    const rng = new Rng(7);
    const W = 120;
    const H = 80;
    for (let i = 0; i < 300; i++) {
      const { top, left, width, height } = resizedCropParams(W, H, [0.3, 0.9], [0.75, 4 / 3], rng);
      expect(left >= 0 && top >= 0 && left + width <= W && top + height <= H).toBe(true);
      // w and h are each rounded to integers: allow a pixel either way.
      const area = width * height;
      expect(area).toBeGreaterThanOrEqual(0.3 * W * H - (width + height + 1));
      expect(area).toBeLessThanOrEqual(0.9 * W * H + (width + height + 1));
      expect(width / height).toBeGreaterThanOrEqual(0.75 * (1 - 1 / height) - 1 / height);
      expect(width / height).toBeLessThanOrEqual((4 / 3) * (1 + 1 / height) + 1 / height);
    }
    // No try can fit a 10:1 crop in a square: torchvision's fallback, the central 100 × 10 strip.
    expect(resizedCropParams(100, 100, [0.5, 1], [10, 10], new Rng(0))).toEqual({ top: 45, left: 0, height: 10, width: 100 });
    const out = applyTransform(randomResizedCrop(9), img(30, 20), new Rng(2));
    expect([out.width, out.height]).toEqual([9, 9]);
  });

  it('centre crops as image.ts does and resizes to the shorter side', () => {
    const src = img(11, 7);
    expect(applyTransform(centerCrop(5), src)).toEqual(cropImage(src, 5, 5));
    expect(applyTransform(centerCrop([3, 6]), src)).toEqual(cropImage(src, 6, 3));
    const r = applyTransform(resize(14), src);
    expect([r.width, r.height]).toEqual([22, 14]);
  });

  it('rotation: 0 and 360 are the identity, quarter and half turns are exact pixel moves', () => {
    const sq = img(6, 6);
    expect(rotate(sq, 0)).toEqual(sq);
    expect(rotate(sq, 360)).toEqual(sq);
    expect(applyTransform(randomRotation(0), sq, new Rng(0))).toEqual(sq);
    // Counter-clockwise: out(x, y) = in(w − 1 − y, x).
    const r90 = rotate(sq, 90);
    const r180 = rotate(sq, 180);
    const r270 = rotate(sq, -90);
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        expect(px(r90, x, y)).toEqual(px(sq, 5 - y, x));
        expect(px(r180, x, y)).toEqual(px(sq, 5 - x, 5 - y));
        expect(px(r270, x, y)).toEqual(px(sq, y, 5 - x));
      }
    }
    // A non-square image keeps its size and goes through the bilinear path; a quarter turn about
    // the centre (3, 2) still lands on pixel centres: out(x, y) = in(4 − y, x − 1), else 0.
    const wide = img(6, 4);
    const w90 = rotate(wide, 90);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 6; x++) {
        const sx = 4 - y;
        const sy = x - 1;
        const inside = sx >= 0 && sx < 6 && sy >= 0 && sy < 4;
        expect(px(w90, x, y)).toEqual(inside ? px(wide, sx, sy) : [0, 0, 0]);
      }
    }
  });

  it('rotation by an arbitrary angle keeps a flat image flat inside and fills the corners with 0', () => {
    const flat: RgbImage = { width: 20, height: 20, rgb: new Uint8Array(20 * 20 * 3).fill(200) };
    const r = rotate(flat, 30);
    expect(px(r, 10, 10)).toEqual([200, 200, 200]);
    expect(px(r, 0, 0)).toEqual([0, 0, 0]);
    expect(px(r, 19, 19)).toEqual([0, 0, 0]);
  });
});

describe('colour', () => {
  it('brightness 1 is the identity and 0 is black; saturation 0 is PIL grey; hue shifts rotate the wheel', () => {
    const src = img(7, 5);
    expect(adjustBrightness(src, 1)).toEqual(src);
    expect(adjustBrightness(src, 0).rgb.every((v) => v === 0)).toBe(true);
    const grey = adjustSaturation(src, 0);
    for (let p = 0; p < 35; p++) {
      const [r, g, b] = [src.rgb[3 * p]!, src.rgb[3 * p + 1]!, src.rgb[3 * p + 2]!];
      const l = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
      expect(Array.from(grey.rgb.subarray(3 * p, 3 * p + 3))).toEqual([l, l, l]);
    }
    // Pure red +1/3 turn: H 0 → 85 of 255, pure green. −1/3 wraps to H 171, one step past
    // blue (170) on PIL's 8-bit wheel: i = 4, f = 171·6/255 − 4, so R = round(255 f) = 6.
    const red: RgbImage = { width: 1, height: 1, rgb: Uint8Array.from([255, 0, 0]) };
    expect(Array.from(adjustHue(red, 1 / 3).rgb)).toEqual([0, 255, 0]);
    expect(Array.from(adjustHue(red, -1 / 3).rgb)).toEqual([6, 0, 255]);
    // Grey has no hue to shift.
    const g: RgbImage = { width: 1, height: 1, rgb: Uint8Array.from([90, 90, 90]) };
    expect(adjustHue(g, 0.3)).toEqual(g);
    // Brightness 2 saturates at 255 (extrapolation is clipped).
    expect(Math.max(...adjustBrightness(src, 2).rgb)).toBe(255);
  });

  it('colorJitter with identity ranges is dropped to null, and its output is deterministic', () => {
    expect(colorJitter({ brightness: 0, hue: 0 })).toEqual({ kind: 'colorJitter', brightness: null, contrast: null, saturation: null, hue: null });
    const j = colorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 });
    const src = img(9, 9);
    expect(applyTransform(j, src, new Rng(4))).toEqual(applyTransform(j, src, new Rng(4)));
    expect(applyTransform(j, src, new Rng(4))).not.toEqual(src);
  });
});

describe('preprocess', () => {
  const p: Preprocess = { inputSize: 6, resize: 8, crop: 6, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

  it('round-trips through model metadata; none gives null, a malformed entry a ValueError', () => {
    const m = preprocessToMetadata({ ...p, window: [40, 400] });
    expect(Object.keys(m)).toEqual(['lightconv.preprocess']);
    expect(preprocessFromMetadata({ ...m, other: 'x' })).toEqual({ ...p, window: [40, 400] });
    expect(preprocessFromMetadata(preprocessToMetadata(p))).toEqual(p);
    expect(preprocessFromMetadata({})).toBeNull();
    expect(() => preprocessFromMetadata({ 'lightconv.preprocess': '{' })).toThrow(/not JSON/);
    expect(() => preprocessFromMetadata({ 'lightconv.preprocess': JSON.stringify({ ...p, mean: [0] }) })).toThrow(/mean must be 3 finite numbers/);
  });

  it('evaluation equals loadImageTensor (torchvision Resize → CenterCrop → ToTensor → Normalize)', async () => {
    const src = img(13, 10);
    const ours = preprocessImage(src, p);
    const ref = await loadImageTensor(encodePng(src.rgb, 13, 10), { resize: 8, crop: 6, mean: p.mean, std: p.std });
    expect(ref.shape).toEqual([1, 3, 6, 6]);
    expect(Array.from(ours)).toEqual(Array.from(ref.f32()));
    // One channel: luma, normalised by its own mean and std.
    const grey = preprocessImage(src, { ...p, channels: 1, mean: [0.5], std: [0.25] });
    expect(grey.length).toBe(36);
  });

  it('augmented samples come out inputSize square, deterministic from the rng', () => {
    const aug = defaultAugment(6);
    const src = img(13, 10);
    const a = preprocessImage(src, p, aug, new Rng(9));
    expect(a.length).toBe(3 * 6 * 6);
    expect(preprocessImage(src, p, aug, new Rng(9))).toEqual(a);
    // A rotation alone keeps the 8-high resized image: it is then resized and centre-cropped to 6.
    expect(preprocessImage(src, p, [randomRotation(10)], new Rng(1)).length).toBe(3 * 6 * 6);
  });
});
