import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { type Backend, apply, cpuBackend, referenceBackend, withBackend } from '../../src/core/op.js';
import { withOutputArena } from '../../src/core/storage.js';
import { Tensor } from '../../src/core/tensor.js';
import { type GpuBackend, gpu } from '../../src/gpu.js';
import type { Activation } from '../../src/kernels/activation.js';
import { convCard } from '../../src/kernels/conv.js';
import { type BinaryOp, type UnaryOp, binary, binaryCard, unary, unaryCard } from '../../src/kernels/elementwise.js';
import { GEMM_DEFAULTS, gemmCard } from '../../src/kernels/gemm.js';
import { reduceSum } from '../../src/kernels/reduce.js';
import { openArena } from '../../src/kernels/wasm/arena.js';
import { runtime, wasmKernelsEnabled, withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { MODES } from '../gpu/common.js';

/**
 * One answer for special values (docs/special-values.md): every kernel path — the float64
 * reference, the TypeScript kernels, the WebAssembly kernels (unfused and fused into conv and
 * Gemm epilogues) and the gpu.js kernels — against PyTorch's float32 answers for ±0, ±∞, NaN,
 * ±FLT_MAX, denormals and large values (tests/fixtures/special_values/expected.json, made by
 * scripts/make_special_values_fixture.py; floats stored as bit patterns).
 *
 * NaN must be NaN, ±∞ exactly ±∞, a zero a zero of the same sign. Finite values: the same sign
 * and |got − want| ≤ RTOL·|want| + ATOL. RTOL 2e-6 (≈ 16 float32 ulps): the engine rounds a
 * float64 result once, PyTorch's float32 kernels round every step and use vectorised exp/tanh
 * approximations, and the WebAssembly exp polynomial is good to ~2e-7 — a few ulps each; a
 * semantic difference is orders of magnitude larger. ATOL 1e-44 (7 of the smallest
 * denormals): a result in the denormal range keeps only its leading bits, and float32 formulas
 * lose a few of them.
 */
const RTOL = 2e-6;
const ATOL = 1e-44;

interface Fixture {
  unary: { x: number[]; y: Record<string, number[]> };
  binary: { a: number[]; b: number[]; y: Record<BinaryOp, number[]> };
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/special_values/expected.json', import.meta.url), 'utf8')) as Fixture;
const fromBits = (bits: number[]): Float32Array => new Float32Array(Uint32Array.from(bits).buffer);
const X = fromBits(fixture.unary.x);

/** The fixture's ops as the engine's unary ops. */
const UNARY: Record<string, UnaryOp> = {
  relu: { kind: 'relu' },
  'leaky_relu_0.01': { kind: 'leaky_relu', alpha: 0.01 },
  clip_0_6: { kind: 'clip', min: 0, max: 6 },
  'clip_-1_1': { kind: 'clip', min: -1, max: 1 },
  sigmoid: { kind: 'sigmoid' },
  hard_sigmoid_onnx: { kind: 'hard_sigmoid', alpha: 0.2, beta: 0.5 },
  hard_sigmoid_torch: { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 },
  hard_swish: { kind: 'hard_swish' },
  silu: { kind: 'silu' },
  tanh: { kind: 'tanh' },
  exp: { kind: 'exp' },
  sqrt: { kind: 'sqrt' },
  neg: { kind: 'neg' },
  abs: { kind: 'abs' },
  erf: { kind: 'erf' },
};
const ACTIVATIONS = Object.entries(UNARY).filter(([, op]) => !['exp', 'sqrt', 'neg', 'abs', 'erf'].includes(op.kind)) as [string, Activation][];
/** Kinds the WebAssembly kernels run themselves (tanh runs in JS after them). */
const WASM_KINDS = new Set(['relu', 'leaky_relu', 'clip', 'sigmoid', 'hard_sigmoid', 'hard_swish', 'silu']);

const signbit = (v: number) => v < 0 || Object.is(v, -0);

/** Every element against the fixture, with the rules above; returns the mismatches, described. */
function mismatches(got: ArrayLike<number>, want: Float32Array, inputs: (i: number) => string): string[] {
  const bad: string[] = [];
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    let ok: boolean;
    if (Number.isNaN(w)) ok = Number.isNaN(g);
    else if (!Number.isFinite(w) || w === 0) ok = Object.is(g, w);
    else ok = signbit(g) === signbit(w) && Math.abs(g - w) <= RTOL * Math.abs(w) + ATOL;
    if (!ok) bad.push(`${inputs(i)}: got ${Object.is(g, -0) ? '-0' : g}, want ${Object.is(w, -0) ? '-0' : w}`);
  }
  return bad;
}

const unaryWant = (name: string) => fromBits(fixture.unary.y[name]!);
const atX = (i: number) => `x = ${Object.is(X[i], -0) ? '-0' : X[i]}`;

/** A fused epilogue sees w·x + 0, in which −0 has become +0: its answer is the one for +0. */
function fusedWant(name: string): Float32Array {
  const want = unaryWant(name).slice();
  const neg0 = X.findIndex((v) => Object.is(v, -0));
  const pos0 = X.findIndex((v) => Object.is(v, 0));
  want[neg0] = want[pos0]!;
  return want;
}

/** x as the output of an op, through a 1×1 conv with 8 output channels of weight 1 (each row is act(x)). */
function convRows(x: Float32Array, act: Activation, backend: Backend, depthwise = false): Float32Array[] {
  const n = x.length;
  const X8 = depthwise ? new Tensor(Float32Array.from({ length: 8 * n }, (_, i) => x[i % n]!), [1, 8, 1, n]) : new Tensor(x.slice(), [1, 1, 1, n]);
  const W = Tensor.ones([8, 1, 1, 1]);
  const y = apply(convCard, [X8, W], { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: depthwise ? 8 : 1, activation: act }, backend);
  const d = Float32Array.from(y.dataSync());
  y.dispose();
  return Array.from({ length: 8 }, (_, c) => d.subarray(c * n, (c + 1) * n));
}

/** act(x) through Gemm's epilogue: A = x as a column, B = a row of eight ones. */
function gemmRows(x: Float32Array, act: Activation, backend: Backend): Float32Array[] {
  const n = x.length;
  const y = apply(gemmCard, [new Tensor(x.slice(), [n, 1]), Tensor.ones([1, 8])], { ...GEMM_DEFAULTS, activation: act }, backend);
  const d = Float32Array.from(y.dataSync());
  y.dispose();
  return Array.from({ length: 8 }, (_, j) => Float32Array.from({ length: n }, (_, i) => d[i * 8 + j]!));
}

/** Runs fn inside a kernel-memory arena with `inputs` copied into it (the graph runner's setting). */
function inArena(inputs: Float32Array[], fn: (resident: Float32Array[]) => Tensor): Float32Array {
  const arena = openArena();
  if (!arena) throw new Error('no WebAssembly arena');
  try {
    return withOutputArena(arena, () => {
      const resident = inputs.map((a) => {
        const r = arena.alloc(a.length);
        r.set(a);
        return r;
      });
      const y = fn(resident);
      // The output must be in kernel memory, or the WebAssembly kernel did not write it.
      expect(runtime()!.addressOf(y.dataSync() as Float32Array)).toBeGreaterThanOrEqual(0);
      return Float32Array.from(y.dataSync());
    });
  } finally {
    arena.close();
  }
}

const hasWasm = wasmKernelsEnabled();

describe('special values: activations and math functions on every CPU path', () => {
  for (const [name, op] of Object.entries(UNARY)) {
    const want = unaryWant(name);
    it(`${name}: reference and TypeScript kernels`, () => {
      const x = new Tensor(X.slice(), [X.length]);
      expect(mismatches(withBackend(referenceBackend, () => unary(x, op)).dataSync(), want, atX), 'reference').toEqual([]);
      expect(mismatches(withWasmKernels(false, () => unary(x, op)).dataSync(), want, atX), 'TypeScript').toEqual([]);
    });
  }
  for (const [name, act] of ACTIVATIONS) {
    it(`${name}: fused into conv (pointwise, depthwise) and Gemm epilogues, TypeScript`, () => {
      const want = fusedWant(name);
      withWasmKernels(false, () => {
        for (const [what, rows] of [
          ['conv', convRows(X, act, cpuBackend)],
          ['depthwise conv', convRows(X, act, cpuBackend, true)],
          ['Gemm', gemmRows(X, act, cpuBackend)],
        ] as const) {
          for (const r of rows) expect(mismatches(r, want, atX), `TypeScript ${what}`).toEqual([]);
        }
      });
    });
  }
});

describe.runIf(hasWasm)('special values: WebAssembly kernels', () => {
  for (const [name, act] of ACTIVATIONS) {
    it(`${name}: unfused (an activation node in kernel memory) and fused into conv and Gemm`, () => {
      if (WASM_KINDS.has(act.kind)) {
        const y = inArena([X], ([x]) => unary(new Tensor(x!, [X.length]), act));
        expect(mismatches(y, unaryWant(name), atX), 'WebAssembly unfused').toEqual([]);
      }
      const want = fusedWant(name);
      withWasmKernels(true, () => {
        for (const [what, rows] of [
          ['conv', convRows(X, act, cpuBackend)],
          ['depthwise conv', convRows(X, act, cpuBackend, true)],
          ['Gemm', gemmRows(X, act, cpuBackend)],
        ] as const) {
          for (const r of rows) expect(mismatches(r, want, atX), `WebAssembly ${what}`).toEqual([]);
        }
      });
    });
  }
});

const A = fromBits(fixture.binary.a);
const B = fromBits(fixture.binary.b);
const atAB = (i: number) => `(${Object.is(A[i], -0) ? '-0' : A[i]}, ${Object.is(B[i], -0) ? '-0' : B[i]})`;
const BINARY: BinaryOp[] = ['Add', 'Sub', 'Mul', 'Div', 'Pow'];

describe('special values: binary ops', () => {
  for (const op of BINARY) {
    const want = fromBits(fixture.binary.y[op]);
    it(`${op}: reference, TypeScript and WebAssembly kernels, same shapes and broadcast`, () => {
      const a = new Tensor(A.slice(), [A.length]);
      const b = new Tensor(B.slice(), [B.length]);
      expect(mismatches(withBackend(referenceBackend, () => binary(a, b, op)).dataSync(), want, atAB), 'reference').toEqual([]);
      expect(mismatches(withWasmKernels(false, () => binary(a, b, op)).dataSync(), want, atAB), 'TypeScript').toEqual([]);
      // Broadcast rows: [16, 1] ∘ [1, 16] is the same table (a slow, b fast).
      const side = Math.sqrt(A.length);
      const ac = new Tensor(A.filter((_, i) => i % side === 0), [side, 1]);
      const br = new Tensor(B.slice(0, side), [1, side]);
      expect(mismatches(withWasmKernels(false, () => binary(ac, br, op)).dataSync(), want, atAB), 'TypeScript broadcast').toEqual([]);
      if (hasWasm && op !== 'Pow') {
        const y = inArena([A, B], ([ra, rb]) => binary(new Tensor(ra!, [A.length]), new Tensor(rb!, [B.length]), op));
        expect(mismatches(y, want, atAB), 'WebAssembly').toEqual([]);
      }
    });
  }

  it('Pow(1, y) = 1 for any y, NaN included, and Pow(−1, ±∞) = 1 (C, NumPy, onnxruntime)', () => {
    const ys = [NaN, Infinity, -Infinity, 0, -0, 2.5];
    for (const backend of [referenceBackend, cpuBackend]) {
      const one = withBackend(backend, () => binary(Tensor.ones([ys.length]), Tensor.fromArray(ys, [ys.length]), 'Pow'));
      expect(one.toArray()).toEqual(ys.map(() => 1));
      const m1 = withBackend(backend, () => binary(Tensor.full([2], -1), Tensor.fromArray([Infinity, -Infinity], [2]), 'Pow'));
      expect(m1.toArray()).toEqual([1, 1]);
    }
  });
});

describe.each(MODES)('special values: gpu.js kernels in %s mode', (mode) => {
  let g: GpuBackend;
  beforeAll(async () => {
    g = await gpu({ mode, log: () => {} });
  });
  afterAll(() => g.destroy());

  // Below 2^24 elements and float32: each of these runs as a gpu.js kernel (erf and Pow have
  // none and run on the CPU kernels, tested above).
  for (const [name, op] of Object.entries(UNARY)) {
    if (op.kind === 'erf') continue;
    it(`${name}: elementwise kernel${op.kind in { exp: 1, sqrt: 1, neg: 1, abs: 1 } ? '' : ', and fused into conv and Gemm'}`, () => {
      const x = new Tensor(X.slice(), [X.length]);
      const y = apply(unaryCard, [x], op, g);
      expect(mismatches(Float32Array.from(y.dataSync()), unaryWant(name), atX), `gpu.js ${mode}`).toEqual([]);
      y.dispose();
      if (['exp', 'sqrt', 'neg', 'abs'].includes(op.kind)) return;
      const want = fusedWant(name);
      for (const r of [...convRows(X, op as Activation, g), ...gemmRows(X, op as Activation, g)]) expect(mismatches(r, want, atX), `gpu.js ${mode} fused`).toEqual([]);
    });
  }

  for (const op of ['Add', 'Sub', 'Mul', 'Div'] as const) {
    it(`${op}: binary kernel`, () => {
      const y = apply(binaryCard, [new Tensor(A.slice(), [A.length]), new Tensor(B.slice(), [B.length])], op, g);
      expect(mismatches(Float32Array.from(y.dataSync()), fromBits(fixture.binary.y[op]), atAB), `gpu.js ${mode}`).toEqual([]);
      y.dispose();
    });
  }
});

describe('int64 beyond 2^53: a typed error, never a rounded value', () => {
  const big = 2 ** 52;
  const cases: [string, () => Tensor][] = [
    ['Add 2^52 + 2^52', () => binary(Tensor.fromArray([big], [1], 'int64'), Tensor.fromArray([big], [1], 'int64'), 'Add')],
    ['Sub −2^52 − 2^52', () => binary(Tensor.fromArray([-big], [1], 'int64'), Tensor.fromArray([big], [1], 'int64'), 'Sub')],
    ['Mul 2^31 · 2^31', () => binary(Tensor.fromArray([2 ** 31], [1], 'int64'), Tensor.fromArray([2 ** 31], [1], 'int64'), 'Mul')],
    ['Mul 3037000500² (just past 2^63)', () => binary(Tensor.fromArray([3037000500], [1], 'int64'), Tensor.fromArray([3037000500], [1], 'int64'), 'Mul')],
    ['Pow 3^34', () => binary(Tensor.fromArray([3], [1], 'int64'), Tensor.fromArray([34], [1], 'int64'), 'Pow')],
    ['uint64 Sub 3 − 5 (would wrap)', () => binary(Tensor.fromArray([3], [1], 'uint64'), Tensor.fromArray([5], [1], 'uint64'), 'Sub')],
    ['ReduceSum of 2^52 twice', () => reduceSum(Tensor.fromArray([big, big], [2], 'int64'), [0])],
  ];
  for (const backend of [referenceBackend, cpuBackend]) {
    for (const [what, run] of cases) {
      it(`${what} (${backend.name})`, () => {
        expect(() => withBackend(backend, run)).toThrow(ValueError);
        expect(() => withBackend(backend, run)).toThrow(/outside .*2\^53/);
      });
    }
  }

  it('results up to 2^53 − 1 stay exact (checked against BigInt)', () => {
    const pairs: [number, number, BinaryOp][] = [
      [2 ** 53 - 2, 1, 'Add'],
      [-(2 ** 53 - 2), -1, 'Add'],
      [94906265, 94906265, 'Mul'], // 9007199136250225 < 2^53
      [3, 33, 'Pow'], // 5559060566555523
      [-7, 18, 'Pow'],
      [2 ** 53 - 1, 2 ** 26, 'Div'],
    ];
    const exact = (a: bigint, b: bigint, op: BinaryOp): bigint => (op === 'Add' ? a + b : op === 'Mul' ? a * b : op === 'Pow' ? a ** b : a / b);
    for (const backend of [referenceBackend, cpuBackend]) {
      for (const [a, b, op] of pairs) {
        const y = withBackend(backend, () => binary(Tensor.fromArray([a], [1], 'int64'), Tensor.fromArray([b], [1], 'int64'), op));
        expect(BigInt(y.toArray()[0]!), `${a} ${op} ${b}`).toBe(exact(BigInt(a), BigInt(b), op));
      }
    }
  });
});
