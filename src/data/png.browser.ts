import { decode, encode } from 'fast-png';
import { ValueError } from '../core/errors.js';

/**
 * PNG codec, browser side (the package's browser build uses this in place of ./png.ts): fast-png,
 * pure JavaScript over fflate, so no Node built-in is needed and decoding stays synchronous. The
 * expansion to 8-bit RGBA repeats pngjs' rules so both builds give the same pixels: palette
 * entries looked up; a tRNS colour key turns matching pixels to 0 in every channel; other depths
 * scaled by floor(v · 255 / (2^depth − 1) + 0.5).
 */

/** Decodes a PNG to 8-bit RGBA, pixel for pixel as ./png.ts (pngjs) does. */
export function readPng(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  // IHDR's bit depth and interlace method (bytes 24 and 28): fast-png 8 de-interlaces Adam7 only at
  // 8 and 16 bits per sample, so the rarer low-depth interlaced files are refused by name here.
  if (bytes.length > 28 && bytes[28] === 1 && bytes[24]! < 8) {
    throw new ValueError(`decodeImage: interlaced PNG at ${bytes[24]} bits per sample is not supported in the browser build (re-save it non-interlaced or at 8 bits)`);
  }
  const png = decode(bytes);
  const { width, height, depth, channels } = png;
  const n = width * height;
  const out = new Uint8Array(4 * n);
  // fast-png keeps depths below 8 packed, each row starting on a byte boundary.
  const rowBytes = Math.ceil((depth * channels * width) / 8);
  const src = png.data;
  const sample = (y: number, i: number): number => {
    if (depth >= 8) return src[y * width * channels + i]!;
    const bit = i * depth;
    const byte = src[y * rowBytes + (bit >> 3)]!;
    return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  if (png.palette) {
    const palette = png.palette;
    for (let y = 0, p = 0; y < height; y++) {
      for (let x = 0; x < width; x++, p++) {
        const k = sample(y, x);
        const c = palette[k];
        if (!c) throw new Error(`index ${k} not in palette`);
        out[4 * p] = c[0]!;
        out[4 * p + 1] = c[1]!;
        out[4 * p + 2] = c[2]!;
        out[4 * p + 3] = c.length > 3 ? c[3]! : (png.transparency?.[k] ?? 255);
      }
    }
    return { width, height, data: out };
  }
  const max = 2 ** depth - 1;
  const scale = (v: number) => (depth === 8 ? v : Math.floor((v * 255) / max + 0.5));
  const key = png.transparency;
  const v = new Array<number>(4);
  for (let y = 0, p = 0; y < height; y++) {
    for (let x = 0; x < width; x++, p++) {
      for (let c = 0; c < channels; c++) v[c] = sample(y, x * channels + c);
      const gray = channels <= 2;
      const r = v[0]!;
      const g = gray ? r : v[1]!;
      const b = gray ? r : v[2]!;
      const a = channels === 2 ? v[1]! : channels === 4 ? v[3]! : max;
      const keyed = key !== undefined && (gray ? key[0] === r : key[0] === r && key[1] === g && key[2] === b);
      out[4 * p] = keyed ? 0 : scale(r);
      out[4 * p + 1] = keyed ? 0 : scale(g);
      out[4 * p + 2] = keyed ? 0 : scale(b);
      out[4 * p + 3] = keyed ? 0 : scale(a);
    }
  }
  return { width, height, data: out };
}

/** Encodes 8-bit RGB (interleaved, rows top to bottom) as a PNG file. */
export function writePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  return encode({ width, height, data: rgb, channels: 3, depth: 8 });
}

/**
 * Node's codec measures the inflated IDAT stream with zlib to refuse truncated files before
 * decoding; here fast-png's own inflate reports a stream cut short while decoding: -1, not known.
 */
export function inflatedSize(_data: Uint8Array, _limit: number): number {
  return -1;
}
