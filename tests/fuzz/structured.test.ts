import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { getLimits } from '../../src/core/limits.js';
import { type Generator, type Outcome, defaultRestrict, makeCase, runCase, scratchDir } from './generators.js';

/**
 * Structure-aware fuzzing at the default budgets: mutated models (dims, attributes, ranks, dtypes,
 * graph edits), images (PNG chunks, JPEG frames, DICOM elements) and checkpoints (header fields,
 * state shapes, data). Every case must end in success or a typed LightconvError — never an
 * untyped exception, a hang or a memory blow-up. Cases are functions of (generator, seed): a
 * failure prints both and the command that runs that case alone.
 */

/** A case that takes longer than this is treated as a hang (the slowest healthy ones take ~0.1 s). */
const CASE_LIMIT_MS = 10_000;
/** Growth of the resident set over the run's start that counts as a blow-up. */
const RSS_LIMIT = 2 ** 30;
const scratch = join(scratchDir(), `lightconv-fuzz-${process.pid}.ckpt`);
afterAll(() => rm(scratch, { force: true }));

async function fuzz(gen: Generator, numRuns: number, seed: number): Promise<Record<Outcome, number>> {
  const outcomes: Record<Outcome, number> = { ok: 0, 'typed-error': 0 };
  const only = defaultRestrict();
  const rss0 = process.memoryUsage().rss;
  await fc.assert(
    fc.asyncProperty(fc.nat(), async (caseSeed) => {
      const c = makeCase(gen, caseSeed, only);
      const where = `${gen}:${caseSeed} (${c.note}; rerun: npm run fuzz -- --replay ${gen}:${caseSeed} --default-only)`;
      const t0 = performance.now();
      let o: Outcome;
      try {
        // One checkpoint case in four is loaded from a file into a model and optimizer; the rest are decoded in memory.
        o = await runCase(c, gen === 'checkpoint' && caseSeed % 4 === 0 ? scratch : null);
      } catch (e) {
        throw new Error(`${where}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
      }
      const ms = performance.now() - t0;
      if (ms > CASE_LIMIT_MS) throw new Error(`${where}: took ${ms.toFixed(0)} ms (a hang?)`);
      const grown = process.memoryUsage().rss - rss0;
      if (grown > RSS_LIMIT) throw new Error(`${where}: resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
      outcomes[o]++;
    }),
    // No shrinking: a seed is not a structure, and the failing case is already named.
    { seed, numRuns, endOnFailure: true },
  );
  return outcomes;
}

describe('structure-aware fuzzing (default budgets)', () => {
  it('runs at the default budgets', () => {
    expect(getLimits().maxTensorBytes).toBe(2 * 1024 ** 3);
  });

  it('mutated models load and run, or give a typed error', async () => {
    const o = await fuzz('model', 4000, 20261203);
    // Both outcomes occur: mutations get past the decoder into shape rules and kernels.
    expect(o.ok).toBeGreaterThan(100);
    expect(o['typed-error']).toBeGreaterThan(100);
  }, 120_000);

  it('mutated PNG, JPEG and DICOM files decode, or give a typed error', async () => {
    const o = await fuzz('image', 4000, 20261204);
    expect(o.ok).toBeGreaterThan(100);
    expect(o['typed-error']).toBeGreaterThan(100);
  }, 120_000);

  it('mutated checkpoints load completely, or give a typed error and change nothing', async () => {
    const o = await fuzz('checkpoint', 4000, 20261205);
    expect(o.ok).toBeGreaterThan(10);
    expect(o['typed-error']).toBeGreaterThan(100);
  }, 120_000);
});
