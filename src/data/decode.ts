import { LightconvError, ResourceLimitError, ShapeError, ValueError } from '../core/errors.js';
import { type RegularFileOptions, readRegularFile, readRegularFileSync } from '../io/files.js';
import { decodeDicom, dicomToRgb } from './dicom.js';
import { type RgbImage, decodeImage } from './image.js';

/**
 * One door for every image file the data floor reads: PNG, JPEG and DICOM, sniffed from the
 * bytes (DICOM also by a `.dcm` name, since files without the 128-byte preamble exist), with
 * every error re-raised as the same typed error prefixed by the file's name.
 */

export interface DecodeOptions {
  /** DICOM VOI window [center, width] overriding the file's own; ignored for PNG and JPEG. */
  window?: [center: number, width: number];
}

/** 'DICM' at byte 128 (PS3.10 §7.1), or a name ending in .dcm. */
export function looksLikeDicom(bytes: Uint8Array, name = ''): boolean {
  const magic = bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
  return magic || /\.dcm$/i.test(name);
}

/** The same error class with `name: ` in front, so a message always says which file failed. */
export function withFile(e: unknown, name: string): LightconvError {
  const msg = e instanceof Error ? e.message : String(e);
  const text = msg.includes(name) ? msg : `${name}: ${msg}`;
  if (e instanceof ResourceLimitError) return new ResourceLimitError(text);
  if (e instanceof ShapeError) return new ShapeError(text);
  if (e instanceof ValueError) return new ValueError(text);
  if (e instanceof LightconvError) return new LightconvError(text);
  // A library's own exception (a codec bug, a RangeError on bad data): still bad input here.
  return new ValueError(`${name}: cannot decode (${msg})`);
}

/**
 * Bytes of a PNG, JPEG or DICOM file → 8-bit RGB; errors name `name`.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { decodeAnyImage } from 'lightconv';
 *
 * const img = decodeAnyImage(readFileSync('scan.dcm'), 'scan.dcm', { window: [40, 400] }); // DICOM with a VOI window
 * console.log(img.width, img.height);
 * ```
 */
export function decodeAnyImage(bytes: Uint8Array, name = 'image', opts: DecodeOptions = {}): RgbImage {
  try {
    if (looksLikeDicom(bytes, name)) return dicomToRgb(decodeDicom(bytes, name), opts.window ? { window: opts.window } : {});
    return decodeImage(bytes);
  } catch (e) {
    throw withFile(e, name);
  }
}

/**
 * Reads and decodes an image file (Node only). The file is opened first and the descriptor
 * checked (a FIFO, device or folder is refused without blocking; the size is checked against
 * maxModelBytes before it is read): src/io/files.ts.
 *
 * @example
 * ```ts
 * import { readImage, toTensor } from 'lightconv';
 *
 * const img = await readImage('cat.jpg'); // PNG, JPEG or DICOM
 * const x = toTensor(img); // [1, 3, H, W] in [0, 1]
 * ```
 */
export async function readImage(path: string, opts: DecodeOptions = {}): Promise<RgbImage> {
  return decodeAnyImage(await readRegularFile(path), path, opts);
}

/**
 * The synchronous twin of readImage, for the decode workers (one file at a time, no interleaving
 * to gain); `read` as for readRegularFile (datasets pass `{ noFollow: true }`).
 */
export function readImageSync(fs: typeof import('node:fs'), path: string, opts: DecodeOptions = {}, read: RegularFileOptions = {}): RgbImage {
  return decodeAnyImage(readRegularFileSync(fs, path, read), path, opts);
}
