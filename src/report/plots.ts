/**
 * Figures of a training run, each as SVG and PNG, drawn in Node without a browser: Vega-Lite
 * specs rendered by Vega's headless SVG renderer, rasterised by resvg (WebAssembly) with the
 * DejaVu Sans files shipped in assets/fonts, so the text looks the same on every machine.
 *
 * Vega, Vega-Lite and resvg are ESM/WASM packages that only these functions need: they are
 * imported lazily, as are the Node modules, so that the library's CommonJS build and its browser
 * entry never load them.
 */
import type { TopLevelSpec } from 'vega-lite';
import { LightconvError, ShapeError, ValueError } from '../core/errors.js';
import { writeFilesAtomic } from './atomic.js';
import { type FontWidths, parseFontWidths, vegaWidth } from './text_width.js';

/** A rendered figure: the SVG text and a PNG of it at twice the SVG's size. */
export interface Figure {
  svg: string;
  png: Uint8Array;
}

/** Fold 0 is the final model (trained on all development images after cross-validation). */
const foldName = (f: number): string => (f === 0 ? 'final model' : `fold ${f}`);

/** One epoch of a training history (`fit`'s EpochLog, plus the fold it belongs to). */
export interface HistoryRow {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valMetric?: number;
  valAccuracy?: number;
  lr: number;
  fold?: number;
}

/** One ROC curve of `rocCurves`: its legend label, the points and the AUC. */
export interface RocCurve {
  label: string;
  fpr: number[];
  tpr: number[];
  auc: number;
}

/** One precision-recall curve of `prCurves`: its legend label, the points, average precision and prevalence. */
export interface PrCurve {
  label: string;
  recall: number[];
  precision: number[];
  ap: number;
  /** Fraction of positives: the precision of a classifier without skill. NaN/undefined: no baseline drawn. */
  prevalence: number;
}

/** Calibration bins: mean confidence, accuracy and number of samples per bin (equal-width bins on [0, 1]). */
export interface ReliabilityBins {
  confidence: number[];
  accuracy: number[];
  count: number[];
}

/** Options shared by the plots: a title above the figure. */
export interface PlotOptions {
  title?: string;
}

export const FONT_FAMILY = 'DejaVu Sans';
/** Longest class or series name drawn before it is cut with an ellipsis. */
export const MAX_LABEL_CHARS = 28;
/** PNG pixels per SVG unit. */
export const PNG_SCALE = 2;

// Vega-Lite specs are built as plain objects; the library validates them at compile time.
type Spec = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// Assets: fonts and the resvg WebAssembly module, found relative to this module's file (in
// src/report/ when run from sources, in dist/ when run from the build), loaded once.

let fontsPromise: Promise<Uint8Array[]> | undefined;
let resvgPromise: Promise<typeof import('@resvg/resvg-wasm')> | undefined;

const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'];

/** The file this code runs from: `__filename` in the CommonJS build, import.meta.url in ESM. */
async function moduleFile(): Promise<string> {
  if (typeof __filename === 'string' && __filename) return __filename;
  const { fileURLToPath } = await import('node:url');
  return fileURLToPath(import.meta.url);
}

/** The `assets/fonts` folder of the package: the nearest one above this module. */
async function fontsDir(): Promise<string> {
  const path = await import('node:path');
  const { existsSync } = await import('node:fs');
  const override = process.env.LIGHTCONV_FONTS_DIR;
  if (override) return override;
  let dir = path.dirname(await moduleFile());
  const tried: string[] = [];
  for (;;) {
    const candidate = path.join(dir, 'assets', 'fonts');
    tried.push(candidate);
    if (existsSync(path.join(candidate, FONT_FILES[0]!))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new LightconvError(
    `report fonts not found: no ${FONT_FILES[0]} in ${tried.join(', ')} (set LIGHTCONV_FONTS_DIR to a folder holding ${FONT_FILES.join(' and ')})`,
  );
}

function loadFonts(): Promise<Uint8Array[]> {
  fontsPromise ??= (async () => {
    const { readFile } = await import('node:fs/promises');
    const path = await import('node:path');
    const dir = await fontsDir();
    return Promise.all(FONT_FILES.map(async (f) => new Uint8Array(await readFile(path.join(dir, f)))));
  })();
  fontsPromise.catch(() => (fontsPromise = undefined));
  return fontsPromise;
}

let widthsPromise: Promise<{ regular: FontWidths; bold: FontWidths }> | undefined;

/** The advance widths of the bundled fonts (for figures laid out by hand, as the explanations' overlays). */
export function fontWidths(): Promise<{ regular: FontWidths; bold: FontWidths }> {
  widthsPromise ??= loadFonts().then(([r, b]) => ({ regular: parseFontWidths(r!, FONT_FILES[0]), bold: parseFontWidths(b!, FONT_FILES[1]) }));
  widthsPromise.catch(() => (widthsPromise = undefined));
  return widthsPromise;
}

function loadResvg(): Promise<typeof import('@resvg/resvg-wasm')> {
  resvgPromise ??= (async () => {
    const [{ createRequire }, { readFile }, resvg] = await Promise.all([
      import('node:module'),
      import('node:fs/promises'),
      import('@resvg/resvg-wasm'),
    ]);
    // The .wasm is read from the installed package, never fetched.
    const wasmPath = createRequire(await moduleFile()).resolve('@resvg/resvg-wasm/index_bg.wasm');
    await resvg.initWasm(await readFile(wasmPath));
    return resvg;
  })();
  resvgPromise.catch(() => (resvgPromise = undefined));
  return resvgPromise;
}

// ---------------------------------------------------------------------------------------------
// Rendering

const CONFIG: Spec = {
  font: FONT_FAMILY,
  background: 'white',
  padding: 12,
  title: { font: FONT_FAMILY, fontSize: 15, fontWeight: 'bold', anchor: 'start', offset: 10 },
  axis: {
    labelFont: FONT_FAMILY,
    titleFont: FONT_FAMILY,
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 'bold',
    gridColor: '#e6e6e6',
    labelLimit: 400,
    // Unshifted end labels, and no more ticks than the labels have room for.
    labelFlush: false,
    labelOverlap: true,
  },
  axisQuantitative: { tickCount: 6 },
  legend: {
    labelFont: FONT_FAMILY,
    titleFont: FONT_FAMILY,
    labelFontSize: 11,
    titleFontSize: 12,
    labelLimit: 400,
    symbolStrokeWidth: 2.5,
  },
  header: { labelFont: FONT_FAMILY, titleFont: FONT_FAMILY },
  text: { font: FONT_FAMILY },
  view: { stroke: '#bbbbbb' },
  concat: { spacing: 28 },
};

let measurer: ReturnType<typeof vegaWidth> | undefined;

async function render(spec: Spec): Promise<Figure> {
  const [vega, vl, fonts] = await Promise.all([import('vega'), import('vega-lite'), loadFonts()]);
  // Lay text out with the widths of the font it is drawn in (Vega's own headless guess is 0.8 em
  // a character). textMetrics is Vega's process-wide hook for this, as vl-convert uses it.
  measurer ??= vegaWidth(parseFontWidths(fonts[0]!, FONT_FILES[0]), parseFontWidths(fonts[1]!, FONT_FILES[1]));
  (vega as unknown as { textMetrics: { width: unknown } }).textMetrics.width = measurer;
  const compiled = vl.compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    return { svg, png: await svgToPng(svg, PNG_SCALE) };
  } finally {
    view.finalize();
  }
}

/**
 * Rasterises an SVG with the bundled fonts (no system fonts, so the result is machine-independent).
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { svgToPng } from 'lightconv';
 *
 * const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="teal"/></svg>';
 * writeFileSync('box.png', await svgToPng(svg)); // 80 × 40 pixels
 * ```
 */
export async function svgToPng(svg: string, scale = PNG_SCALE): Promise<Uint8Array> {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new ValueError(`svgToPng: scale must be a positive number, got ${scale}`);
  const [{ Resvg }, fontBuffers] = await Promise.all([loadResvg(), loadFonts()]);
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: {
      fontBuffers,
      loadSystemFonts: false,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
  });
  try {
    const img = r.render();
    try {
      return img.asPng();
    } finally {
      img.free();
    }
  } finally {
    r.free();
  }
}

/**
 * Writes `path.png` and `path.svg` (creating the folder). Each goes to a temporary file beside
 * its target, renamed over it only once both are written, so a failed write leaves any
 * existing figure whole and no temporary file behind.
 *
 * @example
 * ```ts
 * import { rocCurves, saveFigure } from 'lightconv';
 *
 * const fig = await rocCurves([{ label: 'malignant', fpr: [0, 0.2, 1], tpr: [0, 0.8, 1], auc: 0.8 }]);
 * const { png, svg } = await saveFigure(fig, 'plots/roc'); // plots/roc.png and plots/roc.svg
 * ```
 */
export async function saveFigure(fig: Figure, pathWithoutExt: string): Promise<{ png: string; svg: string }> {
  const out = { png: `${pathWithoutExt}.png`, svg: `${pathWithoutExt}.svg` };
  await writeFilesAtomic([
    { path: out.png, data: fig.png },
    { path: out.svg, data: fig.svg },
  ]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/**
 * Cuts a name to `max` characters with an ellipsis.
 *
 * @example
 * ```ts
 * import { truncateLabel } from 'lightconv';
 *
 * truncateLabel('melanocytic nevus of the left forearm', 12); // 'melanocytic…'
 * ```
 */
export function truncateLabel(s: string, max = MAX_LABEL_CHARS): string {
  const chars = Array.from(s);
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

/** Truncated names, kept distinct (a numbered suffix where two cut names collide). */
function distinctLabels(names: string[], max = MAX_LABEL_CHARS): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    let t = truncateLabel(n, max);
    const k = seen.get(t) ?? 0;
    seen.set(t, k + 1);
    if (k > 0) t = `${truncateLabel(n, max - String(k + 1).length - 1)}#${k + 1}`;
    return t;
  });
}

const fmt3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');

function finite(x: number | undefined): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

function checkLengths(what: string, a: string, xs: ArrayLike<number>, b: string, ys: ArrayLike<number>): void {
  if (xs.length !== ys.length) throw new ShapeError(`${what}: ${a} has ${xs.length} points but ${b} has ${ys.length}`);
  if (xs.length === 0) throw new ValueError(`${what}: no points`);
}

function categoryScheme(n: number): string {
  return n <= 10 ? 'tableau10' : 'tableau20';
}

const TABLEAU10 = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const TABLEAU20 = [
  '#4e79a7', '#a0cbe8', '#f28e2b', '#ffbe7d', '#59a14f', '#8cd17d', '#b6992d', '#f1ce63', '#499894', '#86bcb6',
  '#e15759', '#ff9d9a', '#79706e', '#bab0ac', '#d37295', '#fabfd2', '#b07aa1', '#d4a6c8', '#9d7660', '#d7b5a6',
];
const AVERAGE_COLOR = '#222222';
/** Train, validation, validation metric. */
const SERIES_COLORS = ['#4e79a7', '#e15759', '#59a14f'];
const SERIES_DASHES = [[1, 0], [6, 3], [2, 2]];

/** Whether a curve's label names an average over classes (drawn dark and dashed). */
function isAverage(label: string): boolean {
  return /^(macro|micro|weighted)\b/i.test(label);
}

/** Colours for curves: palette colours for the classes in order, near-black for averages. */
function curveColors(labels: string[]): string[] {
  const nClass = labels.filter((l) => !isAverage(l)).length;
  const palette = nClass <= 10 ? TABLEAU10 : TABLEAU20;
  let k = 0;
  return labels.map((l) => (isAverage(l) ? AVERAGE_COLOR : palette[k++ % palette.length]!));
}

// ---------------------------------------------------------------------------------------------
// Plots

/**
 * Training curves: loss (train and validation) and accuracy (train, validation, and the
 * validation metric when it is not accuracy), plus the learning rate when it changes. With
 * several folds each fold is a colour and train/validation a dash style.
 *
 * @example
 * ```ts
 * import { trainingCurves, type EpochLog } from 'lightconv';
 *
 * declare const history: EpochLog[]; // from fit(…)
 * const fig = await trainingCurves(history, { metricName: 'F1 (macro)', title: 'Training' });
 * ```
 */
export async function trainingCurves(
  history: HistoryRow[],
  opts: { metricName?: string; title?: string } = {},
): Promise<Figure> {
  if (history.length === 0) throw new ValueError('trainingCurves: empty history');
  const folds = [...new Set(history.map((h) => h.fold ?? 0))].sort((a, b) => a - b);
  const multi = folds.length > 1;
  const metricName = opts.metricName ?? 'metric';
  const lossRows: Spec[] = [];
  const accRows: Spec[] = [];
  const lrRows: Spec[] = [];
  const showMetric = history.some((h) => finite(h.valMetric)) && metricName !== 'accuracy';
  const metricSeries = `validation ${metricName}`;
  for (const h of history) {
    const fold = foldName(h.fold ?? 0);
    const push = (rows: Spec[], series: string, value: number | undefined) => {
      if (finite(value)) rows.push({ epoch: h.epoch, value, series, fold });
    };
    push(lossRows, 'train', h.loss);
    push(lossRows, 'validation', h.valLoss);
    push(accRows, 'train', h.accuracy);
    push(accRows, 'validation', h.valAccuracy);
    if (showMetric) push(accRows, metricSeries, h.valMetric);
    // The schedule is the same in every fold: drawn once.
    if ((h.fold ?? 0) === folds[0]) push(lrRows, 'lr', h.lr);
  }
  const lrValues = lrRows.map((r) => r.value as number);
  const showLr = lrValues.length > 0 && Math.max(...lrValues) > Math.min(...lrValues);
  const foldNames = folds.map(foldName);
  // One style per series in every panel: colour (one fold) or dash (several folds, colour = fold).
  const present = new Set([...lossRows, ...accRows].map((r) => r.series as string));
  const seriesDomain = ['train', 'validation', metricSeries].filter((x) => present.has(x));

  const panel = (rows: Spec[], yTitle: string, title: string, extraY: Spec = {}): Spec => {
    const enc: Spec = {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: false }, ...extraY },
      detail: { field: 'fold' },
    };
    if (multi) {
      enc.color = { field: 'fold', type: 'nominal', title: 'fold', sort: foldNames, scale: { domain: foldNames, scheme: categoryScheme(folds.length) } };
      enc.strokeDash = { field: 'series', type: 'nominal', title: null, scale: { domain: seriesDomain, range: seriesDomain.map((x) => SERIES_DASHES[x === 'train' ? 0 : x === 'validation' ? 1 : 2]) } };
    } else {
      enc.color = { field: 'series', type: 'nominal', title: null, scale: { domain: seriesDomain, range: seriesDomain.map((x) => SERIES_COLORS[x === 'train' ? 0 : x === 'validation' ? 1 : 2]) } };
    }
    return {
      title: { text: title, fontSize: 13 },
      width: 300,
      height: 220,
      data: { values: rows },
      mark: { type: 'line', point: !multi && rows.length <= 120 ? { size: 20 } : false, strokeWidth: multi ? 1.6 : 2, clip: true },
      encoding: enc,
    };
  };
  const panels: Spec[] = [];
  if (lossRows.length) {
    // A single value (one epoch, a constant loss) gets a span around it, not a zero-width axis.
    const v = lossRows.map((r) => r.value as number);
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    const pad = lo === hi ? Math.max(Math.abs(lo) * 0.1, 0.05) : 0;
    panels.push(panel(lossRows, 'loss', 'Loss', pad ? { scale: { zero: false, domain: [lo - pad, hi + pad] } } : {}));
  }
  if (accRows.length) {
    const title = showMetric ? `Accuracy and ${metricName}` : 'Accuracy';
    panels.push(panel(accRows, showMetric ? `accuracy, ${metricName}` : 'accuracy', title, { scale: { zero: false, domainMax: 1 } }));
  }
  if (showLr) {
    const p = panel(lrRows, 'learning rate', 'Learning rate', { axis: { format: '.1e' } });
    p.encoding.color = { value: '#76b7b2' };
    delete p.encoding.strokeDash;
    p.mark.point = false;
    panels.push(p);
  }
  if (panels.length === 0) throw new ValueError('trainingCurves: no finite loss or accuracy values in the history');
  return render({
    title: opts.title ?? 'Training curves',
    hconcat: panels,
    resolve: { scale: { color: 'shared', strokeDash: 'shared' } },
  });
}

/**
 * ROC curves, one per class (and macro, drawn dashed), with the chance diagonal and AUC in the
 * legend.
 *
 * @example
 * ```ts
 * import { rocCurve, rocCurves } from 'lightconv';
 *
 * const { fpr, tpr } = rocCurve([true, false, true, false], [0.9, 0.1, 0.4, 0.6]);
 * const fig = await rocCurves([{ label: 'positive', fpr, tpr, auc: 0.75 }]);
 * ```
 */
export async function rocCurves(curves: RocCurve[], opts: PlotOptions = {}): Promise<Figure> {
  if (curves.length === 0) throw new ValueError('rocCurves: no curves');
  const names = distinctLabels(curves.map((c) => c.label));
  const legend = curves.map((c, i) => `${names[i]} (AUC ${fmt3(c.auc)})`);
  const rows: Spec[] = [];
  curves.forEach((c, k) => {
    checkLengths(`rocCurves '${c.label}'`, 'fpr', c.fpr, 'tpr', c.tpr);
    const kind = isAverage(c.label) ? 'average' : 'class';
    for (let i = 0; i < c.fpr.length; i++) rows.push({ x: c.fpr[i], y: c.tpr[i], i, curve: legend[k], kind });
  });
  return render({
    title: opts.title ?? 'ROC curves',
    width: 360,
    height: 360,
    layer: [
      {
        data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
        mark: { type: 'line', color: '#999999', strokeDash: [5, 5], strokeWidth: 1.2 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 2, clip: true },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: 'False positive rate (1 − specificity)', scale: { domain: [0, 1] } },
          y: { field: 'y', type: 'quantitative', title: 'True positive rate (sensitivity)', scale: { domain: [0, 1] } },
          order: { field: 'i', type: 'quantitative' },
          color: { field: 'curve', type: 'nominal', scale: { domain: legend, range: curveColors(curves.map((c) => c.label)) }, legend: { orient: 'bottom', direction: 'vertical', columns: curves.length > 6 ? 2 : 1, title: 'grey dashed line: chance (AUC 0.5)', titleFontWeight: 'normal', titleColor: '#555555' } },
          strokeDash: { field: 'kind', type: 'nominal', scale: { domain: ['class', 'average'], range: [[1, 0], [6, 3]] }, legend: null },
        },
      },
    ],
  });
}

/**
 * Precision-recall step curves (averages such as 'macro average' dashed) with each class's
 * prevalence (no-skill precision) as a dotted line.
 *
 * @example
 * ```ts
 * import { prCurves, precisionRecallCurve } from 'lightconv';
 *
 * const { precision, recall } = precisionRecallCurve([true, false, true], [0.8, 0.7, 0.3]);
 * const fig = await prCurves([{ label: 'positive', precision, recall, ap: 0.83, prevalence: 2 / 3 }]);
 * ```
 */
export async function prCurves(curves: PrCurve[], opts: PlotOptions = {}): Promise<Figure> {
  if (curves.length === 0) throw new ValueError('prCurves: no curves');
  const names = distinctLabels(curves.map((c) => c.label));
  const legend = curves.map((c, i) => `${names[i]} (AP ${fmt3(c.ap)})`);
  const rows: Spec[] = [];
  const base: Spec[] = [];
  curves.forEach((c, k) => {
    checkLengths(`prCurves '${c.label}'`, 'recall', c.recall, 'precision', c.precision);
    // Drawn in order of increasing recall; each precision holds on the recall step that ends at it.
    const rev = c.recall[0]! > c.recall[c.recall.length - 1]!;
    const n = c.recall.length;
    for (let j = 0; j < n; j++) {
      const i = rev ? n - 1 - j : j;
      rows.push({ x: c.recall[i], y: c.precision[i], i: j, curve: legend[k], kind: isAverage(c.label) ? 'average' : 'class' });
    }
    if (finite(c.prevalence)) base.push({ y: c.prevalence, curve: legend[k] });
  });
  const color = {
    field: 'curve',
    type: 'nominal',
    scale: { domain: legend, range: curveColors(curves.map((c) => c.label)) },
    legend: { orient: 'bottom', direction: 'vertical', columns: curves.length > 6 ? 2 : 1, title: 'dotted lines: prevalence (precision without skill)', titleFontWeight: 'normal', titleColor: '#555555' },
  };
  return render({
    title: opts.title ?? 'Precision-recall curves',
    width: 360,
    height: 360,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'line', interpolate: 'step-before', strokeWidth: 2, clip: true },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: 'Recall (sensitivity)', scale: { domain: [0, 1] } },
          y: { field: 'y', type: 'quantitative', title: 'Precision (PPV)', scale: { domain: [0, 1] } },
          order: { field: 'i', type: 'quantitative' },
          color,
          // Averages dashed, as in rocCurves.
          strokeDash: { field: 'kind', type: 'nominal', scale: { domain: ['class', 'average'], range: [[1, 0], [6, 3]] }, legend: null },
        },
      },
      {
        data: { values: base },
        mark: { type: 'rule', strokeDash: [2, 3], strokeWidth: 1.5, opacity: 0.9 },
        encoding: { y: { field: 'y', type: 'quantitative' }, color: { field: 'curve', type: 'nominal' } },
      },
    ],
  });
}

/**
 * Confusion matrix heat map (rows: true class, columns: predicted), each cell labelled with its
 * count, or with its row fraction when `normalize` (a row without samples shows a dash).
 *
 * @example
 * ```ts
 * import { confusionMatrix, confusionMatrixPlot } from 'lightconv';
 *
 * const m = confusionMatrix([0, 1, 1, 2], [0, 1, 2, 2]);
 * const fig = await confusionMatrixPlot(m, ['a', 'b', 'c'], { normalize: true });
 * ```
 */
export async function confusionMatrixPlot(
  matrix: number[][],
  classes: string[],
  opts: { normalize?: boolean; title?: string } = {},
): Promise<Figure> {
  const n = classes.length;
  if (n === 0) throw new ValueError('confusionMatrixPlot: no classes');
  if (matrix.length !== n || matrix.some((r) => r.length !== n)) {
    throw new ShapeError(
      `confusionMatrixPlot: matrix is ${matrix.length}x${matrix[0]?.length ?? 0} (rows ${matrix.map((r) => r.length).join(',')}) but there are ${n} classes`,
    );
  }
  const names = distinctLabels(classes, 24);
  const rows: Spec[] = [];
  for (let t = 0; t < n; t++) {
    const total = matrix[t]!.reduce((a, b) => a + b, 0);
    for (let p = 0; p < n; p++) {
      const count = matrix[t]![p]!;
      const value = opts.normalize ? (total > 0 ? count / total : null) : count;
      const text = value === null ? '–' : opts.normalize ? value.toFixed(2) : String(count);
      rows.push({ t: names[t], p: names[p], value, text });
    }
  }
  const max = Math.max(...rows.map((r) => (r.value as number | null) ?? 0));
  // Cells shrink with the number of classes, the text with them.
  const cell = Math.max(26, Math.min(72, Math.floor(480 / n)));
  const fontSize = Math.max(8, Math.min(14, Math.floor(cell / 3.6)));
  const dark = opts.normalize ? 0.5 : max / 2;
  const order = names;
  const enc = {
    x: { field: 'p', type: 'nominal', sort: order, title: 'Predicted class', axis: { labelAngle: -40, labelAlign: 'right', labelLimit: 400 } },
    y: { field: 't', type: 'nominal', sort: order, title: 'True class', axis: { labelLimit: 400 } },
  };
  return render({
    title: opts.title ?? (opts.normalize ? 'Confusion matrix (row-normalised)' : 'Confusion matrix'),
    width: cell * n,
    height: cell * n,
    data: { values: rows },
    encoding: enc,
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            title: opts.normalize ? 'fraction of row' : 'count',
            scale: { scheme: 'blues', domain: [0, opts.normalize ? 1 : Math.max(1, max)] },
            legend: { gradientLength: Math.max(120, cell * n - 20) },
          },
        },
      },
      {
        mark: { type: 'text', fontSize, baseline: 'middle' },
        encoding: {
          text: { field: 'text' },
          // White text on the darker half of the colour scale, black on the lighter.
          color: { condition: { test: `datum.value !== null && datum.value > ${dark}`, value: 'white' }, value: 'black' },
        },
      },
    ],
    config: { view: { stroke: null }, axis: { grid: false, domain: false, ticks: false, labelFontSize: 11 } },
  });
}

/**
 * Reliability diagram: accuracy per confidence bin (bars over the bin) and the bins' mean
 * confidence (points) against the diagonal of perfect calibration, with a histogram of the
 * number of samples per bin below. Bins are taken as equal-width on [0, 1].
 *
 * @example
 * ```ts
 * import { calibrationCurve, expectedCalibrationError, reliabilityDiagram } from 'lightconv';
 *
 * const y = [0, 1, 1];
 * const p = [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]];
 * const fig = await reliabilityDiagram(calibrationCurve(y, p, 10), expectedCalibrationError(y, p));
 * ```
 */
export async function reliabilityDiagram(bins: ReliabilityBins, ece: number, opts: PlotOptions = {}): Promise<Figure> {
  const m = bins.count.length;
  if (m === 0) throw new ValueError('reliabilityDiagram: no bins');
  if (bins.confidence.length !== m || bins.accuracy.length !== m) {
    throw new ShapeError(`reliabilityDiagram: ${bins.confidence.length} confidences, ${bins.accuracy.length} accuracies and ${m} counts`);
  }
  const rows = bins.count.map((count, i) => ({
    lo: i / m,
    hi: (i + 1) / m,
    mid: (i + 0.5) / m,
    confidence: count > 0 && finite(bins.confidence[i]) ? bins.confidence[i] : null,
    accuracy: count > 0 && finite(bins.accuracy[i]) ? bins.accuracy[i] : null,
    count,
  }));
  const filled = rows.filter((r) => r.accuracy !== null);
  const x = { field: 'lo', type: 'quantitative', scale: { domain: [0, 1] }, title: 'Confidence (top-class probability)' };
  const width = 360;
  return render({
    title: opts.title ?? `Reliability diagram (ECE ${fmt3(ece)})`,
    vconcat: [
      {
        width,
        height: 300,
        layer: [
          {
            data: { values: filled },
            mark: { type: 'rect', color: '#4e79a7', opacity: 0.75, stroke: 'white', strokeWidth: 1 },
            encoding: {
              x: { ...x, title: null },
              x2: { field: 'hi' },
              y: { field: 'accuracy', type: 'quantitative', title: 'Accuracy', scale: { domain: [0, 1] } },
              y2: { datum: 0 },
            },
          },
          {
            data: { values: [{ a: 0, b: 0 }, { a: 1, b: 1 }] },
            mark: { type: 'line', color: '#888888', strokeDash: [5, 5], strokeWidth: 1.2 },
            encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } },
          },
          {
            // Points, not a line: bins are separate estimates (a line between a one-image bin and
            // a full one drew a slope that no data shows); the area says how many images.
            data: { values: filled },
            mark: { type: 'point', filled: true, color: '#e15759', opacity: 0.9 },
            encoding: {
              x: { field: 'confidence', type: 'quantitative' },
              y: { field: 'accuracy', type: 'quantitative' },
              size: { field: 'count', type: 'quantitative', scale: { domain: [0, Math.max(1, ...bins.count)], range: [12, 220] }, legend: null },
            },
          },
          {
            // A key drawn by hand: three layers with fixed colours have no shared legend.
            data: { values: [
              { k: 'accuracy per bin', c: '#4e79a7' },
              { k: 'a bin: mean confidence, accuracy (area: images)', c: '#e15759' },
              { k: 'perfect calibration', c: '#888888' },
            ] },
            mark: { type: 'square', filled: true, opacity: 0 },
            encoding: {
              color: {
                field: 'k', type: 'nominal', title: null,
                scale: { domain: ['accuracy per bin', 'a bin: mean confidence, accuracy (area: images)', 'perfect calibration'], range: ['#4e79a7', '#e15759', '#888888'] },
                legend: { orient: 'top', direction: 'horizontal', symbolType: 'square', symbolOpacity: 1, columns: 2 },
              },
            },
          },
        ],
      },
      {
        width,
        height: 90,
        data: { values: rows },
        mark: { type: 'rect', color: '#9c9c9c', stroke: 'white', strokeWidth: 1 },
        encoding: {
          x,
          x2: { field: 'hi' },
          y: { field: 'count', type: 'quantitative', title: 'Samples', axis: { tickMinStep: 1, format: 'd' } },
          y2: { datum: 0 },
        },
      },
    ],
    config: { concat: { spacing: 8 } },
  });
}

/**
 * Per-fold values of each metric as dots (one colour per fold) with the mean as a black tick
 * and ± one sample standard deviation as a bar; the axis label carries "mean ± std".
 *
 * @example
 * ```ts
 * import { foldBars } from 'lightconv';
 *
 * const fig = await foldBars({ accuracy: [0.81, 0.84, 0.79], f1_macro: [0.77, 0.8, 0.74] });
 * ```
 */
export async function foldBars(values: Record<string, number[]>, opts: PlotOptions = {}): Promise<Figure> {
  const metrics = Object.keys(values);
  if (metrics.length === 0) throw new ValueError('foldBars: no metrics');
  const rows: Spec[] = [];
  const stats: Spec[] = [];
  let nFolds = 0;
  // The axis spans the data (to show the spread between folds), up to 1 — the largest value of
  // every headline metric; a mean ± std bar stops there too rather than suggesting scores above 1.
  let lo = Infinity;
  let hi = -Infinity;
  for (const name of metrics) {
    const v = values[name]!.filter(finite);
    if (v.length === 0) continue;
    nFolds = Math.max(nFolds, values[name]!.length);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : NaN;
    const label = `${truncateLabel(name)}  ${fmt3(mean)}${Number.isFinite(std) ? ` ± ${fmt3(std)}` : ''}`;
    values[name]!.forEach((x, i) => {
      if (finite(x)) rows.push({ metric: label, fold: `fold ${i + 1}`, value: x });
    });
    const top = Math.max(...v) <= 1 ? 1 : Infinity;
    stats.push({ metric: label, mean, lo: Number.isFinite(std) ? mean - std : mean, hi: Math.min(top, Number.isFinite(std) ? mean + std : mean) });
    lo = Math.min(lo, ...v, mean - (Number.isFinite(std) ? std : 0));
    hi = Math.max(hi, ...v, Math.min(top, mean + (Number.isFinite(std) ? std : 0)));
  }
  if (rows.length === 0) throw new ValueError('foldBars: no finite values');
  const order = stats.map((s) => s.metric as string);
  const foldNames = Array.from({ length: nFolds }, (_, i) => `fold ${i + 1}`);
  const y = { field: 'metric', type: 'nominal', sort: order, title: null, axis: { labelLimit: 400, labelFontSize: 12 } };
  const x = { field: 'value', type: 'quantitative', title: 'value (dots: folds; bar: mean ± std)', scale: { domain: [Math.floor((lo - 0.02) * 10) / 10, hi <= 1 ? 1 : Math.ceil(hi * 10) / 10], nice: false } };
  return render({
    title: opts.title ?? `Cross-validation: ${nFolds} folds`,
    width: 380,
    // A fixed height (not a step): the fold offsets then share each metric's band.
    height: 34 * stats.length,
    layer: [
      {
        data: { values: stats },
        mark: { type: 'rule', color: '#333333', strokeWidth: 2 },
        encoding: { y, x: { ...x, field: 'lo' }, x2: { field: 'hi' } },
      },
      {
        data: { values: stats },
        mark: { type: 'tick', color: 'black', thickness: 3, size: 24 },
        encoding: { y, x: { ...x, field: 'mean' } },
      },
      {
        data: { values: rows },
        mark: { type: 'point', filled: true, size: 55, opacity: 0.85, stroke: 'white', strokeWidth: 0.8 },
        encoding: {
          y,
          x,
          yOffset: { field: 'fold', type: 'nominal', sort: foldNames, scale: { paddingOuter: 0.6 } },
          color: { field: 'fold', type: 'nominal', sort: foldNames, title: 'fold', scale: { scheme: categoryScheme(nFolds) } },
        },
      },
    ],
  });
}
