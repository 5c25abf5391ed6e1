import { beforeAll, describe, expect, it } from 'vitest';
import { LightconvError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { compileForInference, exportOnnxBytes } from '../../src/io/onnx/export.js';
import { OnnxModel, loadOnnxSync } from '../../src/io/onnx/model.js';
import { isConstant, markConstant, runtime } from '../../src/kernels/wasm/runtime.js';
import { mobileNetV3 } from '../../src/models/mobilenetv3.js';

/**
 * Giving kernel memory back: a loaded model holds its packed weights and recorded runs in the
 * WebAssembly memory, which the garbage collector does not see (it collects when the
 * JavaScript heap is under pressure). dispose() / `using` free it at once for the next model.
 */

const MiB = 2 ** 20;
/** LIGHTCONV_LONG=1: the 1000-cycle run (a few minutes); by default as many cycles as fit in ~8 s. */
const LONG = process.env.LIGHTCONV_LONG === '1';
const bits = (t: Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer));

let bytes: Uint8Array;
let x: Tensor;
beforeAll(() => {
  bytes = exportOnnxBytes(mobileNetV3('small')); // 2.5 M parameters, 224 × 224 input
  x = Tensor.randn([1, 3, 224, 224], { seed: 3 });
});

/** Three runs: the third records a plan (and checks it by a replay), so the model holds both kinds of kernel memory. */
function runThrice(m: OnnxModel): Tensor {
  let y!: Tensor;
  for (let i = 0; i < 3; i++) y = m.runSync(x).logits!;
  return y;
}

describe('OnnxModel.dispose', () => {
  it('gives back every byte of kernel memory the model held (packed weights, recorded runs); the model then refuses to run', () => {
    const rt = runtime();
    if (!rt) return; // no WebAssembly SIMD: models hold no kernel memory
    const base = rt.allocatedBytes;
    const m = loadOnnxSync(bytes);
    const y = runThrice(m);
    expect(m.replayStatus(x)).toEqual({ replaying: true, reason: null });
    // About 10 MiB of packed weights and a few MiB of recorded run (16.6 MiB at 224 × 224).
    expect(rt.allocatedBytes - base).toBeGreaterThan(8 * MiB);
    const want = bits(y);
    m.dispose();
    expect(rt.allocatedBytes).toBe(base);
    expect(m.disposed).toBe(true);
    expect(() => m.runSync(x)).toThrow(LightconvError);
    expect(() => m.runSync(x)).toThrow(/was disposed; load it again/);
    expect(m.replayStatus(x)).toEqual({ replaying: false, reason: 'the model was disposed' });
    m.dispose(); // idempotent
    expect(rt.allocatedBytes).toBe(base);
    expect(bits(y)).toEqual(want); // returned tensors are plain arrays: still valid
  });

  it('frees a compiled native model (compileForInference) the same way', () => {
    const rt = runtime();
    if (!rt) return;
    const base = rt.allocatedBytes;
    const m = compileForInference(mobileNetV3('small', { numClasses: 3 }));
    m.runSync(x);
    expect(rt.allocatedBytes - base).toBeGreaterThan(4 * MiB);
    m.dispose();
    expect(rt.allocatedBytes).toBe(base);
    expect(() => m.runSync(x)).toThrow(/was disposed/);
  });

  it('is what `using` calls at the end of the block', () => {
    const rt = runtime();
    const base = rt?.allocatedBytes ?? 0;
    let seen: OnnxModel | null = null;
    {
      using m = loadOnnxSync(bytes);
      seen = m;
      m.runSync(x);
      expect(m.disposed).toBe(false);
    }
    expect(seen.disposed).toBe(true);
    expect(rt?.allocatedBytes ?? 0).toBe(base);
  });

  it('frees only what no other model holds: two models over one graph share weights, and one outlives the other', () => {
    const rt = runtime();
    const base = rt?.allocatedBytes ?? 0;
    const a = loadOnnxSync(bytes);
    const b = new OnnxModel(a.graph);
    const want = bits(runThrice(b));
    runThrice(a);
    a.dispose();
    // b still replays its recorded run over the packed weights it shares with a, bit for bit.
    expect(b.replayStatus(x)).toEqual({ replaying: true, reason: null });
    expect(bits(b.runSync(x).logits!)).toEqual(want);
    b.dispose();
    expect(rt?.allocatedBytes ?? 0).toBe(base);
  });

  it("leaves a caller's own markConstant alone", () => {
    const first = loadOnnxSync(bytes, { optimize: false });
    const graph = first.graph;
    first.dispose();
    const w = [...graph.initializers.values()].map((t) => t.dataSync()).find((d): d is Float32Array => d instanceof Float32Array && d.length > 1000)!;
    markConstant(w);
    const m = new OnnxModel(graph, { optimize: false });
    m.dispose();
    expect(isConstant(w)).toBe(true);
    const n = new OnnxModel(graph, { optimize: false });
    const others = [...graph.initializers.values()].map((t) => t.dataSync()).filter((d): d is Float32Array => d instanceof Float32Array && d !== w);
    n.dispose();
    // Weights only the loader marked are constant no longer once no loaded model holds them.
    expect(others.some((d) => isConstant(d))).toBe(false);
  });

  it(`load–run–dispose cycles reuse the freed memory: kernel memory and RSS stay flat, no forced GC (${LONG ? '1000 cycles' : '~8 s of cycles'})`, { timeout: LONG ? 1_800_000 : 60_000 }, () => {
    const rt = runtime();
    if (!rt) return;
    const base = rt.allocatedBytes;
    const t0 = performance.now();
    let perModel = 0;
    let after5 = { memory: 0, rss: 0 };
    let cycles = 0;
    while (LONG ? cycles < 1000 : cycles < 8 || (performance.now() - t0 < 8000 && cycles < 1000)) {
      {
        using m = loadOnnxSync(bytes);
        runThrice(m);
        perModel = Math.max(perModel, rt.allocatedBytes - base);
      }
      cycles++;
      expect(rt.allocatedBytes).toBe(base);
      if (cycles === 5) after5 = { memory: rt.memoryBytes, rss: process.memoryUsage().rss };
    }
    const rss = process.memoryUsage().rss;
    if (LONG) {
      const f = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
      console.info(
        `${cycles} cycles in ${((performance.now() - t0) / 1000).toFixed(1)} s; a model holds ${f(perModel)} of kernel memory; ` +
          `kernel memory ${f(after5.memory)} after cycle 5, ${f(rt.memoryBytes)} after the last; RSS ${f(after5.rss)} after cycle 5, ${f(rss)} after the last`,
      );
    }
    // Kernel memory only grows; the freed blocks were reused, so it did not grow at all after
    // cycle 5 (less than one model's worth allows for fragmentation the heap could not merge).
    expect(rt.memoryBytes - after5.memory).toBeLessThan(perModel);
    // RSS: no forced GC, so the JavaScript heap of dropped models comes and goes (it settled
    // about 50 MiB above cycle 5's here); keeping one model's kernel memory per cycle would add
    // 16.6 MiB a cycle, past this bound from cycle ~21 on (a default run has dozens).
    expect(rss - after5.rss).toBeLessThan(256 * MiB);
  });
});
