import { type OnnxModel, loadOnnxSync } from './model.js';
import { LightconvError, ValueError } from '../../core/errors.js';
import type { Shape } from '../../core/shape.js';
import { Tensor } from '../../core/tensor.js';
import { noGrad } from '../../core/autograd.js';
import { ECA, InvertedResidual, SqueezeExcite } from '../../layers/blocks.js';
import { Act, AdaptiveAvgPool2d, BatchNorm2d, Conv1d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, Sequential, StochasticDepth } from '../../layers/layers.js';
import type { Module } from '../../layers/module.js';
import { Classifier, Network } from '../../models/network.js';
import { Bottleneck, ResNet } from '../../models/resnet.js';
import { onnx } from './proto/onnx.js';
import { tensorToProto } from './tensor_proto.js';

/** Options of `exportOnnx` and its siblings: input shape and names, opset, metadata. */
export interface ExportOptions {
  /** The input shape; its first dim is exported as the symbolic 'batch'. Default the network's. */
  input?: Shape;
  inputName?: string;
  outputName?: string;
  /** Default 17. Hard-swish needs 14 or more (HardSwish op). */
  opset?: number;
  /** Written as the model's metadata_props (class names, preprocessing: see src/data/transforms.ts). */
  metadata?: Readonly<Record<string, string>>;
}

const A = onnx.AttributeProto.AttributeType;
type Attr = onnx.AttributeProto.$Properties;
const int = (name: string, i: number): Attr => ({ name, type: A.INT, i });
const ints = (name: string, v: number[]): Attr => ({ name, type: A.INTS, ints: v });
const float = (name: string, f: number): Attr => ({ name, type: A.FLOAT, f });

/** Accumulates nodes and initializers while walking a module tree. */
class Emitter {
  readonly nodes: onnx.NodeProto.$Properties[] = [];
  readonly inits: onnx.TensorProto[] = [];
  private readonly used = new Set<string>();
  private n = 0;

  constructor(private readonly names: ReadonlyMap<Module, string>) {}

  nameOf(m: Module): string {
    return this.names.get(m) ?? `module${this.n}`;
  }

  value(base: string): string {
    let v = `/${base.replace(/\./g, '/')}_output`;
    for (let i = 1; this.used.has(v); i++) v = `/${base.replace(/\./g, '/')}_output_${i}`;
    this.used.add(v);
    return v;
  }

  init(name: string, t: Tensor): string {
    if (this.used.has(name)) throw new ValueError(`exportOnnx: initializer '${name}' is defined twice`);
    this.used.add(name);
    this.inits.push(tensorToProto(t, name));
    return name;
  }

  node(opType: string, inputs: string[], base: string, attribute: Attr[] = []): string {
    const out = this.value(`${base}.${opType}`);
    this.nodes.push({ op_type: opType, name: `/${base.replace(/\./g, '/')}/${opType}_${this.n++}`, input: inputs, output: [out], attribute });
    return out;
  }
}

/** Emits `m` applied to value `x`; returns the output value name. The model is exported in eval form. */
function emit(m: Module, x: string, e: Emitter): string {
  const name = e.nameOf(m);
  const base = name || 'model';
  if (m instanceof Network) {
    let y = emit(m.features, x, e);
    if (m.hasAvgPool) y = emit(m.get('avgpool'), y, e);
    y = e.node('Flatten', [y], base, [int('axis', 1)]);
    return emit(m.classifier, y, e);
  }
  if (m instanceof ResNet) {
    for (const [n, c] of m.children()) if (n !== 'fc') x = emit(c, x, e);
    return emit(m.get('fc'), e.node('Flatten', [x], base, [int('axis', 1)]), e);
  }
  if (m instanceof Bottleneck) {
    let y = emit(m.get('relu'), emit(m.get('bn1'), emit(m.get('conv1'), x, e), e), e);
    y = emit(m.get('relu'), emit(m.get('bn2'), emit(m.get('conv2'), y, e), e), e);
    y = emit(m.get('bn3'), emit(m.get('conv3'), y, e), e);
    const identity = m.downsample ? emit(m.downsample, x, e) : x;
    return emit(m.get('relu'), e.node('Add', [y, identity], base), e);
  }
  if (m instanceof Sequential) {
    for (const [, c] of m.children()) x = emit(c, x, e);
    return x;
  }
  if (m instanceof Conv2d || m instanceof Conv1d) {
    const a = m.attrs();
    const k = m instanceof Conv2d ? [m.kernelSize, m.kernelSize] : [m.kernelSize];
    const inputs = [x, e.init(`${name}.weight`, m.weight)];
    if (m.bias) inputs.push(e.init(`${name}.bias`, m.bias));
    return e.node('Conv', inputs, base, [ints('dilations', [...a.dilations]), int('group', a.group), ints('kernel_shape', k), ints('pads', [...a.pads]), ints('strides', [...a.strides])]);
  }
  if (m instanceof BatchNorm2d) {
    const ins = [x, e.init(`${name}.weight`, m.weight), e.init(`${name}.bias`, m.bias), e.init(`${name}.running_mean`, m.runningMean), e.init(`${name}.running_var`, m.runningVar)];
    // ONNX's momentum is the weight of the old value: PyTorch's 1 − m.
    return e.node('BatchNormalization', ins, base, [float('epsilon', m.eps), float('momentum', 1 - m.momentum)]);
  }
  if (m instanceof Linear) {
    const inputs = [x, e.init(`${name}.weight`, m.weight)];
    if (m.bias) inputs.push(e.init(`${name}.bias`, m.bias));
    return e.node('Gemm', inputs, base, [float('alpha', 1), float('beta', 1), int('transB', 1)]);
  }
  if (m instanceof Act) {
    const s = m.spec;
    switch (s.kind) {
      case 'none':
        return x;
      case 'relu':
        return e.node('Relu', [x], base);
      case 'leaky_relu':
        return e.node('LeakyRelu', [x], base, [float('alpha', s.alpha)]);
      case 'clip':
        return e.node('Clip', [x, e.init(`${name}.min`, Tensor.scalar(s.min)), e.init(`${name}.max`, Tensor.scalar(s.max))], base);
      case 'sigmoid':
        return e.node('Sigmoid', [x], base);
      case 'hard_sigmoid':
        return e.node('HardSigmoid', [x], base, [float('alpha', s.alpha), float('beta', s.beta)]);
      case 'hard_swish':
        return e.node('HardSwish', [x], base);
      case 'silu':
        return e.node('Mul', [x, e.node('Sigmoid', [x], base)], base);
      case 'tanh':
        return e.node('Tanh', [x], base);
    }
  }
  if (m instanceof AdaptiveAvgPool2d) return e.node('GlobalAveragePool', [x], base);
  if (m instanceof MaxPool2d) {
    const p = m.padding;
    return e.node('MaxPool', [x], base, [int('ceil_mode', m.ceilMode ? 1 : 0), ints('kernel_shape', [m.kernelSize, m.kernelSize]), ints('pads', [p, p, p, p]), ints('strides', [m.stride, m.stride])]);
  }
  if (m instanceof Flatten) return e.node('Flatten', [x], base, [int('axis', 1)]);
  if (m instanceof Identity || m instanceof Dropout || m instanceof StochasticDepth) return x; // eval mode
  if (m instanceof SqueezeExcite) {
    let s = emit(m.get('avgpool'), x, e);
    s = emit(m.get('activation'), emit(m.fc1, s, e), e);
    s = emit(m.get('scale_activation'), emit(m.fc2, s, e), e);
    return e.node('Mul', [s, x], base);
  }
  if (m instanceof ECA) {
    const pooled = emit(m.get('avg_pool'), x, e);
    // [N, C, 1, 1] → [N, 1, C]: Reshape with 0 = keep N.
    const row = e.node('Reshape', [pooled, e.init(`${name}.shape_in`, Tensor.fromArray([0, 1, -1], [3], 'int64'))], base);
    const g = emit(m.conv, row, e);
    const col = e.node('Reshape', [g, e.init(`${name}.shape_out`, Tensor.fromArray([0, -1, 1, 1], [4], 'int64'))], base);
    return e.node('Mul', [x, e.node('Sigmoid', [col], base)], base);
  }
  if (m instanceof InvertedResidual) {
    const y = emit(m.block, x, e);
    return m.useResidual ? e.node('Add', [y, x], base) : y;
  }
  throw new ValueError(`exportOnnx: no ONNX form for ${m.describe()} ('${name}')`);
}

/**
 * The ONNX ModelProto of a native model (eval form: BN with running stats, dropout gone).
 *
 * @example
 * ```ts
 * import { lightCnn, toOnnxModel } from 'lightconv';
 *
 * const proto = toOnnxModel(lightCnn(), { opset: 17 });
 * console.log(proto.graph?.node?.length);
 * ```
 */
export function toOnnxModel(net: Module, opts: ExportOptions = {}): onnx.ModelProto.$Properties {
  const input = opts.input ?? (net instanceof Classifier ? net.info.input : undefined);
  if (!input) throw new ValueError('exportOnnx: pass { input: [N, C, H, W] }');
  const opset = opts.opset ?? 17;
  if (opset < 14) throw new ValueError(`exportOnnx: opset ${opset} is below 14 (HardSwish); use 14 or more`);
  const names = new Map(net.namedModules().map(([n, m]) => [m, n]));
  const e = new Emitter(names);
  const inName = opts.inputName ?? 'input';
  const outName = opts.outputName ?? 'logits';
  const y = noGrad(() => emit(net, inName, e));
  const out = net.infer(input);
  // Rename the last value to the output name.
  const last = e.nodes.find((n) => n.output?.[0] === y);
  if (!last) throw new ValueError('exportOnnx: the model has no ops');
  last.output = [outName];
  for (const n of e.nodes) n.input = n.input?.map((i) => (i === y ? outName : i)) ?? [];
  const dims = (s: Shape) => s.map((d, i) => (i === 0 ? { dim_param: 'batch' } : { dim_value: d }));
  const vi = (name: string, s: Shape): onnx.ValueInfoProto.$Properties => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: dims(s) } } } });
  return {
    ir_version: 8,
    producer_name: 'lightconv',
    producer_version: '0.1.0',
    opset_import: [{ domain: '', version: opset }],
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: net instanceof Classifier ? net.info.arch : 'lightconv',
      node: e.nodes,
      initializer: e.inits,
      input: [vi(inName, input)],
      output: [vi(outName, out)],
    },
  };
}

/**
 * Serialises a native model to ONNX bytes.
 *
 * @example
 * ```ts
 * import { exportOnnxBytes, loadOnnxSync, mobileNetV3 } from 'lightconv';
 *
 * const bytes = exportOnnxBytes(mobileNetV3('small', { numClasses: 2 }), { metadata: { note: 'demo' } });
 * const model = loadOnnxSync(bytes);
 * ```
 */
export function exportOnnxBytes(net: Module, opts: ExportOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(toOnnxModel(net, opts)).finish();
}

/**
 * A snapshot of a native model as a compiled graph, for inference: the same outputs as
 * `noGrad(() => net.forward(x))` in eval mode, 2.4–2.9× as fast on the CPU, because the graph
 * runner keeps activations in the kernels' memory, frees each after its last reader (a
 * module's forward cannot know when JavaScript drops a tensor) and replays recorded runs.
 * Later changes to `net` (more training) are not seen: compile again.
 *
 * @example
 * ```ts
 * import { Tensor, compileForInference, efficientNet } from 'lightconv';
 *
 * const net = efficientNet('b0', { numClasses: 3 });
 * const fast = compileForInference(net, { input: [1, 3, 224, 224] });
 * const out = fast.runSync(Tensor.zeros([1, 3, 224, 224]));
 * ```
 */
export function compileForInference(net: Module, opts: ExportOptions = {}): OnnxModel {
  return loadOnnxSync(exportOnnxBytes(net, opts));
}

/**
 * Writes a native model as ONNX (opset 17 by default) that onnxruntime runs: initializers carry
 * the PyTorch names, BN stays as BatchNormalization (eval), the batch dim is symbolic. Written through
 * src/io/atomic.ts (temporary file, every byte, fsync, size check, rename, folder fsync), so a
 * reader never sees half a file and a failed export leaves any previous file intact.
 *
 * @example
 * ```ts
 * import { exportOnnx, lightCnn } from 'lightconv';
 *
 * await exportOnnx(lightCnn({ numClasses: 7 }), 'light_cnn.onnx', { inputName: 'input', outputName: 'logits' });
 * ```
 */
export async function exportOnnx(net: Module, path: string, opts: ExportOptions = {}): Promise<void> {
  const bytes = exportOnnxBytes(net, opts);
  const { writeFileAtomic } = await import('../atomic.js');
  await writeFileAtomic(path, bytes, { mkdir: false, error: (m) => new LightconvError(`exportOnnx: ${m}`) });
}
