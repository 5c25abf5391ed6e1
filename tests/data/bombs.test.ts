import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { ResourceLimitError, ValueError } from '../../src/core/errors.js';
import { getLimits, setLimits } from '../../src/core/limits.js';
import { decodeAnyImage, readImage } from '../../src/data/decode.js';
import { decodeDicom } from '../../src/data/dicom.js';
import { decodeImage, encodePng } from '../../src/data/image.js';
import { crc32 } from '../../src/io/crc32.js';

/** One PNG chunk with its CRC. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function ihdr(width: number, height: number): Uint8Array {
  const d = new Uint8Array(13);
  const v = new DataView(d.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  d[8] = 8; // bit depth
  d[9] = 2; // RGB
  return chunk('IHDR', d);
}

const PNG_SIG = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A tiny PNG that declares width × height (its pixel data is a short, valid-looking IDAT of zeros). */
function pngBomb(width: number, height: number, extra: Uint8Array[] = []): Uint8Array {
  // A zlib stream of 128 zero bytes (stored block), padded out with a text chunk to ~180 bytes.
  const zeros = new Uint8Array(128);
  const stored = concat(Uint8Array.from([0x78, 0x01, 0x01, 128, 0, 0x7f, 0xff]), zeros, new Uint8Array(4));
  return concat(PNG_SIG, ihdr(width, height), ...extra, chunk('IDAT', stored.subarray(0, 40)), chunk('IEND', new Uint8Array(0)));
}

/** A JPEG with SOI, a baseline frame header (SOF0) declaring width × height, and SOS + EOI. */
function jpegBomb(width: number, height: number, frames = 1): Uint8Array {
  const sof = (w: number, h: number) => Uint8Array.from([0xff, 0xc0, 0, 17, 8, h >> 8, h & 255, w >> 8, w & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  const parts = [Uint8Array.from([0xff, 0xd8])];
  if (frames === 2) parts.push(sof(8, 8));
  parts.push(sof(width, height));
  parts.push(Uint8Array.from([0xff, 0xda, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]), new Uint8Array(64), Uint8Array.from([0xff, 0xd9]));
  return concat(...parts);
}

function rgb(w: number, h: number): Uint8Array {
  return Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + (i >> 5)) & 255);
}

describe('image bombs: the pixel budget is checked from the header, before decoding', () => {
  it('a ~200-byte PNG declaring 30 000 × 17 000 pixels', async () => {
    const bomb = pngBomb(30_000, 17_000);
    expect(bomb.length).toBeLessThan(250);
    expect(() => decodeImage(bomb)).toThrow(ResourceLimitError);
    expect(() => decodeImage(bomb)).toThrow(/PNG of 30000×17000\): 510,000,000 pixels, over the maxImagePixels budget of 100,000,000/);
    const dir = await mkdtemp(join(tmpdir(), 'lc-bombs-'));
    try {
      await writeFile(join(dir, 'bomb.png'), bomb);
      await expect(readImage(join(dir, 'bomb.png'))).rejects.toThrow(/bomb\.png: .*510,000,000 pixels/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a JPEG whose frame header declares 23 000 × 23 000', () => {
    const bomb = jpegBomb(23_000, 23_000);
    expect(bomb.length).toBeLessThan(200);
    expect(() => decodeAnyImage(bomb, 'bomb.jpg')).toThrow(ResourceLimitError);
    expect(() => decodeAnyImage(bomb, 'bomb.jpg')).toThrow(/bomb\.jpg: decodeImage \(JPEG of 23000×23000\): 529,000,000 pixels/);
  });

  it('a second frame header or a second IHDR (the decoder would act on the later one) is refused', () => {
    expect(() => decodeImage(jpegBomb(23_000, 23_000, 2))).toThrow(/more than one frame header/);
    expect(() => decodeImage(pngBomb(8, 8, [ihdr(30_000, 17_000)]))).toThrow(/more than one IHDR chunk/);
    // An IHDR of the wrong length is corrupt, whatever it says.
    const badLen = pngBomb(8, 8);
    new DataView(badLen.buffer).setUint32(8, 14);
    expect(() => decodeImage(badLen)).toThrow(/IHDR chunk of 14 bytes/);
  });

  it('maxImagePixels is configurable (setLimits) and applies to PNG, JPEG and DICOM', async () => {
    const w = 40;
    const h = 30;
    const png = encodePng(rgb(w, h), w, h);
    const rgba = new Uint8Array(w * h * 4).fill(128);
    const jpg = new Uint8Array(encodeJpeg({ data: rgba, width: w, height: h }, 90).data);
    const dcm = new Uint8Array(await readFile(join(import.meta.dirname, '..', 'fixtures', 'dicom', 'MR_small.dcm'))); // 64 × 64
    expect(decodeImage(png).width).toBe(w);
    expect(decodeImage(jpg).height).toBe(h);
    expect(decodeDicom(dcm).rows).toBe(64);
    const before = setLimits({ maxImagePixels: 1000 });
    try {
      expect(getLimits().maxImagePixels).toBe(1000);
      expect(() => decodeImage(png)).toThrow(/PNG of 40×30\): 1,200 pixels, over the maxImagePixels budget of 1,000/);
      expect(() => decodeImage(jpg)).toThrow(ResourceLimitError);
      expect(() => decodeDicom(dcm, 'MR_small.dcm')).toThrow(/MR_small\.dcm: DICOM image of 64×64: 4,096 pixels, over the maxImagePixels budget/);
    } finally {
      setLimits(before);
    }
    expect(getLimits().maxImagePixels).toBe(100_000_000);
  });
});

describe('truncated images give a typed error, never partial (black) pixels', () => {
  it('every cut of a PNG and a JPEG, and a JPEG cut short with its end marker put back', () => {
    const w = 48;
    const h = 40;
    const png = encodePng(rgb(w, h), w, h);
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 13) & 255;
    const jpg = new Uint8Array(encodeJpeg({ data: rgba, width: w, height: h }, 90).data);
    let cuts = 0;
    for (const file of [png, jpg]) {
      // Every 7th length from 1 byte to one byte short (each cut is a separate case).
      for (let n = 1; n < file.length; n += 7) {
        const cut = file.subarray(0, n);
        let err: unknown;
        try {
          decodeImage(cut);
        } catch (e) {
          err = e;
        }
        expect(err, `${file === png ? 'PNG' : 'JPEG'} cut to ${n} of ${file.length} bytes`).toBeInstanceOf(ValueError);
        cuts++;
      }
    }
    expect(cuts).toBeGreaterThan(100);
    const patched = concat(jpg.subarray(0, Math.floor(jpg.length / 2)), Uint8Array.from([0xff, 0xd9]));
    expect(() => decodeImage(patched)).toThrow(ValueError);
  });
});
