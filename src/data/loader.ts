import { LightconvError, ResourceLimitError, ShapeError, ValueError } from '../core/errors.js';
import { checkedSize } from '../core/limits.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import type { ImageList } from './datasets.js';
import type { DecodeReply, DecodeRequest } from './decode_worker.js';
import { type CacheStats, SampleDecoder, type SampleDecoderInit, sampleSeed } from './sample.js';
import { type Preprocess, type TransformSpec, checkPreprocess, checkTransform } from './transforms.js';

/**
 * Batches streamed from a file list: decoding, resizing and augmentation run in worker threads
 * a few batches ahead of the consumer, so they overlap with training on the calling thread.
 * Each epoch's order and each sample's augmentation follow from (seed, epoch, item, occurrence)
 * alone, so the batches are the same with 0, 1 or 8 workers and with any cache size.
 */

/** Options of `ImageLoader`: `preprocess` and `batchSize` are required. */
export interface ImageLoaderOptions {
  preprocess: Preprocess;
  /** Training augmentation, applied after the shorter-side resize; none for evaluation. */
  augment?: TransformSpec[];
  batchSize: number;
  /** A new order every epoch (default false: the order of `indices`). */
  shuffle?: boolean;
  seed?: number;
  /** Decode threads; 0 decodes on the calling thread. Default: half the cores, 1 to 4 (1 on a 2-core machine). */
  workers?: number;
  /** Budget of the decoded, resized images kept between epochs (LRU, split between the workers). Default 256 MiB. */
  cacheBytes?: number;
  /** The items of the list this loader serves (default all), e.g. one fold. */
  indices?: number[];
  /**
   * Class-balanced sampling: each epoch draws `length` items with replacement, each class
   * equally likely (torch's WeightedRandomSampler with weights 1 / class count).
   */
  balanced?: boolean;
  /** Batches decoded ahead of the one being consumed (default 2). */
  prefetch?: number;
  /** Leave out a last, smaller batch (default false), e.g. for BatchNorm in training mode. */
  dropLast?: boolean;
}

/** One batch of an `ImageLoader`. */
export interface Batch {
  /** [B, C, S, S] float32, normalised. */
  images: Tensor;
  labels: Int32Array;
  /** The items' indices into the list. */
  indices: number[];
}

/** Cache use of an `ImageLoader` (decoded images kept between epochs) and its threads. */
export interface LoaderStats extends CacheStats {
  /** Decode threads running (0 when decoding on the calling thread or after close()). */
  threads: number;
}

const MiB = 2 ** 20;

/** Pairs (item index, seed), flattened, for one decode request. */
type Jobs = Uint32Array;

interface Backend {
  /** Whether decoding runs beside the caller, so that prefetching overlaps. */
  readonly parallel: boolean;
  decode(jobs: Jobs): Promise<Float32Array>;
  stats(): LoaderStats;
  close(): Promise<void>;
}

/** Decoding on the calling thread (browsers, workers: 0, or when threads cannot start). */
class InlineBackend implements Backend {
  readonly parallel = false;
  constructor(private readonly decoder: SampleDecoder) {}
  async decode(jobs: Jobs): Promise<Float32Array> {
    const per = this.decoder.sampleSize;
    const out = new Float32Array((jobs.length / 2) * per);
    for (let k = 0; k < jobs.length / 2; k++) out.set(this.decoder.decode(jobs[2 * k]!, jobs[2 * k + 1]!), k * per);
    return out;
  }
  stats(): LoaderStats {
    return { ...this.decoder.stats(), threads: 0 };
  }
  async close(): Promise<void> {}
}

type WorkerT = import('node:worker_threads').Worker;

/** The error class a worker reported, rebuilt on this side with its message (which names the file). */
function rebuild(name: string, message: string): LightconvError {
  if (name === 'ResourceLimitError') return new ResourceLimitError(message);
  if (name === 'ValueError') return new ValueError(message);
  if (name === 'ShapeError') return new ShapeError(message);
  return new LightconvError(name === 'LightconvError' ? message : `decode worker: ${name}: ${message}`);
}

/**
 * How to start the worker script: decode_worker.js beside this module when built; from sources
 * (vitest, tsx) the .ts through tsx's loader, registered inside the thread by a bootstrap,
 * since Node 20 ignores `--import` in a Worker's execArgv.
 */
async function workerEntry(): Promise<{ script: URL | string; eval?: boolean } | null> {
  const { existsSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  // In the CommonJS build tsup's shim supplies import.meta.url (tsup.config.ts: shims).
  const base: string | undefined = import.meta.url;
  if (!base) return null;
  const js = new URL('./decode_worker.js', base);
  if (existsSync(fileURLToPath(js))) return { script: js };
  const ts = new URL('./decode_worker.ts', base);
  if (!existsSync(fileURLToPath(ts))) return null;
  return { script: `import('tsx/esm/api').then((api) => api.register()).then(() => import(${JSON.stringify(ts.href)}))`, eval: true };
}

class WorkerBackend implements Backend {
  readonly parallel = true;
  private nextId = 1;
  private readonly pending = new Map<number, { worker: number; resolve: (d: Float32Array) => void; reject: (e: Error) => void }>();
  private readonly last: CacheStats[];
  private live: number;
  private broken: Error | null = null;
  private closing = false;

  private constructor(
    private readonly workers: WorkerT[],
    private readonly sampleSize: number,
    limit: number,
  ) {
    this.live = workers.length;
    this.last = workers.map(() => ({ bytes: 0, limit, entries: 0, hits: 0, misses: 0 }));
    workers.forEach((w, k) => {
      w.on('message', (m: DecodeReply) => this.onMessage(k, m));
      w.on('error', (e) => this.fail(k, new LightconvError(`decode worker ${k} failed: ${e.message}`)));
      w.on('exit', (code) => {
        this.live--;
        this.fail(k, new LightconvError(`decode worker ${k} exited (code ${code})`));
      });
      w.unref();
    });
  }

  /** Starts `n` threads; null when they cannot start (no script, no tsx, a browser). */
  static async start(n: number, init: SampleDecoderInit, sampleSize: number): Promise<WorkerBackend | null> {
    const entry = await workerEntry();
    if (!entry) return null;
    const { Worker } = await import('node:worker_threads');
    const workers: WorkerT[] = [];
    try {
      for (let k = 0; k < n; k++) workers.push(new Worker(entry.script, { workerData: init, ...(entry.eval ? { eval: true } : {}) }));
      // Each thread says 'ready' once its modules have loaded (or fails to start).
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve, reject) => {
              const onMessage = (m: DecodeReply) => (done(), m.type === 'ready' ? resolve() : reject(new Error(`unexpected first message ${m.type}`)));
              const onError = (e: Error) => (done(), reject(e));
              const onExit = (code: number) => (done(), reject(new Error(`exited with code ${code} while starting`)));
              const done = () => {
                w.off('message', onMessage);
                w.off('error', onError);
                w.off('exit', onExit);
              };
              w.on('message', onMessage);
              w.on('error', onError);
              w.on('exit', onExit);
            }),
        ),
      );
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      process.emitWarning(`ImageLoader: decode workers did not start (${(e as Error).message}); decoding on the calling thread`);
      return null;
    }
    return new WorkerBackend(workers, sampleSize, Math.floor(init.cacheBytes));
  }

  private onMessage(k: number, m: DecodeReply): void {
    if (m.type === 'ready') return;
    if (m.stats) this.last[k] = m.stats;
    const p = this.pending.get(m.id);
    if (!p) return; // a request whose batch was abandoned
    this.pending.delete(m.id);
    this.refCount();
    if (m.type === 'done') p.resolve(m.data);
    else p.reject(rebuild(m.name, m.message));
  }

  private fail(k: number, e: Error): void {
    this.broken ??= e;
    for (const [id, p] of this.pending) {
      if (p.worker !== k) continue;
      this.pending.delete(id);
      p.reject(e);
    }
    this.refCount();
  }

  /** Threads keep the process alive only while requests are out, so a loader never left unclosed cannot hang an exit. */
  private refCount(): void {
    if (this.closing) return;
    const busy = this.pending.size > 0;
    for (const w of this.workers) busy ? w.ref() : w.unref();
  }

  /** Jobs split by item (index mod threads), so each image is always cached by the same thread. */
  async decode(jobs: Jobs): Promise<Float32Array> {
    if (this.broken) throw this.broken;
    const W = this.workers.length;
    const n = jobs.length / 2;
    const parts: number[][] = this.workers.map(() => []);
    for (let k = 0; k < n; k++) parts[jobs[2 * k]! % W]!.push(k);
    const out = new Float32Array(n * this.sampleSize);
    await Promise.all(
      parts.map(async (ks, w) => {
        if (!ks.length) return;
        const req = new Uint32Array(ks.length * 2);
        ks.forEach((k, j) => {
          req[2 * j] = jobs[2 * k]!;
          req[2 * j + 1] = jobs[2 * k + 1]!;
        });
        const id = this.nextId++;
        const data = await new Promise<Float32Array>((resolve, reject) => {
          this.pending.set(id, { worker: w, resolve, reject });
          this.refCount();
          this.workers[w]!.postMessage({ id, jobs: req } satisfies DecodeRequest, [req.buffer]);
        });
        ks.forEach((k, j) => out.set(data.subarray(j * this.sampleSize, (j + 1) * this.sampleSize), k * this.sampleSize));
      }),
    );
    return out;
  }

  stats(): LoaderStats {
    const s = this.last;
    const sum = (f: (c: CacheStats) => number) => s.reduce((a, c) => a + f(c), 0);
    return { bytes: sum((c) => c.bytes), limit: sum((c) => c.limit), entries: sum((c) => c.entries), hits: sum((c) => c.hits), misses: sum((c) => c.misses), threads: this.live };
  }

  async close(): Promise<void> {
    this.broken ??= new LightconvError('ImageLoader: closed');
    this.closing = true;
    // Held until they have exited, or the process could end with this await unfinished.
    await Promise.all(this.workers.map((w) => (w.ref(), w.terminate())));
  }
}

function defaultWorkers(cores: number): number {
  return Math.max(1, Math.min(4, Math.floor(cores / 2)));
}

const isNode = () => typeof process !== 'undefined' && !!process.versions?.node;

/** One epoch's order of items, the seed of each draw, and its number of batches. */
interface EpochPlan {
  order: number[];
  seeds: number[];
  batches: number;
}

/**
 * Streams batches of a file list — a `BatchSource` for `fit`. Decoding, resizing and augmentation
 * run in worker threads a few batches ahead; the order and augmentation follow from (seed, epoch,
 * item) alone, so the batches are the same with any number of workers. Throws a ValueError for bad
 * options or labels outside the classes; call `close()` to end its threads.
 *
 * @example
 * ```ts
 * import { ImageLoader, defaultAugment, fit, listImageFolder, mobileNetV3, Adam } from 'lightconv';
 *
 * const list = await listImageFolder('data/train');
 * const preprocess = { inputSize: 224, resize: 256, crop: 224, channels: 3 as const, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
 * const loader = new ImageLoader(list, { preprocess, augment: defaultAugment(224), batchSize: 32, shuffle: true, workers: 2 });
 * const net = mobileNetV3('small', { numClasses: list.classes.length });
 * await fit(net, loader, { epochs: 10, optimizer: new Adam(net.parameters(), { lr: 1e-3 }) });
 * await loader.close();
 * ```
 */
export class ImageLoader {
  readonly batchSize: number;
  private readonly items: number[];
  private readonly labelsOf: Int32Array;
  private readonly opts: ImageLoaderOptions;
  private readonly sampleSize: number;
  private backendP: Promise<Backend> | null = null;
  /** The backend once started (kept after close() for stats). */
  private started: Backend | null = null;
  private closed = false;

  constructor(
    readonly list: ImageList,
    opts: ImageLoaderOptions,
  ) {
    checkPreprocess(opts.preprocess, 'ImageLoader: preprocess');
    (opts.augment ?? []).forEach((t, i) => checkTransform(t, `ImageLoader: augment[${i}]`));
    if (!Number.isSafeInteger(opts.batchSize) || opts.batchSize < 1) throw new ValueError(`ImageLoader: batchSize must be a positive integer, got ${opts.batchSize}`);
    if (opts.workers !== undefined && !(Number.isSafeInteger(opts.workers) && opts.workers >= 0)) throw new ValueError(`ImageLoader: workers must be a non-negative integer, got ${opts.workers}`);
    if (opts.cacheBytes !== undefined && !(opts.cacheBytes >= 0)) throw new ValueError(`ImageLoader: cacheBytes must be ≥ 0, got ${opts.cacheBytes}`);
    if (opts.prefetch !== undefined && !(Number.isSafeInteger(opts.prefetch) && opts.prefetch >= 0)) throw new ValueError(`ImageLoader: prefetch must be a non-negative integer, got ${opts.prefetch}`);
    const n = list.items.length;
    this.items = opts.indices ? [...opts.indices] : [...list.items.keys()];
    for (const i of this.items) if (!Number.isInteger(i) || i < 0 || i >= n) throw new ValueError(`ImageLoader: index ${i} is outside the list of ${n} images`);
    this.labelsOf = Int32Array.from(list.items, (it, i) => {
      if (!(Number.isInteger(it.label) && it.label >= 0 && it.label < list.classes.length)) throw new ValueError(`ImageLoader: ${it.file} has label ${it.label}, outside the ${list.classes.length} classes`);
      return it.label;
    });
    this.opts = opts;
    this.batchSize = opts.batchSize;
    const p = opts.preprocess;
    this.sampleSize = checkedSize([p.channels, p.inputSize, p.inputSize], 'ImageLoader sample');
    checkedSize([opts.batchSize, p.channels, p.inputSize, p.inputSize], 'ImageLoader batch');
  }

  /** Images per epoch. */
  get length(): number {
    return this.items.length;
  }

  /** The list indices of epoch `epoch`, in the order its batches serve them. */
  epochOrder(epoch: number): number[] {
    const seed = this.opts.seed ?? 0;
    const n = this.items.length;
    if (this.opts.balanced) {
      // Weights 1 / (class count): every class equally likely, items within a class uniform.
      const counts = new Map<number, number>();
      for (const i of this.items) counts.set(this.labelsOf[i]!, (counts.get(this.labelsOf[i]!) ?? 0) + 1);
      const cum = new Float64Array(n);
      let acc = 0;
      this.items.forEach((i, k) => (cum[k] = acc += 1 / counts.get(this.labelsOf[i]!)!));
      const rng = new Rng(sampleSeed(seed, epoch, 0xba1a));
      const out: number[] = [];
      for (let k = 0; k < n; k++) {
        const u = rng.next() * acc;
        let lo = 0;
        let hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (cum[mid]! > u) hi = mid;
          else lo = mid + 1;
        }
        out.push(this.items[lo]!);
      }
      return out;
    }
    if (this.opts.shuffle) return new Rng(sampleSeed(seed, epoch, 0x5f1e)).shuffle([...this.items]);
    return [...this.items];
  }

  private backend(): Promise<Backend> {
    if (this.closed) return Promise.reject(new LightconvError('ImageLoader: used after close()'));
    this.backendP ??= (async () => {
      const o = this.opts;
      const cores = isNode() ? (await import('node:os')).availableParallelism() : 1;
      const W = o.workers ?? defaultWorkers(cores);
      const total = o.cacheBytes ?? 256 * MiB;
      const init: SampleDecoderInit = { paths: this.list.items.map((it) => it.path), preprocess: o.preprocess, augment: o.augment ?? [], cacheBytes: W > 0 ? Math.floor(total / W) : total };
      if (W > 0 && isNode()) {
        const b = await WorkerBackend.start(W, init, this.sampleSize);
        if (b) return (this.started = b);
        init.cacheBytes = total;
      }
      if (!isNode()) throw new LightconvError('ImageLoader: reading image files needs Node.js');
      return (this.started = new InlineBackend(new SampleDecoder(init, await import('node:fs'))));
    })();
    return this.backendP;
  }

  /**
   * Batches started for the epoch the caller is expected to ask for next: while the last batches
   * of an epoch train (and validation runs), the worker decodes the next epoch's first ones, so
   * an epoch does not begin by waiting for a batch to decode.
   */
  private early: { epoch: number; plan: EpochPlan; pending: Promise<Batch>[] } | null = null;
  /** The epoch of the previous `batches` call: the next is guessed from the step between calls. */
  private lastEpoch: number | null = null;

  /** Epoch `epoch`'s batches, decoded ahead (up to `prefetch` batches) while the caller works on the current one. */
  async *batches(epoch: number): AsyncGenerator<Batch> {
    const backend = await this.backend();
    const ahead = backend.parallel ? (this.opts.prefetch ?? 2) + 1 : 1;
    const pending: Promise<Batch>[] = [];
    let next = 0;
    if (this.early?.epoch === epoch) {
      pending.push(...this.early.pending);
      next = pending.length;
    }
    this.early = null;
    // Training asks for 0, 1, 2, …; evaluation for 0, 0, 0, …
    const following = epoch + (this.lastEpoch === null ? 1 : epoch - this.lastEpoch);
    this.lastEpoch = epoch;
    const plan = this.plan(epoch);
    const nb = plan.batches;
    for (let k = 0; k < nb; k++) {
      while (next < nb && next < k + ahead) pending.push(this.startBatch(backend, plan, next++));
      // The last batches are in flight: fill the rest of the window from the next epoch.
      if (next === nb && backend.parallel && following >= 0 && !this.closed) {
        const early = (this.early ??= { epoch: following, plan: this.plan(following), pending: [] });
        while (pending.length + early.pending.length < ahead && early.pending.length < early.plan.batches) early.pending.push(this.startBatch(backend, early.plan, early.pending.length));
      }
      yield await pending.shift()!;
    }
  }

  /** Epoch `epoch`'s order, per-draw seeds and batch count. */
  private plan(epoch: number): EpochPlan {
    const order = this.epochOrder(epoch);
    const seed = this.opts.seed ?? 0;
    // The k-th draw of an item in an epoch (balanced sampling repeats items) gets its own seed.
    const seen = new Map<number, number>();
    const seeds = order.map((i) => {
      const occ = seen.get(i) ?? 0;
      seen.set(i, occ + 1);
      return sampleSeed(seed, epoch, i, occ);
    });
    const B = this.batchSize;
    return { order, seeds, batches: this.opts.dropLast ? Math.floor(order.length / B) : Math.ceil(order.length / B) };
  }

  /** Starts decoding batch k of a plan. */
  private startBatch(backend: Backend, plan: EpochPlan, k: number): Promise<Batch> {
    const { order, seeds } = plan;
    const B = this.batchSize;
    const idx = order.slice(k * B, Math.min(order.length, (k + 1) * B));
    const jobs = new Uint32Array(idx.length * 2);
    idx.forEach((i, j) => {
      jobs[2 * j] = i;
      jobs[2 * j + 1] = seeds[k * B + j]!;
    });
    const p = backend.decode(jobs).then((data) => {
      const { channels: C, inputSize: S } = this.opts.preprocess;
      return { images: new Tensor(data, [idx.length, C, S, S]), labels: Int32Array.from(idx, (i) => this.labelsOf[i]!), indices: idx };
    });
    // Handled now so that a failure ahead of the consumer is not an unhandled rejection; it is re-thrown when awaited.
    p.catch(() => {});
    return p;
  }

  /** Cache use and threads: the sums over the workers, as of their latest replies. */
  stats(): LoaderStats {
    const limit = this.opts.cacheBytes ?? 256 * MiB;
    return { bytes: 0, limit, entries: 0, hits: 0, misses: 0, threads: 0, ...(this.started?.stats() ?? {}) };
  }

  /** Ends the worker threads; the loader cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const b = this.backendP;
    this.backendP = null;
    if (b) await (await b.catch(() => null))?.close();
  }
}

/**
 * Every item decoded with the evaluation preprocessing into one [N, C, S, S] tensor (small sets,
 * evaluation).
 *
 * @example
 * ```ts
 * import { listImageFolder, loadTensors } from 'lightconv';
 *
 * const preprocess = { inputSize: 64, resize: 64, crop: 64, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
 * const { images, labels } = await loadTensors(await listImageFolder('data/small'), preprocess); // [N, 3, 64, 64]
 * ```
 */
export async function loadTensors(list: ImageList, preprocess: Preprocess, opts: { workers?: number; indices?: number[] } = {}): Promise<{ images: Tensor; labels: Int32Array }> {
  const idx = opts.indices ?? [...list.items.keys()];
  const { channels: C, inputSize: S } = checkPreprocess(preprocess, 'loadTensors: preprocess');
  const per = checkedSize([C, S, S], 'loadTensors');
  const data = new Float32Array(checkedSize([idx.length, C, S, S], 'loadTensors'));
  const labels = new Int32Array(idx.length);
  // The images are read once: no cache.
  const loader = new ImageLoader(list, { preprocess, batchSize: 32, indices: idx, cacheBytes: 0, ...(opts.workers !== undefined ? { workers: opts.workers } : {}) });
  try {
    let at = 0;
    for await (const b of loader.batches(0)) {
      data.set(b.images.f32(), at * per);
      labels.set(b.labels, at);
      at += b.labels.length;
    }
  } finally {
    await loader.close();
  }
  return { images: new Tensor(data, [idx.length, C, S, S]), labels };
}
