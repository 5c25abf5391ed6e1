import { ShapeError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

/**
 * A parameter or buffer slot. The tensor is created on first use (lazy init), so that a model
 * can be built and counted (`summary`, parameter totals) without allocating its weights —
 * EfficientNet-B7 has 66 M parameters. Each slot draws its own seed when it is declared, so
 * the values do not depend on the order in which slots are first touched.
 */
interface Slot {
  readonly shape: Shape;
  readonly init: (shape: Shape, rng: Rng) => Tensor;
  readonly seed: number;
  tensor: Tensor | undefined;
  /** Parameters only: whether training updates it (false = frozen). */
  requiresGrad: boolean;
}

/** Called after a module's forward with its input and output (step-through, activation maps, Grad-CAM). */
export type ForwardHook = (module: Module, input: Tensor, output: Tensor) => void;

/** Called by `infer` once per module with the shapes it sees (summary). */
export type ShapeVisitor = (module: Module, input: Shape, output: Shape) => void;

/** Initialisers, torchvision's defaults. */
export const init = {
  /** All zeros (biases, BatchNorm running means). */
  zeros: (shape: Shape): Tensor => Tensor.zeros(shape),
  /** All ones (BatchNorm weights, running variances). */
  ones: (shape: Shape): Tensor => Tensor.ones(shape),
  /** Kaiming normal, mode fan_out, ReLU gain (torchvision's conv init). */
  kaimingFanOut: (shape: Shape, rng: Rng): Tensor => {
    const fanOut = shape[0]! * sizeOf(shape.slice(2));
    return Tensor.randn(shape, { rng, std: Math.sqrt(2 / Math.max(1, fanOut)) });
  },
  /** Normal with mean 0 and standard deviation `std` (torchvision's Linear init uses 0.01). */
  normal: (std: number) => (shape: Shape, rng: Rng): Tensor => Tensor.randn(shape, { rng, std }),
  /** Uniform on [-bound, bound]. */
  uniform: (bound: number) => (shape: Shape, rng: Rng): Tensor => Tensor.rand(shape, { rng, low: -bound, high: bound }),
};

/**
 * The base of every layer and model: named parameters and buffers (PyTorch's names, such as
 * `features.3.block.1.weight`, so that weights line up with torchvision), named children,
 * train/eval, freezing, forward hooks and state dicts.
 *
 * A subclass declares its tensors with `param` / `buffer`, its submodules with `child`, and
 * implements `run` (the computation, with public kernel functions only, so that the autograd
 * tape sees every op) and `inferShape` (the output shape without computing, for summaries).
 * Callers use `forward`, which also runs the hooks.
 *
 * @example
 * ```ts
 * import { Conv2d, Module, Rng, Tensor, relu, type Shape } from 'lightconv';
 *
 * class Block extends Module {
 *   private conv: Conv2d;
 *   constructor(channels: number, rng = new Rng(0)) {
 *     super();
 *     this.conv = this.child('conv', new Conv2d(channels, channels, 3, { padding: 1, rng }));
 *   }
 *   describe(): string {
 *     return 'Block';
 *   }
 *   protected run(x: Tensor): Tensor {
 *     return relu(this.conv.forward(x));
 *   }
 *   protected inferShape(input: Shape): Shape {
 *     return this.conv.infer(input);
 *   }
 * }
 * const b = new Block(8).freeze('conv'); // parameter 'conv.weight' no longer trains
 * ```
 */
export abstract class Module {
  /** Train mode (batch statistics, dropout on) or eval mode. */
  training = true;
  private readonly _params = new Map<string, Slot>();
  private readonly _buffers = new Map<string, Slot>();
  private readonly _children = new Map<string, Module>();
  private readonly _hooks: ForwardHook[] = [];

  /** A short description, e.g. `Conv2d(3, 16, k=3, s=2)`. */
  abstract describe(): string;
  /** The computation. */
  protected abstract run(x: Tensor): Tensor;
  /** The output shape for an input shape; containers pass `visit` on to their children's `infer`. */
  protected abstract inferShape(input: Shape, visit?: ShapeVisitor): Shape;
  /** Multiply-accumulates of this module's own ops (not its children's) for an input shape. */
  macs(_input: Shape): number {
    return 0;
  }

  /** Runs the module, then its forward hooks. */
  forward(x: Tensor): Tensor {
    const y = this.run(x);
    for (const h of this._hooks) h(this, x, y);
    return y;
  }

  /** The output shape for `input`, calling `visit` for this module and every submodule that runs. */
  infer(input: Shape, visit?: ShapeVisitor): Shape {
    const out = this.inferShape(input, visit);
    visit?.(this, input, out);
    return out;
  }

  /** Whether forward hooks are registered on this module (fused fast paths must not skip it then). */
  hasHooks(): boolean {
    return this._hooks.length > 0;
  }

  /** Adds a hook run after every forward of this module; returns a function that removes it. */
  onForward(hook: ForwardHook): () => void {
    this._hooks.push(hook);
    return () => {
      const i = this._hooks.indexOf(hook);
      if (i >= 0) this._hooks.splice(i, 1);
    };
  }

  // ------------------------------------------------------------------------------------------
  // Declaration (for subclasses)

  /** Declares a parameter `name` of `shape`, initialised by `initFn` on first use; `rng` gives it its own seed. Trainable until frozen. */
  protected param(name: string, shape: Shape, initFn: (shape: Shape, rng: Rng) => Tensor, rng: Rng): void {
    this._params.set(name, { shape: [...shape], init: initFn, seed: rng.nextU32(), tensor: undefined, requiresGrad: true });
  }

  /** Declares a buffer `name` of `shape` (state that is saved but not trained, such as running statistics), initialised by `initFn` on first use. */
  protected buffer(name: string, shape: Shape, initFn: (shape: Shape) => Tensor): void {
    this._buffers.set(name, { shape: [...shape], init: initFn, seed: 0, tensor: undefined, requiresGrad: false });
  }

  /** Registers `m` as the submodule `name` (its parameters become `name.…`) and returns it. */
  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** The tensor of a parameter, created on first use (with `requiresGrad` as the slot says). */
  protected paramTensor(name: string): Tensor {
    const s = this._params.get(name);
    if (!s) throw new ValueError(`${this.describe()}: no parameter '${name}'`);
    return materialize(s);
  }

  /** The tensor of a buffer, created on first use. Throws a ValueError for an unknown name. */
  protected bufferTensor(name: string): Tensor {
    const s = this._buffers.get(name);
    if (!s) throw new ValueError(`${this.describe()}: no buffer '${name}'`);
    return materialize(s);
  }

  /** Replaces a buffer's values in place (running statistics). */
  protected setBuffer(name: string, values: Tensor): void {
    const t = this.bufferTensor(name);
    t.dataSync().set(values.dataSync());
    t.version++;
  }

  // ------------------------------------------------------------------------------------------
  // Tree

  /** Direct children, by name. */
  children(): [string, Module][] {
    return [...this._children];
  }

  /** This module ('' ) and every descendant, with dotted names, in registration (= forward) order. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this._children) out.push(...c.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** The submodule at a dotted path ('' is this module). */
  get(path: string): Module {
    let m: Module = this;
    if (path === '') return m;
    for (const part of path.split('.')) {
      const c = m._children.get(part);
      if (!c) throw new ValueError(`no submodule '${path}' (${m.describe()} has ${[...m._children.keys()].map((k) => `'${k}'`).join(', ') || 'no children'})`);
      m = c;
    }
    return m;
  }

  /** Replaces the submodule at a dotted path. */
  set(path: string, m: Module): void {
    const i = path.lastIndexOf('.');
    const parent = i < 0 ? this : this.get(path.slice(0, i));
    const name = path.slice(i + 1);
    if (!parent._children.has(name)) throw new ValueError(`no submodule '${path}' to replace`);
    parent._children.set(name, m);
    parent.onChildReplaced(name, m);
  }

  /** Lets a subclass that keeps typed references to children update them after `set`. */
  protected onChildReplaced(_name: string, _m: Module): void {}

  private *slots(kind: '_params' | '_buffers', prefix = ''): Generator<[string, Slot]> {
    for (const [n, s] of this[kind]) yield [prefix ? `${prefix}.${n}` : n, s];
    for (const [n, c] of this._children) yield* c.slots(kind, prefix ? `${prefix}.${n}` : n);
  }

  // ------------------------------------------------------------------------------------------
  // Parameters

  /** Every parameter tensor with its dotted name (creates them on first call). */
  namedParameters(): [string, Tensor][] {
    return [...this.slots('_params')].map(([n, s]) => [n, materialize(s)]);
  }

  /** The tensors training should update: trainable parameters only (frozen ones are left out). */
  parameters(): Tensor[] {
    return [...this.slots('_params')].filter(([, s]) => s.requiresGrad).map(([, s]) => materialize(s));
  }

  /** Every buffer tensor with its dotted name (creates them on first call). */
  namedBuffers(): [string, Tensor][] {
    return [...this.slots('_buffers')].map(([n, s]) => [n, materialize(s)]);
  }

  /** Parameter names and shapes, with whether each trains — without allocating anything. */
  parameterShapes(): { name: string; shape: Shape; trainable: boolean }[] {
    return [...this.slots('_params')].map(([name, s]) => ({ name, shape: s.shape, trainable: s.requiresGrad }));
  }

  /** Buffer names and shapes, without allocating anything. */
  bufferShapes(): { name: string; shape: Shape }[] {
    return [...this.slots('_buffers')].map(([name, s]) => ({ name, shape: s.shape }));
  }

  /** Parameter count of this module alone (not its children). */
  ownParameterCount(): { total: number; trainable: number } {
    let total = 0;
    let trainable = 0;
    for (const s of this._params.values()) {
      total += sizeOf(s.shape);
      if (s.requiresGrad) trainable += sizeOf(s.shape);
    }
    return { total, trainable };
  }

  /** Parameter count of this module and all its descendants (total, and trainable = not frozen), without allocating anything. */
  parameterCount(): { total: number; trainable: number } {
    let total = 0;
    let trainable = 0;
    for (const p of this.parameterShapes()) {
      total += sizeOf(p.shape);
      if (p.trainable) trainable += sizeOf(p.shape);
    }
    return { total, trainable };
  }

  /**
   * Freezes parameters (requiresGrad = false): all of them, or those whose name equals or starts
   * with one of `prefixes` followed by a dot (`'features'`, `'features.3'`, `'classifier.3.weight'`).
   */
  freeze(prefixes?: string | readonly string[]): this {
    this.setTrainable(prefixes, false);
    return this;
  }

  /** Makes parameters trainable again: all of them, or those matching `prefixes` as in `freeze`. Throws a ValueError when a prefix matches nothing. */
  unfreeze(prefixes?: string | readonly string[]): this {
    this.setTrainable(prefixes, true);
    return this;
  }

  private setTrainable(prefixes: string | readonly string[] | undefined, on: boolean): void {
    const list = prefixes === undefined ? undefined : typeof prefixes === 'string' ? [prefixes] : prefixes;
    let hit = 0;
    for (const [name, s] of this.slots('_params')) {
      if (list && !list.some((p) => name === p || name.startsWith(`${p}.`))) continue;
      s.requiresGrad = on;
      if (s.tensor) s.tensor.requiresGrad = on;
      hit++;
    }
    if (list && hit === 0) throw new ValueError(`${on ? 'unfreeze' : 'freeze'}: no parameter matches ${list.map((p) => `'${p}'`).join(', ')}`);
  }

  /** Train mode (or eval mode with `train(false)`), for this module and every descendant. */
  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  /** Eval mode (running statistics, dropout off) for this module and every descendant; same as `train(false)`. */
  eval(): this {
    return this.train(false);
  }

  // ------------------------------------------------------------------------------------------
  // State dicts

  /** Parameters and buffers by PyTorch name (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [n, t] of this.namedParameters()) out[n] = t;
    for (const [n, t] of this.namedBuffers()) out[n] = t;
    return out;
  }

  /**
   * Copies values into the parameters and buffers (in place, so references held by an optimizer
   * stay valid). Every shape is checked: a mismatch is a ShapeError naming the tensor and both
   * shapes. With `strict` (default) missing and unexpected names are a ValueError listing them.
   */
  loadStateDict(sd: Record<string, Tensor> | ReadonlyMap<string, Tensor>, opts: { strict?: boolean } = {}): this {
    const entries = sd instanceof Map ? [...sd] : Object.entries(sd);
    const given = new Map(entries);
    const slots = new Map([...this.slots('_params'), ...this.slots('_buffers')]);
    if (opts.strict ?? true) {
      const missing = [...slots.keys()].filter((k) => !given.has(k));
      const unexpected = [...given.keys()].filter((k) => !slots.has(k));
      if (missing.length || unexpected.length) {
        const list = (a: string[]) => a.slice(0, 8).map((k) => `'${k}'`).join(', ') + (a.length > 8 ? ` and ${a.length - 8} more` : '');
        throw new ValueError(`loadStateDict: ${missing.length ? `missing ${list(missing)}` : ''}${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${list(unexpected)}` : ''}`);
      }
    }
    for (const [name, t] of given) {
      const s = slots.get(name);
      if (!s) continue;
      if (t.shape.join() !== s.shape.join()) {
        throw new ShapeError(`loadStateDict: '${name}' is ${fmtShape(s.shape)} in the model but ${fmtShape(t.shape)} in the state dict`);
      }
      const target = materialize(s);
      target.dataSync().set(t.dataSync());
      target.version++;
    }
    return this;
  }

  /** A tree of `describe()` lines, PyTorch-style. */
  toString(): string {
    const lines: string[] = [];
    const walk = (m: Module, name: string, depth: number) => {
      lines.push(`${'  '.repeat(depth)}${name ? `(${name}): ` : ''}${m.describe()}`);
      for (const [n, c] of m._children) walk(c, n, depth + 1);
    };
    walk(this, '', 0);
    return lines.join('\n');
  }
}

/**
 * Runs `fn` while recording the output of every submodule of `root` named in `names` (dotted
 * paths; all leaf modules when omitted) — activation maps, step-through, Grad-CAM targets. The
 * hooks are removed afterwards. A module that runs twice keeps its last output.
 *
 * @example
 * ```ts
 * import { Tensor, captureOutputs, mobileNetV3 } from 'lightconv';
 *
 * const net = mobileNetV3('small').eval();
 * const { result, outputs } = captureOutputs(net, () => net.forward(Tensor.zeros([1, 3, 224, 224])), ['features.3', 'features.8']);
 * console.log(outputs.get('features.3')?.shape);
 * ```
 */
export function captureOutputs<T>(root: Module, fn: () => T, names?: readonly string[]): { result: T; outputs: Map<string, Tensor> } {
  const wanted = names ? names.map((n) => [n, root.get(n)] as const) : root.namedModules().filter(([, m]) => m.children().length === 0);
  const outputs = new Map<string, Tensor>();
  const offs = wanted.map(([n, m]) => m.onForward((_m, _x, y) => void outputs.set(n, y)));
  try {
    return { result: fn(), outputs };
  } finally {
    for (const off of offs) off();
  }
}

function materialize(s: Slot): Tensor {
  if (!s.tensor) {
    const t = s.init(s.shape, new Rng(s.seed));
    if (t.shape.join() !== s.shape.join()) throw new ShapeError(`initialiser returned ${fmtShape(t.shape)} for a ${fmtShape(s.shape)} slot`);
    t.requiresGrad = s.requiresGrad;
    s.tensor = t;
  }
  return s.tensor;
}
