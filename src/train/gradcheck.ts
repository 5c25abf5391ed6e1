import { noGrad } from '../core/autograd.js';
import { LightconvError } from '../core/errors.js';
import { type Backend, referenceBackend, withBackend } from '../core/op.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';

/**
 * A torch.autograd.gradcheck-style check: compares the tape's gradients of f with central
 * differences, (f(x + eps·e_i) − f(x − eps·e_i)) / 2eps, for every element of every input.
 *
 * To check a non-scalar f with one backward, the scalar checked is L = Σ w ⊙ f(x) with fixed
 * random weights w (the same vector-Jacobian product gradcheck tests). Everything runs on the
 * reference kernels (`backend`, default referenceBackend); pass float64 inputs where the cards
 * accept them, so that eps = 1e-6, atol = 1e-5, rtol = 1e-3 (gradcheck's defaults) are
 * meaningful. An element passes when |analytic − numeric| ≤ atol + rtol·|numeric|.
 */
export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
  backend?: Backend;
  /** Inputs (by position) not to check, e.g. labels or indices. */
  skip?: readonly number[];
}

/**
 * Thrown by `gradcheck` when an analytic gradient differs from the numeric one; the message names
 * the input and element.
 *
 * @example
 * ```ts
 * import { GradcheckError, Tensor, gradcheck, sigmoid } from 'lightconv';
 *
 * try {
 *   gradcheck((x) => sigmoid(x), [Tensor.randn([4], { seed: 0 })]);
 * } catch (e) {
 *   if (e instanceof GradcheckError) console.error(e.message);
 * }
 * ```
 */
export class GradcheckError extends LightconvError {}

/**
 * Runs the check described at `GradcheckOptions`: returns the largest |analytic − numeric| and how
 * many elements were checked, or throws a GradcheckError naming the first that fails.
 *
 * @example
 * ```ts
 * import { Tensor, gradcheck, mul, tanh } from 'lightconv';
 *
 * const a = new Tensor(Float64Array.from([0.1, -0.4, 0.7]), [3], 'float64');
 * const b = new Tensor(Float64Array.from([1.5, 0.2, -0.3]), [3], 'float64');
 * const { maxAbs, checked } = gradcheck((x, y) => tanh(mul(x, y)), [a, b]); // checked: 6
 * ```
 */
export function gradcheck(f: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], opts: GradcheckOptions = {}): { maxAbs: number; checked: number } {
  const { eps = 1e-6, atol = 1e-5, rtol = 1e-3, seed = 0, backend = referenceBackend } = opts;
  const skip = new Set(opts.skip ?? []);
  const xs = inputs.map((t, k) => (skip.has(k) ? t : t.clone().requireGrad()));
  const out = withBackend(backend, () => f(...xs));
  const rng = new Rng(seed);
  const w = Tensor.zeros(out.shape, out.dtype);
  const wd = w.dataSync();
  for (let i = 0; i < wd.length; i++) wd[i] = rng.uniform(-1, 1);
  out.backward(w);
  const lossAt = (probe: Tensor[]): number =>
    noGrad(() => {
      const y = withBackend(backend, () => f(...probe)).dataSync();
      let s = 0;
      for (let i = 0; i < y.length; i++) s += wd[i]! * y[i]!;
      return s;
    });
  let maxAbs = 0;
  let checked = 0;
  inputs.forEach((x0, k) => {
    if (skip.has(k)) return;
    const analytic = xs[k]!.grad?.dataSync();
    for (let i = 0; i < x0.size; i++) {
      const probe = inputs.map((t) => t.clone());
      const d = probe[k]!.dataSync();
      const v = d[i]!;
      d[i] = v + eps;
      const up = lossAt(probe);
      d[i] = v - eps;
      const down = lossAt(probe);
      const numeric = (up - down) / (2 * eps);
      const got = analytic ? analytic[i]! : 0;
      const err = Math.abs(got - numeric);
      maxAbs = Math.max(maxAbs, err);
      checked++;
      if (!(err <= atol + rtol * Math.abs(numeric))) {
        throw new GradcheckError(`gradcheck: input ${k} element ${i}: analytic ${got}, numeric ${numeric} (|diff| ${err.toExponential(2)} > ${atol} + ${rtol}·|numeric|)`);
      }
    }
  });
  return { maxAbs, checked };
}
