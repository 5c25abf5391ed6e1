import { ValueError } from '../core/errors.js';
import type { RgbImage } from '../data/image.js';
import type { Preprocess } from '../data/transforms.js';
import { Tensor } from '../core/tensor.js';
import { type CamModel, checkFits, classProbabilities, loadRgb, resolveSubject, resolveTarget, runModel, subjectPreprocess } from './cam.js';
import { type OverlayOptions, heatFigure, writeFigure } from './overlay.js';

/**
 * A patch classifier slid over a whole image (a slide): each tile is cut from the image at its
 * own resolution, preprocessed as the model's training patches were, and classified; the grid of
 * class probabilities is the heat map.
 */
export interface SlideHeatMap {
  /** [rows, cols] row-major: the class probability of the tile whose corner is (col·stride, row·stride). */
  map: Float32Array;
  /** Columns and rows of tiles. */
  width: number;
  height: number;
  tile: number;
  stride: number;
  classIndex: number;
  className: string;
  imageWidth: number;
  imageHeight: number;
}

/** Options of `slideHeatMap`: tile side and stride (image pixels) are required. */
export interface SlideOptions {
  /** Tile side and stride in image pixels. */
  tile: number;
  stride: number;
  /** Class name or index; default the last class (for a binary classifier, the second: 'positive' in sorted folder order). */
  target?: string | number;
  /** Tiles per forward pass (default 64). */
  batch?: number;
  preprocess?: Preprocess;
  classes?: readonly string[];
}

/**
 * The sliding-window class probability over a whole image (tiles batched through the model).
 *
 * @example
 * ```ts
 * import { saveHeatMap, slideHeatMap } from 'lightconv';
 *
 * const heat = await slideHeatMap('runs/ihc/model.onnx', 'slide.png', { tile: 64, stride: 32, target: 'positive' });
 * await saveHeatMap(heat, 'slide.png', 'slide-heat.png');
 * ```
 */
export async function slideHeatMap(model: CamModel, image: RgbImage | string, opts: SlideOptions): Promise<SlideHeatMap> {
  const what = 'slideHeatMap';
  const { tile, stride } = opts;
  const batch = opts.batch ?? 64;
  for (const [k, v] of [['tile', tile], ['stride', stride], ['batch', batch]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ValueError(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  const img = await loadRgb(image);
  if (tile > img.width || tile > img.height) throw new ValueError(`${what}: tile ${tile} is larger than the image (${img.width}×${img.height})`);
  const s = await resolveSubject(model, opts);
  const p = await subjectPreprocess(s, opts.preprocess);
  const shape = [1, p.channels, p.inputSize, p.inputSize];
  checkFits(s, shape, what, true);
  const cols = Math.floor((img.width - tile) / stride) + 1;
  const rows = Math.floor((img.height - tile) / stride) + 1;
  const { preprocessImage, crop } = await import('../data/transforms.js');
  const tileInput = (i: number) => preprocessImage(crop(img, (i % cols) * stride, Math.floor(i / cols) * stride, tile, tile), p);
  // The class count (and the target) from the first tile.
  const first = runModel(s, new Tensor(tileInput(0), shape), what);
  const k = first.shape[1]!;
  const { index, name } = resolveTarget(s, k, opts.target, k - 1);
  const map = Float32Array.from(classProbabilities(s, tileInput, rows * cols, shape, index, what, batch));
  return { map, width: cols, height: rows, tile, stride, classIndex: index, className: name, imageWidth: img.width, imageHeight: img.height };
}

/**
 * Per image pixel, the mean probability of the tiles covering it; NaN where no tile does (the right
 * and bottom margins).
 *
 * @example
 * ```ts
 * import { heatAtPixels, slideHeatMap } from 'lightconv';
 *
 * const heat = await slideHeatMap('model.onnx', 'slide.png', { tile: 64, stride: 32 });
 * const perPixel = heatAtPixels(heat); // imageWidth × imageHeight, NaN at uncovered margins
 * ```
 */
export function heatAtPixels(h: SlideHeatMap): Float32Array {
  const W = h.imageWidth;
  const H = h.imageHeight;
  const sum = new Float64Array(W * H);
  const count = new Uint32Array(W * H);
  for (let r = 0; r < h.height; r++) {
    for (let c = 0; c < h.width; c++) {
      const v = h.map[r * h.width + c]!;
      for (let y = r * h.stride; y < r * h.stride + h.tile; y++) {
        for (let x = c * h.stride; x < c * h.stride + h.tile; x++) {
          sum[y * W + x] += v;
          count[y * W + x]++;
        }
      }
    }
  }
  const out = new Float32Array(W * H);
  for (let i = 0; i < out.length; i++) out[i] = count[i] ? sum[i]! / count[i]! : NaN;
  return out;
}

/**
 * Draws the heat map over the image: the image, the probability over it, a colour bar (0…1) and a
 * caption, as PNG.
 *
 * @example
 * ```ts
 * import { saveHeatMap, slideHeatMap } from 'lightconv';
 *
 * const heat = await slideHeatMap('model.onnx', 'slide.png', { tile: 64, stride: 64 });
 * await saveHeatMap(heat, 'slide.png', 'heat.png', { colormap: 'inferno' });
 * ```
 */
export async function saveHeatMap(heat: SlideHeatMap, image: RgbImage | string, path: string, opts: OverlayOptions = {}): Promise<void> {
  const img = await loadRgb(image);
  if (img.width !== heat.imageWidth || img.height !== heat.imageHeight) throw new ValueError(`saveHeatMap: the heat map was made on a ${heat.imageWidth}×${heat.imageHeight} image, this one is ${img.width}×${img.height}`);
  let mean = 0;
  let above = 0;
  for (const v of heat.map) {
    mean += v;
    if (v >= 0.5) above++;
  }
  mean /= heat.map.length;
  const n = heat.map.length;
  const fig = await heatFigure(
    {
      title: `Sliding-window probability of '${heat.className}'`,
      subtitle: `${n} tiles of ${heat.tile}×${heat.tile} px every ${heat.stride} px (${heat.width}×${heat.height}) · mean ${mean.toFixed(2)} · ${((100 * above) / n).toFixed(0)} % of tiles ≥ 0.5`,
      caption: [
        `Each tile was classified on its own, preprocessed as the training patches; a pixel shows the mean probability`,
        `of the tiles that cover it (uncovered margins are left without colour). Probabilities are the model's, not calibrated.`,
      ],
      image: img,
      heat: heatAtPixels(heat),
      heatWidth: img.width,
      heatHeight: img.height,
      domain: [0, 1],
      ticks: [0, 0.25, 0.5, 0.75, 1],
      legend: `P(${heat.className}) of the tiles around each pixel`,
      labels: ['image', `P(${heat.className}) over the image`],
    },
    { size: 420, ...opts },
  );
  await writeFigure(fig, path, opts.svg);
}
