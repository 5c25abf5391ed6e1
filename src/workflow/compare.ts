import { parse } from 'csv-parse/sync';
import { LightconvError, ValueError } from '../core/errors.js';
import { HEADLINE } from '../eval/metrics.js';
import { mcnemar, pairedTTest, wilcoxonSignedRank } from '../eval/stats.js';

/** One headline metric of two runs, fold by fold, with the paired tests (`compareRuns`). */
export interface MetricComparison {
  metric: string;
  a: number[];
  b: number[];
  mean_a: number;
  mean_b: number;
  /** mean of a − b. */
  mean_diff: number;
  t_test: { statistic: number; p: number };
  wilcoxon: { statistic: number; p: number };
}

/** What `compareRuns` returns (and `lightconv compare --json` prints). */
export interface Comparison {
  a: string;
  b: string;
  folds: number;
  /** Whether both runs used the same data, seed and folds (then the folds are paired image for image). */
  same_splits: boolean;
  metrics: MetricComparison[];
  /** On the test images both runs predicted (matched by file); absent without common test images. */
  mcnemar?: { n: number; a_only_correct: number; b_only_correct: number; statistic: number; p: number; method: string };
  alpha: number;
}

interface RunJson {
  arch?: string;
  seed?: number;
  n_folds?: number;
  dataset?: { root?: string; n?: number; classes?: string[] };
  folds?: Record<string, number>[];
}

async function readRun(dir: string): Promise<RunJson> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`${dir}/metrics.json`, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new LightconvError(`compare: cannot read '${dir}/metrics.json' (${e.code ?? e.message}); is '${dir}' a training run folder?`);
  });
  try {
    return JSON.parse(text) as RunJson;
  } catch (e) {
    throw new ValueError(`compare: '${dir}/metrics.json' is not valid JSON (${(e as Error).message})`);
  }
}

/** file → { true, predicted } for the rows of `split` in a run's predictions.csv. */
async function readPredictions(dir: string, split: string): Promise<Map<string, { truth: string; pred: string }>> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`${dir}/predictions.csv`, 'utf8').catch(() => '');
  if (!text) return new Map();
  const rows = parse(text, { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  return new Map(rows.filter((r) => r.split === split).map((r) => [r.file!, { truth: r.true!, pred: r.predicted! }]));
}

/**
 * `lightconv compare A B`: for each headline metric, the paired t-test and the Wilcoxon
 * signed-rank test over the two runs' cross-validation folds (fold k of A against fold k of B),
 * and McNemar's test on the held-out test images both runs predicted.
 *
 * @example
 * ```ts
 * import { compareRuns } from 'lightconv';
 *
 * const c = await compareRuns('runs/mobilenet', 'runs/eca-mobilenet');
 * for (const m of c.metrics) console.log(m.metric, m.mean_diff, m.wilcoxon.p);
 * ```
 */
export async function compareRuns(dirA: string, dirB: string, opts: { alpha?: number } = {}): Promise<Comparison> {
  const [a, b] = await Promise.all([readRun(dirA), readRun(dirB)]);
  const fa = a.folds ?? [];
  const fb = b.folds ?? [];
  if (fa.length < 2 || fb.length < 2) throw new ValueError(`compare: both runs need cross-validation folds (train with --folds K); ${fa.length < 2 ? dirA : dirB} has ${Math.min(fa.length, fb.length)}`);
  if (fa.length !== fb.length) throw new ValueError(`compare: ${dirA} has ${fa.length} folds but ${dirB} has ${fb.length}; paired tests need the same folds`);
  const same = a.seed === b.seed && a.dataset?.root === b.dataset?.root && a.dataset?.n === b.dataset?.n;
  const metrics: MetricComparison[] = HEADLINE.map((h) => {
    const va = fa.map((f) => f[h]!);
    const vb = fb.map((f) => f[h]!);
    const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
    const t = pairedTTest(va, vb);
    const w = wilcoxonSignedRank(va, vb);
    return { metric: h, a: va, b: vb, mean_a: mean(va), mean_b: mean(vb), mean_diff: mean(va) - mean(vb), t_test: { statistic: t.statistic, p: t.pValue }, wilcoxon: { statistic: w.statistic, p: w.pValue } };
  });
  const out: Comparison = { a: dirA, b: dirB, folds: fa.length, same_splits: same, metrics, alpha: opts.alpha ?? 0.05 };
  const [pa, pb] = await Promise.all([readPredictions(dirA, 'test'), readPredictions(dirB, 'test')]);
  const common = [...pa.keys()].filter((f) => pb.has(f));
  if (common.length > 0) {
    const truth: string[] = [];
    const predA: string[] = [];
    const predB: string[] = [];
    for (const f of common) {
      const ra = pa.get(f)!;
      const rb = pb.get(f)!;
      if (ra.truth !== rb.truth) throw new ValueError(`compare: '${f}' is '${ra.truth}' in ${dirA} but '${rb.truth}' in ${dirB}`);
      truth.push(ra.truth);
      predA.push(ra.pred);
      predB.push(rb.pred);
    }
    const m = mcnemar(truth, predA, predB);
    out.mcnemar = { n: common.length, a_only_correct: m.b, b_only_correct: m.c, statistic: m.statistic, p: m.pValue, method: m.method };
  }
  return out;
}

/**
 * The comparison as a text table, one string per line (what `lightconv compare` prints).
 *
 * @example
 * ```ts
 * import { compareRuns, formatComparison } from 'lightconv';
 *
 * console.log(formatComparison(await compareRuns('runs/a', 'runs/b')).join('\n'));
 * ```
 */
export function formatComparison(c: Comparison): string[] {
  const f = (v: number) => v.toFixed(3);
  const p = (v: number) => (Number.isNaN(v) ? 'n/a' : v < 0.001 ? '<0.001' : v.toFixed(3));
  const lines = [`A = ${c.a}`, `B = ${c.b}`, `${c.folds} folds${c.same_splits ? ' (same data and seed: paired image for image)' : ' (different data or seed: fold pairs are not the same images)'}`, ''];
  lines.push(`${'metric'.padEnd(20)} ${'A mean'.padStart(7)} ${'B mean'.padStart(7)} ${'A−B'.padStart(7)}  ${'t-test p'.padStart(8)}  ${'Wilcoxon p'.padStart(10)}`);
  for (const m of c.metrics) lines.push(`${m.metric.padEnd(20)} ${f(m.mean_a).padStart(7)} ${f(m.mean_b).padStart(7)} ${f(m.mean_diff).padStart(7)}  ${p(m.t_test.p).padStart(8)}  ${p(m.wilcoxon.p).padStart(10)}`);
  if (c.mcnemar) lines.push('', `McNemar (${c.mcnemar.method}) on ${c.mcnemar.n} common test images: only A right ${c.mcnemar.a_only_correct}, only B right ${c.mcnemar.b_only_correct}, p = ${p(c.mcnemar.p)}`);
  const sig = c.metrics.filter((m) => m.t_test.p < c.alpha && m.wilcoxon.p < c.alpha).map((m) => m.metric);
  lines.push('', sig.length ? `Significant at α = ${c.alpha} by both tests: ${sig.join(', ')}` : `No significant difference at α = ${c.alpha} (p > ${c.alpha} by at least one test for every metric)`);
  if (c.folds < 6) lines.push(`Note: with ${c.folds} folds the exact Wilcoxon test cannot reach p < ${(2 / 2 ** c.folds).toFixed(4)}.`);
  return lines;
}
