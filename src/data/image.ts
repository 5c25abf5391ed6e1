import { decode as decodeJpeg } from 'jpeg-js';
import { LightconvError, ResourceLimitError, ValueError } from '../core/errors.js';
import { checkedSize, getLimits } from '../core/limits.js';
import { Tensor } from '../core/tensor.js';
// pngjs in Node; the browser build swaps in ./png.browser.ts (same pixels, no Node built-ins).
import { inflatedSize, readPng, writePng } from './png.js';

/**
 * Images into model inputs, the way torchvision's Resize → CenterCrop → ToTensor → Normalize
 * does it on PIL images, so a model exported from PyTorch sees the inputs it was trained on.
 */

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

/** ImageNet's per-channel mean (RGB), torchvision's normalisation. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet's per-channel standard deviation (RGB), torchvision's normalisation. */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/** Width and height from a PNG's IHDR chunk, which the format requires to come first, and where its pixel data is. */
function pngSize(bytes: Uint8Array): { width: number; height: number; scanlineBytes: number; idat: Uint8Array[] } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const isIhdr = bytes.length >= 24 && String.fromCharCode(...bytes.subarray(12, 16)) === 'IHDR';
  if (!isIhdr) throw new ValueError('decodeImage: corrupt PNG: no IHDR header chunk');
  if (v.getUint32(8) !== 13) throw new ValueError(`decodeImage: corrupt PNG: IHDR chunk of ${v.getUint32(8)} bytes (the format's is 13)`);
  const idat: Uint8Array[] = [];
  // The decoder would act on a later IHDR too, so the one checked must be the only one.
  for (let p = 33; p + 8 <= bytes.length; p += 12 + v.getUint32(p)) {
    const type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    if (type === 'IHDR') throw new ValueError('decodeImage: corrupt PNG: more than one IHDR chunk');
    if (type === 'IDAT') idat.push(bytes.subarray(p + 8, Math.min(bytes.length, p + 8 + v.getUint32(p))));
  }
  const width = v.getUint32(16);
  const height = v.getUint32(20);
  return { width, height, scanlineBytes: pngScanlineBytes(width, height, bytes[24]!, bytes[25]!, bytes[28]!), idat };
}

/** Bytes of filtered scanlines (a filter byte per row) that the IDAT stream must inflate to; Adam7 in 7 passes. */
function pngScanlineBytes(width: number, height: number, bitDepth: number, colorType: number, interlace: number): number {
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType] ?? 1;
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * channels * bitDepth) / 8)) : 0);
  if (interlace !== 1) return rows(width, height);
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;
  return passes.reduce((sum, [x0, y0, dx, dy]) => sum + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)), 0);
}

/** Deflate shrinks data at most about 1032:1; a stream smaller than that bound cannot hold the declared pixels. */
const DEFLATE_MAX_RATIO = 1032;

/** A PNG whose IDAT data cannot fill the scanlines IHDR declares is refused before decoding (pngjs would pad it). */
function checkPngData(png: { width: number; height: number; scanlineBytes: number; idat: Uint8Array[] }): void {
  const held = png.idat.reduce((n, c) => n + c.length, 0);
  const what = `decodeImage: corrupt PNG: IHDR declares ${png.width}×${png.height} (${png.scanlineBytes.toLocaleString('en-US')} bytes of scanlines)`;
  if (png.scanlineBytes > DEFLATE_MAX_RATIO * held + 64) throw new ValueError(`${what}, but its IDAT data is only ${held} bytes (truncated file?)`);
  const joined = new Uint8Array(held);
  let at = 0;
  for (const c of png.idat) joined.set(c, (at += c.length) - c.length);
  const got = inflatedSize(joined, png.scanlineBytes);
  if (got >= 0 && got < png.scanlineBytes) throw new ValueError(`${what}, but its IDAT data inflates to only ${got.toLocaleString('en-US')} (truncated file?)`);
}

/**
 * Width and height from a JPEG's start-of-frame segment, found by walking the marker segments up
 * to the image data. A second frame header is refused: the decoder would size its buffers from
 * the last one, so the one checked must be the only one.
 */
function jpegSize(bytes: Uint8Array): { width: number; height: number; huffman: boolean } {
  let p = 2;
  let size: { width: number; height: number; huffman: boolean } | undefined;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) break;
    const marker = bytes[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2; // markers without a length
      continue;
    }
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (p + 9 > bytes.length) break;
      if (size) throw new ValueError('decodeImage: corrupt JPEG: more than one frame header (SOF)');
      // SOF9 and up are arithmetic-coded (the decoder refuses them); the others are Huffman-coded.
      size = { height: (bytes[p + 5]! << 8) | bytes[p + 6]!, width: (bytes[p + 7]! << 8) | bytes[p + 8]!, huffman: marker < 0xc9 };
    }
    if (marker === 0xda) break; // the image data begins
    p += 2 + ((bytes[p + 2]! << 8) | bytes[p + 3]!);
  }
  if (size) return size;
  throw new ValueError('decodeImage: corrupt JPEG: no frame header (SOF) before the image data');
}

/**
 * A Huffman-coded JPEG codes every 8×8 block of its first component with at least one bit (a DC
 * code, in baseline and in a progressive DC scan alike): a file with fewer bytes than blocks / 8
 * cannot hold the declared size, however simple the picture.
 */
function checkJpegData(bytes: Uint8Array, jpg: { width: number; height: number; huffman: boolean }): void {
  if (!jpg.huffman) return;
  const blocks = Math.ceil(jpg.width / 8) * Math.ceil(jpg.height / 8);
  if (bytes.length < blocks / 8) {
    throw new ValueError(`decodeImage: corrupt JPEG: its frame header declares ${jpg.width}×${jpg.height} (${blocks.toLocaleString('en-US')} blocks), more than ${bytes.length} bytes can code (truncated or crafted file?)`);
  }
}

/**
 * Decodes a PNG or JPEG (sniffed from its first bytes) to 8-bit RGB. Grayscale is replicated
 * to three channels and alpha is dropped, as PIL's convert('RGB') does; 16-bit PNGs are scaled
 * to 8 bits. The size in the header is checked against the tensor budget before decoding.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { decodeImage } from 'lightconv';
 *
 * const { width, height, rgb } = decodeImage(readFileSync('cat.png'));
 * ```
 */
export function decodeImage(bytes: Uint8Array): RgbImage {
  const isPng = startsWith(bytes, PNG_MAGIC);
  const isJpeg = startsWith(bytes, [0xff, 0xd8, 0xff]);
  if (!isPng && !isJpeg) {
    // The file's bytes are not shown: the message may reach a log, and the file may not be the user's.
    throw new ValueError(`decodeImage: not a PNG or JPEG (${bytes.length === 0 ? 'empty' : 'unrecognised signature'})`);
  }
  const format = isPng ? 'PNG' : 'JPEG';
  const header = isPng ? pngSize(bytes) : jpegSize(bytes);
  const { width, height } = header;
  if (width === 0 || height === 0) throw new ValueError(`decodeImage: ${format} header says ${width}×${height}`);
  // Budgets from the header alone, before the decoder allocates anything; the decoders hold RGBA.
  checkImagePixels(width, height, `decodeImage (${format} of ${width}×${height})`);
  checkedSize([height, width, 4], `decodeImage (${format} of ${width}×${height})`, 1);
  // Data too short for the declared size: refused here (the decoders would pad it, or spend
  // seconds and gigabytes before failing).
  if ('idat' in header) checkPngData(header);
  else checkJpegData(bytes, header);
  try {
    return isPng ? decodePng(bytes) : decodeJpg(bytes, width, height);
  } catch (e) {
    if (e instanceof LightconvError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    // pngjs' wording for a file cut short.
    const why = msg.includes('read requests') ? 'the data ends early (truncated file?)' : msg;
    throw new ValueError(`decodeImage: corrupt ${format}: ${why}`);
  }
}

function decodePng(bytes: Uint8Array): RgbImage {
  // pngjs expands palette, grayscale and 16-bit images to 8-bit RGBA.
  const png = readPng(bytes);
  const n = png.width * png.height;
  if (png.data.length < 4 * n) throw new Error(`pixel data is ${png.data.length} bytes, expected ${4 * n}`);
  const rgb = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = png.data[4 * i]!;
    rgb[3 * i + 1] = png.data[4 * i + 1]!;
    rgb[3 * i + 2] = png.data[4 * i + 2]!;
  }
  return { width: png.width, height: png.height, rgb };
}

function decodeJpg(bytes: Uint8Array, width: number, height: number): RgbImage {
  // Our budgets were checked from the header; jpeg-js' own limits are set from the same budgets as a
  // second line (it sizes buffers from every frame header it meets). tolerantDecoding off: a missing
  // block is an error, not a block of zeros.
  const img = decodeJpeg(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    tolerantDecoding: false,
    maxResolutionInMP: Math.max(Math.ceil((width * height) / 1e6), 1),
    maxMemoryUsageInMB: Math.ceil(getLimits().maxTensorBytes / 2 ** 20) + 64,
  });
  if (img.data.length !== 3 * img.width * img.height) throw new Error(`pixel data is ${img.data.length} bytes for ${img.width}×${img.height}`);
  return { width: img.width, height: img.height, rgb: img.data };
}

/**
 * Throws ResourceLimitError when width × height is over `maxImagePixels` (src/core/limits.ts).
 * Called with the dimensions from a file's header, before anything is decoded.
 */
export function checkImagePixels(width: number, height: number, what: string): void {
  const max = getLimits().maxImagePixels;
  if (width * height > max) {
    throw new ResourceLimitError(
      `${what}: ${(width * height).toLocaleString('en-US')} pixels, over the maxImagePixels budget of ${max.toLocaleString('en-US')} (setLimits raises it)`,
    );
  }
}

/** Rejects an image whose pixel buffer does not match its size (images may be built by hand). */
function checkImage(img: RgbImage, what: string): void {
  if (img.rgb.length !== img.width * img.height * 3) {
    throw new ValueError(`${what}: image of ${img.width}×${img.height} has ${img.rgb.length} bytes, expected ${img.width * img.height * 3}`);
  }
}

/**
 * Encodes 8-bit RGB as a PNG file.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { encodePng } from 'lightconv';
 *
 * const rgb = new Uint8Array(4 * 4 * 3).fill(255); // a white 4×4 image
 * writeFileSync('white.png', encodePng(rgb, 4, 4));
 * ```
 */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  checkedSize([height, width, 3], 'encodePng', 1);
  if (rgb.length !== width * height * 3) throw new ValueError(`encodePng: ${rgb.length} bytes for ${width}×${height} RGB (needs ${width * height * 3})`);
  return writePng(rgb, width, height);
}

// ---------------------------------------------------------------------------------------------
// Resampling, as PIL's Image.resize(…, BILINEAR) does it (src/libImaging/Resample.c)

/** PIL keeps 8-bit resampling weights as fixed point with this many fraction bits. */
const PRECISION_BITS = 22;

/**
 * Weights for resampling one axis from `inSize` to `outSize` with PIL's bilinear (triangle)
 * filter. When shrinking, the triangle is widened by the scale factor so every input pixel
 * contributes (antialiasing), as PIL does and as torchvision's Resize on PIL images inherits.
 * Per output pixel: the first input index and the fixed-point weights, which sum to ~2^22.
 */
function bilinearWeights(inSize: number, outSize: number): { first: Int32Array; count: Int32Array; weights: Int32Array[] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(1, scale);
  const support = filterScale; // the triangle's support is 1 pixel before widening
  const invScale = 1 / filterScale; // multiplied, not divided, to round exactly as PIL does
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights: Int32Array[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    // Math.trunc copies C's (int) cast, which PIL uses for this rounding.
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const w = new Float64Array(Math.max(0, hi - lo));
    let sum = 0;
    for (let i = 0; i < w.length; i++) {
      const x = Math.abs((i + lo - center + 0.5) * invScale);
      w[i] = x < 1 ? 1 - x : 0;
      sum += w[i]!;
    }
    const fixed = new Int32Array(w.length);
    for (let i = 0; i < w.length; i++) fixed[i] = Math.trunc((sum !== 0 ? w[i]! / sum : w[i]!) * (1 << PRECISION_BITS) + 0.5);
    first[o] = lo;
    count[o] = w.length;
    weights.push(fixed);
  }
  return { first, count, weights };
}

/** A fixed-point sum back to 0..255 (the rounding half was added up front). */
function clip8(acc: number): number {
  if (acc <= 0) return 0;
  const v = acc >> PRECISION_BITS;
  return v > 255 ? 255 : v;
}

/**
 * Resamples along x (`axis` 0) or y (`axis` 1) to `outSize`, rounding to 8 bits after the pass
 * as PIL does between its horizontal and vertical passes.
 */
function resampleAxis(img: RgbImage, outSize: number, axis: 0 | 1): RgbImage {
  const { width, height, rgb } = img;
  const inSize = axis === 0 ? width : height;
  const outW = axis === 0 ? outSize : width;
  const outH = axis === 0 ? height : outSize;
  const { first, count, weights } = bilinearWeights(inSize, outSize);
  // Step between neighbours along the resampled axis, in bytes.
  const step = axis === 0 ? 3 : 3 * width;
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = axis === 0 ? x : y;
      const w = weights[o]!;
      const base = axis === 0 ? (y * width + first[o]!) * 3 : (first[o]! * width + x) * 3;
      let r = 1 << (PRECISION_BITS - 1);
      let g = r;
      let b = r;
      for (let i = 0, p = base; i < count[o]!; i++, p += step) {
        r += rgb[p]! * w[i]!;
        g += rgb[p + 1]! * w[i]!;
        b += rgb[p + 2]! * w[i]!;
      }
      const q = (y * outW + x) * 3;
      out[q] = clip8(r);
      out[q + 1] = clip8(g);
      out[q + 2] = clip8(b);
    }
  }
  return { width: outW, height: outH, rgb: out };
}

/** Resizes to exactly width × height with PIL's antialiased bilinear filter (x pass, then y). */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  checkImage(img, 'resizeBilinear');
  checkedSize([height, width, 3], 'resizeBilinear', 1);
  if (width < 1 || height < 1) throw new ValueError(`resizeBilinear: target ${width}×${height} must be at least 1×1`);
  let out = img;
  if (width !== img.width) out = resampleAxis(out, width, 0);
  if (height !== img.height) out = resampleAxis(out, height, 1);
  return out;
}

/**
 * torchvision's Resize(size) with an int: the shorter side becomes `size`, the longer one
 * int(size · long / short), truncated as Python's int() does.
 *
 * @example
 * ```ts
 * import { centerCrop, readImage, resizeShorter } from 'lightconv';
 *
 * const img = centerCrop(resizeShorter(await readImage('cat.jpg'), 256), 224, 224);
 * ```
 */
export function resizeShorter(img: RgbImage, size: number): RgbImage {
  if (!Number.isInteger(size) || size < 1) throw new ValueError(`resizeShorter: size ${size} must be a positive integer`);
  const { width: w, height: h } = img;
  const long = Math.trunc((size * Math.max(w, h)) / Math.min(w, h));
  return w <= h ? resizeBilinear(img, size, long) : resizeBilinear(img, long, size);
}

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision's CenterCrop: the offset is round((size − crop) / 2) with Python's rounding;
 * a crop larger than the image pads it with black, the odd pixel going to the right/bottom.
 *
 * @example
 * ```ts
 * import { centerCrop, readImage } from 'lightconv';
 *
 * const square = centerCrop(await readImage('cat.jpg'), 224, 224);
 * ```
 */
export function centerCrop(img: RgbImage, width: number, height: number): RgbImage {
  checkImage(img, 'centerCrop');
  checkedSize([height, width, 3], 'centerCrop', 1);
  const offset = (size: number, crop: number) => (crop > size ? -Math.floor((crop - size) / 2) : roundHalfEven((size - crop) / 2));
  const left = offset(img.width, width);
  const top = offset(img.height, height);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      if (sx < 0 || sx >= img.width) continue;
      const s = (sy * img.width + sx) * 3;
      const d = (y * width + x) * 3;
      out[d] = img.rgb[s]!;
      out[d + 1] = img.rgb[s + 1]!;
      out[d + 2] = img.rgb[s + 2]!;
    }
  }
  return { width, height, rgb: out };
}

export interface NormalizeOptions {
  /**
   * 3 (RGB, the default) or 1: luma as PIL's convert('L') / torchvision's Grayscale computes it,
   * taken from the image as given (in loadImageTensor: after Resize and CenterCrop).
   */
  readonly channels?: 1 | 3;
  /** Per-channel mean subtracted after scaling to [0, 1]; default 0 (no normalization). */
  readonly mean?: readonly number[];
  /** Per-channel divisor; default 1. */
  readonly std?: readonly number[];
}

/** PIL's RGB → L conversion (ITU-R 601-2 luma in 16-bit fixed point, rounded). */
function luma(rgb: Uint8Array, i: number): number {
  return (rgb[3 * i]! * 19595 + rgb[3 * i + 1]! * 38470 + rgb[3 * i + 2]! * 7471 + 0x8000) >> 16;
}

/**
 * A float32 [1, C, H, W] tensor with (v / 255 − mean) / std per channel. Each step is rounded
 * to float32 as torchvision's ToTensor + Normalize do, so the values match PyTorch's bit for bit.
 *
 * @example
 * ```ts
 * import { IMAGENET_MEAN, IMAGENET_STD, readImage, toTensor } from 'lightconv';
 *
 * const x = toTensor(await readImage('cat.png'), { mean: IMAGENET_MEAN, std: IMAGENET_STD }); // [1, 3, H, W]
 * ```
 */
export function toTensor(img: RgbImage, opts: NormalizeOptions = {}): Tensor {
  checkImage(img, 'toTensor');
  const channels = opts.channels ?? 3;
  const mean = opts.mean ?? new Array<number>(channels).fill(0);
  const std = opts.std ?? new Array<number>(channels).fill(1);
  if (mean.length !== channels || std.length !== channels) {
    throw new ValueError(`toTensor: mean and std need ${channels} values each, got ${mean.length} and ${std.length}`);
  }
  if (std.some((s) => !(s !== 0 && Number.isFinite(s)))) throw new ValueError(`toTensor: std [${std.join(', ')}] must be finite and non-zero`);
  const hw = img.width * img.height;
  const shape = [1, channels, img.height, img.width];
  const out = new Float32Array(checkedSize(shape, 'toTensor'));
  const f = Math.fround;
  for (let c = 0; c < channels; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    for (let i = 0; i < hw; i++) {
      const v = channels === 1 ? luma(img.rgb, i) : img.rgb[3 * i + c]!;
      out[c * hw + i] = f(f(v / 255) - m) / s;
    }
  }
  return new Tensor(out, shape);
}

/** Options of `loadImageTensor`: torchvision's evaluation transform by default (Resize 256, CenterCrop 224). */
export interface LoadImageOptions extends NormalizeOptions {
  /** Shorter side after resizing (torchvision Resize(int)); null skips resizing. Default 256. */
  readonly resize?: number | null;
  /** Center crop: a side for a square, or [height, width] as torchvision's CenterCrop takes it; null skips. Default 224. */
  readonly crop?: number | readonly [number, number] | null;
}

/**
 * Bytes or a file path → a normalized [1, C, H, W] float32 tensor: decode, resize the shorter
 * side, center-crop, scale and normalize. Mean and std default to ImageNet's for 3 channels
 * and to none (0 and 1) for 1 channel.
 *
 * @example
 * ```ts
 * import { loadImageTensor } from 'lightconv';
 * import { loadOnnx } from 'lightconv/onnx';
 *
 * const x = await loadImageTensor('cat.jpg'); // [1, 3, 224, 224], ImageNet-normalised
 * const model = await loadOnnx('mobilenet_v3_small.onnx');
 * const logits = Object.values(await model.run(x))[0]!;
 * ```
 */
export async function loadImageTensor(source: Uint8Array | string, opts: LoadImageOptions = {}): Promise<Tensor> {
  // node:fs is imported (by readRegularFile) only when a path is given, so the module loads in browsers.
  const bytes = typeof source === 'string' ? await (await import('../io/files.js')).readRegularFile(source) : source;
  let img: RgbImage;
  try {
    img = decodeImage(bytes);
  } catch (e) {
    // A decode error names the file it came from (decode.ts imports this module: loaded lazily).
    if (typeof source === 'string') throw (await import('./decode.js')).withFile(e, source);
    throw e;
  }
  const resize = opts.resize === undefined ? 256 : opts.resize;
  const crop = opts.crop === undefined ? 224 : opts.crop;
  if (resize !== null) img = resizeShorter(img, resize);
  if (crop !== null) {
    const [h, w] = typeof crop === 'number' ? [crop, crop] : crop;
    img = centerCrop(img, w, h);
  }
  const rgb = (opts.channels ?? 3) === 3;
  return toTensor(img, {
    channels: opts.channels ?? 3,
    mean: opts.mean ?? (rgb ? IMAGENET_MEAN : [0]),
    std: opts.std ?? (rgb ? IMAGENET_STD : [1]),
  });
}
