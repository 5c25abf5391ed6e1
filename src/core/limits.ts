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
  /**
   * Most pixels (width × height, per frame) in an image to decode, read from the file's header
   * (PNG IHDR, JPEG SOF, DICOM Rows × Columns) before decoding (default 100 000 000: a 10 000 ×
   * 10 000 image, 400 MB as RGBA). Decoding one at the limit peaks higher: about 1.6 GB of
   * resident memory for an 8-bit RGB PNG and 3.2 GB for a 16-bit RGBA PNG (inflated scanlines,
   * 16-bit samples, RGBA and RGB copies); lower the limit where memory is tight.
   */
  maxImagePixels: number;
}

const DEFAULTS: Limits = {
  maxTensorBytes: 2 * 1024 ** 3,
  maxModelBytes: 2 * 1024 ** 3,
  maxRank: 16,
  maxNodes: 100_000,
  maxImagePixels: 100_000_000,
};

const current: Limits = { ...DEFAULTS };

/**
 * The budgets in force (see `Limits` for the defaults).
 *
 * @example
 * ```ts
 * import { getLimits } from 'lightconv';
 *
 * console.log(getLimits().maxTensorBytes); // 2147483648 unless changed
 * ```
 */
export function getLimits(): Readonly<Limits> {
  return current;
}

/**
 * Overrides some budgets; returns the previous values so a caller can restore them.
 *
 * @example
 * ```ts
 * import { loadOnnx, setLimits } from 'lightconv';
 *
 * const before = setLimits({ maxModelBytes: 50 * 1024 ** 2 }); // refuse models over 50 MiB
 * try {
 *   await loadOnnx('upload.onnx');
 * } finally {
 *   setLimits(before);
 * }
 * ```
 */
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

/** The op whose kernel is running (set by `apply`), named in the budget errors of its arrays. */
let allocOp: string | null = null;

/** The op whose kernel is running, or null. */
export function currentAllocOp(): string | null {
  return allocOp;
}

/** Runs fn with `op` named in the budget errors of the arrays allocated meanwhile. */
export function withAllocOp<T>(op: string, fn: () => T): T {
  const prev = allocOp;
  allocOp = op;
  try {
    return fn();
  } finally {
    allocOp = prev;
  }
}

/**
 * Checks one array of `n` elements of `bytesPerElement` bytes against the tensor budget,
 * before it is allocated; returns n. Every typed array a kernel makes (outputs, and scratch
 * such as float64 accumulators) goes through this (see DTYPES' `make`).
 */
export function checkedAlloc(n: number, bytesPerElement: number, what?: string): number {
  const who = what ?? (allocOp ? `${allocOp}: an array` : 'an array');
  if (!Number.isSafeInteger(n) || n < 0) throw new ShapeError(`${who} of ${n} elements: the size must be a non-negative integer`);
  const bytes = n * bytesPerElement;
  if (bytes > current.maxTensorBytes) {
    const size = bytesPerElement === 1 ? `${n} bytes` : `${n} elements × ${bytesPerElement} B`;
    throw new ResourceLimitError(`${who} of ${size} needs ${fmtBytes(bytes)}, over the ${fmtBytes(current.maxTensorBytes)} tensor budget`);
  }
  return n;
}

export function fmtBytes(b: number): string {
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(1)} GiB`;
  if (b >= 1024 ** 2) return `${(b / 1024 ** 2).toFixed(1)} MiB`;
  if (b >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b} B`;
}
