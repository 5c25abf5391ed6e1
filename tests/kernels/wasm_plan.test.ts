import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { setThreads } from '../../src/core/threads.js';
import { loadOnnxSync } from '../../src/io/onnx/model.js';
import { KernelPlan } from '../../src/kernels/wasm/plan.js';
import { tuning } from '../../src/kernels/wasm/pool.js';
import { forgetConstant, markConstant, runtime, withWasmKernels } from '../../src/kernels/wasm/runtime.js';
import { expectClose, randomTensor } from '../helpers.js';
import { modelBytes, node } from '../onnx/build.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/models');
const bits = (t: Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));
const saved = { ...tuning };

afterEach(() => {
  Object.assign(tuning, saved);
  setThreads(1);
});

describe('replayed runs (KernelPlan)', () => {
  // eca_mini: ECA attention (Squeeze, Transpose, Conv1d, Sigmoid), MaxPool, Pad, AveragePool.
  for (const name of ['effnet_mini', 'mnv3_mini', 'eca_mini']) {
    it(`${name}: replays from the third run at a shape, bit for bit as node-by-node runs, at 1 and 2 threads, batch 1 and 3`, async () => {
      const bytes = new Uint8Array(readFileSync(join(FIXTURES, `${name}/model.onnx`)));
      const model = loadOnnxSync(bytes);
      const ref = loadOnnxSync(bytes, { replay: false });
      const dims = model.inputs[0]!.shape!.slice(1).map((d) => (typeof d === 'number' ? d : 8));
      // Small shapes: chunk every kernel call, so that replays hand out many phases and chunks.
      Object.assign(tuning, { minParallelNs: 0, minChunkNs: 0, chunksPerThread: 3 });
      for (const threads of [1, 2]) {
        setThreads(threads);
        for (const batch of [1, 3]) {
          const x0 = Tensor.randn([batch, ...dims], { seed: batch });
          for (let i = 0; i < 3; i++) model.runSync(x0);
          expect(model.replayStatus(x0), `${name} t${threads} b${batch}`).toEqual({ replaying: true, reason: null });
          // Several runs: with threads, ThreadChoice alternates between the workers and this thread alone.
          for (let seed = 10; seed < 16; seed++) {
            const x = Tensor.randn([batch, ...dims], { seed });
            const got = model.runSync(x);
            const want = ref.runSync(x);
            for (const [out, t] of Object.entries(want)) expect(bits(got[out]!), `${name} ${out} t${threads} b${batch} seed ${seed}`).toEqual(bits(t));
          }
        }
      }
    });
  }

  it('replays transposes and activations that are nodes of their own (an ECA gate), as the TypeScript kernels compute them', () => {
    const nodes = [
      node('Transpose', ['x'], ['t'], { perm: [0, 2, 3, 1] }),
      node('Sigmoid', ['t'], ['s']),
      node('Transpose', ['s'], ['u'], { perm: [0, 3, 1, 2] }),
      node('HardSigmoid', ['u'], ['h'], { alpha: 0.25, beta: 0.4 }),
      node('LeakyRelu', ['h'], ['l'], { alpha: 0.1 }),
      node('HardSwish', ['x'], ['w']),
      node('Transpose', ['w'], ['y2'], { perm: [1, 0, 2, 3] }), // only the size-1 axis moves: a copy
      node('Relu', ['l'], ['y1']),
    ];
    const bytes = modelBytes({ nodes, inputs: [{ name: 'x', shape: [1, 6, 5, 3] }], outputs: [{ name: 'y1' }, { name: 'y2' }] });
    const model = loadOnnxSync(bytes);
    const ref = loadOnnxSync(bytes, { replay: false });
    for (let i = 0; i < 3; i++) model.runSync(randomTensor([1, 6, 5, 3], i));
    expect(model.replayStatus(randomTensor([1, 6, 5, 3], 0))).toEqual({ replaying: true, reason: null });
    const x = randomTensor([1, 6, 5, 3], 9);
    const got = model.runSync(x);
    const want = ref.runSync(x);
    const ts = withWasmKernels(false, () => ref.runSync(x));
    for (const name of ['y1', 'y2']) {
      expect(bits(got[name]!), name).toEqual(bits(want[name]!));
      expectClose(got[name]!, ts[name]!, { atol: 1e-6, rtol: 1e-5, what: `${name} vs the TypeScript kernels` });
    }
  });

  it('checks a new plan by replaying it over poisoned memory: work done outside the kernels (a JS activation) is caught, and runs stay right', () => {
    // Conv + Tanh fuse into one node, but tanh runs in JavaScript after the kernel.
    const w = randomTensor([4, 3, 3, 3], 1);
    const model = loadOnnxSync(modelBytes({ nodes: [node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] }), node('Tanh', ['c'], ['y'])], inputs: [{ name: 'x', shape: [1, 3, 6, 6] }], outputs: [{ name: 'y' }], initializers: { w } }));
    const ref = loadOnnxSync(modelBytes({ nodes: [node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] }), node('Tanh', ['c'], ['y'])], inputs: [{ name: 'x', shape: [1, 3, 6, 6] }], outputs: [{ name: 'y' }], initializers: { w } }), { replay: false });
    const rt = runtime()!;
    const x = randomTensor([1, 3, 6, 6], 2);
    for (let i = 0; i < 3; i++) model.runSync(x);
    const before = rt.allocatedBytes;
    const status = model.replayStatus(x);
    expect(status.replaying).toBe(false);
    expect(status.reason).toMatch(/not a WebAssembly kernel call/);
    const x2 = randomTensor([1, 3, 6, 6], 3);
    expect(bits(model.runSync(x2).y!)).toEqual(bits(ref.runSync(x2).y!));
    expect(rt.allocatedBytes).toBe(before); // the rejected plan's memory was given back
  });

  it('does not replay graphs with ops it does not cover, nor with replay: false', () => {
    const bytes = modelBytes({ nodes: [node('LogSoftmax', ['x'], ['y'], { axis: 1 })], inputs: [{ name: 'x', shape: [2, 5] }], outputs: [{ name: 'y' }] });
    const x = randomTensor([2, 5], 1);
    for (const model of [loadOnnxSync(bytes), loadOnnxSync(new Uint8Array(readFileSync(join(FIXTURES, 'mnv3_mini/model.onnx'))), { replay: false })]) {
      const input = model.inputs[0]!.shape!.length === 2 ? x : Tensor.randn(model.inputs[0]!.shape!.map((d) => (typeof d === 'number' ? d : 1)), { seed: 1 });
      for (let i = 0; i < 4; i++) model.runSync(input);
      expect(model.replayStatus(input)).toEqual({ replaying: false, reason: expect.stringMatching(/replay is off or the graph has ops/) });
    }
  });

  it('records kernel calls into a region it then owns, replays them, and gives the memory back when disposed', () => {
    const rt = runtime()!;
    const before = rt.allocatedBytes;
    const { plan, result } = KernelPlan.record(rt, 1 << 16, () => {
      const p = rt.alloc(64); // scratch: from the region
      rt.call('fill', p, 4, 2.5);
      rt.pool.run([[['copy2d', p, 16, 4, p + 16, 16, 4, 1, 4]]]);
      return p;
    });
    expect(plan.holds(result, 32)).toBe(true);
    plan.poison([]);
    plan.run();
    expect(Array.from(rt.f32().subarray(result >> 2, (result >> 2) + 8))).toEqual(new Array(8).fill(2.5));
    expect(plan.valid).toBe(true);
    plan.dispose();
    expect(plan.valid).toBe(false);
    expect(rt.allocatedBytes).toBe(before);
  });

  it('replays on two threads phase after phase: a chunk starts only when the phases before it are done', async () => {
    const rt = runtime()!;
    setThreads(2);
    const n = 1 << 16; // floats per chunk
    const { plan, result: [a, b, c] } = KernelPlan.record(rt, 3 * 4 * 4 * n + 4096, () => {
      const [a, b, c] = [rt.alloc(16 * n), rt.alloc(16 * n), rt.alloc(16 * n)];
      // Phase 1 fills a, phase 2 copies a's quarters into b in reverse order, phase 3 b into c
      // the same way: each chunk reads what another chunk of the phase before wrote.
      rt.pool.run([0, 1, 2, 3].map((q) => [['fill', a + 4 * q * n, n, q + 1]]));
      for (const [src, dst] of [[a, b], [b, c]] as const) rt.pool.run([0, 1, 2, 3].map((q) => [['copy2d', src + 4 * (3 - q) * n, 0, 4, dst + 4 * q * n, 0, 4, 1, n]]));
      return [a, b, c];
    });
    expect(plan.chunkCount).toBe(12);
    const pool = rt.pool;
    const before = pool.workerChunks;
    for (let run = 0; run < 400 && pool.workerChunks === before; run++) {
      if (run % 20 === 0) await new Promise((r) => setTimeout(r, 20)); // the worker starts
      plan.poison([]);
      plan.run();
      const v = rt.f32();
      for (let q = 0; q < 4; q++) {
        expect(v[(b >> 2) + q * n]).toBe(4 - q);
        expect(v[(c >> 2) + q * n + n - 1]).toBe(q + 1);
        expect(v[(a >> 2) + q * n + 7]).toBe(q + 1);
      }
    }
    expect(pool.workerChunks).toBeGreaterThan(before);
    plan.dispose();
  });

  it('a plan is invalid once a constant weight is forgotten (fine-tuned): its packed copy is gone', () => {
    const rt = runtime()!;
    const weight = new Float32Array(8);
    markConstant(weight);
    const { plan } = KernelPlan.record(rt, 1 << 12, () => null);
    expect(plan.valid).toBe(true);
    forgetConstant(weight);
    expect(plan.valid).toBe(false);
    plan.dispose();
  });
});
