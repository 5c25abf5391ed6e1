import { basename } from 'node:path';
import { expect } from 'vitest';
import { runCase } from '../../src/cli/conformance.js';

/**
 * Runs every case folder (ONNX's backend node-test layout, see findCases) and requires each to
 * pass within the runner's default tolerance (abs 1e-4 + rel 1e-3; ONNX's own runner uses rtol
 * 1e-3, atol 1e-7), except the expected failures (case name → reason), which must fail.
 * `sets`: how many test data sets each passing case must have run.
 */
export async function expectNodeCases(root: string, cases: readonly string[], expectedFailures: Readonly<Record<string, string>> = {}, opts: { sets?: number } = {}): Promise<void> {
  const failed: string[] = [];
  for (const dir of cases) {
    const r = await runCase(dir, root);
    const name = basename(dir);
    if (r.status !== 'pass') failed.push(name);
    if (name in expectedFailures) expect(r.status, name).toBe('fail');
    else expect(r.status, `${name}: ${r.detail}`).toBe('pass');
    if (opts.sets !== undefined && r.status === 'pass') expect(r.sets, name).toBe(opts.sets);
  }
  expect(failed.sort()).toEqual(Object.keys(expectedFailures).sort());
}
