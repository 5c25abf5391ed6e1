import { describe, expect, it } from 'vitest';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import type { Activation } from '../../src/kernels/activation.js';
import { type ConvOptions, conv } from '../../src/kernels/conv.js';
import { gemm } from '../../src/kernels/gemm.js';
import { Fn, I32, moduleBytes } from '../../src/kernels/wasm/emit.js';
import { markConstant, runtime, wasmKernelsEnabled, wasmSimdSupported, withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { Rng, expectClose, randomTensor } from '../helpers.js';

/** float32 sums in another order than the float64 reference: tolerance scaled to max|y| (see conv.test.ts). */
const TOL = { atol: 2e-5, rtol: 1e-4 };

const ACTIVATIONS: Activation[] = [
  { kind: 'none' },
  { kind: 'relu' },
  { kind: 'leaky_relu', alpha: 0.1 },
  { kind: 'clip', min: 0, max: 6 },
  { kind: 'sigmoid' },
  { kind: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 },
  { kind: 'hard_swish' },
  { kind: 'silu' },
  { kind: 'tanh' },
];

const MODES = [
  ['WebAssembly SIMD', true],
  ['TypeScript', false],
] as const;

let seed = 500;
function check(x: number[], w: number[], opts: ConvOptions, wasm: boolean, scale = 1): void {
  const X = Tensor.rand(x, { seed: seed++, low: -scale, high: scale });
  const W = randomTensor(w, seed++);
  const B = randomTensor([w[0]!], seed++);
  const fast = withWasmKernels(wasm, () => conv(X, W, B, opts));
  const ref = withBackend(referenceBackend, () => conv(X, W, B, opts));
  expectClose(fast, ref, { ...TOL, what: `${wasm ? 'wasm' : 'ts'} conv x${JSON.stringify(x)} w${JSON.stringify(w)} ${JSON.stringify(opts)}` });
}

describe('wasm emitter', () => {
  it('writes i32.const with signed LEB128 (64 is not a lone 0x40)', () => {
    for (const v of [0, 1, 63, 64, -64, -65, 127, 128, 8191, 8192, -8193, 2 ** 31 - 1, -(2 ** 31)]) {
      const f = new Fn('c', [], [I32]);
      f.i32(v);
      const bytes = moduleBytes([f], { initial: 1, maximum: 1, shared: false });
      const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 1 }) } });
      expect((inst.exports.c as () => number)()).toBe(v);
    }
  });
  it('detects SIMD support with WebAssembly.validate', () => {
    expect(typeof wasmSimdSupported()).toBe('boolean');
    // Node 20 has SIMD: the kernels must be on by default here.
    expect(wasmKernelsEnabled()).toBe(wasmSimdSupported());
  });
});

describe.each(MODES)('conv parity, %s kernels', (_, wasm) => {
  it('1×1 convs: ragged M and N (N % 8 = 0, 4 and odd), groups, long K', () => {
    check([2, 16, 4, 4], [24, 16, 1, 1], {}, wasm);
    check([1, 16, 3, 4], [13, 16, 1, 1], {}, wasm);
    check([1, 16, 3, 3], [5, 16, 1, 1], {}, wasm);
    check([3, 8, 1, 1], [5, 8, 1, 1], {}, wasm);
    check([2, 8, 3, 3], [6, 4, 1, 1], { group: 2 }, wasm);
    check([1, 1100, 4, 5], [9, 1100, 1, 1], {}, wasm);
  });
  it.each(ACTIVATIONS.map((a) => [a.kind, a] as const))('fused bias + %s (1×1, im2col, depthwise)', (_, activation) => {
    check([2, 12, 5, 6], [10, 12, 1, 1], { activation }, wasm, 4);
    check([1, 3, 13, 11], [8, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], activation }, wasm, 4);
    check([1, 6, 9, 10], [6, 1, 3, 3], { group: 6, pads: [1, 1, 1, 1], activation }, wasm, 4);
  });
  it('im2col convs: stride 1, 2, 3, dilation, asymmetric pads, chunked positions', () => {
    check([1, 3, 23, 23], [16, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, wasm);
    check([2, 5, 10, 9], [7, 5, 3, 2], { pads: [1, 0, 2, 1], dilations: [2, 1] }, wasm);
    check([1, 4, 17, 17], [6, 4, 3, 3], { strides: [3, 3], pads: [1, 1, 1, 1] }, wasm);
    check([1, 4, 9, 9], [4, 4, 1, 1], { strides: [2, 2] }, wasm);
    check([1, 64, 40, 40], [8, 64, 3, 3], { pads: [1, 1, 1, 1] }, wasm); // K·positions > one column chunk
    check([2, 4, 1, 9], [6, 2, 1, 3], { group: 2, pads: [0, 1, 0, 1] }, wasm);
  });
  it('depthwise 3×3 / 5×5: strides 1 and 2, dilation, rows narrower than 4, 1-D', () => {
    check([2, 8, 9, 9], [8, 1, 3, 3], { pads: [1, 1, 1, 1], group: 8 }, wasm);
    check([1, 8, 11, 11], [8, 1, 5, 5], { strides: [2, 2], pads: [2, 2, 2, 2], group: 8 }, wasm);
    check([1, 8, 7, 7], [8, 1, 5, 5], { pads: [4, 4, 4, 4], dilations: [2, 2], group: 8 }, wasm);
    check([1, 8, 2, 2], [8, 1, 3, 3], { pads: [1, 1, 1, 1], group: 8 }, wasm);
    check([1, 4, 3, 5], [4, 1, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], group: 4 }, wasm);
    check([1, 4, 50, 47], [4, 1, 3, 3], { group: 4, strides: [2, 2], pads: [1, 0, 0, 1] }, wasm);
    check([2, 3, 20], [3, 1, 5], { group: 3, pads: [2, 2], strides: [2] }, wasm);
    check([1, 3, 4, 4], [3, 1, 3, 3], { group: 3, pads: [3, 4, 3, 2] }, wasm);
  });
  it('200 seeded random configurations', () => {
    const rng = new Rng(77);
    const pick = (lo: number, hi: number) => lo + rng.int(hi - lo + 1);
    for (let t = 0; t < 200; t++) {
      const dw = rng.next() < 0.5;
      const c = pick(1, 6);
      const m = dw ? c : pick(1, 9);
      const [kh, kw] = [pick(1, 5), pick(1, 5)];
      const [sh, sw] = [pick(1, 2), pick(1, 3)];
      const [dh, dwl] = [pick(1, 2), pick(1, 2)];
      const pads = [pick(0, 2), pick(0, 2), pick(0, 2), pick(0, 2)];
      const h = pick(Math.max(1, (kh - 1) * dh + 1 - pads[0]! - pads[2]!), 12);
      const w = pick(Math.max(1, (kw - 1) * dwl + 1 - pads[1]! - pads[3]!), 12);
      check([pick(1, 2), c, h, w], [m, dw ? 1 : c, kh, kw], { group: dw ? c : 1, strides: [sh, sw], dilations: [dh, dwl], pads, activation: ACTIVATIONS[t % ACTIVATIONS.length]! }, wasm);
    }
  });
});

describe('Gemm on the wasm kernels', () => {
  it.each([1, 3, 16])('classifier shape with %i rows, transB and not, constant weights, fused activation', (m) => {
    for (const transB of [true, false]) {
      const A = randomTensor([m, 37], seed++);
      const B = randomTensor(transB ? [29, 37] : [37, 29], seed++);
      markConstant(B.dataSync() as Float32Array);
      const C = randomTensor([29], seed++);
      for (const activation of [ACTIVATIONS[0]!, ACTIVATIONS[6]!, ACTIVATIONS[7]!]) {
        const attrs = { transB, beta: 0.5, activation };
        const ref = withBackend(referenceBackend, () => gemm(A, B, C, attrs));
        expectClose(withWasmKernels(true, () => gemm(A, B, C, attrs)), ref, TOL);
        expectClose(withWasmKernels(true, () => gemm(A, B, C, attrs)), ref, TOL); // second call: cached packed weights
        expectClose(withWasmKernels(false, () => gemm(A, B, C, attrs)), ref, TOL);
      }
    }
  });
});

describe('wasm runtime', () => {
  it('is deterministic: the same call gives the same bits', () => {
    const X = randomTensor([1, 32, 14, 14], 1);
    const W = randomTensor([48, 32, 1, 1], 2);
    const a = conv(X, W).dataSync();
    const b = conv(X, W).dataSync();
    expect(Array.from(a)).toEqual(Array.from(b));
  });
  it('returns scratch memory after each call (only cached constant weights stay)', () => {
    const rt = runtime()!;
    const before = rt.allocatedBytes;
    check([1, 8, 9, 9], [8, 1, 3, 3], { pads: [1, 1, 1, 1], group: 8 }, true);
    check([1, 16, 6, 6], [24, 16, 1, 1], {}, true);
    check([1, 3, 13, 11], [8, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, true);
    expect(rt.allocatedBytes).toBe(before);
  });
  it('survives memory growth (views are re-made)', () => {
    check([1, 64, 128, 128], [32, 64, 1, 1], {}, true);
    check([1, 16, 6, 6], [24, 16, 1, 1], {}, true);
  });
});

describe('wasm sigmoid / SiLU epilogue (polynomial exp)', () => {
  it('matches Math.exp-based activations from −100 to 100, NaN stays NaN', () => {
    const n = 4001;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = -100 + (200 * i) / (n - 1);
    x[7] = NaN;
    const X = new Tensor(x, [1, 1, 1, n]);
    const W = new Tensor(new Float32Array([1]), [1, 1, 1, 1]);
    for (const activation of [{ kind: 'sigmoid' }, { kind: 'silu' }] as Activation[]) {
      const got = withWasmKernels(true, () => conv(X, W, null, { activation })).dataSync();
      const want = withBackend(referenceBackend, () => conv(X, W, null, { activation })).dataSync();
      expect(Number.isNaN(got[7]!)).toBe(true);
      for (let i = 0; i < n; i++) {
        if (i === 7) continue;
        expect(Math.abs(got[i]! - want[i]!), `x = ${x[i]}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want[i]!)));
      }
    }
  });
});

describe('packed weight cache', () => {
  it('drops a constant weight once it is being trained (in-place updates are seen)', () => {
    const X = randomTensor([1, 8, 5, 5], 901);
    const W = randomTensor([12, 8, 1, 1], 902);
    markConstant(W.dataSync() as Float32Array);
    const before = conv(X, W).dataSync().slice();
    W.requiresGrad = true;
    const w = W.dataSync();
    for (let i = 0; i < w.length; i++) w[i] = w[i]! * 2; // an optimizer step, in place
    const after = withWasmKernels(true, () => conv(X, W));
    expectClose(after, withBackend(referenceBackend, () => conv(X, W)), TOL);
    expect(after.dataSync()[0]).toBeCloseTo(2 * before[0]!, 4);
  });
});

describe('worker threads', () => {
  it('two threads give the same bits as one (GEMM grid and depthwise chunks), and the pool stops at 1', async () => {
    const { setThreads } = await import('../../src/core/threads.js');
    const { tuning } = await import('../../src/kernels/wasm/pool.js');
    const saved = { ...tuning };
    const X = randomTensor([2, 48, 20, 20], 1201);
    const W1 = randomTensor([64, 48, 1, 1], 1202);
    const Wd = randomTensor([48, 1, 3, 3], 1203);
    const Wc = randomTensor([16, 48, 3, 3], 1204);
    // 1×1 convs in several column blocks (copied in and out) and with images side by side.
    const Xb = randomTensor([2, 16, 40, 40], 1205);
    const Wb = randomTensor([72, 16, 1, 1], 1206);
    const Xs = randomTensor([12, 24, 7, 7], 1207);
    const Ws = randomTensor([256, 24, 1, 1], 1208);
    const run = () => [
      conv(Xb, Wb, null, { activation: { kind: 'relu' } }).dataSync().slice(),
      conv(Xs, Ws, null, {}).dataSync().slice(),
      conv(X, W1, null, { activation: { kind: 'silu' } }).dataSync().slice(),
      conv(X, Wd, null, { group: 48, pads: [1, 1, 1, 1], activation: { kind: 'silu' } }).dataSync().slice(),
      conv(X, Wc, null, { pads: [1, 1, 1, 1], strides: [2, 2] }).dataSync().slice(),
    ];
    const one = run();
    try {
      setThreads(2);
      // These shapes are below the work thresholds: force small chunks so threads really split them.
      Object.assign(tuning, { minParallelNs: 0, minChunkNs: 0, chunksPerThread: 6 });
      run(); // starts the worker
      await new Promise((r) => setTimeout(r, 500));
      for (let rep = 0; rep < 3; rep++) {
        const two = run();
        two.forEach((t, i) => expect(Array.from(t)).toEqual(Array.from(one[i]!)));
      }
    } finally {
      Object.assign(tuning, saved);
      setThreads(1);
    }
    run(); // back to one thread: workers are stopped
  });

  it('a kernel that traps in any thread throws (no hang), and the pool keeps working', async () => {
    const { setThreads } = await import('../../src/core/threads.js');
    const rt = runtime()!;
    const X = randomTensor([1, 16, 12, 12], 1301);
    const W = randomTensor([24, 16, 1, 1], 1302);
    const good = conv(X, W).dataSync().slice();
    try {
      setThreads(2);
      conv(X, W); // starts the worker
      await new Promise((r) => setTimeout(r, 300));
      // Every chunk reads far past the end of memory: a trap wherever it runs.
      const beyond = rt.memory.buffer.byteLength + (1 << 20);
      const chunks = Array.from({ length: 64 }, () => [['bin_Add_vv', beyond, 0, beyond, 0, beyond, 1, 4096] as const]);
      for (let rep = 0; rep < 3; rep++) expect(() => rt.pool.run(chunks)).toThrow();
      expect(Array.from(conv(X, W).dataSync())).toEqual(Array.from(good));
    } finally {
      setThreads(1);
    }
  });
});
