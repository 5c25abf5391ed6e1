import * as dicomParserNs from 'dicom-parser';
import type { ByteArrayParser, DataSet, Element } from 'dicom-parser';
import { LightconvError, ResourceLimitError, ValueError } from '../core/errors.js';
import { checkedSize, fmtBytes, getLimits } from '../core/limits.js';
import { type RgbImage, checkImagePixels } from './image.js';

/**
 * DICOM (PS3.10 files and raw data sets) into pixel values. dicom-parser walks the element
 * structure; the pixel handling (byte order, bit masks, sign, RLE, rescale, VOI window) is here.
 */

// dicom-parser is a UMD bundle: under Node's ESM loader its API sits on the default export,
// under a bundler on the namespace itself.
const dp: typeof dicomParserNs =
  ((dicomParserNs as unknown as { default?: typeof dicomParserNs }).default ?? dicomParserNs);

/** A decoded DICOM image: the header fields that matter for display, and the first frame. */
export interface DicomImage {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** Photometric Interpretation: MONOCHROME1, MONOCHROME2 or RGB. */
  photometric: string;
  modality?: string;
  /** Transfer Syntax UID; sniffed for a data set stored without the file meta header. */
  transferSyntax: string;
  transferSyntaxName: string;
  /** False for a raw data set without the preamble, 'DICM' and file meta header. */
  hasMetaHeader: boolean;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  rescaleSlope: number;
  rescaleIntercept: number;
  windowCenter?: number;
  windowWidth?: number;
  frames: number;
  /**
   * First frame after the modality rescale (stored · slope + intercept, i.e. Hounsfield units
   * for CT), row-major, samples interleaved for RGB. Colour images are not rescaled.
   */
  pixels: Float32Array;
}

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const DEFLATED_LE = '1.2.840.10008.1.2.1.99';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const RLE = '1.2.840.10008.1.2.5';
const DECODED = new Set([IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE, RLE]);

/** Transfer syntax names as PS3.6 table A-1 gives them. */
const TRANSFER_SYNTAX_NAMES: Record<string, string> = {
  [IMPLICIT_LE]: 'Implicit VR Little Endian',
  [EXPLICIT_LE]: 'Explicit VR Little Endian',
  [DEFLATED_LE]: 'Deflated Explicit VR Little Endian',
  [EXPLICIT_BE]: 'Explicit VR Big Endian',
  [RLE]: 'RLE Lossless',
  '1.2.840.10008.1.2.1.98': 'Encapsulated Uncompressed Explicit VR Little Endian',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 and 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless, Non-Hierarchical (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless Image Compression',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Lossy (Near-Lossless) Image Compression',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Image Compression (Lossless Only)',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000 Image Compression',
  '1.2.840.10008.1.2.4.92': 'JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)',
  '1.2.840.10008.1.2.4.93': 'JPEG 2000 Part 2 Multi-component Image Compression',
  '1.2.840.10008.1.2.4.94': 'JPIP Referenced',
  '1.2.840.10008.1.2.4.95': 'JPIP Referenced Deflate',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile / Main Level',
  '1.2.840.10008.1.2.4.101': 'MPEG2 Main Profile / High Level',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264 High Profile / Level 4.1',
  '1.2.840.10008.1.2.4.103': 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1',
  '1.2.840.10008.1.2.4.104': 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video',
  '1.2.840.10008.1.2.4.105': 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video',
  '1.2.840.10008.1.2.4.106': 'MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2',
  '1.2.840.10008.1.2.4.107': 'HEVC/H.265 Main Profile / Level 5.1',
  '1.2.840.10008.1.2.4.108': 'HEVC/H.265 Main 10 Profile / Level 5.1',
  '1.2.840.10008.1.2.4.110': 'JPEG XL Lossless',
  '1.2.840.10008.1.2.4.111': 'JPEG XL JPEG Recompression',
  '1.2.840.10008.1.2.4.112': 'JPEG XL',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 Image Compression (Lossless Only)',
  '1.2.840.10008.1.2.4.202': 'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000 Image Compression',
};

/** The PS3.6 name of a transfer syntax UID, or 'unknown transfer syntax'. */
export function transferSyntaxName(uid: string): string {
  return TRANSFER_SYNTAX_NAMES[uid] ?? 'unknown transfer syntax';
}

/** True for a DICOM PS3.10 file: 'DICM' after the 128-byte preamble. */
export function isDicom(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

// dicom-parser's constructors, which its type declarations leave out.
interface ParserCtors {
  DataSet: new (parser: ByteArrayParser, bytes: Uint8Array, elements: Record<string, Element>) => DataSet;
  ByteStream: new (parser: ByteArrayParser, bytes: Uint8Array, position: number) => dicomParserNs.ByteStream;
}
const ctors = dp as unknown as ParserCtors;

/** dicom-parser throws strings and `{ exception, dataSet }` objects; this gives their text. */
function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'exception' in e) return describe((e as { exception: unknown }).exception);
  return String(e);
}

/** Inflates the deflated data set with node:zlib, capped so a deflate bomb cannot exhaust memory. */
function inflate(data: Uint8Array, file: string): Uint8Array {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const zlib = proc?.getBuiltinModule?.('node:zlib') as typeof import('node:zlib') | undefined;
  if (!zlib) {
    throw new ValueError(
      `${file}: Deflated Explicit VR Little Endian (${DEFLATED_LE}) needs node:zlib, which this runtime lacks; ` +
        'convert the file to uncompressed Explicit VR Little Endian',
    );
  }
  const cap = getLimits().maxModelBytes;
  try {
    const out = zlib.inflateRawSync(data, { maxOutputLength: cap });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ResourceLimitError(`${file}: the deflated data set inflates to more than ${fmtBytes(cap)}, over the byte-buffer budget`);
    }
    throw new ValueError(`${file}: corrupt deflated data set: ${describe(e)}`);
  }
}

const VRS = new Set(
  'AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '),
);

/**
 * The transfer syntax of a data set stored without the file meta header, sniffed as other
 * readers do: the first element must belong to an even group in the usual range (0002–0028);
 * two VR letters after its tag mean explicit VR (big endian when the group only fits read that
 * way), none mean Implicit VR Little Endian, the default PS3.5 gives. Undefined for anything else.
 */
function sniffRawDataSet(bytes: Uint8Array): string | undefined {
  if (bytes.length < 8) return undefined;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const groupOk = (g: number) => g % 2 === 0 && g >= 0x0002 && g <= 0x0028;
  const explicit = VRS.has(String.fromCharCode(bytes[4]!, bytes[5]!));
  if (explicit && groupOk(v.getUint16(0, true))) return EXPLICIT_LE;
  if (explicit && groupOk(v.getUint16(0, false))) return EXPLICIT_BE;
  const len = v.getUint32(4, true);
  if (!explicit && groupOk(v.getUint16(0, true)) && (len === 0xffffffff || len <= bytes.length - 8)) return IMPLICIT_LE;
  return undefined;
}

/**
 * The data set of a file (without its meta header) or of a raw data set.
 * `overrun` holds dicom-parser's complaint when the last element runs past the end of the bytes;
 * the elements read up to then are kept, so a truncated Pixel Data element can be reported exactly.
 */
function parse(bytes: Uint8Array, file: string): { ds: DataSet; ts: string; hasMeta: boolean; overrun?: string } {
  let ts = IMPLICIT_LE;
  let position = 0;
  const hasMeta = isDicom(bytes);
  if (hasMeta) {
    // dicom-parser finds the meta header's end by reading one element past it, which fails or
    // misleads when that element is deflated bytes; the group length (0002,0000), which PS3.10
    // requires first, bounds it instead.
    let metaBytes = bytes;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length >= 144 && v.getUint32(132, true) === 0x00000002 && bytes[136] === 0x55 && bytes[137] === 0x4c) {
      const end = 144 + v.getUint32(140, true);
      if (end <= bytes.length) metaBytes = bytes.subarray(0, end);
    }
    let meta: DataSet;
    try {
      meta = dp.readPart10Header(metaBytes);
    } catch (e) {
      throw new ValueError(`${file}: corrupt DICOM file meta header: ${describe(e)}`);
    }
    const uid = meta.string('x00020010');
    if (!uid) throw new ValueError(`${file}: the file meta header has no Transfer Syntax UID (0002,0010)`);
    ts = uid.replace(/\0+$/, '').trim();
    position = (meta as unknown as { position: number }).position;
    if (!DECODED.has(ts)) {
      throw new ValueError(
        `${file}: ${transferSyntaxName(ts)} (${ts}) is not decoded; convert the file to uncompressed ` +
          `Explicit VR Little Endian first (e.g. gdcmconv --raw, or dcmdjpeg / dcmdjpls)`,
      );
    }
  } else {
    const sniffed = sniffRawDataSet(bytes);
    if (!sniffed) {
      // The file's bytes are not shown: the message may reach a log, and the file may not be the user's.
      throw new ValueError(
        `${file}: not DICOM: no 'DICM' at offset 128, and the bytes do not start like a raw data set ` +
          `(an element of an even group 0002–0028)`,
      );
    }
    ts = sniffed;
  }

  let data = bytes;
  if (ts === DEFLATED_LE) {
    data = inflate(bytes.subarray(position), file);
    position = 0;
  }
  const parser = ts === EXPLICIT_BE ? dp.bigEndianByteArrayParser : dp.littleEndianByteArrayParser;
  const ds = new ctors.DataSet(parser, data, {});
  ds.warnings = [];
  const stream = new ctors.ByteStream(parser, data, position);
  let overrun: string | undefined;
  try {
    if (ts === IMPLICIT_LE) dp.parseDicomDataSetImplicit(ds, stream, data.length);
    else dp.parseDicomDataSetExplicit(ds, stream, data.length);
  } catch (e) {
    overrun = describe(e);
  }
  return { ds, ts, hasMeta, overrun };
}

/** The bytes of the first frame of encapsulated pixel data (each RLE frame is one fragment, PS3.5 A.4). */
function firstFragmentBytes(ds: DataSet, el: Element, frames: number, file: string): Uint8Array {
  const fragments = el.fragments ?? [];
  if (fragments.length === 0) throw new ValueError(`${file}: the encapsulated Pixel Data has no fragments`);
  const data = ds.byteArray as Uint8Array;
  const use = frames === 1 ? fragments : fragments.slice(0, 1);
  let total = 0;
  for (const f of use) {
    if (f.position + f.length > data.length) {
      throw new ValueError(
        `${file}: truncated Pixel Data: a fragment declares ${f.length} bytes at offset ${f.position} but the data ends at ${data.length}`,
      );
    }
    total += f.length;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const f of use) {
    out.set(data.subarray(f.position, f.position + f.length), o);
    o += f.length;
  }
  return out;
}

/**
 * Decodes one RLE Lossless frame (PS3.5 annex G) into big-endian-ordered byte planes: the
 * 64-byte header holds the segment count and 15 offsets; each segment is PackBits-coded and
 * holds one byte of every pixel, most-significant byte first, sample after sample.
 * Returns plane[s * bytesPerSample + b][pixel].
 */
export function decodeRleFrame(frame: Uint8Array, pixels: number, segments: number, file = 'RLE frame'): Uint8Array[] {
  if (frame.length < 64) throw new ValueError(`${file}: RLE frame of ${frame.length} bytes is shorter than its 64-byte header`);
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const count = v.getUint32(0, true);
  if (count !== segments) {
    throw new ValueError(`${file}: RLE header lists ${count} segments; samples × bytes per sample needs ${segments}`);
  }
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) offsets.push(v.getUint32(4 + 4 * i, true));
  const planes: Uint8Array[] = [];
  for (let s = 0; s < count; s++) {
    const start = offsets[s]!;
    const end = s + 1 < count ? offsets[s + 1]! : frame.length;
    if (start < 64 || end > frame.length || end < start) {
      throw new ValueError(`${file}: RLE segment ${s} spans bytes ${start}–${end} of a ${frame.length}-byte frame`);
    }
    const out = new Uint8Array(pixels);
    let o = 0;
    let p = start;
    while (p < end && o < pixels) {
      const n = (frame[p++]! << 24) >> 24; // signed header byte
      if (n >= 0) {
        const len = Math.min(n + 1, end - p, pixels - o); // literal run
        out.set(frame.subarray(p, p + len), o);
        o += len;
        p += n + 1;
      } else if (n !== -128) {
        if (p >= end) break;
        const len = Math.min(1 - n, pixels - o); // replicate run
        out.fill(frame[p++]!, o, o + len);
        o += len;
      } // -128 is a no-op
    }
    if (o < pixels) {
      throw new ValueError(`${file}: RLE segment ${s} decodes to ${o} bytes; the frame needs ${pixels}`);
    }
    planes.push(out);
  }
  return planes;
}

function num(ds: DataSet, tag: string, read: 'uint16' | 'intString' | 'floatString'): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const v = ds[read](tag, 0);
  return v === undefined || Number.isNaN(v) ? undefined : v;
}

/**
 * Decodes a DICOM file (or a raw data set without the file meta header) to its first frame.
 * Native (uncompressed) syntaxes, deflate and RLE Lossless are decoded; JPEG, JPEG-LS,
 * JPEG 2000 and video syntaxes get a ValueError naming the syntax. `name` labels messages.
 */
export function decodeDicom(bytes: Uint8Array, name = 'DICOM data'): DicomImage {
  try {
    return decodeInner(bytes, name);
  } catch (e) {
    if (e instanceof LightconvError) throw e;
    // Anything dicom-parser (or a stack overflow on nested garbage) throws becomes a typed error.
    throw new ValueError(`${name}: corrupt DICOM data: ${describe(e)}`);
  }
}

function decodeInner(bytes: Uint8Array, file: string): DicomImage {
  const { ds, ts, hasMeta, overrun } = parse(bytes, file);

  const rows = num(ds, 'x00280010', 'uint16');
  const columns = num(ds, 'x00280011', 'uint16');
  const bitsAllocated = num(ds, 'x00280100', 'uint16');
  const pixelEl = ds.elements['x7fe00010'];
  if (rows === undefined || columns === undefined || bitsAllocated === undefined || !pixelEl) {
    const missing = [
      rows === undefined && 'Rows (0028,0010)',
      columns === undefined && 'Columns (0028,0011)',
      bitsAllocated === undefined && 'Bits Allocated (0028,0100)',
      !pixelEl && 'Pixel Data (7FE0,0010)',
    ].filter(Boolean);
    throw new ValueError(
      `${file}: not a DICOM image: no ${missing.join(', ')}` + (overrun ? ` (parsing stopped: ${overrun})` : ''),
    );
  }
  const samplesPerPixel = num(ds, 'x00280002', 'uint16') ?? 1;
  const photometric = (ds.string('x00280004') ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2')).toUpperCase();
  const bitsStored = num(ds, 'x00280101', 'uint16') ?? bitsAllocated;
  const highBit = num(ds, 'x00280102', 'uint16') ?? bitsStored - 1;
  const pixelRepresentation = num(ds, 'x00280103', 'uint16') ?? 0;
  const planar = num(ds, 'x00280006', 'uint16') ?? 0;
  const frames = num(ds, 'x00280008', 'intString') ?? 1;
  const modality = ds.string('x00080060') || undefined;
  const mono = photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2';
  // The modality rescale applies to grey images only (PS3.3 C.11.1).
  const rescaleSlope = mono ? (num(ds, 'x00281053', 'floatString') ?? 1) : 1;
  const rescaleIntercept = mono ? (num(ds, 'x00281052', 'floatString') ?? 0) : 0;
  const windowCenter = num(ds, 'x00281050', 'floatString');
  const windowWidth = num(ds, 'x00281051', 'floatString');

  const what = `${file} (${rows}×${columns}, ${samplesPerPixel} sample${samplesPerPixel === 1 ? '' : 's'}, ${bitsAllocated} bits)`;
  if (rows === 0 || columns === 0) throw new ValueError(`${what}: the image is empty`);
  if (!(mono && samplesPerPixel === 1) && !(photometric === 'RGB' && samplesPerPixel === 3)) {
    throw new ValueError(
      `${what}: photometric interpretation ${photometric} with ${samplesPerPixel} samples per pixel is not decoded ` +
        '(MONOCHROME1, MONOCHROME2 and RGB are)',
    );
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw new ValueError(`${what}: Bits Allocated ${bitsAllocated} is not decoded (8, 16 and 32 are)`);
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw new ValueError(`${what}: Bits Stored ${bitsStored} and High Bit ${highBit} do not fit in Bits Allocated ${bitsAllocated}`);
  }
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1) {
    throw new ValueError(`${what}: Pixel Representation ${pixelRepresentation} is neither 0 (unsigned) nor 1 (signed)`);
  }
  if (!Number.isInteger(frames) || frames < 1) throw new ValueError(`${what}: Number of Frames is ${frames}`);

  // Budget first: the header alone decides the size, so a hostile one fails before allocation.
  // Only the first frame is decoded, so the pixel budget is per frame; the frames' total is
  // checked against the bytes present below, never allocated.
  checkImagePixels(columns, rows, `${file}: DICOM image of ${columns}×${rows}`);
  const n = checkedSize([rows, columns, samplesPerPixel], `${file}: DICOM frame`, 4);
  const pixelCount = rows * columns;
  const bytesPerSample = bitsAllocated / 8;
  const data = ds.byteArray as Uint8Array;

  // raw(i) gives the i-th sample (interleaved order) as an unsigned bitsAllocated-bit integer.
  let raw: (i: number) => number;
  if (ts === RLE) {
    if (!pixelEl.encapsulatedPixelData) throw new ValueError(`${file}: RLE Lossless but the Pixel Data is not encapsulated`);
    const frame = firstFragmentBytes(ds, pixelEl, frames, file);
    const planes = decodeRleFrame(frame, pixelCount, samplesPerPixel * bytesPerSample, file);
    raw = (i) => {
      const s = i % samplesPerPixel;
      const p = (i - s) / samplesPerPixel;
      let v = 0;
      for (let b = 0; b < bytesPerSample; b++) v = v * 256 + planes[s * bytesPerSample + b]![p]!;
      return v;
    };
  } else {
    if (pixelEl.encapsulatedPixelData || pixelEl.hadUndefinedLength) {
      throw new ValueError(`${file}: ${transferSyntaxName(ts)} (${ts}) is a native syntax but the Pixel Data is encapsulated`);
    }
    const frameBytes = n * bytesPerSample;
    const expected = frameBytes * frames;
    const found = Math.max(0, Math.min(pixelEl.length, data.length - pixelEl.dataOffset));
    if (found < expected) {
      throw new ValueError(
        `${file}: truncated Pixel Data: ${rows}×${columns}×${samplesPerPixel} samples × ${bytesPerSample} bytes` +
          `${frames > 1 ? ` × ${frames} frames` : ''} needs ${expected} bytes, found ${found}`,
      );
    }
    const v = new DataView(data.buffer, data.byteOffset + pixelEl.dataOffset, frameBytes);
    // Big endian only for the Explicit VR Big Endian syntax; 8-bit samples have no byte order.
    const le = ts !== EXPLICIT_BE;
    const read =
      bitsAllocated === 8 ? (o: number) => v.getUint8(o)
      : bitsAllocated === 16 ? (o: number) => v.getUint16(o * 2, le)
      : (o: number) => v.getUint32(o * 4, le);
    if (samplesPerPixel > 1 && planar === 1) {
      // Colour-by-plane: all R, then all G, then all B.
      raw = (i) => {
        const s = i % samplesPerPixel;
        return read(s * pixelCount + (i - s) / samplesPerPixel);
      };
    } else {
      raw = read;
    }
  }

  const shift = highBit + 1 - bitsStored;
  const range = 2 ** bitsStored;
  const signBit = range / 2;
  const pixels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Drop the bits above High Bit (overlays may live there) and below the stored field.
    let s = Math.floor(raw(i) / 2 ** shift) % range;
    if (pixelRepresentation === 1 && s >= signBit) s -= range;
    pixels[i] = s * rescaleSlope + rescaleIntercept;
  }

  const img: DicomImage = {
    rows,
    columns,
    samplesPerPixel,
    photometric,
    transferSyntax: ts,
    transferSyntaxName: transferSyntaxName(ts),
    hasMetaHeader: hasMeta,
    bitsAllocated,
    bitsStored,
    pixelRepresentation,
    rescaleSlope,
    rescaleIntercept,
    frames,
    pixels,
  };
  if (modality !== undefined) img.modality = modality;
  if (windowCenter !== undefined && windowWidth !== undefined) {
    img.windowCenter = windowCenter;
    img.windowWidth = windowWidth;
  }
  return img;
}

/**
 * The linear VOI LUT function of PS3.3 C.11.2.1.2.1 onto [0, 255]:
 * x ≤ c − ½ − (w−1)/2 → 0; x > c − ½ + (w−1)/2 → 255; else ((x − (c − ½)) / (w−1) + ½) · 255.
 */
export function voiLinear(x: number, center: number, width: number): number {
  const lo = center - 0.5 - (width - 1) / 2;
  const hi = center - 0.5 + (width - 1) / 2;
  if (x <= lo) return 0;
  if (x > hi) return 255;
  return ((x - (center - 0.5)) / (width - 1) + 0.5) * 255;
}

/**
 * An 8-bit RGB image for the image pipeline. Grey images go through the VOI window:
 * `opts.window`, else the file's Window Center/Width, else one spanning the pixels' min–max;
 * MONOCHROME1 is inverted (high values dark). RGB samples pass through (scaled to 8 bits
 * when more are stored).
 */
export function dicomToRgb(img: DicomImage, opts: { window?: [center: number, width: number] } = {}): RgbImage {
  const { rows, columns, pixels } = img;
  const n = rows * columns;
  const rgb = new Uint8Array(n * 3);
  if (img.samplesPerPixel === 3) {
    const scale = img.bitsStored > 8 ? 255 / (2 ** img.bitsStored - 1) : 1;
    for (let i = 0; i < n * 3; i++) rgb[i] = Math.min(255, Math.max(0, Math.round(pixels[i]! * scale)));
    return { width: columns, height: rows, rgb };
  }
  let center: number;
  let width: number;
  if (opts.window) {
    [center, width] = opts.window;
    if (!(Number.isFinite(center) && Number.isFinite(width) && width >= 1)) {
      throw new ValueError(`dicomToRgb: window [${center}, ${width}] needs a finite centre and a width ≥ 1 (PS3.3 C.11.2.1.2)`);
    }
  } else if (img.windowCenter !== undefined && img.windowWidth !== undefined && img.windowWidth >= 1) {
    center = img.windowCenter;
    width = img.windowWidth;
  } else {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = pixels[i]!;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    // The window whose bounds are exactly min (→ 0) and max (→ 255).
    width = max - min + 1;
    center = min + 0.5 + (width - 1) / 2;
  }
  const invert = img.photometric === 'MONOCHROME1';
  for (let i = 0; i < n; i++) {
    let y = Math.round(voiLinear(pixels[i]!, center, width));
    if (invert) y = 255 - y;
    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = y;
  }
  return { width: columns, height: rows, rgb };
}
