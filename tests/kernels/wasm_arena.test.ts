import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { withOutputArena } from '../../src/core/storage.js';
import { Tensor } from '../../src/core/tensor.js';
import type { Activation } from '../../src/kernels/activation.js';
import { conv, convGeometry } from '../../src/kernels/conv.js';
import { wasmConv } from '../../src/kernels/wasm/conv.js';
import { binary } from '../../src/kernels/elementwise.js';
import { gelu } from '../../src/kernels/gelu.js';
import { concat } from '../../src/kernels/movement.js';
import { batchNorm } from '../../src/kernels/normalization.js';
import { type PoolAttrs, averagePool, globalAveragePool, maxPool } from '../../src/kernels/pool.js';
import { KernelArena, openArena } from '../../src/kernels/wasm/arena.js';
import { wasmPool2d } from '../../src/kernels/wasm/pooling.js';
import { type Runtime, runtime, withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { type Pool, ThreadChoice, tuning } from '../../src/kernels/wasm/pool.js';
import { getThreads, setThreads } from '../../src/core/threads.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { ResourceLimitError, ShapeError } from '../../src/core/errors.js';
import { expectClose, randomTensor } from '../helpers.js';
import { modelBytes, node } from '../onnx/build.js';

/** float32 sums in another order than the float64 reference: tolerance scaled to max|y| (see conv.test.ts). */
const TOL = { atol: 2e-5, rtol: 1e-4 };
const FIXTURES = join(import.meta.dirname, '../fixtures/models');

/**
 * Runs fn with kernel outputs in an arena (wasm memory), then copies the result out. Inputs are
 * placed in the arena too, so the kernels take their in-place paths for both sides.
 */
function inArena(inputs: Tensor[], fn: (...xs: Tensor[]) => Tensor): Tensor {
  const arena = openArena();
  expect(arena).not.toBeNull();
  try {
    return withOutputArena(arena, () => {
      const placed = inputs.map((t) => {
        const d = arena!.alloc(t.size);
        d.set(t.dataSync() as Float32Array);
        return new Tensor(d, t.shape);
      });
      const y = fn(...placed);
      expect(runtime()!.addressOf(y.dataSync() as Float32Array)).toBeGreaterThanOrEqual(0);
      return new Tensor((y.dataSync() as Float32Array).slice(), y.shape);
    });
  } finally {
    arena!.close();
  }
}

describe('kernels reading and writing wasm memory in place (the arena)', () => {
  it('convs match the reference in place: ragged M (not a multiple of 4), N (not of 8), groups, batches', () => {
    const cases: [number[], number[], Parameters<typeof conv>[3]][] = [
      [[1, 16, 7, 7], [22, 16, 1, 1], {}], // N = 49: 6 panels + 1 column; M = 22: a partial panel
      [[3, 24, 5, 5], [10, 24, 1, 1], {}], // small planes: images side by side
      [[2, 12, 9, 9], [18, 4, 1, 1], { group: 3 }],
      [[1, 8, 13, 11], [6, 8, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }],
      [[2, 5, 10, 10], [7, 5, 3, 3], { pads: [2, 0, 1, 2], dilations: [2, 1] }],
      [[2, 12, 11, 9], [12, 1, 5, 5], { group: 12, pads: [2, 2, 2, 2], strides: [2, 2] }],
      [[1, 9, 6, 6], [9, 1, 3, 3], { group: 9, pads: [1, 1, 1, 1], activation: { kind: 'silu' } }],
      [[1, 72, 1, 1], [18, 72, 1, 1], { activation: { kind: 'relu' } }], // an SE gate's 1×1 plane: one column read in place
      [[1, 3, 17, 16], [5, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], activation: { kind: 'hard_swish' } }], // a stem conv
    ];
    let seed = 900;
    for (const [x, w, opts] of cases) {
      const X = randomTensor(x, seed++);
      const W = randomTensor(w, seed++);
      const B = randomTensor([w[0]!], seed++);
      const got = inArena([X], (xa) => conv(xa!, W, B, opts));
      const ref = withBackend(referenceBackend, () => conv(X, W, B, opts));
      expectClose(got, ref, { ...TOL, what: `arena conv x${JSON.stringify(x)} w${JSON.stringify(w)} ${JSON.stringify(opts)}` });
      // Cut into as many chunks as possible (two threads): the same bits.
      const saved = { ...tuning };
      try {
        setThreads(2);
        Object.assign(tuning, { minParallelNs: 0, minChunkNs: 0, chunksPerThread: 8 });
        const chunked = inArena([X], (xa) => conv(xa!, W, B, opts));
        expect(Array.from(chunked.dataSync()), `chunked ${JSON.stringify(w)}`).toEqual(Array.from(got.dataSync()));
      } finally {
        Object.assign(tuning, saved);
        setThreads(1);
      }
    }
  });

  it('max and average pools match the reference in place (strides 1 and 2, dilation, padding, ceil mode, NaN)', () => {
    const cases: [number[], PoolAttrs][] = [
      [[2, 3, 8, 8], { kernel: [2, 2], strides: [2, 2] }],
      [[1, 4, 9, 11], { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
      [[1, 2, 10, 9], { kernel: [3, 3], strides: [1, 1], pads: [1, 0, 2, 1], dilations: [2, 1] }],
      [[1, 3, 7, 7], { kernel: [3, 3], strides: [2, 2], ceilMode: true }],
      [[1, 5, 6, 13], { kernel: [2, 3], strides: [1, 2], pads: [1, 1, 1, 1], countIncludePad: true }],
    ];
    let seed = 300;
    for (const [x, attrs] of cases) {
      const X = randomTensor(x, seed++);
      const withNaN = new Tensor((X.dataSync() as Float32Array).slice(), X.shape);
      withNaN.dataSync()[5] = Number.NaN; // never wins a max
      for (const [name, op] of [['max', maxPool], ['avg', averagePool]] as const) {
        const input = name === 'max' ? withNaN : X;
        const got = inArena([input], (xa) => op(xa!, attrs));
        expect(Array.from(got.dataSync()).some(Number.isNaN), name).toBe(false);
        const ref = withBackend(referenceBackend, () => op(input, attrs));
        expectClose(got, ref, { ...TOL, what: `arena ${name} pool x${JSON.stringify(x)} ${JSON.stringify(attrs)}` });
      }
    }
  });

  it('pools on the WebAssembly kernels what they cover, and leave the rest to TypeScript', () => {
    const arena = openArena()!;
    try {
      const g = { planes: 2, h: 7, w: 7, oh: 3, ow: 3, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pads: [0, 0, 0, 0] as const };
      const [x, y] = [arena.alloc(2 * 49), arena.alloc(2 * 9)];
      expect(wasmPool2d('max', x, y, g, false)).toBe(true);
      expect(wasmPool2d('avg', x, y, g, false)).toBe(true);
      expect(wasmPool2d('max', x, y, { ...g, sw: 3 }, false)).toBe(false); // width stride 3
      const padded = { ...g, oh: 4, ow: 4, pads: [1, 1, 1, 1] as const };
      expect(wasmPool2d('avg', x, y, padded, false)).toBe(false); // the divisor changes at the borders
      expect(wasmPool2d('avg', x, y, padded, true)).toBe(true);
      expect(wasmPool2d('max', new Float32Array(98), y, g, false)).toBe(false); // input not in kernel memory
      // Rows of 3 outputs (vector tails): nothing written past the output.
      const rt = runtime()!;
      const after = new Float32Array(rt.memory.buffer, rt.addressOf(y) + 4 * y.length, 16).fill(7);
      x.fill(1);
      expect(wasmPool2d('avg', x, y, g, false)).toBe(true);
      expect(Array.from(y)).toEqual(new Array(18).fill(1));
      expect(Array.from(after)).toEqual(new Array(16).fill(7));
    } finally {
      arena.close();
    }
  });

  it('writes nothing outside the output: the floats after it stay as they were', () => {
    const arena = openArena()!;
    try {
      const rt = runtime()!;
      for (const [x, w, opts] of [
        [[1, 16, 7, 7], [22, 16, 1, 1], {}],
        [[1, 6, 5, 7], [6, 1, 3, 3], { group: 6, pads: [1, 1, 1, 1], activation: { kind: 'silu' } }],
        [[1, 3, 9, 9], [5, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }],
        [[2, 5, 9, 11], [5, 1, 5, 5], { group: 5, strides: [2, 2], pads: [2, 2, 2, 2], activation: { kind: 'silu' } }],
      ] as const) {
        const X = randomTensor([...x], 3);
        const W = randomTensor([...w], 4);
        const o = opts as { group?: number; pads?: number[]; strides?: number[]; activation?: Activation };
        const attrs = { strides: o.strides ?? [1, 1], pads: o.pads ?? [0, 0, 0, 0], dilations: [1, 1], group: o.group ?? 1, activation: o.activation ?? { kind: 'none' as const } };
        const g = convGeometry([X.shape, W.shape], attrs);
        const y = arena.alloc(g.n * g.m * g.oh * g.ow);
        const after = new Float32Array(rt.memory.buffer, rt.addressOf(y) + 4 * y.length, 16).fill(7);
        expect(wasmConv(X.dataSync() as Float32Array, W.dataSync() as Float32Array, null, y, g, attrs.activation)).toBe(true);
        expect(Array.from(after)).toEqual(new Array(16).fill(7));
      }
    } finally {
      arena.close();
    }
  });

  it('elementwise ops: same shape, per-channel gates on either side, scalars; odd lengths (vector tails)', () => {
    const shapes: [number[], number[]][] = [
      [[1, 5, 7, 3], [1, 5, 7, 3]],
      [[2, 6, 5, 5], [2, 6, 1, 1]],
      [[2, 6, 1, 1], [2, 6, 5, 5]],
      [[1, 3, 3, 3], [1]],
      [[1], [2, 3, 9]],
      [[1, 1, 1, 2051], [1, 1, 1, 2051]],
    ];
    let seed = 40;
    for (const op of ['Add', 'Sub', 'Mul', 'Div'] as const) {
      for (const [sa, sb] of shapes) {
        const A = randomTensor(sa, seed++);
        const B = Tensor.rand(sb, { seed: seed++, low: 0.5, high: 2 });
        const got = inArena([A, B], (a, b) => binary(a!, b!, op));
        const ref = withBackend(referenceBackend, () => binary(A, B, op));
        expectClose(got, ref, { atol: 1e-6, rtol: 1e-6, what: `${op} ${JSON.stringify(sa)} ∘ ${JSON.stringify(sb)}` });
      }
    }
  });

  it('GELU (exact form) on the WebAssembly kernel: the reference within float32 error, special values as the TS kernel', () => {
    // A dense sweep over [−12, 12] (both sides of the ±4·√2 switch to erf = ±1) and odd lengths
    // (the pass's 8-vector, vector and lane tails).
    for (const n of [1, 7, 33, 2051]) {
      const X = new Tensor(Float32Array.from({ length: n }, (_, i) => -12 + (24 * i) / Math.max(1, n - 1)), [n]);
      const got = inArena([X], (x) => gelu(x!));
      const ref = withBackend(referenceBackend, () => gelu(X));
      // float32 evaluation of erf's rational form (the TS kernel evaluates it in float64): a few
      // ulps of erf, seen as up to ~1e-6 absolute on values of size up to 12.
      expectClose(got, ref, { atol: 2e-6, rtol: 2e-6, what: `Gelu n=${n}` });
      // The WebAssembly kernel ran: erf evaluated in float32 differs in the last bits from the
      // TS kernel's float64 evaluation on part of the sweep.
      if (n === 2051) {
        const ts = withWasmKernels(false, () => gelu(X)).dataSync();
        expect(Array.from(got.dataSync()).some((v, i) => v !== ts[i])).toBe(true);
      }
    }
    const special = new Tensor(Float32Array.from([NaN, Infinity, -Infinity, -0, 0, -100, 100, 3.4e38, -3.4e38, 1e-30]), [10]);
    const got = [...(inArena([special], (x) => gelu(x!)).dataSync() as Float32Array)];
    const ts = [...(withWasmKernels(false, () => gelu(special)).dataSync() as Float32Array)];
    expect(got.map((v) => (Object.is(v, -0) ? '-0' : String(v)))).toEqual(ts.map((v) => (Object.is(v, -0) ? '-0' : String(v))));
  });

  it('inference BatchNormalization (+ ReLU) runs in kernel memory: the reference within float32 error, in place', () => {
    const X = randomTensor([2, 6, 7, 9], 120); // 63 floats per plane: a lane tail on every plane
    const params = [randomTensor([6], 121), randomTensor([6], 122), randomTensor([6], 123), Tensor.rand([6], { seed: 124, low: 0.5, high: 2 })];
    for (const activation of [undefined, { kind: 'relu' as const }, { kind: 'tanh' as const }]) {
      const attrs = { epsilon: 1e-5, ...(activation ? { activation } : {}) };
      const got = inArena([X], (x) => batchNorm(x!, params[0]!, params[1]!, params[2]!, params[3]!, attrs));
      const ref = withBackend(referenceBackend, () => batchNorm(X, params[0]!, params[1]!, params[2]!, params[3]!, attrs));
      expectClose(got, ref, { atol: 1e-6, rtol: 1e-5, what: `BN ${activation?.kind ?? 'none'}` });
      // The WebAssembly kernel ran: a·x + b in float32, where the TS loop rounds once from float64.
      const ts = withWasmKernels(false, () => batchNorm(X, params[0]!, params[1]!, params[2]!, params[3]!, attrs)).dataSync();
      expect(Array.from(got.dataSync()).some((v, i) => v !== ts[i])).toBe(true);
    }
  });

  it('Concat writes its output in kernel memory (kernel copies), equal to the reference on any axis', () => {
    const cases: [number[][], number][] = [
      [[[1, 3, 5, 7], [1, 4, 5, 7], [1, 1, 5, 7]], 1], // DenseNet's channel concat
      [[[2, 3, 5, 7], [2, 2, 5, 7]], 1],
      [[[2, 3, 5, 7], [2, 3, 5, 2]], 3],
      [[[2, 3], [5, 3]], 0],
      [[[1, 0, 4], [1, 2, 4]], 1], // an empty input
    ];
    for (const [shapes, axis] of cases) {
      const xs = shapes.map((sh, i) => randomTensor(sh, 90 + i));
      const got = inArena(xs, (...ts) => concat(ts as Tensor[], axis));
      const ref = withBackend(referenceBackend, () => concat(xs, axis));
      expect(got.shape).toEqual(ref.shape);
      expect(Array.from(got.dataSync())).toEqual(Array.from(ref.dataSync()));
    }
  });

  it('global average pool over planes of any size', () => {
    for (const shape of [[2, 3, 7, 7], [1, 5, 1, 1], [1, 4, 13, 11], [3, 2, 112, 112]]) {
      const X = randomTensor(shape, shape[2]!);
      const got = inArena([X], (x) => globalAveragePool(x!));
      const ref = withBackend(referenceBackend, () => globalAveragePool(X));
      expectClose(got, ref, { atol: 1e-6, rtol: 1e-5, what: `GAP ${JSON.stringify(shape)}` });
    }
  });
});

describe('arena limits', () => {
  it('hands out a plain array when kernel memory cannot grow (the kernels then copy), other errors pass', () => {
    const full = { alloc: () => { throw new ResourceLimitError('full'); } } as unknown as Runtime;
    const a = new KernelArena(full).alloc(10);
    expect(a).toBeInstanceOf(Float32Array);
    expect(a.length).toBe(10);
    const broken = { alloc: () => { throw new TypeError('bug'); } } as unknown as Runtime;
    expect(() => new KernelArena(broken).alloc(10)).toThrow(TypeError);
  });
});

describe('graph runs with the arena', () => {
  // Not replayed: these check the node-by-node runs (replays are tested in wasm_plan.test.ts).
  const model = loadOnnxSync(new Uint8Array(readFileSync(join(FIXTURES, 'effnet_mini/model.onnx'))), { replay: false });
  const shape = model.inputs[0]!.shape!.map((d) => (typeof d === 'number' ? d : 2));

  it('matches a run without it, gives the same bits run to run, returns plain arrays, and frees every block', () => {
    const x = Tensor.randn(shape, { seed: 5 });
    const rt = runtime()!;
    model.runSync(x); // the first run caches the constant weights in wasm memory; measure after it
    const before = rt.allocatedBytes;
    // The hook turns the arena off; the global pool then sums in float64 in TypeScript, in
    // the arena in float32 vectors: same values up to float32 rounding.
    const plain = model.runSync(x, { onNode: () => {} });
    const arena = model.runSync(x);
    const again = model.runSync(x);
    expect(rt.allocatedBytes).toBe(before);
    for (const [name, t] of Object.entries(arena)) {
      expect(rt.addressOf(t.dataSync() as Float32Array)).toBe(-1);
      expectClose(t, plain[name]!, { atol: 1e-5, rtol: 1e-4, what: `effnet_mini ${name}` });
      expect(Array.from(t.dataSync())).toEqual(Array.from(again[name]!.dataSync()));
    }
  });

  it('is batch-invariant: an image gives the same bits alone as inside a batch (any columns left over by the GEMM tiles)', () => {
    for (const name of ['effnet_mini', 'mnv3_mini', 'eca_mini']) {
      const m = loadOnnxSync(new Uint8Array(readFileSync(join(FIXTURES, `${name}/model.onnx`))));
      const dims = m.inputs[0]!.shape!.map((d) => (typeof d === 'number' ? d : 1)).slice(1);
      const x = Tensor.randn([5, ...dims], { seed: 21 });
      const all = Object.values(m.runSync(x))[0]!.dataSync();
      const per = all.length / 5;
      const img = x.size / 5;
      for (let i = 0; i < 5; i++) {
        const xi = new Tensor((x.dataSync() as Float32Array).slice(i * img, (i + 1) * img), [1, ...dims]);
        const yi = Object.values(m.runSync(xi))[0]!.dataSync();
        expect(Array.from(yi), `${name} image ${i}`).toEqual(Array.from(all.subarray(i * per, (i + 1) * per)));
      }
    }
  });

  it('keeps a block alive while a view of it (Flatten) is still to be read, and frees everything after an error', () => {
    const w = randomTensor([8, 4, 1, 1], 1);
    const bytes = modelBytes({
      nodes: [node('Conv', ['x', 'w'], ['c']), node('Flatten', ['c'], ['f']), node('Relu', ['c'], ['r']), node('Add', ['f', 'g'], ['y']), node('Shape', ['r'], ['s'])],
      inputs: [{ name: 'x', shape: [1, 4, 3, 3] }, { name: 'g', shape: [1, 72] }],
      outputs: [{ name: 'y' }, { name: 's', elemType: 7 }],
      initializers: { w },
    });
    const m = loadOnnxSync(bytes);
    const x = randomTensor([1, 4, 3, 3], 2);
    const g = randomTensor([1, 72], 3);
    const rt = runtime()!;
    m.runSync({ x, g }); // the first run caches packed weights and bias (kept while the model lives)
    const before = rt.allocatedBytes;
    const got = m.runSync({ x, g }).y!;
    const ref = withWasmKernels(false, () => m.runSync({ x, g }).y!);
    expectClose(got, ref, { atol: 1e-6, rtol: 1e-5, what: 'conv → flatten view → add' });
    expect(rt.allocatedBytes).toBe(before);
    expect(() => m.runSync({ x, g: randomTensor([1, 71], 4) })).toThrow(ShapeError);
    expect(rt.allocatedBytes).toBe(before);
  });
});

describe('threads with the arena', () => {
  it('two threads give the same bits as one on a whole model (in-place GEMM grid, leftovers, depthwise and elementwise chunks)', async () => {
    const saved = { ...tuning };
    const model = loadOnnxSync(new Uint8Array(readFileSync(join(FIXTURES, 'effnet_mini/model.onnx'))));
    const shape = model.inputs[0]!.shape!.map((d) => (typeof d === 'number' ? d : 3));
    const x = Tensor.randn(shape, { seed: 11 });
    const one = Object.values(model.runSync(x)).map((t) => Array.from(t.dataSync()));
    try {
      setThreads(2);
      Object.assign(tuning, { minParallelNs: 0, minChunkNs: 0, chunksPerThread: 6 });
      model.runSync(x); // starts the worker
      await new Promise((r) => setTimeout(r, 300));
      // Runs alternate between threads and the calling thread alone at first (ThreadChoice):
      // every one of them must give the same bits.
      for (let rep = 0; rep < 8; rep++) Object.values(model.runSync(x)).forEach((t, i) => expect(Array.from(t.dataSync())).toEqual(one[i]));
    } finally {
      Object.assign(tuning, saved);
      setThreads(1);
    }
  });
});

describe('ThreadChoice', () => {
  /** A pool stand-in and a fake clock: a run takes `threaded` ms with the workers, `alone` without. */
  function simulate(times: (run: number) => { threaded: number; alone: number }, runs: number): boolean[] {
    let t = 0;
    const pool = { inline: false, judging: true };
    const choice = new ThreadChoice(() => t);
    const modes: boolean[] = [];
    for (let r = 0; r < runs; r++) {
      choice.run(pool as unknown as Pool, () => {
        modes.push(pool.inline);
        expect(pool.judging).toBe(getThreads() === 1); // the per-job fallback is off while runs are timed
        const c = times(r);
        t += pool.inline ? c.alone : c.threaded;
      });
      expect(pool).toEqual({ inline: false, judging: true }); // restored after each run
    }
    return modes;
  }

  it('settles on the faster mode, tries the other less and less often, and follows a change', async () => {
    const { setThreads } = await import('../../src/core/threads.js');
    setThreads(2);
    try {
      // Threads faster: after the first runs (both modes, alternating) nearly all runs threaded.
      const quiet = simulate(() => ({ threaded: 6, alone: 9 }), 400);
      expect(quiet.slice(0, 8)).toEqual([false, true, false, true, false, true, false, true]);
      const late = quiet.slice(100);
      expect(late.filter((alone) => alone).length).toBeLessThanOrEqual(3); // tries every 8 … 256 runs
      expect(late.filter((alone) => alone).length).toBeGreaterThanOrEqual(1);
      // The other core gets busy at run 200: threads now slower; the choice follows.
      const busy = simulate((r) => (r < 200 ? { threaded: 6, alone: 9 } : { threaded: 11, alone: 9 }), 400);
      expect(busy.slice(300).filter((alone) => !alone).length).toBeLessThanOrEqual(5);
      // Busy for a long time (the tries stretch to 256 runs apart), then quiet again at run
      // 800: back to the workers within about a second of runs (a try at least every
      // max(1000 ms, 100 runs of the slower mode) = 1100 ms), not at the next try by count
      // (here run ~1016).
      const after = simulate((r) => (r < 800 ? { threaded: 11, alone: 9 } : { threaded: 6, alone: 9 }), 1100);
      // (What stays alone after that are the tries, 8, 16, 32 … runs apart again.)
      expect(after.slice(800 + Math.ceil(1100 / 9) + 10).filter((alone) => alone).length).toBeLessThanOrEqual(6);
      // Long runs (batch 16, the other core busy): the tries stay rare, a few in 400 runs.
      const long = simulate(() => ({ threaded: 240, alone: 110 }), 600);
      expect(long.slice(200).filter((alone) => !alone).length).toBeLessThanOrEqual(3);
    } finally {
      setThreads(1);
    }
  });

  it('does nothing with one thread', () => {
    const modes = simulate(() => ({ threaded: 1, alone: 9 }), 20);
    expect(modes.every((alone) => !alone)).toBe(true);
  });
});
