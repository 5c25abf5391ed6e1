/**
 * CPU backend vs the GPU backend (src/gpu, gpu.js), per op on MobileNetV3 / EfficientNet layer
 * shapes and per whole model. Each GPU row times the launch and the readback of the result
 * (dataSync), as a caller that needs the numbers would see it; models read back once per run.
 *
 *   npx tsx bench/gpu.ts                       cpu vs gpu.js webasm and cpu modes
 *   npx tsx bench/gpu.ts --modes webasm,headlessgl --runs 20 --models a.onnx --json out.json
 *
 * READ THIS BEFORE QUOTING A NUMBER: in Node without the native `gl` package, gpu.js has no GPU
 * at all — its `webasm` mode runs the kernels as WebAssembly on the CPU and its `cpu` mode as
 * JavaScript. Those rows measure the gpu.js translation of the kernels on the CPU, not a GPU.
 * The WebGL2 path runs in the browser test (tests/browser), which in headless Chromium without a
 * GPU renders with SwiftShader, a software rasteriser: its per-model times are not GPU figures
 * either. On a machine with a GPU, run this with `--modes headlessgl` (after building `gl`, under
 * Xvfb) or time the browser page in a browser with hardware WebGL2.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Backend, type OpCard, apply, cpuBackend, useBackend } from '../src/core/op.js';
import { Tensor } from '../src/core/tensor.js';
import { type GpuBackend, type GpuMode, gpu } from '../src/gpu.js';
import { loadOnnx } from '../src/io/onnx/model.js';
import { decodeTensor } from '../src/io/onnx/tensor_proto.js';
import type { Activation } from '../src/kernels/activation.js';
import { type ConvAttrs, convCard } from '../src/kernels/conv.js';
import { binaryCard, unaryCard } from '../src/kernels/elementwise.js';
import { GEMM_DEFAULTS, gemmCard } from '../src/kernels/gemm.js';
import { globalAveragePoolCard } from '../src/kernels/pool.js';

const { values: args } = parseArgs({
  options: {
    modes: { type: 'string', default: 'webasm,cpu' },
    runs: { type: 'string', default: '7' },
    models: { type: 'string', multiple: true, default: [] },
    json: { type: 'string' },
    'no-ops': { type: 'boolean', default: false },
  },
});
const ROOT = join(import.meta.dirname, '..');
const RUNS = Number(args.runs);
const modes = args.modes!.split(',').filter(Boolean) as GpuMode[];

interface Row {
  group: 'op' | 'model';
  name: string;
  backend: string;
  median_ms: number;
  gflops?: number;
  note?: string;
}
const rows: Row[] = [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median ms of fn over RUNS runs after one warm-up (which also compiles GPU kernels). */
function timeIt(fn: () => void): number {
  fn();
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

const hs: Activation = { kind: 'hard_swish' };
const conv = (strides: number[], pads: number[], group: number, activation: Activation = hs): ConvAttrs => ({ strides, pads, dilations: [1, 1], group, activation });
const rnd = (shape: number[], seed: number) => Tensor.rand(shape, { seed, low: -1, high: 1 });

interface OpCase {
  name: string;
  card: OpCard<unknown>;
  inputs: Tensor[];
  attrs: unknown;
  macs: number;
}
const op = <A>(name: string, card: OpCard<A>, inputs: Tensor[], attrs: A): OpCase => ({
  name,
  card: card as OpCard<unknown>,
  inputs,
  attrs,
  macs: card.macs?.(inputs.map((t) => t.shape), attrs) ?? 0,
});

const OPS: OpCase[] = [
  op('stem conv 3→16 3×3 s2, 224²', convCard, [rnd([1, 3, 224, 224], 1), rnd([16, 3, 3, 3], 2), rnd([16], 3)], conv([2, 2], [1, 1, 1, 1], 1)),
  op('pointwise 96→576, 7²', convCard, [rnd([1, 96, 7, 7], 4), rnd([576, 96, 1, 1], 5), rnd([576], 6)], conv([1, 1], [0, 0, 0, 0], 1)),
  op('pointwise 1152→192, 7² (loop > 1000)', convCard, [rnd([1, 1152, 7, 7], 7), rnd([192, 1152, 1, 1], 8), rnd([192], 9)], conv([1, 1], [0, 0, 0, 0], 1, { kind: 'none' })),
  op('depthwise 5×5 576ch, 7²', convCard, [rnd([1, 576, 7, 7], 10), rnd([576, 1, 5, 5], 11), rnd([576], 12)], conv([1, 1], [2, 2, 2, 2], 576)),
  op('depthwise 3×3 s2 72ch, 56²', convCard, [rnd([1, 72, 56, 56], 13), rnd([72, 1, 3, 3], 14), rnd([72], 15)], conv([2, 2], [1, 1, 1, 1], 72, { kind: 'relu' })),
  op('classifier Gemm 576→1024', gemmCard, [rnd([1, 576], 16), rnd([1024, 576], 17), rnd([1024], 18)], { ...GEMM_DEFAULTS, transB: true, activation: hs }),
  op('GlobalAveragePool 576×7²', globalAveragePoolCard, [rnd([1, 576, 7, 7], 19)], undefined),
  op('hard-swish 16×112²', unaryCard, [rnd([1, 16, 112, 112], 20)], hs),
  op('SE gate Mul 576×7² ∘ 576×1²', binaryCard, [rnd([1, 576, 7, 7], 21), rnd([1, 576, 1, 1], 22)], 'Mul'),
];

function runOp(c: OpCase, b: Backend): void {
  const y = apply(c.card, c.inputs, c.attrs, b);
  y.dataSync();
  y.dispose();
}

const backends: [string, Backend][] = [['cpu', cpuBackend]];
const gpus: GpuBackend[] = [];
for (const mode of modes) {
  try {
    const g = await gpu({ mode, log: (m) => console.error(m) });
    gpus.push(g);
    backends.push([g.name, g]);
  } catch (e) {
    console.error(`skipping gpu.js mode ${mode}: ${(e as Error).message}`);
  }
}

if (!args['no-ops']) {
  console.log('per op (median ms; GFLOP/s = 2·MACs/time)');
  for (const c of OPS) {
    const cells: string[] = [];
    for (const [name, b] of backends) {
      const ms = timeIt(() => runOp(c, b));
      const gflops = c.macs ? (2 * c.macs) / (ms * 1e6) : undefined;
      rows.push({ group: 'op', name: c.name, backend: name, median_ms: ms, gflops });
      cells.push(`${name} ${ms.toFixed(2)} ms${gflops ? ` (${gflops.toFixed(2)})` : ''}`);
    }
    console.log(`  ${c.name.padEnd(38)} ${cells.join('   ')}`);
  }
}

const modelDirs = [
  join(ROOT, 'tests/fixtures/models/mnv3_mini'),
  join(ROOT, 'tests/fixtures/models/effnet_mini'),
  ...['tiny_mobilenet_v3', 'tiny_efficientnet'].map((n) => join(ROOT, '../shared/fixtures', n)).filter((d) => existsSync(d)),
];
const models: { name: string; file: string; input?: Tensor }[] = modelDirs.map((d) => ({
  name: d.split('/').slice(-1)[0]!,
  file: join(d, 'model.onnx'),
  input: existsSync(join(d, 'test_data_set_0/input_0.pb')) ? decodeTensor(readFileSync(join(d, 'test_data_set_0/input_0.pb'))) : undefined,
}));
for (const f of args.models!) models.push({ name: f, file: f });

console.log('whole models (median ms per run, one readback)');
for (const m of models) {
  const model = await loadOnnx(m.file);
  const info = model.inputs[0]!;
  const x = m.input ?? Tensor.randn((info.shape ?? []).map((d) => (typeof d === 'number' ? d : 1)), { seed: 1 });
  const cells: string[] = [];
  for (const [name, b] of backends) {
    useBackend(b);
    try {
      const ms = timeIt(() => {
        for (const t of Object.values(model.runSync(x))) {
          t.dataSync();
          t.dispose();
        }
      });
      rows.push({ group: 'model', name: m.name, backend: name, median_ms: ms });
      cells.push(`${name} ${ms.toFixed(1)} ms`);
    } finally {
      useBackend(cpuBackend);
    }
  }
  console.log(`  ${m.name.padEnd(28)} ${cells.join('   ')}`);
}
for (const g of gpus) {
  const fallbacks = Object.entries(g.coverage()).filter(([, c]) => c.cpu > 0);
  if (fallbacks.length) console.log(`${g.name} ran on the CPU: ${fallbacks.map(([op, c]) => `${op} (${c.reasons.join('; ')})`).join(', ')}`);
  g.destroy();
}
console.log('note: no GPU was used — gpu.js webasm/cpu modes run on the CPU; these are not GPU figures.');
if (args.json) writeFileSync(args.json, JSON.stringify({ note: 'gpu.js webasm/cpu modes run on the CPU; not GPU figures', runs: RUNS, rows }, null, 2));
