import { noGrad } from '../core/autograd.js';
import { ValueError } from '../core/errors.js';
import { type Shape, fmtShape, sizeOf } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import type { Activation } from '../kernels/activation.js';
import { convCard } from '../kernels/conv.js';
import { sigmoid } from '../kernels/elementwise.js';
import { reshape } from '../kernels/movement.js';
import { resolveAutoPad, type AutoPad } from '../kernels/window.js';
import { ConvBNAct, ECA, InvertedResidual, SqueezeExcite } from '../layers/blocks.js';
import { Act, AdaptiveAvgPool2d, BatchNorm2d, Conv1d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, StochasticDepth } from '../layers/layers.js';
import type { Module } from '../layers/module.js';
import { OnnxModel } from '../io/onnx/model.js';
import type { OnnxNode } from '../io/onnx/node.js';
import {
  type Arithmetic,
  type BinaryKind,
  type PostStage,
  activationArithmetic,
  activationName,
  activationStage,
  argMax,
  argMin,
  batchNormArithmetic,
  binaryArithmetic,
  bnStage,
  convArithmetic,
  copyArithmetic,
  flatOf,
  fmtNum,
  fmtPercent,
  fmtRange,
  globalPoolArithmetic,
  linearArithmetic,
  poolArithmetic,
  rangeOf,
  softmaxArithmetic,
} from './arithmetic.js';

export type { Arithmetic } from './arithmetic.js';

/** What a step is, for its words and its arithmetic. */
export type StepKind =
  | 'conv'
  | 'depthwise_conv'
  | 'batchnorm'
  | 'activation'
  | 'se'
  | 'eca'
  | 'mbconv'
  | 'conv_bn_act'
  | 'pool'
  | 'global_pool'
  | 'linear'
  | 'softmax'
  | 'add'
  | 'mul'
  | 'flatten'
  | 'dropout'
  | 'other';

/** One layer of a run (`stepThrough`): what ran, its input and output, cost, and explanations. */
export interface Step {
  /** 0-based order of execution. */
  index: number;
  /** Module path 'features.4.block.2' or ONNX node name. */
  name: string;
  /** Display: 'features.4.block.2 (ECA, k=3)'. */
  layer: string;
  kind: StepKind;
  /** kernel, stride, padding, dilation, groups, activation, … */
  attributes: Record<string, unknown>;
  /** Parameter shapes by name. */
  params: Record<string, number[]>;
  input: Tensor;
  output: Tensor;
  /**
   * Multiply-accumulates: conv = output elements × C_in/groups × kh × kw, linear = N × in × out,
   * everything else 0 (BN and activations are a few operations per value, not MACs). A block
   * step (SE, ECA, MBConv, ConvBNAct) reports the total of its layers.
   */
  macs: number;
  /** Measured wall time in milliseconds (a native block: its layers and the glue between them). */
  ms: number;
  /** For SE/ECA (and an ONNX Mul by a per-channel gate): the per-channel attention weights of the first image. */
  attention?: number[];
  /** Plain words with this run's numbers. */
  explain(): string;
  /** The arithmetic of one output element; ValueError for kinds without one, naming the kind. */
  at(index: number[]): Arithmetic;
}

/** Options of `stepThrough` / `collectSteps`. */
export interface StepOptions {
  /**
   * Native modules: true gives leaf layers only; false (default) gives the leaves plus the blocks
   * (SE, ECA, inverted residual/MBConv, conv-BN-activation) as their own steps after their layers.
   * ONNX graphs are always node by node.
   */
  leaves?: boolean;
  /** Class names, for the words of a softmax or of the last linear layer. */
  classes?: readonly string[];
}

/**
 * Runs `model` once on `input` and yields every layer in execution order with its input, output,
 * MACs, time, a plain-words explanation and the arithmetic of any output element.
 *
 * Native modules run in eval mode without a tape (every module's mode is restored afterwards),
 * with a forward hook on every module; conv-BN-activation blocks then run as their three layers
 * rather than the folded fast path, so the final output equals `model.predict` within float32
 * round-off. ONNX graphs run unoptimised (BN and activations as their own nodes, as exported)
 * through `run(…, { onNode })`.
 *
 * @example
 * ```ts
 * import { Tensor, lightCnn, stepThrough } from 'lightconv';
 *
 * const net = lightCnn();
 * for await (const step of stepThrough(net, Tensor.randn([1, 3, 64, 64], { seed: 0 }))) {
 *   console.log(step.layer, step.output.shape, step.macs, step.explain());
 * }
 * ```
 */
export async function* stepThrough(model: Module | OnnxModel, input: Tensor, opts: StepOptions = {}): AsyncGenerator<Step> {
  const steps = model instanceof OnnxModel ? await onnxSteps(model, input, opts) : nativeSteps(model, input, opts);
  for (const s of steps) yield s;
}

/**
 * All steps at once (what stepThrough yields).
 *
 * @example
 * ```ts
 * import { Tensor, collectSteps, mobileNetV3 } from 'lightconv';
 *
 * const steps = await collectSteps(mobileNetV3('small'), Tensor.zeros([1, 3, 224, 224]), { leaves: true });
 * const first = steps[0]!;
 * console.log(first.at([0, 0, 0, 0]).text); // the arithmetic of one output element
 * ```
 */
export async function collectSteps(model: Module | OnnxModel, input: Tensor, opts: StepOptions = {}): Promise<Step[]> {
  const out: Step[] = [];
  for await (const s of stepThrough(model, input, opts)) out.push(s);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The step object

/** A step's data; LayerStep adds explain() and at(). */
type StepFields = Omit<Step, 'explain' | 'at'>;

class LayerStep implements Step {
  index!: number;
  name!: string;
  layer!: string;
  kind!: StepKind;
  attributes!: Record<string, unknown>;
  params!: Record<string, number[]>;
  input!: Tensor;
  output!: Tensor;
  macs!: number;
  ms!: number;
  attention?: number[];
  /** Every data input (two for an add or a multiply). */
  inputs: Tensor[];

  constructor(
    f: StepFields & { inputs?: Tensor[] },
    private readonly words: (s: LayerStep) => string,
    private readonly arithmetic: ((index: number[]) => Arithmetic) | null,
  ) {
    Object.assign(this, f);
    this.inputs = f.inputs ?? [f.input];
    if (f.attention === undefined) delete this.attention;
  }

  explain(): string {
    return this.words(this);
  }

  at(index: number[]): Arithmetic {
    if (!this.arithmetic) throw new ValueError(`${this.layer}: ${/^[aeiou]/.test(this.kind) ? 'an' : 'a'} ${this.kind} step has no arithmetic to show (at() covers convolutions, linear layers, pools, batch norm, activations, SE/ECA/residual blocks and elementwise ops)`);
    return this.arithmetic(index);
  }
}

// ---------------------------------------------------------------------------------------------
// Words shared by native modules and ONNX nodes

const times = '×';

function spatialWords(shape: Shape): string {
  if (shape.length === 4) return `${shape[1]} channel${shape[1] === 1 ? '' : 's'} of ${shape[2]}×${shape[3]}`;
  if (shape.length === 3) return `${shape[1]} channel${shape[1] === 1 ? '' : 's'} of length ${shape[2]}`;
  if (shape.length === 2) return `${shape[1]} values`;
  return fmtShape(shape);
}

function rangeWords(t: Tensor, what = 'outputs'): string {
  const r = rangeOf(t.dataSync());
  return `${what} ranged ${fmtRange(r.min, r.max)}`;
}

function xy(v: readonly number[]): string {
  return v.length === 2 && v[0] === v[1] ? String(v[0]) : v.join(times);
}

interface ConvAttrsWords {
  kernel: number[];
  stride: number[];
  dilation: number[];
  padding: number[];
  groups: number;
  in_channels: number;
  out_channels: number;
  bias: boolean;
}

function convWords(a: ConvAttrsWords, x: Tensor, y: Tensor): string {
  const k = a.kernel.join(times);
  const depthwise = a.groups > 1 && a.groups === a.in_channels;
  const flavour = depthwise ? 'depthwise ' : a.groups > 1 ? `grouped (${a.groups} groups of ${a.in_channels / a.groups} channels) ` : a.kernel.every((v) => v === 1) ? 'pointwise ' : '';
  const cin = a.in_channels / a.groups;
  const pads = a.padding.length ? a.padding.slice(0, a.kernel.length) : [0];
  const perOut = (a.in_channels / a.groups) * a.kernel.reduce((p, v) => p * v, 1);
  const what = depthwise
    ? `each output channel filters only its own input channel (${perOut} weights)`
    : `each output value sums ${perOut} products (${cin} input channel${cin === 1 ? '' : 's'} ${times} ${a.kernel.length === 1 ? `a window of ${k}` : `${k} window`})${a.bias ? ' plus a bias' : ''}`;
  const opening = a.kernel.length === 1 ? `a 1-D conv of kernel ${k}` : `a ${k} ${flavour}conv`;
  return (
    `${opening}, stride ${xy(a.stride)}, dilation ${xy(a.dilation)}, padding ${xy(pads)}, turned ${spatialWords(x.shape)} into ${spatialWords(y.shape).replace(' channels of', ' of').replace(' channel of', ' of')}; ` +
    `${what}; ${rangeWords(y)}.`
  );
}

const paren = (v: number) => (v < 0 ? `(${fmtNum(v)})` : fmtNum(v));

function bnWords(channels: number, stats: { mean: Tensor; variance: Tensor; gamma: Tensor; beta: Tensor; eps: number }, y: Tensor): string {
  const m = stats.mean.dataSync();
  const v = stats.variance.dataSync();
  const g = stats.gamma.dataSync();
  const b = stats.beta.dataSync();
  const scale = Array.from(g, (gi, i) => gi / Math.sqrt(v[i]! + stats.eps));
  const sr = rangeOf(scale);
  const c = argMax(scale.map(Math.abs));
  return (
    `batch norm over ${channels} channels with the running statistics learned in training — means ${fmtRange(rangeOf(m).min, rangeOf(m).max)}, variances ${fmtRange(rangeOf(v).min, rangeOf(v).max)} (ε = ${fmtNum(stats.eps)}): ` +
    `each channel became γ·(x − mean)/√(var + ε) + β, i.e. was scaled by ${fmtRange(sr.min, sr.max)} and shifted by ${fmtRange(rangeOf(b).min, rangeOf(b).max)}; ` +
    `channel ${c} was scaled most: (x − ${paren(m[c]!)}) / √(${fmtNum(v[c]!)} + ${fmtNum(stats.eps)}) × ${paren(g[c]!)} + ${paren(b[c]!)}, i.e. ×${fmtNum(scale[c]!)}; ${rangeWords(y)}.`
  );
}

function activationWords(a: Activation, x: Tensor, y: Tensor): string {
  const xd = x.dataSync();
  const n = xd.length;
  let below = 0;
  let above = 0;
  let neg = 0;
  for (let i = 0; i < n; i++) {
    const v = xd[i]!;
    if (v < 0) neg++;
    switch (a.kind) {
      case 'relu':
        if (v <= 0) below++;
        break;
      case 'clip':
        if (v < a.min) below++;
        else if (v > a.max) above++;
        break;
      case 'hard_swish':
        if (v <= -3) below++;
        else if (v >= 3) above++;
        break;
      case 'hard_sigmoid': {
        const t = a.alpha * v + a.beta;
        if (t <= 0) below++;
        else if (t >= 1) above++;
        break;
      }
    }
  }
  const name = activationName(a);
  const tail = `; ${rangeWords(y)}.`;
  switch (a.kind) {
    case 'relu':
      return `${name} zeroed ${below} of ${n} values (${fmtPercent(below, n)}: every negative one) and passed the rest unchanged${tail}`;
    case 'leaky_relu':
      return `${name} multiplied the ${neg} negative values of ${n} (${fmtPercent(neg, n)}) by ${fmtNum(a.alpha)} instead of zeroing them, and passed the rest unchanged${tail}`;
    case 'clip':
      return `${name} clipped ${below} of ${n} values (${fmtPercent(below, n)}) up to ${fmtNum(a.min)} and ${above} (${fmtPercent(above, n)}) down to ${fmtNum(a.max)}${tail}`;
    case 'hard_swish':
      return `${name} (x·min(max(x + 3, 0), 6)/6) zeroed ${below} of ${n} values (${fmtPercent(below, n)}, those ≤ −3), passed ${above} (${fmtPercent(above, n)}, those ≥ 3) unchanged and bent the rest smoothly (small negatives stay slightly negative)${tail}`;
    case 'hard_sigmoid':
      return `${name} (min(max(${fmtNum(a.alpha)}·x + ${fmtNum(a.beta)}, 0), 1)) clipped ${below} of ${n} values to 0 and ${above} to 1, mapping the rest linearly into 0…1${tail}`;
    case 'sigmoid':
      return `${name} (1/(1 + e^−x)) squashed ${n} values into 0…1 (${neg} were negative and became < 0.5)${tail}`;
    case 'silu':
      return `${name} (x·sigmoid(x)) kept large positives, pulled the ${neg} negative values of ${n} (${fmtPercent(neg, n)}) towards 0${tail}`;
    case 'tanh':
      return `${name} squashed ${n} values into −1…1${tail}`;
    case 'none':
      return `identity: the values pass unchanged${tail}`;
  }
}

function gateWords(gate: number[]): string {
  const r = rangeOf(gate);
  const hi = argMax(gate);
  const lo = argMin(gate);
  return `channel weights ${fmtRange(r.min, r.max)}; channel ${hi} was scaled by ${fmtNum(gate[hi]!)}, channel ${lo} damped most (${fmtNum(gate[lo]!)})`;
}

function softmaxWords(p: ArrayLike<number>, classes: readonly string[] | undefined, k = 3): string {
  const idx = Array.from({ length: p.length }, (_, i) => i).sort((a, b) => p[b]! - p[a]!);
  return idx
    .slice(0, Math.min(k, p.length))
    .map((i) => `${classes?.[i] !== undefined ? `'${classes[i]}'` : `class ${i}`} ${fmtNum(p[i]!, 3)}`)
    .join(', ');
}

function probabilities(row: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(row));
  const e = Array.from(row, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function linearWords(inF: number, outF: number, bias: boolean, y: Tensor, last: boolean, classes?: readonly string[]): string {
  let s = `a fully connected layer: each of the ${outF} outputs is a weighted sum of all ${inF} inputs${bias ? ' plus a bias' : ''} (${inF * outF} weights); ${rangeWords(y)}`;
  if (last && y.rank === 2) {
    const p = probabilities(Array.from(y.dataSync().subarray(0, y.shape[1]!)));
    s += `. These are the scores (logits) of the ${outF} classes; as probabilities (softmax) the top classes of the first image are ${softmaxWords(p, classes)}`;
  }
  return `${s}.`;
}

function poolWords(kind: 'max' | 'avg', kernel: number[], stride: number[], pads: number[], x: Tensor, y: Tensor): string {
  const padded = pads.some((p) => p > 0) ? `, padding ${xy(pads.slice(0, kernel.length))}` : '';
  const what = kind === 'max' ? 'kept the largest value of each' : 'averaged each';
  return `a ${kernel.join(times)} ${kind} pool, stride ${xy(stride)}${padded}, ${what} ${kernel.join(times)} window of every channel: ${spatialWords(x.shape)} became ${spatialWords(y.shape).replace(/^\d+ channels? of /, '')}; no weights; ${rangeWords(y)}.`;
}

function globalPoolWords(x: Tensor, y: Tensor): string {
  return `averaged each of the ${x.shape[1]} channels' ${x.shape.slice(2).join(times)} map to a single number (the channel's mean activation); ${rangeWords(y, 'the means')}.`;
}

function binaryWords(op: string, a: Tensor, b: Tensor, y: Tensor, gate?: number[]): string {
  if (gate) return `multiplied every value of ${spatialWords(a.shape.length >= b.shape.length && sizeOf(a.shape) >= sizeOf(b.shape) ? a.shape : b.shape)} by its channel's attention weight: ${gateWords(gate)}; ${rangeWords(y)}.`;
  const word = { Add: 'added', Sub: 'subtracted', Mul: 'multiplied', Div: 'divided' }[op] ?? op;
  const same = a.shape.join() === b.shape.join();
  return `${word} two tensors elementwise (${fmtShape(a.shape)} and ${fmtShape(b.shape)}${same ? '' : ', broadcast'})${op === 'Add' && same && a.rank === 4 ? ' — a residual connection: the block\'s input is added back to what the block computed' : ''}; ${rangeWords(y)}.`;
}

// ---------------------------------------------------------------------------------------------
// Native modules

interface Event {
  module: Module;
  name: string;
  input: Tensor;
  output: Tensor;
  t: number;
}

function isBlock(m: Module): boolean {
  return m instanceof ConvBNAct || m instanceof SqueezeExcite || m instanceof ECA || m instanceof InvertedResidual;
}

function nativeSteps(model: Module, input: Tensor, opts: StepOptions): LayerStep[] {
  const named = model.namedModules();
  const names = new Map(named.map(([n, m]) => [m, n]));
  const events: Event[] = [];
  const modes = named.map(([, m]) => [m, m.training] as const);
  const offs = named.map(([, m]) => m.onForward((mod, x, y) => void events.push({ module: mod, name: names.get(mod) ?? '', input: x, output: y, t: performance.now() })));
  let t0 = 0;
  try {
    model.eval();
    t0 = performance.now();
    noGrad(() => model.forward(input));
  } finally {
    for (const off of offs) off();
    for (const [m, t] of modes) m.training = t;
  }
  const leavesOnly = opts.leaves ?? false;
  const descendants = new Map<Module, Set<Module>>();
  const within = (block: Module) => {
    let s = descendants.get(block);
    if (!s) descendants.set(block, (s = new Set(block.namedModules().map(([, m]) => m))));
    return s;
  };
  const isLeaf = (m: Module) => m.children().length === 0;
  const steps: LayerStep[] = [];
  const seen = new Map<string, number>();
  events.forEach((ev, i) => {
    const leaf = isLeaf(ev.module);
    if (!leaf && (leavesOnly || !isBlock(ev.module))) return;
    // Post-order: a block's layers ran just before its own hook; its time starts where the
    // event before its first layer ended.
    let j = i;
    const mine = within(ev.module);
    while (j > 0 && mine.has(events[j - 1]!.module) && events[j - 1]!.module !== ev.module) j--;
    const start = j === 0 ? t0 : events[j - 1]!.t;
    const inner = events.slice(j, i);
    const macs = leaf ? ev.module.macs(ev.input.shape) : inner.filter((e) => isLeaf(e.module)).reduce((a, e) => a + e.module.macs(e.input.shape), 0);
    const calls = (seen.get(ev.name) ?? 0) + 1;
    seen.set(ev.name, calls);
    const last = i === events.length - 1 || events.slice(i + 1).every((e) => !isLeaf(e.module));
    steps.push(nativeStep(ev, inner, { index: steps.length, ms: ev.t - start, macs, call: calls, last, classes: opts.classes }));
  });
  return steps;
}

function paramShapes(m: Module): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const p of m.parameterShapes()) out[p.name] = [...p.shape];
  return out;
}

function typeName(m: Module): string {
  return m.describe().replace(/\(.*$/, '');
}

function convAttributes(c: Conv2d | Conv1d): ConvAttrsWords & Record<string, unknown> {
  if (c instanceof Conv2d) {
    return { in_channels: c.inChannels, out_channels: c.outChannels, kernel: [c.kernelSize, c.kernelSize], stride: [c.stride, c.stride], padding: [c.padding, c.padding], dilation: [c.dilation, c.dilation], groups: c.groups, bias: c.hasBias };
  }
  return { in_channels: c.inChannels, out_channels: c.outChannels, kernel: [c.kernelSize], stride: [1], padding: [c.padding], dilation: [1], groups: 1, bias: c.hasBias };
}

function convDisplay(a: ConvAttrsWords): string {
  const dw = a.groups > 1 && a.groups === a.in_channels;
  const bits = [`${a.in_channels}→${a.out_channels}`, a.kernel.join(times), ...(a.stride.some((s) => s !== 1) ? [`stride ${xy(a.stride)}`] : []), ...(a.dilation.some((d) => d !== 1) ? [`dilation ${xy(a.dilation)}`] : []), ...(dw ? ['depthwise'] : a.groups > 1 ? [`groups ${a.groups}`] : [])];
  return bits.join(', ');
}

function bnStats(bn: BatchNorm2d) {
  return { mean: bn.runningMean, variance: bn.runningVar, gamma: bn.weight, beta: bn.bias, eps: bn.eps };
}

function at4(t: Tensor, index: number[]): number {
  return t.dataSync()[flatOf(t.shape, index)]!;
}

function nativeStep(ev: Event, inner: Event[], ctx: { index: number; ms: number; macs: number; call: number; last: boolean; classes?: readonly string[] }): LayerStep {
  const m = ev.module;
  const x = ev.input;
  const y = ev.output;
  const name = ev.name;
  const label = (type: string, attrs?: string) => `${name || type}${name ? ` (${type}${attrs ? `, ${attrs}` : ''})` : attrs ? ` (${attrs})` : ''}${ctx.call > 1 ? ` [call ${ctx.call}]` : ''}`;
  const base = { index: ctx.index, name, input: x, output: y, macs: ctx.macs, ms: ctx.ms, params: paramShapes(m) };
  const child = (c: Module) => inner.filter((e) => e.module === c).pop();
  const show = name || typeName(m);

  if (m instanceof Conv2d || m instanceof Conv1d) {
    const a = convAttributes(m);
    const kind: StepKind = a.groups > 1 && a.groups === a.in_channels ? 'depthwise_conv' : 'conv';
    return new LayerStep(
      { ...base, layer: label(m instanceof Conv2d ? 'Conv2d' : 'Conv1d', convDisplay(a)), kind, attributes: a },
      () => convWords(a, x, y),
      (index) => convArithmetic(show, x, { weight: m.weight, bias: m.bias, strides: a.stride, pads: [...a.padding, ...a.padding], dilations: a.dilation, group: a.groups }, y, index),
    );
  }
  if (m instanceof BatchNorm2d) {
    return new LayerStep(
      { ...base, layer: label('BatchNorm2d', `${m.numFeatures} channels`), kind: 'batchnorm', attributes: { num_features: m.numFeatures, eps: m.eps, momentum: m.momentum } },
      () => bnWords(m.numFeatures, bnStats(m), y),
      (index) => batchNormArithmetic(show, x, bnStats(m), y, index),
    );
  }
  if (m instanceof Act) {
    const spec = m.spec;
    return new LayerStep(
      { ...base, layer: label(m.describe()), kind: 'activation', attributes: { activation: activationName(spec), ...spec } },
      () => activationWords(spec, x, y),
      (index) => activationArithmetic(show, spec, x, y, index),
    );
  }
  if (m instanceof Linear) {
    return new LayerStep(
      { ...base, layer: label('Linear', `${m.inFeatures}→${m.outFeatures}`), kind: 'linear', attributes: { in_features: m.inFeatures, out_features: m.outFeatures, bias: m.hasBias } },
      () => linearWords(m.inFeatures, m.outFeatures, m.hasBias, y, ctx.last, ctx.classes),
      (index) => linearArithmetic(show, x, m.weight, m.bias, y, index),
    );
  }
  if (m instanceof MaxPool2d) {
    const k = [m.kernelSize, m.kernelSize];
    const s = [m.stride, m.stride];
    const p = [m.padding, m.padding, m.padding, m.padding];
    return new LayerStep(
      { ...base, layer: label('MaxPool2d', `${k.join(times)}, stride ${m.stride}`), kind: 'pool', attributes: { op: 'max', kernel: k, stride: s, padding: p, ceil_mode: m.ceilMode } },
      () => poolWords('max', k, s, p, x, y),
      (index) => poolArithmetic(show, x, { kind: 'max', kernel: k, strides: s, pads: p }, y, index),
    );
  }
  if (m instanceof AdaptiveAvgPool2d) {
    return new LayerStep({ ...base, layer: label('AdaptiveAvgPool2d', 'global average'), kind: 'global_pool', attributes: { op: 'avg', output_size: 1 } }, () => globalPoolWords(x, y), (index) => globalPoolArithmetic(show, x, y, index));
  }
  if (m instanceof Flatten) {
    return new LayerStep({ ...base, layer: label('Flatten'), kind: 'flatten', attributes: { start_dim: 1 } }, () => `flattened ${fmtShape(x.shape)} to ${fmtShape(y.shape)}: the same numbers in one row per image, no arithmetic.`, (index) => copyArithmetic(show, 'flatten', x, y, index));
  }
  if (m instanceof Dropout || m instanceof StochasticDepth) {
    const p = m.p;
    const what = m instanceof Dropout ? `dropout (p = ${fmtNum(p)})` : `stochastic depth (p = ${fmtNum(p)}, ${m.mode})`;
    return new LayerStep(
      { ...base, layer: label(typeName(m), `p=${fmtNum(p)}`), kind: 'dropout', attributes: { p, ...(m instanceof StochasticDepth ? { mode: m.mode } : {}) } },
      () => `${what} is off at inference: the values passed unchanged (in training it ${m instanceof Dropout ? `zeroes each value with probability ${fmtNum(p)} and scales the rest by 1/(1 − p)` : `drops the whole residual branch of an image with probability ${fmtNum(p)}`}).`,
      (index) => copyArithmetic(show, `${what}, off at inference`, x, y, index),
    );
  }
  if (m instanceof Identity) {
    return new LayerStep({ ...base, layer: label('Identity'), kind: 'other', attributes: {} }, () => 'identity: the values pass unchanged.', (index) => copyArithmetic(show, 'identity', x, y, index));
  }
  if (m instanceof ConvBNAct) {
    const conv = m.conv;
    const bn = m.bn;
    const act = m.children()[2]?.[1];
    const spec = act instanceof Act ? act.spec : undefined;
    const a = convAttributes(conv);
    const convEv = child(conv);
    const bnEv = child(bn);
    const actEv = act ? child(act) : undefined;
    return new LayerStep(
      { ...base, layer: label('ConvBNAct', `${convDisplay(a)}${spec ? `, ${activationName(spec)}` : ''}`), kind: 'conv_bn_act', attributes: { ...a, activation: spec ? activationName(spec) : null } },
      () => {
        const parts = [`conv → batch norm${spec ? ` → ${activationName(spec)}` : ''}. The conv: ${convWords(a, x, convEv?.output ?? y)}`];
        if (bnEv) parts.push(`Then ${bnWords(bn.numFeatures, bnStats(bn), bnEv.output)}`);
        if (spec && actEv) parts.push(`Then ${activationWords(spec, actEv.input, actEv.output)}`);
        else parts.push('No activation (a linear projection).');
        return parts.join(' ');
      },
      (index) => {
        if (!convEv || !bnEv) throw new ValueError(`${show}: its layers did not run`);
        const c = index[1]!;
        const post: PostStage[] = [];
        const s = bnStats(bn);
        post.push(bnStage('batch norm', { mean: s.mean.dataSync()[c]!, variance: s.variance.dataSync()[c]!, eps: s.eps, gamma: s.gamma.dataSync()[c]!, beta: s.beta.dataSync()[c]! }, at4(bnEv.output, safe(index, bnEv.output))));
        if (spec && actEv) post.push(activationStage(spec, at4(actEv.output, safe(index, actEv.output))));
        return convArithmetic(show, x, { weight: conv.weight, bias: conv.bias, strides: a.stride, pads: [...a.padding, ...a.padding], dilations: a.dilation, group: a.groups }, convEv.output, index, post, undefined);
      },
    );
  }
  if (m instanceof SqueezeExcite) {
    const gateT = child(m.get('scale_activation'))?.output;
    const gate = gateT ? Array.from(gateT.dataSync().subarray(0, m.channels)) : undefined;
    return new LayerStep(
      { ...base, layer: label('SE', `${m.channels}→${m.squeeze}→${m.channels}`), kind: 'se', attributes: { channels: m.channels, squeeze: m.squeeze, activation: (m.get('activation') as Act).describe(), gate: (m.get('scale_activation') as Act).describe() }, ...(gate ? { attention: gate } : {}) },
      () =>
        `squeeze-and-excitation averaged each of the ${m.channels} channels to one number, then squeezed ${m.channels} channels to ${m.squeeze} and back (1×1 convs, ${(m.get('activation') as Act).describe()} between them, ${(m.get('scale_activation') as Act).describe()} at the end); ` +
        `${gate ? gateWords(gate) : 'no gate recorded'}; every value of a channel was multiplied by its weight; ${rangeWords(y)}.`,
      (index) => {
        if (!gateT) throw new ValueError(`${show}: its gate did not run`);
        return binaryArithmetic(show, 'Mul', x, gateT, y, index, ['input', 'gate']);
      },
    );
  }
  if (m instanceof ECA) {
    const convOut = child(m.conv)?.output;
    const gateT = convOut ? noGrad(() => sigmoid(reshape(convOut, [x.shape[0]!, x.shape[1]!, 1, 1]))) : undefined;
    const gate = gateT ? Array.from(gateT.dataSync().subarray(0, m.channels)) : undefined;
    return new LayerStep(
      { ...base, layer: label('ECA', `k=${m.kernelSize}`), kind: 'eca', attributes: { channels: m.channels, k: m.kernelSize }, params: paramShapes(m), ...(gate ? { attention: gate } : {}) },
      () =>
        `ECA pooled ${m.channels} channels to ${m.channels} means, a 1-D conv (k=${m.kernelSize}, ${m.kernelSize} weights shared by all channels: each channel looks at its ${m.kernelSize - 1} neighbours) and a sigmoid gave ` +
        `${gate ? gateWords(gate).replace('channel weights ', 'weights ') : 'no weights'}; every value of a channel was multiplied by its weight; ${rangeWords(y)}.`,
      (index) => {
        if (!gateT) throw new ValueError(`${show}: its gate did not run`);
        return binaryArithmetic(show, 'Mul', x, gateT, y, index, ['input', 'gate']);
      },
    );
  }
  if (m instanceof InvertedResidual) {
    const c = m.cfg;
    const branch = child(m.block)?.output;
    const sd = m.stochasticDepth;
    const attrs = { in_channels: c.inChannels, expanded: c.expanded, out_channels: c.outChannels, kernel: c.kernel, stride: c.stride, dilation: c.dilation, activation: c.activation, attention: c.attention, residual: m.useResidual, ...(sd ? { stochastic_depth: sd.p } : {}) };
    return new LayerStep(
      { ...base, layer: label('MBConv', `${c.inChannels}→${c.expanded}→${c.outChannels}, ${c.kernel}×${c.kernel}${c.stride > 1 ? `, stride ${c.stride}` : ''}${c.dilation > 1 ? `, dilation ${c.dilation}` : ''}${c.attention !== 'none' ? `, ${c.attention.toUpperCase()}` : ''}${m.useResidual ? ', residual' : ''}`), kind: 'mbconv', attributes: attrs },
      () => {
        const parts = [
          `an inverted residual (MBConv) block: ${c.expanded !== c.inChannels ? `expanded ${c.inChannels} → ${c.expanded} channels (1×1 conv, BN, ${c.activation}), ` : ''}` +
            `a ${c.kernel}×${c.kernel} depthwise conv${c.stride > 1 && c.dilation === 1 ? ` at stride ${c.stride}` : ''}${c.dilation > 1 ? ` with dilation ${c.dilation}` : ''} (BN, ${c.activation})` +
            `${c.attention === 'se' ? ', squeeze-and-excitation' : c.attention === 'eca' ? ', ECA channel attention' : ''}, then projected ${c.expanded} → ${c.outChannels} (1×1 conv, BN, no activation: a linear bottleneck); ` +
            `${spatialWords(x.shape)} became ${spatialWords(y.shape)}.`,
        ];
        if (m.useResidual && branch) {
          const xd = x.dataSync();
          const bd = branch.dataSync();
          let sx = 0;
          let sb = 0;
          for (let i = 0; i < xd.length; i++) {
            sx += Math.abs(xd[i]!);
            sb += Math.abs(bd[i]!);
          }
          parts.push(`The input was added back (residual): mean |input| ${fmtNum(sx / xd.length, 3)}, mean |block's change| ${fmtNum(sb / bd.length, 3)}.`);
        } else parts.push(`No residual (${c.stride > 1 ? 'the stride changes the size' : c.inChannels !== c.outChannels ? 'the channel count changes' : 'this block has none'}).`);
        if (sd) parts.push(`Stochastic depth (p = ${fmtNum(sd.p)}) is off at inference; in training it drops the block's branch for an image with probability ${fmtNum(sd.p)}.`);
        parts.push(`${rangeWords(y)[0]!.toUpperCase()}${rangeWords(y).slice(1)}.`);
        return parts.join(' ');
      },
      (index) => {
        if (!branch) throw new ValueError(`${show}: its layers did not run`);
        if (!m.useResidual) return copyArithmetic(show, 'no residual: the block output is its projection (1×1 conv + BN)', branch, y, index, 'the projection\'s output');
        return binaryArithmetic(show, 'Add', branch, x, y, index, ['branch', 'input']);
      },
    );
  }
  return new LayerStep({ ...base, layer: label(typeName(m)), kind: 'other', attributes: {} }, () => `${m.describe()}: ${fmtShape(x.shape)} → ${fmtShape(y.shape)}; ${rangeWords(y)}.`, null);
}

/** The index when it fits `t` (the block's output has the conv's shape), else an error from checkIndex later. */
function safe(index: number[], t: Tensor): number[] {
  return index.length === t.rank && index.every((k, i) => Number.isInteger(k) && k >= 0 && k < t.shape[i]!) ? index : t.shape.map(() => 0);
}

// ---------------------------------------------------------------------------------------------
// ONNX graphs

/** The graph run without optimisation, so BN and activations are their own steps (one per model). */
const plainModels = new WeakMap<OnnxModel, OnnxModel>();

/**
 * The module path in an exporter's node name: torch's '/features/features.4/block/block.2/fc1/Conv'
 * and lightconv's '/features/4/block/2/Conv_37' both give 'features.4.block.2(.fc1)'; '' when the
 * name has no path.
 *
 * @example
 * ```ts
 * import { onnxScope } from 'lightconv';
 *
 * onnxScope('/features/features.4/block/block.2/fc1/Conv'); // 'features.4.block.2.fc1'
 * ```
 */
export function onnxScope(nodeName: string): string {
  if (!nodeName.startsWith('/')) return '';
  const parts = nodeName.split('/').filter(Boolean);
  parts.pop();
  const path: string[] = [];
  for (const p of parts) {
    const segs = p.split('.');
    let matched = false;
    // torch repeats the parent's name: 'features' then 'features.4'.
    for (let k = Math.min(path.length, segs.length - 1); k >= 1; k--) {
      if (path.slice(path.length - k).join('.') === segs.slice(0, k).join('.')) {
        path.push(...segs.slice(k));
        matched = true;
        break;
      }
    }
    if (!matched) path.push(...segs);
  }
  return path.join('.');
}

function onnxActivation(node: OnnxNode, args: (Tensor | undefined)[]): Activation | null {
  switch (node.opType) {
    case 'Relu':
      return { kind: 'relu' };
    case 'LeakyRelu':
      return { kind: 'leaky_relu', alpha: node.float('alpha', 0.01) };
    case 'Sigmoid':
      return { kind: 'sigmoid' };
    case 'HardSigmoid':
      return { kind: 'hard_sigmoid', alpha: node.float('alpha', 0.2), beta: node.float('beta', 0.5) };
    case 'HardSwish':
      return { kind: 'hard_swish' };
    case 'Tanh':
      return { kind: 'tanh' };
    case 'Clip': {
      const lo = args[1] ? args[1].dataSync()[0]! : node.float('min', -3.4028234663852886e38);
      const hi = args[2] ? args[2].dataSync()[0]! : node.float('max', 3.4028234663852886e38);
      return { kind: 'clip', min: lo, max: hi };
    }
  }
  return null;
}

const COPY_OPS = new Set(['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);

async function onnxSteps(model: OnnxModel, input: Tensor, opts: StepOptions): Promise<LayerStep[]> {
  let plain = plainModels.get(model);
  if (!plain) plainModels.set(model, (plain = new OnnxModel(model.graph, { optimize: false, replay: false })));
  const values = new Map<string, Tensor>(plain.graph.initializers);
  const first = plain.inputs[0];
  if (first) values.set(first.name, input);
  const ms = new Map<OnnxNode, number>();
  const runs: { node: OnnxNode; args: (Tensor | undefined)[]; outs: readonly Tensor[] }[] = [];
  // Values computed from the image. Nodes on constants alone (exporters' Identity copies of shared
  // weights, Constant nodes) prepare parameters, not layers: they are not steps.
  const live = new Set(plain.inputs.map((i) => i.name));
  await plain.run(input, {
    onNodeTime: (node, t) => void ms.set(node, t),
    onNode: (node, outs) => {
      const args = node.inputs.map((v) => (v ? values.get(v) : undefined));
      node.outputs.forEach((v, i) => v && outs[i] && values.set(v, outs[i]!));
      if (!node.inputs.some((v) => v && live.has(v))) return;
      for (const v of node.outputs) if (v) live.add(v);
      runs.push({ node, args, outs });
    },
  });
  // The head: the last linear layer (or softmax) when only reshapes follow it.
  let head = -1;
  runs.forEach((r, i) => {
    if (['Gemm', 'MatMul', 'Softmax'].includes(r.node.opType)) head = i;
  });
  if (!runs.slice(head + 1).every((q) => COPY_OPS.has(q.node.opType))) head = -1;
  return runs.map((r, i) => onnxStep(r.node, r.args, r.outs, { index: i, ms: ms.get(r.node) ?? 0, last: i === head, classes: opts.classes }));
}

function onnxStep(node: OnnxNode, args: (Tensor | undefined)[], outs: readonly Tensor[], ctx: { index: number; ms: number; last: boolean; classes?: readonly string[] }): LayerStep {
  const x = args[0] ?? outs[0]!;
  const y = outs[0]!;
  const name = node.name || `${node.opType}_${ctx.index}`;
  const scope = onnxScope(node.name);
  const show = scope || name;
  const label = (attrs?: string) => `${show} (${node.opType}${attrs ? `, ${attrs}` : ''})`;
  const params: Record<string, number[]> = {};
  const base = { index: ctx.index, name, input: x, output: y, ms: ctx.ms, macs: 0, params, inputs: args.filter((t): t is Tensor => !!t) };
  const attrs: Record<string, unknown> = { op_type: node.opType, ...(scope ? { scope } : {}), output_name: node.outputs[0] };
  const op = node.opType;

  if (op === 'Conv' && args[1]) {
    const w = args[1];
    const b = args[2];
    params.weight = [...w.shape];
    if (b) params.bias = [...b.shape];
    const rank = w.rank - 2;
    const ones = new Array<number>(rank).fill(1);
    const kernel = w.shape.slice(2);
    const strides = node.ints('strides', ones);
    const dilations = node.ints('dilations', ones);
    const pads = resolveAutoPad(node.string('auto_pad', 'NOTSET') as AutoPad, x.shape.slice(2), kernel, strides, dilations, node.ints('pads', new Array<number>(2 * rank).fill(0)));
    const group = node.int('group', 1);
    const a: ConvAttrsWords = { in_channels: x.shape[1]!, out_channels: w.shape[0]!, kernel: [...kernel], stride: strides, padding: pads, dilation: dilations, groups: group, bias: !!b };
    const kind: StepKind = group > 1 && group === x.shape[1] ? 'depthwise_conv' : 'conv';
    const macs = convCard.macs!([x.shape, w.shape], { strides, pads, dilations, group, activation: { kind: 'none' } });
    return new LayerStep(
      { ...base, macs, layer: label(convDisplay(a)), kind, attributes: { ...attrs, ...a } },
      () => convWords(a, x, y),
      (index) => convArithmetic(show, x, { weight: w, bias: b ?? null, strides, pads, dilations, group }, y, index),
    );
  }
  if (op === 'BatchNormalization' && args[4]) {
    const stats = { gamma: args[1]!, beta: args[2]!, mean: args[3]!, variance: args[4], eps: node.float('epsilon', 1e-5) };
    for (const [k, i] of [['scale', 1], ['B', 2], ['mean', 3], ['var', 4]] as const) params[k] = [...args[i]!.shape];
    return new LayerStep(
      { ...base, layer: label(`${x.shape[1]} channels`), kind: 'batchnorm', attributes: { ...attrs, num_features: x.shape[1], eps: stats.eps } },
      () => bnWords(x.shape[1]!, stats, y),
      (index) => batchNormArithmetic(show, x, stats, y, index),
    );
  }
  const act = onnxActivation(node, args);
  if (act) {
    return new LayerStep({ ...base, layer: label(), kind: 'activation', attributes: { ...attrs, activation: activationName(act), ...act } }, () => activationWords(act, x, y), (index) => activationArithmetic(show, act, x, y, index));
  }
  if (op === 'MaxPool' || op === 'AveragePool') {
    const kernel = node.ints('kernel_shape');
    const rank = kernel.length;
    const ones = new Array<number>(rank).fill(1);
    const strides = node.ints('strides', ones);
    const dilations = node.ints('dilations', ones);
    const pads = resolveAutoPad(node.string('auto_pad', 'NOTSET') as AutoPad, x.shape.slice(2), kernel, strides, dilations, node.ints('pads', new Array<number>(2 * rank).fill(0)));
    const kind = op === 'MaxPool' ? 'max' : 'avg';
    const countIncludePad = node.int('count_include_pad', 0) === 1;
    return new LayerStep(
      { ...base, layer: label(`${kernel.join(times)}, stride ${xy(strides)}`), kind: 'pool', attributes: { ...attrs, op: kind, kernel, stride: strides, padding: pads, dilation: dilations, ceil_mode: node.int('ceil_mode', 0) === 1, count_include_pad: countIncludePad } },
      () => poolWords(kind, kernel, strides, pads, x, y),
      (index) => poolArithmetic(show, x, { kind, kernel, strides, pads, dilations, countIncludePad }, y, index),
    );
  }
  if (op === 'GlobalAveragePool') {
    return new LayerStep({ ...base, layer: label(), kind: 'global_pool', attributes: { ...attrs, op: 'avg' } }, () => globalPoolWords(x, y), (index) => globalPoolArithmetic(show, x, y, index));
  }
  if (op === 'GlobalMaxPool') {
    const kernel = x.shape.slice(2);
    return new LayerStep(
      { ...base, layer: label(), kind: 'global_pool', attributes: { ...attrs, op: 'max' } },
      () => `kept the largest value of each of the ${x.shape[1]} channels' ${kernel.join(times)} map; ${rangeWords(y)}.`,
      (index) => poolArithmetic(show, x, { kind: 'max', kernel, strides: kernel.map(() => 1), pads: [...kernel, ...kernel].map(() => 0) }, y, index),
    );
  }
  if ((op === 'Gemm' || (op === 'MatMul' && x.rank === 2)) && args[1] && args[1].rank === 2) {
    const w = args[1];
    const transB = op === 'Gemm' && node.int('transB', 0) === 1;
    const transA = op === 'Gemm' && node.int('transA', 0) === 1;
    const alpha = op === 'Gemm' ? node.float('alpha', 1) : 1;
    const beta = op === 'Gemm' ? node.float('beta', 1) : 1;
    const b = op === 'Gemm' ? args[2] : undefined;
    params.weight = [...w.shape];
    if (b) params.bias = [...b.shape];
    const inF = transB ? w.shape[1]! : w.shape[0]!;
    const outF = transB ? w.shape[0]! : w.shape[1]!;
    return new LayerStep(
      { ...base, macs: x.shape[0]! * inF * outF, layer: label(`${inF}→${outF}`), kind: 'linear', attributes: { ...attrs, in_features: inF, out_features: outF, bias: !!b, transB, alpha, beta } },
      () => linearWords(inF, outF, !!b, y, ctx.last, ctx.classes),
      transA ? null : (index) => linearArithmetic(show, x, w, b, y, index, { transposed: transB, alpha, beta }),
    );
  }
  if (op === 'Softmax') {
    const axisDefault = node.opset >= 13 ? -1 : 1;
    const axisRaw = node.int('axis', axisDefault);
    const axis = axisRaw < 0 ? axisRaw + x.rank : axisRaw;
    const exact = node.opset >= 13 || axis === x.rank - 1;
    return new LayerStep(
      { ...base, layer: label(), kind: 'softmax', attributes: { ...attrs, axis } },
      () => {
        // The first distribution along the axis: for [N, K] the first image's row, else strided.
        const stride = sizeOf(x.shape.slice(axis + 1));
        const d = y.dataSync();
        const first = Array.from({ length: x.shape[axis]! }, (_, i) => d[i * stride]!);
        return x.rank === 2 && axis === 1
          ? `softmax turned the ${x.shape[axis]} scores of each image into probabilities that sum to 1; the top classes of the first image are ${softmaxWords(first, ctx.classes)}.`
          : `softmax turned each run of ${x.shape[axis]} values along axis ${axis} of ${fmtShape(x.shape)} into probabilities that sum to 1; the largest of the first run (from index ${fmtShape(x.shape.map(() => 0))} along axis ${axis}) are ${softmaxWords(first, undefined)}.`;
      },
      exact ? (index) => softmaxArithmetic(show, x, y, axis, index, ctx.classes) : null,
    );
  }
  if ((op === 'Add' || op === 'Sub' || op === 'Mul' || op === 'Div') && args[1]) {
    const a = args[0]!;
    const b = args[1];
    // A Mul by one value per channel ([N, C, 1, 1]) is SE/ECA's gate.
    const isGate = (g: Tensor, v: Tensor) => g.rank === 4 && v.rank === 4 && g.shape[1] === v.shape[1] && g.shape[2] === 1 && g.shape[3] === 1 && sizeOf(v.shape.slice(2)) > 1;
    const gateT = op === 'Mul' ? (isGate(b, a) ? b : isGate(a, b) ? a : undefined) : undefined;
    const data = gateT === a ? b : a;
    const gate = gateT ? Array.from(gateT.dataSync().subarray(0, gateT.shape[1]!)) : undefined;
    return new LayerStep(
      { ...base, input: data, layer: label(gateT ? 'channel attention' : undefined), kind: op === 'Add' || op === 'Sub' ? 'add' : 'mul', attributes: { ...attrs }, ...(gate ? { attention: gate } : {}) },
      () => binaryWords(op, data, gateT ?? b, y, gate),
      (index) => (gateT ? binaryArithmetic(show, 'Mul', data, gateT, y, index, ['input', 'gate']) : binaryArithmetic(show, op as BinaryKind, a, b, y, index)),
    );
  }
  if (COPY_OPS.has(op)) {
    const kind: StepKind = op === 'Flatten' ? 'flatten' : op === 'Dropout' ? 'dropout' : 'other';
    return new LayerStep(
      { ...base, layer: label(), kind, attributes: { ...attrs } },
      () => (op === 'Dropout' ? 'dropout is off at inference: the values passed unchanged.' : `${op.toLowerCase()}: ${fmtShape(x.shape)} → ${fmtShape(y.shape)}, the same numbers rearranged, no arithmetic.`),
      (index) => copyArithmetic(show, op.toLowerCase(), x, y, index),
    );
  }
  return new LayerStep({ ...base, layer: label(), kind: 'other', attributes: { ...attrs } }, () => `${op}: ${args.filter(Boolean).map((t) => fmtShape(t!.shape)).join(', ')} → ${fmtShape(y.shape)}; ${rangeWords(y)}.`, null);
}
