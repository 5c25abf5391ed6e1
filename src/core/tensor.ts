import { disposeSymbol } from './dispose.js';
import { AutogradError, type GradFn, backward as runBackward } from './autograd.js';
import { type DType, DTYPES, type TypedArray } from './dtype.js';
import { ShapeError, ValueError } from './errors.js';
import { checkedSize } from './limits.js';
import { Rng } from './rng.js';
import { type Shape, fmtShape, sizeOf } from './shape.js';
import type { Backend } from './op.js';

/** Values a tensor can be made from: a typed array (copied) or any array-like of numbers. */
export type TensorLike = ArrayLike<number> | TypedArray;

/**
 * Where a device backend (src/gpu) keeps a tensor's elements: `handle` is the backend's own
 * buffer (a gpu.js texture). The backend reads it back (`Backend.read`) and frees it
 * (`Backend.dispose`); a CPU tensor has none.
 */
export interface DeviceStorage {
  readonly backend: Backend;
  readonly handle: unknown;
}

function isDeviceStorage(d: TypedArray | DeviceStorage): d is DeviceStorage {
  return !ArrayBuffer.isView(d) && typeof (d as DeviceStorage).backend === 'object' && 'handle' in d;
}

/** The host array of a device tensor that has not been read back yet. */
const NO_HOST = new Float32Array(0);

/** Open `tidy` scopes: each collects the device tensors made while it is innermost. */
const scopes: Tensor[][] = [];

/**
 * An n-dimensional array: row-major, contiguous, float32 unless stated (images are NCHW).
 * A tensor never changes shape or dtype; `reshape` returns a new tensor over the same data.
 *
 * @example
 * ```ts
 * import { Tensor, add } from 'lightconv';
 *
 * const x = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
 * const y = add(x, Tensor.ones([2, 3]));
 * console.log(y.shape, y.get(1, 2)); // [2, 3] 7
 * const img = Tensor.randn([1, 3, 224, 224], { seed: 0 }); // NCHW
 * ```
 */
export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  private _data: TypedArray;
  /** Device tensors only: the backend's buffer, until dispose(). */
  private _device: DeviceStorage | null = null;

  /** Set by training code: whether gradients should flow to this tensor. */
  requiresGrad = false;
  /**
   * The gradient accumulated by backward(): for leaves with requiresGrad, and for intermediate
   * tensors after `retainGrad()`.
   */
  grad: Tensor | null = null;
  /** Set by `retainGrad()`: backward keeps this non-leaf tensor's gradient in `.grad`. */
  retainsGrad = false;
  /**
   * The tape node that made this tensor (autograd, src/core/autograd.ts): null for leaves
   * (tensors made directly, e.g. parameters), for results computed without grad, and after a
   * backward has freed the graph.
   */
  gradFn: GradFn | null = null;
  /**
   * Bumped by code that writes the data in place after creation (optimizer steps, loading a
   * checkpoint or state dict), so that caches keyed by the tensor (device copies, packed
   * weights) can tell their copy is stale.
   */
  version = 0;

  /**
   * Wraps `data` (not copied). Its length must equal the product of `shape`. Device backends
   * pass their storage instead of an array; such a tensor is read back on demand.
   */
  constructor(data: TypedArray | DeviceStorage, shape: Shape, dtype: DType = 'float32') {
    const n = checkedSize(shape, 'Tensor', DTYPES[dtype].bytes);
    if (isDeviceStorage(data)) {
      this._device = data;
      data = NO_HOST;
      scopes[scopes.length - 1]?.push(this);
    } else if (data.length !== n) {
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

  /** A new tensor of `shape` filled with zeros. */
  static zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
    return new Tensor(DTYPES[dtype].make(checkedSize(shape, 'Tensor.zeros', DTYPES[dtype].bytes)), shape, dtype);
  }

  /** A new tensor of `shape` filled with `value`. */
  static full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
    const t = Tensor.zeros(shape, dtype);
    t._data.fill(value);
    return t;
  }

  /** A new tensor of `shape` filled with ones. */
  static ones(shape: Shape, dtype: DType = 'float32'): Tensor {
    return Tensor.full(shape, 1, dtype);
  }

  /** A rank-0 tensor (shape `[]`) holding `value`. */
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

  /**
   * The elements, synchronously (the backing array itself, not a copy). A device tensor is read
   * back once and the host copy kept.
   */
  dataSync(): TypedArray {
    if (this._data === NO_HOST) this._data = this.deviceStorage('dataSync').backend.read!(this);
    return this._data;
  }

  /** The elements; async so that device backends can read back without blocking. */
  async data(): Promise<TypedArray> {
    if (this._data === NO_HOST) {
      const { backend } = this.deviceStorage('data');
      this._data = backend.readAsync ? await backend.readAsync(this) : backend.read!(this);
    }
    return this._data;
  }

  /** The device buffer, or null for a CPU tensor (and after dispose()). */
  get device(): DeviceStorage | null {
    return this._device;
  }

  private deviceStorage(what: string): DeviceStorage {
    if (!this._device) throw new ValueError(`Tensor.${what}: the tensor ${fmtShape(this.shape)} was disposed before it was read`);
    return this._device;
  }

  /** The float32 elements; throws if the tensor holds another dtype. */
  f32(): Float32Array {
    const d = this.dataSync();
    if (!(d instanceof Float32Array)) throw new ValueError(`expected a float32 tensor, got ${this.dtype}`);
    return d;
  }

  /** The elements as a plain array of numbers (a copy). */
  toArray(): number[] {
    return Array.from(this.dataSync());
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
    return this.dataSync()[off]!;
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
    if (this._device) return this._device.backend.view!(this, target);
    return new Tensor(this.dataSync(), target, this.dtype);
  }

  /** A host copy (of a device tensor too). */
  clone(): Tensor {
    return new Tensor(this.dataSync().slice(), this.shape, this.dtype);
  }

  /** A leaf with requiresGrad set (returns this): `Tensor.randn(…).requireGrad()`. */
  requireGrad(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  /**
   * Asks backward to keep this intermediate tensor's gradient in `.grad` (PyTorch's retain_grad):
   * by default only leaves get one, since intermediate gradients are freed as the walk passes
   * them. Grad-CAM needs the gradient at a layer's output. A no-op on a leaf (it gets `.grad`
   * anyway); an error on a tensor that is not on the tape.
   */
  retainGrad(): this {
    if (!this.requiresGrad) throw new AutogradError(`retainGrad: the tensor ${fmtShape(this.shape)} does not require grad (no input of the ops that made it had requiresGrad, or it was made under noGrad)`);
    if (this.gradFn) this.retainsGrad = true;
    return this;
  }

  /**
   * Back-propagates from this tensor: every leaf with requiresGrad that it depends on gets its
   * gradient added to `.grad`. A non-scalar tensor needs `grad`, the gradient of the final result
   * with respect to it (same shape). The graph is freed afterwards.
   */
  backward(grad?: Tensor): void {
    if (!grad && this.size !== 1) {
      throw new AutogradError(`backward: the tensor has shape ${fmtShape(this.shape)}; a non-scalar needs the gradient of the result with respect to it`);
    }
    if (grad && grad.shape.join() !== this.shape.join()) {
      throw new ShapeError(`backward: gradient ${fmtShape(grad.shape)} does not match the tensor's shape ${fmtShape(this.shape)}`);
    }
    runBackward(this, grad ?? Tensor.ones(this.shape, DTYPES[this.dtype].isFloat ? this.dtype : 'float32'));
  }

  /** The same data, cut from the tape: no gradFn, requiresGrad false. */
  detach(): Tensor {
    if (this._device) return this._device.backend.view!(this, this.shape);
    return new Tensor(this.dataSync(), this.shape, this.dtype);
  }

  /**
   * Releases device memory; a no-op for CPU tensors, present so code is backend-agnostic.
   * Idempotent; a host copy already read back stays readable.
   */
  dispose(): void {
    const d = this._device;
    if (!d) return;
    d.backend.dispose?.(this);
    this._device = null;
  }

  /** Same as `dispose()`, for `using t = …` declarations. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** A one-line summary: dtype, shape and the first 8 values. */
  toString(): string {
    const head = Array.from(this.dataSync().subarray(0, 8), (v) => +v.toPrecision(5)).join(', ');
    return `Tensor(${this.dtype} ${fmtShape(this.shape)} [${head}${this.size > 8 ? ', …' : ''}])`;
  }
}

/**
 * Runs `fn` and then disposes every device tensor made during it, except those it returns (a
 * tensor, or an array or record of tensors), which pass to the enclosing scope. CPU tensors are
 * left to the garbage collector. `fn` must be synchronous.
 *
 * @example
 * ```ts
 * import { Tensor, relu, tidy } from 'lightconv';
 *
 * const x = Tensor.randn([1, 8], { seed: 1 });
 * const y = tidy(() => relu(relu(x))); // the intermediate is freed on a device backend
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope: Tensor[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const t of scope) t.dispose();
    throw e;
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new ValueError('tidy: fn must be synchronous (it returned a Promise)');
  const kept = new Set<Tensor>();
  const collect = (v: unknown): void => {
    if (v instanceof Tensor) kept.add(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(v))) Object.values(v).forEach(collect); // plain or null-prototype (run results)
  };
  collect(result);
  for (const t of scope) {
    if (kept.has(t)) scopes[scopes.length - 1]?.push(t);
    else t.dispose();
  }
  return result;
}
