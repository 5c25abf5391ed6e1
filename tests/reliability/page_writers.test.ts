import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeApp } from '../../src/app/write.js';
import { writeExplorer } from '../../src/explain/explorer/write.js';

/**
 * Class 4: the page writers (lightconv app, lightconv explore --out) go through src/io/atomic.ts.
 * What tells an atomic save from a plain writeFile from outside: a plain write truncates the old
 * file in place (same inode, briefly empty or half-written for a reader), an atomic one writes a
 * new file and renames it over the old (a new inode; a reader sees old or new, whole).
 */

const ROOT = resolve(import.meta.dirname, '../..');
const TRAINED = join(ROOT, 'tests/fixtures/explain/ihc_trained.onnx');
const PATCHES = join(ROOT, 'datasets/ihc_patches/dab_positive');

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc-page-writers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function inodes(out: string, files: string[]): Promise<Map<string, number>> {
  return new Map(await Promise.all(files.map(async (f) => [f, (await stat(join(out, f))).ino] as [string, number])));
}

async function checkReplacedWhole(write: (out: string) => Promise<{ files: string[] }>, out: string): Promise<void> {
  const first = await write(out);
  const before = await inodes(out, first.files);
  const again = await write(out);
  expect(again.files.sort()).toEqual(first.files.sort());
  const after = await inodes(out, again.files);
  for (const f of again.files) expect(after.get(f), `${f} was rewritten in place`).not.toBe(before.get(f));
  expect((await readdir(out)).filter((n) => n.includes('.tmp-'))).toEqual([]);
}

describe.skipIf(process.platform === 'win32')('page writers replace files whole (temporary file, fsync, rename)', () => {
  it('writeApp', async () => {
    await checkReplacedWhole((out) => writeApp(TRAINED, out), join(dir, 'app'));
  }, 60_000);

  it('writeExplorer', async () => {
    const image = join(PATCHES, readdirSync(PATCHES).sort()[0]!);
    await checkReplacedWhole((out) => writeExplorer(TRAINED, image, out), join(dir, 'explorer'));
  }, 60_000);
});
