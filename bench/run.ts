/**
 * Benchmarks: every kernel implementation (reference and fast CPU) on layer shapes taken from
 * MobileNetV3 and EfficientNet, then whole ONNX models. Figures are medians from tinybench,
 * all measured in this one process so that ratios between rows are meaningful.
 *
 *   npm run bench                      kernels + the repo's models (+ ../shared/fixtures models if present)
 *   npm run bench -- --quick           shorter runs
 *   npm run bench -- --models a.onnx   extra models
 *   npm run bench -- --batch 16        whole models at batch 16 too
 *   npm run bench -- --json out.json   also write the results as JSON
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { type Backend, type OpCard, cpuBackend, referenceBackend } from '../src/core/op.js';
import { Tensor } from '../src/core/tensor.js';
import type { Activation } from '../src/kernels/activation.js';
import { type ConvAttrs, convCard } from '../src/kernels/conv.js';
import { binaryCard, unaryCard } from '../src/kernels/elementwise.js';
import { gemmCard, type GemmAttrs } from '../src/kernels/gemm.js';
import { globalAveragePoolCard } from '../src/kernels/pool.js';
import { loadOnnx } from '../src/io/onnx/model.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    models: { type: 'string', multiple: true, default: [] },
    batch: { type: 'string', multiple: true, default: ['1'] },
    json: { type: 'string' },
    'no-kernels': { type: 'boolean', default: false },
  },
});
const root = join(import.meta.dirname, '..');
const time = args.quick ? 150 : 500;

interface Row {
  group: string;
  name: string;
  impl: string;
  median_ms: number;
  samples: number;
  gflops?: number;
}
const rows: Row[] = [];

async function measure(group: string, name: string, impl: string, fn: () => unknown, macs?: number): Promise<void> {
  const bench = new Bench({ time, warmupTime: args.quick ? 50 : 200, iterations: 3, warmupIterations: 1 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0]!.result as { latency?: { p50: number; samples?: number[] }; runs?: number } | undefined;
  const ms = r?.latency?.p50 ?? NaN;
  const row: Row = { group, name, impl, median_ms: ms, samples: r?.runs ?? 0, ...(macs ? { gflops: (2 * macs) / (ms * 1e6) } : {}) };
  rows.push(row);
  const g = row.gflops !== undefined ? `  ${row.gflops.toFixed(2)} GFLOP/s` : '';
  console.log(`${group.padEnd(8)} ${name.padEnd(44)} ${impl.padEnd(10)} ${ms.toFixed(3).padStart(10)} ms${g}`);
}

const act = (kind: 'none' | 'relu' | 'hard_swish' | 'silu'): Activation => ({ kind });
const conv = (x: number[], w: number[], o: Partial<ConvAttrs> = {}) => ({
  inputs: [Tensor.randn(x, { seed: 1 }), Tensor.randn(w, { seed: 2 }), Tensor.randn([w[0]!], { seed: 3 })],
  attrs: { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, activation: act('none'), ...o } as ConvAttrs,
});

/** Representative layers: (card, inputs, attrs). */
const KERNELS: { name: string; card: OpCard<any>; inputs: Tensor[]; attrs: unknown }[] = [
  { name: 'conv stem 3→16 3×3 s2 @224 +hswish', card: convCard, ...conv([1, 3, 224, 224], [16, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], activation: act('hard_swish') }) },
  { name: 'conv 1×1 96→576 @14 +hswish', card: convCard, ...conv([1, 96, 14, 14], [576, 96, 1, 1], { activation: act('hard_swish') }) },
  { name: 'conv 1×1 40→240 @28 +silu', card: convCard, ...conv([1, 40, 28, 28], [240, 40, 1, 1], { activation: act('silu') }) },
  { name: 'conv 1×1 576→1024 @1 (head)', card: convCard, ...conv([1, 576, 1, 1], [1024, 576, 1, 1]) },
  { name: 'conv 3×3 64→64 @32 +relu (light_cnn)', card: convCard, ...conv([1, 64, 32, 32], [64, 64, 3, 3], { pads: [1, 1, 1, 1], activation: act('relu') }) },
  { name: 'depthwise 3×3 96 @56 s1', card: convCard, ...conv([1, 96, 56, 56], [96, 1, 3, 3], { pads: [1, 1, 1, 1], group: 96 }) },
  { name: 'depthwise 5×5 240 @28 s2', card: convCard, ...conv([1, 240, 28, 28], [240, 1, 5, 5], { strides: [2, 2], pads: [2, 2, 2, 2], group: 240 }) },
  { name: 'depthwise 5×5 576 @7 dil2', card: convCard, ...conv([1, 576, 7, 7], [576, 1, 5, 5], { pads: [4, 4, 4, 4], dilations: [2, 2], group: 576 }) },
  {
    name: 'gemm 1×1024 · 1000×1024ᵀ (classifier)',
    card: gemmCard,
    inputs: [Tensor.randn([1, 1024], { seed: 1 }), Tensor.randn([1000, 1024], { seed: 2 }), Tensor.randn([1000], { seed: 3 })],
    attrs: { alpha: 1, beta: 1, transA: false, transB: true, activation: act('none') } as GemmAttrs,
  },
  { name: 'global avg pool 576 @7', card: globalAveragePoolCard, inputs: [Tensor.randn([1, 576, 7, 7], { seed: 1 })], attrs: undefined },
  { name: 'hard-swish 1×576×14×14', card: unaryCard, inputs: [Tensor.randn([1, 576, 14, 14], { seed: 1 })], attrs: act('hard_swish') },
  { name: 'SE scale mul [1,576,14,14]·[1,576,1,1]', card: binaryCard, inputs: [Tensor.randn([1, 576, 14, 14], { seed: 1 }), Tensor.randn([1, 576, 1, 1], { seed: 2 })], attrs: 'Mul' },
];

async function kernels(): Promise<void> {
  console.log(`\nkernels (median of tinybench samples, ${time} ms per task)`);
  const backends: Backend[] = [referenceBackend, cpuBackend];
  for (const k of KERNELS) {
    const macs = k.card.macs?.(k.inputs.map((t) => t.shape), k.attrs);
    for (const b of backends) await measure('kernel', k.name, b.name, () => b.run(k.card, k.inputs, k.attrs), macs);
  }
}

async function models(): Promise<void> {
  const shared = join(root, '../shared/fixtures');
  const paths = [
    join(root, 'examples/digits.onnx'),
    join(root, 'tests/fixtures/models/mnv3_mini/model.onnx'),
    join(root, 'tests/fixtures/models/effnet_mini/model.onnx'),
    ...['mobilenet_v3_small', 'efficientnet_b0', 'eca_mobilenet_v3_small', 'light_cnn', 'tiny_mobilenet_v3', 'tiny_efficientnet']
      .map((m) => join(shared, m, 'model.onnx'))
      .filter((p) => existsSync(p)),
    ...(args.models ?? []),
  ];
  console.log('\nwhole models (batch as given; inputs seeded N(0,1))');
  for (const p of paths) {
    const model = await loadOnnx(p);
    const input = model.inputs[0]!;
    for (const b of (args.batch ?? ['1']).map(Number)) {
      const shape = (input.shape ?? []).map((d, i) => (typeof d === 'number' ? d : i === 0 ? b : 1));
      if (typeof input.shape?.[0] === 'number' && b !== input.shape[0]) continue;
      const x = Tensor.randn(shape, { seed: 7 });
      const name = `${relative(root, p).replace(/^\.\.\/shared\/fixtures\//, 'shared:')} b${b}`;
      await measure('model', name, 'cpu', () => model.runSync({ [input.name]: x }));
    }
  }
}

if (!args['no-kernels']) await kernels();
await models();

const md = ['| group | case | impl | median ms | GFLOP/s |', '|---|---|---|---:|---:|', ...rows.map((r) => `| ${r.group} | ${r.name} | ${r.impl} | ${r.median_ms.toFixed(3)} | ${r.gflops?.toFixed(2) ?? ''} |`)].join('\n');
console.log(`\n${md}`);
if (args.json) {
  mkdirSync(dirname(args.json), { recursive: true });
  writeFileSync(args.json, JSON.stringify({ node: process.version, date: new Date().toISOString(), rows }, null, 2));
  console.log(`\nwrote ${args.json}`);
}
