/**
 * Writes tests/fixtures/explain/ihc_trained.onnx: eca_mobilenet_v3_small trained from scratch for
 * a few epochs on datasets/ihc_patches at 32×32 by the same workflow as `lightconv train`, so the
 * file carries the class names and the preprocessing in its metadata (what the explorer test
 * needs: a model as a user's training run leaves it). Seeded; one thread.
 *
 *   npx tsx scripts/make_explorer_fixture.ts [--epochs N]
 */
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { trainRun } from '../src/workflow/train_run.js';

const ROOT = resolve(import.meta.dirname, '..');
const i = process.argv.indexOf('--epochs');
const epochs = i >= 0 ? Number(process.argv[i + 1]) : 4;
const out = await mkdtemp(join(tmpdir(), 'lightconv-explorer-fixture-'));
try {
  await trainRun({
    data: join(ROOT, 'datasets/ihc_patches'),
    arch: 'eca_mobilenet_v3_small',
    inputSize: 32,
    epochs,
    batch: 32,
    folds: 0,
    testFraction: 0.2,
    seed: 0,
    threads: 1,
    explain: false,
    bootstrap: 100,
    progress: false,
    out,
  });
  const dest = join(ROOT, 'tests/fixtures/explain/ihc_trained.onnx');
  await copyFile(join(out, 'best.onnx'), dest);
  console.log(`wrote ${dest} (${(await stat(dest)).size} bytes)`);
} finally {
  await rm(out, { recursive: true, force: true });
}
