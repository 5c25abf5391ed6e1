/**
 * Does the streaming loader keep up with training? Epoch time of a small training loop
 * (MobileNetV3-Small, 2 classes, 64×64, SGD) fed three ways, interleaved so that drift in the
 * machine's speed hits all alike:
 *   tensors  — batches sliced from images decoded once up front (loadTensors): no decoding cost;
 *   workers  — ImageLoader: JPEG decode, resize and augmentation in worker threads, ahead;
 *   inline   — ImageLoader with workers: 0, decoding on the training thread (no overlap).
 * Medians over the repeats and the ratios to `tensors` are printed; 1.00 means decoding is free.
 *
 *   npx tsx bench/loader.ts [--images 192] [--batch 32] [--size 64] [--source 160] [--reps 5] [--workers N]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { Tensor } from '../src/core/tensor.js';
import { listImageFolder } from '../src/data/datasets.js';
import { ImageLoader, loadTensors } from '../src/data/loader.js';
import { type Preprocess, defaultAugment } from '../src/data/transforms.js';
import { models } from '../src/models/api.js';
import { crossEntropy } from '../src/train/losses.js';
import { SGD } from '../src/train/optim.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const nImages = Number(arg('images', '192'));
const batch = Number(arg('batch', '32'));
const size = Number(arg('size', '64'));
const source = Number(arg('source', '160'));
const reps = Number(arg('reps', '5'));
const workers = process.argv.includes('--workers') ? Number(arg('workers', '1')) : undefined;

// A two-class set of smooth, noisy JPEGs (JPEG decoding is the usual cost in medical sets).
const root = await mkdtemp(join(tmpdir(), 'lc-bench-loader-'));
for (const cls of ['neg', 'pos']) await mkdir(join(root, cls));
for (let i = 0; i < nImages; i++) {
  const cls = i % 2 ? 'pos' : 'neg';
  const data = Buffer.alloc(source * source * 4);
  for (let p = 0; p < source * source; p++) {
    const x = p % source;
    const y = Math.floor(p / source);
    data[4 * p] = (128 + 100 * Math.sin((x + i) / 9)) & 255;
    data[4 * p + 1] = (128 + 90 * Math.cos((y * (i % 2 ? 2 : 1)) / 7)) & 255;
    data[4 * p + 2] = (x * y + i * 31 + ((p * 2654435761) >>> 27)) & 255;
    data[4 * p + 3] = 255;
  }
  await writeFile(join(root, cls, `${i}.jpg`), encodeJpeg({ data, width: source, height: source }, 90).data);
}
const list = await listImageFolder(root);
const preprocess: Preprocess = { inputSize: size, resize: size, crop: size, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const augment = defaultAugment(size);

const net = models.mobilenetV3('small', { numClasses: 2 });
const opt = new SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
function step(x: Tensor, y: Int32Array): void {
  net.train();
  opt.zeroGrad();
  crossEntropy(net.forward(x), y).backward();
  opt.step();
}

const pre = await loadTensors(list, preprocess);
const per = 3 * size * size;
async function epochTensors(): Promise<number> {
  const t0 = performance.now();
  for (let s = 0; s < nImages; s += batch) {
    const n = Math.min(batch, nImages - s);
    step(new Tensor(pre.images.f32().slice(s * per, (s + n) * per), [n, 3, size, size]), pre.labels.slice(s, s + n));
  }
  return performance.now() - t0;
}
async function epochLoader(l: ImageLoader, epoch: number): Promise<number> {
  const t0 = performance.now();
  for await (const b of l.batches(epoch)) step(b.images, b.labels);
  return performance.now() - t0;
}

// The cache is off so that every epoch decodes every file, as with a set larger than the cache.
const withWorkers = new ImageLoader(list, { preprocess, augment, batchSize: batch, shuffle: true, seed: 1, cacheBytes: 0, ...(workers !== undefined ? { workers } : {}) });
const inline = new ImageLoader(list, { preprocess, augment, batchSize: batch, shuffle: true, seed: 1, cacheBytes: 0, workers: 0 });
// Warm-up: the kernels' first runs, and the worker threads' start.
await epochTensors();
await epochLoader(withWorkers, 0);
await epochLoader(inline, 0);

const times = { tensors: [] as number[], workers: [] as number[], inline: [] as number[] };
for (let r = 1; r <= reps; r++) {
  times.tensors.push(await epochTensors());
  times.workers.push(await epochLoader(withWorkers, r));
  times.inline.push(await epochLoader(inline, r));
}
const threads = withWorkers.stats().threads;
await withWorkers.close();
await inline.close();
await rm(root, { recursive: true, force: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(times.tensors);
console.log(`loader benchmark — MobileNetV3-Small, 2 classes, ${nImages} JPEGs of ${source}×${source} → ${size}×${size}, batch ${batch}, default augmentation, no cache`);
console.log(`${availableParallelism()} cores, ${threads} decode thread(s); median of ${reps} interleaved epochs`);
for (const [k, v] of Object.entries(times)) {
  const m = median(v);
  console.log(`${k.padEnd(8)} ${m.toFixed(0).padStart(7)} ms/epoch  ${((nImages * 1000) / m).toFixed(1).padStart(7)} images/s  ratio to tensors ${(m / base).toFixed(2)}`);
}
