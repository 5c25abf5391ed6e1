import type { Command } from 'commander';
import { LightconvError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { loadOnnx } from '../io/onnx/model.js';
import type { OnnxNode } from '../io/onnx/node.js';
import { useWasmKernels, wasmKernelsEnabled } from '../kernels/wasm/runtime.js';
import { getThreads, setThreads } from '../core/threads.js';

import { inputPath, intArg } from './args.js';

const positiveInt = intArg(1);

interface BenchOpts {
  batch: number;
  threads: number;
  backend: string;
  runs: number;
  warmup?: number;
  kernels: string;
  json?: boolean;
  profile?: boolean;
}

/** The op type; grouped (depthwise) convs apart from dense ones, as they run on other kernels. */
function opKind(node: OnnxNode): string {
  return node.opType === 'Conv' && node.int('group', 1) > 1 ? 'Conv (grouped)' : node.opType;
}

/** Median of a list of numbers. */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Adds `lightconv bench MODEL.onnx`: whole-model latency after warm-up. */
export function register(program: Command): void {
  program
    .command('bench')
    .description('median whole-model latency after warm-up (seeded N(0,1) inputs)')
    .argument('<model>', 'ONNX file', inputPath('model'))
    .option('--batch <n>', 'batch size (for a symbolic batch dim)', positiveInt, 1)
    .option('--threads <n>', 'worker threads for the CPU kernels', positiveInt, 1)
    .option('--backend <name>', 'backend: cpu', 'cpu')
    .option('--runs <n>', 'timed runs', positiveInt, 20)
    .option('--warmup <n>', 'untimed runs first (default 3; 12 with --threads above 1, while the model times runs with and without its worker threads to choose)', positiveInt)
    .option('--kernels <kind>', 'cpu kernels: wasm (WebAssembly SIMD, default where supported) or ts', 'wasm')
    .option('--json', 'print JSON')
    .option('--profile', 'also time every node: median ms per run by op type')
    .action(async (file: string, o: BenchOpts) => {
      if (o.backend !== 'cpu') throw new LightconvError(`--backend ${o.backend}: only 'cpu' is available in this build`);
      if (o.kernels !== 'wasm' && o.kernels !== 'ts') throw new LightconvError(`--kernels must be 'wasm' or 'ts', got '${o.kernels}'`);
      useWasmKernels(o.kernels === 'wasm');
      setThreads(o.threads);
      const model = await loadOnnx(file);
      const rng = new Rng(0);
      const feeds: Record<string, Tensor> = Object.create(null); // input names may be '__proto__'
      for (const info of model.inputs) {
        if (!info.shape || info.dtype !== 'float32') throw new LightconvError(`input '${info.name}' is not a float32 tensor of known rank`);
        if (typeof info.shape[0] === 'number' && info.shape[0] !== o.batch) throw new LightconvError(`the model's batch size is fixed at ${info.shape[0]}`);
        feeds[info.name] = Tensor.randn(info.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? o.batch : 1)), { rng });
      }
      const warmup = o.warmup ?? (o.threads > 1 ? 12 : 3);
      for (let i = 0; i < warmup; i++) model.runSync(feeds);
      const times: number[] = [];
      // Per op kind, the time of every run (summed over its nodes).
      const kinds = new Map<string, number[]>();
      for (let i = 0; i < o.runs; i++) {
        const perRun = new Map<string, number>();
        const t0 = performance.now();
        model.runSync(feeds, o.profile ? { onNodeTime: (node, ms) => perRun.set(opKind(node), (perRun.get(opKind(node)) ?? 0) + ms) } : {});
        times.push(performance.now() - t0);
        for (const [k, ms] of perRun) kinds.set(k, [...(kinds.get(k) ?? []), ms]);
      }
      const profile = [...kinds].map(([op, ms]) => ({ op, median_ms: median(ms) })).sort((a, b) => b.median_ms - a.median_ms);
      const result = {
        model: file,
        backend: o.backend,
        kernels: wasmKernelsEnabled() ? 'wasm-simd' : 'ts',
        batch: o.batch,
        threads: getThreads(),
        runs: o.runs,
        warmup,
        median_ms: median(times),
        min_ms: Math.min(...times),
        max_ms: Math.max(...times),
        node: process.version,
        ...(o.profile ? { profile } : {}),
      };
      if (o.json) console.log(JSON.stringify(result, null, 2));
      else {
        console.log(`${file}: batch ${result.batch}, ${result.threads} thread(s), ${result.backend} (${result.kernels} kernels)`);
        console.log(`median ${result.median_ms.toFixed(2)} ms, min ${result.min_ms.toFixed(2)} ms over ${o.runs} runs after ${warmup} warm-up runs`);
        for (const p of o.profile ? profile : []) console.log(`  ${p.op.padEnd(20)} ${p.median_ms.toFixed(3).padStart(9)} ms  ${((100 * p.median_ms) / result.median_ms).toFixed(1).padStart(5)} %`);
      }
      setThreads(1);
    });
}
