import { readdir } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { noGrad } from '../core/autograd.js';
import { LightconvError } from '../core/errors.js';
import { AssembleError, assembleGraph } from '../io/onnx/assemble.js';
import { readOnnx } from '../io/onnx/model.js';
import { type CaseResult, DEFAULT_TOLERANCE, type Tolerance, byNumber, compare, readPbs, readTolerance } from './conformance.js';

/**
 * `conformance --native`: assemble the native model from the fixture's ONNX weights (see
 * assembleGraph), run every test set through it (eval mode, no tape) and compare with the reference
 * outputs exactly as the graph conformance does. A graph whose architecture the assembler does not
 * recognise is skipped, with the reason.
 */
export async function runNativeCase(dir: string, base: string, fallback: Tolerance = DEFAULT_TOLERANCE): Promise<CaseResult & { family?: string }> {
  const name = relative(base, dir) || basename(dir);
  const tolerance = await readTolerance(dir, fallback);
  const result: CaseResult & { family?: string } = { name, status: 'pass', sets: 0, maxAbs: 0, maxRel: 0, ms: 0, tolerance };
  const t0 = performance.now();
  let net;
  try {
    const g = await readOnnx(join(dir, 'model.onnx'));
    const a = assembleGraph(g, name);
    net = a.net;
    result.family = a.net.info.arch;
  } catch (e) {
    if (e instanceof AssembleError) return { ...result, status: 'skip', detail: `not assembled: ${e.message}` };
    return { ...result, status: 'fail', detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e), ms: performance.now() - t0 };
  }
  try {
    const sets = (await readdir(dir)).filter((d) => /^test_data_set_\d+$/.test(d)).sort(byNumber);
    for (const set of sets) {
      const files = await readdir(join(dir, set));
      const inputs = (await readPbs(join(dir, set), files, 'input')).map(([, t]) => t);
      const expected = (await readPbs(join(dir, set), files, 'output')).map(([, t]) => t);
      if (inputs.length !== 1 || expected.length !== 1) throw new LightconvError(`${set}: a native classifier takes one input and gives one output, found ${inputs.length} / ${expected.length}`);
      const y = noGrad(() => net.forward(inputs[0]!));
      const err = compare(y, expected[0]!, tolerance, `${set} output (native ${result.family})`);
      result.maxAbs = Math.max(result.maxAbs, err.abs);
      result.maxRel = Math.max(result.maxRel, err.rel);
      result.sets++;
    }
  } catch (e) {
    result.status = 'fail';
    result.detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  result.ms = performance.now() - t0;
  if (result.status === 'pass') result.detail = `native ${result.family}`;
  return result;
}
