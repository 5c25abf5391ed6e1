import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { LightconvError, ShapeError, ValueError } from '../../src/core/errors.js';
import {
  confusionMatrixPlot,
  foldBars,
  prCurves,
  reliabilityDiagram,
  rocCurves,
  saveFigure,
  svgToPng,
  trainingCurves,
  truncateLabel,
  type Figure,
} from '../../src/report/index.js';
import { CLASSES, curves, history } from './fixtures.js';

const data = curves();
const tmp = mkdtempSync(join(tmpdir(), 'lightconv-plots-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The <svg> root's width and height attributes. */
function svgSize(svg: string): { width: number; height: number } {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  const w = /\bwidth="([\d.]+)"/.exec(root);
  const h = /\bheight="([\d.]+)"/.exec(root);
  expect(w && h, 'svg root has width and height').toBeTruthy();
  return { width: Number(w![1]), height: Number(h![1]) };
}

/** Text drawn in the SVG (the contents of its <text> elements, entities decoded). */
function svgTexts(svg: string): string[] {
  const dec = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  return [...svg.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => dec(m[1]!));
}

/** Checks a figure: well-formed SVG naming `texts`; PNG at twice the SVG's size, not blank. */
async function checkFigure(fig: Figure, texts: string[]): Promise<void> {
  expect(fig.svg.trimStart().startsWith('<svg')).toBe(true);
  // resvg's XML parser is strict: re-rasterising parses the SVG again and throws on malformed markup.
  await expect(svgToPng(fig.svg, 1)).resolves.toBeInstanceOf(Uint8Array);
  const drawn = svgTexts(fig.svg).join('\n');
  for (const t of texts) expect(drawn, `SVG text contains "${t}"`).toContain(t);
  // The PNG's own signature and IHDR.
  const png = fig.png;
  expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(String.fromCharCode(...png.subarray(12, 16))).toBe('IHDR');
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const { width, height } = svgSize(fig.svg);
  // 2x scale; resvg rounds the scaled size up to whole pixels.
  expect(dv.getUint32(16)).toBe(Math.ceil(width * 2));
  expect(dv.getUint32(20)).toBe(Math.ceil(height * 2));
  // Decoded pixels: many distinct colours (lines, fills, anti-aliased text), a white background.
  const img = PNG.sync.read(Buffer.from(png));
  const colours = new Set<number>();
  let white = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    const c = (img.data[i]! << 16) | (img.data[i + 1]! << 8) | img.data[i + 2]!;
    colours.add(c);
    if (c === 0xffffff) white++;
  }
  expect(colours.size).toBeGreaterThan(20);
  const px = img.width * img.height;
  expect(white / px).toBeGreaterThan(0.2);
  expect(white / px).toBeLessThan(0.995);
}

describe('plots', () => {
  it('training curves: one run, loss/accuracy/metric/lr panels', async () => {
    const fig = await trainingCurves(history(12, 1), { metricName: 'f1_macro', title: 'Run 7 curves' });
    await checkFigure(fig, ['Run 7 curves', 'Loss', 'loss', 'epoch', 'Accuracy and f1_macro', 'train', 'validation', 'validation f1_macro', 'Learning rate']);
  });

  it('training curves: one line per fold', async () => {
    const fig = await trainingCurves(history(8, 5), { metricName: 'balanced_accuracy' });
    await checkFigure(fig, ['Training curves', 'fold 1', 'fold 5', 'epoch']);
    // 5 folds x (train, validation) loss + 5 x 3 accuracy series + 1 lr line = 26 line paths.
    expect((fig.svg.match(/<path[^>]*aria-roledescription="line mark"/g) ?? []).length).toBe(26);
  });

  it('ROC curves with AUC in the legend, long class names cut with an ellipsis', async () => {
    const fig = await rocCurves(data.rocs);
    const auc = data.rocs[0]!.auc.toFixed(3);
    await checkFigure(fig, ['ROC curves', 'False positive rate', 'True positive rate', `dab_negative (AUC ${auc})`, 'macro average (AUC', truncateLabel(CLASSES[2]!)]);
    expect(truncateLabel(CLASSES[2]!)).toMatch(/…$/);
    expect(fig.svg).not.toContain(CLASSES[2]);
    // Square plot area: both axes span the same length.
    const { width, height } = svgSize(fig.svg);
    expect(width).toBeGreaterThan(360);
    expect(height).toBeGreaterThan(360);
  });

  it('PR curves with AP and prevalence baseline', async () => {
    const fig = await prCurves(data.prs, { title: 'PR, test set' });
    await checkFigure(fig, ['PR, test set', 'Recall', 'Precision', `dab_positive_weak (AP ${data.prs[1]!.ap.toFixed(3)})`, 'prevalence']);
    // One dotted baseline per class, at the class's prevalence on the 360-unit-high plot.
    const rules = [...fig.svg.matchAll(/<line[^>]*aria-roledescription="rule mark"[^>]*translate\([\d.]+,([\d.]+)\)[^>]*stroke-dasharray="2,3"/g)];
    expect(rules.map((r) => Number(r[1]))).toEqual(data.prs.map((c) => expect.closeTo(360 * (1 - c.prevalence), 1)));
  });

  it('confusion matrix with counts, and row-normalised', async () => {
    const counts = await confusionMatrixPlot(data.cm, CLASSES);
    await checkFigure(counts, ['Confusion matrix', 'Predicted class', 'True class', 'dab_negative', String(data.cm[0]![0]), String(data.cm[2]![1])]);
    const norm = await confusionMatrixPlot(data.cm, CLASSES, { normalize: true });
    const row0 = data.cm[0]!.reduce((a, b) => a + b, 0);
    await checkFigure(norm, ['row-normalised', (data.cm[0]![0]! / row0).toFixed(2)]);
    // The darkest cell's text is white, a light cell's black.
    expect(norm.svg).toMatch(/fill="white"[^>]*>0\.\d\d</);
    expect(norm.svg).toMatch(/fill="black"[^>]*>0\.\d\d</);
    await expect(confusionMatrixPlot([[1, 2]], ['a', 'b'])).rejects.toThrow(ShapeError);
  });

  it('reliability diagram with ECE and counts', async () => {
    const fig = await reliabilityDiagram(data.bins, data.ece);
    await checkFigure(fig, [`ECE ${data.ece.toFixed(3)}`, 'Accuracy', 'Samples', 'Confidence', 'perfect calibration']);
    await expect(reliabilityDiagram({ confidence: [0.5], accuracy: [0.5, 1], count: [1, 2] }, 0)).rejects.toThrow(ShapeError);
  });

  it('fold bars with mean ± std per metric', async () => {
    const vals = { accuracy: [0.81, 0.84, 0.79, 0.86, 0.83], mcc: [0.66, 0.7, 0.61, 0.74, 0.69] };
    const fig = await foldBars(vals);
    const mean = 0.826;
    const std = Math.sqrt([0.81, 0.84, 0.79, 0.86, 0.83].reduce((a, v) => a + (v - mean) ** 2, 0) / 4);
    await checkFigure(fig, ['Cross-validation: 5 folds', `accuracy  0.826 ± ${std.toFixed(3)}`, 'mcc', 'fold 3']);
    await expect(foldBars({})).rejects.toThrow(ValueError);
  });

  it('rejects bad input with typed errors', async () => {
    await expect(trainingCurves([])).rejects.toThrow(ValueError);
    await expect(rocCurves([{ label: 'a', fpr: [0, 1], tpr: [0], auc: 0.5 }])).rejects.toThrow(/fpr has 2 points but tpr has 1/);
    await expect(svgToPng('<svg xmlns="http://www.w3.org/2000/svg"><g></svg>')).rejects.toThrow();
  });
});

describe('saveFigure', () => {
  it('writes PNG and SVG and leaves no temporary file', async () => {
    const fig = await foldBars({ accuracy: [0.8, 0.9] });
    const out = await saveFigure(fig, join(tmp, 'plots', 'folds'));
    expect(out).toEqual({ png: join(tmp, 'plots', 'folds.png'), svg: join(tmp, 'plots', 'folds.svg') });
    expect(Buffer.compare(readFileSync(out.png), Buffer.from(fig.png))).toBe(0);
    expect(readFileSync(out.svg, 'utf8')).toBe(fig.svg);
    expect(readdirSync(join(tmp, 'plots')).sort()).toEqual(['folds.png', 'folds.svg']);
  });

  it('a failed write leaves the existing files whole and no temporary file', async () => {
    const dir = join(tmp, 'blocked');
    mkdirSync(join(dir, 'roc.png'), { recursive: true }); // a directory where the PNG goes
    writeFileSync(join(dir, 'roc.svg'), 'old svg');
    const fig = await foldBars({ accuracy: [0.8, 0.9] });
    await expect(saveFigure(fig, join(dir, 'roc'))).rejects.toThrow(LightconvError);
    await expect(saveFigure(fig, join(dir, 'roc'))).rejects.toThrow(/roc\.png/);
    expect(readFileSync(join(dir, 'roc.svg'), 'utf8')).toBe('old svg');
    expect(readdirSync(dir).sort()).toEqual(['roc.png', 'roc.svg']);
    expect(readdirSync(join(dir, 'roc.png'))).toEqual([]);
  });
});
