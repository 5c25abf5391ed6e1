import binomialCdf from '@stdlib/stats-base-dists-binomial-cdf';
import chisquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type ClassificationMetrics, HEADLINE, type Probabilities, classificationMetrics, probabilityMatrix } from './metrics.js';

/**
 * Statistical tests for comparing models (paired over cross-validation folds, or over the same
 * test images), bootstrap confidence intervals and summary statistics. The distributions come
 * from stdlib (@stdlib/stats-base-dists-*); the statistics follow SciPy 1.10 as each function says.
 */

export interface TestResult {
  statistic: number;
  pValue: number;
}

function paired(a: ArrayLike<number>, b: ArrayLike<number>, where: string): number[] {
  if (a.length !== b.length) throw new ShapeError(`${where}: the samples have ${a.length} and ${b.length} values; a paired test needs equal lengths`);
  if (a.length < 2) throw new ValueError(`${where}: need at least 2 pairs, got ${a.length}`);
  const d: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!) || !Number.isFinite(b[i]!)) throw new ValueError(`${where}: pair ${i} is (${a[i]}, ${b[i]}); values must be finite`);
    d.push(a[i]! - b[i]!);
  }
  return d;
}

/**
 * Paired t-test, two-sided, as scipy.stats.ttest_rel: d = a − b, t = mean(d) / (sd(d) / √n) with
 * the sample standard deviation (ddof = 1), p = 2·P(T_{n−1} ≥ |t|). Identical samples give
 * t = NaN and p = NaN, as SciPy does (0/0); a constant non-zero difference gives t = ±∞, p = 0.
 *
 * @example
 * ```ts
 * import { pairedTTest } from 'lightconv';
 *
 * const { statistic, pValue, df } = pairedTTest([0.81, 0.84, 0.79, 0.86, 0.83], [0.78, 0.80, 0.80, 0.82, 0.79]); // per-fold scores
 * ```
 */
export function pairedTTest(a: ArrayLike<number>, b: ArrayLike<number>): TestResult & { df: number; meanDiff: number } {
  const d = paired(a, b, 'pairedTTest');
  const n = d.length;
  const mean = d.reduce((s, v) => s + v, 0) / n;
  const variance = d.reduce((s, v) => s + (v - mean) * (v - mean), 0) / (n - 1);
  const t = mean / Math.sqrt(variance / n);
  const p = Number.isNaN(t) ? NaN : 2 * tCdf(-Math.abs(t), n - 1);
  return { statistic: t, pValue: Math.min(1, p), df: n - 1, meanDiff: mean };
}

/** Average ranks (1-based) of the values, ties sharing their mean rank, as scipy.stats.rankdata. */
function rankdata(v: readonly number[]): { ranks: number[]; tieSizes: number[] } {
  const idx = v.map((_, i) => i).sort((x, y) => v[x]! - v[y]!);
  const ranks = new Array<number>(v.length);
  const tieSizes: number[] = [];
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j < idx.length && v[idx[j]!] === v[idx[i]!]) j++;
    for (let k = i; k < j; k++) ranks[idx[k]!] = (i + 1 + j) / 2;
    if (j - i > 1) tieSizes.push(j - i);
    i = j;
  }
  return { ranks, tieSizes };
}

/** Number of subsets of {1…n} with each sum 0…n(n+1)/2 (exact in float64 up to n = 50: ≤ 2^50). */
function signedRankCounts(n: number): number[] {
  const max = (n * (n + 1)) / 2;
  const c = new Array<number>(max + 1).fill(0);
  c[0] = 1;
  for (let k = 1; k <= n; k++) for (let s = (k * (k + 1)) / 2; s >= k; s--) c[s]! += c[s - k]!;
  return c;
}

/**
 * Wilcoxon signed-rank test, two-sided, on d = a − b, following scipy.stats.wilcoxon 1.10 with
 * zero_method = 'wilcox' and correction = false. The statistic is min(R+, R−).
 * - 'exact' when there are no zero differences, no ties among |d| and n ≤ 50: p = 2·min(P(R+ ≤ r),
 *   P(R+ ≥ r)) under the exact null distribution (1 at its centre), clipped to 1 — SciPy's
 *   method='auto'.
 * - 'approx' otherwise: zero differences are dropped, then z = (T − n(n+1)/4) / σ with σ² =
 *   (n(n+1)(2n+1) − ½Σ(t³ − t)) / 24 corrected for tied ranks, p = 2·Φ(−|z|) — SciPy's
 *   method='approx'. (Where |d| has ties but no zeros, SciPy 1.10's 'auto' still reads the exact
 *   table at the truncated half-integer R+; this function uses the tie-corrected normal
 *   approximation there, i.e. SciPy's method='approx'.)
 * When every difference is zero SciPy raises an error; here the result is statistic 0, p = NaN,
 * method 'degenerate', so that a comparison of many metrics can go on.
 *
 * @example
 * ```ts
 * import { wilcoxonSignedRank } from 'lightconv';
 *
 * const { pValue, method } = wilcoxonSignedRank([0.81, 0.84, 0.79, 0.86, 0.83], [0.78, 0.80, 0.80, 0.82, 0.79]);
 * ```
 */
export function wilcoxonSignedRank(a: ArrayLike<number>, b: ArrayLike<number>): TestResult & { n: number; method: 'exact' | 'approx' | 'degenerate'; z?: number } {
  const all = paired(a, b, 'wilcoxonSignedRank');
  const d = all.filter((v) => v !== 0);
  const zeros = all.length - d.length;
  const n = d.length;
  if (n === 0) return { statistic: 0, pValue: NaN, n: 0, method: 'degenerate' };
  const { ranks, tieSizes } = rankdata(d.map(Math.abs));
  let rPlus = 0;
  let rMinus = 0;
  d.forEach((v, i) => {
    if (v > 0) rPlus += ranks[i]!;
    else rMinus += ranks[i]!;
  });
  const T = Math.min(rPlus, rMinus);
  if (zeros === 0 && tieSizes.length === 0 && n <= 50) {
    const counts = signedRankCounts(n);
    const r = rPlus; // an integer: no ties
    const centre = (counts.length - 1) / 2;
    if (r === centre) return { statistic: T, pValue: 1, n, method: 'exact' };
    let less = 0;
    for (let s = 0; s <= r; s++) less += counts[s]!;
    let greater = 0;
    for (let s = r; s < counts.length; s++) greater += counts[s]!;
    const p = (2 * Math.min(less, greater)) / 2 ** n;
    return { statistic: T, pValue: Math.min(1, p), n, method: 'exact' };
  }
  const mean = (n * (n + 1)) / 4;
  let v = n * (n + 1) * (2 * n + 1);
  for (const t of tieSizes) v -= 0.5 * t * (t * t - 1);
  const z = (T - mean) / Math.sqrt(v / 24);
  return { statistic: T, pValue: Math.min(1, 2 * normalCdf(-Math.abs(z), 0, 1)), n, method: 'approx', z };
}

/**
 * McNemar's test on paired predictions of the same samples. b = samples only A gets right,
 * c = samples only B gets right.
 * - b + c < 25: exact two-sided binomial test, p = min(1, 2·P(X ≤ min(b, c))) with X ~ Bin(b + c, ½)
 *   (scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue; statsmodels' mcnemar(exact=True));
 *   the statistic is min(b, c). No discordant pairs gives p = 1.
 * - otherwise: χ² = (|b − c| − 1)² / (b + c) with the continuity correction, p = P(χ²₁ ≥ χ²)
 *   (statsmodels' mcnemar(exact=False, correction=True)).
 *
 * @example
 * ```ts
 * import { mcnemar } from 'lightconv';
 *
 * const { pValue, b, c } = mcnemar([0, 1, 1, 0, 1], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1]);
 * ```
 */
export function mcnemar<T extends string | number>(
  yTrue: ArrayLike<T>,
  predA: ArrayLike<T>,
  predB: ArrayLike<T>,
): TestResult & { b: number; c: number; n: number; method: 'exact binomial' | 'chi-square, continuity-corrected' } {
  const n = yTrue.length;
  if (predA.length !== n || predB.length !== n) throw new ShapeError(`mcnemar: ${n} labels but ${predA.length} and ${predB.length} predictions`);
  if (n === 0) throw new ValueError('mcnemar: no samples');
  let b = 0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    const okA = predA[i] === yTrue[i];
    const okB = predB[i] === yTrue[i];
    if (okA && !okB) b++;
    else if (!okA && okB) c++;
  }
  if (b + c < 25) {
    const k = Math.min(b, c);
    const p = b + c === 0 ? 1 : Math.min(1, 2 * binomialCdf(k, b + c, 0.5));
    return { statistic: k, pValue: p, b, c, n, method: 'exact binomial' };
  }
  const chi2 = (Math.abs(b - c) - 1) ** 2 / (b + c);
  return { statistic: chi2, pValue: 1 - chisquareCdf(chi2, 1), b, c, n, method: 'chi-square, continuity-corrected' };
}

/**
 * Mean and sample standard deviation (ddof = 1, as numpy.std(ddof=1)); at least two values.
 *
 * @example
 * ```ts
 * import { meanStd } from 'lightconv';
 *
 * meanStd([0.8, 0.9, 1.0]); // { mean: 0.9, std: 0.1 } (sample std)
 * ```
 */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  const n = values.length;
  if (n < 2) throw new ValueError(`meanStd: need at least 2 values for a sample standard deviation, got ${n}`);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i]!;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of ascending values, linear interpolation (numpy.percentile's
 * default).
 *
 * @example
 * ```ts
 * import { quantile } from 'lightconv';
 *
 * quantile([1, 2, 3, 4], 0.5); // 2.5
 * ```
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}

/** A metric of resampled data: labels, N×C row-major probabilities, C. One value or several named ones. */
export type MetricFn = (yTrue: Int32Array, probs: Float64Array, numClasses: number) => number | Record<string, number>;

/** Options of `bootstrapCI`. */
export interface BootstrapOptions {
  /** Bootstrap replicates (default 1000). */
  n?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
  /** 1 − confidence level (default 0.05: 95 % intervals). */
  alpha?: number;
  /** Resample within each class, keeping the class counts (default false: plain resampling). */
  stratified?: boolean;
  /** With class names: which ClassificationMetrics fields to bootstrap (default HEADLINE). */
  metrics?: readonly string[];
}

/**
 * Percentile bootstrap confidence intervals: `n` resamples of the samples with replacement
 * (seeded; within each class with `stratified`), the metric on each, and the alpha/2 and
 * 1 − alpha/2 quantiles of the replicates (numpy.percentile's linear interpolation).
 *
 * `what` is either the class names — then the named fields of classificationMetrics (opts.metrics,
 * default HEADLINE) are bootstrapped — or a MetricFn; a function returning one number gives the
 * key 'value'. Replicates where a metric is not finite (a resample without a class makes its AUC
 * undefined) are left out of that metric's interval; a metric with no finite replicate gets
 * [NaN, NaN].
 *
 * @example
 * ```ts
 * import { bootstrapCI } from 'lightconv';
 *
 * const yTrue = [0, 1, 1, 0, 1, 0];
 * const probs = [[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.1, 0.9], [0.7, 0.3]];
 * const ci = bootstrapCI(yTrue, probs, ['neg', 'pos'], { n: 500, metrics: ['accuracy', 'roc_auc_macro'] });
 * console.log(ci.accuracy); // [low, high], 95 %
 * ```
 */
export function bootstrapCI(yTrue: ArrayLike<number>, probs: Probabilities, what: readonly string[] | MetricFn, opts: BootstrapOptions = {}): Record<string, [number, number]> {
  const reps = opts.n ?? 1000;
  const alpha = opts.alpha ?? 0.05;
  if (!(Number.isInteger(reps) && reps >= 1)) throw new ValueError(`bootstrapCI: n must be a positive integer, got ${reps}`);
  if (!(alpha > 0 && alpha < 1)) throw new ValueError(`bootstrapCI: alpha must be in (0, 1), got ${alpha}`);
  const N = yTrue.length;
  if (N === 0) throw new ValueError('bootstrapCI: no samples');
  const C = typeof what === 'function' ? classesOf(probs, N) : what.length;
  const p = probabilityMatrix(probs, N, C, 'bootstrapCI');
  const y = Int32Array.from(yTrue as ArrayLike<number>);
  const metric: (yy: Int32Array, pp: Float64Array) => Record<string, number> =
    typeof what === 'function'
      ? (yy, pp) => {
          const r = what(yy, pp, C);
          return typeof r === 'number' ? { value: r } : r;
        }
      : (() => {
          const names = opts.metrics ?? HEADLINE;
          return (yy: Int32Array, pp: Float64Array) => {
            const m = classificationMetrics(yy, pp, what);
            return Object.fromEntries(names.map((k) => [k, m[k as keyof ClassificationMetrics] as number]));
          };
        })();
  // Strata: one per class, or everything at once.
  const strata: number[][] = [];
  if (opts.stratified) {
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < N; i++) byClass.set(y[i]!, [...(byClass.get(y[i]!) ?? []), i]);
    for (const k of [...byClass.keys()].sort((a, b) => a - b)) strata.push(byClass.get(k)!);
  } else strata.push([...Array(N).keys()]);

  const rng = new Rng(opts.seed ?? 0);
  const samples = new Map<string, number[]>();
  const yy = new Int32Array(N);
  const pp = new Float64Array(N * C);
  for (let r = 0; r < reps; r++) {
    let k = 0;
    for (const s of strata) {
      for (let j = 0; j < s.length; j++, k++) {
        const i = s[rng.int(s.length)]!;
        yy[k] = y[i]!;
        pp.set(p.subarray(i * C, (i + 1) * C), k * C);
      }
    }
    for (const [name, v] of Object.entries(metric(yy, pp))) {
      if (!samples.has(name)) samples.set(name, []);
      if (Number.isFinite(v)) samples.get(name)!.push(v);
    }
  }
  const out: Record<string, [number, number]> = {};
  for (const [name, v] of samples) {
    v.sort((a, b) => a - b);
    out[name] = [quantile(v, alpha / 2), quantile(v, 1 - alpha / 2)];
  }
  return out;
}

function classesOf(probs: Probabilities, n: number): number {
  if (Array.isArray(probs) && probs.length > 0 && typeof probs[0] !== 'number') return (probs[0] as ArrayLike<number>).length;
  const len = (probs as ArrayLike<number>).length;
  if (len % n !== 0) throw new ShapeError(`bootstrapCI: ${len} probabilities cannot be ${n} rows`);
  return len / n;
}
