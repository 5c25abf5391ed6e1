import { noGrad } from '../core/autograd.js';
import { ValueError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';

/**
 * Optimizers with PyTorch's update rules (torch.optim 1.13, single-tensor path), elementwise in
 * float64 and stored back in the parameter's dtype. They update parameters *in place* (modules
 * hold their parameter tensors by reference) and skip every parameter whose requiresGrad is
 * false (frozen) or that has no gradient (not used by the loss), as PyTorch does.
 *
 * Parameter groups: pass `[{ params: backbone, lr: 1e-4 }, { params: head }]`; a group's own
 * settings override the optimizer's defaults. A schedule changes `group.lr` between steps.
 */
export interface ParamGroupSpec<O> {
  params: readonly Tensor[];
  /** Overrides of the optimizer's options for this group. */
  options?: Partial<O>;
}

/** A parameter group as the optimizer holds it: its tensors and its resolved settings. */
export interface ParamGroup<O> {
  readonly params: readonly Tensor[];
  /** This group's settings (the defaults merged with its overrides); lr is changed by schedules. */
  options: O & { lr: number };
  /** The lr the group started with (schedules scale it). */
  readonly initialLr: number;
}

/**
 * The per-parameter state an optimizer keeps once a parameter has been stepped, under one group's
 * settings: `tensors` (each of the parameter's shape, float64 for a float64 parameter, else
 * float32), `counts` (scalars that are non-negative safe integers, such as Adam's `step`), and
 * which of the tensors can never be negative (second moments). Checkpoint loading refuses state
 * that differs from it.
 */
export interface OptimizerStateSpec {
  readonly tensors: readonly string[];
  readonly counts: readonly string[];
  readonly nonNegative?: readonly string[];
}

/** Throws ValueError unless `v` is a finite number ≥ `min` (and < `below` when given). */
function checkRange(who: string, name: string, v: unknown, min: number, below?: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (below !== undefined && !(v < below))) {
    const range = `${min > -Infinity ? ` ≥ ${min}` : ''}${below !== undefined ? ` and < ${below}` : ''}`;
    throw new ValueError(`${who}: ${name} must be a finite number${range}, got ${String(v)}`);
  }
}

/**
 * The base of the optimizers: holds the parameter groups (a flat list of tensors is one group),
 * the per-parameter state and the step count; `step()` calls the subclass's `update` for every
 * parameter that requires grad and has a gradient, in place, outside autograd. Throws
 * ValueError for a setting out of its range (lr negative or not finite; see checkOptions) or a
 * parameter in more than one group.
 *
 * @example
 * ```ts
 * import { Optimizer, Tensor } from 'lightconv';
 *
 * // Plain gradient descent: p −= lr·g.
 * class Descent extends Optimizer {
 *   protected update(p: Tensor, g: ArrayLike<number>, _state: Record<string, Tensor | number>, o: { lr: number }): void {
 *     const w = p.dataSync();
 *     for (let i = 0; i < w.length; i++) w[i] = w[i]! - o.lr * g[i]!;
 *   }
 * }
 * const w = Tensor.randn([4], { seed: 0 }).requireGrad();
 * const opt = new Descent([w], { lr: 0.1 });
 * ```
 */
export abstract class Optimizer<O extends { lr: number } = { lr: number }> {
  readonly groups: ParamGroup<O>[];
  /** Per-parameter state (momentum buffers, Adam moments, step counts). */
  readonly state = new Map<Tensor, Record<string, Tensor | number>>();
  /** Steps taken. */
  stepCount = 0;

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<O>[], defaults: O) {
    checkRange(this.constructor.name, 'lr', defaults.lr, 0);
    const specs: ParamGroupSpec<O>[] = params.length > 0 && !(params[0] instanceof Tensor) ? [...(params as ParamGroupSpec<O>[])] : [{ params: params as Tensor[] }];
    const seen = new Set<Tensor>();
    this.groups = specs.map((s, i) => {
      for (const p of s.params) {
        if (seen.has(p)) throw new ValueError(`${this.constructor.name}: a parameter appears in more than one group (group ${i})`);
        seen.add(p);
      }
      const options = { ...defaults, ...s.options } as O;
      this.checkOptions(options);
      return { params: s.params, options, initialLr: options.lr };
    });
  }

  /**
   * Throws ValueError unless a group's settings are in their valid ranges (PyTorch's checks):
   * here lr finite and ≥ 0; subclasses add their own settings. Also used on the lr a checkpoint holds.
   */
  checkOptions(o: O): void {
    checkRange(this.constructor.name, 'lr', o.lr, 0);
  }

  /**
   * The state `update` keeps for a stepped parameter under a group's settings `o`; null (the
   * default, for optimizers that do not say) lets a checkpoint hold any finite scalars and
   * parameter-shaped tensors.
   */
  stateSpec(_o: O): OptimizerStateSpec | null {
    return null;
  }

  /** Clears every parameter's gradient (PyTorch's zero_grad with set_to_none=True). */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.grad = null;
  }

  /** One update of every trainable parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    noGrad(() => {
      for (const g of this.groups) {
        for (const p of g.params) {
          if (!p.requiresGrad || !p.grad) continue;
          let st = this.state.get(p);
          if (!st) this.state.set(p, (st = {}));
          this.update(p, p.grad.dataSync(), st, g.options);
          p.version++;
        }
      }
    });
  }

  /** Updates p.data from its gradient `g`, with this parameter's state. */
  protected abstract update(p: Tensor, g: ArrayLike<number>, state: Record<string, Tensor | number>, o: O): void;

  /** A state buffer of p's shape, created zeroed on first use. */
  protected buffer(state: Record<string, Tensor | number>, name: string, p: Tensor): Float32Array | Float64Array {
    let t = state[name] as Tensor | undefined;
    if (!t) state[name] = t = Tensor.zeros(p.shape, p.dtype === 'float64' ? 'float64' : 'float32');
    return t.dataSync() as Float32Array | Float64Array;
  }
}

/**
 * SGD's settings, PyTorch's names and defaults: lr (required), momentum 0, dampening 0,
 * weightDecay 0 (L2, added to the gradient), nesterov false.
 */
export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/**
 * SGD: d = g + wd·p; with momentum, buf = d on the first step, then buf = μ·buf + (1 − dampening)·d;
 * d = nesterov ? d + μ·buf : buf; p −= lr·d. Throws ValueError for Nesterov without momentum or
 * with dampening, or a negative lr.
 *
 * @example
 * ```ts
 * import { SGD, Tensor, crossEntropy, lightCnn } from 'lightconv';
 *
 * const net = lightCnn();
 * const optimizer = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
 * const loss = crossEntropy(net.forward(Tensor.randn([2, 3, 64, 64], { seed: 0 })), [0, 1]);
 * optimizer.zeroGrad();
 * loss.backward();
 * optimizer.step();
 * ```
 */
export class SGD extends Optimizer<SgdOptions> {
  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<SgdOptions>[], opts: Partial<SgdOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...opts });
    if (this.groups.some((g) => g.options.nesterov && (g.options.momentum <= 0 || g.options.dampening !== 0))) {
      throw new ValueError('SGD: Nesterov momentum requires a momentum > 0 and zero dampening');
    }
  }

  override checkOptions(o: SgdOptions): void {
    super.checkOptions(o);
    checkRange('SGD', 'momentum', o.momentum, 0);
    checkRange('SGD', 'dampening', o.dampening, -Infinity);
    checkRange('SGD', 'weightDecay', o.weightDecay, 0);
  }

  /** A momentum buffer when momentum is on; nothing otherwise. */
  override stateSpec(o: SgdOptions): OptimizerStateSpec {
    return { tensors: o.momentum !== 0 ? ['momentum_buffer'] : [], counts: [] };
  }

  protected update(p: Tensor, g: ArrayLike<number>, st: Record<string, Tensor | number>, o: SgdOptions): void {
    const w = p.dataSync();
    const first = st.momentum_buffer === undefined;
    const buf = o.momentum !== 0 ? this.buffer(st, 'momentum_buffer', p) : null;
    if (w instanceof Float32Array && g instanceof Float32Array && buf instanceof Float32Array && !o.nesterov) {
      sgdMomentumF32(w, g, buf, first, o.lr, o.momentum, o.dampening, o.weightDecay);
      return;
    }
    for (let i = 0; i < w.length; i++) {
      let d = g[i]! + o.weightDecay * w[i]!;
      if (buf) {
        buf[i] = first ? d : o.momentum * buf[i]! + (1 - o.dampening) * d;
        d = o.nesterov ? d + o.momentum * buf[i]! : buf[i]!;
      }
      w[i] = w[i]! - o.lr * d;
    }
  }
}

/**
 * SGD's update for the usual case (float32 everything, momentum, no Nesterov) as one loop over
 * typed arrays of a single kind with the settings in locals: the same arithmetic, in the same
 * order and precision, as the general loop (which V8 cannot specialise, as it sees every
 * combination of array types), at a fraction of the cost.
 */
function sgdMomentumF32(w: Float32Array, g: Float32Array, buf: Float32Array, first: boolean, lr: number, momentum: number, dampening: number, wd: number): void {
  const keep = 1 - dampening;
  const n = w.length;
  if (first) {
    for (let i = 0; i < n; i++) {
      buf[i] = g[i]! + wd * w[i]!;
      w[i] = w[i]! - lr * buf[i]!;
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const d = g[i]! + wd * w[i]!;
    buf[i] = momentum * buf[i]! + keep * d;
    w[i] = w[i]! - lr * buf[i]!;
  }
}

/**
 * Adam's and AdamW's settings, PyTorch's names and defaults: lr 1e-3, betas [0.9, 0.999],
 * eps 1e-8, weightDecay 0 (AdamW: 1e-2), amsgrad false.
 */
export interface AdamOptions {
  lr: number;
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

/**
 * Adam (weight decay added to the gradient, L2) and AdamW (decoupled: p ·= 1 − lr·wd first).
 * m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; with t the parameter's step,
 * p −= (lr/(1 − β1^t))·m / (sqrt(v)/sqrt(1 − β2^t) + eps) — eps outside the square root and
 * after the bias correction, as PyTorch places it. amsgrad uses the running max of v.
 *
 * @example
 * ```ts
 * import { Adam, lightCnn } from 'lightconv';
 *
 * const net = lightCnn();
 * // A smaller lr for the feature extractor than for the head.
 * const optimizer = new Adam([{ params: net.features.parameters(), options: { lr: 1e-4 } }, { params: net.classifier.parameters() }], { lr: 1e-3 });
 * ```
 */
export class Adam extends Optimizer<AdamOptions> {
  protected decoupled = false;

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<AdamOptions>[], opts: Partial<AdamOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, ...opts });
  }

  override checkOptions(o: AdamOptions): void {
    super.checkOptions(o);
    const who = this.constructor.name;
    if (!Array.isArray(o.betas) || o.betas.length !== 2) throw new ValueError(`${who}: betas must be two numbers, got ${String(o.betas)}`);
    checkRange(who, 'betas[0]', o.betas[0], 0, 1);
    checkRange(who, 'betas[1]', o.betas[1], 0, 1);
    checkRange(who, 'eps', o.eps, 0);
    checkRange(who, 'weightDecay', o.weightDecay, 0);
  }

  /** The two moments (and their running max with amsgrad) and the parameter's step count. */
  override stateSpec(o: AdamOptions): OptimizerStateSpec {
    const second = o.amsgrad ? ['exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg_sq'];
    return { tensors: ['exp_avg', ...second], counts: ['step'], nonNegative: second };
  }

  protected update(p: Tensor, g: ArrayLike<number>, st: Record<string, Tensor | number>, o: AdamOptions): void {
    const w = p.dataSync();
    const m = this.buffer(st, 'exp_avg', p);
    const v = this.buffer(st, 'exp_avg_sq', p);
    const vmax = o.amsgrad ? this.buffer(st, 'max_exp_avg_sq', p) : null;
    const t = (st.step = ((st.step as number | undefined) ?? 0) + 1);
    const [b1, b2] = o.betas;
    const stepSize = o.lr / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    for (let i = 0; i < w.length; i++) {
      let gi = g[i]!;
      if (this.decoupled) w[i] = w[i]! * (1 - o.lr * o.weightDecay);
      else if (o.weightDecay !== 0) gi += o.weightDecay * w[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      let vi = v[i]!;
      if (vmax) vi = vmax[i] = Math.max(vmax[i]!, vi);
      w[i] = w[i]! - (stepSize * m[i]!) / (Math.sqrt(vi) / bc2Sqrt + o.eps);
    }
  }
}

/**
 * AdamW: Adam with decoupled weight decay (default 1e-2, PyTorch's).
 *
 * @example
 * ```ts
 * import { AdamW, lightCnn } from 'lightconv';
 *
 * const optimizer = new AdamW(lightCnn().parameters(), { lr: 3e-4, weightDecay: 0.05 });
 * ```
 */
export class AdamW extends Adam {
  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<AdamOptions>[], opts: Partial<AdamOptions> = {}) {
    super(params, { weightDecay: 1e-2, ...opts });
    this.decoupled = true;
  }
}

/**
 * Scales the gradients of `params` so that their global L2 norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_: factor maxNorm/(norm + 1e-6) when norm > maxNorm).
 * Returns the norm before clipping. Gradients are replaced, not written in place.
 *
 * @example
 * ```ts
 * import { Tensor, clipGradNorm, crossEntropy, lightCnn } from 'lightconv';
 *
 * const net = lightCnn();
 * crossEntropy(net.forward(Tensor.randn([2, 3, 64, 64], { seed: 0 })), [0, 1]).backward();
 * const norm = clipGradNorm(net.parameters(), 1); // the norm before clipping
 * ```
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  const list = [...params].filter((p) => p.grad);
  let sq = 0;
  for (const p of list) for (const v of p.grad!.dataSync()) sq += v * v;
  const norm = Math.sqrt(sq);
  const f = maxNorm / (norm + 1e-6);
  if (f < 1) {
    for (const p of list) {
      const g = p.grad!.clone();
      const d = g.dataSync();
      for (let i = 0; i < d.length; i++) d[i] = d[i]! * f;
      p.grad = g;
    }
  }
  return norm;
}
