import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { ValueError } from '../core/errors.js';

/**
 * PNG codec, Node side: pngjs (zlib, Buffer). The browser build of the package swaps this module
 * for ./png.browser.ts (tsup.config.ts), which gives the same pixels without Node built-ins.
 */

/** Decodes a PNG to 8-bit RGBA (palette, grayscale, low and 16-bit depths expanded as pngjs does). */
export function readPng(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, data: png.data };
}

/** Encodes 8-bit RGB (interleaved, rows top to bottom) as a PNG file. */
export function writePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const png = Object.assign(new PNG(), { width, height, data: Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength) });
  const out = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * The length `data` (a zlib stream) inflates to, counting at most `limit` + 1 bytes; throws when
 * the stream is cut short or corrupt. -1 would mean "not known" (the browser codec's answer).
 */
export function inflatedSize(data: Uint8Array, limit: number): number {
  try {
    return inflateSync(data, { maxOutputLength: Math.max(1, limit + 1) }).length;
  } catch (e) {
    // More than `limit` bytes: at least the declared scanlines are there.
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return limit + 1;
    throw new ValueError(`decodeImage: corrupt PNG: its IDAT data does not inflate (${(e as Error).message}); truncated file?`);
  }
}
