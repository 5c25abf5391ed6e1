/**
 * Text widths from a TrueType font's advance widths (cmap + hmtx tables), for Vega's layout.
 * Headless Vega has no canvas to measure text with and otherwise guesses 0.8 em per character,
 * which places axis titles and legends far from labels drawn in DejaVu Sans (about 0.6 em).
 * Kerning is ignored: it moves these labels by well under a pixel.
 */
import { ValueError } from '../core/errors.js';

export interface FontWidths {
  /** Width of `text` in em. */
  measure(text: string): number;
}

/** Reads the advance widths of a TrueType font (format 4 or 12 Unicode cmap). */
export function parseFontWidths(buf: Uint8Array, name = 'font'): FontWidths {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const bad = (why: string): never => {
    throw new ValueError(`${name}: not a usable TrueType font (${why})`);
  };
  if (buf.byteLength < 12) bad('too short');
  const numTables = dv.getUint16(4);
  const tables = new Map<string, number>();
  for (let i = 0; i < numTables; i++) {
    const rec = 12 + 16 * i;
    if (rec + 16 > buf.byteLength) bad('truncated table directory');
    const tag = String.fromCharCode(buf[rec]!, buf[rec + 1]!, buf[rec + 2]!, buf[rec + 3]!);
    tables.set(tag, dv.getUint32(rec + 8));
  }
  const head = tables.get('head') ?? bad('no head table');
  const hhea = tables.get('hhea') ?? bad('no hhea table');
  const hmtx = tables.get('hmtx') ?? bad('no hmtx table');
  const cmap = tables.get('cmap') ?? bad('no cmap table');
  const unitsPerEm = dv.getUint16(head + 18);
  const nMetrics = dv.getUint16(hhea + 34);
  const advance = (glyph: number) => dv.getUint16(hmtx + 4 * Math.min(glyph, nMetrics - 1)) / unitsPerEm;

  // Prefer the full-repertoire subtable (format 12), else the BMP one (format 4).
  let sub4 = -1;
  let sub12 = -1;
  const nSub = dv.getUint16(cmap + 2);
  for (let i = 0; i < nSub; i++) {
    const platform = dv.getUint16(cmap + 4 + 8 * i);
    const encoding = dv.getUint16(cmap + 6 + 8 * i);
    const off = cmap + dv.getUint32(cmap + 8 + 8 * i);
    const format = dv.getUint16(off);
    const unicode = platform === 0 || (platform === 3 && (encoding === 1 || encoding === 10));
    if (!unicode) continue;
    if (format === 12) sub12 = off;
    else if (format === 4) sub4 = off;
  }
  if (sub4 < 0 && sub12 < 0) bad('no Unicode cmap subtable');

  const glyphOf = (cp: number): number => {
    if (sub12 >= 0) {
      const nGroups = dv.getUint32(sub12 + 12);
      let lo = 0;
      let hi = nGroups - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const g = sub12 + 16 + 12 * mid;
        const start = dv.getUint32(g);
        const end = dv.getUint32(g + 4);
        if (cp < start) hi = mid - 1;
        else if (cp > end) lo = mid + 1;
        else return dv.getUint32(g + 8) + (cp - start);
      }
      return 0;
    }
    if (cp > 0xffff) return 0;
    const segX2 = dv.getUint16(sub4 + 6);
    const ends = sub4 + 14;
    const starts = ends + segX2 + 2;
    const deltas = starts + segX2;
    const ranges = deltas + segX2;
    for (let s = 0; s < segX2; s += 2) {
      if (dv.getUint16(ends + s) < cp) continue;
      const start = dv.getUint16(starts + s);
      if (start > cp) return 0;
      const delta = dv.getUint16(deltas + s);
      const ro = dv.getUint16(ranges + s);
      if (ro === 0) return (cp + delta) & 0xffff;
      const g = dv.getUint16(ranges + s + ro + 2 * (cp - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };

  const cache = new Map<number, number>();
  const notdef = advance(0);
  return {
    measure(text: string): number {
      let w = 0;
      for (const ch of text) {
        const cp = ch.codePointAt(0)!;
        let a = cache.get(cp);
        if (a === undefined) {
          const g = glyphOf(cp);
          a = g === 0 ? notdef : advance(g);
          cache.set(cp, a);
        }
        w += a;
      }
      return w;
    },
  };
}

interface TextItem {
  fontSize?: number | string;
  fontWeight?: number | string;
  limit?: number;
  ellipsis?: string;
}

/**
 * A Vega `textMetrics.width(item, text)`: the width in pixels of the (possibly truncated) text,
 * bold text measured with the bold face.
 */
export function vegaWidth(regular: FontWidths, bold: FontWidths): (item: TextItem, text: unknown) => number {
  return (item, raw) => {
    const size = item.fontSize != null ? +item.fontSize || 0 : 11;
    const text = raw == null ? '' : String(raw).trim();
    if (size <= 0 || !text) return 0;
    const w = item.fontWeight;
    const face = w === 'bold' || w === 'bolder' || (typeof w === 'number' && w >= 600) || (typeof w === 'string' && +w >= 600) ? bold : regular;
    const width = (s: string) => face.measure(s) * size;
    const full = width(text);
    const limit = +(item.limit ?? 0);
    if (!(limit > 0) || full < limit) return full;
    // Vega truncates text wider than `limit` to fit it with an ellipsis: measure what it draws.
    const ellipsis = item.ellipsis || '…';
    const room = limit - width(ellipsis);
    let lo = 0;
    let hi = text.length;
    while (lo < hi) {
      const mid = 1 + ((lo + hi) >>> 1);
      if (width(text.slice(0, mid)) < room) lo = mid;
      else hi = mid - 1;
    }
    return width(text.slice(0, lo) + ellipsis);
  };
}
