import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { type ImageList, listImageFolder } from '../../src/data/datasets.js';
import { readImage } from '../../src/data/decode.js';
import { type Batch, ImageLoader, loadTensors } from '../../src/data/loader.js';
import { sampleSeed } from '../../src/data/sample.js';
import { type Preprocess, defaultAugment, preprocessImage } from '../../src/data/transforms.js';
import { imageFolder } from './fixtures.js';

const P: Preprocess = { inputSize: 8, resize: 10, crop: 8, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
/** One cached image: the 12 × 10 PNGs resized to a shorter side of 10 stay 12 × 10, 360 bytes. */
const IMAGE_BYTES = 12 * 10 * 3;

let root: string;
let list: ImageList;
const roots: string[] = [];

beforeAll(async () => {
  root = await imageFolder('loader', { a: 9, b: 5 });
  roots.push(root);
  list = await listImageFolder(root);
});
afterAll(async () => {
  await Promise.all(roots.map((d) => rm(d, { recursive: true, force: true })));
});

async function collect(l: ImageLoader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of l.batches(epoch)) out.push(b);
  return out;
}

describe('ImageLoader', () => {
  it('gives the same batches with 0, 1 and 2 workers (shuffled, augmented), deterministic per epoch', async () => {
    const runs: Batch[][][] = [];
    for (const workers of [0, 1, 2]) {
      const l = new ImageLoader(list, { preprocess: P, augment: defaultAugment(8), batchSize: 4, shuffle: true, seed: 11, workers });
      try {
        runs.push([await collect(l, 0), await collect(l, 1), await collect(l, 1)]);
      } finally {
        await l.close();
      }
    }
    const flat = (bs: Batch[]) => ({ x: bs.flatMap((b) => Array.from(b.images.f32())), y: bs.flatMap((b) => Array.from(b.labels)), i: bs.flatMap((b) => b.indices), shapes: bs.map((b) => b.images.shape) });
    const [w0, w1, w2] = runs.map((r) => r.map(flat));
    expect(w1).toEqual(w0);
    expect(w2).toEqual(w0);
    const [e0, e1, e1again] = w0!;
    // 14 images in batches of 4: 4, 4, 4, 2; every image once per epoch.
    expect(e0!.shapes).toEqual([[4, 3, 8, 8], [4, 3, 8, 8], [4, 3, 8, 8], [2, 3, 8, 8]]);
    expect([...e0!.i].sort((a, b) => a - b)).toEqual([...Array(14).keys()]);
    expect(e0!.y).toEqual(e0!.i.map((i) => list.items[i]!.label));
    expect(e1again).toEqual(e1);
    expect(e1!.i).not.toEqual(e0!.i);
    // Each sample is preprocessImage with the rng of (seed, epoch, item, occurrence).
    const k = e1!.i[5]!;
    const expected = preprocessImage(await readImage(list.items[k]!.path), P, defaultAugment(8), new Rng(sampleSeed(11, 1, k, 0)));
    expect(e1!.x.slice(5 * 192, 6 * 192)).toEqual(Array.from(expected));
  });

  it('without shuffle serves `indices` in order; dropLast leaves out the short batch', async () => {
    const l = new ImageLoader(list, { preprocess: P, batchSize: 3, indices: [7, 2, 12, 0], workers: 0, dropLast: true });
    expect(l.length).toBe(4);
    const bs = await collect(l, 3);
    expect(bs.map((b) => b.indices)).toEqual([[7, 2, 12]]);
    await l.close();
    expect(() => new ImageLoader(list, { preprocess: P, batchSize: 3, indices: [14] })).toThrow(/index 14 is outside the list of 14 images/);
    expect(() => new ImageLoader(list, { preprocess: P, batchSize: 0 })).toThrow(ValueError);
  });

  it('keeps the decoded-image cache within its budget, and serves a second epoch from it', async () => {
    for (const workers of [0, 2]) {
      const small = new ImageLoader(list, { preprocess: P, batchSize: 5, workers, cacheBytes: 3 * IMAGE_BYTES });
      await collect(small, 0);
      await collect(small, 1);
      const s = small.stats();
      expect(s.limit).toBeLessThanOrEqual(3 * IMAGE_BYTES);
      expect(s.bytes).toBeLessThanOrEqual(3 * IMAGE_BYTES);
      expect(s.entries).toBeLessThanOrEqual(3);
      expect(s.entries).toBeGreaterThan(0);
      // Two epochs of 14 lookups; with workers, up to three batches of the next epoch start early.
      expect(s.hits + s.misses).toBeGreaterThanOrEqual(28);
      expect(s.hits + s.misses).toBeLessThanOrEqual(workers ? 28 + 3 * 5 : 28);
      await small.close();

      const big = new ImageLoader(list, { preprocess: P, batchSize: 5, workers });
      await collect(big, 0);
      await collect(big, 1);
      expect(big.stats()).toMatchObject({ entries: 14, bytes: 14 * IMAGE_BYTES, misses: 14 });
      expect(big.stats().hits).toBeGreaterThanOrEqual(14);
      await big.close();
    }
  });

  it("starts the next epoch's first batches while the last ones of this epoch are consumed", async () => {
    const l = new ImageLoader(list, { preprocess: P, batchSize: 5, workers: 1, shuffle: true, seed: 3 });
    const first = await collect(l, 0);
    // Epoch 1's early batches are decoding now: their lookups show in the stats without asking.
    const deadline = Date.now() + 10_000;
    while (l.stats().hits + l.stats().misses <= 14 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(l.stats().hits + l.stats().misses).toBeGreaterThan(14);
    // And they are epoch 1's batches: the same as a fresh loader's epoch 1, in order.
    const again = await collect(l, 1);
    const fresh = new ImageLoader(list, { preprocess: P, batchSize: 5, workers: 1, shuffle: true, seed: 3 });
    const want = await collect(fresh, 1);
    expect(again).toEqual(want);
    expect(again).not.toEqual(first);
    await l.close();
    await fresh.close();
  });

  it('balanced sampling draws the classes about equally', async () => {
    const skew = await imageFolder('skew', { common: 30, rare: 4 }, 4, 4);
    roots.push(skew);
    const skewList = await listImageFolder(skew);
    const l = new ImageLoader(skewList, { preprocess: { ...P, resize: 4, crop: 4, inputSize: 4 }, batchSize: 17, balanced: true, seed: 2, workers: 0 });
    let rare = 0;
    let total = 0;
    for (let e = 0; e < 6; e++) {
      for (const b of l.epochOrder(e)) {
        total++;
        if (skewList.items[b]!.label === 1) rare++;
      }
    }
    // 204 draws at p = 0.5: sd 0.035; without balancing the rare share would be 4/34 = 0.12.
    expect(total).toBe(204);
    expect(Math.abs(rare / total - 0.5)).toBeLessThan(0.15);
    const bs = await collect(l, 0);
    expect(bs.reduce((n, b) => n + b.labels.length, 0)).toBe(34);
    await l.close();
  });

  it('reports a corrupt file as the typed error naming it, from a worker as on the calling thread', async () => {
    const bad = await imageFolder('corrupt', { a: 3, b: 3 });
    roots.push(bad);
    await writeFile(join(bad, 'b', 'img001.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0]));
    const badList = await listImageFolder(bad);
    for (const workers of [0, 2]) {
      const l = new ImageLoader(badList, { preprocess: P, batchSize: 2, workers });
      const err = await collect(l, 0).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ValueError);
      expect((err as Error).message).toMatch(/b\/img001\.png: decodeImage: corrupt PNG/);
      await l.close();
    }
  });

  it('close() ends the worker threads; the loader is unusable afterwards', async () => {
    const l = new ImageLoader(list, { preprocess: P, batchSize: 7, workers: 2 });
    await collect(l, 0);
    expect(l.stats().threads).toBe(2);
    await l.close();
    expect(l.stats().threads).toBe(0);
    await expect(collect(l, 1)).rejects.toThrow(/used after close/);
  });
});

describe('loadTensors', () => {
  it('decodes every item with the evaluation preprocessing into one tensor', async () => {
    const { images, labels } = await loadTensors(list, P, { workers: 1 });
    expect(images.shape).toEqual([14, 3, 8, 8]);
    expect(Array.from(labels)).toEqual(list.items.map((i) => i.label));
    const third = preprocessImage(await readImage(list.items[3]!.path), P);
    expect(Array.from(images.f32().subarray(3 * 192, 4 * 192))).toEqual(Array.from(third));
  });
});
