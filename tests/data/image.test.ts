import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { ResourceLimitError, ValueError } from '../../src/core/errors.js';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  type RgbImage,
  centerCrop,
  decodeImage,
  encodePng,
  loadImageTensor,
  resizeBilinear,
  resizeShorter,
  toTensor,
} from '../../src/data/image.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * An 11×7 test image; the expected values below come from PIL 9.4 / torchvision 0.14 on the
 * same pixels: r = (37x + 11y) & 255, g = (13xy + 7) & 255, b = (5x² + 29y) & 255.
 */
function testImage(): RgbImage {
  const width = 11;
  const height = 7;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 37 + y * 11) & 255;
      rgb[i + 1] = (x * y * 13 + 7) & 255;
      rgb[i + 2] = (x * x * 5 + y * 29) & 255;
    }
  }
  return { width, height, rgb };
}

/** A PNG written by pngjs with the given color type (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA). */
function pngOf(width: number, height: number, colorType: 0 | 2 | 4 | 6, data: number[]): Uint8Array {
  const png = Object.assign(new PNG(), { width, height, data: Buffer.from(data) });
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: colorType >= 4 });
}

describe('decodeImage', () => {
  it('decodes RGB PNGs exactly (round trip through encodePng)', () => {
    const img = testImage();
    const back = decodeImage(encodePng(img.rgb, img.width, img.height));
    expect([back.width, back.height]).toEqual([11, 7]);
    expect(back.rgb).toEqual(img.rgb);
  });

  it('replicates grayscale and drops alpha, as PIL convert("RGB") does', () => {
    expect(Array.from(decodeImage(pngOf(3, 1, 0, [0, 37, 250])).rgb)).toEqual([0, 0, 0, 37, 37, 37, 250, 250, 250]);
    expect(Array.from(decodeImage(pngOf(2, 1, 4, [10, 0, 20, 255])).rgb)).toEqual([10, 10, 10, 20, 20, 20]);
    expect(Array.from(decodeImage(pngOf(2, 1, 6, [1, 2, 3, 0, 4, 5, 6, 128])).rgb)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('expands palette PNGs with transparency like PIL', async () => {
    const img = decodeImage(await readFile(join(FIXTURES, 'palette_trns.png')));
    expect([img.width, img.height]).toEqual([5, 4]);
    expect(hex(img.rgb)).toBe(
      'ff000000ff000000ff0a141eff000000ff000000ff0a141eff000000ff000000ff0a141eff000000ff000000ff0a141eff000000ff000000ff0a141e',
    );
  });

  it('decodes grayscale JPEGs within one level of PIL (libjpeg)', async () => {
    const img = decodeImage(await readFile(join(FIXTURES, 'gray.jpg')));
    expect([img.width, img.height]).toEqual([8, 6]);
    const pil = Buffer.from('142d465f7891a9c31d374f68819bb3cd264058718aa4bcd62e48607a92acc4de38526a849db6cee8405a728ca4bed6f0', 'hex');
    for (let i = 0; i < pil.length; i++) {
      expect(img.rgb[3 * i]).toBe(img.rgb[3 * i + 1]);
      expect(img.rgb[3 * i]).toBe(img.rgb[3 * i + 2]);
      expect(Math.abs(img.rgb[3 * i]! - pil[i]!)).toBeLessThanOrEqual(1);
    }
  });

  it('decodes color JPEGs close to the encoded pixels', () => {
    const w = 16;
    const rgba = new Uint8Array(w * w * 4);
    for (let i = 0; i < w * w; i++) rgba.set([40 + (i % w) * 8, 60 + Math.floor(i / w) * 6, 128, 255], 4 * i);
    const img = decodeImage(encodeJpeg({ width: w, height: w, data: rgba }, 95).data);
    expect([img.width, img.height]).toEqual([w, w]);
    for (let i = 0; i < w * w; i++) {
      for (let c = 0; c < 3; c++) expect(Math.abs(img.rgb[3 * i + c]! - rgba[4 * i + c]!)).toBeLessThanOrEqual(4);
    }
  });

  it('rejects other formats and corrupt data with a ValueError', () => {
    const gif = new TextEncoder().encode('GIF89a....');
    expect(() => decodeImage(gif)).toThrow(ValueError);
    expect(() => decodeImage(gif)).toThrow(/not a PNG or JPEG \(unrecognised signature\)/);
    expect(() => decodeImage(gif)).not.toThrow(/47 49 46/); // no bytes of the file in messages
    expect(() => decodeImage(new Uint8Array(0))).toThrow(/not a PNG or JPEG \(empty\)/);

    const png = encodePng(testImage().rgb, 11, 7);
    expect(() => decodeImage(png.subarray(0, 60))).toThrow(/corrupt PNG: .*truncated file/);
    expect(() => decodeImage(png.subarray(0, 20))).toThrow(/corrupt PNG: no IHDR/);
    const flipped = Uint8Array.from(png);
    flipped[45] = flipped[45]! ^ 0xff; // inside the compressed pixel data: the CRC no longer matches
    expect(() => decodeImage(flipped)).toThrow(/corrupt PNG/);

    const jpeg = Uint8Array.from(encodeJpeg({ width: 8, height: 8, data: new Uint8Array(256).fill(90) }, 90).data);
    expect(() => decodeImage(jpeg.subarray(0, jpeg.length / 2))).toThrow(/corrupt JPEG/);
    expect(() => decodeImage(Uint8Array.from([0xff, 0xd8, 0xff, 0xda, 0, 2]))).toThrow(/corrupt JPEG: no frame header/);
  });

  it('checks the header size against the budget before decoding', () => {
    const png = Uint8Array.from(encodePng(new Uint8Array(3), 1, 1));
    new DataView(png.buffer).setUint32(16, 100_000);
    new DataView(png.buffer).setUint32(20, 100_000);
    expect(() => decodeImage(png)).toThrow(ResourceLimitError);
    expect(() => decodeImage(png)).toThrow(/PNG of 100000×100000/);

    // A JPEG whose frame header claims 65535×65535.
    const sof = [0xff, 0xc0, 0, 11, 8, 0xff, 0xff, 0xff, 0xff, 1, 1, 0x11, 0];
    expect(() => decodeImage(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 2, ...sof]))).toThrow(ResourceLimitError);
  });
});

describe('resizing and cropping, as torchvision does on PIL images', () => {
  it('resizeShorter matches PIL bilinear (antialiased) downscaling exactly', () => {
    const out = resizeShorter(testImage(), 3);
    expect([out.width, out.height]).toEqual([4, 3]); // int(3 · 11 / 7) = 4
    expect(hex(out.rgb)).toBe('331424902f62814e90515a804b3462a47f94818477697c7f6354a0b37fac607778816f76');
  });

  it('resizeBilinear matches PIL when enlarging one axis and shrinking the other', () => {
    const out = resizeBilinear(testImage(), 13, 4);
    expect(hex(out.rgb)).toBe(
      '06070f220c1342121d61182f801e47a02366bf298cde2fbb4c359c1d3a6b3c40705c439e783f8917073c331c4053334a724a5c916074b17793d08eb9efa5ac5d8a562e8b594da29d6d9aac8949302b0772472e76675980868492a5a0aac593c1e44dbb68793d397253426c8f617f8b818c549d4c663c079f583ea3787aad97b6bfb6a7d7d639d1f56b283ca74d348780535ebc72689d92834aae4993',
    );
  });

  it('resizeShorter keeps the aspect ratio, truncating the long side', () => {
    const blank = (width: number, height: number): RgbImage => ({ width, height, rgb: new Uint8Array(width * height * 3) });
    const size = (img: RgbImage) => [img.width, img.height];
    expect(size(resizeShorter(blank(451, 300), 73))).toEqual([109, 73]); // 73 · 451 / 300 = 109.74
    expect(size(resizeShorter(blank(300, 451), 256))).toEqual([256, 384]);
    expect(size(resizeShorter(blank(5, 5), 2))).toEqual([2, 2]);
    expect(() => resizeShorter(blank(5, 5), 0)).toThrow(ValueError);
  });

  it('a constant image stays constant at any scale', () => {
    const img: RgbImage = { width: 37, height: 23, rgb: new Uint8Array(37 * 23 * 3).fill(201) };
    expect(resizeShorter(img, 5).rgb.every((v) => v === 201)).toBe(true);
    expect(resizeShorter(img, 60).rgb.every((v) => v === 201)).toBe(true);
  });

  it('centerCrop rounds the offset half to even and pads small images with black', () => {
    const img = testImage();
    // Offsets round((11 − 4) / 2) = 4 (3.5 → 4) and round((7 − 3) / 2) = 2.
    expect(hex(centerCrop(img, 4, 3).rgb)).toBe('aa6f8acf89b7f4a3ee19bd2fb5a3a7dacad4fff10b24184cc0d7c4e50bf10a3f282f7369');
    expect(hex(centerCrop(img, 5, 10).rgb)).toBe(
      '0000000000000000000000000000006f072d940750b9077dde07b40307f57a2e4a9f3b6dc4489ae955d10e6212855567aa6f8acf89b7f4a3ee19bd2f907c84b5a3a7dacad4fff10b24184c9ba3a1c0d7c4e50bf10a3f282f7369a6cabecb0be1f04c0e158d453ace86b1f1dbd63ffefb8d2b20db624529a3000000000000000000000000000000000000000000000000000000000000',
    );
    expect(hex(centerCrop(img, 14, 2).rgb)).toBe(
      '00000016073a3b213f603b4e855567aa6f8acf89b7f4a3ee19bd2f3ed77a63f1cf880b2e000000000000000000210757462e5c6b556b907c84b5a3a7dacad4fff10b24184c493f976e66ec938d4b000000000000',
    );
  });
});

describe('toTensor and loadImageTensor', () => {
  it('makes a planar [1, 3, H, W] float32 tensor of v / 255', () => {
    const t = toTensor({ width: 2, height: 1, rgb: Uint8Array.from([255, 0, 51, 102, 153, 204]) });
    expect(t.shape).toEqual([1, 3, 1, 2]);
    expect(t.dtype).toBe('float32');
    expect(t.toArray()).toEqual([1, 0.4, 0, 0.6, 0.2, 0.8].map(Math.fround));
  });

  it('normalizes per channel', () => {
    const t = toTensor({ width: 1, height: 1, rgb: Uint8Array.from([255, 0, 128]) }, { mean: IMAGENET_MEAN, std: IMAGENET_STD });
    expect(t.get(0, 0, 0, 0)).toBeCloseTo((1 - 0.485) / 0.229, 6);
    expect(t.get(0, 1, 0, 0)).toBeCloseTo(-0.456 / 0.224, 6);
    expect(t.get(0, 2, 0, 0)).toBeCloseTo((128 / 255 - 0.406) / 0.225, 6);
    expect(() => toTensor({ width: 1, height: 1, rgb: new Uint8Array(3) }, { std: [1, 0, 1] })).toThrow(ValueError);
  });

  // torchvision: Compose([Resize(5), CenterCrop(4), ToTensor(), Normalize(ImageNet mean, std)])
  const TORCHVISION = [
    0.09118937700986862, 1.1186745166778564, -0.3198048174381256, -1.2959158420562744, 0.31381115317344666, 1.3412963151931763,
    -0.09718302637338638, -1.0732940435409546, 0.5878071784973145, 1.444044828414917, -0.16568204760551453, -0.7992978692054749,
    0.8618032336235046, 0.9645517468452454, -1.467163324356079, -0.5253018736839294, -1.6505601406097412, -1.5280112028121948,
    -1.4054620265960693, -1.3004200458526611, -0.7226889729499817, -0.14495795965194702, 0.4327732026576996, 0.9579832553863525,
    0.39775919914245605, 0.8529412150382996, 0.18767505884170532, -0.03991595283150673, 0.6253502368927002, -0.8102239966392517,
    0.18767505884170532, 0.1526610553264618, -0.6018299460411072, 0.5833553075790405, 1.1933770179748535, 0.1650545448064804,
    0.008191797882318497, 1.1933770179748535, 0.32191726565361023, 0.28705888986587524, 0.7402180433273315, 1.158518671989441,
    -0.5495423674583435, 0.7925056219100952, 1.472244143486023, 0.5659261345863342, -0.1661001294851303, 0.5136385560035706,
  ];

  it('loadImageTensor reproduces the torchvision pipeline bit for bit', async () => {
    const img = testImage();
    const t = await loadImageTensor(encodePng(img.rgb, img.width, img.height), { resize: 5, crop: 4 });
    expect(t.shape).toEqual([1, 3, 4, 4]);
    expect(t.toArray()).toEqual(TORCHVISION);
  });

  it('one channel is PIL luma; a [height, width] crop is torchvision order', async () => {
    // torchvision: Compose([Resize(5), CenterCrop((3, 4)), Grayscale(1), ToTensor(), Normalize([0.5], [0.25])])
    const expected = [
      -0.4627450704574585, 0.24313735961914062, 0.07058835029602051, 0.07058835029602051, 0.27450990676879883, 0.7921569347381592,
      -0.16470587253570557, -0.3215686082839966, 0.5568628311157227, -0.2745097875595093, -0.4784313440322876, -0.18039214611053467,
    ];
    const img = testImage();
    const opts = { resize: 5, crop: [3, 4], channels: 1, mean: [0.5], std: [0.25] } as const;
    const t = await loadImageTensor(encodePng(img.rgb, img.width, img.height), opts);
    expect(t.shape).toEqual([1, 1, 3, 4]);
    expect(t.toArray()).toEqual(expected);
    expect(() => toTensor(img, { channels: 1, mean: IMAGENET_MEAN })).toThrow(/need 1 values each, got 3/);
  });

  it('loadImageTensor reads a path and defaults to Resize(256) + CenterCrop(224)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lightconv-image-'));
    try {
      const file = join(dir, 'img.png');
      const img = testImage();
      await writeFile(file, encodePng(img.rgb, img.width, img.height));
      expect((await loadImageTensor(file)).shape).toEqual([1, 3, 224, 224]);
      const raw = await loadImageTensor(file, { resize: null, crop: null, mean: [0, 0, 0], std: [1, 1, 1] });
      expect(raw.shape).toEqual([1, 3, 7, 11]);
      expect(raw.get(0, 0, 1, 2)).toBeCloseTo((2 * 37 + 11) / 255, 6);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('encodePng', () => {
  it('writes an RGB PNG and checks the byte count', () => {
    const png = encodePng(Uint8Array.from([1, 2, 3, 4, 5, 6]), 2, 1);
    expect(Array.from(png.subarray(0, 4))).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(png[25]).toBe(2); // IHDR colour type: truecolour without alpha
    expect(Array.from(decodeImage(png).rgb)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(() => encodePng(new Uint8Array(5), 2, 1)).toThrow(/5 bytes for 2×1 RGB/);
  });
});
