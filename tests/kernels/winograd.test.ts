import { afterEach, describe, expect, it } from 'vitest';
import { referenceBackend, withBackend } from '../../src/core/op.js';
import { withOutputArena } from '../../src/core/storage.js';
import { Tensor } from '../../src/core/tensor.js';
import { setThreads } from '../../src/core/threads.js';
import { type ConvOptions, conv } from '../../src/kernels/conv.js';
import { openArena } from '../../src/kernels/wasm/arena.js';
import { tuning } from '../../src/kernels/wasm/pool.js';
import { markConstant, runtime, withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { winogradEnabled } from '../../src/kernels/wasm/winograd.js';
import { randomTensor } from '../helpers.js';

/**
 * Winograd F(2×2, 3×3) for 3×3 stride-1 convs with constant weights. Its error bound, as
 * measured here: against the float64 reference its largest error is at most 4× that of the
 * direct (im2col) float32 conv on the same data, plus 1e-6·max|y| — the transforms add and
 * subtract up to 4 inputs and 9 products, and the weights' ½ factors are exact. Every case
 * also runs in kernel memory (the graph runner's arena), where the output is written in place
 * when its planes are whole tiles and cropped otherwise.
 */

const savedTuning = { ...tuning };
afterEach(() => {
  winogradEnabled.on = true;
  Object.assign(tuning, savedTuning);
  setThreads(1);
});

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
function maxErr(got: Tensor, ref: Tensor): number {
  const g = got.dataSync();
  const r = ref.dataSync();
  let e = 0;
  for (let i = 0; i < g.length; i++) e = Math.max(e, Math.abs(g[i]! - r[i]!));
  return e;
}

function inArena(X: Tensor, fn: (x: Tensor) => Tensor): Tensor {
  const arena = openArena()!;
  try {
    return withOutputArena(arena, () => {
      const d = arena.alloc(X.size);
      d.set(X.dataSync() as Float32Array);
      const y = fn(new Tensor(d, X.shape));
      expect(runtime()!.addressOf(y.dataSync() as Float32Array)).toBeGreaterThanOrEqual(0);
      return new Tensor((y.dataSync() as Float32Array).slice(), y.shape);
    });
  } finally {
    arena.close();
  }
}

const CASES: [string, number[], number, ConvOptions][] = [
  ['C 16 → 16, 8×8, pads 1 (whole tiles, written in place)', [1, 16, 8, 8], 16, { pads: [1, 1, 1, 1] }],
  ['C 24 → 20, 13×11 (odd: cropped tiles), relu', [2, 24, 13, 11], 20, { pads: [1, 1, 1, 1], activation: { kind: 'relu' } }],
  ['C 32 → 48, 9×17, no pads, hard-swish', [1, 32, 9, 17], 48, { activation: { kind: 'hard_swish' } }],
  ['C 17 → 19, 7×30, asymmetric pads, clip', [1, 17, 7, 30], 19, { pads: [2, 0, 1, 1], activation: { kind: 'clip', min: 0, max: 6 } }],
  ['C 64 → 64, 56×56 (ResNet stage 1), silu', [1, 64, 56, 56], 64, { pads: [1, 1, 1, 1], activation: { kind: 'silu' } }],
];

describe.skipIf(!runtime())('Winograd F(2×2, 3×3)', () => {
  it.each(CASES)('%s: the float64 reference within 4× the direct conv’s error', (_, xs, m, opts) => {
    const X = randomTensor(xs, xs[1]!);
    const W = randomTensor([m, xs[1]!, 3, 3], m);
    const B = randomTensor([m], 7);
    markConstant(W.dataSync() as Float32Array);
    const ref = withBackend(referenceBackend, () => conv(X, W, B, opts));
    const scale = maxAbs(ref.dataSync());
    for (const arena of [false, true]) {
      const run = () => withWasmKernels(true, () => (arena ? inArena(X, (x) => conv(x, W, B, opts)) : conv(X, W, B, opts)));
      winogradEnabled.on = false;
      const direct = run();
      winogradEnabled.on = true;
      const wino = run();
      expect(wino.shape).toEqual(ref.shape);
      // Not the direct conv's bits: the Winograd path ran.
      expect(Buffer.from((wino.dataSync() as Float32Array).buffer).equals(Buffer.from((direct.dataSync() as Float32Array).buffer))).toBe(false);
      const eWino = maxErr(wino, ref);
      const eDirect = maxErr(direct, ref);
      expect(eWino).toBeLessThanOrEqual(4 * eDirect + 1e-6 * scale);
    }
  });

  it('two threads give the same bits as one', async () => {
    const X = randomTensor([2, 32, 20, 20], 1);
    const W = randomTensor([40, 32, 3, 3], 2);
    markConstant(W.dataSync() as Float32Array);
    const opts: ConvOptions = { pads: [1, 1, 1, 1] };
    const one = withWasmKernels(true, () => inArena(X, (x) => conv(x, W, null, opts)));
    setThreads(2);
    Object.assign(tuning, { minParallelNs: 0, minChunkNs: 1 });
    const two = withWasmKernels(true, () => inArena(X, (x) => conv(x, W, null, opts)));
    expect(Array.from(two.dataSync())).toEqual(Array.from(one.dataSync()));
  });

  it('leaves weights being trained (not constant), strides, dilations and groups to the direct conv', () => {
    const X = randomTensor([1, 16, 10, 10], 3);
    const W = randomTensor([16, 16, 3, 3], 4); // not marked constant
    const a = withWasmKernels(true, () => conv(X, W, null, { pads: [1, 1, 1, 1] }));
    winogradEnabled.on = false;
    const b = withWasmKernels(true, () => conv(X, W, null, { pads: [1, 1, 1, 1] }));
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
  });
});
