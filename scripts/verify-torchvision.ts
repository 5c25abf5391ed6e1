/**
 * Checks lightconv against onnxruntime-node and PyTorch on the torchvision exports written by
 * scripts/make_torchvision_models.py (conformance layout: <name>_opset<k>/model.onnx +
 * test_data_set_0/{input_0,output_0}.pb + meta.json). For each case: load it in lightconv (the
 * default cpu kernels) and in onnxruntime-node, run both on the same input, and print a table:
 * loads?, max abs difference vs ORT and vs PyTorch, pass/fail under the case's conformance
 * tolerance (|got − ref| ≤ abs + rel·|ref| elementwise, against PyTorch AND against ORT), and the
 * median of 3 timed runs of each at batch 1 on one thread (interleaved, after one untimed run each).
 *
 * Usage: npx tsx scripts/verify-torchvision.ts [dir=/tmp/tv-models] [--only a,b] [--runs 3] [--json file]
 * Models are done one at a time and released before the next (the machine is shared).
 */
import { readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type * as OrtNs from 'onnxruntime-node';
import { DEFAULT_TOLERANCE, findCases, readPbs, readTolerance, type Tolerance } from '../src/cli/conformance.js';
import { setThreads } from '../src/core/threads.js';
import { Tensor } from '../src/core/tensor.js';
import { loadOnnx } from '../src/io/onnx/model.js';

interface Row {
  model: string;
  opset: number;
  loads: boolean;
  error?: string;
  vsOrt: number;
  vsTorch: number;
  ortVsTorch: number;
  pass: boolean;
  /** First element outside the tolerance, when there is one. */
  worst?: string;
  lcMs: number;
  ortMs: number;
  tolerance: Tolerance;
}

/** Max abs difference and the first element outside abs + rel·|ref| (NaN anywhere counts as outside). */
function diff(got: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): { max: number; bad: number } {
  let max = 0;
  let bad = -1;
  if (got.length !== ref.length) return { max: Infinity, bad: 0 };
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    if (!(d <= tol.abs + tol.rel * Math.abs(ref[i]!))) {
      if (bad < 0) bad = i;
      if (Number.isNaN(d)) max = Infinity;
    }
    if (d > max) max = d;
  }
  return { max, bad };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/**
 * Medians of `runs` timed runs of each, interleaved (a, b, a, b, …) after one untimed run each, so
 * that load from other processes on a shared machine falls on both alike.
 */
async function timeBoth(runs: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  await a(); // untimed: packs weights, warms caches (and lets lightconv record its replay plan)
  await b();
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t0 = performance.now();
    await a();
    ta.push(performance.now() - t0);
    t0 = performance.now();
    await b();
    tb.push(performance.now() - t0);
  }
  return [median(ta), median(tb)];
}

async function verify(dir: string, ort: typeof OrtNs, runs: number): Promise<Row> {
  const m = basename(dir).match(/^(.*)_opset(\d+)$/);
  const row: Row = {
    model: m ? m[1]! : basename(dir),
    opset: m ? Number(m[2]) : 0,
    loads: false,
    vsOrt: NaN,
    vsTorch: NaN,
    ortVsTorch: NaN,
    pass: false,
    lcMs: NaN,
    ortMs: NaN,
    tolerance: await readTolerance(dir, DEFAULT_TOLERANCE),
  };
  const set = join(dir, 'test_data_set_0');
  const files = await readdir(set);
  const [[, x]] = (await readPbs(set, files, 'input')) as [[string, Tensor]];
  const [[, ref]] = (await readPbs(set, files, 'output')) as [[string, Tensor]];
  const refData = ref.f32();

  // onnxruntime-node first: its output is the second reference even if lightconv fails.
  const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const feedsOrt = { [session.inputNames[0]!]: new ort.Tensor('float32', x.f32(), [...x.shape]) };
  const ortOut = (await session.run(feedsOrt))[session.outputNames[0]!]!.data as Float32Array;
  row.ortVsTorch = diff(ortOut, refData, row.tolerance).max;

  let model;
  try {
    model = await loadOnnx(join(dir, 'model.onnx'));
    row.loads = true;
    const name = model.inputs[0]!.name;
    const out = (await model.run({ [name]: x }))[model.outputs[0]!.name]!;
    const got = out.f32();
    if (out.shape.join() !== ref.shape.join()) throw new Error(`output shape [${out.shape}] but PyTorch's is [${ref.shape}]`);
    const t = diff(got, refData, row.tolerance);
    const o = diff(got, ortOut, row.tolerance);
    row.vsTorch = t.max;
    row.vsOrt = o.max;
    row.pass = t.bad < 0 && o.bad < 0;
    if (t.bad >= 0) row.worst = `element ${t.bad}: ${got[t.bad]} vs PyTorch ${refData[t.bad]}`;
    else if (o.bad >= 0) row.worst = `element ${o.bad}: ${got[o.bad]} vs ORT ${ortOut[o.bad]}`;
    [row.lcMs, row.ortMs] = await timeBoth(runs, () => model!.run({ [name]: x }), () => session.run(feedsOrt));
  } catch (e) {
    row.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  } finally {
    model?.dispose();
    await session.release();
  }
  return row;
}

const fmt = (v: number) => (Number.isNaN(v) ? '—' : v === 0 ? '0' : v.toExponential(1));

async function main(argv: string[]) {
  let dir = '/tmp/tv-models';
  let only: string[] = [];
  let runs = 3;
  let jsonOut: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--only') only = argv[++i]!.split(',');
    else if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--json') jsonOut = argv[++i];
    else dir = a;
  }
  setThreads(1);
  const ort = await import('onnxruntime-node');
  const cases = (await findCases([dir])).filter((c) => !only.length || only.some((o) => basename(c).replace(/_opset\d+$/, '') === o));
  const rows: Row[] = [];
  console.log('| model | opset | loads | max abs vs ORT | max abs vs PyTorch | (ORT vs PyTorch) | pass | lightconv ms | ORT ms | ratio |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const c of cases) {
    const r = await verify(c, ort, runs);
    rows.push(r);
    const ratio = r.lcMs / r.ortMs;
    console.log(
      `| ${r.model} | ${r.opset} | ${r.loads ? 'yes' : 'no'} | ${fmt(r.vsOrt)} | ${fmt(r.vsTorch)} | ${fmt(r.ortVsTorch)} | ${r.pass ? 'pass' : 'FAIL'} | ` +
        `${r.lcMs.toFixed(0)} | ${r.ortMs.toFixed(0)} | ${Number.isNaN(ratio) ? '—' : ratio.toFixed(1) + '×'} |`,
    );
    if (r.error) console.log(`  ${r.model}_opset${r.opset}: ${r.error}`);
    else if (!r.pass) console.log(`  ${r.model}_opset${r.opset}: outside abs ${r.tolerance.abs} + rel ${r.tolerance.rel} at ${r.worst}`);
    if (typeof globalThis.gc === 'function') globalThis.gc();
  }
  const failed = rows.filter((r) => !r.pass).length;
  console.log(`${rows.length - failed}/${rows.length} pass`);
  if (jsonOut) await writeFile(jsonOut, JSON.stringify(rows, null, 1));
  process.exitCode = failed ? 1 : 0;
}

await main(process.argv.slice(2));
