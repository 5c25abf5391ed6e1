import { ValueError } from '../core/errors.js';
import type { Shape } from '../core/shape.js';
import type { Preprocess } from '../data/transforms.js';
import { gradCams } from '../explain/cam.js';
import { saveOverlay } from '../explain/overlay.js';
import { saveHeatMap, slideHeatMap } from '../explain/slide.js';
import type { Module } from '../layers/module.js';

/**
 * The explanations a training run's report shows: Grad-CAM on the evaluated images the model was
 * surest about (right and wrong), and, given a whole image (a slide), the patch classifier's
 * sliding-window probability over it.
 */
export interface RunExplanationOptions {
  /** Grad-CAM pictures per class: the most confident correct image, then the most confident error, … (default 2; 0: none). */
  camPerClass?: number;
  /** Grad-CAM layer (a module path); default: the last block whose maps are at least min(7, input/8) pixels on a side. */
  layer?: string;
  /** A whole image to slide the classifier over. */
  slide?: string;
  /** Tile side and stride in slide pixels (default: the training images' side, and half of it). */
  tile?: number;
  stride?: number;
  /** The class whose probability the slide map shows (default the last class). */
  slideClass?: string | number;
}

/** An evaluated image: where to read it, its true class and the model's probabilities. */
export interface ExplainedImage {
  path: string;
  file: string;
  label: number;
  probs: ArrayLike<number>;
}

export interface RunExplanations {
  /** Figures written, relative to the run folder (PNG; the SVG beside each). */
  files: string[];
  /** The report's section (Markdown, links relative to the run folder). */
  markdown: string;
}

/**
 * The Grad-CAM layer for a report: the last top-level block (module path of depth ≤ 2, in the order
 * they run) whose output is at least min(7, input/8) on a side. The default of `gradCam` (the last
 * conv with maps larger than 1×1) gives 2×2 maps on a 32-pixel input, too coarse to show anything.
 */
export function reportCamLayer(model: Module, input: Shape): string | undefined {
  const side = Math.min(7, Math.ceil(Math.min(input[2]!, input[3]!) / 8));
  const names = new Map<Module, string>();
  for (const [n, m] of model.namedModules()) if (n && n.split('.').length <= 2) names.set(m, n);
  let best: string | undefined;
  model.infer(input, (m, _in, out) => {
    const n = names.get(m);
    // A Sequential ends with its last child's maps: keep the child's (more specific) name.
    if (n && out.length === 4 && Math.min(out[2]!, out[3]!) >= side && !(best && n.length < best.length && best.startsWith(`${n}.`))) best = n;
  });
  return best;
}

/** Picks the images to explain: per class, the most confident right answers and errors, alternating. */
export function pickCamImages(rows: readonly ExplainedImage[], classes: number, perClass: number): { row: ExplainedImage; predicted: number; right: boolean }[] {
  const out: { row: ExplainedImage; predicted: number; right: boolean }[] = [];
  for (let c = 0; c < classes; c++) {
    const mine = rows.filter((r) => r.label === c).map((row) => {
      let predicted = 0;
      for (let k = 1; k < classes; k++) if (row.probs[k]! > row.probs[predicted]!) predicted = k;
      return { row, predicted, right: predicted === c, confidence: row.probs[predicted]! };
    });
    const byConfidence = (a: { confidence: number; row: ExplainedImage }, b: { confidence: number; row: ExplainedImage }) => b.confidence - a.confidence || a.row.file.localeCompare(b.row.file);
    const right = mine.filter((m) => m.right).sort(byConfidence);
    const wrong = mine.filter((m) => !m.right).sort(byConfidence);
    for (let k = 0; k < perClass && (right.length || wrong.length); k++) {
      const next = (k % 2 === 0 ? right.shift() ?? wrong.shift() : wrong.shift() ?? right.shift())!;
      out.push({ row: next.row, predicted: next.predicted, right: next.right });
    }
  }
  return out;
}

/** Writes the explanation figures under `out/explain/` and returns the report's section. */
export async function writeRunExplanations(
  out: string,
  model: Module,
  classes: readonly string[],
  preprocess: Preprocess,
  rows: readonly ExplainedImage[],
  opts: RunExplanationOptions = {},
): Promise<RunExplanations> {
  const perClass = opts.camPerClass ?? 2;
  if (!Number.isSafeInteger(perClass) || perClass < 0) throw new ValueError(`camPerClass must be a non-negative integer, got ${perClass}`);
  const files: string[] = [];
  const md: string[] = [];
  const input = [1, preprocess.channels, preprocess.inputSize, preprocess.inputSize];
  // Each module's own mode comes back afterwards (fine-tuning may keep BN frozen in eval mode).
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    if (perClass > 0 && rows.length) {
      const layer = opts.layer ?? reportCamLayer(model, input);
      const picks = pickCamImages(rows, classes.length, perClass);
      md.push(
        `Grad-CAM of the evaluated images the model was surest about, right and wrong, for the class it predicted${layer ? ` (layer ${layer})` : ''}: bright regions raised that class's score. ` +
          'A map is a hint of where the evidence lies, not proof: check that it falls on the tissue or lesion and not on a border, a ruler or a label.',
        '',
        '| Image | True class | Predicted | Grad-CAM |',
        '|---|---|---|---|',
      );
      const cams = await gradCams(model, picks.map((p) => p.row.path), { classes, preprocess, targets: picks.map((p) => p.predicted), ...(layer ? { layer } : {}) });
      for (const [i, p] of picks.entries()) {
        const cam = cams[i]!;
        const name = `explain/gradcam_${i + 1}.png`;
        await saveOverlay(cam, p.row.path, `${out}/${name}`, { svg: true, size: 240, trueClass: classes[p.row.label]! });
        files.push(name, name.replace(/\.png$/, '.svg'));
        md.push(`| \`${p.row.file}\` | ${classes[p.row.label]} | ${classes[p.predicted]} (p = ${Number(p.row.probs[p.predicted]).toFixed(3)})${p.right ? '' : ' — wrong'} | ![Grad-CAM ${i + 1}](${name}) |`);
      }
      md.push('');
    }
    if (opts.slide) {
      const { readImage } = await import('../data/decode.js');
      const img = await readImage(opts.slide);
      const tile = opts.tile ?? preprocess.inputSize;
      const stride = opts.stride ?? Math.max(1, Math.floor(tile / 2));
      const heat = await slideHeatMap(model, img, { tile, stride, classes, preprocess, ...(opts.slideClass !== undefined ? { target: opts.slideClass } : {}) });
      const name = 'explain/slide_heatmap.png';
      await saveHeatMap(heat, img, `${out}/${name}`, { svg: true });
      files.push(name, name.replace(/\.png$/, '.svg'));
      md.push(
        `The classifier slid over the whole image \`${opts.slide.split(/[\\/]/).pop()}\` (${img.width}×${img.height}): ${heat.width * heat.height} tiles of ${tile}×${tile} pixels every ${stride} pixels, each classified on its own; the colour is P(${heat.className}).`,
        '',
        `![Slide heat map](${name})`,
        '',
      );
    }
  } finally {
    for (const [m, on] of modes) m.training = on;
  }
  return { files, markdown: md.join('\n') };
}
