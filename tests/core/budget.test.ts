import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceLimitError, ShapeError } from '../../src/core/errors.js';
import { apply, cpuBackend, referenceBackend, withBackend } from '../../src/core/op.js';
import { f32Array, f64Array } from '../../src/core/dtype.js';
import { getLimits, setLimits, withAllocOp } from '../../src/core/limits.js';
import { Tensor } from '../../src/core/tensor.js';
import { type GpuBackend, gpu } from '../../src/gpu.js';
import { type BinaryOp, averagePool, binary, binaryCard, concat, conv, gather, gemm, matmul, maxPool, pad } from '../../src/kernels/index.js';
import { maxPoolIndicesCard } from '../../src/kernels/pool.js';
import { withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { modelBytes, node } from '../onnx/build.js';

/**
 * The tensor budget (src/core/limits.ts, maxTensorBytes) is checked before anything is
 * allocated, on every backend and kernel path: `apply` checks each op's output shape, and the
 * kernels' arrays (outputs and scratch) come from budget-checked makers. Every case runs at the
 * default budgets and must raise a typed error that names the op and the sizes, with the
 * process's resident memory not grown by more than RSS_SLACK — an allocation of the sizes
 * involved (16 GiB and up) would show as gigabytes, or kill the process.
 */
const RSS_SLACK = 200 * 1024 ** 2;

/** Runs `fn`, expects it to throw `type` with a message matching `message`, and RSS not to jump. */
function expectRefused(fn: () => unknown, type: typeof ResourceLimitError | typeof ShapeError, message: RegExp): void {
  const before = process.memoryUsage().rss;
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  const grew = process.memoryUsage().rss - before;
  expect(err, 'no error was raised').toBeInstanceOf(type);
  expect((err as Error).message).toMatch(message);
  expect(grew, `RSS grew by ${(grew / 1024 ** 2).toFixed(0)} MiB`).toBeLessThan(RSS_SLACK);
}

const zeros = (shape: number[]) => Tensor.zeros(shape);

/** The CPU kernel paths: float64 reference, TypeScript, WebAssembly (with the TS fallbacks). */
const PATHS: [string, <T>(fn: () => T) => T][] = [
  ['reference', (fn) => withBackend(referenceBackend, fn)],
  ['TypeScript', (fn) => withWasmKernels(false, () => withBackend(cpuBackend, fn))],
  ['WebAssembly', (fn) => withWasmKernels(true, () => withBackend(cpuBackend, fn))],
];

it('runs at the default budgets', () => {
  expect(getLimits().maxTensorBytes).toBe(2 * 1024 ** 3);
});

describe.each(PATHS)('budgets before allocation, %s kernels', (_, on) => {
  // [65536, 1] ∘ [1, 65536]: two 256 KiB operands, a 16 GiB result.
  for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Pow'] as BinaryOp[]) {
    it(`${op} broadcasting [65536, 1] with [1, 65536]`, () => {
      expectRefused(() => on(() => binary(zeros([65536, 1]), zeros([1, 65536]), op)), ResourceLimitError, new RegExp(`^${op}: output: shape \\[65536, 65536\\] needs 16\\.0 GiB, over the 2\\.0 GiB tensor budget`));
    });
  }
  it('Add broadcasting rank 3 ([4096, 1, 1] with [1, 4096, 64]) and an int64 Mul', () => {
    expectRefused(() => on(() => binary(zeros([4096, 1, 1]), zeros([1, 4096, 64]), 'Add')), ResourceLimitError, /^Add: output: shape \[4096, 4096, 64\] needs 4\.0 GiB/);
    const i64 = (shape: number[]) => Tensor.zeros(shape, 'int64');
    expectRefused(() => on(() => binary(i64([20000, 1]), i64([1, 20000]), 'Mul')), ResourceLimitError, /^Mul: output: shape \[20000, 20000\] needs 3\.0 GiB/);
  });
  it('MaxPool and AveragePool with pads of 100 000', () => {
    const attrs = { kernel: [2, 2], pads: [100000, 100000, 100000, 100000] };
    expectRefused(() => on(() => maxPool(zeros([1, 1, 4, 4]), attrs)), ResourceLimitError, /^MaxPool: output: shape \[1, 1, 200003, 200003\] needs 149\.0 GiB/);
    expectRefused(() => on(() => averagePool(zeros([1, 1, 4, 4]), attrs)), ResourceLimitError, /^AveragePool: output: shape \[1, 1, 200003, 200003\]/);
  });
  it('pools with huge dilations: a window that does not fit is a ShapeError, one that fits is budgeted', () => {
    expectRefused(() => on(() => maxPool(zeros([1, 1, 4, 4]), { kernel: [3, 3], dilations: [100000, 100000] })), ShapeError, /MaxPool: window of 200001 .* does not fit spatial axis 0 of size 4/);
    expectRefused(
      () => on(() => averagePool(zeros([1, 1, 4, 4]), { kernel: [2, 2], dilations: [100000, 100000], pads: [100000, 100000, 100000, 100000] })),
      ResourceLimitError,
      /^AveragePool: output: shape \[1, 1, 100004, 100004\]/,
    );
  });
  it('Conv with pads of 100 000 and with huge dilations', () => {
    const w = zeros([8, 8, 3, 3]);
    expectRefused(() => on(() => conv(zeros([1, 8, 4, 4]), w, null, { pads: [100000, 100000, 100000, 100000] })), ResourceLimitError, /Conv.* shape \[1, 8, 200002, 200002\] needs 1192\.\d GiB/);
    expectRefused(() => on(() => conv(zeros([1, 8, 4, 4]), w, null, { dilations: [100000, 100000] })), ShapeError, /Conv/);
  });
  it('Conv whose output fits but whose padded scratch would not (huge dilation and pads)', () => {
    // Output [1, 8, 4, 4]: the taps land 100 000 apart in a 200 004-wide padded image. A kernel
    // that pads or unfolds the input would need ~1.2 TiB of scratch; one that skips the
    // padding needs nothing more. Either way no gigabytes may be touched.
    const before = process.memoryUsage().rss;
    try {
      const y = on(() => conv(zeros([1, 8, 4, 4]), zeros([8, 8, 3, 3]), null, { dilations: [100000, 100000], pads: [100000, 100000, 100000, 100000] }));
      expect(y.shape).toEqual([1, 8, 4, 4]);
    } catch (e) {
      expect(e).toBeInstanceOf(ResourceLimitError);
      expect((e as Error).message).toMatch(/^Conv: .*over the 2\.0 GiB tensor budget/);
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(RSS_SLACK);
  });
  it('Gemm and MatMul with huge dims', () => {
    expectRefused(() => on(() => matmul(zeros([65536, 1]), zeros([1, 65536]))), ResourceLimitError, /^MatMul.*shape \[65536, 65536\] needs 16\.0 GiB/);
    expectRefused(() => on(() => matmul(zeros([4096, 64, 1]), zeros([1, 1, 4096]))), ResourceLimitError, /^MatMul.*shape \[4096, 64, 4096\] needs 4\.0 GiB/);
    expectRefused(() => on(() => gemm(zeros([65536, 1]), zeros([1, 65536]))), ResourceLimitError, /^Gemm.*shape \[65536, 65536\] needs 16\.0 GiB/);
  });
  it('Concat, Pad and Gather past the budget', () => {
    // 600 views of one 4 MiB input: Concat's output would be 2.3 GiB.
    const part = zeros([1, 1, 1024, 1024]);
    expectRefused(() => on(() => concat(new Array<Tensor>(600).fill(part), 1)), ResourceLimitError, /^Concat: output: shape \[1, 600, 1024, 1024\] needs 2\.3 GiB/);
    expectRefused(() => on(() => pad(zeros([1, 1, 4, 4]), [0, 0, 100000, 100000, 0, 0, 100000, 100000])), ResourceLimitError, /^Pad: output: shape \[1, 1, 200004, 200004\]/);
    // 65 536 indices into a row of 65 536: a 16 GiB gather from 512 KiB of inputs.
    expectRefused(() => on(() => gather(zeros([1, 65536]), Tensor.zeros([65536], 'int64'), 0)), ResourceLimitError, /^Gather: output: shape \[65536, 65536\] needs 16\.0 GiB/);
  });
});

describe('budgets by output dtype', () => {
  it("MaxPool's int64 indices are budgeted at 8 bytes an element (the float32 output would fit)", () => {
    // Output 17 321² ≈ 300 M elements: 1.1 GiB as float32, 2.2 GiB as int64.
    const attrs = { kernel: [2, 2], pads: [8659, 8659, 8659, 8659] };
    expectRefused(() => apply(maxPoolIndicesCard, [zeros([1, 1, 4, 4])], attrs), ResourceLimitError, /^MaxPoolIndices: output: shape \[1, 1, 17321, 17321\] needs 2\.2 GiB/);
  });
  it("a backward pass's scratch is budgeted and named after the op (float64 gradients at the output's size)", () => {
    // A 1 MiB budget: the output of [400, 1] · [1, 500] (800 KB) fits, its float64 gradient
    // scratch (1.6 MB) does not. Small sizes, so the real allocation of the output is harmless.
    const before = setLimits({ maxTensorBytes: 1024 ** 2 });
    try {
      const a = Tensor.ones([400, 1]).requireGrad();
      const b = Tensor.ones([1, 500]).requireGrad();
      const y = withBackend(cpuBackend, () => binary(a, b, 'Mul'));
      expect(y.shape).toEqual([400, 500]);
      expect(() => withBackend(cpuBackend, () => y.backward(Tensor.ones([400, 500])))).toThrow(/^Mul backward: an array of 200000 elements × 8 B needs 1\.5 MiB, over the 1\.0 MiB tensor budget/);
    } finally {
      setLimits(before);
    }
  });
  it('scratch is budgeted too: arrays made while a kernel runs name the op', () => {
    expect(() => withAllocOp('Conv', () => f64Array(2 ** 28 + 1))).toThrow(ResourceLimitError);
    expect(() => withAllocOp('Conv', () => f64Array(2 ** 28 + 1))).toThrow(/^Conv: an array of 268435457 elements × 8 B needs 2\.0 GiB, over the 2\.0 GiB tensor budget/);
    expect(() => f32Array(-1)).toThrow(ShapeError);
  });
});

describe('budgets before allocation, gpu.js backend (cpu mode)', () => {
  let g: GpuBackend;
  beforeAll(async () => {
    g = await gpu({ mode: 'cpu', log: () => {} });
  });
  afterAll(() => g.destroy());
  it('Add, Div broadcast, MaxPool with huge pads and MatMul are refused before the device allocates', () => {
    expectRefused(() => apply(binaryCard, [zeros([65536, 1]), zeros([1, 65536])], 'Add', g), ResourceLimitError, /^Add: output: shape \[65536, 65536\] needs 16\.0 GiB/);
    expectRefused(() => apply(binaryCard, [zeros([65536, 1]), zeros([1, 65536])], 'Div', g), ResourceLimitError, /^Div: output/);
    expectRefused(() => withBackend(g, () => maxPool(zeros([1, 1, 4, 4]), { kernel: [2, 2], pads: [100000, 100000, 100000, 100000] })), ResourceLimitError, /^MaxPool: output/);
    expectRefused(() => withBackend(g, () => matmul(zeros([65536, 1]), zeros([1, 65536]))), ResourceLimitError, /^MatMul.*16\.0 GiB/);
  });
});

describe('budgets before allocation, ONNX graph runner', () => {
  it('a 512 KiB model whose Add broadcasts [65536, 1] with [1, 65536]', () => {
    const bytes = modelBytes({
      nodes: [node('Add', ['a', 'b'], ['y'], {}, 'blowup')],
      inputs: [],
      outputs: [{ name: 'y' }],
      initializers: { a: zeros([65536, 1]), b: zeros([1, 65536]) },
      opset: 13,
    });
    expect(bytes.length).toBeLessThan(600 * 1024);
    for (const optimize of [true, false]) {
      const model = loadOnnxSync(bytes, { optimize });
      const before = process.memoryUsage().rss;
      let err: unknown;
      try {
        model.runSync({});
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ResourceLimitError);
      expect((err as Error).message).toMatch(/Add: output: shape \[65536, 65536\] needs 16\.0 GiB/);
      expect(process.memoryUsage().rss - before).toBeLessThan(RSS_SLACK);
    }
  });
});
