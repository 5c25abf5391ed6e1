import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { stratifiedKFold, stratifiedSplit } from '../../src/eval/splits.js';

/** n labels over C classes with uneven counts (class c gets weight c + 1). */
function unevenLabels(n: number, C: number, seed: number): number[] {
  const rng = new Rng(seed);
  const w = Array.from({ length: C }, (_, c) => c + 1);
  const total = w.reduce((a, b) => a + b, 0);
  return Array.from({ length: n }, (_, i) => (i < C ? i : (() => {
    let r = rng.next() * total;
    for (let c = 0; c < C; c++) if ((r -= w[c]!) < 0) return c;
    return C - 1;
  })()));
}

/** Patients with 1–8 images each; each patient's images mostly share one class. */
function patients(nPatients: number, C: number, seed: number): { labels: number[]; groups: string[] } {
  const rng = new Rng(seed);
  const labels: number[] = [];
  const groups: string[] = [];
  for (let p = 0; p < nPatients; p++) {
    const cls = p % C;
    const k = 1 + rng.int(8);
    for (let j = 0; j < k; j++) {
      labels.push(rng.next() < 0.85 ? cls : rng.int(C));
      groups.push(`patient-${p}`);
    }
  }
  return { labels, groups };
}

const count = (idx: number[], labels: number[], c: number) => idx.filter((i) => labels[i] === c).length;

function expectPartition(folds: { train: number[]; val: number[] }[], n: number) {
  const seen = new Array<number>(n).fill(0);
  for (const f of folds) {
    for (const i of f.val) seen[i]!++;
    expect([...f.train, ...f.val].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
    expect(f.val.length).toBeGreaterThan(0);
    expect(f.train).toEqual([...f.train].sort((a, b) => a - b));
    expect(f.val).toEqual([...f.val].sort((a, b) => a - b));
  }
  expect(seen.every((s) => s === 1)).toBe(true);
}

describe('stratifiedKFold', () => {
  const labels = unevenLabels(157, 4, 1);
  it('covers every index once; each class split ⌊n_c/k⌋ or ⌈n_c/k⌉; fold sizes within one', () => {
    for (const k of [2, 3, 5, 10]) {
      const folds = stratifiedKFold(labels, k, 7);
      expect(folds).toHaveLength(k);
      expectPartition(folds, labels.length);
      for (let c = 0; c < 4; c++) {
        const nc = labels.filter((y) => y === c).length;
        for (const f of folds) expect([Math.floor(nc / k), Math.ceil(nc / k)]).toContain(count(f.val, labels, c));
      }
      const sizes = folds.map((f) => f.val.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });
  it('deterministic from the seed; another seed, another split', () => {
    expect(stratifiedKFold(labels, 5, 3)).toEqual(stratifiedKFold(Int32Array.from(labels), 5, 3));
    expect(stratifiedKFold(labels, 5, 3)).not.toEqual(stratifiedKFold(labels, 5, 4));
  });
  it('with groups: no group straddles folds, every index once, classes spread over the folds', () => {
    const { labels: y, groups } = patients(60, 3, 2);
    for (const k of [3, 5]) {
      const folds = stratifiedKFold(y, k, 11, groups);
      expectPartition(folds, y.length);
      const foldOfGroup = new Map<string, number>();
      folds.forEach((f, fi) => {
        for (const i of f.val) {
          const g = groups[i]!;
          expect(foldOfGroup.get(g) ?? fi, `group ${g}`).toBe(fi);
          foldOfGroup.set(g, fi);
        }
      });
      // Stratification: each fold's share of each class within ±10 points of 1/k.
      for (let c = 0; c < 3; c++) {
        const nc = y.filter((v) => v === c).length;
        for (const f of folds) expect(Math.abs(count(f.val, y, c) / nc - 1 / k)).toBeLessThan(0.1);
      }
    }
    expect(stratifiedKFold(y, 5, 11, groups)).toEqual(stratifiedKFold(y, 5, 11, groups));
    expect(stratifiedKFold(y, 5, 11, groups)).not.toEqual(stratifiedKFold(y, 5, 12, groups));
  });
  it('numeric groups and one image per group behave like plain stratification', () => {
    const folds = stratifiedKFold(labels, 4, 1, labels.map((_, i) => i));
    expectPartition(folds, labels.length);
    for (let c = 0; c < 4; c++) {
      const nc = labels.filter((y) => y === c).length;
      for (const f of folds) expect(Math.abs(count(f.val, labels, c) - nc / 4)).toBeLessThanOrEqual(1);
    }
  });
  it('typed errors', () => {
    expect(() => stratifiedKFold(labels, 1, 0)).toThrow(ValueError);
    expect(() => stratifiedKFold(labels, 2.5, 0)).toThrow(/integer of at least 2/);
    const small = [0, 0, 0, 0, 0, 0, 1, 1, 1];
    expect(() => stratifiedKFold(small, 5, 0, undefined, { classNames: ['neg', 'x'] })).toThrow("--folds 5 is larger than the smallest class 'x' (3 images)");
    expect(() => stratifiedKFold(small, 5, 0)).toThrow("smallest class '1' (3 images)");
    expect(() => stratifiedKFold([0, 0, 0, 1, 1, 1], 3, 0, ['a', 'a', 'b', 'b', 'a', 'b'])).toThrow(/--folds 3 is larger than the number of groups \(2\)/);
    expect(() => stratifiedKFold([2, 2, 2, 2], 2, 0, undefined, { classNames: ['a', 'b', 'tumour'] })).toThrow(/one class only \('tumour', 4 images\)/);
    expect(() => stratifiedKFold([], 2, 0)).toThrow(/no samples/);
    expect(() => stratifiedKFold([0, 1, -1], 2, 0)).toThrow(/label -1 at 2/);
    expect(() => stratifiedKFold([0, 1, 0, 1], 2, 0, ['a'])).toThrow(ShapeError);
  });
});

describe('stratifiedSplit', () => {
  const labels = unevenLabels(203, 3, 5);
  it('⌈fraction·n⌉ test images, classes in proportion, at least one of each on both sides', () => {
    for (const fraction of [0.1, 0.2, 0.5, 0.9]) {
      const { train, test } = stratifiedSplit(labels, fraction, 1);
      expect(test).toHaveLength(Math.ceil(fraction * labels.length));
      expect([...train, ...test].sort((a, b) => a - b)).toEqual([...labels.keys()]);
      for (let c = 0; c < 3; c++) {
        const nc = labels.filter((y) => y === c).length;
        expect(Math.abs(count(test, labels, c) - fraction * nc)).toBeLessThanOrEqual(1);
      }
    }
    // Tiny classes: 2 images of class 1 at 10 % still put one in test and one in train.
    const tiny = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
    const s = stratifiedSplit(tiny, 0.1, 3);
    expect(count(s.test, tiny, 1)).toBe(1);
    expect(count(s.train, tiny, 1)).toBe(1);
    expect(s.test).toHaveLength(2);
  });
  it('deterministic from the seed', () => {
    expect(stratifiedSplit(labels, 0.2, 9)).toEqual(stratifiedSplit(labels, 0.2, 9));
    expect(stratifiedSplit(labels, 0.2, 9)).not.toEqual(stratifiedSplit(labels, 0.2, 10));
  });
  it('with groups: whole groups on one side, close to the fraction per class', () => {
    const { labels: y, groups } = patients(80, 2, 4);
    for (const fraction of [0.15, 0.2, 0.3]) {
      const { train, test } = stratifiedSplit(y, fraction, 2, groups);
      const testGroups = new Set(test.map((i) => groups[i]));
      for (const i of train) expect(testGroups.has(groups[i]!)).toBe(false);
      expect(train.length + test.length).toBe(y.length);
      for (let c = 0; c < 2; c++) {
        const nc = y.filter((v) => v === c).length;
        expect(Math.abs(count(test, y, c) / nc - fraction)).toBeLessThan(0.05);
      }
    }
  });
  it('typed errors', () => {
    expect(() => stratifiedSplit(labels, 0, 1)).toThrow(/in \(0, 1\)/);
    expect(() => stratifiedSplit(labels, 1, 1)).toThrow(ValueError);
    expect(() => stratifiedSplit([0, 0, 1], 0.5, 1, undefined, { classNames: ['a', 'rare'] })).toThrow("class 'rare' has only 1 image");
    expect(() => stratifiedSplit([1, 1, 1], 0.5, 1)).toThrow(/one class only/);
    expect(() => stratifiedSplit([0, 1, 0, 1], 0.5, 1, ['p', 'p', 'p', 'p'])).toThrow(/one group/);
    expect(() => stratifiedSplit([0, 1, 0, 1, 0, 1], 0.05, 1, ['p', 'p', 'p', 'q', 'q', 'q'])).toThrow(/could not split 2 groups/);
  });
});
