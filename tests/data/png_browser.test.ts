import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { crc32 } from '../../src/io/crc32.js';
import * as browser from '../../src/data/png.browser.js';
import * as node from '../../src/data/png.js';

// The browser build's PNG codec (fast-png) against the Node one (pngjs): every pixel must be
// identical, since a model run in the browser must see the same input as in Node.

/** A PNG written by hand: any colour type and bit depth, optional PLTE/tRNS, Adam7 or not. */
function makePng(o: { width: number; height: number; colorType: 0 | 2 | 3 | 4 | 6; depth: 1 | 2 | 4 | 8 | 16; samples: number[]; palette?: number[][]; trns?: number[]; interlace?: boolean }): Uint8Array {
  const ch = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[o.colorType];
  const rowOf = (xs: number[], y: number, w: number): number[] => {
    // One filtered scanline (filter 0), samples packed big-endian at the bit depth.
    const bits: number[] = [];
    for (const x of xs) for (let c = 0; c < ch; c++) bits.push(o.samples[(y * o.width + x) * ch + c]!);
    const out = [0];
    if (o.depth === 16) for (const v of bits) out.push(v >> 8, v & 255);
    else if (o.depth === 8) out.push(...bits);
    else {
      const bytes = new Array<number>(Math.ceil((w * ch * o.depth) / 8)).fill(0);
      bits.forEach((v, i) => (bytes[(i * o.depth) >> 3]! |= v << (8 - o.depth - ((i * o.depth) & 7))));
      out.push(...bytes);
    }
    return out;
  };
  const raw: number[] = [];
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  if (!o.interlace) for (let y = 0; y < o.height; y++) raw.push(...rowOf(all(o.width), y, o.width));
  else {
    for (const [x0, y0, dx, dy] of [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const) {
      const xs = all(o.width).filter((x) => x >= x0 && (x - x0) % dx === 0);
      if (xs.length === 0) continue;
      for (let y = y0; y < o.height; y += dy) raw.push(...rowOf(xs, y, xs.length));
    }
  }
  const chunk = (type: string, data: number[] | Uint8Array) => {
    const body = new Uint8Array([...type].map((c) => c.charCodeAt(0)).concat([...data]));
    const len = data.length;
    const c = crc32(body);
    return [len >>> 24, (len >> 16) & 255, (len >> 8) & 255, len & 255, ...body, c >>> 24, (c >> 16) & 255, (c >> 8) & 255, c & 255];
  };
  const be32 = (v: number) => [v >>> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255];
  return new Uint8Array([
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,
    ...chunk('IHDR', [...be32(o.width), ...be32(o.height), o.depth, o.colorType, 0, 0, o.interlace ? 1 : 0]),
    ...(o.palette ? chunk('PLTE', o.palette.flat()) : []),
    ...(o.trns ? chunk('tRNS', o.trns) : []),
    ...chunk('IDAT', deflateSync(new Uint8Array(raw))),
    ...chunk('IEND', []),
  ]);
}

const seq = (n: number, mod: number, mul = 7) => Array.from({ length: n }, (_, i) => (i * mul + 3) % mod);

describe('browser PNG codec', () => {
  const W = 11;
  const H = 9;
  const cases: [string, Parameters<typeof makePng>[0]][] = [
    ['RGB 8', { width: W, height: H, colorType: 2, depth: 8, samples: seq(W * H * 3, 256) }],
    ['RGBA 8', { width: W, height: H, colorType: 6, depth: 8, samples: seq(W * H * 4, 256) }],
    ['RGB 16', { width: W, height: H, colorType: 2, depth: 16, samples: seq(W * H * 3, 65536, 4099) }],
    ['gray-alpha 16', { width: W, height: H, colorType: 4, depth: 16, samples: seq(W * H * 2, 65536, 4099) }],
    ['gray 1', { width: W, height: H, colorType: 0, depth: 1, samples: seq(W * H, 2) }],
    ['gray 2', { width: W, height: H, colorType: 0, depth: 2, samples: seq(W * H, 4) }],
    ['gray 4 with tRNS key', { width: W, height: H, colorType: 0, depth: 4, samples: seq(W * H, 16), trns: [0, 3] }],
    ['RGB 8 with tRNS key', { width: W, height: H, colorType: 2, depth: 8, samples: seq(W * H * 3, 4), trns: [0, 3, 0, 2, 0, 1] }],
    ['palette 4 with tRNS', { width: W, height: H, colorType: 3, depth: 4, samples: seq(W * H, 5), palette: [[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 99, 199], [1, 2, 3]], trns: [0, 128] }],
    ['palette 8', { width: W, height: H, colorType: 3, depth: 8, samples: seq(W * H, 3), palette: [[10, 20, 30], [40, 50, 60], [70, 80, 90]] }],
    ['RGB 8 Adam7', { width: W, height: H, colorType: 2, depth: 8, samples: seq(W * H * 3, 256), interlace: true }],
    ['gray 16 Adam7', { width: W, height: H, colorType: 0, depth: 16, samples: seq(W * H, 65536, 4099), interlace: true }],
  ];
  it.each(cases)('decodes %s to the same RGBA as pngjs', (_, spec) => {
    const bytes = makePng(spec);
    const a = node.readPng(bytes);
    const b = browser.readPng(bytes);
    expect([b.width, b.height]).toEqual([a.width, a.height]);
    expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
  });

  it('decodes the repository PNGs (written by PIL and pngjs, adaptive filters) like pngjs', () => {
    for (const f of ['examples/digit-3.png', 'tests/fixtures/models/mnv3_mini/image.png', 'datasets/ihc_patches/dab_positive/' + 'y000_x000.png']) {
      const bytes = new Uint8Array(readFileSync(f));
      expect(Buffer.from(browser.readPng(bytes).data).equals(Buffer.from(node.readPng(bytes).data))).toBe(true);
    }
    // pngjs' own encoder picks filters 1–4 per row: a noisy image exercises all of them.
    const png = new PNG({ width: 37, height: 23 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 2654435761) >>> 24;
    const bytes = new Uint8Array(PNG.sync.write(png));
    expect(Buffer.from(browser.readPng(bytes).data).equals(Buffer.from(node.readPng(bytes).data))).toBe(true);
  });

  it('round-trips its own encoding through pngjs', () => {
    const rgb = new Uint8Array(seq(13 * 5 * 3, 256));
    const back = node.readPng(browser.writePng(rgb, 13, 5));
    const want = new Uint8Array(13 * 5 * 4);
    for (let i = 0; i < 13 * 5; i++) want.set([rgb[3 * i]!, rgb[3 * i + 1]!, rgb[3 * i + 2]!, 255], 4 * i);
    expect([back.width, back.height]).toEqual([13, 5]);
    expect(Buffer.from(back.data).equals(Buffer.from(want))).toBe(true);
  });

  it('refuses interlaced PNGs below 8 bits with a ValueError naming the depth', () => {
    const bytes = makePng({ width: W, height: H, colorType: 0, depth: 2, samples: seq(W * H, 4), interlace: true });
    expect(() => browser.readPng(bytes)).toThrow(ValueError);
    expect(() => browser.readPng(bytes)).toThrow(/interlaced PNG at 2 bits/);
  });
});
