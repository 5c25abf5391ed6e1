import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LightconvError, OnnxError, ResourceLimitError, ValueError } from '../../src/core/errors.js';
import { getLimits } from '../../src/core/limits.js';
import { cpuBackend, referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { loadImageTensor } from '../../src/data/image.js';
import { type GpuBackend, gpu } from '../../src/gpu.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { type NodeSpec, modelBytes, node } from '../onnx/build.js';

/**
 * Hostile cases beyond the per-class suites (tests/core/budget.test.ts, tests/onnx/strict_decode.test.ts,
 * tests/kernels/special_values.test.ts, tests/data/bombs.test.ts): whole ONNX graphs of ops that
 * grow their output from small inputs, special values through ops outside the PyTorch fixture's
 * table, attributes that must be refused at load, and a decode error that must name its file.
 */

const RSS_SLACK = 200 * 1024 ** 2;
const f = (shape: number[]) => Tensor.zeros(shape);
const i64 = (v: number[]) => Tensor.fromArray(v, [v.length], 'int64');
const f32 = (v: number[]) => Tensor.fromArray(v, [v.length]);

interface GraphCase {
  nodes: NodeSpec[];
  init: () => Record<string, Tensor>;
  opset?: number;
  /** The refusal's message (after the node prefix): op, shape and size. */
  want: RegExp;
}

/** Small constant inputs, outputs of gigabytes: each must be refused before anything is allocated. */
const OVER_BUDGET: Record<string, GraphCase> = {
  'Tile ([1, 1024] × [2^20, 1])': { nodes: [node('Tile', ['x', 'r'], ['y'])], init: () => ({ x: f([1, 1024]), r: i64([1 << 20, 1]) }), want: /Tile: output: shape \[1048576, 1024\] needs 4\.0 GiB/ },
  'Expand ([1, 1] to [65536, 65536])': { nodes: [node('Expand', ['x', 's'], ['y'])], init: () => ({ x: f([1, 1]), s: i64([65536, 65536]) }), want: /Expand: output: shape \[65536, 65536\] needs 16\.0 GiB/ },
  'Expand broadcasting ([65536, 1] with [1, 65536])': { nodes: [node('Expand', ['x', 's'], ['y'])], init: () => ({ x: f([65536, 1]), s: i64([1, 65536]) }), want: /Expand: output: shape \[65536, 65536\]/ },
  'Resize by scales 100 000': { nodes: [node('Resize', ['x', '', 'sc'], ['y'], { mode: 'linear' })], init: () => ({ x: f([1, 1, 4, 4]), sc: f32([1, 1, 100000, 100000]) }), want: /Resize: output: shape \[1, 1, 400000, 400000\] needs 596\.0 GiB/ },
  'Resize to sizes [65536, 65536]': { nodes: [node('Resize', ['x', '', '', 'sz'], ['y'])], init: () => ({ x: f([1, 1, 4, 4]), sz: i64([1, 1, 65536, 65536]) }), want: /Resize: output: shape \[1, 1, 65536, 65536\]/ },
  'Upsample (opset 9) by 100 000': { nodes: [node('Upsample', ['x', 'sc'], ['y'])], init: () => ({ x: f([1, 1, 4, 4]), sc: f32([1, 1, 100000, 100000]) }), opset: 9, want: /Resize: output: shape \[1, 1, 400000, 400000\]/ },
  'ConvTranspose with strides 100 000': { nodes: [node('ConvTranspose', ['x', 'w'], ['y'], { strides: [100000, 100000] })], init: () => ({ x: f([1, 1, 4, 4]), w: f([1, 1, 3, 3]) }), want: /ConvTranspose: output: shape \[1, 1, 300003, 300003\]/ },
  'ConvTranspose with output_shape [65536, 65536]': { nodes: [node('ConvTranspose', ['x', 'w'], ['y'], { output_shape: [65536, 65536] })], init: () => ({ x: f([1, 1, 4, 4]), w: f([1, 1, 3, 3]) }), want: /ConvTranspose: output: shape \[1, 1, 65536, 65536\]/ },
  'ConvTranspose with dilations 100 000': { nodes: [node('ConvTranspose', ['x', 'w'], ['y'], { dilations: [100000, 100000] })], init: () => ({ x: f([1, 1, 4, 4]), w: f([1, 1, 3, 3]) }), want: /ConvTranspose: output: shape \[1, 1, 200004, 200004\]/ },
  'Range 0 … 1e12 (float)': { nodes: [node('Range', ['a', 'b', 'd'], ['y'])], init: () => ({ a: Tensor.scalar(0), b: Tensor.scalar(1e12), d: Tensor.scalar(1) }), want: /Range: output: shape \[\d+\] needs 3725\.3 GiB/ },
  'Range 0 … 2^40 (int64)': { nodes: [node('Range', ['a', 'b', 'd'], ['y'])], init: () => ({ a: Tensor.scalar(0, 'int64'), b: Tensor.scalar(2 ** 40, 'int64'), d: Tensor.scalar(1, 'int64') }), want: /Range: output: shape \[1099511627776\] needs 8192\.0 GiB/ },
  'Range 0 … 1 by 1e-12': { nodes: [node('Range', ['a', 'b', 'd'], ['y'])], init: () => ({ a: Tensor.scalar(0), b: Tensor.scalar(1), d: Tensor.scalar(1e-12) }), want: /Range: output: shape \[\d+\] needs 3725\.3 GiB/ },
  'ConstantOfShape [65536, 65536]': { nodes: [node('ConstantOfShape', ['s'], ['y'])], init: () => ({ s: i64([65536, 65536]) }), want: /ConstantOfShape: output: shape \[65536, 65536\] needs 16\.0 GiB/ },
  'ConstantOfShape int64 [20000, 20000] (budgeted at 8 bytes)': { nodes: [node('ConstantOfShape', ['s'], ['y'], { value: Tensor.fromArray([7], [1], 'int64') })], init: () => ({ s: i64([20000, 20000]) }), want: /ConstantOfShape: output: shape \[20000, 20000\] needs 3\.0 GiB/ },
  'Pad by 100 000': { nodes: [node('Pad', ['x', 'p'], ['y'])], init: () => ({ x: f([1, 1, 4, 4]), p: i64([0, 0, 100000, 100000, 0, 0, 100000, 100000]) }), want: /Pad: output: shape \[1, 1, 200004, 200004\]/ },
  'AveragePool with pads 100 000 (kernel 100 001)': { nodes: [node('AveragePool', ['x'], ['y'], { kernel_shape: [100001, 100001], pads: [100000, 100000, 100000, 100000], count_include_pad: 1 })], init: () => ({ x: f([1, 1, 4, 4]) }), want: /AveragePool: output: shape \[1, 1, 100004, 100004\]/ },
  "Einsum 'i,j->ij' of two [65536]": { nodes: [node('Einsum', ['a', 'b'], ['y'], { equation: 'i,j->ij' })], init: () => ({ a: f([65536]), b: f([65536]) }), want: /Einsum 'i,j->ij': output: shape \[65536, 65536\]/ },
  "Einsum '...i,...j->...ij' broadcasting": { nodes: [node('Einsum', ['a', 'b'], ['y'], { equation: '...i,...j->...ij' })], init: () => ({ a: f([4096, 1, 64]), b: f([1, 4096, 64]) }), want: /output: shape \[4096, 4096, 64, 64\] needs 256\.0 GiB/ },
  'Gather of 65 536 rows of 65 536': { nodes: [node('Gather', ['x', 'i'], ['y'], { axis: 0 })], init: () => ({ x: f([1, 65536]), i: Tensor.zeros([65536], 'int64') }), want: /Gather: output: shape \[65536, 65536\]/ },
  'Where broadcasting': { nodes: [node('Where', ['c', 'a', 'b'], ['y'])], init: () => ({ c: Tensor.zeros([65536, 1], 'bool'), a: f([1, 65536]), b: f([1]) }), want: /Where: output: shape \[65536, 65536\]/ },
  'Equal broadcasting (bool output, 1 byte an element)': { nodes: [node('Equal', ['a', 'b'], ['y'])], init: () => ({ a: f([65536, 1]), b: f([1, 65536]) }), want: /Equal: output: shape \[65536, 65536\] needs 4\.0 GiB/ },
  'And broadcasting': { nodes: [node('And', ['a', 'b'], ['y'])], init: () => ({ a: Tensor.zeros([65536, 1], 'bool'), b: Tensor.zeros([1, 65536], 'bool') }), want: /And: output: shape \[65536, 65536\] needs 4\.0 GiB/ },
  'variadic Sum broadcasting': { nodes: [node('Sum', ['a', 'b', 'c'], ['y'])], init: () => ({ a: f([65536, 1]), b: f([1, 65536]), c: f([1]) }), want: /Add: output: shape \[65536, 65536\]/ },
  'variadic Max broadcasting': { nodes: [node('Max', ['a', 'b'], ['y'])], init: () => ({ a: f([65536, 1]), b: f([1, 65536]) }), want: /Max: output: shape \[65536, 65536\]/ },
  'Mod broadcasting': { nodes: [node('Mod', ['a', 'b'], ['y'], { fmod: 1 })], init: () => ({ a: f([65536, 1]), b: f([1, 65536]) }), want: /Mod: output: shape \[65536, 65536\]/ },
  'int64 Pow broadcasting (8 bytes an element)': { nodes: [node('Pow', ['a', 'b'], ['y'])], init: () => ({ a: Tensor.zeros([65536, 1], 'int64'), b: Tensor.zeros([1, 65536], 'int64') }), want: /Pow: output: shape \[65536, 65536\] needs 32\.0 GiB/ },
  'batched MatMul broadcasting': { nodes: [node('MatMul', ['a', 'b'], ['y'])], init: () => ({ a: f([4096, 1, 64, 1]), b: f([1, 4096, 1, 64]) }), want: /MatMul output: shape \[4096, 4096, 64, 64\]/ },
  'grouped Conv with pads 50 000': { nodes: [node('Conv', ['x', 'w'], ['y'], { pads: [50000, 50000, 50000, 50000], group: 2 })], init: () => ({ x: f([1, 2, 4, 4]), w: f([2, 1, 1, 1]) }), want: /Conv output: shape \[1, 2, 100004, 100004\]/ },
  'QLinearConv with pads 50 000': {
    nodes: [node('QLinearConv', ['x', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz'], ['y'], { pads: [50000, 50000, 50000, 50000] })],
    init: () => ({ x: Tensor.zeros([1, 1, 4, 4], 'uint8'), xs: Tensor.scalar(1), xz: Tensor.scalar(0, 'uint8'), w: Tensor.zeros([1, 1, 1, 1], 'uint8'), ws: Tensor.scalar(1), wz: Tensor.scalar(0, 'uint8'), ys: Tensor.scalar(1), yz: Tensor.scalar(0, 'uint8') }),
    want: /Conv output: shape \[1, 1, 100004, 100004\]/,
  },
  'Concat of 600 views of 4 MiB': { nodes: [node('Concat', new Array<string>(600).fill('x'), ['y'], { axis: 1 })], init: () => ({ x: f([1, 1, 1024, 1024]) }), want: /Concat: output: shape \[1, 600, 1024, 1024\] needs 2\.3 GiB/ },
};

const CPU_PATHS: [string, <T>(fn: () => T) => T][] = [
  ['TypeScript', (fn) => withWasmKernels(false, () => withBackend(cpuBackend, fn))],
  ['WebAssembly', (fn) => withWasmKernels(true, () => withBackend(cpuBackend, fn))],
];

function graph(c: GraphCase): Uint8Array {
  const last = c.nodes[c.nodes.length - 1]!;
  return modelBytes({ nodes: c.nodes, inputs: [], outputs: [{ name: last.outputs[0]! }], initializers: c.init(), opset: c.opset ?? 17 });
}

describe('graphs whose outputs grow past the budget are refused before allocation', () => {
  it('runs at the default budgets', () => {
    expect(getLimits().maxTensorBytes).toBe(2 * 1024 ** 3);
  });
  for (const [name, c] of Object.entries(OVER_BUDGET)) {
    it(`${name}: TypeScript and WebAssembly kernels, optimized and not`, () => {
      const bytes = graph(c);
      for (const [path, on] of CPU_PATHS) {
        for (const optimize of [true, false]) {
          const model = loadOnnxSync(bytes, { optimize });
          const before = process.memoryUsage().rss;
          let err: unknown;
          try {
            on(() => model.runSync({}));
          } catch (e) {
            err = e;
          }
          const what = `${name}, ${path}, optimize ${optimize}`;
          expect(err, what).toBeInstanceOf(ResourceLimitError);
          expect((err as Error).message, what).toMatch(c.want);
          expect(process.memoryUsage().rss - before, what).toBeLessThan(RSS_SLACK);
          model.dispose();
        }
      }
    });
  }
});

describe('graphs past the budget on the gpu.js backend (cpu mode)', () => {
  let g: GpuBackend;
  beforeAll(async () => {
    g = await gpu({ mode: 'cpu', log: () => {} });
  });
  afterAll(() => g.destroy());
  it('Tile, Expand, Resize, ConvTranspose, Range, ConstantOfShape, Pad, Einsum, Where, Gather, MatMul and Concat', () => {
    const names = Object.keys(OVER_BUDGET).filter((n) => /^(Tile|Expand \(|Resize by|ConvTranspose with strides|Range 0 … 1e12|ConstantOfShape \[|Pad|Einsum 'i|Where|Gather|batched MatMul|Concat)/.test(n));
    expect(names).toHaveLength(12);
    for (const name of names) {
      const c = OVER_BUDGET[name]!;
      const model = loadOnnxSync(graph(c));
      const before = process.memoryUsage().rss;
      expect(() => withBackend(g, () => model.runSync({})), name).toThrow(ResourceLimitError);
      expect(() => withBackend(g, () => model.runSync({})), name).toThrow(c.want);
      expect(process.memoryUsage().rss - before, name).toBeLessThan(RSS_SLACK);
    }
  });
});

/**
 * Special values through ops outside tests/fixtures/special_values (which has PyTorch's answers
 * for 15 activations and math functions and 5 binary ops): here there is no PyTorch oracle, so
 * every path must give the float64 reference's answer, with the fixture test's rules — NaN is
 * NaN, ±∞ exactly ±∞, a zero has the reference's sign; a finite value within RTOL 2e-6 (a few
 * float32 ulps: the reference rounds a float64 result once, the fast kernels round every step),
 * and ATOL 1e-44 for results in the denormal range, whose trailing bits float32 arithmetic loses
 * (Resize's linear blend of two denormals is one such).
 */
describe('special values: ops outside the PyTorch table give the reference answer on every path', () => {
  const fixture = JSON.parse(readFileSync(new URL('../fixtures/special_values/expected.json', import.meta.url), 'utf8')) as { unary: { x: number[] } };
  const X = Array.from(new Float32Array(Uint32Array.from(fixture.unary.x).buffer));
  const N = X.length;
  const x = Tensor.fromArray(X, [1, 1, 1, N]);
  const reversed = Tensor.fromArray([...X].reverse(), [1, 1, 1, N]);
  const RTOL = 2e-6;
  const ATOL = 1e-44;
  const agree = (got: number, want: number, atol = ATOL): boolean => {
    if (Number.isNaN(want) || !Number.isFinite(want) || want === 0) {
      if (Object.is(got, want)) return true;
      return want === 0 && Math.abs(got) <= ATOL; // a denormal's last bit either side of zero
    }
    return Math.abs(got - want) <= RTOL * Math.abs(want) + atol && (Math.sign(got) === Math.sign(want) || Math.abs(want) <= atol);
  };
  const unary = (op: string, attrs: Record<string, number | number[] | string> = {}) => ({ nodes: [node(op, ['x'], ['y'], attrs)], init: {} as Record<string, Tensor> });
  const binary = (op: string, attrs: Record<string, number> = {}) => ({ nodes: [node(op, ['x', 'b'], ['y'], attrs)], init: { b: reversed } });
  const one = Tensor.fromArray([1], [1, 1, 1, 1]);
  // Gelu: the fast kernels compute 1 + erf(x/√2) in float32, which cancels where erf ≈ −1 (x ≈ −3
  // and below): an absolute error of a few float32 ulps of 1 (~1e-7) times |x|, however small
  // the result. PyTorch's float32 kernel has the same cancellation. 1e-6 absolute covers it; a
  // special-value difference (NaN, ∞, a sign) is far larger.
  const CASES: Record<string, { nodes: NodeSpec[]; init: Record<string, Tensor>; opset?: number; atol?: number }> = {
    Gelu: { ...unary('Gelu'), opset: 20, atol: 1e-6 },
    'Gelu tanh': { ...unary('Gelu', { approximate: 'tanh' }), opset: 20, atol: 1e-6 },
    Elu: unary('Elu'),
    Selu: unary('Selu'),
    Celu: unary('Celu'),
    Softplus: unary('Softplus'),
    Softsign: unary('Softsign'),
    Mish: unary('Mish'),
    Log: unary('Log'),
    Reciprocal: unary('Reciprocal'),
    Floor: unary('Floor'),
    Ceil: unary('Ceil'),
    Round: unary('Round'),
    Sign: unary('Sign'),
    ThresholdedRelu: unary('ThresholdedRelu'),
    Max: binary('Max'),
    Min: binary('Min'),
    'Mod (fmod)': binary('Mod', { fmod: 1 }),
    PRelu: binary('PRelu'),
    Softmax: unary('Softmax', { axis: -1 }),
    LogSoftmax: unary('LogSoftmax', { axis: -1 }),
    ReduceMax: unary('ReduceMax', { axes: [3] }),
    ReduceMin: unary('ReduceMin', { axes: [3] }),
    ReduceMean: unary('ReduceMean', { axes: [3] }),
    ReduceSum: { nodes: [node('ReduceSum', ['x', 'axes'], ['y'])], init: { axes: Tensor.fromArray([3], [1], 'int64') } },
    ReduceL2: unary('ReduceL2', { axes: [3] }),
    ReduceLogSumExp: unary('ReduceLogSumExp', { axes: [3] }),
    AveragePool: unary('AveragePool', { kernel_shape: [1, 3] }),
    GlobalAveragePool: unary('GlobalAveragePool'),
    ArgMax: unary('ArgMax', { axis: 3 }),
    ArgMin: unary('ArgMin', { axis: 3 }),
    'Conv · Sigmoid(Conv) (fused SiLU)': { nodes: [node('Conv', ['x', 'w'], ['c']), node('Sigmoid', ['c'], ['s']), node('Mul', ['c', 's'], ['y'])], init: { w: one } },
    'Conv → HardSwish (fused)': { nodes: [node('Conv', ['x', 'w'], ['c']), node('HardSwish', ['c'], ['y'])], init: { w: one } },
    BatchNormalization: { nodes: [node('BatchNormalization', ['x', 's', 'bb', 'm', 'v'], ['y'])], init: { s: Tensor.fromArray([2], [1]), bb: Tensor.fromArray([-0], [1]), m: Tensor.fromArray([0], [1]), v: Tensor.fromArray([1], [1]) } },
    LayerNormalization: { nodes: [node('LayerNormalization', ['x', 's'], ['y'])], init: { s: Tensor.ones([N]) } },
    InstanceNormalization: { nodes: [node('InstanceNormalization', ['x', 's', 'bb'], ['y'])], init: { s: Tensor.ones([1]), bb: Tensor.zeros([1]) } },
    'Resize (linear, ×2)': { nodes: [node('Resize', ['x', '', 'sc'], ['y'], { mode: 'linear' })], init: { sc: Tensor.fromArray([1, 1, 1, 2], [4]) } },
  };
  let g: GpuBackend;
  beforeAll(async () => {
    g = await gpu({ mode: 'cpu', log: () => {} });
  });
  afterAll(() => g.destroy());

  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: TypeScript, WebAssembly and gpu.js (cpu mode), optimized and not`, () => {
      const bytes = modelBytes({ nodes: c.nodes, inputs: [{ name: 'x', shape: [1, 1, 1, N] }], outputs: [{ name: 'y' }], initializers: c.init, opset: c.opset ?? 18 });
      const values = (t: Tensor) => Array.from(t.dataSync() as ArrayLike<number>, Number);
      const want = values(withBackend(referenceBackend, () => loadOnnxSync(bytes, { optimize: false }).runSync({ x })).y!);
      const paths: [string, <T>(fn: () => T) => T][] = [...CPU_PATHS, ['gpu.js', (fn) => withBackend(g, fn)]];
      for (const [path, on] of paths) {
        for (const optimize of [true, false]) {
          const got = values(on(() => loadOnnxSync(bytes, { optimize }).runSync({ x })).y!);
          expect(got.length).toBe(want.length);
          const bad = got.flatMap((v, i) => (agree(v, want[i]!, c.atol) ? [] : [`[${i}] ${v} vs ${want[i]}`]));
          expect(bad, `${name}, ${path}, optimize ${optimize}`).toEqual([]);
        }
      }
    });
  }
});

describe('special values: max pools, reductions and ArgMax on the CPU paths (docs/special-values.md)', () => {
  // Rows: a NaN among finite values, only NaN, only −∞, NaN first then finite values and −∞.
  const rows = [
    [1, NaN, 2, 0],
    [NaN, NaN, NaN, NaN],
    [-Infinity, -Infinity, -Infinity, -Infinity],
    [NaN, 5, -Infinity, 3],
  ];
  const x = Tensor.fromArray(rows.flat(), [1, 4, 1, 4]);
  const WANT: [string, NodeSpec, number[]][] = [
    ['MaxPool (NaN never wins)', node('MaxPool', ['x'], ['y'], { kernel_shape: [1, 4] }), [2, -Infinity, -Infinity, 5]],
    ['GlobalMaxPool (NaN never wins)', node('GlobalMaxPool', ['x'], ['y']), [2, -Infinity, -Infinity, 5]],
    ['ReduceMax (NaN propagates)', node('ReduceMax', ['x'], ['y'], { axes: [3] }), [NaN, NaN, -Infinity, NaN]],
    ['ReduceMin (NaN propagates)', node('ReduceMin', ['x'], ['y'], { axes: [3] }), [NaN, NaN, -Infinity, NaN]],
    ['ArgMax (NaN wins, first index)', node('ArgMax', ['x'], ['y'], { axis: 3 }), [1, 0, 0, 0]],
  ];
  for (const [name, n, want] of WANT) {
    it(name, () => {
      const bytes = modelBytes({ nodes: [n], inputs: [{ name: 'x', shape: [1, 4, 1, 4] }], outputs: [{ name: 'y' }], opset: 17 });
      for (const [path, on] of [['reference', <T>(fn: () => T) => withBackend(referenceBackend, fn)] as const, ...CPU_PATHS]) {
        const got = Array.from(on(() => loadOnnxSync(bytes).runSync({ x })).y!.dataSync() as ArrayLike<number>, Number);
        expect(got, `${name}, ${path}`).toEqual(want); // toEqual: NaN equals NaN, −∞ exactly
      }
    });
  }
});

describe('strict attributes', () => {
  it('ConvTranspose output_padding not smaller than its stride or dilation is refused at load', () => {
    const model = (attrs: Record<string, number[]>) =>
      modelBytes({ nodes: [node('ConvTranspose', ['x', 'w'], ['y'], attrs, 'up')], inputs: [{ name: 'x', shape: [1, 1, 4, 4] }], outputs: [{ name: 'y' }], initializers: { w: Tensor.ones([1, 1, 3, 3]) } });
    const err = (attrs: Record<string, number[]>) => {
      try {
        loadOnnxSync(model(attrs)).runSync({ x: Tensor.ones([1, 1, 4, 4]) });
      } catch (e) {
        return e as Error;
      }
      throw new Error(`${JSON.stringify(attrs)} was accepted`);
    };
    expect(err({ strides: [2, 2], output_padding: [2, 0] })).toBeInstanceOf(OnnxError);
    expect(err({ strides: [2, 2], output_padding: [2, 0] }).message).toMatch(/ConvTranspose node 'up': output_padding\[0\] = 2 must be smaller than its stride \(2\) or dilation \(1\)/);
    expect(err({ strides: [2, 2], output_padding: [1, 100000] }).message).toMatch(/output_padding\[1\] = 100000/);
    expect(err({ output_padding: [1, 0] }).message).toMatch(/output_padding\[0\] = 1 must be smaller than its stride \(1\)/);
    // Below the stride, or below the dilation, it runs (onnxruntime's and PyTorch's rule).
    expect(loadOnnxSync(model({ strides: [2, 2], output_padding: [1, 1] })).runSync({ x: Tensor.ones([1, 1, 4, 4]) }).y!.shape).toEqual([1, 1, 10, 10]);
    expect(loadOnnxSync(model({ dilations: [2, 2], output_padding: [1, 0] })).runSync({ x: Tensor.ones([1, 1, 4, 4]) }).y!.shape).toEqual([1, 1, 9, 8]);
  });
});

describe('decode errors name the file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lc-probes-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('loadImageTensor (lightconv run --image): a truncated PNG or JPEG is a typed error naming the path', async () => {
    const png = join(dir, 'cut.png');
    const jpg = join(dir, 'cut.jpg');
    await writeFile(png, Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    await writeFile(jpg, readFileSync(new URL('../fixtures/gray.jpg', import.meta.url)).subarray(0, 200));
    for (const [path, why] of [[png, /cut\.png: decodeImage: corrupt PNG/], [jpg, /cut\.jpg: decodeImage: corrupt JPEG/]] as const) {
      const e = await loadImageTensor(path).catch((err: unknown) => err);
      expect(e, path).toBeInstanceOf(ValueError);
      expect((e as Error).message).toMatch(why);
    }
    // Bytes without a path keep the plain message.
    const e = await loadImageTensor(new Uint8Array(3)).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(LightconvError);
    expect((e as Error).message).toMatch(/^decodeImage: not a PNG or JPEG/);
  });
});
