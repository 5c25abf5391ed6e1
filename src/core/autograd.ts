import { LightconvError } from './errors.js';
import { withAllocOp } from './limits.js';
import { type OpCard, getBackend } from './op.js';
import type { Tensor } from './tensor.js';

/**
 * Reverse-mode automatic differentiation: a define-by-run tape, in the spirit of micrograd.
 *
 * 1. Recording. Every op runs through `apply` (src/core/op.ts). When grad mode is on, the card
 *    has a `grad` function and some input has `requiresGrad`, apply calls `record`: the output
 *    remembers the card, its inputs, its attributes and itself in `output.gradFn`, and it gets
 *    `requiresGrad = true` so that the ops after it record too. The "tape" is nothing more than
 *    these links from each output back to its inputs.
 * 2. `loss.backward()` calls `backward` below: sort the graph reachable from the loss
 *    topologically, walk it from the loss back to the leaves, and at each node ask the card for
 *    the gradients of its inputs given the gradient of its output (the chain rule, one op at a
 *    time). Gradients *add up*: a tensor used twice gets the sum of both paths.
 * 3. Leaves (tensors the user made, e.g. parameters) with `requiresGrad` receive their
 *    gradient in `.grad` (added to what is there, as in PyTorch: call `zeroGrad` between steps).
 *    Intermediate tensors only carry gradients during the walk, unless `retainGrad()` asked to
 *    keep theirs in `.grad`.
 * 4. The graph is freed afterwards (each visited `gradFn` is cleared), so a second backward
 *    through the same graph is an error, as in PyTorch without retain_graph.
 */

/** What `apply` leaves on an output it recorded: enough to compute the inputs' gradients. */
export interface GradFn {
  readonly card: OpCard<unknown>;
  readonly inputs: readonly Tensor[];
  readonly attrs: unknown;
}

let enabled = true;

/** Intermediate tensors whose graph a backward has freed (a second backward through them is an error). */
const freed = new WeakSet<Tensor>();

/**
 * Whether ops record onto the tape now (true unless inside `noGrad`).
 *
 * @example
 * ```ts
 * import { isGradEnabled, noGrad } from 'lightconv';
 *
 * noGrad(() => console.log(isGradEnabled())); // false
 * ```
 */
export function isGradEnabled(): boolean {
  return enabled;
}

/**
 * Runs `fn` without recording (inference, optimizer updates, metrics); restores the mode after.
 *
 * @example
 * ```ts
 * import { Tensor, matmul, noGrad } from 'lightconv';
 *
 * const w = Tensor.randn([4, 2], { seed: 0 }).requireGrad();
 * const y = noGrad(() => matmul(Tensor.ones([1, 4]), w)); // no tape: y.gradFn is null
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** Called by `apply` after every op: links the output to its inputs when gradients are needed. */
export function record<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A, output: Tensor): void {
  if (!enabled || !card.grad || !inputs.some((t) => t.requiresGrad)) return;
  output.requiresGrad = true;
  output.gradFn = { card: card as OpCard<unknown>, inputs: [...inputs], attrs };
}

/**
 * Back-propagates from `root` (seeded with `seed`, the gradient of the final result with respect
 * to root: ones for a scalar loss) to every leaf with requiresGrad.
 */
export function backward(root: Tensor, seed: Tensor): void {
  if (!root.requiresGrad) throw new AutogradError('backward: the tensor does not require grad (no input of the ops that made it had requiresGrad, or it was made under noGrad)');
  // Topological order by depth-first search: a tensor is listed after all its inputs. (An explicit
  // stack instead of recursion: a deep network's tape would overflow the call stack.) Each entry
  // is a tensor and the index of the next input to visit.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, k] = top;
    if (freed.has(t)) throw new AutogradError('backward: the graph through this tensor was already freed by an earlier backward; run the forward again');
    const inputs = t.gradFn?.inputs ?? [];
    let j = k;
    while (j < inputs.length && (!inputs[j]!.requiresGrad || seen.has(inputs[j]!))) j++;
    if (j < inputs.length) {
      top[1] = j + 1;
      seen.add(inputs[j]!);
      stack.push([inputs[j]!, 0]);
    } else {
      stack.pop();
      order.push(t); // all its inputs are listed
    }
  }

  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i]!;
    const g = grads.get(t);
    grads.delete(t); // each gradient is needed once: free it as soon as it is used
    if (!g) continue; // unreachable: cannot happen for nodes found from the root, kept for safety
    const fn = t.gradFn;
    if (!fn) {
      // A leaf: accumulate into .grad, as PyTorch does (a host copy of a device gradient).
      t.grad = t.grad ? accumulate(t.grad, g) : g.device ? g.clone() : g;
      if (g !== seed) g.dispose(); // device gradients (GPU backend) are freed once used; a no-op on the host
      continue;
    }
    // retainGrad(): keep a copy for the caller (the gradient may be handed on to an input and
    // disposed). Its graph is freed below, so a tensor gets this once, as in PyTorch without retain_graph.
    if (t.retainsGrad) t.grad = g.clone();
    // The backend's own backward where it has one (the GPU kernels), else the card's.
    // Arrays the gradient allocates are budget-checked like the forward's, and named after it.
    const inputGrads = withAllocOp(`${fn.card.label?.(fn.attrs) ?? fn.card.name} backward`, () => getBackend().grad?.(fn.card, fn.inputs, fn.attrs, t, g) ?? fn.card.grad!(fn.inputs, fn.attrs, t, g));
    fn.inputs.forEach((x, k) => {
      const gx = inputGrads[k];
      if (!x.requiresGrad || !gx) return;
      const prev = grads.get(x);
      // Two device gradients add up on the device where the backend can (else on the host).
      grads.set(x, prev ? ((prev.device && gx.device ? getBackend().accumulate?.(prev, gx) : undefined) ?? accumulate(prev, gx)) : gx);
      if (prev) [prev, gx].forEach((d) => d !== seed && d !== g && d.dispose());
    });
    if (g !== seed && !inputGrads.includes(g)) g.dispose();
    t.gradFn = null; // free the graph: its inputs are no longer reachable through t
    freed.add(t);
  }
}

/** a + b as a new tensor (gradients are never written in place: a kernel may return its input's data). */
function accumulate(a: Tensor, b: Tensor): Tensor {
  if (a.shape.join() !== b.shape.join()) throw new AutogradError(`backward: gradient shapes [${a.shape}] and [${b.shape}] differ`);
  const out = a.clone();
  const o = out.dataSync();
  const bd = b.dataSync();
  for (let i = 0; i < o.length; i++) o[i] = o[i]! + bd[i]!;
  return out;
}

/**
 * Misuse of the tape: backward on a tensor that needs no grad, a non-scalar loss, a freed graph.
 *
 * @example
 * ```ts
 * import { AutogradError, Tensor } from 'lightconv';
 *
 * try {
 *   Tensor.ones([2]).backward(); // needs no grad, and not a scalar
 * } catch (e) {
 *   console.log(e instanceof AutogradError); // true
 * }
 * ```
 */
export class AutogradError extends LightconvError {}
