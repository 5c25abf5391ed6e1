import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/core/rng.js';
import { classificationMetrics, precisionRecallCurve } from '../../src/eval/metrics.js';
import { evaluationPlots, macroPrCurve } from '../../src/workflow/outputs.js';

/** Seeded 3-class predictions: informative but imperfect, with tied scores (rounded to 0.05). */
function predictions(n: number, seed: number): { y: number[]; probs: number[][] } {
  const rng = new Rng(seed);
  const y: number[] = [];
  const probs: number[][] = [];
  for (let i = 0; i < n; i++) {
    const label = i % 3;
    const raw = [0, 1, 2].map((c) => Math.round(20 * (rng.uniform() + (c === label ? 0.6 : 0))) / 20 + 0.05);
    const s = raw.reduce((a, v) => a + v, 0);
    y.push(label);
    probs.push(raw.map((v) => v / s));
  }
  return { y, probs };
}

describe('the macro-average precision-recall curve', () => {
  it('is the mean of the classes’ AP step functions: the area under its steps is pr_auc_macro', () => {
    for (const seed of [1, 2, 3]) {
      const { y, probs } = predictions(60, seed);
      const curves = [0, 1, 2].map((c) => precisionRecallCurve(y.map((v) => v === c), probs.map((p) => p[c]!)));
      const macro = macroPrCurve(curves);
      expect(macro.recall[0]).toBe(0);
      expect(macro.recall.at(-1)).toBe(1);
      // Steps: each precision holds on the recall interval that ends at it (as prCurves draws it).
      let area = 0;
      for (let k = 1; k < macro.recall.length; k++) area += (macro.recall[k]! - macro.recall[k - 1]!) * macro.precision[k]!;
      const m = classificationMetrics(y, probs, ['a', 'b', 'c']);
      // The same float64 sums in another order: 1e-12.
      expect(Math.abs(area - m.pr_auc_macro)).toBeLessThan(1e-12);
    }
  });

  it('evaluationPlots draws it, with its AP, beside the classes for more than two classes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lightconv-outputs-'));
    try {
      const { y, probs } = predictions(30, 4);
      const classes = ['a', 'b', 'c'];
      const m = classificationMetrics(y, probs, classes);
      const rows = y.map((label, i) => ({ file: `${i}.png`, split: 'test', label, probs: probs[i]! }));
      await evaluationPlots(dir, rows, classes, m);
      const svg = await readFile(join(dir, 'plots', 'pr.svg'), 'utf8');
      expect(svg).toContain(`macro average (AP ${m.pr_auc_macro.toFixed(3)})`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
