import { type DType, DTYPES, type TypedArray } from './dtype.js';
import { ShapeError, ValueError } from './errors.js';
import { checkedSize } from './limits.js';
import { Rng } from './rng.js';
import { type Shape, fmtShape, sizeOf } from './shape.js';

export type TensorLike = ArrayLike<number> | TypedArray;

/**
 * An n-dimensional array: row-major, contiguous, float32 unless stated (images are NCHW).
 * A tensor never changes shape or dtype; `reshape` returns a new tensor over the same data.
 */
export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  private _data: TypedArray;

  /** Set by training code: whether gradients should flow to this tensor. */
  requiresGrad = false;
  /** The gradient accumulated by backward(), when requiresGrad is set. */
  grad: Tensor | null = null;

  /** Wraps `data` (not copied). Its length must equal the product of `shape`. */
  constructor(data: TypedArray, shape: Shape, dtype: DType = 'float32') {
    const n = checkedSize(shape, 'Tensor', DTYPES[dtype].bytes);
    if (data.length !== n) {
      throw new ShapeError(`Tensor: data has ${data.length} elements but shape ${fmtShape(shape)} needs ${n}`);
    }
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = n;
    this._data = data;
  }

  /** Copies `values` into a new tensor of the given shape and dtype. */
  static fromArray(values: TensorLike, shape: Shape, dtype: DType = 'float32'): Tensor {
    const n = checkedSize(shape, 'Tensor.fromArray', DTYPES[dtype].bytes);
    if (values.length !== n) {
      throw new ShapeError(`Tensor.fromArray: got ${values.length} values for shape ${fmtShape(shape)} (needs ${n})`);
    }
    const data = DTYPES[dtype].make(n);
    for (let i = 0; i < n; i++) {
      const v = Number(values[i]);
      if (dtype === 'int64' || dtype === 'uint64') {
        if (!Number.isSafeInteger(v)) throw new ValueError(`Tensor.fromArray: ${v} at index ${i} is not a safe integer for ${dtype}`);
      }
      data[i] = v;
    }
    return new Tensor(data, shape, dtype);
  }

  static zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
    return new Tensor(DTYPES[dtype].make(checkedSize(shape, 'Tensor.zeros', DTYPES[dtype].bytes)), shape, dtype);
  }

  static full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
    const t = Tensor.zeros(shape, dtype);
    t._data.fill(value);
    return t;
  }

  static ones(shape: Shape, dtype: DType = 'float32'): Tensor {
    return Tensor.full(shape, 1, dtype);
  }

  static scalar(value: number, dtype: DType = 'float32'): Tensor {
    return Tensor.full([], value, dtype);
  }

  /** Standard-normal samples (times `std`, plus `mean`) from a seeded generator. */
  static randn(shape: Shape, opts: { seed?: number; rng?: Rng; mean?: number; std?: number } = {}): Tensor {
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const t = Tensor.zeros(shape);
    const d = t._data;
    for (let i = 0; i < d.length; i++) d[i] = rng.normal(opts.mean ?? 0, opts.std ?? 1);
    return t;
  }

  /** Uniform samples in [low, high) from a seeded generator. */
  static rand(shape: Shape, opts: { seed?: number; rng?: Rng; low?: number; high?: number } = {}): Tensor {
    const rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const t = Tensor.zeros(shape);
    const d = t._data;
    for (let i = 0; i < d.length; i++) d[i] = rng.uniform(opts.low ?? 0, opts.high ?? 1);
    return t;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The elements, synchronously (the backing array itself, not a copy). */
  dataSync(): TypedArray {
    return this._data;
  }

  /** The elements; async so that device backends can read back. */
  async data(): Promise<TypedArray> {
    return this._data;
  }

  /** The float32 elements; throws if the tensor holds another dtype. */
  f32(): Float32Array {
    if (!(this._data instanceof Float32Array)) throw new ValueError(`expected a float32 tensor, got ${this.dtype}`);
    return this._data;
  }

  /** The elements as a plain array of numbers (a copy). */
  toArray(): number[] {
    return Array.from(this._data);
  }

  /** The element at a multi-index. */
  get(...index: number[]): number {
    if (index.length !== this.rank) throw new ShapeError(`Tensor.get: ${index.length} indices for rank ${this.rank}`);
    let off = 0;
    for (let i = 0; i < index.length; i++) {
      const d = this.shape[i]!;
      const k = index[i]!;
      if (!Number.isInteger(k) || k < 0 || k >= d) throw new ShapeError(`Tensor.get: index ${k} out of range for dim ${i} of size ${d}`);
      off = off * d + k;
    }
    return this._data[off]!;
  }

  /** Same data, new shape; one dim may be -1 (inferred). */
  reshape(shape: Shape): Tensor {
    const known = shape.filter((d) => d !== -1);
    const free = shape.length - known.length;
    if (free > 1) throw new ShapeError(`Tensor.reshape: more than one -1 in ${fmtShape(shape)}`);
    let target = [...shape];
    if (free === 1) {
      const k = sizeOf(known);
      if (k === 0 || this.size % k !== 0) throw new ShapeError(`Tensor.reshape: cannot infer -1 in ${fmtShape(shape)} for ${this.size} elements`);
      target = shape.map((d) => (d === -1 ? this.size / k : d));
    }
    if (sizeOf(target) !== this.size) {
      throw new ShapeError(`Tensor.reshape: ${fmtShape(this.shape)} (${this.size} elements) cannot become ${fmtShape(target)}`);
    }
    return new Tensor(this._data, target, this.dtype);
  }

  clone(): Tensor {
    return new Tensor(this._data.slice(), this.shape, this.dtype);
  }

  /** Releases device memory; a no-op for CPU tensors, present so code is backend-agnostic. */
  dispose(): void {}

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    const head = Array.from(this._data.subarray(0, 8), (v) => +v.toPrecision(5)).join(', ');
    return `Tensor(${this.dtype} ${fmtShape(this.shape)} [${head}${this.size > 8 ? ', …' : ''}])`;
  }
}
