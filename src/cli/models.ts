import { existsSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { ValueError } from '../core/errors.js';
import { assemble } from '../io/onnx/assemble.js';
import { exportOnnx } from '../io/onnx/export.js';
import { ARCHS, fromArch } from '../models/index.js';
import type { Classifier } from '../models/network.js';
import { formatSummary } from '../models/summary.js';
import { InputPathError, checkInputPath, intArg, outputFile } from './args.js';

function parseShape(v: string): number[] {
  const dims = v.split(/[x×,]/).map(Number);
  if (dims.length !== 4 || dims.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new InvalidArgumentError('expected NxCxHxW, e.g. 1x3x224x224');
  return dims;
}

function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Checks a model argument while the command line is parsed: an architecture name, or an ONNX file that exists. */
function modelSpec(v: string): string {
  if ((ARCHS as readonly string[]).includes(v)) return v;
  if (v.endsWith('.onnx') || /[\\/]/.test(v) || existsSync(v)) {
    checkInputPath(v, 'model');
    return v;
  }
  throw new InputPathError(`model '${v}' is neither an ONNX file nor an architecture (${ARCHS.join(', ')})`);
}

/** An architecture name (built with fresh weights) or an ONNX file (assembled with its weights). */
async function load(spec: string, o: { classes?: number; seed?: number }): Promise<Classifier> {
  if (spec.endsWith('.onnx') || existsSync(spec)) {
    const net = await assemble(spec);
    if (o.classes !== undefined && o.classes !== net.numClasses) net.replaceHead(o.classes, { seed: o.seed ?? 0 });
    return net;
  }
  if (!(ARCHS as readonly string[]).includes(spec)) throw new ValueError(`'${spec}' is neither an ONNX file nor an architecture (${ARCHS.join(', ')})`);
  const net = fromArch(spec, { ...(o.classes !== undefined ? { numClasses: o.classes } : {}), seed: o.seed ?? 0 });
  return net.eval();
}

/** Adds `summary` and `export` to the CLI. */
export function register(program: Command): void {
  program
    .command('summary')
    .description("per-layer output shapes, parameters and MACs of an architecture or an ONNX file (torchvision's GFLOPS are MACs)")
    .argument('<model>', `architecture (${ARCHS.join(', ')}) or ONNX file`, modelSpec)
    .option('--input <NxCxHxW>', 'input shape (default: the architecture’s resolution, batch 1)', parseShape)
    .option('--classes <n>', 'number of classes (replaces the head of an ONNX model)', parseCount)
    .option('--json', 'print JSON')
    .action(async (spec: string, o: { input?: number[]; classes?: number; json?: boolean }) => {
      const net = await load(spec, o);
      const s = net.summary({ ...(o.input ? { input: o.input } : {}), print: false });
      if (o.json) console.log(JSON.stringify({ model: spec, arch: net.info.arch, ...s }, null, 2));
      else for (const line of formatSummary(s)) console.log(line);
    });

  program
    .command('export')
    .description('write an architecture (fresh seeded weights) or an assembled ONNX model as ONNX opset 17')
    .argument('<model>', `architecture (${ARCHS.join(', ')}) or ONNX file`, modelSpec)
    .requiredOption('--out <file>', 'the ONNX file to write (its folder must exist)', outputFile('--out'))
    .option('--classes <n>', 'number of classes', parseCount)
    .option('--seed <n>', 'seed of the weight initialisation (0 to 2^32 − 1)', intArg(0, 2 ** 32 - 1), 0)
    .option('--input <NxCxHxW>', 'declared input shape (batch is exported as symbolic)', parseShape)
    .action(async (spec: string, o: { out: string; classes?: number; seed: number; input?: number[] }) => {
      const net = await load(spec, o);
      await exportOnnx(net, o.out, o.input ? { input: o.input } : {});
      const c = net.parameterCount();
      console.log(`${o.out}: ${net.info.arch}, ${c.total.toLocaleString('en-US')} parameters, ${net.numClasses} classes, opset 17`);
    });
}
