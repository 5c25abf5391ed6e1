import { LightconvError, ShapeError } from '../../core/errors.js';
import { fmtShape } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';
import { transpose } from '../../kernels/movement.js';
import type { AttentionKind, InvertedResidualConfig } from '../../layers/blocks.js';
import { makeDivisible } from '../../layers/blocks.js';
import { type ActivationName, BatchNorm2d, Conv1d, Conv2d, Linear, Sequential } from '../../layers/layers.js';
import type { Module } from '../../layers/module.js';
import { EFFICIENTNET_VARIANTS, type EfficientNetVariant, type MBConvRow, buildEfficientNet, efficientNetStages } from '../../models/efficientnet.js';
import { lightCnn } from '../../models/light_cnn.js';
import { buildMobileNetV3, mobileNetV3Configs } from '../../models/mobilenetv3.js';
import type { Classifier } from '../../models/network.js';
import { ResNet } from '../../models/resnet.js';
import { type ModelSource, readOnnx } from './model.js';
import type { OnnxGraph } from './graph.js';
import type { OnnxNode } from './node.js';

/**
 * The ONNX graph is not an architecture the assembler knows, or does not fit the native model.
 *
 * @example
 * ```ts
 * import { AssembleError, assemble } from 'lightconv';
 *
 * const net = await assemble('unknown-arch.onnx').catch((e) => {
 *   if (e instanceof AssembleError) return null; // not a supported family
 *   throw e;
 * });
 * ```
 */
export class AssembleError extends LightconvError {}

/** What `assemble` found in the graph. */
export interface AssembleReport {
  family: 'mobilenet_v3' | 'efficientnet' | 'light_cnn' | 'resnet';
  /** BatchNormalization nodes in the graph (0: folded into the convs by the exporter). */
  bnNodes: number;
  /** Conv and Gemm nodes matched to native layers, in order. */
  matched: { native: string; onnx: string; shape: number[] }[];
}

/** A Conv node with what surrounds it: its BN (when kept), its activation. */
interface ConvInfo {
  node: OnnxNode;
  weight: Tensor;
  bias: Tensor | undefined;
  group: number;
  kernel: number;
  stride: number;
  dilation: number;
  pad: number;
  bn: { scale: Tensor; bias: Tensor; mean: Tensor; variance: Tensor; eps: number; node: OnnxNode } | undefined;
  act: { kind: ActivationName | 'none'; slope?: number };
  /** Its input comes from a GlobalAveragePool (an SE squeeze conv). */
  afterPool: boolean;
  /** 1-D conv (ECA). */
  is1d: boolean;
  /** The Add nodes that read its output (after BN): a residual block ends in one. */
  adds: OnnxNode[];
  out: number;
  in: number;
}

interface GemmInfo {
  node: OnnxNode;
  /** [out, in], as PyTorch's Linear holds it. */
  weight: Tensor;
  bias: Tensor | undefined;
  act: { kind: ActivationName | 'none'; slope?: number };
}

/** Graph helpers: who reads a value, constant inputs. */
class GraphView {
  readonly consumers = new Map<string, OnnxNode[]>();
  readonly producer = new Map<string, OnnxNode>();
  constructor(readonly g: OnnxGraph) {
    for (const n of g.nodes) {
      for (const i of n.inputs) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
      for (const o of n.outputs) if (o) this.producer.set(o, n);
    }
  }

  /**
   * The constant behind a value: an initializer, a Constant node, or an Identity of one (PyTorch's
   * exporter merges equal initializers, e.g. all-zero biases, into Identity nodes).
   */
  init(name: string | undefined, what: string, node: OnnxNode): Tensor {
    for (let v = name, hops = 0; v && hops < 16; hops++) {
      const t = this.g.initializers.get(v);
      if (t) return t;
      const p = this.producer.get(v);
      if (p?.opType === 'Identity') v = p.inputs[0];
      else if (p?.opType === 'Constant' && p.tensor('value')) return p.tensor('value')!;
      else break;
    }
    throw new AssembleError(`${node.label}: ${what} '${name ?? ''}' is not a constant (initializer, Constant or Identity of one)`);
  }

  readers(v: string): OnnxNode[] {
    return this.consumers.get(v) ?? [];
  }

  /** The activation applied to value `v` (skipping nothing), recognising PyTorch's export patterns. */
  activationOf(v: string): { kind: ActivationName | 'none'; slope?: number } {
    const rs = this.readers(v);
    for (const r of rs) {
      switch (r.opType) {
        case 'Relu':
          return { kind: 'relu' };
        case 'LeakyRelu':
          return { kind: 'leaky_relu', slope: r.float('alpha', 0.01) };
        case 'HardSwish':
          return { kind: 'hardswish' };
        case 'Clip':
          return { kind: 'relu6' };
        case 'Sigmoid':
        case 'HardSigmoid': {
          // The native layers use PyTorch's hard-sigmoid, relu6(x + 3)/6: α = 1/6, β = 1/2.
          if (r.opType === 'HardSigmoid' && (Math.abs(r.float('alpha', 0.2) - 1 / 6) > 1e-6 || Math.abs(r.float('beta', 0.5) - 0.5) > 1e-6)) {
            throw new AssembleError(`${r.label}: HardSigmoid α = ${r.float('alpha', 0.2)}, β = ${r.float('beta', 0.5)} is not PyTorch's (1/6, 1/2)`);
          }
          // x · σ(x) is SiLU (Sigmoid) or hard-swish (HardSigmoid, opset < 14); σ alone is a gate.
          const m = this.readers(r.outputs[0]!).find((n) => n.opType === 'Mul' && n.inputs.includes(v));
          if (m) return { kind: r.opType === 'Sigmoid' ? 'silu' : 'hardswish' };
          return { kind: r.opType === 'Sigmoid' ? 'sigmoid' : 'hardsigmoid' };
        }
      }
    }
    return { kind: 'none' };
  }
}

function convInfo(view: GraphView, n: OnnxNode): ConvInfo {
  const weight = view.init(n.inputs[1], 'weight', n);
  const bias = n.inputs[2] ? view.init(n.inputs[2], 'bias', n) : undefined;
  const rank = weight.rank - 2;
  const ints = (name: string, def: number) => n.ints(name, new Array<number>(rank).fill(def));
  const strides = ints('strides', 1);
  const dil = ints('dilations', 1);
  const pads = n.ints('pads', new Array<number>(2 * rank).fill(0));
  if (n.string('auto_pad', 'NOTSET') !== 'NOTSET') throw new AssembleError(`${n.label}: auto_pad is not PyTorch's export`);
  const k = weight.shape.slice(2);
  if (new Set([...k]).size !== 1 || new Set(strides).size !== 1 || new Set(dil).size !== 1 || new Set(pads).size !== 1) {
    throw new AssembleError(`${n.label}: only square kernels with equal strides, dilations and symmetric pads are assembled (kernel ${fmtShape(k)}, pads [${pads}])`);
  }
  let post = n.outputs[0]!;
  let bn: ConvInfo['bn'];
  const rs = view.readers(post);
  if (rs.length === 1 && rs[0]!.opType === 'BatchNormalization') {
    const b = rs[0]!;
    bn = { scale: view.init(b.inputs[1], 'scale', b), bias: view.init(b.inputs[2], 'B', b), mean: view.init(b.inputs[3], 'mean', b), variance: view.init(b.inputs[4], 'var', b), eps: b.float('epsilon', 1e-5), node: b };
    post = b.outputs[0]!;
  }
  const src = view.producer.get(n.inputs[0]!);
  return {
    node: n,
    weight,
    bias,
    group: n.int('group', 1),
    kernel: k[0]!,
    stride: strides[0]!,
    dilation: dil[0]!,
    pad: pads[0]!,
    bn,
    act: view.activationOf(post),
    afterPool: src?.opType === 'GlobalAveragePool',
    adds: view.readers(post).filter((r) => r.opType === 'Add'),
    is1d: rank === 1,
    out: weight.shape[0]!,
    in: weight.shape[1]! * n.int('group', 1),
  };
}

function gemmInfo(view: GraphView, n: OnnxNode): GemmInfo {
  let weight = view.init(n.inputs[1], 'B', n);
  if (n.int('transA', 0) !== 0 || n.float('alpha', 1) !== 1 || n.float('beta', 1) !== 1) throw new AssembleError(`${n.label}: only Gemm with transA 0, alpha 1, beta 1 is a Linear`);
  if (n.int('transB', 0) === 0) weight = transpose(weight, [1, 0]);
  const bias = n.inputs[2] ? view.init(n.inputs[2], 'C', n) : undefined;
  return { node: n, weight, bias, act: view.activationOf(n.outputs[0]!) };
}

const isDepthwise = (c: ConvInfo | undefined) => !!c && !c.is1d && c.group > 1 && c.group === c.out && c.group === c.in;
const isPointwise = (c: ConvInfo | undefined) => !!c && !c.is1d && c.kernel === 1 && c.group === 1;

interface Parsed {
  family: 'mobilenet_v3' | 'efficientnet';
  blocks: InvertedResidualConfig[];
  hasExpand: boolean[];
}

/** Reads the inverted-residual blocks of a MobileNetV3 / EfficientNet conv sequence. */
function parseBlocks(convs: ConvInfo[], what: string): Parsed {
  const stem = convs[0]!;
  const family = stem.act.kind === 'hardswish' ? 'mobilenet_v3' : stem.act.kind === 'silu' ? 'efficientnet' : undefined;
  if (!family || stem.is1d || stem.group !== 1 || stem.in !== 3 || stem.kernel !== 3 || stem.stride !== 2) {
    throw new AssembleError(`${what}: the first conv (${stem.node.label}) is not a MobileNetV3 / EfficientNet stem (3×3, stride 2, hard-swish or SiLU)`);
  }
  const blocks: InvertedResidualConfig[] = [];
  const hasExpand: boolean[] = [];
  let i = 1;
  while (i < convs.length - 1) {
    const start = convs[i]!;
    let expand: ConvInfo | undefined;
    if (isPointwise(start) && isDepthwise(convs[i + 1]) && convs[i + 1]!.in === start.out) expand = convs[i++];
    const dw = convs[i++];
    if (!isDepthwise(dw)) throw new AssembleError(`${what}: expected a depthwise conv at ${(dw ?? start).node.label} (block ${blocks.length + 1})`);
    let attention: AttentionKind = 'none';
    if (convs[i]?.is1d) {
      attention = 'eca';
      i++;
    } else if (convs[i]?.afterPool && isPointwise(convs[i]) && isPointwise(convs[i + 1])) {
      attention = 'se';
      i += 2;
    }
    const proj = convs[i++];
    if (!isPointwise(proj) || proj!.act.kind !== 'none') throw new AssembleError(`${what}: expected a linear 1×1 projection conv at ${(proj ?? dw!).node.label}`);
    const act = dw!.act;
    if (act.kind === 'none' || act.kind === 'sigmoid' || act.kind === 'hardsigmoid') throw new AssembleError(`${what}: ${dw!.node.label} has no recognised activation`);
    // What the native builders assume: the expansion shares the depthwise activation; SE is
    // ReLU + hard-sigmoid (MobileNetV3) or SiLU + sigmoid (EfficientNet).
    if (expand && expand.act.kind !== act.kind) throw new AssembleError(`${what}: ${expand.node.label} (${expand.act.kind}) and ${dw!.node.label} (${act.kind}) differ in activation`);
    if (attention === 'se') {
      const [fc1, fc2] = [convs[i - 3]!, convs[i - 2]!];
      const want = family === 'mobilenet_v3' ? ['relu', 'hardsigmoid'] : ['silu', 'sigmoid'];
      if (fc1.act.kind !== want[0] || fc2.act.kind !== want[1]) throw new AssembleError(`${what}: squeeze-excitation ${fc1.node.label} / ${fc2.node.label} uses ${fc1.act.kind} / ${fc2.act.kind}, a ${family} has ${want.join(' / ')}`);
    }
    blocks.push({
      inChannels: expand ? expand.in : dw!.in,
      kernel: dw!.kernel,
      expanded: dw!.out,
      outChannels: proj!.out,
      attention,
      activation: act.kind,
      stride: dw!.stride,
      dilation: dw!.dilation,
      // The block's own input added to its projection (the next block's Add also reads this output).
      residual: proj!.adds.some((a) => a.inputs.includes((expand ?? dw!).node.inputs[0]!)),
    });
    hasExpand.push(!!expand);
  }
  if (i !== convs.length - 1 || !isPointwise(convs[i])) throw new AssembleError(`${what}: the conv sequence does not end in a 1×1 head conv after ${blocks.length} blocks`);
  if (convs[i]!.act.kind !== stem.act.kind) throw new AssembleError(`${what}: the head conv ${convs[i]!.node.label} uses ${convs[i]!.act.kind}, the stem ${stem.act.kind}`);
  return { family, blocks, hasExpand };
}

/** EfficientNet stages from the block list: a stage starts at stride 2 or where kernel, expansion or width change. */
function efficientStages(blocks: InvertedResidualConfig[], what: string): MBConvRow[] {
  const rows: [number, number, number, number, number, number][] = [];
  let prev: InvertedResidualConfig | undefined;
  for (const b of blocks) {
    const e = b.expanded / b.inChannels;
    if (!Number.isInteger(e) || makeDivisible(b.inChannels * e, 8) !== b.expanded) throw new AssembleError(`${what}: block ${b.inChannels} → ${b.expanded} is not an EfficientNet expansion`);
    const cont = prev && b.stride === 1 && b.kernel === prev.kernel && b.inChannels === prev.outChannels && b.outChannels === prev.outChannels && b.expanded / b.inChannels === prev.expanded / prev.inChannels;
    if (cont) rows[rows.length - 1]![5]++;
    else rows.push([e, b.kernel, b.stride, b.inChannels, b.outChannels, 1]);
    prev = b;
  }
  return rows;
}

/** The weighted layers of a native model in forward order, each with the BN right after it. */
function nativeLayers(net: Module): { name: string; layer: Conv2d | Conv1d | Linear; bn?: { name: string; layer: BatchNorm2d } }[] {
  const out: { name: string; layer: Conv2d | Conv1d | Linear; bn?: { name: string; layer: BatchNorm2d } }[] = [];
  const walk = (m: Module, prefix: string) => {
    const kids = m.children();
    kids.forEach(([n, c], i) => {
      const name = prefix ? `${prefix}.${n}` : n;
      if (c instanceof Conv2d || c instanceof Conv1d || c instanceof Linear) {
        // The BN after a conv: the next child of a Sequential, or the sibling bnK of a convK (ResNet).
        const k = /^conv(\d*)$/.exec(n);
        const next = m instanceof Sequential ? kids[i + 1] : k ? kids.find(([s]) => s === `bn${k[1]}`) : undefined;
        out.push({ name, layer: c, ...(next && next[1] instanceof BatchNorm2d ? { bn: { name: `${prefix ? `${prefix}.` : ''}${next[0]}`, layer: next[1] } } : {}) });
      } else walk(c, name);
    });
  };
  walk(net, '');
  return out;
}

function checkShape(native: string, nshape: readonly number[], onnx: string, oshape: readonly number[]): void {
  if (nshape.join() !== oshape.join()) throw new ShapeError(`assemble: native ${native} is ${fmtShape(nshape)} but ONNX ${onnx} is ${fmtShape(oshape)}`);
}

/** Copies the graph's weights into `net`, pairing convs and Gemms in order, every shape checked. */
function copyWeights(net: Module, convs: ConvInfo[], gemms: GemmInfo[], report: AssembleReport): void {
  const layers = nativeLayers(net);
  const onnx: (ConvInfo | GemmInfo)[] = [...convs, ...gemms];
  if (layers.length !== onnx.length) {
    throw new ShapeError(`assemble: the native model has ${layers.length} conv/linear layers but the ONNX graph has ${convs.length} Conv + ${gemms.length} Gemm nodes`);
  }
  const sd = net.stateDict();
  const set = (name: string, t: Tensor, onnxWhat: string) => {
    const dst = sd[name];
    if (!dst) throw new AssembleError(`assemble: native model has no tensor '${name}'`);
    checkShape(`'${name}'`, dst.shape, onnxWhat, t.shape);
    dst.dataSync().set(t.dataSync());
  };
  const fill = (name: string, n: number, v: number | Float32Array) => {
    const t = typeof v === 'number' ? Tensor.full([n], v) : new Tensor(v, [n]);
    set(name, t, `(derived for '${name}')`);
  };
  layers.forEach(({ name, layer, bn }, k) => {
    const o = onnx[k]!;
    const label = o.node.label;
    const isLinear = layer instanceof Linear;
    if (isLinear !== (o.node.opType === 'Gemm')) throw new ShapeError(`assemble: native '${name}' (${layer.describe()}) faces ONNX ${label}`);
    set(`${name}.weight`, o.weight, `${label} weight '${o.node.inputs[1]}'`);
    report.matched.push({ native: name, onnx: o.node.name, shape: [...o.weight.shape] });
    const nativeBias = layer.hasBias;
    const bias = o.bias;
    const outCh = o.weight.shape[0]!;
    const info = 'bn' in o ? o.bn : undefined;
    if (!bn) {
      if (info) throw new ShapeError(`assemble: ONNX ${label} is followed by ${info.node.label} but native '${name}' has no BatchNorm2d after it`);
      if (nativeBias) {
        if (bias) set(`${name}.bias`, bias, `${label} bias '${o.node.inputs[2]}'`);
        else fill(`${name}.bias`, outCh, 0);
      } else if (bias) throw new ShapeError(`assemble: ONNX ${label} has a bias but native '${name}' has none`);
      return;
    }
    const eps = bn.layer.eps;
    if (info) {
      // BN kept: its parameters by value; the eps must agree (it is part of the architecture).
      if (Math.abs(info.eps - eps) > 1e-6 * eps) throw new ShapeError(`assemble: native '${bn.name}' has eps ${eps} but ONNX ${info.node.label} has epsilon ${info.eps}`);
      set(`${bn.name}.weight`, info.scale, `${info.node.label} scale`);
      set(`${bn.name}.bias`, info.bias, `${info.node.label} B`);
      set(`${bn.name}.running_var`, info.variance, `${info.node.label} var`);
      let mean = info.mean;
      if (bias && !nativeBias) {
        // A conv bias before BN shifts the mean: BN(conv + b) uses mean − b.
        const m = new Float32Array(outCh);
        const md = info.mean.dataSync();
        const bd = bias.dataSync();
        for (let c = 0; c < outCh; c++) m[c] = md[c]! - bd[c]!;
        mean = new Tensor(m, [outCh]);
      }
      set(`${bn.name}.running_mean`, mean, `${info.node.label} mean`);
      if (nativeBias) {
        if (bias) set(`${name}.bias`, bias, `${label} bias`);
        else fill(`${name}.bias`, outCh, 0);
      }
      report.bnNodes++;
      return;
    }
    // BN folded by the exporter: the conv holds scale·W and the folded bias. The native BN becomes
    // an exact identity plus that bias: weight 1, mean 0, var 1 − eps (so var + eps = 1), bias b.
    fill(`${bn.name}.weight`, outCh, 1);
    fill(`${bn.name}.running_mean`, outCh, 0);
    fill(`${bn.name}.running_var`, outCh, 1 - eps);
    if (nativeBias) {
      if (bias) set(`${name}.bias`, bias, `${label} bias`);
      else fill(`${name}.bias`, outCh, 0);
      fill(`${bn.name}.bias`, outCh, 0);
    } else {
      fill(`${bn.name}.bias`, outCh, bias ? new Float32Array(bias.dataSync()) : 0);
    }
  });
}

/** The torchvision name when the blocks are exactly a known table ('mobilenet_v3' otherwise). */
function mobileNetName(blocks: InvertedResidualConfig[], lastChannel: number): string {
  const key = (bs: InvertedResidualConfig[]) => JSON.stringify(bs.map(({ residual: _r, ...b }) => b));
  const candidates: [string, ReturnType<typeof mobileNetV3Configs>][] = [
    ['mobilenet_v3_small', mobileNetV3Configs('small')],
    ['mobilenet_v3_large', mobileNetV3Configs('large')],
    ['eca_mobilenet_v3_small', mobileNetV3Configs('small', { attention: 'eca', activation: 'leaky_relu', dilation: true })],
  ];
  return candidates.find(([, c]) => c.lastChannel === lastChannel && key(c.blocks) === key(blocks))?.[0] ?? 'mobilenet_v3';
}

/** Bottleneck blocks per stage of a ResNet conv list: stem, then [conv1, (downsample), conv2, conv3] per block. */
function resnetLayers(convs: ConvInfo[], what: string): [number, number, number, number] {
  const counts: number[] = [];
  let i = 1;
  while (i < convs.length) {
    const c1 = convs[i]!;
    const ds = convs[i + 1] && convs[i + 1]!.node.inputs[0] === c1.node.inputs[0] ? convs[i + 1] : undefined;
    const c2 = convs[i + (ds ? 2 : 1)];
    const c3 = convs[i + (ds ? 3 : 2)];
    if (!isPointwise(c1) || !c2 || c2.kernel !== 3 || !isPointwise(c3)) throw new AssembleError(`${what}: ${c1.node.label} does not start a ResNet bottleneck`);
    if (ds || counts.length === 0) counts.push(0);
    counts[counts.length - 1]!++;
    i += ds ? 4 : 3;
  }
  if (counts.length !== 4) throw new AssembleError(`${what}: a ResNet has 4 stages, found ${counts.length}`);
  return counts as [number, number, number, number];
}

/** The graph input's [C, H, W] where declared (224×224 RGB otherwise). */
function inputDims(g: OnnxGraph): [number, number, number] {
  const s = g.inputs[0]?.shape;
  const at = (i: number, def: number) => (typeof s?.[i] === 'number' ? (s[i] as number) : def);
  return [at(1, 3), at(2, 224), at(3, at(2, 224))];
}

/**
 * Builds the native module for a torchvision MobileNetV3 / EfficientNet / ResNet (Bottleneck) export
 * (or the light_cnn fixture's architecture) and copies the weights in: the architecture is read from the graph (conv
 * kernels, strides, dilations, groups, activations, SE / ECA, head widths), the native model is
 * built from those rows, then the graph's Conv and Gemm nodes are paired with the native layers in
 * order and every shape is checked. Works for both exports: BN kept (BatchNormalization nodes,
 * parameters copied, epsilon checked) and BN folded into the convs (the native BN is set to an exact
 * identity plus the folded bias). The result is in eval mode and trainable.
 *
 * @example
 * ```ts
 * import { assembleGraph, readOnnx } from 'lightconv';
 *
 * const { net, report } = assembleGraph(await readOnnx('mobilenet_v3_small.onnx'));
 * console.log(report.family, report.bnNodes, report.matched.length);
 * ```
 */
export function assembleGraph(g: OnnxGraph, what = 'model', opts: { bnEps?: number } = {}): { net: Classifier; report: AssembleReport } {
  const view = new GraphView(g);
  const convs = g.nodes.filter((n) => n.opType === 'Conv').map((n) => convInfo(view, n));
  const gemms = g.nodes.filter((n) => n.opType === 'Gemm').map((n) => gemmInfo(view, n));
  const bnCount = g.nodes.filter((n) => n.opType === 'BatchNormalization').length;
  if (convs.length < 3 || gemms.length === 0) throw new AssembleError(`${what}: not a recognised CNN (${convs.length} Conv, ${gemms.length} Gemm nodes)`);
  const numClasses = gemms[gemms.length - 1]!.weight.shape[0]!;
  const [inC, inH, inW] = inputDims(g);
  const res = inH;
  // BN kept: the graph's epsilon; folded: the caller's (any value works, see copyWeights).
  const eps = convs.find((c) => c.bn)?.bn?.eps ?? opts.bnEps;
  let net: Classifier;
  let family: AssembleReport['family'];

  const stem = convs[0]!;
  if (stem.kernel === 7 && stem.stride === 2 && stem.out === 64 && gemms.length === 1 && convs.every((c) => c.group === 1 && !c.is1d)) {
    family = 'resnet';
    net = new ResNet({ numClasses, resolution: res, layers: resnetLayers(convs, what) });
    if (eps !== undefined) for (const [, m] of net.namedModules()) if (m instanceof BatchNorm2d && Math.abs(m.eps - eps) > 1e-6 * m.eps) throw new AssembleError(`${what}: ResNet BN epsilon ${eps} is not PyTorch's default 1e-5`);
  } else if (convs.every((c) => c.group === 1 && !c.is1d) && g.nodes.some((n) => n.opType === 'MaxPool')) {
    // light_cnn: its fixed layer list (the hidden width and the classes come from the Gemms).
    family = 'light_cnn';
    if (gemms.length !== 2) throw new AssembleError(`${what}: a light_cnn has 2 Gemm nodes, this graph ${gemms.length}`);
    const widths = convs.map((c) => `${c.in}→${c.out}/${c.kernel}/${c.pad}/${c.stride}`).join(' ');
    const want = '3→32/3/1/1 32→32/3/1/1 32→64/3/1/1 64→64/3/1/1 64→128/3/1/1 128→128/3/1/1';
    if (widths !== want) throw new AssembleError(`${what}: convs (in→out/kernel/pad/stride) ${widths} are not light_cnn's ${want}`);
    net = lightCnn({ numClasses, resolution: res, hidden: gemms[0]!.weight.shape[0]!, ...(eps !== undefined ? { bnEps: eps } : {}) });
  } else {
    const parsed = parseBlocks(convs, what);
    family = parsed.family;
    if (family === 'mobilenet_v3') {
      if (gemms.length !== 2 || gemms[0]!.act.kind !== 'hardswish') throw new AssembleError(`${what}: a MobileNetV3 head is Gemm → HardSwish → Gemm`);
      const slope = convs.find((c) => c.act.kind === 'leaky_relu')?.act.slope;
      net = buildMobileNetV3(mobileNetName(parsed.blocks, gemms[0]!.weight.shape[0]!), parsed.blocks, gemms[0]!.weight.shape[0]!, { numClasses, resolution: res, ...(slope !== undefined ? { slope } : {}), bn: { eps: eps ?? 1e-3, momentum: 0.01 } });
    } else {
      if (gemms.length !== 1) throw new AssembleError(`${what}: an EfficientNet head is one Gemm, this graph has ${gemms.length}`);
      for (const b of parsed.blocks) if (b.attention !== 'se') throw new AssembleError(`${what}: every EfficientNet block has squeeze-excitation`);
      const stages = efficientStages(parsed.blocks, what);
      const variant = (Object.keys(EFFICIENTNET_VARIANTS) as EfficientNetVariant[]).find((v) => JSON.stringify(efficientNetStages(v)) === JSON.stringify(stages));
      net = buildEfficientNet(variant ? `efficientnet_${variant}` : 'efficientnet', stages, { numClasses, resolution: res, dropout: 0.2, bn: { eps: eps ?? 1e-5, momentum: 0.1 } });
    }
  }
  net.info = { ...net.info, input: [1, inC, inH, inW] };
  const report: AssembleReport = { family, bnNodes: 0, matched: [] };
  copyWeights(net, convs, gemms, report);
  if (report.bnNodes !== bnCount) throw new AssembleError(`${what}: ${bnCount} BatchNormalization nodes but only ${report.bnNodes} follow a conv directly`);
  net.eval();
  return { net, report };
}

/**
 * Reads an ONNX file (or bytes) and assembles its native model (see assembleGraph).
 *
 * @example
 * ```ts
 * import { assemble } from 'lightconv';
 *
 * const net = await assemble('efficientnet_b0.onnx'); // a native, trainable Classifier
 * net.replaceHead(4); // fine-tune on 4 classes
 * ```
 */
export async function assemble(source: ModelSource): Promise<Classifier> {
  const g = await readOnnx(source);
  return assembleGraph(g, typeof source === 'string' ? source : 'model').net;
}

/**
 * Loads the weights of a torchvision ONNX export into an existing native model: the graph is
 * assembled, then its state dict is copied with every name and shape checked (a ShapeError names
 * the tensor and both shapes when the file holds another architecture or class count).
 *
 * @example
 * ```ts
 * import { efficientNet, loadOnnxWeights } from 'lightconv';
 *
 * const net = await loadOnnxWeights(efficientNet('b0'), 'efficientnet_b0.onnx');
 * ```
 */
export async function loadOnnxWeights<N extends Classifier>(net: N, source: ModelSource): Promise<N> {
  const g = await readOnnx(source);
  const firstBn = net.namedModules().find(([, m]) => m instanceof BatchNorm2d)?.[1] as BatchNorm2d | undefined;
  const { net: src } = assembleGraph(g, typeof source === 'string' ? source : 'model', firstBn ? { bnEps: firstBn.eps } : {});
  const theirs = src.stateDict();
  for (const [name, t] of Object.entries(net.stateDict())) {
    const o = theirs[name];
    if (!o) throw new ShapeError(`loadOnnxWeights: native '${name}' ${fmtShape(t.shape)} has no counterpart in the ONNX model (a ${src.info.arch} with ${src.numClasses} classes)`);
    if (o.shape.join() !== t.shape.join()) throw new ShapeError(`loadOnnxWeights: native '${name}' is ${fmtShape(t.shape)} but the ONNX model's is ${fmtShape(o.shape)}`);
  }
  net.loadStateDict(theirs);
  return net.eval();
}
