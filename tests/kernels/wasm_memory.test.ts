import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ResourceLimitError, ValueError } from '../../src/core/errors.js';
import { getLimits, setLimits } from '../../src/core/limits.js';
import { Tensor } from '../../src/core/tensor.js';
import { setThreads } from '../../src/core/threads.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { type ConvOptions, conv } from '../../src/kernels/conv.js';
import { KernelArena } from '../../src/kernels/wasm/arena.js';
import { tuning } from '../../src/kernels/wasm/pool.js';
import { type Runtime, f32Index, runtime, withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { randomTensor } from '../helpers.js';

/**
 * Kernel memory past 2 GiB. WebAssembly memory reaches 4 GiB; addresses past 2^31 are negative
 * as i32 (and as a signed `>> 2` in JavaScript), so everything that handles them must treat
 * them as unsigned. Growing the memory reserves address space only: pages nobody writes are
 * never committed, so these tests cost a few MiB of RAM, not gigabytes.
 */

const FIXTURES = join(import.meta.dirname, '../fixtures/models');
const GiB = 2 ** 30;
const bits = (t: Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
const saved = { ...tuning };
const maxTensorBytes = getLimits().maxTensorBytes;

afterEach(() => {
  Object.assign(tuning, saved);
  setThreads(1);
  setLimits({ maxTensorBytes });
});

/**
 * Takes every free block below `target` (and grows the memory up to it), so that everything
 * allocated until the returned blocks are released lies at or above `target`. Needs a 64-byte
 * aligned target (every heap address and size is a multiple of 64).
 */
function occupyBelow(rt: Runtime, target: number): number[] {
  const taken: number[] = [];
  for (;;) {
    const first = rt.freeBlocks[0];
    const at = first ? first[0] : rt.memoryBytes;
    if (at >= target) return taken;
    taken.push(rt.alloc(first ? Math.min(first[1], target - at) : target - at, true));
  }
}

describe('kernel memory addresses', () => {
  it('index floats by unsigned addresses up to 4 GiB', () => {
    expect(f32Index(0)).toBe(0);
    expect(f32Index(1024)).toBe(256);
    expect(f32Index(2 ** 31 - 4)).toBe(2 ** 29 - 1);
    expect(f32Index(2 ** 31)).toBe(2 ** 29); // a signed 2 ** 31 >> 2 is −2^29
    expect(2 ** 31 >> 2).toBeLessThan(0);
    expect(f32Index(2 ** 31 + 64)).toBe(2 ** 29 + 16);
    expect(f32Index(2 ** 32 - 4)).toBe(2 ** 30 - 1);
  });

  it('runs kernels, whole models and replays on buffers past 2 GiB, bit for bit as at low addresses', () => {
    const rt = runtime();
    if (!rt?.shared) return; // needs the WebAssembly SIMD kernels over shared memory (Node has both)
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'mnv3_mini/model.onnx')));
    const convs: [number[], number[], ConvOptions][] = [
      [[2, 8, 13, 11], [12, 8, 1, 1], {}], // pointwise: gemm8 and the gemv/copy leftovers
      [[1, 6, 17, 15], [10, 6, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }], // im2col + GEMM
      [[1, 16, 19, 21], [16, 1, 3, 3], { group: 16, pads: [1, 1, 1, 1], activation: { kind: 'hard_swish' } }], // depthwise, stride 1
      [[1, 16, 20, 22], [16, 1, 5, 5], { group: 16, pads: [2, 2, 2, 2], strides: [2, 2] }], // depthwise, split stride-2 planes
    ];
    const cases = convs.map(([x, w, opts], i) => ({ X: Tensor.randn(x, { seed: 40 + i }), W: randomTensor(w, 50 + i), B: randomTensor([w[0]!], 60 + i), opts }));
    const run = () => withWasmKernels(true, () => cases.map((c) => conv(c.X, c.W, c.B, c.opts)));
    // Reference results at low addresses (a fresh memory is 16 MiB).
    const wantConvs = run().map(bits);
    const ref = loadOnnxSync(bytes, { replay: false });
    const x = Tensor.randn([2, ...ref.inputs[0]!.shape!.slice(1).map((d) => (typeof d === 'number' ? d : 8))], { seed: 7 });
    const want = Object.fromEntries(Object.entries(ref.runSync(x)).map(([k, t]) => [k, bits(t)]));
    ref.dispose();

    // Everything from here on lies at 2 GiB − 256 B or above: the first block straddles 2^31.
    const target = 2 ** 31 - 256;
    const taken = occupyBelow(rt, target);
    try {
      expect(rt.memoryBytes).toBeGreaterThanOrEqual(target);
      // Kernel calls on a block straddling 2^31: its end address is a negative i32 while its
      // start is not, which a signed pointer comparison gets wrong (the loops stop at once).
      const p = rt.alloc(4 * 100);
      expect(p).toBe(target);
      const q = rt.alloc(4 * 90);
      expect(q).toBeGreaterThan(2 ** 31);
      const at = f32Index(p);
      const floats = () => Array.from(rt.f32().subarray(at, at + 100));
      rt.f32().fill(-1, at, at + 100);
      rt.call('fill', p, 99, -7);
      expect(floats()).toEqual([...new Array<number>(99).fill(-7), -1]);
      rt.call('act_relu', p, 70, 0, 0);
      expect(floats()).toEqual([...new Array<number>(70).fill(0), ...new Array<number>(29).fill(-7), -1]);
      rt.f32().set(Float32Array.from({ length: 90 }, (_, i) => i), f32Index(q));
      rt.call('copy2d', q, 40, 4, p, 40, 4, 9, 10); // 9 rows of 10 floats, from past 2^31 to across it
      expect(floats()).toEqual([...Array.from({ length: 90 }, (_, i) => i), ...new Array<number>(9).fill(-7), -1]);
      rt.release(p);
      rt.release(q);

      // Convs on plain arrays: inputs, packed weights and scratch are copied above 2 GiB.
      expect(run().map(bits)).toEqual(wantConvs);

      // A whole model: arena activations, a recorded plan and its replays, with two threads
      // (the workers read the job tables, also past 2 GiB) and every call chunked.
      Object.assign(tuning, { minParallelNs: 0, minChunkNs: 0, chunksPerThread: 3 });
      const model = loadOnnxSync(bytes);
      try {
        for (const threads of [1, 2]) {
          setThreads(threads);
          const worked = rt.pool.workerChunks;
          // With two threads, until the worker has run a hundred chunks (it starts asynchronously,
          // and ThreadChoice first times runs with and without it).
          const t0 = performance.now();
          for (let i = 0; i < 4 || (threads === 2 && rt.pool.workerChunks - worked < 100 && performance.now() - t0 < 10_000); i++) {
            const got = model.runSync(x);
            for (const [name, w] of Object.entries(want)) expect(bits(got[name]!), `${name}, ${threads} thread(s), run ${i}`).toEqual(w);
          }
          expect(model.replayStatus(x)).toEqual({ replaying: true, reason: null });
          if (threads === 2) expect(rt.pool.workerChunks - worked).toBeGreaterThanOrEqual(100);
        }
      } finally {
        model.dispose();
      }
      // Jobs straight to the pool: 64 fills, one per chunk, over a block past 2 GiB. The workers
      // find the job table (past 2 GiB too) through an int32, negative there; a chunk a worker
      // ran against a misread table would leave its floats unfilled.
      setThreads(2);
      const block = rt.alloc(4 * 64 * 16);
      const start = rt.pool.workerChunks;
      const t0 = performance.now();
      for (let round = 1; round <= 4 || (rt.pool.workerChunks - start < 64 && performance.now() - t0 < 10_000); round++) {
        rt.pool.run(Array.from({ length: 64 }, (_, c) => [['fill', block + 64 * c, 16, round + c]] as const));
        const got = rt.f32().subarray(f32Index(block), f32Index(block) + 64 * 16);
        expect(got.every((v, i) => v === round + Math.floor(i / 16))).toBe(true);
      }
      expect(rt.pool.workerChunks - start).toBeGreaterThanOrEqual(64);
      rt.release(block);

      // Nothing was handed out below the target meanwhile: every block the kernels used was above it.
      expect(rt.freeBlocks.every(([a]) => a >= target)).toBe(true);
      expect(rt.memoryBytes).toBeGreaterThan(2 * GiB);

      // Past what 32-bit WebAssembly can address: a typed error naming the sizes, not a RangeError.
      expect(() => rt.alloc(4 * GiB)).toThrow(ResourceLimitError);
      expect(() => rt.alloc(4 * GiB)).toThrow(/cannot hold another 4\.0 GiB.*in use.*largest free block.*can grow to 4\.0 GiB/);
      const rest = rt.alloc(GiB, true); // grows towards 4 GiB (address space only: never written)
      try {
        expect(() => rt.alloc(1.5 * GiB)).toThrow(/cannot hold another 1\.5 GiB: [\d.]+ GiB of it is in use/);
      } finally {
        rt.release(rest);
      }
      expect(() => rt.alloc(Number.NaN)).toThrow(ValueError);
    } finally {
      for (const t of taken) rt.release(t);
    }
  });
});

describe('kernel outputs (KernelArena) and the tensor budget', () => {
  it('refuses an output over maxTensorBytes before allocating anything, in kernel memory or out', () => {
    const rt = runtime();
    if (!rt) return;
    setLimits({ maxTensorBytes: 2 ** 20 });
    const arena = new KernelArena(rt);
    const used = rt.allocatedBytes;
    expect(() => arena.alloc(2 ** 18 + 1)).toThrow(/1\.0 MiB.*over the 1\.0 MiB tensor budget/);
    expect(rt.allocatedBytes).toBe(used);
    expect(arena.alloc(2 ** 18).length).toBe(2 ** 18); // exactly the budget fits
    arena.close();
    // Kernel memory full: the plain-array fallback keeps to the same budget…
    const full = {
      alloc: () => {
        throw new ResourceLimitError('full');
      },
    } as unknown as Runtime;
    expect(() => new KernelArena(full).alloc(2 ** 18 + 1)).toThrow(ResourceLimitError);
    expect(new KernelArena(full).alloc(1000).length).toBe(1000);
    // …and where not even a plain array can be had (here: past the engine's largest typed
    // array, refused without allocating), the error is typed and says why.
    setLimits({ maxTensorBytes: 2 ** 50 });
    expect(() => new KernelArena(full).alloc(2 ** 46)).toThrow(/fits neither in kernel memory nor in a plain array \(full\)/);
  });
});
