import { stringify } from 'csv-stringify/sync';
import type { EpochLog } from '../train/fit.js';
import type { ClassificationMetrics } from '../eval/metrics.js';
import { calibrationCurve, precisionRecallCurve, rocCurve } from '../eval/metrics.js';
import { HEADLINE } from '../eval/metrics.js';
import { confusionMatrixPlot, foldBars, prCurves, reliabilityDiagram, rocCurves, saveFigure, trainingCurves } from '../report/plots.js';
import { writeReport } from '../report/report.js';
import { writeFilesAtomic } from '../report/atomic.js';
import type { RunExplanations } from './explanations.js';

/**
 * The files of a run or an evaluation: metrics.json, history.csv, predictions.csv, best.onnx,
 * plots/*.png|svg and report.md. Every file is written to a temporary name and renamed, so an
 * interrupted run leaves complete files or none — never half of one.
 */

export interface HistoryRow extends EpochLog {
  /** 0 for the final model, 1…K for cross-validation folds. */
  fold: number;
  /** 'head' (fine-tuning: the new head alone), 'all' (after unfreezing) or 'train'. */
  phase: string;
}

/** One line of a run's predictions.csv: the file, its split, its label and the class probabilities. */
export interface PredictionRow {
  file: string;
  /** 'fold3', 'test', 'validation', 'eval'. */
  split: string;
  /** -1 when unknown (predict). */
  label: number;
  probs: number[];
}

/** One file, written to a temporary name and renamed (src/report/atomic.ts). */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeFilesAtomic([{ path, data }]);
}

export function historyCsv(rows: readonly HistoryRow[]): string {
  return stringify(
    rows.map((r) => [r.fold, r.phase, r.epoch, r.loss, r.accuracy, r.valLoss ?? '', r.valAccuracy ?? '', r.valMetric ?? '', r.lr, (r.timeMs / 1000).toFixed(3)]),
    { header: true, columns: ['fold', 'phase', 'epoch', 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'val_f1_macro', 'lr', 'time_s'] },
  );
}

export function predictionsCsv(rows: readonly PredictionRow[], classes: readonly string[]): string {
  const argmax = (p: number[]) => p.reduce((b, v, i) => (v > p[b]! ? i : b), 0);
  return stringify(
    rows.map((r) => [r.file, r.split, r.label >= 0 ? classes[r.label] : '', classes[argmax(r.probs)], ...r.probs.map((p) => p.toFixed(6))]),
    { header: true, columns: ['file', 'split', 'true', 'predicted', ...classes.map((c) => `p_${c}`)] },
  );
}

/** Rows of probabilities as one row-major array, with the labels. */
function gather(rows: readonly PredictionRow[], C: number): { y: Int32Array; p: Float32Array } {
  const p = new Float32Array(rows.length * C);
  rows.forEach((r, i) => p.set(r.probs, i * C));
  return { y: Int32Array.from(rows, (r) => r.label), p };
}

/** ROC, PR, confusion matrices and the reliability diagram of one set of predictions. */
export async function evaluationPlots(dir: string, rows: readonly PredictionRow[], classes: readonly string[], m: ClassificationMetrics, prefix = ''): Promise<Record<string, string>> {
  const C = classes.length;
  const { y, p } = gather(rows, C);
  const col = (c: number) => Array.from({ length: y.length }, (_, i) => p[i * C + c]!);
  // Two classes: the positive class (index 1) alone; the other curve is its mirror image.
  const shown = C === 2 ? [1] : [...classes.keys()];
  const rocs = shown.map((c) => {
    const r = rocCurve(Array.from(y, (v) => v === c), col(c));
    return { label: classes[c]!, fpr: r.fpr, tpr: r.tpr, auc: m.per_class[classes[c]!]!.roc_auc };
  });
  const prs = shown.map((c) => {
    const r = precisionRecallCurve(Array.from(y, (v) => v === c), col(c));
    return { label: classes[c]!, recall: r.recall, precision: r.precision, ap: m.per_class[classes[c]!]!.pr_auc, prevalence: y.filter((v) => v === c).length / y.length };
  });
  if (C > 2) rocs.push({ label: 'macro average', ...macroRoc(rocs), auc: m.roc_auc_macro });
  // Only when every class has an AP: then the area under the macro curve is pr_auc_macro.
  if (C > 2 && prs.every((c) => Number.isFinite(c.ap))) prs.push({ label: 'macro average', ...macroPrCurve(prs), ap: m.pr_auc_macro, prevalence: NaN });
  const figs: Record<string, string> = {};
  const save = async (name: string, fig: Promise<{ svg: string; png: Uint8Array }>) => {
    await saveFigure(await fig, `${dir}/plots/${prefix}${name}`);
    figs[name] = `plots/${prefix}${name}.png`;
  };
  await save('roc', rocCurves(rocs));
  await save('pr', prCurves(prs));
  await save('confusion_matrix', confusionMatrixPlot(m.confusion_matrix, [...classes]));
  await save('confusion_matrix_normalized', confusionMatrixPlot(m.confusion_matrix, [...classes], { normalize: true }));
  await save('reliability', reliabilityDiagram(calibrationCurve(y, p, 15), m.ece));
  return figs;
}

/** Macro-average ROC: the per-class TPRs interpolated on the union of their FPRs, then averaged (scikit-learn's example). */
function macroRoc(curves: { fpr: number[]; tpr: number[] }[]): { fpr: number[]; tpr: number[] } {
  const grid = [...new Set(curves.flatMap((c) => c.fpr))].sort((a, b) => a - b);
  const interp = (xs: number[], ys: number[], x: number) => {
    // Largest TPR at an FPR ≤ x (the ROC step function), interpolating linearly between points.
    let k = 0;
    while (k + 1 < xs.length && xs[k + 1]! <= x) k++;
    if (k + 1 >= xs.length || xs[k]! === x) return ys[k]!;
    const t = (x - xs[k]!) / (xs[k + 1]! - xs[k]!);
    return ys[k]! + t * (ys[k + 1]! - ys[k]!);
  };
  return { fpr: grid, tpr: grid.map((x) => curves.reduce((a, c) => a + interp(c.fpr, c.tpr, x), 0) / curves.length) };
}

/**
 * Macro-average precision-recall curve: the mean of the classes' step functions (each recall step
 * holding the precision that average precision weights it by), on the union of their recalls,
 * in increasing recall. Drawn as steps, the area under it is the mean of the classes' APs.
 */
export function macroPrCurve(curves: readonly { recall: readonly number[]; precision: readonly number[] }[]): { recall: number[]; precision: number[] } {
  // Per class: its distinct recalls, ascending, each with the highest precision reaching it (the
  // point at the highest threshold, where that recall is first reached: what AP counts).
  const steps = curves.map((c) => {
    const best = new Map<number, number>();
    c.recall.forEach((r, i) => best.set(r, Math.max(best.get(r) ?? -Infinity, c.precision[i]!)));
    const recalls = [...best.keys()].sort((a, b) => a - b);
    return { recalls, precision: recalls.map((r) => best.get(r)!) };
  });
  const grid = [...new Set(steps.flatMap((s) => s.recalls))].sort((a, b) => a - b);
  const at = steps.map(() => 0);
  const precision = grid.map((r) =>
    steps.reduce((sum, s, k) => {
      // The step covering r ends at the smallest recall ≥ r (every curve reaches recall 1 or its maximum).
      while (at[k]! < s.recalls.length - 1 && s.recalls[at[k]!]! < r) at[k]!++;
      return sum + s.precision[at[k]!]!;
    }, 0) / steps.length,
  );
  return { recall: grid, precision };
}

export interface RunOutputs {
  metrics: { status: string; evaluated_on: string; files?: unknown; folds?: (ClassificationMetrics & { fold: number })[] };
  history: readonly HistoryRow[];
  predictions: readonly PredictionRow[];
  classes: string[];
  /** null: no model (a cancelled run). */
  modelBytes: Uint8Array | null;
  /** Figures already written under explain/ and the report's section on them. */
  explanations?: RunExplanations;
}

/**
 * Writes a training run's folder; returns the files written (relative).
 *
 * @example
 * ```ts
 * import { writeRunOutputs } from 'lightconv';
 *
 * const files = await writeRunOutputs('runs/cancelled', {
 *   metrics: { status: 'cancelled', evaluated_on: 'none' },
 *   history: [],
 *   predictions: [],
 *   classes: ['benign', 'malignant'],
 *   modelBytes: null,
 * });
 * ```
 */
export async function writeRunOutputs(out: string, o: RunOutputs): Promise<string[]> {
  const files: string[] = [];
  const put = async (name: string, data: string | Uint8Array) => {
    await writeAtomic(`${out}/${name}`, data);
    files.push(name);
  };
  if (o.modelBytes) await put('best.onnx', o.modelBytes);
  await put('history.csv', historyCsv(o.history));
  await put('predictions.csv', predictionsCsv(o.predictions, o.classes));
  const figures: Record<string, string> = {};
  if (o.metrics.status === 'complete') {
    if (o.history.length) {
      await saveFigure(await trainingCurves(o.history.map((h) => ({ ...h, fold: h.fold }))), `${out}/plots/training_curves`);
      figures.training_curves = 'plots/training_curves.png';
    }
    const m = o.metrics as unknown as ClassificationMetrics;
    const evalSplit = o.metrics.evaluated_on === 'test' ? (r: PredictionRow) => r.split === 'test' : o.metrics.evaluated_on === 'out-of-fold' ? (r: PredictionRow) => r.split.startsWith('fold') : (r: PredictionRow) => r.split === 'validation';
    const rows = o.predictions.filter(evalSplit);
    if (rows.length && m.confusion_matrix) Object.assign(figures, await evaluationPlots(out, rows, o.classes, m));
    if (o.metrics.folds?.length) {
      const values = Object.fromEntries(HEADLINE.map((h) => [h, o.metrics.folds!.map((f) => f[h as keyof ClassificationMetrics] as number)]));
      await saveFigure(await foldBars(values), `${out}/plots/folds`);
      figures.folds = 'plots/folds.png';
    }
    for (const f of Object.values(figures)) files.push(f, f.replace(/\.png$/, '.svg'));
  }
  o.metrics.files = { history: 'history.csv', predictions: 'predictions.csv', model: o.modelBytes ? 'best.onnx' : null, report: 'report.md', plots: figures };
  await put('metrics.json', JSON.stringify(o.metrics, null, 2));
  if (o.metrics.status === 'complete') {
    const ex = o.explanations;
    if (ex?.files.length) files.push(...ex.files);
    await writeReport(out, o.metrics as never, { figures, ...(ex?.markdown ? { extraSections: [{ title: 'Explanations', markdown: ex.markdown }] } : {}) });
    files.push('report.md');
  }
  return files;
}
