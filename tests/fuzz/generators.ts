/**
 * Structure-aware fuzz generators, shared by the default test run (tests/fuzz/*.test.ts) and the
 * long runs of `npm run fuzz` (scripts/fuzz.ts).
 *
 * Every case is a pure function of (generator, seed): `makeCase(gen, seed)` rebuilds the same
 * bytes, so a failure is reproduced from the two numbers printed with it. Mutations work on the
 * decoded structure — ModelProto fields, PNG chunks (CRCs fixed), JPEG segments, DICOM elements,
 * the checkpoint's JSON header (checksum fixed) — so they get past the framing and reach shape
 * rules, budgets, decoders and validation, where byte flips alone stop at the first length prefix.
 */
import { readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { LightconvError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { decodeAnyImage } from '../../src/data/decode.js';
import { crc32 } from '../../src/io/crc32.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { onnx } from '../../src/io/onnx/proto/onnx.js';
import { BatchNorm2d, Linear } from '../../src/layers/index.js';
import { decodeCheckpoint, encodeCheckpoint, loadCheckpoint } from '../../src/train/checkpoint.js';
import { Adam } from '../../src/train/optim.js';
import { modelProto, node } from '../onnx/build.js';

const ROOT = new URL('../../', import.meta.url);
const fixture = (rel: string) => new Uint8Array(readFileSync(new URL(rel, ROOT)));

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: small, fast, and the same sequence everywhere for a seed. */
export class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Dims and ints at the edges: empty, unit, small, the int32 and safe-integer limits, negative. */
const EXTREME_INTS = [0, 1, 2, 3, -1, -2, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER, 65536];
const extremeInt = (r: Rand) => (r.chance(0.75) ? r.pick(EXTREME_INTS) : r.range(-4, 8));
const EXTREME_FLOATS = [0, -0, 1, -1, 1e-45, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, 0.5, 1e-5];

// ---------------------------------------------------------------------------------------------
// Outcomes

export type Outcome = 'ok' | 'typed-error';

/** What went wrong with a case: an untyped exception, a wrong result, too slow or too much memory. */
export class FuzzFailure extends Error {}

/** Runs `f`; a LightconvError is an acceptable answer, anything else is rethrown as is. */
export async function typed(f: () => unknown | Promise<unknown>): Promise<Outcome> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    if (e instanceof LightconvError) return 'typed-error';
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// ONNX models

function bytesOf(m: onnx.ModelProto): Uint8Array {
  return new Uint8Array(onnx.ModelProto.encode(m).finish());
}

/** Small graphs that together use every op family with attributes, plus two fixture models. */
function baseModels(): Record<string, Uint8Array> {
  const w = (shape: number[], seed: number) => Tensor.randn(shape, { seed });
  const i64 = (v: number[]) => Tensor.fromArray(v, [v.length], 'int64');
  return {
    conv_pool: bytesOf(
      modelProto({
        nodes: [
          node('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 }),
          node('Relu', ['c'], ['r']),
          node('MaxPool', ['r'], ['p'], { kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceil_mode: 0 }),
          node('AveragePool', ['p'], ['q'], { kernel_shape: [2, 2], strides: [1, 1], pads: [1, 1, 0, 0], count_include_pad: 0 }),
          node('GlobalAveragePool', ['q'], ['g']),
          node('Flatten', ['g'], ['f'], { axis: 1 }),
          node('Gemm', ['f', 'fcw', 'fcb'], ['l'], { transB: 1, alpha: { float: 1 }, beta: { float: 1 } }),
          node('Softmax', ['l'], ['y'], { axis: -1 }),
        ],
        inputs: [{ name: 'x', shape: ['batch', 2, 8, 8] }],
        outputs: [{ name: 'y', shape: ['batch', 3] }],
        initializers: { w: w([4, 2, 3, 3], 1), b: w([4], 2), fcw: w([3, 4], 3), fcb: w([3], 4) },
      }),
    ),
    depthwise_bn: bytesOf(
      modelProto({
        nodes: [
          node('Conv', ['x', 'dw'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 }),
          node('BatchNormalization', ['c', 's', 'bb', 'm', 'v'], ['n'], { epsilon: { float: 1e-5 } }),
          node('Sigmoid', ['n'], ['sg']),
          node('Mul', ['n', 'sg'], ['silu']),
          node('Conv', ['silu', 'pw'], ['c2'], { kernel_shape: [1, 1] }),
          node('Clip', ['c2', 'lo', 'hi'], ['k']),
          node('Add', ['k', 'x'], ['y']),
        ],
        inputs: [{ name: 'x', shape: [1, 4, 6, 6] }],
        outputs: [{ name: 'y' }],
        initializers: { dw: w([4, 1, 3, 3], 5), s: w([4], 6), bb: w([4], 7), m: w([4], 8), v: Tensor.fromArray([1, 2, 0.5, 1], [4]), pw: w([4, 4, 1, 1], 9), lo: Tensor.fromArray([0], []), hi: Tensor.fromArray([6], []) },
      }),
    ),
    broadcast: bytesOf(
      modelProto({
        nodes: [
          node('Add', ['x', 'a'], ['s']),
          node('Mul', ['s', 'b'], ['p']),
          node('Div', ['p', 'c'], ['d']),
          node('Sub', ['d', 'a'], ['e']),
          node('Pow', ['e', 'two'], ['f']),
          node('Sqrt', ['f'], ['g']),
          node('MatMul', ['g', 'mm'], ['h']),
          node('ReduceMean', ['h'], ['y'], { axes: [1], keepdims: 1 }),
        ],
        inputs: [{ name: 'x', shape: [2, 3, 4] }],
        outputs: [{ name: 'y' }],
        initializers: { a: w([3, 1], 10), b: w([1, 4], 11), c: Tensor.fromArray([2], [1]), two: Tensor.fromArray([2], []), mm: w([4, 5], 12) },
        opset: 17,
      }),
    ),
    shapes: bytesOf(
      modelProto({
        nodes: [
          node('Shape', ['x'], ['sh']),
          node('Gather', ['sh', 'zero'], ['n'], { axis: 0 }),
          node('Unsqueeze', ['n', 'ax0'], ['n1']),
          node('Concat', ['n1', 'minus1'], ['target'], { axis: 0 }),
          node('Transpose', ['x'], ['t'], { perm: [0, 2, 3, 1] }),
          node('Reshape', ['t', 'target'], ['r']),
          node('Pad', ['x', 'pads'], ['pd'], { mode: 'reflect' }),
          node('Squeeze', ['pd', 'ax0'], ['sq']),
          node('Concat', ['sq', 'sq'], ['cc'], { axis: 1 }),
          node('ReduceMax', ['cc'], ['y2'], { keepdims: 0 }),
          node('LogSoftmax', ['r'], ['y'], { axis: 1 }),
        ],
        inputs: [{ name: 'x', shape: [1, 2, 3, 3] }],
        outputs: [{ name: 'y' }, { name: 'y2' }],
        initializers: { zero: Tensor.fromArray([0], [], 'int64'), ax0: i64([0]), minus1: i64([-1]), pads: i64([0, 0, 1, 1, 0, 0, 1, 1]) },
      }),
    ),
    // Two inputs broadcast against each other: their dims decide the output size alone.
    outer: bytesOf(
      modelProto({
        nodes: [node('Add', ['x', 'y'], ['s']), node('Div', ['s', 'y'], ['d']), node('Mul', ['d', 'x'], ['out'])],
        inputs: [
          { name: 'x', shape: [3, 1] },
          { name: 'y', shape: [1, 4] },
        ],
        outputs: [{ name: 'out' }],
      }),
    ),
    ops_mix: fixture('tests/fixtures/models/ops_mix/model.onnx'),
    eca_mini: fixture('tests/fixtures/models/eca_mini/model.onnx'),
  };
}

let bases: Record<string, Uint8Array> | undefined;
/** Base model bytes by name (built once). */
export function modelBases(): Record<string, Uint8Array> {
  return (bases ??= baseModels());
}

const INT_ATTRS = ['kernel_shape', 'pads', 'strides', 'dilations', 'group', 'axis', 'axes', 'perm', 'transA', 'transB', 'keepdims', 'ceil_mode', 'count_include_pad', 'storage_order', 'noop_with_empty_axes', 'allowzero', 'start', 'end'];
const FLOAT_ATTRS = ['epsilon', 'alpha', 'beta', 'momentum', 'min', 'max', 'ratio'];
const STRING_ATTRS: [string, string[]][] = [
  ['auto_pad', ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID', 'BOGUS', '']],
  ['mode', ['constant', 'reflect', 'edge', 'wrap', '']],
];
const OPS = ['Conv', 'Relu', 'MaxPool', 'AveragePool', 'Gemm', 'MatMul', 'Add', 'Mul', 'Div', 'Reshape', 'Transpose', 'Concat', 'Gather', 'Pad', 'Softmax', 'BatchNormalization', 'Flatten', 'Squeeze', 'Unsqueeze', 'ReduceMean', 'Clip', 'Shape', 'GlobalAveragePool', 'Identity', 'Pow', 'Expand', 'Slice'];
const DTYPES_ONNX = [1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13, 16, 8, 0, 99];
const A = onnx.AttributeProto.AttributeType;

/** Fills a TensorProto's data to match its dims and type (when small), so that the tensor decodes. */
function refill(t: onnx.ITensorProto, r: Rand): void {
  const dims = (t.dims ?? []).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  t.raw_data = new Uint8Array(0);
  t.float_data = [];
  t.int32_data = [];
  t.int64_data = [];
  t.double_data = [];
  t.uint64_data = [];
  if (!(n >= 0 && n <= 1 << 17)) {
    t.raw_data = new Uint8Array(r.range(0, 64)); // a size that cannot match: the decoder says so
    return;
  }
  const elem = ({ 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 } as Record<number, number>)[t.data_type ?? 0] ?? 4;
  const raw = new Uint8Array(n * elem);
  const small = r.chance(0.5);
  for (let i = 0; i < raw.length; i++) raw[i] = small ? (i % elem === 0 ? r.int(4) : 0) : r.int(256);
  t.raw_data = raw;
}

/** A random element, or undefined for an empty or missing list. */
function pickOr<T>(xs: T[] | null | undefined, r: Rand): T | undefined {
  return xs?.length ? r.pick(xs) : undefined;
}

function pickNode(m: onnx.ModelProto, r: Rand): onnx.INodeProto | undefined {
  const nodes = m.graph!.node ?? [];
  return nodes.length ? r.pick(nodes) : undefined;
}

function valueNames(m: onnx.ModelProto): string[] {
  const g = m.graph!;
  return [...(g.input ?? []).map((v) => v.name ?? ''), ...(g.initializer ?? []).map((t) => t.name ?? ''), ...(g.node ?? []).flatMap((n) => n.output ?? [])].filter(Boolean);
}

function dimsOfValueInfo(v: onnx.IValueInfoProto): onnx.TensorShapeProto.IDimension[] | undefined {
  return v.type?.tensor_type?.shape?.dim ?? undefined;
}

/** One structural mutation; returns what it did (for the failure report). */
const MODEL_MUTATIONS: Record<string, (m: onnx.ModelProto, r: Rand) => string> = {
  initDim(m, r) {
    const t = pickOr(m.graph!.initializer, r);
    if (!t) return 'no initializer';
    if (!t.dims?.length) return 'initDim: none';
    const i = r.int(t.dims.length);
    t.dims[i] = extremeInt(r);
    if (r.chance(0.6)) refill(t, r);
    return `initializer '${t.name}' dims[${i}] = ${t.dims[i]}`;
  },
  initRank(m, r) {
    const t = pickOr(m.graph!.initializer, r);
    if (!t) return 'no initializer';
    const dims = (t.dims ?? []).map(Number);
    if (r.chance(0.5) && dims.length) dims.splice(r.int(dims.length), 1);
    else dims.splice(r.int(dims.length + 1), 0, r.pick([1, 2, 0, 3]));
    t.dims = dims;
    refill(t, r);
    return `initializer '${t.name}' dims = [${dims}]`;
  },
  initDtype(m, r) {
    const t = pickOr(m.graph!.initializer, r);
    if (!t) return 'no initializer';
    t.data_type = r.pick(DTYPES_ONNX);
    if (r.chance(0.8)) refill(t, r);
    return `initializer '${t.name}' data_type = ${t.data_type}`;
  },
  initValues(m, r) {
    // Shape-like int64 tensors (Reshape targets, axes, pads, Gather indices) at extremes.
    const ints = (m.graph!.initializer ?? []).filter((t) => t.data_type === 7);
    if (!ints.length) return 'initValues: none';
    const t = r.pick(ints);
    const n = (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1);
    if (!(n >= 0 && n <= 64)) return 'initValues: large';
    const v = new BigInt64Array(n);
    for (let i = 0; i < n; i++) v[i] = BigInt(extremeInt(r));
    t.raw_data = new Uint8Array(v.buffer);
    t.int64_data = [];
    return `initializer '${t.name}' values = [${v.join(', ')}]`;
  },
  inputDim(m, r) {
    const v = pickOr(m.graph!.input, r);
    if (!v) return 'no input';
    const dims = dimsOfValueInfo(v);
    if (!dims?.length) return 'inputDim: none';
    const i = r.int(dims.length);
    dims[i] = new onnx.TensorShapeProto.Dimension(r.chance(0.85) ? { dim_value: extremeInt(r) } : { dim_param: r.pick(['batch', 'n', '']) });
    return `input '${v.name}' dim ${i} = ${JSON.stringify(dims[i]!.dim_value ?? dims[i]!.dim_param)}`;
  },
  inputRank(m, r) {
    const v = pickOr(m.graph!.input, r);
    if (!v) return 'no input';
    const dims = dimsOfValueInfo(v);
    if (!dims) return 'inputRank: none';
    if (r.chance(0.5) && dims.length) dims.splice(r.int(dims.length), 1);
    else dims.splice(r.int(dims.length + 1), 0, new onnx.TensorShapeProto.Dimension({ dim_value: r.pick([1, 2, 3]) }));
    return `input '${v.name}' rank ${dims.length}`;
  },
  inputDtype(m, r) {
    const v = pickOr(m.graph!.input, r);
    if (!v) return 'no input';
    if (!v.type?.tensor_type) return 'inputDtype: none';
    v.type.tensor_type.elem_type = r.pick(DTYPES_ONNX);
    return `input '${v.name}' elem_type ${v.type.tensor_type.elem_type}`;
  },
  attrInt(m, r) {
    const n = pickNode(m, r);
    if (!n) return 'attrInt: none';
    const name = r.pick(INT_ATTRS);
    const attrs = (n.attribute ?? []).filter((a) => a.name !== name);
    const list = r.chance(0.6);
    const len = r.pick([0, 1, 2, 3, 4, 6, 8]);
    const value = list ? Array.from({ length: len }, () => extremeInt(r)) : extremeInt(r);
    attrs.push(new onnx.AttributeProto(list ? { name, type: A.INTS, ints: value as number[] } : { name, type: A.INT, i: value as number }));
    n.attribute = attrs;
    return `${n.op_type} '${n.name}' ${name} = ${JSON.stringify(value)}`;
  },
  attrTweak(m, r) {
    // An existing list attribute with one entry pushed to an extreme (keeps its length: gets past the length checks).
    const n = pickNode(m, r);
    const lists = (n?.attribute ?? []).filter((a) => a.type === A.INTS && a.ints?.length);
    if (!n || !lists.length) return 'attrTweak: none';
    const a = r.pick(lists);
    const i = r.int(a.ints!.length);
    a.ints![i] = extremeInt(r);
    return `${n.op_type} '${n.name}' ${a.name}[${i}] = ${a.ints![i]}`;
  },
  attrOther(m, r) {
    const n = pickNode(m, r);
    if (!n) return 'attrOther: none';
    const attrs = [...(n.attribute ?? [])];
    const what = r.int(4);
    if (what === 0 && attrs.length) {
      const [gone] = attrs.splice(r.int(attrs.length), 1);
      n.attribute = attrs;
      return `${n.op_type} '${n.name}' drops ${gone!.name}`;
    }
    if (what === 1) {
      const name = r.pick(FLOAT_ATTRS);
      const f = r.pick(EXTREME_FLOATS);
      n.attribute = [...attrs.filter((a) => a.name !== name), new onnx.AttributeProto({ name, type: A.FLOAT, f })];
      return `${n.op_type} '${n.name}' ${name} = ${f}`;
    }
    if (what === 2) {
      const [name, values] = r.pick(STRING_ATTRS);
      const s = r.pick(values);
      n.attribute = [...attrs.filter((a) => a.name !== name), new onnx.AttributeProto({ name, type: A.STRING, s: new TextEncoder().encode(s) })];
      return `${n.op_type} '${n.name}' ${name} = '${s}'`;
    }
    // An attribute of the wrong kind (a string where an int list is read, a float for an int…).
    if (!attrs.length) return 'attrOther: none';
    const a = r.pick(attrs);
    const type = r.pick([A.INT, A.INTS, A.FLOAT, A.FLOATS, A.STRING, A.TENSOR, A.GRAPH]);
    const repl = new onnx.AttributeProto({ name: a.name, type });
    if (type === A.TENSOR && r.chance(0.5)) repl.t = new onnx.TensorProto({ dims: [2], data_type: 1, float_data: [1, 2] });
    if (type === A.FLOATS) repl.floats = [r.pick(EXTREME_FLOATS)];
    n.attribute = attrs.map((x) => (x === a ? repl : x));
    return `${n.op_type} '${n.name}' ${a.name} as type ${type}`;
  },
  dropNode(m, r) {
    const nodes = m.graph!.node ?? [];
    if (!nodes.length) return 'dropNode: none';
    const [gone] = nodes.splice(r.int(nodes.length), 1);
    return `drop ${gone!.op_type} '${gone!.name}'`;
  },
  duplicateNode(m, r) {
    const n = pickNode(m, r);
    if (!n) return 'duplicateNode: none';
    const copy = onnx.NodeProto.decode(onnx.NodeProto.encode(n).finish());
    if (r.chance(0.5)) copy.output = (copy.output ?? []).map((o) => `${o}_dup`);
    m.graph!.node!.splice(r.int(m.graph!.node!.length + 1), 0, copy);
    return `duplicate ${n.op_type} '${n.name}'${copy.output?.[0]?.endsWith('_dup') ? ' (renamed outputs)' : ''}`;
  },
  rewire(m, r) {
    // An input from any value, including a later node's output: cycles and type clashes.
    const n = pickNode(m, r);
    const names = valueNames(m);
    if (!n || !n.input?.length || !names.length) return 'rewire: none';
    const i = r.int(n.input.length);
    n.input[i] = r.chance(0.9) ? r.pick(names) : r.pick(['', 'nowhere', '__proto__']);
    return `${n.op_type} '${n.name}' input ${i} = '${n.input[i]}'`;
  },
  inputsCount(m, r) {
    const n = pickNode(m, r);
    if (!n) return 'inputsCount: none';
    const ins = [...(n.input ?? [])];
    if (r.chance(0.5) && ins.length) ins.pop();
    else ins.push(r.pick([...valueNames(m), '']));
    n.input = ins;
    return `${n.op_type} '${n.name}' has ${ins.length} inputs`;
  },
  opType(m, r) {
    const n = pickNode(m, r);
    if (!n) return 'opType: none';
    const before = n.op_type;
    n.op_type = r.pick(OPS);
    return `'${n.name}' ${before} → ${n.op_type}`;
  },
  opset(m, r) {
    const v = r.pick([1, 5, 7, 9, 10, 11, 12, 13, 14, 17, 18, 21, 22, 23, 99]);
    m.opset_import = [new onnx.OperatorSetIdProto({ domain: '', version: v })];
    return `opset ${v}`;
  },
  outputs(m, r) {
    const g = m.graph!;
    const names = valueNames(m);
    const outs = g.output ?? [];
    if (r.chance(0.5) && outs.length) {
      outs[r.int(outs.length)]!.name = r.pick(names);
      return 'output renamed';
    }
    outs.push(new onnx.ValueInfoProto({ name: r.pick(names) }));
    g.output = outs;
    return 'output added';
  },
};
export const MODEL_MUTATION_NAMES = Object.keys(MODEL_MUTATIONS);

/** A mutated model: a base, then 1–3 mutations (`only` restricts them to some kinds). */
export function mutateModel(seed: number, only: readonly string[] = MODEL_MUTATION_NAMES, baseNames?: readonly string[]): { bytes: Uint8Array; note: string } {
  const r = new Rand(seed);
  const all = modelBases();
  // The fixture models are 10–20× slower to run than the small graphs: picked less often.
  const names = baseNames ?? [...Object.keys(all).filter((k) => k !== 'eca_mini'), ...(r.chance(0.15) ? ['eca_mini'] : [])];
  const base = r.pick(names);
  const m = onnx.ModelProto.decode(all[base]!);
  const notes = [base];
  const count = r.range(1, 3);
  for (let k = 0; k < count; k++) notes.push(MODEL_MUTATIONS[r.pick(only)]!(m, r));
  return { bytes: bytesOf(m), note: notes.join('; ') };
}

/** Feeds for a loaded model from its declared inputs (symbolic dims 1), or null when the declared input is too large to make. */
function feedsFor(model: ReturnType<typeof loadOnnxSync>): Record<string, Tensor> | null {
  const feeds: Record<string, Tensor> = Object.create(null);
  for (const i of model.inputs) {
    const shape = (i.shape ?? [1]).map((d) => (typeof d === 'number' ? d : 1));
    // The harness's own choice: it does not feed millions of elements (the model's declared dims may ask for them).
    if (shape.some((d) => d < 0) || shape.reduce((a, b) => a * b, 1) > 1 << 20) return null;
    feeds[i.name] = i.dtype === 'float32' ? Tensor.randn(shape, { seed: 3 }) : Tensor.zeros(shape, i.dtype ?? 'float32');
  }
  return feeds;
}

/**
 * Whether two runs' outputs agree: same names, shapes and dtypes; values equal, or within
 * 1e-4 + 1e-3·|b| (the two runs may take the WebAssembly and the TypeScript kernel of an op,
 * which sum in different orders: a few ulp per op over graphs of at most a dozen ops), NaN where
 * the other is NaN.
 */
function disagreement(a: Record<string, Tensor>, b: Record<string, Tensor>): string | null {
  for (const k of Object.keys(b)) {
    const x = a[k];
    const y = b[k]!;
    if (!x || x.dtype !== y.dtype || x.shape.join() !== y.shape.join()) return `output '${k}': ${x?.dtype} [${x?.shape}] vs ${y.dtype} [${y.shape}]`;
    const p = x.dataSync();
    const q = y.dataSync();
    for (let i = 0; i < q.length; i++) {
      const u = Number(p[i]);
      const v = Number(q[i]);
      if (u === v || (Number.isNaN(u) && Number.isNaN(v))) continue;
      if (!(Math.abs(u - v) <= 1e-4 + 1e-3 * Math.abs(v))) return `output '${k}' value ${i}: ${u} vs ${v}`;
    }
  }
  return null;
}

/**
 * Loads and runs the model at the default budgets: success (outputs are tensors) or a typed error.
 * With `differential`, a successful run is repeated with an onNode hook — which keeps every
 * intermediate in its own plain array instead of reused kernel memory — and the two must agree.
 */
export async function runModelCase(bytes: Uint8Array, opts: { differential?: boolean } = {}): Promise<Outcome> {
  return typed(() => {
    const model = loadOnnxSync(bytes);
    const feeds = feedsFor(model);
    if (!feeds) return;
    const out = model.runSync(feeds);
    for (const o of model.outputs) {
      const t = out[o.name];
      if (!(t instanceof Tensor)) throw new FuzzFailure(`output '${o.name}' is not a Tensor`);
      if (t.size !== t.shape.reduce((a, b) => a * b, 1) || t.dataSync().length !== t.size) throw new FuzzFailure(`output '${o.name}' of shape [${t.shape}] holds ${t.dataSync().length} values`);
    }
    if (opts.differential) {
      const plain = model.runSync(feeds, { onNode: () => {} });
      const why = disagreement(out, plain);
      if (why) throw new FuzzFailure(`the run in kernel memory and the run with plain arrays disagree: ${why}`);
      // The graph as written (no BN folding, no fused activations) computes the same.
      let asWritten: Record<string, Tensor> | undefined;
      try {
        asWritten = loadOnnxSync(bytes, { optimize: false }).runSync(feeds, { onNode: () => {} });
      } catch (e) {
        if (!(e instanceof LightconvError)) throw e;
        throw new FuzzFailure(`the optimized graph runs, the graph as written fails: ${e.message}`);
      }
      const why2 = disagreement(plain, asWritten);
      if (why2) throw new FuzzFailure(`the optimized graph and the graph as written disagree: ${why2}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Images

function pngOf(width: number, height: number, colorType: 0 | 2 | 6, r: Rand): Uint8Array {
  const png = new PNG({ width, height, colorType, inputColorType: 6, bitDepth: 8 });
  for (let i = 0; i < png.data.length; i++) png.data[i] = r.int(256);
  return new Uint8Array(PNG.sync.write(png, { colorType }));
}

function jpegOf(width: number, height: number, r: Rand): Uint8Array {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = r.int(256);
  return new Uint8Array(jpeg.encode({ data, width, height }, 80).data);
}

let imageBaseCache: Record<string, Uint8Array> | undefined;
export function imageBases(): Record<string, Uint8Array> {
  if (imageBaseCache) return imageBaseCache;
  const r = new Rand(1);
  imageBaseCache = {
    png_rgb: pngOf(9, 7, 2, r),
    png_rgba: pngOf(4, 5, 6, r),
    png_gray: pngOf(6, 6, 0, r),
    png_palette: fixture('tests/fixtures/palette_trns.png'),
    jpeg_small: jpegOf(12, 10, r),
    jpeg_gray: fixture('tests/fixtures/gray.jpg'),
    dicom_mr: fixture('tests/fixtures/dicom/MR_small.dcm'),
    dicom_rle: fixture('tests/fixtures/dicom/MR_small_RLE.dcm'),
    dicom_rgb: fixture('tests/fixtures/dicom/SC_rgb_small_odd.dcm'),
  };
  return imageBaseCache;
}

interface Chunk {
  type: string;
  data: Uint8Array;
}

function pngChunks(b: Uint8Array): Chunk[] {
  const out: Chunk[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 8; at + 12 <= b.length; ) {
    const len = dv.getUint32(at);
    const type = String.fromCharCode(...b.subarray(at + 4, at + 8));
    out.push({ type, data: b.slice(at + 8, Math.min(b.length, at + 8 + len)) });
    at += 12 + len;
  }
  return out;
}

/** PNG bytes from chunks, every CRC correct (so the decoder looks past the framing). */
function pngFrom(chunks: readonly Chunk[]): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const c of chunks) {
    const head = new Uint8Array(8);
    new DataView(head.buffer).setUint32(0, c.data.length);
    head.set([...c.type].map((ch) => ch.charCodeAt(0) & 0xff), 4);
    const body = new Uint8Array(4 + c.data.length);
    body.set(head.subarray(4), 0);
    body.set(c.data, 4);
    const crc = new Uint8Array(4);
    new DataView(crc.buffer).setUint32(0, crc32(body) >>> 0);
    parts.push(head, c.data, crc);
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Image dimensions that are bombs (gigapixels), empty, or odd. */
const IMAGE_DIMS = [0, 1, 2, 3, 255, 4097, 17000, 30000, 65535, 65536, 2 ** 31 - 1, 2 ** 32 - 1];

/** The mutated bytes, what was done, and (when success would be wrong) why the decoder must refuse them. */
type ImageMutation = (b: Uint8Array, r: Rand) => [Uint8Array, string] | [Uint8Array, string, string];

const PNG_MUTATIONS: Record<string, ImageMutation> = {
  pngDims(b, r) {
    // Declared width × height at extremes (gigapixel bombs, zero), CRC fixed.
    const chunks = pngChunks(b);
    const ihdr = chunks.find((c) => c.type === 'IHDR')!;
    const dv = new DataView(ihdr.data.buffer, ihdr.data.byteOffset);
    const area = dv.getUint32(0) * dv.getUint32(4);
    if (r.chance(0.7)) dv.setUint32(0, r.pick(IMAGE_DIMS) >>> 0);
    if (r.chance(0.7)) dv.setUint32(4, r.pick(IMAGE_DIMS) >>> 0);
    const note = `PNG IHDR ${dv.getUint32(0)}×${dv.getUint32(4)}`;
    // More pixels than the compressed data holds: truncated pixel data.
    return dv.getUint32(0) * dv.getUint32(4) > area ? [pngFrom(chunks), note, 'its IDAT holds fewer pixels than IHDR declares'] : [pngFrom(chunks), note];
  },
  pngHeader(b, r) {
    const chunks = pngChunks(b);
    const ihdr = chunks.find((c) => c.type === 'IHDR')!;
    const i = r.pick([8, 9, 10, 11, 12]); // bit depth, colour type, compression, filter, interlace
    ihdr.data[i] = r.pick([0, 1, 2, 3, 4, 6, 7, 8, 16, 255]);
    return [pngFrom(chunks), `PNG IHDR byte ${i} = ${ihdr.data[i]}`];
  },
  pngIdatCut(b, r) {
    // The compressed pixels cut short (CRC fixed): a truncated image must not come back as black pixels.
    const chunks = pngChunks(b);
    const idat = chunks.find((c) => c.type === 'IDAT')!;
    idat.data = idat.data.slice(0, r.int(idat.data.length));
    return [pngFrom(chunks), `PNG IDAT cut to ${idat.data.length} bytes (CRC fixed)`];
  },
  pngIdatBytes(b, r) {
    const chunks = pngChunks(b);
    const idat = chunks.find((c) => c.type === 'IDAT')!;
    for (let k = 0; k < 4; k++) idat.data[r.int(idat.data.length)] = r.int(256);
    return [pngFrom(chunks), 'PNG IDAT bytes changed (CRC fixed)'];
  },
  pngChunks(b, r) {
    const chunks = pngChunks(b);
    const i = r.int(chunks.length);
    const c = chunks[i]!;
    if (r.chance(0.5)) chunks.splice(i, 1);
    else chunks.splice(r.int(chunks.length + 1), 0, { type: c.type, data: c.data.slice() });
    return [pngFrom(chunks), `PNG chunk ${c.type} dropped or duplicated`];
  },
  pngBytes(b, r) {
    // Any chunk but IHDR (its fields are pngDims' and pngHeader's).
    const chunks = pngChunks(b);
    const c = r.pick(chunks.filter((x) => x.type !== 'IHDR'));
    for (let k = 0; k < 4 && c.data.length; k++) c.data[r.int(c.data.length)] = r.int(256);
    return [pngFrom(chunks), `PNG ${c.type} bytes changed (CRC fixed)`];
  },
};

/** Start of frame: FFC0..FFC3 (not C4 DHT, C8, CC): length, precision, height, width, components. */
function jpegSof(b: Uint8Array): number {
  for (let i = 2; i + 9 < b.length; i++) if (b[i] === 0xff && b[i + 1]! >= 0xc0 && b[i + 1]! <= 0xc3) return i;
  return -1;
}

const JPEG_MUTATIONS: Record<string, ImageMutation> = {
  jpegDims(b, r) {
    const out = b.slice();
    const sof = jpegSof(out);
    const dv = new DataView(out.buffer);
    const area = dv.getUint16(sof + 5) * dv.getUint16(sof + 7);
    if (r.chance(0.7)) dv.setUint16(sof + 5, r.pick(IMAGE_DIMS) & 0xffff);
    if (r.chance(0.7)) dv.setUint16(sof + 7, r.pick([...IMAGE_DIMS, 23000]) & 0xffff);
    const note = `JPEG SOF ${dv.getUint16(sof + 7)}×${dv.getUint16(sof + 5)}`;
    return dv.getUint16(sof + 5) * dv.getUint16(sof + 7) > area ? [out, note, 'its scan holds fewer blocks than the frame declares'] : [out, note];
  },
  jpegHeader(b, r) {
    const out = b.slice();
    const sof = jpegSof(out);
    const i = sof + r.pick([4, 9, 10, 11, 12, 13]); // precision, component count, ids, sampling, table
    out[i] = r.pick([0, 1, 3, 4, 8, 12, 0x11, 0x22, 0x44, 0xff]);
    return [out, `JPEG SOF byte ${i - sof} = ${out[i]}`];
  },
  jpegTruncated(b, r) {
    // Cut in the entropy-coded data (after the start of scan).
    let sos = b.length - 2;
    for (let i = 2; i + 1 < b.length; i++) if (b[i] === 0xff && b[i + 1] === 0xda) sos = i;
    const cut = r.range(Math.min(sos, b.length - 1), b.length - 1);
    return [b.slice(0, cut), `JPEG truncated at ${cut} of ${b.length}`];
  },
};

/** DICOM: the pixel-module elements (rows, columns, bits, samples, planar config, pixel data length). */
function mutateDicomTags(b: Uint8Array, r: Rand): [Uint8Array, string] {
  const out = b.slice();
  const tags: [number, number, string][] = [
    [0x0028, 0x0010, 'Rows'],
    [0x0028, 0x0011, 'Columns'],
    [0x0028, 0x0100, 'BitsAllocated'],
    [0x0028, 0x0101, 'BitsStored'],
    [0x0028, 0x0002, 'SamplesPerPixel'],
    [0x0028, 0x0006, 'PlanarConfiguration'],
    [0x0028, 0x0103, 'PixelRepresentation'],
    [0x0028, 0x0008, 'NumberOfFrames'],
  ];
  {
    const [g, e, name] = r.pick(tags);
    // Explicit VR little endian: group, element, 'US', length (2 bytes), value.
    for (let i = 132; i + 10 < out.length; i++) {
      if (out[i] === (g & 0xff) && out[i + 1] === g >> 8 && out[i + 2] === (e & 0xff) && out[i + 3] === e >> 8) {
        const explicit = out[i + 4]! >= 0x41 && out[i + 4]! <= 0x5a;
        const at = i + (explicit ? 8 : 8);
        const v = r.pick([0, 1, 2, 3, 8, 12, 16, 17, 32, 64, 255, 4097, 30000, 65535]);
        if (name === 'NumberOfFrames') {
          const s = String(r.pick([0, 2, 1000, 99999999]));
          for (let k = 0; k < Math.min(s.length, 2); k++) out[at + k] = s.charCodeAt(k);
        } else {
          out[at] = v & 0xff;
          out[at + 1] = v >> 8;
        }
        return [out, `DICOM ${name} = ${name === 'NumberOfFrames' ? 'text' : v}`];
      }
    }
  }
  return bytesMutation(b, r);
}

/** Where the DICOM pixel data element (7FE0,0010) starts, or -1. */
function dicomPixelData(b: Uint8Array): number {
  for (let i = 132; i + 12 < b.length; i++) if (b[i] === 0xe0 && b[i + 1] === 0x7f && b[i + 2] === 0x10 && b[i + 3] === 0x00) return i;
  return -1;
}

/** The file cut inside its pixel data (before its last byte): a truncated image must be refused. */
function mutateDicomCut(b: Uint8Array, r: Rand): [Uint8Array, string] {
  const i = dicomPixelData(b);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const explicit = (b[i + 4] === 0x4f && (b[i + 5] === 0x42 || b[i + 5] === 0x57)) || (b[i + 4] === 0x55 && b[i + 5] === 0x4e); // OB, OW, UN
  const len = dv.getUint32(i + (explicit ? 8 : 4), true);
  const start = i + (explicit ? 12 : 8);
  let end = start + len; // native: the value; the last byte may be the pad of an odd length
  if (len === 0xffffffff) {
    // Encapsulated: items (FFFE,E000) up to the sequence delimiter (FFFE,E0DD); elements may follow it.
    let at = start;
    while (at + 8 <= b.length && !(dv.getUint16(at, true) === 0xfffe && dv.getUint16(at + 2, true) === 0xe0dd)) at += 8 + dv.getUint32(at + 4, true);
    end = at;
  }
  const cut = r.range(start, Math.max(start, end - 2));
  return [b.slice(0, cut), `DICOM cut at ${cut}, inside the pixel data (bytes ${start}–${end})`];
}

/** DICOM pixel data (7FE0,0010): its length field. */
function mutateDicomPixels(b: Uint8Array, r: Rand): [Uint8Array, string] {
  const out = b.slice();
  for (let i = 132; i + 12 < out.length; i++) {
    if (out[i] === 0xe0 && out[i + 1] === 0x7f && out[i + 2] === 0x10 && out[i + 3] === 0x00) {
      const dv = new DataView(out.buffer);
      const explicitOB = out[i + 4] === 0x4f;
      dv.setUint32(i + (explicitOB ? 8 : 4), r.pick([0, 1, 3, 0xfffffffe, 0x7fffffff, 100]), true);
      return [out, 'DICOM pixel data length changed'];
    }
  }
  return bytesMutation(b, r);
}

/** Plain byte edits: flips, truncation, a splice. */
function bytesMutation(b: Uint8Array, r: Rand): [Uint8Array, string] {
  const what = r.int(3);
  if (what === 0) {
    const out = b.slice();
    const n = r.range(1, 8);
    for (let k = 0; k < n; k++) out[r.int(out.length)] = r.int(256);
    return [out, `${n} bytes changed`];
  }
  if (what === 1) {
    const cut = r.int(b.length);
    return [b.slice(0, cut), `truncated to ${cut}`];
  }
  const at = r.int(b.length);
  const ins = Uint8Array.from({ length: r.range(1, 16) }, () => r.int(256));
  return [new Uint8Array([...b.subarray(0, at), ...ins, ...b.subarray(at)]), `${ins.length} bytes inserted at ${at}`];
}

const IMAGE_MUTATIONS: Record<string, { format: 'png' | 'jpeg' | 'dicom' | 'any'; run: ImageMutation; truncates?: true }> = {
  ...Object.fromEntries(Object.entries(PNG_MUTATIONS).map(([k, run]) => [k, { format: 'png' as const, run }])),
  ...Object.fromEntries(Object.entries(JPEG_MUTATIONS).map(([k, run]) => [k, { format: 'jpeg' as const, run }])),
  dicomTags: { format: 'dicom', run: mutateDicomTags },
  dicomPixels: { format: 'dicom', run: mutateDicomPixels },
  dicomCut: { format: 'dicom', run: mutateDicomCut, truncates: true },
  bytes: { format: 'any', run: bytesMutation },
};
// Truncated pixel data must be refused, not decoded into black pixels.
IMAGE_MUTATIONS.pngIdatCut!.truncates = true;
IMAGE_MUTATIONS.jpegTruncated!.truncates = true;
export const IMAGE_MUTATION_NAMES = Object.keys(IMAGE_MUTATIONS);

/** A mutated PNG, JPEG or DICOM file: a mutation kind (from `only`), then a base of its format. */
export function mutateImage(seed: number, only: readonly string[] = IMAGE_MUTATION_NAMES): { bytes: Uint8Array; name: string; note: string; mustFail?: string } {
  const r = new Rand(seed);
  const bases = imageBases();
  const kind = r.pick(only);
  const { format, run, truncates } = IMAGE_MUTATIONS[kind]!;
  const base = r.pick(Object.keys(bases).filter((k) => format === 'any' || k.startsWith(format)));
  const [bytes, note, why] = run(bases[base]!, r);
  const ext = base.startsWith('png') ? 'png' : base.startsWith('jpeg') ? 'jpg' : 'dcm';
  return { bytes, name: `${base}.${ext}`, note: `${base} ${kind}: ${note}`, ...(truncates || why ? { mustFail: why ?? 'its pixel data is truncated' } : {}) };
}

/** Decodes an image: an RGB image whose buffer matches its size, or a typed error. */
export async function runImageCase(bytes: Uint8Array, name: string, mustFail?: string): Promise<Outcome> {
  return typed(() => {
    const img = decodeAnyImage(bytes, name);
    if (mustFail) throw new FuzzFailure(`decoded to a ${img.width}×${img.height} image although ${mustFail}`);
    if (!(Number.isSafeInteger(img.width) && Number.isSafeInteger(img.height) && img.width > 0 && img.height > 0)) throw new FuzzFailure(`decoded to ${img.width}×${img.height}`);
    if (img.rgb.length !== img.width * img.height * 3) throw new FuzzFailure(`${img.width}×${img.height} image with ${img.rgb.length} bytes`);
  });
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

class TinyNet {
  readonly fc = new Linear(3, 2);
  readonly bn = new BatchNorm2d(2);
  namedParameters() {
    return [...this.fc.namedParameters().map(([n, t]) => [`fc.${n}`, t] as [string, Tensor]), ...this.bn.namedParameters().map(([n, t]) => [`bn.${n}`, t] as [string, Tensor])];
  }
  namedBuffers() {
    return this.bn.namedBuffers().map(([n, t]) => [`bn.${n}`, t] as [string, Tensor]);
  }
}

/** A model and an Adam optimizer with state (after one step), and their checkpoint bytes. */
export function checkpointTarget(): { model: TinyNet; optimizer: Adam; bytes: Uint8Array } {
  const model = new TinyNet();
  const params = model.namedParameters().map(([, t]) => t);
  const optimizer = new Adam(params, { lr: 0.01 });
  for (const p of params) p.grad = Tensor.ones(p.shape);
  optimizer.step();
  return { model, optimizer, bytes: encodeCheckpoint(model, optimizer, { epoch: 3 }) };
}

interface CkptParts {
  magic: string;
  header: Record<string, unknown>;
  data: Uint8Array;
}

function parseCkpt(b: Uint8Array): CkptParts {
  const magic = new TextDecoder().decode(b.subarray(0, 8));
  const at = magic === 'LCCKPT01' ? 12 : 16;
  const n = new DataView(b.buffer, b.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(b.subarray(at, at + n))) as Record<string, unknown>;
  return { magic, header, data: b.slice(Math.ceil((at + n) / 8) * 8) };
}

/** Checkpoint bytes from parts, with the length prefix, padding, dataBytes (unless kept) and checksum right. */
function ckptFrom(p: CkptParts, opts: { keepDataBytes?: boolean; headerText?: string } = {}): Uint8Array {
  if (!opts.keepDataBytes && p.header && typeof p.header === 'object') p.header.dataBytes = p.data.length;
  const text = new TextEncoder().encode(opts.headerText ?? JSON.stringify(p.header));
  const at = p.magic === 'LCCKPT01' ? 12 : 16;
  const start = Math.ceil((at + text.length) / 8) * 8;
  const out = new Uint8Array(start + p.data.length);
  out.set(new TextEncoder().encode(p.magic), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, text.length, true);
  out.set(text, at);
  out.set(p.data, start);
  if (at === 16) dv.setUint32(12, crc32(out.subarray(16)) >>> 0, true);
  return out;
}

const HOSTILE_VALUES: unknown[] = [null, undefined, -1, -8, 0, 1, 3, 1.5, NaN, 1e300, 2 ** 53, '', 'x', '__proto__', 'constructor', [], {}, [1], { length: 2 }, true];
const HOSTILE_DTYPES = ['float32', 'float64', 'int64', 'uint8', 'bool', 'float16', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'Float32Array'];
const HOSTILE_NAMES = ['param/fc.weight', 'param/fc.bias', 'buffer/bn.running_mean', 'optim/fc.weight/exp_avg', 'optim/fc.weight/__proto__', 'optim/__proto__/exp_avg', 'optim//x', 'param/__proto__', 'param/constructor', '__proto__', ''];

const CKPT_MUTATIONS: Record<string, (p: CkptParts, r: Rand) => [Uint8Array, string]> = {
  tensorField(p, r) {
    const ts = p.header.tensors as Record<string, unknown>[];
    const t = r.pick(ts);
    const field = r.pick(['name', 'dtype', 'shape', 'offset', 'bytes']);
    let v: unknown;
    if (field === 'dtype') v = r.pick(HOSTILE_DTYPES);
    else if (field === 'name') v = r.pick(HOSTILE_NAMES);
    else if (field === 'shape') v = r.chance(0.5) ? Array.from({ length: r.range(0, 4) }, () => r.pick([0, 1, 2, 3, 6, -1, 2 ** 31, 1.5])) : r.pick(HOSTILE_VALUES);
    else v = r.chance(0.6) ? extremeInt(r) : r.pick(HOSTILE_VALUES);
    t[field] = v;
    return [ckptFrom(p), `tensor '${String(ts.indexOf(t))}' ${field} = ${JSON.stringify(v)}`];
  },
  tensorList(p, r) {
    const ts = p.header.tensors as unknown[];
    const what = r.int(4);
    if (what === 0) ts.splice(r.int(ts.length), 1);
    else if (what === 1) ts.push(structuredClone(r.pick(ts)));
    else if (what === 2) ts[r.int(ts.length)] = r.pick(HOSTILE_VALUES);
    else p.header.tensors = r.pick(HOSTILE_VALUES);
    return [ckptFrom(p), `tensors list edit ${what}`];
  },
  headerField(p, r) {
    const field = r.pick(['format', 'version', 'dataBytes', 'meta', 'tensors', 'optimizer']);
    if (r.chance(0.3)) delete p.header[field];
    else p.header[field] = r.pick(HOSTILE_VALUES);
    return [ckptFrom(p, { keepDataBytes: field === 'dataBytes' }), `header ${field} = ${JSON.stringify(p.header[field])}`];
  },
  headerWhole(p, r) {
    const text = r.pick(['null', '[]', '1', '"x"', '{}', '{"__proto__":{"polluted":1}}', '{"version":2,"tensors":null}', JSON.stringify(p.header).slice(0, r.int(40)), '\u0000']);
    return [ckptFrom(p, { headerText: text }), `header text ${JSON.stringify(text.slice(0, 40))}`];
  },
  optimizer(p, r) {
    const o = p.header.optimizer as Record<string, unknown> | null;
    if (!o) return [ckptFrom(p), 'no optimizer'];
    const field = r.pick(['stepCount', 'groups', 'scalars']);
    if (field === 'scalars' && r.chance(0.6)) {
      const sc = o.scalars as Record<string, Record<string, unknown>>;
      const key = r.pick([...Object.keys(sc), '__proto__', 'constructor', 'nope']);
      sc[key] = r.chance(0.5) ? { [r.pick(['step', '__proto__', 'constructor', 'exp_avg'])]: r.pick(HOSTILE_VALUES) } : (r.pick(HOSTILE_VALUES) as Record<string, unknown>);
    } else if (field === 'groups' && r.chance(0.5)) {
      o.groups = [{ lr: r.pick(HOSTILE_VALUES), initialLr: 0.01 }];
    } else o[field] = r.pick(HOSTILE_VALUES);
    return [ckptFrom(p), `optimizer ${field} edited`];
  },
  stateShape(p, r) {
    // Adam moments whose shape is not their parameter's (with data to match: the file itself is consistent).
    const ts = p.header.tensors as { name: string; dtype: string; shape: number[]; offset: number; bytes: number }[];
    const states = ts.filter((t) => t.name.startsWith('optim/'));
    if (!states.length) return [ckptFrom(p), 'no state'];
    const t = r.pick(states);
    const n = t.shape.reduce((a, b) => a * b, 1);
    t.shape = r.pick([[n], [1, n], n > 1 ? [n - 1] : [2], []]);
    const size = t.shape.reduce((a, b) => a * b, 1) * 4;
    t.bytes = size;
    if (t.offset + size > p.data.length) {
      t.offset = p.data.length;
      p.data = new Uint8Array([...p.data, ...new Uint8Array(Math.ceil(size / 8) * 8)]);
    }
    return [ckptFrom(p), `state '${t.name}' shape [${t.shape}]`];
  },
  data(p, r) {
    const what = r.int(3);
    if (what === 0) p.data = p.data.slice(0, r.int(p.data.length));
    else if (what === 1) for (let k = 0; k < 4; k++) p.data[r.int(p.data.length)] = r.pick([0x7f, 0xff, 0x80, 0]); // NaN/∞ bit patterns
    else p.data = new Uint8Array([...p.data, ...new Uint8Array(r.pick([1, 8, 64]))]);
    return [ckptFrom(p, { keepDataBytes: what !== 1 && r.chance(0.5) }), `data edit ${what}`];
  },
  rawBytes(p, r) {
    return bytesMutation(ckptFrom(p), r);
  },
};
export const CKPT_MUTATION_NAMES = Object.keys(CKPT_MUTATIONS);

let ckptBase: Uint8Array | undefined;
export function mutateCheckpoint(seed: number, only: readonly string[] = CKPT_MUTATION_NAMES): { bytes: Uint8Array; note: string } {
  const r = new Rand(seed);
  ckptBase ??= checkpointTarget().bytes;
  const parts = parseCkpt(ckptBase);
  if (r.chance(0.1)) parts.magic = r.pick(['LCCKPT01', 'LCCKPT03', 'LCCKPT0\u0000']);
  const kind = r.pick(only);
  const [bytes, note] = CKPT_MUTATIONS[kind]!(parts, r);
  return { bytes, note: `${parts.magic} ${kind}: ${note}` };
}

/** A snapshot of every value of the model and the optimizer's state, to check "all or nothing". */
function snapshot(model: TinyNet, optimizer: Adam): string {
  const vals = [...model.namedParameters(), ...model.namedBuffers()].map(([n, t]) => `${n}:${[...t.dataSync()].join(',')}`);
  const st = [...optimizer.state.values()].map((s) => Object.entries(s).map(([k, v]) => `${k}=${v instanceof Tensor ? [...v.dataSync()].join(',') : v}`).join(';'));
  return `${vals.join('|')}#${optimizer.stepCount}#${optimizer.groups.map((g) => g.options.lr).join(',')}#${st.join('|')}`;
}

/**
 * Writes the bytes to `path` and loads them into a fresh model and optimizer: success, or a typed
 * error that left both exactly as they were (validation before any write).
 */
export async function runCheckpointCase(bytes: Uint8Array, path: string | null): Promise<Outcome> {
  // Without a path: the in-memory decoder only (it validates the whole file; loading adds the model checks).
  if (path === null) return typed(() => decodeCheckpoint(bytes));
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, bytes);
  const { model, optimizer } = checkpointTarget();
  const before = snapshot(model, optimizer);
  const outcome = await typed(() => loadCheckpoint(path, model, { optimizer }));
  if (outcome === 'typed-error' && snapshot(model, optimizer) !== before) throw new FuzzFailure('a failed load changed the model or the optimizer');
  if (outcome === 'ok') {
    for (const [n, t] of model.namedParameters()) if (!(t instanceof Tensor) || t.dataSync().length !== t.size) throw new FuzzFailure(`parameter ${n} damaged`);
    if (({} as Record<string, unknown>).polluted !== undefined) throw new FuzzFailure('Object.prototype was polluted');
  }
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// One entry point for the test and the script

export type Generator = 'model' | 'image' | 'checkpoint';

export interface FuzzCase {
  gen: Generator;
  seed: number;
  note: string;
  bytes: Uint8Array;
  /** File name for the image decoder (its extension decides DICOM sniffing). */
  name?: string;
  /** Why this case must end in a typed error (success would be a wrong answer). */
  mustFail?: string;
}

export interface Restrict {
  model?: readonly string[];
  image?: readonly string[];
  checkpoint?: readonly string[];
}

export function makeCase(gen: Generator, seed: number, only: Restrict = {}): FuzzCase {
  if (gen === 'model') return { gen, seed, ...mutateModel(seed, only.model) };
  if (gen === 'image') return { gen, seed, ...mutateImage(seed, only.image) };
  return { gen, seed, ...mutateCheckpoint(seed, only.checkpoint) };
}

/** Runs a case; `scratch` is a file for checkpoint cases to be loaded from (null: decode the bytes only). */
export function runCase(c: FuzzCase, scratch: string | null, opts: { differential?: boolean } = {}): Promise<Outcome> {
  if (c.gen === 'model') return runModelCase(c.bytes, opts);
  if (c.gen === 'image') return runImageCase(c.bytes, c.name ?? 'image', c.mustFail);
  return runCheckpointCase(c.bytes, scratch);
}

/**
 * Sub-generators left out of the default test run (none at present). `npm run fuzz` also runs the
 * differential check of model runs (kernel memory vs plain arrays vs unoptimised), which still
 * finds models with NaN or infinite weights where the WebAssembly and TypeScript paths disagree
 * (a fused depthwise conv finite where the unfused one is NaN): kept out of the default run.
 */
export const LONG_RUN_ONLY: Required<Restrict> = {
  model: [],
  image: [],
  checkpoint: [],
};

/** The sub-generators of the default test run: all but LONG_RUN_ONLY. */
export function defaultRestrict(): Restrict {
  return {
    model: MODEL_MUTATION_NAMES.filter((k) => !LONG_RUN_ONLY.model.includes(k)),
    image: IMAGE_MUTATION_NAMES.filter((k) => !LONG_RUN_ONLY.image.includes(k)),
    checkpoint: CKPT_MUTATION_NAMES.filter((k) => !LONG_RUN_ONLY.checkpoint.includes(k)),
  };
}

/** Where checkpoint cases are written to be loaded: memory-backed when the machine has it. */
export function scratchDir(): string {
  try {
    if (statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    /* no /dev/shm: the temp folder */
  }
  return tmpdir();
}
