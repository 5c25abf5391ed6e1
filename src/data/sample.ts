import { LightconvError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { readImageSync } from './decode.js';
import type { RgbImage } from './image.js';
import { type Preprocess, type TransformSpec, baseImage, checkPreprocess, checkTransform, preprocessImage } from './transforms.js';

/**
 * One sample, start to finish: read, decode, resize (cached), augment, normalise. The loader
 * runs this in its worker threads and, without them, on the calling thread; the result depends
 * only on the file and the sample's seed, never on which thread or cache served it.
 */

/** A least-recently-used cache of images under a byte budget (an image larger than the budget is not kept). */
export class ImageCache {
  private readonly map = new Map<number, RgbImage>();
  bytes = 0;
  hits = 0;
  misses = 0;
  constructor(readonly limit: number) {}

  get(key: number): RgbImage | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-inserted: a Map iterates in insertion order, so the first key is the least recent.
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: number, img: RgbImage): void {
    const size = img.rgb.byteLength;
    if (size > this.limit) return;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.rgb.byteLength;
      this.map.delete(key);
    }
    while (this.bytes + size > this.limit) {
      const [k, v] = this.map.entries().next().value as [number, RgbImage];
      this.map.delete(k);
      this.bytes -= v.rgb.byteLength;
    }
    this.map.set(key, img);
    this.bytes += size;
  }

  get size(): number {
    return this.map.size;
  }
}

export interface CacheStats {
  /** Bytes of images held now, and the budget. */
  bytes: number;
  limit: number;
  entries: number;
  hits: number;
  misses: number;
}

/** A 32-bit seed for one sample from (seed, epoch, index, occurrence): murmur3's finaliser over the words. */
export function sampleSeed(...words: number[]): number {
  let h = 0x9747b28c;
  for (const w of words) {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  }
  h ^= words.length * 4;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface SampleDecoderInit {
  paths: string[];
  preprocess: Preprocess;
  augment: TransformSpec[];
  cacheBytes: number;
}

export class SampleDecoder {
  readonly cache: ImageCache;
  /** Floats per sample: C × S × S. */
  readonly sampleSize: number;
  private readonly window: { window?: [number, number] };

  constructor(
    private readonly init: SampleDecoderInit,
    private readonly fs: typeof import('node:fs'),
  ) {
    checkPreprocess(init.preprocess);
    init.augment.forEach((t, i) => checkTransform(t, `augment[${i}]`));
    this.cache = new ImageCache(init.cacheBytes);
    const p = init.preprocess;
    this.sampleSize = p.channels * p.inputSize * p.inputSize;
    this.window = p.window ? { window: p.window } : {};
  }

  /** The normalised CHW floats of item `index` with the augmentation drawn from `seed`. */
  decode(index: number, seed: number): Float32Array {
    const path = this.init.paths[index];
    if (path === undefined) throw new LightconvError(`decode: no item ${index} (the list has ${this.init.paths.length})`);
    let base = this.cache.get(index);
    if (!base) {
      // Not following a final symbolic link (DATA_READ of datasets.ts): listing resolved links
      // within the root to real paths, so a link here was swapped in after the listing.
      base = baseImage(readImageSync(this.fs, path, this.window, { noFollow: true }), this.init.preprocess);
      this.cache.set(index, base);
    }
    const aug = this.init.augment.length ? this.init.augment : undefined;
    return preprocessImage(base, this.init.preprocess, aug, new Rng(seed));
  }

  stats(): CacheStats {
    const c = this.cache;
    return { bytes: c.bytes, limit: c.limit, entries: c.size, hits: c.hits, misses: c.misses };
  }
}
