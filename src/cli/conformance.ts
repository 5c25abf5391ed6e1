import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { LightconvError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { loadOnnx } from '../io/onnx/model.js';
import { decodeTensorProto } from '../io/onnx/tensor_proto.js';
import { EXCLUSIONS } from './conformance_exclusions.js';

export interface Tolerance {
  abs: number;
  rel: number;
}

export interface CaseResult {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  /** Why it failed or was skipped. */
  detail?: string;
  sets: number;
  maxAbs: number;
  maxRel: number;
  ms: number;
  tolerance: Tolerance;
}

export const DEFAULT_TOLERANCE: Tolerance = { abs: 1e-4, rel: 1e-3 };

/** Every folder under `roots` (or a root itself) that holds a model.onnx and test_data_set_N folders. */
export async function findCases(roots: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && e.name === 'model.onnx') && entries.some((e) => e.isDirectory() && /^test_data_set_\d+$/.test(e.name))) {
      found.push(dir);
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  for (const r of roots) {
    const s = await stat(r).catch(() => undefined);
    if (!s?.isDirectory()) throw new LightconvError(`conformance: '${r}' is not a folder`);
    await walk(r);
  }
  return found;
}

/** Runs one case folder: every test data set, compared against its outputs. */
export async function runCase(dir: string, base: string, fallback: Tolerance = DEFAULT_TOLERANCE): Promise<CaseResult> {
  const name = relative(base, dir) || basename(dir);
  const exclusion = EXCLUSIONS[basename(dir)];
  const tolerance = await readTolerance(dir, fallback);
  const result: CaseResult = { name, status: 'pass', sets: 0, maxAbs: 0, maxRel: 0, ms: 0, tolerance };
  if (exclusion?.check === 'skip') return { ...result, status: 'skip', detail: exclusion.reason };
  const t0 = performance.now();
  try {
    const model = await loadOnnx(join(dir, 'model.onnx'));
    const sets = (await readdir(dir)).filter((d) => /^test_data_set_\d+$/.test(d)).sort(byNumber);
    for (const set of sets) {
      const files = await readdir(join(dir, set));
      const inputs = await readPbs(join(dir, set), files, 'input');
      const expected = await readPbs(join(dir, set), files, 'output');
      const feeds: Record<string, Tensor> = Object.create(null); // input names may be '__proto__'
      // input_K feeds the K-th graph input (ONNX's test convention); a matching TensorProto name wins.
      inputs.forEach(([pbName, t], k) => {
        const byName = model.inputs.find((i) => i.name === pbName);
        const info = byName ?? model.inputs[k];
        if (!info) throw new LightconvError(`${set}: input_${k}.pb has no matching graph input`);
        feeds[info.name] = t;
      });
      const outs = await model.run(feeds);
      expected.forEach(([, ref], k) => {
        const info = model.outputs[k];
        const got = info ? outs[info.name] : undefined;
        if (!got) throw new LightconvError(`${set}: the model has no output #${k}`);
        const what = `${set} output '${info!.name}'`;
        const err =
          exclusion?.check === 'random-dropout'
            ? checkDropout(got, ref, inputs.map(([, t]) => t), k, what)
            : compare(got, ref, tolerance, what);
        result.maxAbs = Math.max(result.maxAbs, err.abs);
        result.maxRel = Math.max(result.maxRel, err.rel);
      });
      result.sets++;
    }
  } catch (e) {
    result.status = 'fail';
    result.detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    // A value mismatch carries the whole output's errors: report them, not the maxima so far.
    if (e instanceof Mismatch && e.errors) {
      result.maxAbs = Math.max(result.maxAbs, e.errors.abs);
      result.maxRel = Math.max(result.maxRel, e.errors.rel);
    }
  }
  result.ms = performance.now() - t0;
  if (exclusion) result.detail = `relaxed check: ${exclusion.reason}`;
  return result;
}

/** An output that differs from its reference; `errors` holds the max abs/rel errors where values were compared. */
class Mismatch extends LightconvError {
  constructor(
    message: string,
    readonly errors?: { abs: number; rel: number },
  ) {
    super(message);
  }
}

/** Max abs and rel error; throws Mismatch naming the first element outside abs + rel·|ref| (and carrying both maxima over all elements). */
export function compare(got: Tensor, ref: Tensor, tol: Tolerance, what: string): { abs: number; rel: number } {
  if (got.shape.join() !== ref.shape.join()) throw new Mismatch(`${what}: shape [${got.shape}] but expected [${ref.shape}]`);
  const exact = !(ref.dtype === 'float32' || ref.dtype === 'float64');
  if (got.dtype !== ref.dtype) throw new Mismatch(`${what}: dtype ${got.dtype} but expected ${ref.dtype}`);
  const a = got.dataSync();
  const b = ref.dataSync();
  let maxAbs = 0;
  let maxRel = 0;
  let firstBad = -1;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(y) || Number.isNaN(x)) {
      if (Number.isNaN(y) && Number.isNaN(x)) continue;
      if (firstBad < 0) firstBad = i;
      maxAbs = Infinity;
      continue;
    }
    if (x === y) continue; // also equal infinities
    const d = Math.abs(x - y);
    maxAbs = Math.max(maxAbs, d);
    if (y !== 0) maxRel = Math.max(maxRel, d / Math.abs(y));
    const ok = exact ? false : d <= tol.abs + tol.rel * Math.abs(y);
    if (!ok && firstBad < 0) firstBad = i;
  }
  if (firstBad >= 0) {
    throw new Mismatch(`${what}: element ${firstBad} is ${a[firstBad]}, expected ${b[firstBad]} (max abs error ${maxAbs.toExponential(2)})`, { abs: maxAbs, rel: maxRel });
  }
  return { abs: maxAbs, rel: maxRel };
}

/** Training-mode dropout: each output is 0 or x/(1 − ratio); a mask output marks the kept elements. */
function checkDropout(got: Tensor, ref: Tensor, inputs: readonly Tensor[], k: number, what: string): { abs: number; rel: number } {
  if (got.shape.join() !== ref.shape.join()) throw new Mismatch(`${what}: shape [${got.shape}] but expected [${ref.shape}]`);
  const x = inputs[0]!.dataSync();
  const ratio = inputs[1] ? inputs[1].dataSync()[0]! : 0.5;
  const g = got.dataSync();
  for (let i = 0; i < g.length; i++) {
    if (k === 0) {
      const kept = x[i]! / (1 - ratio);
      if (g[i] !== 0 && Math.abs(g[i]! - kept) > 1e-6 * Math.max(1, Math.abs(kept))) throw new Mismatch(`${what}: element ${i} is ${g[i]}, neither 0 nor ${kept}`);
    } else if (g[i] !== 0 && g[i] !== 1) {
      throw new Mismatch(`${what}: mask element ${i} is ${g[i]}`);
    }
  }
  return { abs: 0, rel: 0 };
}

/** The `input_K.pb` or `output_K.pb` tensors of a test data set, in K order, with their TensorProto names. */
export async function readPbs(dir: string, files: readonly string[], kind: 'input' | 'output'): Promise<[string, Tensor][]> {
  const re = new RegExp(`^${kind}_(\\d+)\\.pb$`);
  const picked = files.filter((f) => re.test(f)).sort(byNumber);
  const out: [string, Tensor][] = [];
  for (const f of picked) {
    const { name, tensor } = decodeTensorProto(new Uint8Array(await readFile(join(dir, f))), join(dir, f));
    out.push([name, tensor]);
  }
  return out;
}

/** A fixture's `meta.json` recommended_tolerance, or `fallback`. */
export async function readTolerance(dir: string, fallback: Tolerance): Promise<Tolerance> {
  const text = await readFile(join(dir, 'meta.json'), 'utf8').catch(() => undefined);
  if (!text) return fallback;
  try {
    const t = JSON.parse(text)?.recommended_tolerance;
    if (t && typeof t.abs === 'number' && typeof t.rel === 'number') return { abs: t.abs, rel: t.rel };
  } catch {
    throw new LightconvError(`${join(dir, 'meta.json')}: not valid JSON`);
  }
  return fallback;
}

/** Orders names like test_data_set_2 / input_10.pb by their number. */
export function byNumber(a: string, b: string): number {
  return Number(a.match(/\d+/)?.[0] ?? 0) - Number(b.match(/\d+/)?.[0] ?? 0);
}
