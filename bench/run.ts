/**
 * Benchmarks: every kernel implementation (reference, TypeScript, WebAssembly SIMD) on layer
 * shapes taken from MobileNetV3 and EfficientNet, a measured machine peak, then whole ONNX
 * models at batch 1 and 16; with --compare, the same models in onnxruntime-node (native),
 * onnxruntime-web (WASM SIMD, 1 thread) and the kernel shapes in tfjs (wasm backend, XNNPACK,
 * 1 thread; tfjs has no ONNX importer). Everything runs in this one process, so the ratios
 * between rows are meaningful even on a noisy machine; absolute numbers are not. Whole models
 * run in interleaved rounds (each engine once per round) and report the median per engine.
 *
 *   npm run bench                          kernels + models, batch 1 and 16
 *   npm run bench -- --compare             + onnxruntime-node, onnxruntime-web, tfjs-wasm
 *   npm run bench -- --quick               shorter runs
 *   npm run bench -- --threads 1,2         lightconv rows per thread count
 *   npm run bench -- --batch 1             only batch 1
 *   npm run bench -- --models a.onnx       extra models
 *   npm run bench -- --no-kernels          models only
 *   npm run bench -- --json out.json --md out.md
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { type Backend, type OpCard, cpuBackend, referenceBackend } from '../src/core/op.js';
import { Tensor } from '../src/core/tensor.js';
import { setThreads } from '../src/core/threads.js';
import type { Activation } from '../src/kernels/activation.js';
import { type ConvAttrs, convCard } from '../src/kernels/conv.js';
import { binaryCard, unaryCard } from '../src/kernels/elementwise.js';
import { gemmCard, matmulCard, type GemmAttrs } from '../src/kernels/gemm.js';
import { type PoolAttrs, averagePoolCard, globalAveragePoolCard, maxPoolCard } from '../src/kernels/pool.js';
import { markConstant, wasmKernelsEnabled, withWasmKernels } from '../src/kernels/wasm/runtime.js';
import { openArena } from '../src/kernels/wasm/arena.js';
import { withOutputArena } from '../src/core/storage.js';
import { loadOnnx } from '../src/io/onnx/model.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    compare: { type: 'boolean', default: false },
    models: { type: 'string', multiple: true, default: [] },
    batch: { type: 'string', default: '1,16' },
    threads: { type: 'string', default: '1' },
    json: { type: 'string' },
    md: { type: 'string' },
    'no-kernels': { type: 'boolean', default: false },
    'no-models': { type: 'boolean', default: false },
  },
});
const root = join(import.meta.dirname, '..');
const time = args.quick ? 200 : 600;
const batches = args.batch!.split(',').map(Number);
const threadCounts = args.threads!.split(',').map(Number);

interface Row {
  group: string;
  name: string;
  impl: string;
  threads: number;
  median_ms: number;
  min_ms: number;
  samples: number;
  gflops?: number;
  /** median_ms of this row over lightconv's (1 thread, WASM) on the same case. */
  ratio?: number;
}
const rows: Row[] = [];

async function measure(group: string, name: string, impl: string, fn: () => unknown, opts: { macs?: number; threads?: number; slow?: boolean } = {}): Promise<Row> {
  const bench = new Bench({ time: opts.slow ? Math.min(time, 300) : time, warmupTime: args.quick ? 50 : 200, iterations: 3, warmupIterations: 2 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0]!.result as { latency?: { p50: number; min: number }; runs?: number; error?: unknown } | undefined;
  if (r?.error) throw r.error;
  const ms = r?.latency?.p50 ?? NaN;
  const row: Row = { group, name, impl, threads: opts.threads ?? 1, median_ms: ms, min_ms: r?.latency?.min ?? NaN, samples: r?.runs ?? 0, ...(opts.macs ? { gflops: (2 * opts.macs) / (ms * 1e6) } : {}) };
  rows.push(row);
  const g = row.gflops !== undefined ? `  ${row.gflops.toFixed(2).padStart(6)} GFLOP/s` : '';
  console.log(`${group.padEnd(7)} ${name.padEnd(42)} ${`${impl}${row.threads > 1 ? `×${row.threads}` : ''}`.padEnd(16)} ${ms.toFixed(3).padStart(9)} ms${g}`);
  return row;
}

const act = (kind: 'none' | 'relu' | 'hard_swish' | 'silu'): Activation => ({ kind });

interface ConvCase {
  name: string;
  x: number[];
  w: number[];
  attrs: ConvAttrs;
}
const convCase = (name: string, x: number[], w: number[], o: Partial<ConvAttrs> = {}): ConvCase => ({
  name,
  x,
  w,
  attrs: { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: act('none'), ...o },
});

/** Representative conv layers of MobileNetV3-Small/Large and EfficientNet-B0 (224×224 input). */
const CONVS: ConvCase[] = [
  convCase('stem 3→16 3×3 s2 @224 +hswish', [1, 3, 224, 224], [16, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], activation: act('hard_swish') }),
  convCase('1×1 16→72 @56 +relu', [1, 16, 56, 56], [72, 16, 1, 1], { activation: act('relu') }),
  convCase('1×1 40→240 @28 +silu', [1, 40, 28, 28], [240, 40, 1, 1], { activation: act('silu') }),
  convCase('1×1 96→576 @14 +hswish', [1, 96, 14, 14], [576, 96, 1, 1], { activation: act('hard_swish') }),
  convCase('1×1 1152→320 @7 (B0 last)', [1, 1152, 7, 7], [320, 1152, 1, 1]),
  convCase('1×1 576→1024 @1 (head)', [1, 576, 1, 1], [1024, 576, 1, 1]),
  convCase('3×3 64→64 @32 +relu', [1, 64, 32, 32], [64, 64, 3, 3], { pads: [1, 1, 1, 1], activation: act('relu') }),
  convCase('dw 3×3 96 @56', [1, 96, 56, 56], [96, 1, 3, 3], { pads: [1, 1, 1, 1], group: 96 }),
  convCase('dw 3×3 144 @56 s2 +silu', [1, 144, 56, 56], [144, 1, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], group: 144, activation: act('silu') }),
  convCase('dw 5×5 240 @28 s2', [1, 240, 28, 28], [240, 1, 5, 5], { strides: [2, 2], pads: [2, 2, 2, 2], group: 240 }),
  convCase('dw 5×5 576 @7', [1, 576, 7, 7], [576, 1, 5, 5], { pads: [2, 2, 2, 2], group: 576 }),
  convCase('dw 5×5 576 @7 dil2', [1, 576, 7, 7], [576, 1, 5, 5], { pads: [4, 4, 4, 4], dilations: [2, 2], group: 576 }),
];

/** Implementations of the CPU backend: the TS kernels and the WebAssembly SIMD ones. */
const IMPLS: { name: string; backend: Backend; wasm: boolean }[] = [
  { name: 'reference', backend: referenceBackend, wasm: false },
  { name: 'ts', backend: cpuBackend, wasm: false },
  { name: 'wasm-simd', backend: cpuBackend, wasm: true },
];

function runImpl<T>(wasm: boolean, threads: number, fn: () => T): T {
  setThreads(threads);
  try {
    return withWasmKernels(wasm, fn);
  } finally {
    setThreads(1);
  }
}

/**
 * A call of `card` as it runs inside a model run: with the WebAssembly kernels, the float
 * inputs that a previous layer would have made (all but weights) already sit in the arena of
 * kernel memory and the output goes there too (freed after each call); otherwise plain arrays.
 */
function callAsInModel(card: OpCard<any>, backend: Backend, inputs: Tensor[], attrs: unknown, wasm: boolean, threads: number, activations: number[]): () => void {
  const arena = wasm ? openArena() : null;
  if (!arena) return () => runImpl(wasm, threads, () => backend.run(card, inputs, attrs));
  const placed = inputs.map((t, i) => {
    if (!activations.includes(i)) return t;
    const d = arena.alloc(t.size);
    d.set(t.dataSync() as Float32Array);
    return new Tensor(d, t.shape);
  });
  return () =>
    runImpl(true, threads, () => {
      const y = withOutputArena(arena, () => backend.run(card, placed, attrs));
      const block = arena.blockOf(y.dataSync());
      if (block >= 0) arena.free(block);
    });
}

let peak = 0;

async function kernels(): Promise<void> {
  console.log(`\nkernels (median of tinybench samples, ${time} ms per task; wasm-simd rows as inside a model run: activations already in kernel memory)`);
  // The machine's peak for these kernels: the WebAssembly GEMM on a large square (1×1 conv 512→512 @32²).
  {
    const x = Tensor.randn([1, 512, 32, 32], { seed: 1 });
    const w = Tensor.randn([512, 512, 1, 1], { seed: 2 });
    markConstant(w.dataSync() as Float32Array);
    const attrs = convCase('', [], []).attrs;
    const macs = convCard.macs!([x.shape, w.shape], attrs);
    for (const t of threadCounts) {
      const r = await measure('peak', 'GEMM 512×512×1024 (1×1 conv)', 'wasm-simd', callAsInModel(convCard, cpuBackend, [x, w], attrs, true, t, [0]), { macs, threads: t });
      peak = Math.max(peak, (r.gflops ?? 0) / t);
    }
  }
  const tfjs = args.compare ? await loadTfjs() : null;
  for (const k of CONVS) {
    const inputs = [Tensor.randn(k.x, { seed: 1 }), Tensor.randn(k.w, { seed: 2 }), Tensor.randn([k.w[0]!], { seed: 3 })];
    markConstant(inputs[1]!.dataSync() as Float32Array); // as in a loaded model: weights packed once
    const macs = convCard.macs!(inputs.map((t) => t.shape), k.attrs);
    for (const impl of IMPLS) {
      const ts = impl.wasm ? threadCounts : [1];
      for (const t of ts) await measure('conv', k.name, impl.name, callAsInModel(convCard, impl.backend, inputs, k.attrs, impl.wasm, t, [0]), { macs, threads: t, slow: impl.name === 'reference' });
    }
    if (tfjs) await measure('conv', k.name, 'tfjs-wasm', tfjs.conv(k), { macs });
  }
  const others: { name: string; card: OpCard<any>; inputs: Tensor[]; attrs: unknown }[] = [
    {
      name: 'gemm 1×1024 · 1000×1024ᵀ (classifier)',
      card: gemmCard,
      inputs: [Tensor.randn([1, 1024], { seed: 1 }), Tensor.randn([1000, 1024], { seed: 2 }), Tensor.randn([1000], { seed: 3 })],
      attrs: { alpha: 1, beta: 1, transA: false, transB: true, activation: act('none') } as GemmAttrs,
    },
    {
      name: 'gemm 16×1280 · 1000×1280ᵀ (B0 classifier, b16)',
      card: gemmCard,
      inputs: [Tensor.randn([16, 1280], { seed: 1 }), Tensor.randn([1000, 1280], { seed: 2 }), Tensor.randn([1000], { seed: 3 })],
      attrs: { alpha: 1, beta: 1, transA: false, transB: true, activation: act('none') } as GemmAttrs,
    },
    {
      // nn.Linear on channels-last maps as torch exports it (ConvNeXt's MLP): MatMul, constant 2-D B.
      name: 'matmul [1,56,56,96] · 96×384 (ConvNeXt MLP)',
      card: matmulCard,
      inputs: [Tensor.randn([1, 56, 56, 96], { seed: 1 }), Tensor.randn([96, 384], { seed: 2 })],
      attrs: undefined,
    },
    { name: 'global avg pool 576 @7', card: globalAveragePoolCard, inputs: [Tensor.randn([1, 576, 7, 7], { seed: 1 })], attrs: undefined },
    { name: 'hard-swish 1×576×14×14', card: unaryCard, inputs: [Tensor.randn([1, 576, 14, 14], { seed: 1 })], attrs: act('hard_swish') },
    { name: 'max pool 3×3 s2 64 @112', card: maxPoolCard, inputs: [Tensor.randn([1, 64, 112, 112], { seed: 1 })], attrs: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } as PoolAttrs },
    { name: 'max pool 2×2 s2 32 @64', card: maxPoolCard, inputs: [Tensor.randn([1, 32, 64, 64], { seed: 1 })], attrs: { kernel: [2, 2], strides: [2, 2] } as PoolAttrs },
    { name: 'avg pool 2×2 s2 64 @56', card: averagePoolCard, inputs: [Tensor.randn([1, 64, 56, 56], { seed: 1 })], attrs: { kernel: [2, 2], strides: [2, 2] } as PoolAttrs },
    { name: 'SE scale mul [1,576,14,14]·[1,576,1,1]', card: binaryCard, inputs: [Tensor.randn([1, 576, 14, 14], { seed: 1 }), Tensor.randn([1, 576, 1, 1], { seed: 2 })], attrs: 'Mul' },
  ];
  for (const k of others) {
    if (k.card === gemmCard || k.card === matmulCard) markConstant(k.inputs[1]!.dataSync() as Float32Array);
    const macs = k.card.macs?.(k.inputs.map((t) => t.shape), k.attrs);
    for (const impl of IMPLS) {
      await measure('kernel', k.name, impl.name, callAsInModel(k.card, impl.backend, k.inputs, k.attrs, impl.wasm, 1, k.card === gemmCard || k.card === matmulCard ? [] : [0, 1]), { ...(macs ? { macs } : {}), slow: impl.name === 'reference' });
    }
  }
}

/** tfjs with its wasm backend (XNNPACK), one thread, for conv2d / depthwiseConv2d in NHWC. */
async function loadTfjs(): Promise<{ conv: (k: ConvCase) => () => unknown } | null> {
  try {
    const tf = await import('@tensorflow/tfjs-core');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/'));
    // One thread, SIMD build (the threaded build is not what onnxruntime-web is measured with either).
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    tf.env().set('WASM_HAS_SIMD_SUPPORT', true);
    await tf.setBackend('wasm');
    await tf.ready();
    return {
      conv(k) {
        const [, c, h, w] = k.x as [number, number, number, number];
        const [m, , kh, kw] = k.w as [number, number, number, number];
        const depthwise = k.attrs.group === c && c > 1;
        const x = tf.randomNormal([1, h, w, c]);
        const filter = depthwise ? tf.randomNormal([kh, kw, c, 1]) : tf.randomNormal([kh, kw, c, m]);
        const bias = tf.randomNormal([m]);
        // Same output size as the ONNX pads for these cases (TF puts the odd pixel at the end).
        const pad = k.attrs.pads.some((p) => p > 0) ? 'same' : 'valid';
        const strides = k.attrs.strides as [number, number];
        const dil = k.attrs.dilations as [number, number];
        // tfjs fuses relu but has no fused SiLU or hard-swish: those rows do less work than ours.
        const activation = k.attrs.activation.kind === 'relu' ? 'relu' : 'linear';
        return () => {
          const y: { dataSync(): unknown; dispose(): void } = depthwise
            ? tf.fused.depthwiseConv2d({ x: x as never, filter: filter as never, strides, pad, dilations: dil, bias: bias as never, activation })
            : tf.fused.conv2d({ x: x as never, filter: filter as never, strides, pad, dilations: dil, bias: bias as never, activation });
          const out = y.dataSync();
          y.dispose();
          return out;
        };
      },
    };
  } catch (e) {
    console.log(`(tfjs-wasm unavailable: ${(e as Error).message})`);
    return null;
  }
}

interface OrtLike {
  InferenceSession: { create(bytes: Uint8Array, opts?: object): Promise<{ inputNames: readonly string[]; run(feeds: object): Promise<unknown> }> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;
}

async function loadPeers(): Promise<{ name: string; ort: OrtLike; opts: object }[]> {
  const peers: { name: string; ort: OrtLike; opts: object }[] = [];
  try {
    const ort = (await import('onnxruntime-node')) as unknown as OrtLike;
    peers.push({ name: 'ort-node', ort, opts: { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' } });
  } catch (e) {
    console.log(`(onnxruntime-node unavailable: ${(e as Error).message})`);
  }
  try {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.simd = true;
    ort.env.wasm.wasmPaths = join(root, 'node_modules/onnxruntime-web/dist/');
    peers.push({ name: 'ort-web-wasm', ort: ort as unknown as OrtLike, opts: { executionProviders: ['wasm'], graphOptimizationLevel: 'all' } });
  } catch (e) {
    console.log(`(onnxruntime-web unavailable: ${(e as Error).message})`);
  }
  return peers;
}

/** Untimed runs of a threaded model before measuring: enough for ThreadChoice to settle. */
const THREAD_WARM_UP = 12;

async function models(): Promise<void> {
  const shared = join(root, '../shared/fixtures');
  const paths = [
    ...['mobilenet_v3_small', 'efficientnet_b0'].map((m) => join(shared, m, 'model.onnx')).filter((p) => existsSync(p)),
    ...(args.models ?? []),
  ];
  if (paths.length === 0) paths.push(join(root, 'tests/fixtures/models/mnv3_mini/model.onnx'), join(root, 'tests/fixtures/models/effnet_mini/model.onnx'));
  const peers = args.compare ? await loadPeers() : [];
  console.log('\nwhole models (inputs seeded N(0,1); lightconv rows: cpu backend)');
  for (const p of paths) {
    const model = await loadOnnx(p);
    const input = model.inputs[0]!;
    const bytes = new Uint8Array(readFileSync(p));
    const sessions = [];
    for (const peer of peers) {
      try {
        sessions.push({ name: peer.name, ort: peer.ort, session: await peer.ort.InferenceSession.create(bytes, peer.opts) });
      } catch (e) {
        console.log(`(${peer.name} cannot load ${p}: ${(e as Error).message})`);
      }
    }
    for (const b of batches) {
      if (typeof input.shape?.[0] === 'number' && b !== input.shape[0]) continue;
      const shape = (input.shape ?? []).map((d, i) => (typeof d === 'number' ? d : i === 0 ? b : 1));
      const x = Tensor.randn(shape, { seed: 7 });
      const name = `${relative(root, p).replace(/^\.\.\/shared\/fixtures\//, '').replace(/\/model\.onnx$/, '')} b${b}`;
      // Interleaved rounds: every engine runs once per round, so a burst of load from other
      // processes hits all of them alike and the ratios stay fair on a busy machine.
      // Threaded lightconv rows warm up longer: the model first times runs with and without
      // its workers to choose (ThreadChoice in src/kernels/wasm/pool.ts); measured after that.
      const engines: { impl: string; threads: number; fn: () => unknown }[] = [];
      for (const t of threadCounts) engines.push({ impl: 'lightconv', threads: t, fn: () => runImpl(true, t, () => model.runSync({ [input.name]: x })) });
      if (b === 1) engines.push({ impl: 'lightconv-ts', threads: 1, fn: () => runImpl(false, 1, () => model.runSync({ [input.name]: x })) });
      for (const s of sessions) {
        const feeds = { [s.session.inputNames[0]!]: new s.ort.Tensor('float32', x.dataSync() as Float32Array, shape) };
        engines.push({ impl: s.name, threads: 1, fn: () => s.session.run(feeds) });
      }
      const rounds = (b === 1 ? 21 : 7) * (args.quick ? 0.5 : 1);
      const times = engines.map(() => [] as number[]);
      for (const e of engines) if (e.threads > 1) for (let i = 0; i < THREAD_WARM_UP; i++) e.fn();
      for (let r = -2; r < rounds; r++) {
        for (const [i, e] of engines.entries()) {
          // At batch 1 each engine runs twice in a row and the second run is timed: a run right
          // after another engine's finds its threads asleep and its caches cold, which costs a
          // threaded engine more (about 1.2× instead of 1.4× for two threads here); back-to-back
          // runs are what a service doing one request after another sees.
          if (b === 1) await e.fn();
          const t0 = performance.now();
          await e.fn();
          if (r >= 0) times[i]!.push(performance.now() - t0);
        }
      }
      const caseRows: Row[] = engines.map((e, i) => {
        const ts = [...times[i]!].sort((p, q) => p - q);
        const row: Row = { group: 'model', name, impl: e.impl, threads: e.threads, median_ms: ts[ts.length >> 1]!, min_ms: ts[0]!, samples: ts.length };
        rows.push(row);
        return row;
      });
      const base = caseRows[0]!.median_ms;
      for (const r of caseRows) {
        r.ratio = r.median_ms / base;
        console.log(`model   ${name.padEnd(42)} ${`${r.impl}${r.threads > 1 ? `×${r.threads}` : ''}`.padEnd(16)} ${r.median_ms.toFixed(3).padStart(9)} ms  (min ${r.min_ms.toFixed(3)}, ${r.samples} rounds)  ratio ${r.ratio.toFixed(2)}`);
      }
    }
  }
}

if (!wasmKernelsEnabled()) console.log('WebAssembly SIMD is not available here: the wasm-simd rows run the TS kernels.');
if (!args['no-kernels']) await kernels();
if (!args['no-models']) await models();
// Conv rows get the ratio to the WASM kernel (1 thread) of the same case.
for (const r of rows) {
  if (r.ratio !== undefined) continue;
  const base = rows.find((q) => q.group === r.group && q.name === r.name && q.impl === 'wasm-simd' && q.threads === 1);
  if (base) r.ratio = r.median_ms / base.median_ms;
}

const md = [
  `${peak > 0 ? `Measured peak (best WebAssembly GEMM per thread): ${peak.toFixed(1)} GFLOP/s.` : 'Peak not measured (--no-kernels).'} Ratio = median time / lightconv WebAssembly SIMD (1 thread) on the same case; > 1 is slower.`,
  '',
  '| group | case | impl | threads | median ms | GFLOP/s | % of peak | ratio |',
  '|---|---|---|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.group} | ${r.name} | ${r.impl} | ${r.threads} | ${r.median_ms.toFixed(3)} | ${r.gflops?.toFixed(2) ?? ''} | ${r.gflops !== undefined && peak > 0 ? `${((100 * r.gflops) / (peak * r.threads)).toFixed(0)} %` : ''} | ${r.ratio?.toFixed(2) ?? ''} |`,
  ),
].join('\n');
console.log(`\n${md}`);
if (args.md) {
  mkdirSync(dirname(args.md), { recursive: true });
  writeFileSync(args.md, `${md}\n`);
}
if (args.json) {
  mkdirSync(dirname(args.json), { recursive: true });
  writeFileSync(args.json, JSON.stringify({ node: process.version, date: new Date().toISOString(), peak_gflops: peak, rows }, null, 2));
  console.log(`\nwrote ${args.json}`);
}
