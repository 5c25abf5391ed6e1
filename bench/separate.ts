/**
 * Whole-model inference against onnxruntime-node, each engine in its own process: in one process
 * the engines share caches, and lightconv's waiting workers share the cores. Rounds interleave
 * the engines (the order alternating per round) so that load on a shared machine hits both alike;
 * each process loads the model, warms up, times `--runs` runs and reports its median and its
 * peak RSS. The table gives the median over rounds of each engine and their ratio.
 *
 *   npx tsx bench/separate.ts [--models mobilenet_v3_small,efficientnet_b0 | --onnx a.onnx,b.onnx]
 *                             [--batch 1,16] [--rounds 5] [--runs 20] [--threads 1]
 *
 * Without --onnx, the native builders' exports (random weights, torchvision's architectures) are
 * written to a temporary folder first.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const argv = process.argv.slice(2);
function arg(name: string, def: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : def;
}

interface ChildResult {
  ms: number;
  rssMiB: number;
}

/** One engine, one model, one batch size: load, warm up, time, print JSON. */
async function child(engine: string, model: string, batch: number, runs: number, threads: number): Promise<void> {
  const times: number[] = [];
  if (engine === 'lightconv') {
    const { loadOnnx, setThreads, Tensor } = await import('../src/index.js');
    setThreads(threads);
    const m = await loadOnnx(model);
    const shape = m.inputs[0]!.shape!.map((d) => (typeof d === 'number' ? d : batch));
    const x = Tensor.randn(shape, { seed: 1 });
    for (let i = 0; i < 3; i++) m.runSync(x);
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      m.runSync(x);
      times.push(performance.now() - t0);
    }
  } else {
    const ort = await import('onnxruntime-node');
    const s = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
    const meta = s.inputNames[0]!;
    const dims = [batch, 3, 224, 224];
    const x = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)), dims);
    for (let i = 0; i < 3; i++) await s.run({ [meta]: x });
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run({ [meta]: x });
      times.push(performance.now() - t0);
    }
  }
  times.sort((a, b) => a - b);
  const result: ChildResult = { ms: times[Math.floor(times.length / 2)]!, rssMiB: process.resourceUsage().maxRSS / 1024 };
  console.log(JSON.stringify(result));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function parent(): Promise<void> {
  const batches = arg('batch', '1,16').split(',').map(Number);
  const rounds = Number(arg('rounds', '5'));
  const runs = Number(arg('runs', '20'));
  const threads = Number(arg('threads', '1'));
  let dir: string | undefined;
  let models: string[];
  if (argv.includes('--onnx')) {
    models = arg('onnx', '').split(',');
  } else {
    const { exportOnnx, models: builders } = await import('../src/index.js');
    dir = mkdtempSync(join(tmpdir(), 'lightconv-bench-'));
    models = [];
    for (const name of arg('models', 'mobilenet_v3_small,efficientnet_b0').split(',')) {
      const net = name === 'mobilenet_v3_small' ? builders.mobilenetV3('small') : name === 'mobilenet_v3_large' ? builders.mobilenetV3('large') : builders.efficientnet(name.replace('efficientnet_', '') as 'b0');
      const path = join(dir, `${name}.onnx`);
      await exportOnnx(net, path);
      models.push(path);
    }
  }
  const tsx = join(import.meta.dirname, '../node_modules/.bin/tsx');
  console.log(`each engine in its own process, ${rounds} interleaved rounds, median of ${runs} runs per process, ${threads} thread(s)`);
  console.log('model                   batch   lightconv ms   onnxruntime-node ms   ratio   peak RSS MiB (lc / ort)');
  try {
    for (const model of models) {
      for (const batch of batches) {
        const got: Record<string, ChildResult[]> = { lightconv: [], ort: [] };
        for (let r = 0; r < rounds; r++) {
          const order = r % 2 === 0 ? ['lightconv', 'ort'] : ['ort', 'lightconv'];
          for (const engine of order) {
            const out = execFileSync(tsx, [import.meta.filename, '--child', engine, model, String(batch), String(runs), String(threads)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
            got[engine]!.push(JSON.parse(out.trim().split('\n').at(-1)!) as ChildResult);
          }
        }
        const lc = median(got.lightconv!.map((g) => g.ms));
        const ort = median(got.ort!.map((g) => g.ms));
        const rss = (e: string) => median(got[e]!.map((g) => g.rssMiB)).toFixed(0);
        console.log(
          `${basename(model, '.onnx').padEnd(22)} ${String(batch).padStart(6)} ${lc.toFixed(1).padStart(14)} ${ort.toFixed(1).padStart(21)} ${(lc / ort).toFixed(2).padStart(7)}×   ${rss('lightconv')} / ${rss('ort')}`,
        );
      }
    }
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

if (argv[0] === '--child') await child(argv[1]!, argv[2]!, Number(argv[3]), Number(argv[4]), Number(argv[5]));
else await parent();
