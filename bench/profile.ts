/**
 * Per-op-type time of a whole ONNX model run (median over runs), to see where time goes.
 *   npx tsx bench/profile.ts MODEL.onnx [--batch N] [--threads N] [--runs N]
 */
import { parseArgs } from 'node:util';
import { Tensor } from '../src/core/tensor.js';
import { setThreads } from '../src/core/threads.js';
import { loadOnnx } from '../src/io/onnx/model.js';

const { values: args, positionals } = parseArgs({ allowPositionals: true, options: { batch: { type: 'string', default: '1' }, threads: { type: 'string', default: '1' }, runs: { type: 'string', default: '20' } } });
const model = await loadOnnx(positionals[0]!);
setThreads(Number(args.threads));
const shape = model.inputs[0]!.shape!.map((d, i) => (i === 0 ? Number(args.batch) : (d as number)));
const x = Tensor.randn(shape);
const runs = Number(args.runs);
const perKind = new Map<string, number[]>();
const totals: number[] = [];
for (let r = 0; r < runs + 3; r++) {
  const acc = new Map<string, number>();
  const t0 = performance.now();
  model.runSync(x, {
    onNodeTime(node, ms) {
      const key = node.opType + (node.opType === 'Conv' ? (node.int('group', 1) > 1 ? ' dw' : '') : '');
      acc.set(key, (acc.get(key) ?? 0) + ms);
    },
  });
  if (r < 3) continue;
  totals.push(performance.now() - t0);
  for (const [k, v] of acc) perKind.set(k, [...(perKind.get(k) ?? []), v]);
}
const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
console.log(`total ${med(totals).toFixed(2)} ms`);
for (const [k, v] of [...perKind].sort((a, b) => med(b[1]) - med(a[1]))) console.log(`${k.padEnd(24)} ${med(v).toFixed(2).padStart(8)} ms`);
