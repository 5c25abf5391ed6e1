import { ResourceLimitError, ShapeError } from './errors.js';

/**
 * Budgets checked before anything is allocated, so a hostile shape or file gives a
 * ResourceLimitError instead of an out-of-memory. Change them with `setLimits`.
 */
export interface Limits {
  /** Largest single tensor, in bytes (default 2 GiB). */
  maxTensorBytes: number;
  /** Largest model file or byte buffer accepted, in bytes (default 2 GiB, protobuf's own ceiling). */
  maxModelBytes: number;
  /** Largest rank of any tensor (default 16). */
  maxRank: number;
  /** Most nodes in one graph (default 100 000). */
  maxNodes: number;
}

const DEFAULTS: Limits = {
  maxTensorBytes: 2 * 1024 ** 3,
  maxModelBytes: 2 * 1024 ** 3,
  maxRank: 16,
  maxNodes: 100_000,
};

const current: Limits = { ...DEFAULTS };

export function getLimits(): Readonly<Limits> {
  return current;
}

/** Overrides some budgets; returns the previous values so a caller can restore them. */
export function setLimits(patch: Partial<Limits>): Limits {
  const before = { ...current };
  for (const [k, v] of Object.entries(patch) as [keyof Limits, number][]) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`limit ${k} must be a positive number, got ${v}`);
    current[k] = v;
  }
  return before;
}

/**
 * Validates a shape (rank budget, every dim a non-negative safe integer) and returns its
 * element count, checking `count × bytesPerElement` against the tensor budget.
 */
export function checkedSize(shape: readonly number[], what: string, bytesPerElement = 4): number {
  if (shape.length > current.maxRank) {
    throw new ResourceLimitError(`${what}: rank ${shape.length} exceeds the limit of ${current.maxRank}`);
  }
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ShapeError(`${what}: dim ${i} is ${d}; dims must be non-negative integers (shape [${shape.join(', ')}])`);
    }
    n *= d;
  }
  // Checked after the product: with dims ≤ 2^53 the product may lose precision but never wraps,
  // and any product above the budget is rejected either way.
  if (n * bytesPerElement > current.maxTensorBytes) {
    throw new ResourceLimitError(
      `${what}: shape [${shape.join(', ')}] needs ${fmtBytes(n * bytesPerElement)}, over the ${fmtBytes(current.maxTensorBytes)} tensor budget`,
    );
  }
  return n;
}

export function fmtBytes(b: number): string {
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(1)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b} B`;
}
