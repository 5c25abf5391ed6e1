#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Command, CommanderError } from 'commander';
import { LightconvError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { referenceBackend, useBackend } from '../core/op.js';
import { fmtShape } from '../core/shape.js';
import { loadImageTensor } from '../data/image.js';
import { loadOnnx, readOnnx } from '../io/onnx/model.js';
import { decodeTensor } from '../io/onnx/tensor_proto.js';
import { DEFAULT_TOLERANCE, findCases, runCase } from './conformance.js';
import { isAutogradCase, runAutogradCase } from './conformance_autograd.js';
import { register as registerModelCommands } from './models.js';
import { register as registerBenchCommand } from './bench.js';
import { register as registerWorkflowCommands } from './workflow.js';
import { register as registerGradcamCommand } from './gradcam.js';
import { register as registerActivationsCommand } from './activations.js';
import { register as registerExploreCommand } from './explore.js';
import { register as registerAppCommand } from './app.js';
import { preprocessFromMetadata } from '../data/transforms.js';
import { runNativeCase } from './native.js';
import { EXIT, collectInputPaths, inputPath, inputPaths, intArg, numberArg } from './args.js';

const program = new Command();
program
  .name('lightconv')
  .description('Train, evaluate, run, inspect and check CNNs for medical image classification with the lightconv engine.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .option('--debug', 'on an error, also print its stack trace (as LIGHTCONV_DEBUG=1 does)')
  // Usage mistakes: one line (no help dump), and the exit status decided in one place below.
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(`lightconv: ${oneLine(str.replace(/^error: /, ''))} (see --help)\n`) })
  .addHelpText(
    'after',
    `\nExit status: ${EXIT.ok} success; ${EXIT.internal} internal error (conformance: a case failed); ${EXIT.badInput} bad input (a missing, unreadable or malformed file, a typed error);\n` +
      `${EXIT.usage} usage error (unknown option, bad option value); ${EXIT.interrupted} interrupted. Errors are one line on stderr; --debug adds the stack.`,
  );

/** The version in the package's package.json (the CLI runs from dist/ or src/cli/). */
function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'lightconv' && p.version) return p.version;
    } catch {
      /* not there: try the next */
    }
  }
  return 'unknown';
}

const positiveInt = intArg(1);
/** Seeds are 32-bit (see Rng). */
const seedArg = intArg(0, 2 ** 32 - 1);

/** A message on one line (a multi-line message would read as several errors). */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

const BACKEND_HELP = "kernels: cpu (default), reference, gpu (gpu.js, mode chosen explicitly) or gpu:MODE (webgl2, webgl, headlessgl, webasm, cpu)";

/** Makes --backend the active backend; gpu.js (an optional peer) is loaded only when asked for. */
async function selectBackend(name: string | undefined): Promise<void> {
  if (!name || name === 'cpu') return;
  if (name === 'reference') return useBackend(referenceBackend);
  const m = /^gpu(?::(webgl2|webgl|headlessgl|webasm|cpu))?$/.exec(name);
  if (!m) throw new LightconvError(`--backend: '${name}' is not one of cpu, reference, gpu, gpu:MODE`);
  const { gpu } = await import('../gpu.js');
  const b = await gpu(m[1] ? { mode: m[1] as 'webgl2' | 'webgl' | 'headlessgl' | 'webasm' | 'cpu' } : {});
  console.error(`backend: ${b.name}${b.info.renderer ? ` (${b.info.renderer})` : ''}`);
  useBackend(b);
}

program
  .command('info')
  .description('inputs, outputs, op counts, parameter count and unsupported ops of a model')
  .argument('<model>', 'ONNX file', inputPath('model'))
  .option('--json', 'print JSON')
  .action(async (file: string, o: { json?: boolean }) => {
    const g = await readOnnx(file);
    const info = {
      file,
      ir_version: g.irVersion,
      producer: g.producer,
      opsets: Object.fromEntries([...g.opsets].map(([d, v]) => [d || 'ai.onnx', v])),
      inputs: g.inputs.map((i) => ({ name: i.name, dtype: i.dtype ?? i.elemType, shape: i.shape })),
      outputs: g.outputs.map((i) => ({ name: i.name, dtype: i.dtype ?? i.elemType, shape: i.shape })),
      nodes: g.nodes.length,
      op_counts: Object.fromEntries(g.opCounts()),
      parameters: g.parameterCount(),
      unsupported: g.unsupported,
    };
    if (o.json) return console.log(JSON.stringify(info, null, 2));
    const dims = (s: ReadonlyArray<number | string | null> | undefined) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '(unknown shape)');
    console.log(`${file}: IR ${info.ir_version}, opset ${Object.entries(info.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}${info.producer ? `, from ${info.producer}` : ''}`);
    for (const i of info.inputs) console.log(`  input  ${i.name}: ${i.dtype} ${dims(i.shape)}`);
    for (const i of info.outputs) console.log(`  output ${i.name}: ${i.dtype} ${dims(i.shape)}`);
    console.log(`  ${info.nodes} nodes: ${Object.entries(info.op_counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    console.log(`  ${info.parameters.toLocaleString('en-US')} parameters`);
    if (g.unsupported.length === 0) console.log('  all ops supported');
    else for (const u of g.unsupported) console.log(`  unsupported: ${u.opType}${u.reason ? ` (${u.reason})` : ''} at ${u.nodes.length} node(s): ${u.nodes.slice(0, 3).join(', ')}`);
  });

program
  .command('run')
  .description('run a model on inputs (.pb TensorProto files, an image, or seeded random data) and print the top-5')
  .argument('<model>', 'ONNX file', inputPath('model'))
  .option('--input <file.pb>', 'TensorProto for the next graph input (repeatable)', collectInputPaths('--input'), [])
  .option('--image <file>', 'PNG or JPEG for the first input, preprocessed as the model says (metadata from lightconv train) or the torchvision way', inputPath('--image'))
  .option('--resize <n>', 'resize the shorter image side to n (default: the model\'s metadata, else input size / 0.875)', positiveInt)
  .option('--crop <n>', 'center crop to n×n (default: the model\'s metadata, else the model input size)', positiveInt)
  .option('--mean <r,g,b>', 'per-channel mean for --image (default: the model\'s metadata, else ImageNet)')
  .option('--std <r,g,b>', 'per-channel std for --image (default: the model\'s metadata, else ImageNet)')
  .option('--labels <file>', 'text file with one class name per line (default: the class names in the model\'s metadata)', inputPath('--labels'))
  .option('--batch <n>', 'batch size for random inputs when the batch dim is symbolic', positiveInt, 1)
  .option('--seed <n>', 'seed for random inputs (0 to 2^32 − 1)', seedArg, 0)
  .option('--runs <n>', 'timed runs after one warm-up; the median is printed', positiveInt, 1)
  .option('--no-optimize', 'run the graph exactly as written (no BN folding or fusion)')
  .option('--backend <name>', BACKEND_HELP)
  .option('--json', 'print JSON')
  .action(async (file: string, o: RunOpts) => {
    await selectBackend(o.backend);
    const model = await loadOnnx(file, { optimize: o.optimize });
    const feeds: Record<string, Tensor> = Object.create(null); // input names may be '__proto__'
    for (const [k, pb] of o.input.entries()) {
      const info = model.inputs[k];
      if (!info) throw new LightconvError(`--input ${pb}: the model has only ${model.inputs.length} input(s)`);
      feeds[info.name] = decodeTensor(new Uint8Array(await readFile(pb)), pb);
    }
    const first = model.inputs[0];
    // A model trained by lightconv carries its preprocessing and class names: no flags needed.
    const meta = Object.fromEntries(model.graph.metadata);
    const pre = preprocessFromMetadata(meta);
    if (o.image && first) {
      const [, c, h, w] = (first.shape ?? []).map((d) => (typeof d === 'number' ? d : undefined));
      const size = o.crop ?? pre?.crop ?? h ?? 224;
      feeds[first.name] = await loadImageTensor(o.image, {
        resize: o.resize ?? pre?.resize ?? Math.round(size / 0.875),
        crop: [size, o.crop ?? pre?.crop ?? w ?? size],
        channels: pre?.channels ?? (c === 1 ? 1 : 3),
        ...(o.mean ? { mean: parseList(o.mean, '--mean') } : pre ? { mean: pre.mean } : {}),
        ...(o.std ? { std: parseList(o.std, '--std') } : pre ? { std: pre.std } : {}),
      });
    }
    const rng = new Rng(o.seed);
    for (const info of model.inputs) {
      if (feeds[info.name]) continue;
      if (!info.shape || info.dtype !== 'float32') throw new LightconvError(`input '${info.name}' needs data: pass --input`);
      const shape = info.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? o.batch : 1));
      feeds[info.name] = Tensor.randn(shape, { rng });
    }
    let outs = await model.run(feeds);
    const times: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      const t0 = performance.now();
      outs = await model.run(feeds);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)]!;
    const labels = o.labels ? (await readFile(o.labels, 'utf8')).split(/\r?\n/) : meta['lightconv.classes'] ? (JSON.parse(meta['lightconv.classes']) as string[]) : undefined;
    const report = Object.entries(outs).map(([name, t]) => ({ name, shape: t.shape, top5: topK(t, 5, labels) }));
    if (o.json) return console.log(JSON.stringify({ model: file, inputs: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.shape])), outputs: report, median_ms: ms, runs: o.runs }, null, 2));
    for (const r of report) {
      console.log(`${r.name}: ${fmtShape(r.shape)}`);
      r.top5?.forEach((rows, n) => {
        if (r.top5!.length > 1) console.log(`  item ${n}:`);
        for (const e of rows) console.log(`  ${String(e.index).padStart(5)}  p=${e.probability.toFixed(4)}  logit=${e.logit.toFixed(4)}${e.label ? `  ${e.label}` : ''}`);
      });
    }
    console.log(`time: ${ms.toFixed(2)} ms (median of ${o.runs} run${o.runs > 1 ? 's' : ''} after a warm-up)`);
  });

program
  .command('conformance')
  .description('run ONNX test-layout fixtures (model.onnx + test_data_set_N) and compare against their outputs')
  .argument('<dirs...>', 'fixture folders, searched recursively', inputPaths('fixture folder', 'folder'))
  .option('--atol <x>', 'absolute tolerance where meta.json sets none', numberArg({ min: 0 }), DEFAULT_TOLERANCE.abs)
  .option('--rtol <x>', 'relative tolerance where meta.json sets none', numberArg({ min: 0 }), DEFAULT_TOLERANCE.rel)
  .option('--json', 'print JSON')
  .option('--native', 'assemble the native model (MobileNetV3 / EfficientNet / light_cnn) from the ONNX weights and run that instead of the graph')
  .option('--backend <name>', BACKEND_HELP)
  .action(async (dirs: string[], o: { atol: number; rtol: number; json?: boolean; native?: boolean; backend?: string }) => {
    await selectBackend(o.backend);
    const counts = { pass: 0, fail: 0, skip: 0 };
    const results = [];
    for (const root of dirs) {
      for (const dir of await findCases([root])) {
        // A folder with manifest.json is a training reference (autograd): one result per check group.
        const rs = !o.native && (await isAutogradCase(dir))
          ? await runAutogradCase(dir, root)
          : [o.native ? await runNativeCase(dir, root, { abs: o.atol, rel: o.rtol }) : await runCase(dir, root, { abs: o.atol, rel: o.rtol })];
        for (const r of rs) {
        counts[r.status]++;
        results.push(r);
        if (!o.json) {
          const err = r.status === 'skip' ? '' : `  max abs ${r.maxAbs.toExponential(1)}  max rel ${r.maxRel.toExponential(1)}  ${r.ms.toFixed(0)} ms`;
          console.log(`${r.status.toUpperCase().padEnd(4)}  ${r.name}${err}${r.detail ? `  — ${r.detail}` : ''}`);
        }
        }
      }
    }
    const line = `${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped`;
    if (o.json) console.log(JSON.stringify({ results, passed: counts.pass, failed: counts.fail, skipped: counts.skip }, null, 2));
    else console.log(line);
    if (counts.fail > 0) process.exitCode = 1;
  });

interface RunOpts {
  input: string[];
  image?: string;
  resize?: number;
  crop?: number;
  mean?: string;
  std?: string;
  labels?: string;
  batch: number;
  seed: number;
  runs: number;
  optimize: boolean;
  backend?: string;
  json?: boolean;
}

function parseList(s: string, what: string): number[] {
  const v = s.split(',').map(Number);
  if (v.some((x) => !Number.isFinite(x))) throw new LightconvError(`${what}: '${s}' is not a comma-separated list of numbers`);
  return v;
}

/** Softmax top-k per row of a [N, classes] output (or a flat one). */
function topK(t: Tensor, k: number, labels?: string[]) {
  if (t.dtype !== 'float32' || t.rank === 0 || t.rank > 2) return undefined;
  const rows = t.rank === 2 ? t.shape[0]! : 1;
  const n = t.rank === 2 ? t.shape[1]! : t.shape[0]!;
  const d = t.f32();
  const out = [];
  for (let r = 0; r < rows; r++) {
    const row = d.subarray(r * n, (r + 1) * n);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const idx = [...row.keys()].sort((a, b) => row[b]! - row[a]!).slice(0, k);
    out.push(idx.map((i) => ({ index: i, logit: row[i]!, probability: Math.exp(row[i]! - max) / sum, label: labels?.[i] })));
  }
  return out;
}

registerModelCommands(program);
registerBenchCommand(program);
registerWorkflowCommands(program);
registerGradcamCommand(program);
registerActivationsCommand(program);
registerExploreCommand(program);
registerAppCommand(program);

// Output piped into `head` and closed early: stop quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

program.parseAsync().catch((e: unknown) => {
  // --debug is read from argv too: a usage error can stop parsing before options are set.
  const debug = Boolean(process.env.LIGHTCONV_DEBUG) || program.opts().debug === true || process.argv.slice(2).includes('--debug');
  if (e instanceof CommanderError) {
    // Commander has printed its one line (or the help/version asked for).
    process.exitCode = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return;
  }
  if (e instanceof LightconvError) {
    console.error(`lightconv: ${e.name}: ${oneLine(e.message)}`);
    process.exitCode = EXIT.badInput;
  } else {
    // Not a typed error: still one line, not a stack trace (--debug or LIGHTCONV_DEBUG=1 shows it).
    const err = e as NodeJS.ErrnoException;
    console.error(`lightconv: internal error: ${err?.code ? `${err.code}: ` : ''}${oneLine(err?.message ?? String(e))}${debug ? '' : ' (--debug shows the stack trace)'}`);
    process.exitCode = EXIT.internal;
  }
  if (debug && e instanceof Error && e.stack) console.error(e.stack);
});
