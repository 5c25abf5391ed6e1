import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/errors.js';
import { classificationMetrics } from '../../src/eval/metrics.js';
import { bootstrapCI, mcnemar, meanStd, pairedTTest, quantile, wilcoxonSignedRank } from '../../src/eval/stats.js';
import { Rng } from '../../src/core/rng.js';

/**
 * Against SciPy 1.10 / numpy (tests/fixtures/eval/stats.json, scripts/make_eval_fixtures.py).
 * Tolerances: statistics 1e-12 relative (the same float64 formulas); p-values 1e-9 absolute plus
 * 1e-9 relative (stdlib's and SciPy's t, normal, χ² and binomial CDFs are each accurate to a few
 * ulps in the range tested; 1e-9 leaves room for their different algorithms, nothing more).
 */
const fx = JSON.parse(readFileSync(new URL('../fixtures/eval/stats.json', import.meta.url), 'utf8'));
const num = (v: number | null) => (v === null ? NaN : v);

function expectP(actual: number, expected: number, what: string) {
  if (Number.isNaN(expected)) return expect(actual, what).toBeNaN();
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(1e-9 + 1e-9 * Math.abs(expected));
}
function expectStat(actual: number, expected: number, what: string) {
  if (Number.isNaN(expected)) return expect(actual, what).toBeNaN();
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(expected)));
}

describe('pairedTTest = scipy.stats.ttest_rel', () => {
  for (const [i, c] of (fx.ttest_rel as { a: number[]; b: number[]; statistic: number | null; pvalue: number | null }[]).entries()) {
    it(`case ${i} (n = ${c.a.length})`, () => {
      const r = pairedTTest(c.a, c.b);
      expectStat(r.statistic, num(c.statistic), 't');
      expectP(r.pValue, num(c.pvalue), 'p');
      expect(r.df).toBe(c.a.length - 1);
    });
  }
  it('the fixture includes identical samples (NaN, as SciPy)', () => {
    expect((fx.ttest_rel as { pvalue: number | null }[]).some((c) => c.pvalue === null)).toBe(true);
  });
  it('a constant non-zero difference: t = ±∞, p = 0', () => {
    const r = pairedTTest([2, 3, 4], [1, 2, 3]);
    expect(r.statistic).toBe(Infinity);
    expect(r.pValue).toBe(0);
  });
});

describe('wilcoxonSignedRank = scipy.stats.wilcoxon', () => {
  type W = { name: string; a: number[]; b: number[]; zeros: number; ties: boolean; statistic: number; pvalue: number; scipy_call: string };
  const cases = fx.wilcoxon as W[];
  it('the fixture has exact, tied, zero and large-n cases', () => {
    expect(cases.filter((c) => !c.ties && c.zeros === 0 && c.a.length <= 50).length).toBeGreaterThanOrEqual(5);
    expect(cases.some((c) => c.ties && c.zeros === 0)).toBe(true);
    expect(cases.some((c) => c.zeros > 0)).toBe(true);
    expect(cases.some((c) => c.a.length > 50)).toBe(true);
  });
  for (const c of cases) {
    it(`${c.name}: ${c.scipy_call}`, () => {
      const r = wilcoxonSignedRank(c.a, c.b);
      expect(r.method).toBe(!c.ties && c.zeros === 0 && c.a.length <= 50 ? 'exact' : 'approx');
      expectStat(r.statistic, c.statistic, 'T');
      expectP(r.pValue, c.pvalue, 'p');
      expect(r.n).toBe(c.a.length - c.zeros);
    });
  }
  it('all differences zero: p NaN, method degenerate (SciPy raises)', () => {
    const r = wilcoxonSignedRank([0.9, 0.8, 0.7], [0.9, 0.8, 0.7]);
    expect(r.method).toBe('degenerate');
    expect(r.pValue).toBeNaN();
  });
  it('exact p of a hand-counted case: n = 3, all positive → 2·(1/8)', () => {
    const r = wilcoxonSignedRank([1, 2, 3], [0, 0, 0]);
    expect(r.statistic).toBe(0);
    expect(r.pValue).toBe(0.25);
  });
});

describe('mcnemar (binomtest / χ² with continuity correction)', () => {
  type M = { y: number[]; predA: number[]; predB: number[]; b: number; c: number; method: string; statistic: number; pvalue: number };
  for (const c of fx.mcnemar as M[]) {
    it(`b = ${c.b}, c = ${c.c}`, () => {
      const r = mcnemar(c.y, c.predA, c.predB);
      expect([r.b, r.c, r.n]).toEqual([c.b, c.c, c.y.length]);
      expect(r.method).toBe(c.method);
      expectStat(r.statistic, c.statistic, 'statistic');
      expectP(r.pValue, c.pvalue, 'p');
    });
  }
  it('string labels', () => {
    const r = mcnemar(['x', 'y', 'x'], ['x', 'x', 'x'], ['y', 'y', 'x']);
    expect([r.b, r.c]).toEqual([1, 1]);
    expect(r.pValue).toBe(1);
  });
});

describe('meanStd and quantile = numpy', () => {
  for (const c of fx.mean_std as { values: number[]; mean: number; std: number }[]) {
    it(`n = ${c.values.length}`, () => {
      const r = meanStd(c.values);
      expectStat(r.mean, c.mean, 'mean');
      expectStat(r.std, c.std, 'std');
    });
  }
  it('numpy.percentile (linear)', () => {
    const sorted = [...fx.percentile.values].sort((a: number, b: number) => a - b);
    fx.percentile.q.forEach((q: number, i: number) => expectStat(quantile(sorted, q), fx.percentile.percentile[i], `q ${q}`));
  });
});

describe('bootstrapCI', () => {
  // 200 samples, 3 classes, informative probabilities.
  const rng = new Rng(5);
  const y = Array.from({ length: 200 }, (_, i) => i % 3);
  const probs = y.map((t) => {
    const z = [0, 1, 2].map((c) => rng.normal() + (c === t ? 1.5 : 0));
    const e = z.map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
  const classes = ['a', 'b', 'c'];

  it('brackets the point estimate of every headline metric; deterministic from the seed', () => {
    const m = classificationMetrics(y, probs, classes);
    const ci = bootstrapCI(y, probs, classes, { n: 300, seed: 3 });
    for (const [k, [lo, hi]] of Object.entries(ci)) {
      expect(lo, k).toBeLessThan(hi);
      expect(m[k as 'accuracy'], k).toBeGreaterThan(lo);
      expect(m[k as 'accuracy'], k).toBeLessThan(hi);
    }
    expect(Object.keys(ci)).toHaveLength(10);
    expect(bootstrapCI(y, probs, classes, { n: 300, seed: 3 })).toEqual(ci);
    expect(bootstrapCI(y, probs, classes, { n: 300, seed: 4 })).not.toEqual(ci);
  });

  it('a metric function; the accuracy interval matches the binomial standard error', () => {
    const acc = (yy: Int32Array, pp: Float64Array, C: number) => {
      let ok = 0;
      for (let i = 0; i < yy.length; i++) {
        let best = 0;
        for (let j = 1; j < C; j++) if (pp[i * C + j]! > pp[i * C + best]!) best = j;
        if (best === yy[i]) ok++;
      }
      return ok / yy.length;
    };
    const a = classificationMetrics(y, probs, classes).accuracy;
    const ci = bootstrapCI(y, Float64Array.from(probs.flat()), acc, { n: 2000, seed: 1 });
    const [lo, hi] = ci.value!;
    // The percentile interval of a proportion ≈ ±1.96·√(a(1−a)/n); 2000 replicates put its
    // width within about ±10 % of that.
    const width = 2 * 1.96 * Math.sqrt((a * (1 - a)) / y.length);
    expect(hi - lo).toBeGreaterThan(0.85 * width);
    expect(hi - lo).toBeLessThan(1.15 * width);
    // alpha = 0.5 gives a narrower interval inside the 95 % one.
    const [lo50, hi50] = bootstrapCI(y, Float64Array.from(probs.flat()), acc, { n: 2000, seed: 1, alpha: 0.5 }).value!;
    expect(lo50).toBeGreaterThan(lo);
    expect(hi50).toBeLessThan(hi);
  });

  it('stratified resampling keeps the class counts (support is constant)', () => {
    const ci = bootstrapCI(y, probs, (yy) => ({ n0: yy.filter((v) => v === 0).length }), { n: 50, seed: 2, stratified: true });
    expect(ci.n0).toEqual([67, 67]);
    const plain = bootstrapCI(y, probs, (yy) => ({ n0: yy.filter((v) => v === 0).length }), { n: 50, seed: 2 });
    expect(plain.n0![1]! - plain.n0![0]!).toBeGreaterThan(0);
  });

  it('non-finite replicates are left out; none finite → NaN', () => {
    const ci = bootstrapCI(y, probs, () => ({ never: NaN }), { n: 5, seed: 1 });
    expect(ci.never![0]).toBeNaN();
  });
});

describe('typed errors', () => {
  it('paired tests', () => {
    expect(() => pairedTTest([1], [2])).toThrow(ValueError);
    expect(() => pairedTTest([1, 2], [2])).toThrow(ShapeError);
    expect(() => wilcoxonSignedRank([1], [1])).toThrow(/at least 2 pairs/);
    expect(() => wilcoxonSignedRank([1, NaN], [1, 2])).toThrow(/pair 1/);
    expect(() => mcnemar([0, 1], [0], [1, 1])).toThrow(ShapeError);
    expect(() => mcnemar([], [], [])).toThrow(ValueError);
    expect(() => meanStd([1])).toThrow(ValueError);
  });
  it('bootstrap options and shapes', () => {
    expect(() => bootstrapCI([0, 1], [[1, 0], [0, 1]], ['a', 'b'], { n: 0 })).toThrow(/n must be a positive integer/);
    expect(() => bootstrapCI([0, 1], [[1, 0], [0, 1]], ['a', 'b'], { alpha: 1 })).toThrow(/alpha/);
    expect(() => bootstrapCI([0, 1], [[1, 0]], ['a', 'b'])).toThrow(ShapeError);
    expect(() => bootstrapCI([], [], ['a', 'b'])).toThrow(/no samples/);
  });
});
