import { afterEach, describe, expect, it } from 'vitest';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { Tensor } from '../../src/core/tensor.js';
import { setThreads } from '../../src/core/threads.js';
import { type ConvOptions, conv } from '../../src/kernels/conv.js';
import { gemmBlocking } from '../../src/kernels/wasm/conv.js';
import { tuning } from '../../src/kernels/wasm/pool.js';
import { runtime, withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { expectClose, randomTensor } from '../helpers.js';

/**
 * The GEMM's cache blocking (K in blocks, A panels in groups) must not change a bit: every
 * output is one chain of float32 adds in k order, and a block boundary only stores the partial
 * sum to C and loads it back. Small block sizes force many blocks (uneven K, ragged M and N,
 * activations that must run once, on the last block) and the result is compared bit for bit
 * with one block, and against the float64 reference; likewise with B panels copied together
 * before use (packRowBytes 0 packs every eligible GEMM).
 */

const bits = (t: Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
const saved = { ...gemmBlocking };
const savedTuning = { ...tuning };

afterEach(() => {
  Object.assign(gemmBlocking, saved);
  Object.assign(tuning, savedTuning);
  setThreads(1);
});

const CASES: [string, number[], number[], ConvOptions][] = [
  ['1×1, K = 203 (uneven blocks), M = 37 (partial panel), N = 13·11 (leftover columns)', [2, 203, 13, 11], [37, 203, 1, 1], { activation: { kind: 'relu' } }],
  ['3×3, K = 9·40 = 360, M = 64, hard-swish', [1, 40, 17, 19], [64, 40, 3, 3], { pads: [1, 1, 1, 1], activation: { kind: 'hard_swish' } }],
  ['3×3 stride 2, K = 9·24, M = 20, clip', [2, 24, 15, 16], [20, 24, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2], activation: { kind: 'clip', min: 0, max: 6 } }],
  ['1×1, K = 512, M = 96, leaky ReLU (a negative partial sum must not be activated)', [1, 512, 8, 8], [96, 512, 1, 1], { activation: { kind: 'leaky_relu', alpha: 0.1 } }],
];

describe.skipIf(!runtime())('GEMM cache blocking', () => {
  it.each(CASES)('%s: the same bits with any block sizes, and the reference within float32 error', (_, xs, ws, opts) => {
    const X = randomTensor(xs, 1);
    const W = randomTensor(ws, 2);
    const B = randomTensor([ws[0]!], 3);
    const run = (kc: number, mcPanels: number, pack = false) => {
      Object.assign(gemmBlocking, { kc, mcPanels, pack, packRowBytes: 0 });
      return withWasmKernels(true, () => conv(X, W, B, opts));
    };
    const whole = run(1 << 30, 1 << 30, false);
    for (const pack of [false, true]) {
      for (const [kc, mc] of [[16, 1], [50, 2], [100, 3], [saved.kc, saved.mcPanels], [1 << 30, 1 << 30]] as const) expect(bits(run(kc, mc, pack))).toEqual(bits(whole));
    }
    const ref = withBackend(referenceBackend, () => conv(X, W, B, opts));
    // float32 sums of up to 512 products against float64: scaled to max|y| (see conv.test.ts).
    expectClose(whole, ref, { atol: 5e-5, rtol: 1e-4 });
  });

  it('two threads cut the blocked GEMM into chunks and give the same bits', async () => {
    const X = randomTensor([1, 256, 24, 24], 4);
    const W = randomTensor([64, 256, 1, 1], 5);
    Object.assign(gemmBlocking, { kc: 64, mcPanels: 4, pack: true, packRowBytes: 0 });
    const one = withWasmKernels(true, () => conv(X, W, null, {}));
    setThreads(2);
    Object.assign(tuning, { minParallelNs: 0, minChunkNs: 1 });
    const two = withWasmKernels(true, () => conv(X, W, null, {}));
    expect(bits(two)).toEqual(bits(one));
  });
});
