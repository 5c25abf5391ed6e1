import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';

/**
 * Seeded, stratified (and optionally grouped) splits of a labelled data set. Labels are class
 * indices; groups (patient, slide, site…) are any strings or numbers, and all images of one group
 * always land on the same side of a split. The same labels, groups and seed give the same split
 * on every platform (src/core/rng.ts).
 */
export type Groups = ArrayLike<string | number>;

/** Options of `stratifiedKFold` / `stratifiedSplit`. */
export interface SplitOptions {
  /** Class names for the error messages (index → name); the class index is used otherwise. */
  classNames?: readonly string[];
}

/** One fold of `stratifiedKFold`: sample indices to train on and to validate on. */
export interface Fold {
  train: number[];
  val: number[];
}

interface Prepared {
  n: number;
  labels: Int32Array;
  /** Class indices that occur, ascending. */
  present: number[];
  counts: Map<number, number>;
  name: (c: number) => string;
}

function prepare(labels: ArrayLike<number>, where: string, groups: Groups | undefined, opts: SplitOptions): Prepared {
  const n = labels.length;
  const y = new Int32Array(n);
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const v = labels[i]!;
    if (!(Number.isInteger(v) && v >= 0)) throw new ValueError(`${where}: label ${v} at ${i} is not a class index (a non-negative integer)`);
    y[i] = v;
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  if (groups !== undefined && groups.length !== n) throw new ShapeError(`${where}: ${groups.length} groups for ${n} labels`);
  const name = (c: number) => opts.classNames?.[c] ?? String(c);
  const present = [...counts.keys()].sort((a, b) => a - b);
  if (present.length < 2) {
    throw new ValueError(`${where}: the labels hold ${present.length === 0 ? 'no samples' : `one class only ('${name(present[0]!)}', ${n} images)`}; a stratified split needs at least two classes`);
  }
  return { n, labels: y, present, counts, name };
}

/** Distinct groups (first-appearance order) with each one's members and per-class counts. */
function groupTable(groups: Groups, p: Prepared): { members: number[][]; counts: number[][] } {
  const index = new Map<string | number, number>();
  const members: number[][] = [];
  const counts: number[][] = [];
  const col = new Map(p.present.map((c, j) => [c, j]));
  for (let i = 0; i < p.n; i++) {
    const g = groups[i]!;
    let k = index.get(g);
    if (k === undefined) {
      k = members.length;
      index.set(g, k);
      members.push([]);
      counts.push(new Array<number>(p.present.length).fill(0));
    }
    members[k]!.push(i);
    counts[k]![col.get(p.labels[i]!)!]!++;
  }
  return { members, counts };
}

function populationStd(v: readonly number[]): number {
  const m = v.reduce((s, x) => s + x, 0) / v.length;
  return Math.sqrt(v.reduce((s, x) => s + (x - m) * (x - m), 0) / v.length);
}

/** numpy.isclose's default tolerances, as scikit-learn's StratifiedGroupKFold compares its scores. */
function isClose(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-8 + 1e-5 * Math.abs(b);
}

/**
 * k folds for cross-validation: every index is in exactly one `val` fold and in the `train` of
 * the others (both ascending).
 *
 * Without groups: each class's indices are shuffled (seeded) and dealt round-robin into the
 * folds, the deal continuing from fold to fold across classes, so each fold holds ⌊n_c/k⌋ or
 * ⌈n_c/k⌉ of every class c and the fold sizes differ by at most one (scikit-learn's
 * StratifiedKFold(shuffle=True) gives the same counts, with a different permutation).
 *
 * With groups, scikit-learn's StratifiedGroupKFold(shuffle=True) algorithm: the groups are
 * shuffled, then ordered by the standard deviation of their class counts, largest first (stable);
 * each group in turn goes to the fold that minimises the mean over classes of the standard
 * deviation across folds of the fraction of that class in each fold, ties (numpy.isclose) going to
 * the fold with fewer images, then to the lower fold. No group straddles two folds; the class
 * balance is as good as the group sizes allow.
 *
 * Errors (ValueError): k not an integer ≥ 2; a one-class label set; k larger than the smallest
 * class; with groups, fewer distinct groups than k, or a fold left without images.
 *
 * @example
 * ```ts
 * import { stratifiedKFold } from 'lightconv';
 *
 * const labels = [0, 0, 0, 1, 1, 1, 0, 1, 0, 1];
 * const patients = ['a', 'a', 'b', 'b', 'c', 'c', 'd', 'd', 'e', 'e'];
 * for (const { train, val } of stratifiedKFold(labels, 5, 0, patients)) console.log(train.length, val.length);
 * ```
 */
export function stratifiedKFold(labels: ArrayLike<number>, k: number, seed: number, groups?: Groups, opts: SplitOptions = {}): Fold[] {
  if (!(Number.isInteger(k) && k >= 2)) throw new ValueError(`stratifiedKFold: --folds must be an integer of at least 2, got ${k}`);
  const p = prepare(labels, 'stratifiedKFold', groups, opts);
  let smallest = p.present[0]!;
  for (const c of p.present) if (p.counts.get(c)! < p.counts.get(smallest)!) smallest = c;
  const minCount = p.counts.get(smallest)!;
  if (k > minCount) {
    throw new ValueError(`--folds ${k} is larger than the smallest class '${p.name(smallest)}' (${minCount} image${minCount === 1 ? '' : 's'}); every fold needs one of each class`);
  }
  const rng = new Rng(seed);
  const foldOf = new Int32Array(p.n);
  if (groups === undefined) {
    let next = 0;
    for (const c of p.present) {
      const idx: number[] = [];
      for (let i = 0; i < p.n; i++) if (p.labels[i] === c) idx.push(i);
      rng.shuffle(idx);
      for (const i of idx) {
        foldOf[i] = next;
        next = (next + 1) % k;
      }
    }
  } else {
    const t = groupTable(groups, p);
    const G = t.members.length;
    if (G < k) throw new ValueError(`--folds ${k} is larger than the number of groups (${G}); each fold needs at least one whole group`);
    const C = p.present.length;
    const classTotal = p.present.map((c) => p.counts.get(c)!);
    const order = rng.shuffle([...Array(G).keys()]);
    const spread = t.counts.map(populationStd);
    order.sort((a, b) => spread[b]! - spread[a]!); // stable: shuffled order among equal spreads
    const perFold = Array.from({ length: k }, () => new Array<number>(C).fill(0));
    const size = new Array<number>(k).fill(0);
    const score = () => {
      let s = 0;
      for (let j = 0; j < C; j++) s += populationStd(perFold.map((f) => f[j]! / classTotal[j]!));
      return s / C;
    };
    for (const g of order) {
      const gc = t.counts[g]!;
      let best = -1;
      let bestScore = Infinity;
      for (let f = 0; f < k; f++) {
        for (let j = 0; j < C; j++) perFold[f]![j]! += gc[j]!;
        const s = score();
        for (let j = 0; j < C; j++) perFold[f]![j]! -= gc[j]!;
        if (s < bestScore || (isClose(s, bestScore) && size[f]! < size[best]!)) {
          best = f;
          bestScore = s;
        }
      }
      for (let j = 0; j < C; j++) perFold[best]![j]! += gc[j]!;
      size[best]! += t.members[g]!.length;
      for (const i of t.members[g]!) foldOf[i] = best;
    }
    const empty = size.findIndex((s) => s === 0);
    if (empty >= 0) throw new ValueError(`stratifiedKFold: fold ${empty + 1} of ${k} received no group (${G} groups); use fewer folds`);
  }
  return Array.from({ length: k }, (_, f) => {
    const train: number[] = [];
    const val: number[] = [];
    for (let i = 0; i < p.n; i++) (foldOf[i] === f ? val : train).push(i);
    return { train, val };
  });
}

/**
 * A held-out split: about `fraction` of the images go to `test`, the rest to `train` (both
 * ascending).
 *
 * Without groups: the test set has ⌈fraction·n⌉ images (scikit-learn's train_test_split size),
 * shared among the classes in proportion to their counts by largest remainder (ties to the lower
 * class index), but with at least one image of every class on each side; within a class the
 * images are chosen by a seeded shuffle. Every class needs at least two images.
 *
 * With groups: whole groups are assigned greedily. The groups are shuffled (seeded) and ordered
 * by size, largest first (stable); each joins the test set when that brings the test set's
 * per-class counts closer to fraction·n_c, measured as Σ_c ((test_c − fraction·n_c) / n_c)².
 * Both sides must end up non-empty.
 *
 * Errors (ValueError): fraction outside (0, 1); a one-class label set; a class with a single image
 * (without groups); fewer than two groups, or a side left empty (with groups).
 *
 * @example
 * ```ts
 * import { stratifiedSplit } from 'lightconv';
 *
 * const { train, test } = stratifiedSplit([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 0.2, 42); // 20 % held out per class
 * ```
 */
export function stratifiedSplit(labels: ArrayLike<number>, fraction: number, seed: number, groups?: Groups, opts: SplitOptions = {}): { train: number[]; test: number[] } {
  if (!(fraction > 0 && fraction < 1)) throw new ValueError(`stratifiedSplit: the test fraction must be in (0, 1), got ${fraction}`);
  const p = prepare(labels, 'stratifiedSplit', groups, opts);
  const rng = new Rng(seed);
  const inTest = new Uint8Array(p.n);
  if (groups === undefined) {
    for (const c of p.present) {
      if (p.counts.get(c)! < 2) throw new ValueError(`stratifiedSplit: class '${p.name(c)}' has only 1 image; a stratified split needs at least 2 of every class`);
    }
    const nTest = Math.min(p.n - p.present.length, Math.max(p.present.length, Math.ceil(fraction * p.n)));
    // Largest remainder, then at least one per class on each side.
    const share = p.present.map((c) => (p.counts.get(c)! * nTest) / p.n);
    const take = share.map(Math.floor);
    let left = nTest - take.reduce((s, v) => s + v, 0);
    const byRemainder = share.map((s, j) => j).sort((a, b) => share[b]! - take[b]! - (share[a]! - take[a]!) || a - b);
    for (const j of byRemainder) {
      if (left <= 0) break;
      take[j]!++;
      left--;
    }
    // Keep 1 ≤ take ≤ count − 1 per class, moving slots from the class with the most to spare.
    const count = p.present.map((c) => p.counts.get(c)!);
    const pick = (score: (q: number) => number) => take.reduce((best, _, q) => (score(q) > score(best) ? q : best), 0);
    for (let j = 0; j < take.length; j++) {
      while (take[j]! < 1) {
        take[j]!++;
        take[pick((q) => (q === j ? -1 : take[q]! - 1))]!--;
      }
      while (take[j]! > count[j]! - 1) {
        take[j]!--;
        take[pick((q) => (q === j ? -1 : count[q]! - 1 - take[q]!))]!++;
      }
    }
    p.present.forEach((c, j) => {
      const idx: number[] = [];
      for (let i = 0; i < p.n; i++) if (p.labels[i] === c) idx.push(i);
      rng.shuffle(idx);
      for (let q = 0; q < take[j]!; q++) inTest[idx[q]!] = 1;
    });
  } else {
    const t = groupTable(groups, p);
    const G = t.members.length;
    if (G < 2) throw new ValueError(`stratifiedSplit: all ${p.n} images are in one group; a grouped split needs at least two groups`);
    const C = p.present.length;
    const total = p.present.map((c) => p.counts.get(c)!);
    const target = total.map((v) => fraction * v);
    const test = new Array<number>(C).fill(0);
    const cost = (add: readonly number[] | null) => test.reduce((s, v, j) => s + ((v + (add ? add[j]! : 0) - target[j]!) / total[j]!) ** 2, 0);
    const order = rng.shuffle([...Array(G).keys()]);
    order.sort((a, b) => t.members[b]!.length - t.members[a]!.length);
    for (const g of order) {
      const gc = t.counts[g]!;
      if (cost(gc) < cost(null)) {
        for (let j = 0; j < C; j++) test[j]! += gc[j]!;
        for (const i of t.members[g]!) inTest[i] = 1;
      }
    }
    const nTest = test.reduce((s, v) => s + v, 0);
    if (nTest === 0 || nTest === p.n) {
      throw new ValueError(`stratifiedSplit: could not split ${G} groups into a ${Math.round(fraction * 100)} % test set (the groups are too large for that fraction)`);
    }
  }
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < p.n; i++) (inTest[i] ? test : train).push(i);
  return { train, test };
}
