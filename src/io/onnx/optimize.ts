import type { Tensor } from '../../core/tensor.js';
import { foldBatchNorm } from '../../kernels/normalization.js';
import type { AttrValue } from './node.js';
import { OnnxNode } from './node.js';
import { lookupOp } from './ops/index.js';

/**
 * Inference rewrites applied at load (turn off with `optimize: false` to run the graph exactly
 * as written, e.g. to step through it node by node):
 * 1. Constant nodes become initializers.
 * 2. BatchNormalization after a Conv with constant weights folds into the Conv.
 * 3. An activation right after a Conv, Gemm or unfolded inference BatchNormalization (Relu,
 *    LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh, and Sigmoid+Mul = SiLU) runs in its
 *    epilogue instead of as its own pass.
 * 4. GELU as PyTorch exports it before opset 20 — Div(x, √2) → Erf → Add 1 → Mul x → Mul 0.5 —
 *    becomes one Gelu node: one pass over the tensor instead of five (ConvNeXt, ViT).
 * A rewrite only happens when the intermediate value has no other reader and is not a graph output.
 */
export function optimizeGraph(
  nodesIn: readonly OnnxNode[],
  initializersIn: ReadonlyMap<string, Tensor>,
  graphOutputs: readonly string[],
): { nodes: OnnxNode[]; initializers: Map<string, Tensor> } {
  const inits = new Map(initializersIn);
  let nodes: OnnxNode[] = [];
  for (const n of nodesIn) {
    if (n.opType === 'Constant' && n.domain === '' && n.outputs.length === 1) {
      const op = lookupOp('Constant');
      if (op) {
        inits.set(n.outputs[0]!, op.compile(n)([])[0]!);
        continue;
      }
    }
    nodes.push(n);
  }

  const readers = new Map<string, OnnxNode[]>();
  const countReaders = () => {
    readers.clear();
    for (const n of nodes) for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  };
  const pinned = new Set(graphOutputs);
  /** The only reader of `value`, when there is exactly one and the value is not a graph output. */
  const soleReader = (value: string): OnnxNode | undefined => {
    const r = readers.get(value);
    return !pinned.has(value) && r && r.length === 1 ? r[0] : undefined;
  };
  const replace = (drop: readonly OnnxNode[], conv: OnnxNode, fused: OnnxNode) => {
    nodes = nodes.filter((n) => !drop.includes(n)).map((n) => (n === conv ? fused : n));
    countReaders();
  };

  countReaders();
  // An inference BatchNormalization that stays (one that precedes its conv, as in DenseNet) takes
  // its activation as a conv does.
  const inferenceBn = (n: OnnxNode) => n.opType === 'BatchNormalization' && n.outputs.filter(Boolean).length === 1 && !n.attrs.get('training_mode');
  for (const conv of [...nodes]) {
    if ((conv.opType !== 'Conv' && conv.opType !== 'Gemm' && !inferenceBn(conv)) || conv.domain !== '' || !nodes.includes(conv)) continue;
    let cur = conv;
    // 2. BN folding.
    const bn = soleReader(cur.outputs[0]!);
    if (conv.opType === 'Conv' && bn && bn.opType === 'BatchNormalization' && bn.inputs[0] === cur.outputs[0] && bn.outputs.filter(Boolean).length === 1 && !bn.attrs.get('training_mode')) {
      const folded = foldBn(cur, bn, inits);
      if (folded) {
        replace([bn], cur, folded);
        cur = folded;
      }
    }
    // 3. Activation epilogue.
    const y = cur.outputs[0]!;
    const yReaders = pinned.has(y) ? [] : (readers.get(y) ?? []);
    const act = yReaders.length === 1 && yReaders[0]!.inputs[0] === y ? yReaders[0]! : undefined;
    const fusedAct = act && activationAttrs(act, inits);
    if (act && fusedAct) {
      replace([act], cur, withActivation(cur, fusedAct, act.outputs[0]!));
      continue;
    }
    // SiLU: y · sigmoid(y), with y read by exactly a Sigmoid and the Mul that takes both.
    const sig = yReaders.length === 2 ? yReaders.find((n) => n.opType === 'Sigmoid' && n.domain === '' && n.inputs[0] === y) : undefined;
    const mul = sig ? soleReader(sig.outputs[0]!) : undefined;
    if (sig && mul && mul.opType === 'Mul' && mul.domain === '' && yReaders.includes(mul) && mul.inputs.length === 2 && mul.inputs.includes(y) && mul.inputs.includes(sig.outputs[0]!)) {
      replace([sig, mul], cur, withActivation(cur, { _activation: 'silu' }, mul.outputs[0]!));
    }
  }
  // 4. GELU chains.
  const scalarIs = (name: string | undefined, v: number, tol = 1e-6) => {
    const t = name === undefined ? undefined : inits.get(name);
    return t !== undefined && t.size === 1 && (t.dtype === 'float32' || t.dtype === 'float64') && Math.abs(t.dataSync()[0]! - v) <= tol;
  };
  const other = (n: OnnxNode, value: string) => (n.inputs.length === 2 && n.inputs.includes(value) ? n.inputs[n.inputs[0] === value ? 1 : 0] : undefined);
  for (const div of [...nodes]) {
    if (div.opType !== 'Div' || div.domain !== '' || div.inputs.length !== 2 || !scalarIs(div.inputs[1], Math.SQRT2)) continue;
    const x = div.inputs[0]!;
    const erf = soleReader(div.outputs[0]!);
    if (!erf || erf.opType !== 'Erf' || erf.domain !== '') continue;
    const add = soleReader(erf.outputs[0]!);
    if (!add || add.opType !== 'Add' || add.domain !== '' || !scalarIs(other(add, erf.outputs[0]!), 1)) continue;
    const mulX = soleReader(add.outputs[0]!);
    if (!mulX || mulX.opType !== 'Mul' || mulX.domain !== '' || other(mulX, add.outputs[0]!) !== x) continue;
    const half = soleReader(mulX.outputs[0]!);
    if (!half || half.opType !== 'Mul' || half.domain !== '' || !scalarIs(other(half, mulX.outputs[0]!), 0.5)) continue;
    // Gelu is an opset-20 op: the fused node says so, whatever the model imports.
    const gelu = new OnnxNode(erf.name, 'Gelu', '', 20, [x], [half.outputs[0]!], new Map());
    replace([div, erf, add, mulX], half, gelu);
  }
  // Drop initializers that no node reads any more (the pre-folding weights).
  for (const name of [...inits.keys()]) if (!readers.has(name) && !pinned.has(name)) inits.delete(name);
  return { nodes, initializers: inits };
}

function freshName(base: string, taken: ReadonlyMap<string, unknown>): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  return name;
}

function withActivation(conv: OnnxNode, attrs: Record<string, AttrValue>, output: string): OnnxNode {
  return new OnnxNode(conv.name, conv.opType, conv.domain, conv.opset, conv.inputs, [output], new Map([...conv.attrs, ...Object.entries(attrs)]));
}

/** The Conv fusion attributes for an activation node, if it is one the Conv epilogue runs. */
function activationAttrs(n: OnnxNode, inits: ReadonlyMap<string, Tensor>): Record<string, AttrValue> | undefined {
  if (n.domain !== '' || n.outputs.length !== 1) return undefined;
  switch (n.opType) {
    case 'Relu':
      return { _activation: 'relu' };
    case 'Sigmoid':
      return { _activation: 'sigmoid' };
    case 'LeakyRelu':
      return { _activation: 'leaky_relu', _alpha: n.float('alpha', 0.01) };
    case 'HardSigmoid':
      return { _activation: 'hard_sigmoid', _alpha: n.float('alpha', 0.2), _beta: n.float('beta', 0.5) };
    case 'HardSwish':
      return { _activation: 'hard_swish' };
    case 'Tanh':
      return { _activation: 'tanh' };
    case 'Clip': {
      let lo = -Infinity;
      let hi = Infinity;
      if (n.opset < 11) {
        lo = n.float('min', -3.4028234663852886e38);
        hi = n.float('max', 3.4028234663852886e38);
      } else {
        const scalar = (name: string | undefined, def: number) => {
          if (!name) return def;
          const t = inits.get(name);
          return t && t.size === 1 && t.dtype === 'float32' ? t.dataSync()[0]! : undefined;
        };
        const a = scalar(n.inputs[1], -Infinity);
        const b = scalar(n.inputs[2], Infinity);
        if (a === undefined || b === undefined) return undefined;
        lo = a;
        hi = b;
      }
      return { _activation: 'clip', _min: lo, _max: hi };
    }
    default:
      return undefined;
  }
}

/**
 * Folds inference BN into the conv (see foldBatchNorm). Returns undefined when a parameter is
 * not a constant float32 tensor of the right length, leaving the BN node to run as is.
 */
function foldBn(conv: OnnxNode, bn: OnnxNode, inits: Map<string, Tensor>): OnnxNode | undefined {
  const get = (name: string | undefined) => (name ? inits.get(name) : undefined);
  const w = get(conv.inputs[1]);
  const b = get(conv.inputs[2]);
  const [scale, beta, mean, variance] = [1, 2, 3, 4].map((i) => get(bn.inputs[i]));
  if (!w || !scale || !beta || !mean || !variance || (conv.inputs[2] && !b)) return undefined;
  const params = [scale, beta, mean, variance, ...(b ? [b] : [])];
  if ([w, ...params].some((t) => t.dtype !== 'float32') || w.rank < 3) return undefined;
  if (params.some((t) => t.rank !== 1 || t.size !== w.shape[0])) return undefined;
  const folded = foldBatchNorm(w, b, scale, beta, mean, variance, bn.float('epsilon', 1e-5));
  const wName = freshName(`${conv.name}/folded_weight`, inits);
  inits.set(wName, folded.weight);
  const bName = freshName(`${conv.name}/folded_bias`, inits);
  inits.set(bName, folded.bias);
  return new OnnxNode(conv.name, conv.opType, conv.domain, conv.opset, [conv.inputs[0]!, wName, bName], [bn.outputs[0]!], conv.attrs);
}
