import { isGradEnabled, record } from './autograd.js';
import { type DType, DTYPES, type TypedArray } from './dtype.js';
import { checkedSize, withAllocOp } from './limits.js';
import type { Shape } from './shape.js';
import type { Tensor } from './tensor.js';

/**
 * An op card: everything about one op in one place. Kernels live in src/kernels, one file per
 * op family; each card there fills these fields.
 *
 * - `shape` is the shape rule. It throws a ShapeError naming the op and the offending dims,
 *   and it runs before any kernel, so kernels can trust their inputs.
 * - `reference` is the spec: plain loops that accumulate in float64. Every other kernel is
 *   tested against it.
 * - `cpu` is the fast CPU kernel (falls back to `reference` when absent).
 * - `macs` counts multiply-accumulates of one call, for summaries and GFLOP/s figures.
 */
export interface OpCard<A = void> {
  readonly name: string;
  /** The output shape for the input shapes, or a ShapeError naming the op. */
  shape(inputs: readonly Shape[], attrs: A): Shape;
  /** The readable definition of the op (float64 accumulation), the ground truth of the tests. */
  reference(inputs: readonly Tensor[], attrs: A): Tensor;
  /** The fast CPU kernel; `reference` runs where it is absent. */
  cpu?(inputs: readonly Tensor[], attrs: A): Tensor;
  /** Multiply-accumulates of one call for these input shapes (0 when absent). */
  macs?(inputs: readonly Shape[], attrs: A): number;
  /**
   * The output's dtype, where it is not the first input's (the default): `apply` checks the
   * output's bytes against the tensor budget before any kernel runs.
   */
  outputDtype?(inputs: readonly Tensor[], attrs: A): DType;
  /** The name errors give one call, where the card's name is too general (Binary's: 'Add'). */
  label?(attrs: A): string;
  /**
   * The gradient (autograd, src/core/autograd.ts): given the inputs and attributes of one call,
   * its output and the gradient of the loss with respect to that output, the gradient with
   * respect to each input (same shape and dtype as the input), or null where there is none
   * (integer inputs, labels). Cards without it are not differentiable.
   */
  grad?(inputs: readonly Tensor[], attrs: A, output: Tensor, gradOutput: Tensor): (Tensor | null)[];
}

/**
 * A backend runs cards. It is a plain object the user picks (`useBackend`); nothing registers
 * itself at import time.
 */
export interface Backend {
  readonly name: string;
  /** Computes one op call (shapes and budgets are already checked by `apply`). */
  run<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A): Tensor;
  /**
   * Device backends (src/gpu) keep tensors in their own memory (`Tensor.device`). These members
   * serve such tensors; the CPU backends have none of them.
   * - `read`: copies a device tensor's elements back to the host (what `dataSync()` calls);
   * - `readAsync`: the same without blocking, where the device can (what `await data()` calls);
   * - `dispose`: frees the device buffer (what `tensor.dispose()` calls);
   * - `view`: the same buffer under another shape (what `tensor.reshape()` calls);
   * - `upload`: a device copy of a host tensor.
   */
  read?(t: Tensor): TypedArray;
  /** Device backends: a device tensor's elements without blocking, where the device can (`await data()`). */
  readAsync?(t: Tensor): Promise<TypedArray>;
  /** Device backends: frees a device tensor's buffer (`tensor.dispose()`). */
  dispose?(t: Tensor): void;
  /** Device backends: the same buffer under another shape (`tensor.reshape()`). */
  view?(t: Tensor, shape: Shape): Tensor;
  /** Device backends: a device copy of a host tensor. */
  upload?(t: Tensor): Tensor;
  /**
   * A backend's own backward for one recorded call (autograd asks before the card's `grad`):
   * the input gradients as `card.grad` would return them, or `undefined` to let the card's
   * `grad` run (the GPU backend computes them with its kernels where it has them).
   */
  grad?<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A, output: Tensor, gradOutput: Tensor): (Tensor | null)[] | undefined;
  /** a + b of two same-shape gradients meeting at a tensor used twice, on the device (or undefined). */
  accumulate?(a: Tensor, b: Tensor): Tensor | undefined;
}

/** The fast TypeScript kernels; each card's reference where it has no fast kernel. */
export const cpuBackend: Backend = {
  name: 'cpu',
  run(card, inputs, attrs) {
    return card.cpu ? card.cpu(inputs, attrs) : card.reference(inputs, attrs);
  },
};

/** Only the reference kernels: slow, float64-accumulating, the readable definition of every op. */
export const referenceBackend: Backend = {
  name: 'reference',
  run(card, inputs, attrs) {
    return card.reference(inputs, attrs);
  },
};

let active: Backend = cpuBackend;

/**
 * Chooses the backend that `apply` (and so every op and model) uses from now on.
 *
 * @example
 * ```ts
 * import { referenceBackend, useBackend } from 'lightconv';
 *
 * useBackend(referenceBackend); // every op now runs its reference kernel
 * ```
 */
export function useBackend(backend: Backend): void {
  active = backend;
}

/**
 * The backend in use (`cpuBackend` unless changed by `useBackend` / `withBackend`).
 *
 * @example
 * ```ts
 * import { getBackend } from 'lightconv';
 *
 * console.log(getBackend().name); // 'cpu'
 * ```
 */
export function getBackend(): Backend {
  return active;
}

/**
 * Runs `fn` with `backend` active, restoring the previous one afterwards.
 *
 * @example
 * ```ts
 * import { Tensor, referenceBackend, softmax, withBackend } from 'lightconv';
 *
 * const x = Tensor.randn([2, 10], { seed: 0 });
 * const exact = withBackend(referenceBackend, () => softmax(x)); // compare with softmax(x)
 * ```
 */
export function withBackend<T>(backend: Backend, fn: () => T): T {
  const prev = active;
  active = backend;
  try {
    return fn();
  } finally {
    active = prev;
  }
}

/**
 * The one door through which every op runs: checks shapes with the card's rule and the
 * output's size against the tensor budget (before any kernel allocates anything, on every
 * backend), then hands the card to the active backend. Autograd records its tape here.
 * While the kernel runs, the arrays it allocates (output and scratch) are checked against
 * the same budget by their makers (DTYPES), and errors name the card.
 *
 * @example
 * ```ts
 * import { Tensor, apply, relu, unaryCard } from 'lightconv';
 *
 * const x = Tensor.randn([3], { seed: 0 });
 * const y = apply(unaryCard, [x], { kind: 'relu' }); // what relu(x) does
 * ```
 */
export function apply<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A, backend: Backend = active): Tensor {
  const outShape = card.shape(
    inputs.map((t) => t.shape),
    attrs,
  );
  const dtype = card.outputDtype?.(inputs, attrs) ?? inputs[0]?.dtype ?? 'float32';
  const name = card.label?.(attrs) ?? card.name;
  checkedSize(outShape, `${name}: output`, DTYPES[dtype].bytes);
  const out = withAllocOp(name, () => backend.run(card, inputs, attrs));
  if (card.grad && isGradEnabled()) record(card, inputs, attrs, out);
  return out;
}
