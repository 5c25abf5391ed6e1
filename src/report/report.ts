/**
 * The human-readable report of a training run: RUN/report.md, written from RUN/metrics.json,
 * and a short summary for the terminal.
 */
import { writeFilesAtomic } from './atomic.js';

import { type ClassificationMetrics, HEADLINE } from '../eval/metrics.js';

/** Metric name → its [low, high] confidence interval (bootstrap, 95 % by default). */
export type ConfidenceIntervals = Partial<Record<string, [number, number]>>;

export interface RunMetricsJson extends ClassificationMetrics {
  version?: number;
  created?: string;
  command?: string;
  arch?: string;
  weights?: string | null;
  input_size?: number;
  epochs?: number;
  batch?: number;
  seed?: number;
  dataset?: { root?: string; layout?: string; n?: number; classes?: string[]; counts?: Record<string, number> };
  params?: number;
  macs?: number;
  latency_ms_per_image?: { median: number; p95?: number; batch?: number; threads?: number; backend?: string };
  ci95?: ConfidenceIntervals;
  folds?: Array<ClassificationMetrics & { fold: number }>;
  mean?: Partial<Record<string, number>>;
  std?: Partial<Record<string, number>>;
  oof?: ClassificationMetrics;
  test?: ClassificationMetrics & { ci95?: ConfidenceIntervals };
  files?: { history?: string; predictions?: string; model?: string; plots?: Record<string, string> };
}

/** Options of `writeReport` / `renderReport`: title, figures and extra Markdown sections. */
export interface ReportOptions {
  title?: string;
  /** Figure name -> PNG path relative to the run folder (its SVG beside it); default metrics.files.plots. */
  figures?: Record<string, string>;
  extraSections?: { title: string; markdown: string }[];
}

// ---------------------------------------------------------------------------------------------
// Formatting: rates as percentages with one decimal, other scores with three decimals.

const LABELS: Record<string, string> = {
  accuracy: 'Accuracy',
  balanced_accuracy: 'Balanced accuracy',
  precision_macro: 'Precision (macro)',
  recall_macro: 'Recall / sensitivity (macro)',
  f1_macro: 'F1 (macro)',
  specificity_macro: 'Specificity (macro)',
  roc_auc_macro: 'ROC AUC (macro, one-vs-rest)',
  pr_auc_macro: 'PR AUC (macro, one-vs-rest)',
  precision_weighted: 'Precision (weighted)',
  recall_weighted: 'Recall (weighted)',
  f1_weighted: 'F1 (weighted)',
  mcc: 'Matthews correlation (MCC)',
  cohen_kappa: "Cohen's kappa",
  ece: 'Expected calibration error (ECE)',
  log_loss: 'Log loss',
};

const SHORT: Record<string, string> = {
  accuracy: 'Acc.',
  balanced_accuracy: 'Bal. acc.',
  precision_macro: 'Prec.',
  recall_macro: 'Recall',
  f1_macro: 'F1',
  specificity_macro: 'Spec.',
  roc_auc_macro: 'ROC AUC',
  pr_auc_macro: 'PR AUC',
  mcc: 'MCC',
  cohen_kappa: 'Kappa',
};

const RATES = new Set([
  'accuracy',
  'balanced_accuracy',
  'precision_macro',
  'recall_macro',
  'specificity_macro',
  'precision_weighted',
  'recall_weighted',
  'precision',
  'recall',
  'specificity',
]);

/**
 * The label people read for a metric key ('f1_macro' → 'F1 (macro)'); unknown keys are returned as
 * they are.
 *
 * @example
 * ```ts
 * import { metricLabel } from 'lightconv';
 *
 * metricLabel('balanced_accuracy'); // 'Balanced accuracy'
 * ```
 */
export function metricLabel(name: string): string {
  return LABELS[name] ?? name;
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * A metric's value as the report shows it: rates in percent (1 decimal), the rest with 3 decimals.
 *
 * @example
 * ```ts
 * import { formatMetric } from 'lightconv';
 *
 * formatMetric('accuracy', 0.8734); // '87.3%'
 * formatMetric('roc_auc_macro', 0.91234); // '0.912'
 * ```
 */
export function formatMetric(name: string, value: number | null | undefined): string {
  if (!isNum(value)) return 'n/a';
  return RATES.has(name) ? `${(100 * value).toFixed(1)}%` : value.toFixed(3);
}

/** A spread (std) in the metric's unit. */
function formatSpread(name: string, value: number | null | undefined): string {
  if (!isNum(value)) return 'n/a';
  return RATES.has(name) ? `${(100 * value).toFixed(1)} pp` : value.toFixed(3);
}

/**
 * A confidence interval as the report shows it (`formatMetric` at both ends), or '–' when missing
 * or not finite.
 *
 * @example
 * ```ts
 * import { formatCI } from 'lightconv';
 *
 * formatCI('roc_auc_macro', [0.812, 0.874]); // '0.812 – 0.874'
 * ```
 */
export function formatCI(name: string, ci: [number, number] | undefined): string {
  if (!ci || !isNum(ci[0]) || !isNum(ci[1])) return '–';
  return `${formatMetric(name, ci[0])} – ${formatMetric(name, ci[1])}`;
}

function formatCount(n: number | undefined): string {
  return isNum(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

/** 1234567 -> "1.23 M". */
function formatSI(n: number | undefined): string {
  if (!isNum(n)) return 'n/a';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(2)} k`;
  return String(n);
}

/** Text in a Markdown table cell. */
function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A class name in a table: a code span (names often contain underscores), pipes escaped. */
function code(s: string): string {
  const ticks = s.includes('`') ? '``' : '`';
  const pad = s.startsWith('`') || s.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ')}${pad}${ticks}`;
}

/** A relative link target (spaces and other characters percent-encoded). */
function href(p: string): string {
  return encodeURI(p.split('\\').join('/'));
}

/**
 * A Markdown table; `align` per column: 'l' or 'r'.
 *
 * @example
 * ```ts
 * import { markdownTable } from 'lightconv';
 *
 * const md = markdownTable(['metric', 'value'], [['accuracy', '0.87']], ['l', 'r']);
 * ```
 */
export function markdownTable(header: string[], rows: string[][], align?: Array<'l' | 'r'>): string {
  const a = align ?? header.map((_, i) => (i === 0 ? 'l' : 'r'));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(a.map((x) => (x === 'r' ? '---:' : ':---'))), ...rows.map(line)].join('\n');
}

/**
 * Plain-text table for a terminal: columns padded, first left-aligned, the rest right-aligned.
 *
 * @example
 * ```ts
 * import { formatMetricsTable } from 'lightconv';
 *
 * console.log(formatMetricsTable(['metric', 'value'], [['accuracy', '0.870'], ['f1_macro', '0.812']]).join('\n'));
 * ```
 */
export function formatMetricsTable(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, j) => Math.max(...all.map((r) => Array.from(r[j] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, j) => {
        const pad = ' '.repeat(widths[j]! - Array.from(c).length);
        return j === 0 ? c + pad : pad + c;
      })
      .join('  ')
      .trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)];
}

// ---------------------------------------------------------------------------------------------
// Sections

function metricRows(m: ClassificationMetrics, ci: ConfidenceIntervals | undefined): string[][] {
  return HEADLINE.map((k) => [metricLabel(k), formatMetric(k, m[k]), formatCI(k, ci?.[k])]);
}

function evaluationName(m: RunMetricsJson): string {
  if (m.test) return `the held-out test set (${formatCount(m.test.n)} images), predicted by the final model`;
  if (m.folds?.length) return `the pooled out-of-fold predictions of ${m.folds.length}-fold cross-validation (${formatCount(m.n)} images)`;
  return `${formatCount(m.n)} images`;
}

function perClassTable(m: ClassificationMetrics): string {
  const rows = m.classes.map((c) => {
    const p = m.per_class[c];
    if (!p) return [code(c), 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'];
    return [
      code(c),
      formatMetric('precision', p.precision),
      formatMetric('recall', p.recall),
      formatMetric('specificity', p.specificity),
      formatMetric('f1', p.f1),
      formatCount(p.support),
      formatMetric('roc_auc', p.roc_auc),
      formatMetric('pr_auc', p.pr_auc),
    ];
  });
  return markdownTable(['Class', 'Precision', 'Recall (sensitivity)', 'Specificity', 'F1', 'Support', 'ROC AUC', 'PR AUC (AP)'], rows);
}

function confusionTable(m: ClassificationMetrics): string {
  const cm = m.confusion_matrix;
  const header = ['True \\ predicted', ...m.classes.map(code), 'Total', 'Recall'];
  const rows = m.classes.map((c, t) => {
    const row = cm[t] ?? [];
    const total = row.reduce((a, b) => a + b, 0);
    return [code(c), ...m.classes.map((_, p) => formatCount(row[p] ?? 0)), formatCount(total), formatMetric('recall', total > 0 ? (row[t] ?? 0) / total : NaN)];
  });
  const colTotals = m.classes.map((_, p) => cm.reduce((a, r) => a + (r[p] ?? 0), 0));
  rows.push(['**Total**', ...colTotals.map(formatCount), formatCount(colTotals.reduce((a, b) => a + b, 0)), '']);
  return markdownTable(header, rows);
}

function foldSections(m: RunMetricsJson): string[] {
  const folds = m.folds ?? [];
  const out: string[] = [];
  out.push(
    `${folds.length}-fold cross-validation. Mean and sample standard deviation (n − 1) over the folds` +
      ` (pp: percentage points):`,
    '',
    markdownTable(
      ['Metric', 'Mean ± std', 'Min', 'Max'],
      HEADLINE.map((k) => {
        const vals = folds.map((f) => f[k]).filter(isNum);
        return [
          metricLabel(k),
          `${formatMetric(k, m.mean?.[k])} ± ${formatSpread(k, m.std?.[k])}`,
          formatMetric(k, vals.length ? Math.min(...vals) : NaN),
          formatMetric(k, vals.length ? Math.max(...vals) : NaN),
        ];
      }),
    ),
    '',
    'Per fold (each fold\'s model evaluated on its held-out fold):',
    '',
    markdownTable(
      ['Fold', 'n', ...HEADLINE.map((k) => SHORT[k]!)],
      folds.map((f) => [String(f.fold), formatCount(f.n), ...HEADLINE.map((k) => formatMetric(k, f[k]))]),
    ),
  );
  if (m.oof && m.test) {
    out.push(
      '',
      `Pooled out-of-fold predictions (${formatCount(m.oof.n)} images): ` +
        HEADLINE.map((k) => `${metricLabel(k)} ${formatMetric(k, m.oof![k])}`).join(', ') +
        '.',
    );
  }
  return out;
}

// The names writeRunOutputs/evaluationPlots use (training_curves, confusion_matrix…) and shorter aliases.
const FIGURE_TITLES: Record<string, string> = {
  history: 'Training curves',
  curves: 'Training curves',
  training_curves: 'Training curves',
  confusion_matrix: 'Confusion matrix',
  confusion_matrix_normalized: 'Confusion matrix (row-normalised)',
  roc: 'ROC curves',
  pr: 'Precision-recall curves',
  confusion: 'Confusion matrix',
  confusion_normalized: 'Confusion matrix (row-normalised)',
  confusion_normalised: 'Confusion matrix (row-normalised)',
  calibration: 'Reliability diagram',
  reliability: 'Reliability diagram',
  folds: 'Per-fold metrics',
};

async function exists(dir: string, rel: string): Promise<boolean> {
  const { access } = await import('node:fs/promises');
  const { resolve } = await import('node:path');
  try {
    await access(resolve(dir, rel));
    return true;
  } catch {
    return false;
  }
}

/**
 * The report's Markdown text (what `writeReport` writes).
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { renderReport, type RunMetricsJson } from 'lightconv';
 *
 * const metrics = JSON.parse(await readFile('runs/exp1/metrics.json', 'utf8')) as RunMetricsJson;
 * const markdown = await renderReport('runs/exp1', metrics, { title: 'Skin lesions' });
 * ```
 */
export async function renderReport(dir: string, m: RunMetricsJson, opts: ReportOptions = {}): Promise<string> {
  const L: string[] = [];
  const push = (...lines: string[]) => L.push(...lines);
  const title = opts.title ?? `Training report: ${m.arch ?? 'model'}${m.dataset?.root ? ` on ${m.dataset.root}` : ''}`;
  push(`# ${title}`, '');
  if (m.created) push(`Created ${m.created}.`, '');

  // What was trained.
  push('## Run', '');
  const setup: string[][] = [
    ['Architecture', m.arch ? code(m.arch) : 'n/a'],
    ['Initial weights', m.weights ? code(m.weights) : 'none (trained from random initialisation)'],
    ['Data', m.dataset?.root ? `${code(m.dataset.root)} (${m.dataset.layout ?? 'folder'} layout, ${formatCount(m.dataset.n ?? m.n)} images)` : 'n/a'],
    ['Classes', String(m.classes.length)],
    ['Input size', isNum(m.input_size) ? `${m.input_size} × ${m.input_size}` : 'n/a'],
    ['Epochs', isNum(m.epochs) ? String(m.epochs) : 'n/a'],
    ['Batch size', isNum(m.batch) ? String(m.batch) : 'n/a'],
    ['Seed', isNum(m.seed) ? String(m.seed) : 'n/a'],
    ['Evaluation', cell(evaluationName(m))],
  ];
  push(markdownTable(['', ''], setup, ['l', 'l']), '');
  if (m.command) push('Command:', '', '```sh', m.command, '```', '');

  // Data.
  push('## Data', '');
  const counts = m.dataset?.counts ?? {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  push(
    markdownTable(
      ['Class', 'Images', 'Share'],
      [
        ...(m.dataset?.classes ?? m.classes).map((c) => [code(c), formatCount(counts[c]), total > 0 && isNum(counts[c]) ? formatMetric('accuracy', counts[c]! / total) : 'n/a']),
        ['**Total**', formatCount(total || m.dataset?.n), total > 0 ? '100.0%' : ''],
      ],
    ),
    '',
  );

  // Headline metrics.
  push('## Headline metrics', '');
  push(`Evaluated on ${evaluationName(m)}. 95% confidence intervals by bootstrap resampling of the images.`, '');
  if (m.folds?.length && m.mean) {
    const rows = metricRows(m, m.ci95).map((r, i) => {
      const k = HEADLINE[i]!;
      return [...r, `${formatMetric(k, m.mean?.[k])} ± ${formatSpread(k, m.std?.[k])}`];
    });
    push(markdownTable(['Metric', 'Value', '95% CI', `${m.folds.length}-fold CV mean ± std`], rows), '');
  } else {
    push(markdownTable(['Metric', 'Value', '95% CI'], metricRows(m, m.ci95)), '');
  }

  if (m.folds?.length) {
    push('## Cross-validation', '');
    push(...foldSections(m), '');
  }

  if (m.test) {
    push('## Held-out test set', '');
    const test = m.test;
    const same = test.n === m.n && HEADLINE.every((k) => test[k] === m[k] || (Number.isNaN(test[k]) && Number.isNaN(m[k])));
    push(`${formatCount(test.n)} images never used in training or model selection, predicted by the final model.`);
    if (same) {
      push('They are the headline evaluation: its metrics and confidence intervals are in the table above, its per-class metrics and confusion matrix below.', '');
    } else {
      push('', markdownTable(['Metric', 'Value', '95% CI'], metricRows(test, test.ci95 ?? m.ci95)), '');
    }
  }

  push('## Per-class metrics', '');
  push('One-vs-rest for each class, on the headline evaluation.', '');
  push(perClassTable(m), '');

  push('## Confusion matrix', '');
  push('Rows: true class; columns: predicted class; counts of images.', '');
  push(confusionTable(m), '');

  push('## Agreement and calibration', '');
  push(
    markdownTable(
      ['Metric', 'Value'],
      ['mcc', 'cohen_kappa', 'ece', 'log_loss', 'f1_weighted'].map((k) => [metricLabel(k), formatMetric(k, (m as unknown as Record<string, number>)[k])]),
    ),
    '',
  );

  push('## Model cost', '');
  const lat = m.latency_ms_per_image;
  push(
    markdownTable(
      ['', ''],
      [
        ['Parameters', isNum(m.params) ? `${formatCount(m.params)} (${formatSI(m.params)})` : 'n/a'],
        ['MACs per image', isNum(m.macs) ? `${formatCount(m.macs)} (${formatSI(m.macs)})` : 'n/a'],
        [
          'Latency per image',
          lat && isNum(lat.median)
            ? `${lat.median.toFixed(2)} ms median${isNum(lat.p95) ? `, ${lat.p95.toFixed(2)} ms p95` : ''}` +
              ` (batch ${lat.batch ?? 1}, ${lat.threads ?? 1} thread${(lat.threads ?? 1) === 1 ? '' : 's'}, ${lat.backend ?? 'cpu'} backend)`
            : 'n/a',
        ],
      ],
      ['l', 'l'],
    ),
    '',
  );

  const figures = opts.figures ?? m.files?.plots ?? {};
  const figNames = Object.keys(figures);
  if (figNames.length) {
    push('## Figures', '');
    for (const name of figNames) {
      const png = figures[name]!;
      const svg = png.replace(/\.png$/i, '.svg');
      const caption = FIGURE_TITLES[name] ?? name;
      push(`### ${caption}`, '');
      push(`[![${caption}](${href(png)})](${href(svg)})`, '');
      push(`PNG: [${png}](${href(png)}) · SVG: [${svg}](${href(svg)})`, '');
    }
  }

  for (const s of opts.extraSections ?? []) push(`## ${s.title}`, '', s.markdown.trimEnd(), '');

  push('## Files', '');
  const files: Array<[string, string]> = [
    ['Metrics (JSON)', 'metrics.json'],
    ['Training history', m.files?.history ?? 'history.csv'],
    ['Predictions', m.files?.predictions ?? 'predictions.csv'],
    ['Model (ONNX)', m.files?.model ?? 'best.onnx'],
  ];
  for (const [what, rel] of files) {
    const here = await exists(dir, rel);
    push(`- ${what}: [${rel}](${href(rel)})${here ? '' : ' (not written)'}`);
  }
  push('');
  return L.join('\n');
}

/**
 * Writes `dir/report.md` (through a temporary file and a rename) and returns its path.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { writeReport, type RunMetricsJson } from 'lightconv';
 *
 * const metrics = JSON.parse(await readFile('runs/exp1/metrics.json', 'utf8')) as RunMetricsJson;
 * const path = await writeReport('runs/exp1', metrics); // runs/exp1/report.md
 * ```
 */
export async function writeReport(dir: string, metrics: RunMetricsJson, opts: ReportOptions = {}): Promise<string> {
  const { join } = await import('node:path');
  const path = join(dir, 'report.md');
  await writeFilesAtomic([{ path, data: await renderReport(dir, metrics, opts) }]);
  return path;
}

/**
 * A few lines for the terminal: what ran, the headline metrics with CIs, folds, cost.
 *
 * @example
 * ```ts
 * import { readFile } from 'node:fs/promises';
 * import { summaryLines, type RunMetricsJson } from 'lightconv';
 *
 * const metrics = JSON.parse(await readFile('runs/exp1/metrics.json', 'utf8')) as RunMetricsJson;
 * for (const line of summaryLines(metrics)) console.log(line);
 * ```
 */
export function summaryLines(m: RunMetricsJson): string[] {
  const lines: string[] = [];
  const what = [m.arch, m.dataset?.n != null ? `${formatCount(m.dataset.n)} images` : undefined, `${m.classes.length} classes`]
    .filter(Boolean)
    .join(', ');
  lines.push(`${what}; evaluated on ${evaluationName(m)}`);
  const rows = HEADLINE.map((k) => [metricLabel(k), formatMetric(k, m[k]), m.ci95?.[k] ? formatCI(k, m.ci95[k]) : '']);
  if (m.folds?.length && m.mean) {
    rows.forEach((r, i) => r.push(`${formatMetric(HEADLINE[i]!, m.mean?.[HEADLINE[i]!])} ± ${formatSpread(HEADLINE[i]!, m.std?.[HEADLINE[i]!])}`));
    lines.push(...formatMetricsTable(['metric', 'value', '95% CI', `${m.folds.length}-fold mean ± std`], rows));
  } else {
    lines.push(...formatMetricsTable(['metric', 'value', '95% CI'], rows));
  }
  const extra = [`ECE ${formatMetric('ece', m.ece)}`, `log loss ${formatMetric('log_loss', m.log_loss)}`];
  if (isNum(m.params)) extra.push(`${formatSI(m.params)} params`);
  if (isNum(m.macs)) extra.push(`${formatSI(m.macs)} MACs`);
  if (m.latency_ms_per_image && isNum(m.latency_ms_per_image.median)) extra.push(`${m.latency_ms_per_image.median.toFixed(2)} ms/image`);
  lines.push(extra.join(', '));
  return lines;
}
