import { interpolateCividis, interpolateInferno, interpolateMagma, interpolatePlasma, interpolateTurbo, interpolateViridis } from 'd3-scale-chromatic';
import { ValueError } from '../core/errors.js';
import type { RgbImage } from '../data/image.js';
import type { Figure } from '../report/plots.js';
import { type Cam, loadRgb, resampleMap } from './cam.js';

/** Drawing maps over images: colour maps, the blend, and a figure with a colour bar legend and a caption. */

// Typed as plain functions so the published declarations do not need d3's type package.
const COLORMAPS: Readonly<Record<'inferno' | 'magma' | 'plasma' | 'viridis' | 'cividis' | 'turbo', (t: number) => string>> = {
  inferno: interpolateInferno,
  magma: interpolateMagma,
  plasma: interpolatePlasma,
  viridis: interpolateViridis,
  cividis: interpolateCividis,
  turbo: interpolateTurbo,
};
/** A colour map of d3-scale-chromatic: inferno, magma, plasma, viridis, cividis or turbo. */
export type ColormapName = keyof typeof COLORMAPS;
/** Every `ColormapName`. */
export const COLORMAP_NAMES = Object.keys(COLORMAPS) as ColormapName[];

const luts = new Map<ColormapName, Uint8Array>();

/**
 * 256 RGB entries of a d3-scale-chromatic colour map.
 *
 * @example
 * ```ts
 * import { colormapLut } from 'lightconv';
 *
 * const lut = colormapLut('viridis'); // 256 × [r, g, b]
 * const [r, g, b] = lut.subarray(3 * 255, 3 * 256); // the brightest colour
 * ```
 */
export function colormapLut(name: ColormapName = 'inferno'): Uint8Array {
  const f = COLORMAPS[name];
  if (!f) throw new ValueError(`unknown colour map '${String(name)}'; the colour maps: ${COLORMAP_NAMES.join(', ')}`);
  let lut = luts.get(name);
  if (!lut) {
    lut = new Uint8Array(256 * 3);
    for (let i = 0; i < 256; i++) lut.set(parseColor(f(i / 255)), 3 * i);
    luts.set(name, lut);
  }
  return lut;
}

function parseColor(c: string): number[] {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
  if (hex) return [1, 2, 3].map((k) => parseInt(hex[k]!, 16));
  const rgb = /rgb\((\d+), ?(\d+), ?(\d+)\)/.exec(c);
  if (rgb) return [1, 2, 3].map((k) => Number(rgb[k]));
  throw new ValueError(`unexpected colour '${c}' from d3-scale-chromatic`);
}

/** How `saveOverlay`, `overlayFigure` and `saveHeatMap` draw: blend weight, colour map, size, SVG. */
export interface OverlayOptions {
  /** Weight of the colour over the image, 0…1 (default 0.5, as pytorch-grad-cam's show_cam_on_image). */
  alpha?: number;
  colormap?: ColormapName;
  /** Longer side of each panel on screen, in CSS pixels (the PNG has twice as many). Default 320. */
  size?: number;
  /** Also write the SVG beside the PNG (same name, .svg). A path ending in .svg writes only the SVG. */
  svg?: boolean;
  /**
   * The image's true class, when known (a labelled test image): the title then says whether the
   * explained class is it, so a map of a wrong answer is not read as evidence for the right one.
   */
  trueClass?: string;
}

/** What `heatFigure` draws: an image, values over it with their colour bar, a title and a caption. */
export interface HeatFigure {
  title: string;
  subtitle?: string;
  /** Lines under the legend, in plain words. */
  caption: string[];
  image: RgbImage;
  /** Values over the image (any resolution, stretched over it); NaN: not covered, drawn without colour. */
  heat: Float32Array;
  heatWidth: number;
  heatHeight: number;
  /** Value range of the colour bar and its ticks. */
  domain: [number, number];
  ticks: number[];
  legend: string;
  labels: [string, string];
}

/** A report figure that also knows its PNG's size in pixels. */
export interface SizedFigure extends Figure {
  width: number;
  height: number;
}

const FONT = 'DejaVu Sans';
const MARGIN = 16;
const GAP = 16;
const SCALE = 2;

/** Text for SVG/XML: markup characters escaped. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Base64 of bytes (data: URLs in SVG), with Node's Buffer or the browser's btoa. */
export function base64(bytes: Uint8Array): string {
  const B = (globalThis as { Buffer?: { from(b: Uint8Array): { toString(enc: string): string } } }).Buffer;
  if (B) return B.from(bytes).toString('base64');
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Nearest-neighbour enlargement by whole pixels (small images keep their pixels visible), else PIL's bilinear. */
async function resizeForDisplay(img: RgbImage, W: number, H: number): Promise<RgbImage> {
  if (W === img.width && H === img.height) return img;
  if (W >= 3 * img.width && H >= 3 * img.height) {
    const out = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) {
      const sy = Math.min(img.height - 1, Math.floor((y * img.height) / H));
      for (let x = 0; x < W; x++) {
        const s = (sy * img.width + Math.min(img.width - 1, Math.floor((x * img.width) / W))) * 3;
        out.set(img.rgb.subarray(s, s + 3), (y * W + x) * 3);
      }
    }
    return { width: W, height: H, rgb: out };
  }
  const { resizeBilinear } = await import('../data/image.js');
  return resizeBilinear(img, W, H);
}

/** The image with the colour-mapped values blended over it (alpha · colour + (1 − alpha) · image). */
export function blendHeat(img: RgbImage, heat: Float32Array, domain: [number, number], lut: Uint8Array, alpha: number): RgbImage {
  if (heat.length !== img.width * img.height) throw new ValueError(`blendHeat: ${heat.length} values for a ${img.width}×${img.height} image`);
  const out = new Uint8Array(img.rgb);
  const span = domain[1] - domain[0] || 1;
  for (let i = 0; i < heat.length; i++) {
    const v = heat[i]!;
    if (Number.isNaN(v)) continue;
    const k = Math.max(0, Math.min(255, Math.round(((v - domain[0]) / span) * 255))) * 3;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(alpha * lut[k + c]! + (1 - alpha) * img.rgb[i * 3 + c]!);
  }
  return { width: img.width, height: img.height, rgb: out };
}

/**
 * Two panels (the image, the image with the heat map over it), a title, a colour bar with ticks and
 * a caption, as SVG and PNG.
 *
 * @example
 * ```ts
 * import { heatFigure, readImage } from 'lightconv';
 *
 * const image = await readImage('x.png');
 * const fig = await heatFigure({
 *   title: 'Edge strength', caption: ['Brighter: stronger edges.'], image,
 *   heat: new Float32Array(16).fill(0.5), heatWidth: 4, heatHeight: 4,
 *   domain: [0, 1], ticks: [0, 0.5, 1], legend: 'strength', labels: ['weak', 'strong'],
 * });
 * // fig.png (bytes), fig.svg (text)
 * ```
 */
export async function heatFigure(f: HeatFigure, opts: OverlayOptions = {}): Promise<SizedFigure> {
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new ValueError(`overlay: alpha must be in [0, 1], got ${alpha}`);
  const lut = colormapLut(opts.colormap ?? 'inferno');
  const size = opts.size ?? 320;
  if (!(size >= 32 && size <= 4096)) throw new ValueError(`overlay: size must be 32…4096 pixels, got ${size}`);
  const long = Math.max(f.image.width, f.image.height);
  // Whole-pixel enlargement for small images, so each pixel stays a square.
  const k = long < size ? Math.max(1, Math.floor(size / long)) : size / long;
  const dw = Math.max(1, Math.round(f.image.width * k));
  const dh = Math.max(1, Math.round(f.image.height * k));
  const base = await resizeForDisplay(f.image, dw * SCALE, dh * SCALE);
  const heat = f.heatWidth === base.width && f.heatHeight === base.height ? f.heat : resampleMap(f.heat, f.heatWidth, f.heatHeight, base.width, base.height);
  const blended = blendHeat(base, heat, f.domain, lut, alpha);
  const { encodePng } = await import('../data/image.js');
  const [left, right] = [encodePng(base.rgb, base.width, base.height), encodePng(blended.rgb, blended.width, blended.height)];

  // Wide enough for the longest line of text (it is not wrapped).
  const { fontWidths } = await import('../report/plots.js');
  const fw = await fontWidths();
  const textWidth = Math.max(
    fw.bold.measure(f.title) * 15,
    f.subtitle ? fw.regular.measure(f.subtitle) * 11.5 : 0,
    fw.regular.measure(f.legend) * 11,
    ...f.caption.map((l) => fw.regular.measure(l) * 10.5),
  );
  const width = Math.ceil(Math.max(2 * dw + GAP + 2 * MARGIN, textWidth + 2 * MARGIN, 420));
  const x0 = Math.round((width - (2 * dw + GAP)) / 2);
  const top = f.subtitle ? 74 : 58;
  const barW = Math.min(320, width - 2 * MARGIN - 40);
  const barX = Math.round((width - barW) / 2);
  const barY = top + dh + 44;
  const capY = barY + 50;
  const height = capY + f.caption.length * 15 + 8;
  const stops = Array.from({ length: 17 }, (_, i) => {
    const j = Math.round((i / 16) * 255) * 3;
    return `<stop offset="${(i / 16).toFixed(4)}" stop-color="rgb(${lut[j]},${lut[j + 1]},${lut[j + 2]})"/>`;
  }).join('');
  const span = f.domain[1] - f.domain[0] || 1;
  const tick = (v: number) => {
    const tx = barX + ((v - f.domain[0]) / span) * barW;
    return `<line x1="${tx.toFixed(1)}" y1="${barY + 12}" x2="${tx.toFixed(1)}" y2="${barY + 16}" stroke="#444" stroke-width="1"/><text x="${tx.toFixed(1)}" y="${barY + 27}" font-size="10.5" text-anchor="middle" fill="#333">${esc(fmtTick(v))}</text>`;
  };
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${MARGIN}" y="24" font-size="15" font-weight="bold" fill="#111">${esc(f.title)}</text>`,
    ...(f.subtitle ? [`<text x="${MARGIN}" y="43" font-size="11.5" fill="#444">${esc(f.subtitle)}</text>`] : []),
    `<text x="${x0}" y="${top - 6}" font-size="11" fill="#333">${esc(f.labels[0])}</text>`,
    `<text x="${x0 + dw + GAP}" y="${top - 6}" font-size="11" fill="#333">${esc(f.labels[1])}</text>`,
    `<image x="${x0}" y="${top}" width="${dw}" height="${dh}" image-rendering="optimizeSpeed" xlink:href="data:image/png;base64,${base64(left)}"/>`,
    `<image x="${x0 + dw + GAP}" y="${top}" width="${dw}" height="${dh}" image-rendering="optimizeSpeed" xlink:href="data:image/png;base64,${base64(right)}"/>`,
    `<rect x="${x0 - 0.5}" y="${top - 0.5}" width="${dw + 1}" height="${dh + 1}" fill="none" stroke="#999" stroke-width="1"/>`,
    `<rect x="${x0 + dw + GAP - 0.5}" y="${top - 0.5}" width="${dw + 1}" height="${dh + 1}" fill="none" stroke="#999" stroke-width="1"/>`,
    `<text x="${width / 2}" y="${barY - 6}" font-size="11" text-anchor="middle" fill="#222">${esc(f.legend)}</text>`,
    `<defs><linearGradient id="cmap" x1="0" x2="1" y1="0" y2="0">${stops}</linearGradient></defs>`,
    `<rect x="${barX}" y="${barY}" width="${barW}" height="12" fill="url(#cmap)" stroke="#888" stroke-width="0.5"/>`,
    ...f.ticks.map(tick),
    ...f.caption.map((line, i) => `<text x="${MARGIN}" y="${capY + i * 15}" font-size="10.5" fill="#555">${esc(line)}</text>`),
    '</svg>',
  ].join('\n');
  const { svgToPng } = await import('../report/plots.js');
  const png = await svgToPng(svg, SCALE);
  return { svg, png, width: width * SCALE, height: height * SCALE };
}

function fmtTick(v: number): string {
  return Number.isInteger(v) ? String(v) : String(+v.toFixed(2));
}

/** Writes a figure: the PNG at `path` (and the SVG beside it with `svg`), or only the SVG when `path` ends in .svg. */
export async function writeFigure(fig: SizedFigure, path: string, svg = false): Promise<void> {
  const { writeFilesAtomic } = await import('../report/atomic.js');
  const files: { path: string; data: string | Uint8Array }[] = [];
  if (/\.svg$/i.test(path)) files.push({ path, data: fig.svg });
  else {
    files.push({ path, data: fig.png });
    if (svg) files.push({ path: path.replace(/\.png$/i, '') + '.svg', data: fig.svg });
  }
  const { mkdir } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await mkdir(dirname(path), { recursive: true });
  await writeFilesAtomic(files);
}

const METHOD_TITLE: Record<Cam['method'], string> = {
  gradcam: 'Grad-CAM',
  'gradcam++': 'Grad-CAM++',
  occlusion: 'Occlusion sensitivity',
  saliency: 'Gradient saliency (SmoothGrad)',
};

const METHOD_CAPTION: Record<Cam['method'], string[]> = {
  gradcam: ["The layer's channel maps, each weighted by the mean gradient of the class score over it, summed,", 'negatives set to 0, scaled so the largest value is 1, and enlarged to the input (bilinear).'],
  'gradcam++': ["Like Grad-CAM, with each channel's weight from positive gradients and their second and third powers", '(Grad-CAM++), so several separate regions of one class show up; scaled so the largest value is 1.'],
  occlusion: ['How much the class probability drops when a square patch of the input is replaced by the image mean,', 'averaged over the patches covering each pixel; scaled so the largest drop is 1 (0: no drop).'],
  saliency: ["How strongly each pixel's value moves the class score (the largest |gradient| over the colour channels),", 'averaged over noisy copies of the input to calm the noise (SmoothGrad); scaled so the largest is 1.'],
};

/**
 * The cam as a figure over the part of `image` the model saw (the preprocessing's centre crop).
 *
 * @example
 * ```ts
 * import { gradCam, overlayFigure } from 'lightconv';
 *
 * const cam = await gradCam('model.onnx', 'x.png');
 * const { png, svg, width, height } = await overlayFigure(cam, 'x.png', { colormap: 'turbo' });
 * ```
 */
export async function overlayFigure(cam: Cam, image: RgbImage | string, opts: OverlayOptions = {}): Promise<SizedFigure> {
  let img = await loadRgb(image);
  const r = cam.region;
  if (r && r.imageWidth === img.width && r.imageHeight === img.height && (r.x > 0.5 || r.y > 0.5 || Math.abs(r.width - img.width) > 0.5 || Math.abs(r.height - img.height) > 0.5)) {
    const { crop } = await import('../data/transforms.js');
    const x = Math.max(0, Math.round(r.x));
    const y = Math.max(0, Math.round(r.y));
    img = crop(img, x, y, Math.min(img.width - x, Math.round(r.width)), Math.min(img.height - y, Math.round(r.height)));
  }
  const layer = cam.layer ? ` · layer ${cam.layer}${cam.raw ? ` (${cam.raw.width}×${cam.raw.height} maps)` : ''}` : '';
  // The map is scaled to its own maximum: for occlusion, say how large that maximum drop was.
  const largest = cam.method === 'occlusion' && cam.raw ? cam.raw.map.reduce((m, v) => Math.max(m, v), 0) : undefined;
  const drop = largest !== undefined ? ` · largest drop ${fmtProb(largest)}` : '';
  // A confident model's probability barely moves under any one patch: the map then ranks tiny effects.
  const faint = largest !== undefined && largest < 0.01 ? [`No patch lowered the probability by even 0.01 (largest ${fmtProb(largest)}): the answer does not rest on any one patch, and the map ranks tiny effects.`] : [];
  return heatFigure(
    {
      title: `${METHOD_TITLE[cam.method]} for '${cam.className}'${opts.trueClass === undefined ? '' : opts.trueClass === cam.className ? ' — the true class' : ` — wrong: the true class is '${opts.trueClass}'`}`,
      subtitle: `class ${cam.classIndex} '${cam.className}', model probability ${fmtProb(cam.score)}${layer}${drop} · input ${cam.width}×${cam.height}`,
      caption: [...METHOD_CAPTION[cam.method], ...faint],
      image: img,
      heat: cam.map,
      heatWidth: cam.width,
      heatHeight: cam.height,
      domain: [0, 1],
      ticks: [0, 0.25, 0.5, 0.75, 1],
      legend: 'importance for the class (0 = none, 1 = the largest in this image)',
      labels: ['image (the part the model saw)', `${METHOD_TITLE[cam.method]} over the image`],
    },
    opts,
  );
}

function fmtProb(p: number): string {
  return p >= 0.995 || p < 0.005 ? p.toPrecision(3) : p.toFixed(2);
}

/**
 * Draws the cam over the image (PNG with colour bar legend and caption) at `path`.
 *
 * @example
 * ```ts
 * import { gradCam, saveOverlay } from 'lightconv';
 *
 * const cam = await gradCam('model.onnx', 'x.png');
 * await saveOverlay(cam, 'x.png', 'x-cam.png', { alpha: 0.4, svg: true });
 * ```
 */
export async function saveOverlay(cam: Cam, image: RgbImage | string, path: string, opts: OverlayOptions = {}): Promise<void> {
  await writeFigure(await overlayFigure(cam, image, opts), path, opts.svg);
}
