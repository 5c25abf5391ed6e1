import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HEADLINE } from '../../src/eval/metrics.js';
import { renderReport, summaryLines, writeReport, type RunMetricsJson } from '../../src/report/report.js';
import { runMetricsFixture as fixture } from './fixtures.js';
import { formatMetric, formatMetricsTable, metricLabel } from '../../src/report/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'lightconv-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('writeReport', () => {
  it('writes every section, table and link', async () => {
    const m = fixture();
    writeFileSync(join(tmp, 'history.csv'), 'epoch,loss\n');
    const path = await writeReport(tmp, m, { extraSections: [{ title: 'Notes', markdown: 'Stain batch 2 excluded.' }] });
    expect(path).toBe(join(tmp, 'report.md'));
    const md = readFileSync(path, 'utf8');
    expect(readdirSync(tmp).sort()).toEqual(['history.csv', 'report.md']);

    for (const h of ['# Training report: mobilenet_v3_small on datasets/ihc', '## Run', '## Data', '## Headline metrics', '## Cross-validation', '## Held-out test set', '## Per-class metrics', '## Confusion matrix', '## Agreement and calibration', '## Model cost', '## Figures', '## Notes', '## Files']) {
      expect(md, h).toContain(`${h}\n`);
    }
    // What was trained.
    expect(md).toContain('| Architecture | `mobilenet_v3_small` |');
    expect(md).toContain('| Initial weights | `pretrained.onnx` |');
    expect(md).toContain('| Input size | 64 × 64 |');
    expect(md).toContain('| Epochs | 12 |');
    expect(md).toContain('| Seed | 1 |');
    expect(md).toContain('```sh\n' + m.command + '\n```');
    // Class counts with shares; the pipe in a class name is escaped so the table holds.
    expect(md).toContain(`| \`dab_negative\` | 135 | ${((100 * 135) / 267).toFixed(1)}% |`);
    expect(md).toContain('| `weird\\|name` | 44 |');
    // Headline: rates in percent, CI beside.
    // Headline: rates in percent, the CI and (with folds) the folds' mean ± std beside (pp for rates).
    const acc = `${(100 * m.accuracy).toFixed(1)}%`;
    const accCI = `${(100 * m.ci95!.accuracy![0]).toFixed(1)}% – ${(100 * m.ci95!.accuracy![1]).toFixed(1)}%`;
    const accCV = `${(100 * m.mean!.accuracy!).toFixed(1)}% ± ${(100 * m.std!.accuracy!).toFixed(1)} pp`;
    expect(md).toContain(`| Metric | Value | 95% CI | 3-fold CV mean ± std |`);
    expect(md).toContain(`| Accuracy | ${acc} | ${accCI} | ${accCV} |`);
    expect(md).toContain(`| Matthews correlation (MCC) | ${m.mcc.toFixed(3)} | ${m.ci95!.mcc![0].toFixed(3)} – ${m.ci95!.mcc![1].toFixed(3)} | ${m.mean!.mcc!.toFixed(3)} ± ${m.std!.mcc!.toFixed(3)} |`);
    // Folds: mean ± std with min and max, and a row per fold.
    expect(md).toContain(`| Accuracy | ${accCV} | ${(100 * Math.min(...m.folds!.map((f) => f.accuracy))).toFixed(1)}% |`);
    expect(md).toContain(`| F1 (macro) | ${m.mean!.f1_macro!.toFixed(3)} ± ${m.std!.f1_macro!.toFixed(3)} |`);
    // The test set is the headline evaluation here: named, not tabulated twice.
    expect(md).toContain(`${m.test!.n} images never used in training or model selection`);
    expect(md.match(/\| Cohen's kappa \|/g)?.length).toBe(3); // headline, fold summary, agreement table: no copy for the test set
    for (const f of m.folds!) expect(md).toContain(`| ${f.fold} | ${f.n} | ${(100 * f.accuracy).toFixed(1)}% |`);
    expect(md).toContain(`Pooled out-of-fold predictions (${m.oof!.n} images)`);
    // Per class.
    const pc = m.per_class.dab_positive!;
    expect(md).toContain(
      `| \`dab_positive\` | ${(100 * pc.precision).toFixed(1)}% | ${(100 * pc.recall).toFixed(1)}% | ${(100 * pc.specificity).toFixed(1)}% | ${pc.f1.toFixed(3)} | ${pc.support} | ${pc.roc_auc.toFixed(3)} | ${pc.pr_auc.toFixed(3)} |`,
    );
    // Confusion matrix with totals and per-row recall.
    expect(md).toContain('| `dab_negative` | 20 | 2 | 1 | 23 |');
    expect(md).toContain('| **Total** | 21 | 19 | 12 | 52 |');
    // Calibration and cost.
    expect(md).toContain('| Expected calibration error (ECE) | 0.041 |');
    expect(md).toContain('| Log loss | 0.432 |');
    expect(md).toContain('| Parameters | 1,523,456 (1.52 M) |');
    expect(md).toContain('| MACs per image | 56,012,345 (56.01 M) |');
    expect(md).toContain('1.23 ms median, 1.50 ms p95 (batch 1, 1 thread, cpu backend)');
    // Figures embedded and linked to their SVG (spaces encoded).
    expect(md).toContain('[![ROC curves](plots/roc.png)](plots/roc.svg)');
    expect(md).toContain('[![Confusion matrix](plots/confusion.png)](plots/confusion.svg)');
    expect(md).toContain('[![my plot](plots/my%20plot.png)](plots/my%20plot.svg)');
    // The figure names a training run writes get titles too, not their file names.
    const run = await renderReport(tmp, m, { figures: { training_curves: 'plots/training_curves.png', confusion_matrix: 'plots/confusion_matrix.png', confusion_matrix_normalized: 'plots/confusion_matrix_normalized.png' } });
    for (const t of ['Training curves', 'Confusion matrix', 'Confusion matrix (row-normalised)']) expect(run).toContain(`### ${t}\n`);
    expect(run).not.toMatch(/### (training_curves|confusion_matrix)/);
    // Files: present ones plain, missing ones marked.
    expect(md).toContain('- Metrics (JSON): [metrics.json](metrics.json) (not written)');
    expect(md).toContain('- Training history: [history.csv](history.csv)\n');
    expect(md).toContain('- Predictions: [predictions.csv](predictions.csv) (not written)');
    expect(md).toContain('- Model (ONNX): [best.onnx](best.onnx)');
    expect(md).toContain('## Notes\n\nStain batch 2 excluded.');
    // No undefined/NaN leaks.
    expect(md).not.toMatch(/undefined|NaN/);
  });

  it('a test set that is not the headline evaluation gets its own table', async () => {
    const m = fixture();
    m.test = { ...m.test!, accuracy: 0.5, ci95: { accuracy: [0.4, 0.6] } };
    const md = await renderReport(tmp, m);
    const section = md.slice(md.indexOf('## Held-out test set'), md.indexOf('## Per-class metrics'));
    expect(section).toContain('| Accuracy | 50.0% | 40.0% – 60.0% |');
  });

  it('without folds or test: no such sections, n/a for what is missing', async () => {
    const full = fixture();
    const m: RunMetricsJson = { ...full, folds: undefined, mean: undefined, std: undefined, oof: undefined, test: undefined, params: undefined, files: undefined, weights: null };
    const md = await renderReport(tmp, m, { title: 'Plain run', figures: {} });
    expect(md.startsWith('# Plain run\n')).toBe(true);
    expect(md).not.toContain('## Cross-validation');
    expect(md).not.toContain('## Held-out test set');
    expect(md).not.toContain('## Figures');
    expect(md).toContain('| Parameters | n/a |');
    expect(md).toContain('none (trained from random initialisation)');
  });

  it('an existing report survives a failed write', async () => {
    const dir = mkdtempSync(join(tmp, 'ro-'));
    writeFileSync(join(dir, 'report.md'), 'old');
    // A missing run folder below a file: the write cannot start.
    writeFileSync(join(dir, 'file'), '');
    await expect(writeReport(join(dir, 'file', 'run'), fixture())).rejects.toThrow(/report\.md/);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe('old');
    expect(readdirSync(dir).sort()).toEqual(['file', 'report.md']);
  });
});

describe('summaryLines', () => {
  it('lists the headline metrics with CIs and fold means, aligned', () => {
    const m = fixture();
    const lines = summaryLines(m);
    expect(lines[0]).toContain('mobilenet_v3_small, 267 images, 3 classes');
    expect(lines[0]).toContain('held-out test set');
    const acc = lines.find((l) => l.startsWith('Accuracy '))!;
    expect(acc).toContain(formatMetric('accuracy', m.accuracy));
    expect(acc).toContain(`${formatMetric('accuracy', m.mean!.accuracy)} ± `);
    // Header, rule, one row per headline metric; the value column is right-aligned.
    const rows = lines.slice(3, 3 + HEADLINE.length);
    const ends = HEADLINE.map((k, i) => {
      const v = formatMetric(k, m[k]);
      expect(rows[i]!.startsWith(`${metricLabel(k)} `)).toBe(true);
      return rows[i]!.indexOf(` ${v} `) + v.length + 1;
    });
    expect(new Set(ends).size).toBe(1);
    expect(lines.at(-1)).toBe('ECE 0.041, log loss 0.432, 1.52 M params, 56.01 M MACs, 1.23 ms/image');
  });

  it('formatMetricsTable pads columns', () => {
    expect(formatMetricsTable(['a', 'value'], [['long name', '1'], ['b', '22.5%']])).toEqual([
      'a          value',
      '---------  -----',
      'long name      1',
      'b          22.5%',
    ]);
  });
});
