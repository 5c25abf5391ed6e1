import { mkdir, mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { listImageFiles, listImageFolder } from '../../src/data/datasets.js';
import { encodePng } from '../../src/data/image.js';
import { ImageLoader } from '../../src/data/loader.js';
import { predictFiles } from '../../src/workflow/eval_run.js';
import { modelBytes, node } from '../onnx/build.js';

/**
 * Class 6: `predict` on a folder lists it with the datasets' walk (no symbolic links out of the
 * folder), and every dataset image is read at read time without following a link as its last
 * component, so a file swapped for a link after the listing is refused then.
 */

let dir = '';
let model = '';
/** A secret outside every data folder: its bytes must never be read. */
let secret = '';
const png = () => encodePng(new Uint8Array(8 * 8 * 3).fill(120), 8, 8);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc-data-links-'));
  // The smallest classifier: [N, 3, 8, 8] → global average pool → [N, 3].
  model = join(dir, 'm.onnx');
  await writeFile(model, modelBytes({ nodes: [node('GlobalAveragePool', ['x'], ['p']), node('Flatten', ['p'], ['y'])], inputs: [{ name: 'x', shape: ['N', 3, 8, 8] }], outputs: [{ name: 'y', shape: ['N', 3] }] }));
  secret = join(dir, 'secret.png');
  await writeFile(secret, png());
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(process.platform === 'win32')('no reads through symbolic links out of a data folder', () => {
  it('predict on a folder holding a link to a file outside it is refused, naming the link', async () => {
    const folder = join(dir, 'pred');
    await mkdir(join(folder, 'a'), { recursive: true });
    await writeFile(join(folder, 'a', 'ok.png'), png());
    await symlink(secret, join(folder, 'a', 'x.png'));
    const err = await predictFiles({ model, inputs: [folder], workers: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValueError);
    expect((err as Error).message).toMatch(/predict: '.*pred\/a\/x\.png' is a symbolic link leading out of the dataset's folder/);
    // A link within the folder is followed (read at its real path), as for datasets.
    await unlink(join(folder, 'a', 'x.png'));
    await symlink(join(folder, 'a', 'ok.png'), join(folder, 'a', 'x.png'));
    const r = await predictFiles({ model, inputs: [folder], workers: 0 });
    expect(r.rows.map((x) => x.file)).toEqual([join(folder, 'a', 'ok.png'), join(folder, 'a', 'x.png')]);
    expect(r.rows[0]!.probs).toEqual(r.rows[1]!.probs);
    const listed = await listImageFiles(folder, 'predict');
    expect(listed[1]).toEqual({ file: join(folder, 'a', 'x.png'), path: join(folder, 'a', 'ok.png') });
  });

  it('a dataset image swapped for a link after listing is refused when read (loader, in process and in a worker)', async () => {
    const root = join(dir, 'ds');
    for (const c of ['a', 'b']) {
      await mkdir(join(root, c), { recursive: true });
      await writeFile(join(root, c, '1.png'), png());
    }
    const list = await listImageFolder(root);
    expect(list.items.map((i) => i.file)).toEqual(['a/1.png', 'b/1.png']);
    // The swap: b/1.png now leads outside the root (to a readable, valid PNG).
    await unlink(join(root, 'b', '1.png'));
    await symlink(secret, join(root, 'b', '1.png'));
    const preprocess = { inputSize: 8, resize: 8, crop: 8, channels: 3 as const, mean: [0, 0, 0], std: [1, 1, 1] };
    for (const workers of [0, 1]) {
      const loader = new ImageLoader(list, { preprocess, batchSize: 2, shuffle: false, workers });
      try {
        const err = await (async () => {
          for await (const _ of loader.batches(0)) void _;
        })().catch((e: unknown) => e);
        expect(err, `workers ${workers}`).toBeInstanceOf(Error);
        expect((err as Error).message, `workers ${workers}`).toMatch(/ds\/b\/1\.png: is a symbolic link, which is not followed here/);
      } finally {
        await loader.close();
      }
    }
  });
});
