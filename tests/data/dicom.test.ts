import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import * as dicomParserNs from 'dicom-parser';
import { LightconvError, ResourceLimitError, ValueError } from '../../src/core/errors.js';
import { decodeDicom, decodeRleFrame, dicomToRgb, isDicom, type DicomImage } from '../../src/data/dicom.js';

const dp: typeof dicomParserNs =
  ((dicomParserNs as unknown as { default?: typeof dicomParserNs }).default ?? dicomParserNs);

const DIR = new URL('../fixtures/dicom/', import.meta.url);
const read = (f: string) => new Uint8Array(readFileSync(new URL(f, DIR)));
const f32 = (f: string) => {
  const b = read(f);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

interface Expected {
  transfer_syntax: string | null;
  modality: string;
  photometric: string;
  rows: number;
  columns: number;
  bits_stored: number;
  pixel_representation: number;
  rescale_slope: number | null;
  rescale_intercept: number | null;
  window_center: number | null;
  window_width: number | null;
  decodable: boolean;
  expected?: string;
  shape?: number[];
  min?: number;
  max?: number;
  mean?: number;
  why?: string;
}
const EXPECTED = JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8')) as Record<string, Expected>;

/** Byte offset where a Part 10 file's data set begins (after the file meta header). */
const dataSetStart = (bytes: Uint8Array) => (dp.readPart10Header(bytes) as unknown as { position: number }).position;

// A minimal Explicit VR Little Endian Part 10 writer for the cases no fixture covers.
const LONG_VR = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);
type El = [group: number, element: number, vr: string, value: Uint8Array];
const str = (s: string, pad = ' ') => new TextEncoder().encode(s.length % 2 ? s + pad : s);
const u16 = (...xs: number[]) => new Uint8Array(new Uint16Array(xs).buffer);
function encode(els: El[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [g, e, vr, value] of els) {
    const long = LONG_VR.has(vr);
    const head = new Uint8Array(long ? 12 : 8);
    const v = new DataView(head.buffer);
    v.setUint16(0, g, true);
    v.setUint16(2, e, true);
    head[4] = vr.charCodeAt(0);
    head[5] = vr.charCodeAt(1);
    if (long) v.setUint32(8, value.length, true);
    else v.setUint16(6, value.length, true);
    parts.push(head, value);
  }
  return concat(parts);
}
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
function part10(transferSyntax: string, dataSet: Uint8Array): Uint8Array {
  const ts = encode([[0x0002, 0x0010, 'UI', str(transferSyntax, '\0')]]);
  const groupLength = encode([[0x0002, 0x0000, 'UL', new Uint8Array(new Uint32Array([ts.length]).buffer)]]);
  const preamble = new Uint8Array(132);
  preamble.set(str('DICM'), 128);
  return concat([preamble, groupLength, ts, dataSet]);
}
/** A single-frame image; `extra` elements override or add to the defaults. */
function image(opts: {
  rows: number; columns: number; bitsAllocated: number; bitsStored?: number; signed?: boolean;
  photometric?: string; samples?: number; planar?: number; pixels: Uint8Array; extra?: El[];
}): Uint8Array {
  const els: El[] = [
    [0x0008, 0x0060, 'CS', str('OT')],
    [0x0028, 0x0002, 'US', u16(opts.samples ?? 1)],
    [0x0028, 0x0004, 'CS', str(opts.photometric ?? 'MONOCHROME2')],
    ...(opts.planar !== undefined ? [[0x0028, 0x0006, 'US', u16(opts.planar)] as El] : []),
    [0x0028, 0x0010, 'US', u16(opts.rows)],
    [0x0028, 0x0011, 'US', u16(opts.columns)],
    [0x0028, 0x0100, 'US', u16(opts.bitsAllocated)],
    [0x0028, 0x0101, 'US', u16(opts.bitsStored ?? opts.bitsAllocated)],
    [0x0028, 0x0102, 'US', u16((opts.bitsStored ?? opts.bitsAllocated) - 1)],
    [0x0028, 0x0103, 'US', u16(opts.signed ? 1 : 0)],
    ...(opts.extra ?? []),
    [0x7fe0, 0x0010, opts.bitsAllocated === 8 ? 'OB' : 'OW', opts.pixels],
  ];
  els.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return part10('1.2.840.10008.1.2.1', encode(els));
}

function expectTyped(fn: () => unknown): LightconvError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LightconvError);
    return e as LightconvError;
  }
  throw new Error('expected a typed error, got a result');
}

describe('decodeDicom on the pydicom test files (tests/fixtures/dicom/expected.json)', () => {
  for (const [file, exp] of Object.entries(EXPECTED)) {
    if (file === 'no_meta.dcm') continue; // see its own test below
    it(`${file}: ${exp.decodable ? 'header and pixels' : 'typed error'}`, () => {
      const bytes = read(file);
      expect(isDicom(bytes)).toBe(true);
      if (!exp.decodable) {
        const err = expectTyped(() => decodeDicom(bytes, file));
        expect(err).toBeInstanceOf(ValueError);
        expect(err.message).toContain(file);
        if (file === 'MR_truncated.dcm') {
          // pydicom: "The length of the pixel data in the dataset (8130 bytes) doesn't match the expected length (8192 bytes)"
          expect(err.message).toMatch(/8192 bytes, found 8130/);
        } else {
          const uid = /^(1\.2\.840\.10008\.[\d.]+)/.exec(exp.why ?? '')?.[1] ?? '1.2.840.10008.1.2.4.80';
          expect(err.message).toContain(exp.transfer_syntax!);
          expect(err.message).toContain(`(${uid})`);
          expect(err.message).toMatch(/is not decoded; convert the file to uncompressed/);
        }
        return;
      }
      const img = decodeDicom(bytes, file);
      expect(img.transferSyntaxName).toBe(exp.transfer_syntax);
      expect(img.hasMetaHeader).toBe(true);
      expect(img.modality).toBe(exp.modality);
      expect(img.photometric).toBe(exp.photometric);
      expect([img.rows, img.columns]).toEqual([exp.rows, exp.columns]);
      expect(img.bitsStored).toBe(exp.bits_stored);
      expect(img.pixelRepresentation).toBe(exp.pixel_representation);
      // Absent rescale attributes mean the identity (slope 1, intercept 0).
      expect(img.rescaleSlope).toBe(exp.rescale_slope ?? 1);
      expect(img.rescaleIntercept).toBe(exp.rescale_intercept ?? 0);
      expect(img.windowCenter).toBe(exp.window_center ?? undefined);
      expect(img.windowWidth).toBe(exp.window_width ?? undefined);
      expect(img.frames).toBe(1);
      const samples = exp.shape!.reduce((a, b) => a * b, 1);
      expect(img.pixels.length).toBe(samples);
      // Exact: every value is an integer after the rescale (integer stored values, slope 1,
      // integer intercept) and well inside float32's exact-integer range, so no tolerance.
      expect(Array.from(img.pixels)).toEqual(Array.from(f32(exp.expected!)));
      let min = Infinity, max = -Infinity;
      for (const v of img.pixels) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect([min, max]).toEqual([exp.min, exp.max]);
    });
  }

  it('RLE, big-endian and implicit-VR copies of MR_small give the same pixels as the original', () => {
    const ref = decodeDicom(read('MR_small.dcm')).pixels;
    for (const f of ['MR_small_RLE.dcm', 'MR_small_bigendian.dcm', 'MR_small_implicit.dcm']) {
      expect(decodeDicom(read(f)).pixels).toEqual(ref);
    }
  });
});

describe('data sets without the file meta header', () => {
  it('no_meta.dcm is CT_small.dcm cut one byte before its data set, so it is refused, not misread', () => {
    // expected.json calls no_meta.dcm an Implicit VR Little Endian data set with CT_small's pixels.
    // The bytes say otherwise: they are CT_small.dcm from offset 335, one stray 0x20 (the last
    // byte of the meta header's 'CLUNIE1 ') before the Explicit VR Little Endian data set at 336.
    // Shifted by that byte no element header lines up (pydicom finds no Pixel Data in it either).
    const noMeta = read('no_meta.dcm');
    const ct = read('CT_small.dcm');
    expect(dataSetStart(ct)).toBe(336);
    expect(Buffer.from(noMeta).equals(Buffer.from(ct.subarray(335)))).toBe(true);
    expect(isDicom(noMeta)).toBe(false);
    const err = expectTyped(() => decodeDicom(noMeta, 'no_meta.dcm'));
    expect(err).toBeInstanceOf(ValueError);
    expect(err.message).toMatch(/no_meta\.dcm: not DICOM: no 'DICM' at offset 128/);
    // No bytes of the file in the message (it may reach a log; the file may not be the user's).
    expect(err.message).not.toMatch(/20 08 00 05/);
    // Without the stray byte it is the raw data set the file was meant to be: CT_small's pixels.
    const fixed = decodeDicom(noMeta.subarray(1), 'no_meta.dcm[1:]');
    expect(fixed.hasMetaHeader).toBe(false);
    expect(fixed.transferSyntaxName).toBe('Explicit VR Little Endian');
    expect(fixed.modality).toBe('CT');
    expect(fixed.rescaleIntercept).toBe(-1024);
    expect(Array.from(fixed.pixels)).toEqual(Array.from(f32(EXPECTED['no_meta.dcm']!.expected!)));
  });

  it.each([
    ['MR_small_implicit.dcm', 'Implicit VR Little Endian'],
    ['MR_small.dcm', 'Explicit VR Little Endian'],
    ['MR_small_bigendian.dcm', 'Explicit VR Big Endian'],
  ])('%s with its meta header stripped is sniffed as %s', (file, name) => {
    const bytes = read(file);
    const raw = bytes.subarray(dataSetStart(bytes));
    const img = decodeDicom(raw);
    expect(img.hasMetaHeader).toBe(false);
    expect(img.transferSyntaxName).toBe(name);
    expect(Array.from(img.pixels)).toEqual(Array.from(f32('MR_small.expected.f32')));
  });
});

describe('decodeDicom: syntaxes and pixel formats the fixtures lack', () => {
  it('Deflated Explicit VR Little Endian (MR_small re-encoded)', () => {
    const mr = read('MR_small.dcm');
    const deflated = part10('1.2.840.10008.1.2.1.99', deflateRawSync(mr.subarray(dataSetStart(mr))));
    const img = decodeDicom(deflated, 'deflated.dcm');
    expect(img.transferSyntaxName).toBe('Deflated Explicit VR Little Endian');
    expect(Array.from(img.pixels)).toEqual(Array.from(f32('MR_small.expected.f32')));
    // A corrupt deflate stream is a typed error naming the file.
    const bad = part10('1.2.840.10008.1.2.1.99', new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    // (also checks that the meta header's group length, not a read past it, marks where the data set starts)
    expect(expectTyped(() => decodeDicom(bad, 'bad_deflate.dcm')).message).toMatch(/bad_deflate\.dcm: corrupt deflated/);
  });

  it('bits stored < bits allocated: high bits masked off, then sign-extended', () => {
    // 12 of 16 bits, high bit 11; the top nibble carries junk (as overlays once did).
    const words = [0x0000, 0x07ff, 0x0800, 0x0fff, 0xf123, 0xa800];
    const signed = decodeDicom(image({ rows: 2, columns: 3, bitsAllocated: 16, bitsStored: 12, signed: true, pixels: u16(...words) }));
    expect(Array.from(signed.pixels)).toEqual([0, 2047, -2048, -1, 0x123, -2048]);
    const unsigned = decodeDicom(image({ rows: 2, columns: 3, bitsAllocated: 16, bitsStored: 12, pixels: u16(...words) }));
    expect(Array.from(unsigned.pixels)).toEqual([0, 2047, 2048, 4095, 0x123, 2048]);
  });

  it('signed and unsigned 8-bit, with a rescale', () => {
    const bytes = new Uint8Array([0, 1, 127, 128, 255, 200]);
    const rescale: El[] = [
      [0x0028, 0x1052, 'DS', str('-10')],
      [0x0028, 0x1053, 'DS', str('2')],
    ];
    const s = decodeDicom(image({ rows: 1, columns: 6, bitsAllocated: 8, signed: true, pixels: bytes, extra: rescale }));
    expect(Array.from(s.pixels)).toEqual([0, 1, 127, -128, -1, -56].map((v) => v * 2 - 10));
    const u = decodeDicom(image({ rows: 1, columns: 6, bitsAllocated: 8, pixels: bytes }));
    expect(Array.from(u.pixels)).toEqual([0, 1, 127, 128, 255, 200]);
  });

  it('RGB with planar configuration 1 comes out interleaved', () => {
    const planes = new Uint8Array([1, 2, 3, 4, 10, 20, 30, 40, 100, 110, 120, 130]); // RRRR GGGG BBBB
    const img = decodeDicom(image({ rows: 2, columns: 2, bitsAllocated: 8, photometric: 'RGB', samples: 3, planar: 1, pixels: planes }));
    expect(Array.from(img.pixels)).toEqual([1, 10, 100, 2, 20, 110, 3, 30, 120, 4, 40, 130]);
    const interleaved = decodeDicom(image({ rows: 2, columns: 2, bitsAllocated: 8, photometric: 'RGB', samples: 3, planar: 0, pixels: planes }));
    expect(Array.from(interleaved.pixels)).toEqual(Array.from(planes));
  });

  it('RLE segments: literal runs, replicate runs and the -128 no-op', () => {
    // Header: 1 segment at offset 64. Segment: literal 3 bytes, no-op, replicate 0x07 four times, literal 1.
    const frame = new Uint8Array(64 + 9);
    const v = new DataView(frame.buffer);
    v.setUint32(0, 1, true);
    v.setUint32(4, 64, true);
    frame.set([2, 9, 8, 7, 0x80, (-3) & 0xff, 0x07, 0, 5], 64);
    expect(Array.from(decodeRleFrame(frame, 8, 1)[0]!)).toEqual([9, 8, 7, 7, 7, 7, 7, 5]);
    expect(expectTyped(() => decodeRleFrame(frame, 9, 1, 'short.dcm')).message).toMatch(/short\.dcm: RLE segment 0 decodes to 8 bytes; the frame needs 9/);
    expect(expectTyped(() => decodeRleFrame(frame, 8, 2)).message).toMatch(/lists 1 segments; .* needs 2/);
  });

  it('unsupported photometric interpretations are refused by name', () => {
    const err = expectTyped(() =>
      decodeDicom(image({ rows: 1, columns: 1, bitsAllocated: 8, photometric: 'YBR_FULL', samples: 3, pixels: new Uint8Array(4) }), 'ybr.dcm'),
    );
    expect(err.message).toMatch(/ybr\.dcm.*YBR_FULL/);
  });
});

describe('decodeDicom on hostile input', () => {
  it('a header declaring an enormous image gives ResourceLimitError before allocating', () => {
    const huge = image({ rows: 65535, columns: 65535, bitsAllocated: 16, pixels: u16(1, 2) });
    const err = expectTyped(() => decodeDicom(huge, 'huge.dcm'));
    expect(err).toBeInstanceOf(ResourceLimitError);
    expect(err.message).toMatch(/huge\.dcm: DICOM image of 65535×65535: 4,294,836,225 pixels, over the maxImagePixels budget/);
  });

  it('garbage, with and without a DICM prefix, gives typed errors', () => {
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    for (const size of [0, 1, 7, 8, 131, 132, 200, 1000, 5000]) {
      for (let rep = 0; rep < 20; rep++) {
        const bytes = Uint8Array.from({ length: size }, rand);
        expectTyped(() => decodeDicom(bytes, 'garbage'));
        if (size >= 132) {
          bytes.set(str('DICM'), 128);
          expectTyped(() => decodeDicom(bytes, 'garbage'));
        }
      }
    }
    expect(expectTyped(() => decodeDicom(new Uint8Array(0), 'empty.dcm')).message).toMatch(/empty\.dcm: not DICOM/);
  });

  it('every truncation and single-byte corruption of a real file decodes or gives a typed error', () => {
    for (const f of ['MR_small.dcm', 'MR_small_RLE.dcm', 'MR_small_implicit.dcm', 'MR_small_bigendian.dcm']) {
      const bytes = read(f);
      const full = decodeDicom(bytes).pixels;
      const pixelEl = dp.parseDicom(bytes).elements['x7fe00010']!;
      const last = pixelEl.fragments?.at(-1);
      const pixelEnd = last ? last.position + last.length : pixelEl.dataOffset + pixelEl.length;
      for (let cut = 0; cut < bytes.length; cut += 37) {
        let img: DicomImage;
        try {
          img = decodeDicom(bytes.subarray(0, cut), f);
        } catch (e) {
          expect(e).toBeInstanceOf(LightconvError);
          continue;
        }
        // Only a cut in the elements after the pixel data leaves a decodable image, and it is whole.
        expect(cut).toBeGreaterThanOrEqual(pixelEnd);
        expect(img.pixels).toEqual(full);
      }
      for (let at = 132; at < Math.min(bytes.length, 1600); at += 3) {
        const b = bytes.slice();
        b[at] ^= 0xa5;
        try {
          decodeDicom(b, f);
        } catch (e) {
          expect(e).toBeInstanceOf(LightconvError);
        }
      }
    }
  });
});

describe('dicomToRgb', () => {
  const mono = (pixels: number[], extra: Partial<DicomImage> = {}): DicomImage => ({
    rows: 1, columns: pixels.length, samplesPerPixel: 1, photometric: 'MONOCHROME2', transferSyntax: '1.2.840.10008.1.2.1',
    transferSyntaxName: 'Explicit VR Little Endian', hasMetaHeader: true, bitsAllocated: 16, bitsStored: 16,
    pixelRepresentation: 1, rescaleSlope: 1, rescaleIntercept: 0, frames: 1, pixels: Float32Array.from(pixels), ...extra,
  });
  const grey = (rgb: Uint8Array) => Array.from({ length: rgb.length / 3 }, (_, i) => rgb[3 * i]!);

  it('windowing maps centre − width/2 to 0 and centre + width/2 to 255 (PS3.3 C.11.2.1.2.1)', () => {
    const [c, w] = [40, 400]; // a CT soft-tissue window
    const { rgb, width, height } = dicomToRgb(mono([c - w / 2, c + w / 2, -1000, 3000, c - 0.5]), { window: [c, w] });
    expect([width, height]).toEqual([5, 1]);
    // c − ½ sits at the midpoint of the ramp: (0 / (w−1) + ½) · 255 = 127.5 → 128.
    expect(grey(rgb)).toEqual([0, 255, 0, 255, 128]);
    // Grey is replicated to the three channels.
    expect(Array.from(rgb.subarray(12, 15))).toEqual([128, 128, 128]);
  });

  it("uses the file's window when none is given (MR_small: centre 600, width 1600)", () => {
    const img = decodeDicom(read('MR_small.dcm'));
    const own = dicomToRgb(img);
    expect(own.rgb).toEqual(dicomToRgb(img, { window: [600, 1600] }).rgb);
    // A pixel of 127 (the minimum): ((127 − 599.5) / 1599 + ½) · 255 = 52.15 → 52.
    const i = img.pixels.indexOf(127);
    expect(own.rgb[3 * i]).toBe(52);
  });

  it('without a window, min → 0 and max → 255 (CT_small has none)', () => {
    const img = decodeDicom(read('CT_small.dcm'));
    expect(img.windowCenter).toBeUndefined();
    const { rgb } = dicomToRgb(img);
    expect(rgb[3 * img.pixels.indexOf(-896)]).toBe(0);
    expect(rgb[3 * img.pixels.indexOf(1167)]).toBe(255);
  });

  it('MONOCHROME1 is inverted: high values dark', () => {
    const img = decodeDicom(read('MR_small.dcm'));
    const m2 = dicomToRgb(img).rgb;
    const m1 = dicomToRgb({ ...img, photometric: 'MONOCHROME1' }).rgb;
    expect(Array.from(m1)).toEqual(Array.from(m2, (v) => 255 - v));
    // And the decoder reports MONOCHROME1 from a file that says so.
    const file = image({ rows: 1, columns: 2, bitsAllocated: 8, photometric: 'MONOCHROME1', pixels: new Uint8Array([0, 255]) });
    const decoded = decodeDicom(file);
    expect(decoded.photometric).toBe('MONOCHROME1');
    expect(grey(dicomToRgb(decoded).rgb)).toEqual([255, 0]);
  });

  it('RGB passes through unchanged', () => {
    const img = decodeDicom(read('SC_rgb_small_odd.dcm'));
    const { rgb, width, height } = dicomToRgb(img);
    expect([width, height]).toEqual([3, 3]);
    expect(Array.from(rgb)).toEqual(Array.from(f32('SC_rgb_small_odd.expected.f32')));
  });

  it('a window narrower than 1 is a ValueError', () => {
    expect(() => dicomToRgb(mono([1, 2]), { window: [1, 0] })).toThrow(ValueError);
  });
});
