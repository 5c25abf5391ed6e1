import { LightconvError } from '../../core/errors.js';
import { getThreads } from '../../core/threads.js';
import type { Runtime } from './runtime.js';

/**
 * The worker pool of the WebAssembly kernels: n − 1 workers (setThreads(n)) that instantiate
 * the same generated modules over the same shared memory, plus the calling thread.
 *
 * A job is a list of chunks; a chunk is a short list of kernel calls (e.g. "pack these B
 * panels, then multiply them"). Every thread, the caller included, claims chunks one at a
 * time from an atomic counter until none are left — small chunks and no fixed split, so a
 * worker whose core is busy elsewhere simply takes fewer (the prototype's fixed halves ran at
 * 0.9× when the other core was busy). Each output element is computed by exactly one call,
 * with the same code whatever the chunking, so results are bit-identical for any thread count.
 * A replayed run (plan.ts) is a single job of many phases: each chunk's calls are led by a
 * barrier that waits until the chunks of the phases before it are done.
 *
 * Node: worker_threads; `receiveMessageOnPort` hands new modules to a worker that is blocked
 * in Atomics.wait. Browsers (only when crossOriginIsolated, with Atomics.waitAsync): Web
 * Workers from a Blob URL that wait with Atomics.waitAsync, so that their event loop receives
 * new modules between jobs. Elsewhere everything runs on the calling thread.
 *
 * A worker may join late (browser workers start asynchronously) or lack a module a job needs
 * (still in its message queue): it then leaves that job to the others. Nothing waits for a
 * worker that has not claimed a chunk, since the caller claims every chunk no worker took.
 */

/**
 * How work is split. A hand-off to a worker costs tens of microseconds when it sleeps (and a
 * few when it is still spinning after the previous job), so a kernel call runs on the calling
 * thread alone below `minParallelNs` of estimated single-thread work, and otherwise in chunks
 * of at least `minChunkNs`, at most `chunksPerThread` per thread (small chunks let a thread
 * whose core is busy elsewhere take fewer). Measured on a 2-core x86-64: below ~60 µs of work
 * two threads were slower than one. Tests lower these to force chunking on small shapes.
 *
 * workerSpin: iterations a worker polls for the next job before it sleeps (about 50–100 µs):
 * long enough to bridge the gaps between the kernel calls of a model run, where the small ops
 * run on the calling thread alone (MobileNetV3-Small at batch 1: 5 % faster than 2000). When
 * the other core is busy, spinning takes time from the calling thread; model runs then go
 * without the workers (ThreadChoice), so nothing spins.
 */
export const tuning = { minParallelNs: 60_000, minChunkNs: 15_000, chunksPerThread: 4, workerSpin: 50_000, planScale: 0.1 };

/** Estimated single-thread time of a packed GEMM (about 12 multiply-adds per ns here). */
export function gemmNs(macs: number): number {
  return macs / 12;
}

/** Estimated single-thread time of a depthwise conv: its multiply-adds and the floats it moves. */
export function depthwiseNs(macs: number, floats: number): number {
  return macs / 6 + floats / 4;
}

/** Estimated single-thread time of a pass that streams `floats` through memory once (elementwise). */
export function streamNs(floats: number): number {
  return floats / 2;
}

/** Whether the current model run goes without the workers (Pool.inline). */
let inlineRun = false;
/** Whether a plan records the calls (Pool.recording). */
let planRecording = false;

/**
 * How many chunks to cut work of `ns` (single-thread estimate) into: 1 means run it inline.
 * Calls recorded for a plan are cut at `planScale` times the thresholds: a replay hands out
 * its chunks without any JavaScript in between, so a hand-off costs about a microsecond.
 */
export function chunkCount(ns: number): number {
  const t = inlineRun ? 1 : getThreads();
  const scale = planRecording ? tuning.planScale : 1;
  if (t <= 1 || !(ns >= tuning.minParallelNs * scale)) return 1;
  return Math.max(1, Math.min(t * tuning.chunksPerThread, Math.floor(ns / (tuning.minChunkNs * scale))));
}

/** [0, units) as up to `parts` even, non-empty ranges [u0, u1): how kernel calls are cut into chunks. */
export function splitRange(units: number, parts: number): [number, number][] {
  const want = Math.max(1, Math.min(units, parts));
  const out: [number, number][] = [];
  for (let q = 0; q < want; q++) {
    const u0 = Math.floor((q * units) / want);
    const u1 = Math.floor(((q + 1) * units) / want);
    if (u1 > u0) out.push([u0, u1]);
  }
  return out;
}

/** Net loss of threaded jobs (ms, see Pool.judge) that sends the pool back to one thread for a while. */
const LOSS_MS = 1;

/** A job published to the workers (Pool.start), finished with Pool.finish. */
export interface Job {
  readonly chunks: readonly (readonly Call[])[];
  readonly table: number;
}

/** Arguments a kernel call may have in a job table (the workers pass this many). */
export const MAX_CALL_ARGS = 18;

/** A kernel call: the export name and its numeric arguments. */
export type Call = readonly [string, ...number[]];

/** A recorded run as the pool runs it (built by plan.ts). */
export interface PlanJob {
  /** Every call in order, for a run on this thread alone. */
  readonly calls: readonly (readonly [(...a: number[]) => void, readonly number[]])[];
  /** The chunks in claim order; a chunk starts once `after` chunks are done (its phase's start). */
  readonly chunks: readonly { readonly after: number; readonly calls: readonly (readonly [(...a: number[]) => void, readonly number[]])[] }[];
  /** Byte address of the job table in wasm memory (chunk offsets, then barrier and calls). */
  readonly table: number;
}

// Control words (Int32Array over a SharedArrayBuffer).
const GEN = 0; // job generation; workers wait on it
const NEXT = 1; // (generation & 0xfff) << 20 | next chunk index
const TOTAL = 2;
const ARGS = 3; // byte address of the job table in wasm memory (negative as an int32 past 2 GiB: read with >>>)
const MODULES = 4; // modules the job needs
const STOP = 5;
const DONE = 6; // chunks finished
const ACTIVE = 7; // workers with an index below this take part in the current job
const WORKED = 8; // chunks run by workers since the pool was made (for tests)
const FAILED = 9; // a worker's kernel call threw (a trap) during the current job
const SPIN = 10; // iterations a worker polls for the next job before it sleeps (tuning.workerSpin)

/**
 * Claiming and running the chunks of job `gen`, shared by both worker programs. Job table
 * layout (float64): [chunk offsets (total + 1)] then calls as [fn id, argc, args…]; offsets
 * index into the float64 array from the table start. A claim is only valid while NEXT carries
 * this job's tag: `start` closes NEXT before it rewrites TOTAL and ARGS, so a worker that read
 * them for a newer job can never claim a chunk of an older one with them.
 */
const CLAIM = `
  const total = Atomics.load(ctrl, ${TOTAL});
  const table = Atomics.load(ctrl, ${ARGS}) >>> 3; // unsigned: the table may sit past 2 GiB
  for (;;) {
    const v = Atomics.load(ctrl, ${NEXT});
    if ((v >>> 20) !== (gen & 0xfff)) break;
    const idx = v & 0xfffff;
    if (idx >= total) break;
    if (Atomics.compareExchange(ctrl, ${NEXT}, v, v + 1) !== v) continue;
    if (memory.buffer !== buf) { buf = memory.buffer; f64 = new Float64Array(buf); }
    let o = table + f64[table + idx];
    const end = table + f64[table + idx + 1];
    try {
      while (o < end) {
        if (f64[o] < 0) {
          // A plan's phase barrier: the chunks of the phases before are done first.
          const need = f64[o + 2];
          while (Atomics.load(ctrl, ${DONE}) < need);
          o += 3;
          continue;
        }
        // Arguments by index, no array per call (a wasm export ignores the extra ones).
        // (${MAX_CALL_ARGS} at most, checked when tables are written).
        const a = o + 2;
        fns[f64[o]](f64[a], f64[a + 1], f64[a + 2], f64[a + 3], f64[a + 4], f64[a + 5], f64[a + 6], f64[a + 7], f64[a + 8], f64[a + 9], f64[a + 10], f64[a + 11], f64[a + 12], f64[a + 13], f64[a + 14], f64[a + 15], f64[a + 16], f64[a + 17]);
        o += 2 + f64[o + 1];
      }
    } catch (e) {
      Atomics.store(ctrl, ${FAILED}, 1); // reported by the calling thread; the chunk still counts as done
    }
    Atomics.add(ctrl, ${WORKED}, 1);
    Atomics.add(ctrl, ${DONE}, 1);
    Atomics.notify(ctrl, ${DONE});
  }
`;

/** The Node worker's whole program: it waits for a generation bump, claims chunks and runs their calls. */
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { memory, ctrlBuffer, port, index } = workerData;
const ctrl = new Int32Array(ctrlBuffer);
const fns = [];
const byName = Object.create(null);
let modules = 0;
let buf = null;
let f64 = null;
let gen = 0;
for (;;) {
  for (let i = 0, n = Atomics.load(ctrl, ${SPIN}); i < n && Atomics.load(ctrl, ${GEN}) === gen; i++);
  Atomics.wait(ctrl, ${GEN}, gen);
  gen = Atomics.load(ctrl, ${GEN});
  if (Atomics.load(ctrl, ${STOP})) break;
  const need = Atomics.load(ctrl, ${MODULES});
  while (modules < need) {
    const m = receiveMessageOnPort(port);
    if (!m) continue;
    const inst = new WebAssembly.Instance(m.message.module, { env: { memory } });
    Object.assign(byName, inst.exports);
    for (const name of m.message.names) fns.push(byName[name]);
    modules++;
  }
  if (index >= Atomics.load(ctrl, ${ACTIVE})) continue; // parked: fewer threads wanted now
  ${CLAIM}
}
`;

/**
 * The browser worker's program (a classic script). The first message brings the memory, the
 * control block and the modules so far; later ones one module each. It never blocks: between
 * jobs it waits with Atomics.waitAsync, so module messages get through. A job that needs a
 * module still in the queue is skipped (the others run it); the message then resumes the loop.
 */
const BROWSER_WORKER_SOURCE = `
'use strict';
const fns = [];
const byName = Object.create(null);
let memory = null;
let ctrl = null;
let index = 0;
let modules = 0;
let buf = null;
let f64 = null;
let gen = 0;
let stalled = false;
function add(m) {
  const inst = new WebAssembly.Instance(m.module, { env: { memory } });
  Object.assign(byName, inst.exports);
  for (const name of m.names) fns.push(byName[name]);
  modules++;
}
function loop() {
  for (;;) {
    for (let i = 0, n = Atomics.load(ctrl, ${SPIN}); i < n && Atomics.load(ctrl, ${GEN}) === gen; i++);
    const w = Atomics.waitAsync(ctrl, ${GEN}, gen);
    if (w.async) {
      w.value.then(loop);
      return;
    }
    gen = Atomics.load(ctrl, ${GEN});
    if (Atomics.load(ctrl, ${STOP})) {
      close();
      return;
    }
    if (modules < Atomics.load(ctrl, ${MODULES})) {
      stalled = true;
      return;
    }
    if (index >= Atomics.load(ctrl, ${ACTIVE})) continue;
    ${CLAIM}
  }
}
self.onmessage = (e) => {
  const d = e.data;
  if (d.ctrl) {
    memory = d.memory;
    ctrl = new Int32Array(d.ctrl);
    index = d.index;
    for (const m of d.modules) add(m);
    loop();
  } else {
    add(d);
    if (stalled) {
      stalled = false;
      loop();
    }
  }
};
`;

interface NodeWorker {
  unref(): void;
  terminate(): Promise<number>;
}
interface WorkerThreads {
  Worker: new (src: string, opts: object) => NodeWorker;
  MessageChannel: new () => { port1: { postMessage(m: unknown): void; unref?(): void; close(): void }; port2: unknown };
}

const now = (): number => globalThis.performance.now();

function workerThreads(): WorkerThreads | null {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return (p?.getBuiltinModule?.('node:worker_threads') as WorkerThreads | undefined) ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether Web Workers can share the memory: a cross-origin isolated page (or worker) whose
 * engine has Atomics.waitAsync — without it a browser worker could not receive modules while
 * waiting for jobs, so there are none.
 */
function webWorkersUsable(): boolean {
  const g = globalThis as { Worker?: unknown; crossOriginIsolated?: boolean; Blob?: unknown; URL?: { createObjectURL?: unknown } };
  return (
    typeof g.Worker === 'function' &&
    g.crossOriginIsolated === true &&
    typeof (Atomics as { waitAsync?: unknown }).waitAsync === 'function' &&
    typeof g.Blob === 'function' &&
    typeof g.URL?.createObjectURL === 'function'
  );
}

/** A running worker of either kind: how to hand it a module, and how to end it. */
interface WorkerHandle {
  post(m: { module: WebAssembly.Module; names: string[] }): void;
  end(): void;
}

/** Whether this thread may block in Atomics.wait (a browser's main thread may not: it throws). */
let mayBlock = true;

export class Pool {
  private readonly ctrl: Int32Array;
  private workers: WorkerHandle[] = [];
  private gen = 0;
  /** Names of every export in module order: the ids that job tables use. */
  private readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  private readonly moduleNames: string[][] = [];
  /** The Blob URL of the browser worker script, made with the first browser worker. */
  private scriptUrl: string | null = null;
  private noWebWorkers = false;

  constructor(private readonly rt: Runtime) {
    // A page that is not cross-origin isolated has no SharedArrayBuffer; it gets no workers
    // either, and Atomics works on a plain buffer.
    this.ctrl = new Int32Array(typeof SharedArrayBuffer !== 'undefined' ? new SharedArrayBuffer(64) : new ArrayBuffer(64));
  }

  /** Records a module's exports (in instantiation order) and hands it to running workers. */
  addModule(module: WebAssembly.Module, names: string[]): void {
    for (const n of names) {
      this.ids.set(n, this.names.length);
      this.names.push(n);
    }
    this.moduleNames.push(names);
    for (const w of this.workers) w.post({ module, names });
  }

  get size(): number {
    return Math.min(this.workers.length, Math.max(0, getThreads() - 1)) + 1;
  }

  /** Chunks run by workers (not the calling thread) since the pool was made; for tests. */
  get workerChunks(): number {
    return Atomics.load(this.ctrl, WORKED);
  }

  /**
   * Starts workers up to getThreads() − 1 and returns how many take part now. Workers beyond
   * that stay parked (asleep; unref'd in Node) rather than stopped, so that going back
   * and forth between thread counts does not pay for new workers and cold (baseline-compiled)
   * kernels each time. Browser workers count from the start though they begin later: until
   * then the calling thread takes their chunks.
   */
  private resize(): number {
    const shared = typeof SharedArrayBuffer !== 'undefined' && this.rt.memory.buffer instanceof SharedArrayBuffer;
    const want = shared ? getThreads() - 1 : 0;
    if (want <= this.workers.length) return want;
    const wt = workerThreads();
    if (wt) {
      while (this.workers.length < want) this.workers.push(this.nodeWorker(wt));
    } else if (!this.noWebWorkers && webWorkersUsable()) {
      try {
        while (this.workers.length < want) this.workers.push(this.webWorker());
      } catch {
        this.noWebWorkers = true; // e.g. a Content-Security-Policy without blob: workers
      }
    }
    return Math.min(want, this.workers.length);
  }

  private nodeWorker(wt: WorkerThreads): WorkerHandle {
    const { port1, port2 } = new wt.MessageChannel();
    const index = this.workers.length;
    const worker = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: { memory: this.rt.memory, ctrlBuffer: this.ctrl.buffer, port: port2, index }, transferList: [port2] });
    worker.unref();
    port1.unref?.();
    this.rt.modules.forEach((module, i) => port1.postMessage({ module, names: this.moduleNames[i] }));
    return {
      post: (m) => port1.postMessage(m),
      end: () => {
        void worker.terminate();
        port1.close();
      },
    };
  }

  private webWorker(): WorkerHandle {
    this.scriptUrl ??= URL.createObjectURL(new Blob([BROWSER_WORKER_SOURCE], { type: 'text/javascript' }));
    const worker = new Worker(this.scriptUrl, { name: `lightconv-${this.workers.length + 1}` });
    const modules = this.rt.modules.map((module, i) => ({ module, names: this.moduleNames[i] }));
    worker.postMessage({ memory: this.rt.memory, ctrl: this.ctrl.buffer, index: this.workers.length, modules });
    return { post: (m) => worker.postMessage(m), end: () => worker.terminate() };
  }

  /** Stops every worker (they are unref'd anyway; for tests and explicit shutdown). */
  stop(): void {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const w of this.workers) w.end();
    this.workers = [];
    if (this.scriptUrl !== null) URL.revokeObjectURL(this.scriptUrl);
    this.scriptUrl = null;
    this.gen = Atomics.load(this.ctrl, GEN);
    Atomics.store(this.ctrl, STOP, 0);
  }

  /**
   * Adaptive fallback. A worker whose core is taken by another process can be descheduled
   * for milliseconds while it holds a chunk, and the calling thread then waits: with the other
   * core busy, two threads ran at 0.7–0.9× one. So every job compares its time with what the
   * calling thread alone would have taken (its own time per chunk × chunks) and adds the
   * difference to a running balance (decaying by 5 % a job, so it covers the last few dozen
   * jobs). When the balance shows a loss of more than `LOSS_MS` — one long stall outweighs many
   * small gains — jobs run on the calling thread alone for a while (20 ms, doubling up to 1 s
   * while it keeps happening), then threads are tried again; a balance back in profit resets
   * the doubling.
   */
  private backoffUntil = 0;
  private backoffMs = 0;
  private balance = 0;
  /**
   * Set by ThreadChoice: every job runs on the calling thread alone, and kernel calls are not
   * cut into chunks at all (chunkCount), as with one thread.
   */
  get inline(): boolean {
    return inlineRun;
  }
  set inline(on: boolean) {
    inlineRun = on;
  }
  /** Whether the per-job fallback (judge) is in charge; off while ThreadChoice times whole runs. */
  judging = true;

  /** Whether jobs run on the calling thread alone now (the adaptive fallback); for tests. */
  get backedOff(): boolean {
    return now() < this.backoffUntil;
  }

  /** While a plan records (plan.ts): every job's chunks, in order. */
  get recording(): Call[][][] | null {
    return this.recorded;
  }
  set recording(phases: Call[][][] | null) {
    this.recorded = phases;
    planRecording = phases !== null;
  }
  private recorded: Call[][][] | null = null;

  /** Runs every chunk (each a list of calls) once, on as many threads as configured. */
  run(chunks: readonly (readonly Call[])[]): void {
    this.recorded?.push(chunks.map((c) => [...c]));
    this.finish(this.start(chunks));
  }

  /**
   * Runs a recorded plan (plan.ts): on this thread alone, its calls in order; with workers,
   * as one job whose table the plan keeps in wasm memory, every chunk of a phase waiting
   * (spinning) until the phases before it are done — one hand-off per run instead of one per
   * kernel call.
   */
  runPlan(plan: PlanJob): void {
    const active = this.resize();
    if (active === 0 || plan.chunks.length <= 1 || plan.chunks.length >= 0xfffff || this.inline) {
      for (const [fn, args] of plan.calls) fn(...args);
      return;
    }
    const gen = (this.gen = (this.gen + 1) | 0);
    this.publish(gen, plan.chunks.length, plan.table, active);
    let error: unknown = null;
    for (;;) {
      const v = Atomics.load(this.ctrl, NEXT);
      const idx = v & 0xfffff;
      if (idx >= plan.chunks.length) break;
      if (Atomics.compareExchange(this.ctrl, NEXT, v, v + 1) !== v) continue;
      const chunk = plan.chunks[idx]!;
      while (Atomics.load(this.ctrl, DONE) < chunk.after);
      try {
        if (error === null) for (const [fn, args] of chunk.calls) fn(...args);
      } catch (e) {
        error = e;
      }
      Atomics.add(this.ctrl, DONE, 1);
    }
    this.awaitDone(plan.chunks.length);
    if (Atomics.exchange(this.ctrl, FAILED, 0)) error ??= new LightconvError('a WebAssembly kernel failed in a worker thread');
    if (error !== null) throw error;
  }

  /**
   * Publishes a job to the workers (run then claims chunks on this thread too, in `finish`).
   * Without workers (or with one chunk) the chunks run here, now, and there is no job.
   */
  private start(chunks: readonly (readonly Call[])[]): Job | null {
    const fns = this.rt.fns;
    const active = this.resize();
    if (active === 0 || chunks.length <= 1 || this.inline || (this.judging && this.backoffUntil > 0 && now() < this.backoffUntil)) {
      for (const chunk of chunks) for (const [name, ...args] of chunk) fns[name]!(...args);
      return null;
    }
    const table = this.writeTable(chunks);
    this.publish((this.gen = (this.gen + 1) | 0), chunks.length, table, active);
    return { chunks, table };
  }

  /**
   * Wakes sleeping workers without a job, so that they are spinning (ready within a
   * microsecond) when the job comes: a replay calls this before it copies its inputs in, which
   * hides the tens to hundreds of microseconds a sleeping thread takes to wake up.
   */
  wake(): void {
    if (this.workers.length > 0 && getThreads() > 1 && !this.inline) Atomics.notify(this.ctrl, GEN);
  }

  /**
   * Writes a job table into wasm memory and returns its address: float64 chunk offsets (from
   * the table's start), then each chunk's calls as [fn id, argc, args…], led by a barrier
   * [−1, 1, n] when the chunk must wait until n chunks are done (`after`, plans only).
   * `lasting`: the table outlives the current run (a plan's).
   */
  writeTable(chunks: readonly (readonly Call[])[], after?: readonly number[], lasting = false): number {
    let words = chunks.length + 1;
    chunks.forEach((chunk, c) => {
      if (after?.[c]) words += 3;
      for (const [name, ...args] of chunk) {
        if (args.length > MAX_CALL_ARGS) throw new LightconvError(`kernel call ${name} has ${args.length} arguments (at most ${MAX_CALL_ARGS})`);
        words += args.length + 2;
      }
    });
    const table = this.rt.alloc(words * 8, lasting);
    const f64 = new Float64Array(this.rt.memory.buffer, table, words);
    let o = chunks.length + 1;
    chunks.forEach((chunk, c) => {
      f64[c] = o;
      if (after?.[c]) {
        f64[o++] = -1;
        f64[o++] = 1;
        f64[o++] = after[c]!;
      }
      for (const [name, ...args] of chunk) {
        f64[o++] = this.ids.get(name)!;
        f64[o++] = args.length;
        for (const a of args) f64[o++] = a;
      }
    });
    f64[chunks.length] = o;
    return table;
  }

  /** Hands job `gen` (`total` chunks, its table at byte address `table`) to the workers. */
  private publish(gen: number, total: number, table: number, active: number): void {
    // Closed first (this tag, no chunk left): see CLAIM.
    Atomics.store(this.ctrl, NEXT, ((gen & 0xfff) << 20) | 0xfffff);
    Atomics.store(this.ctrl, TOTAL, total);
    Atomics.store(this.ctrl, ARGS, table);
    Atomics.store(this.ctrl, MODULES, this.rt.modules.length);
    Atomics.store(this.ctrl, DONE, 0);
    Atomics.store(this.ctrl, ACTIVE, active);
    Atomics.store(this.ctrl, SPIN, tuning.workerSpin);
    Atomics.store(this.ctrl, NEXT, (gen & 0xfff) << 20);
    Atomics.store(this.ctrl, GEN, gen);
    Atomics.notify(this.ctrl, GEN);
  }

  /**
   * Waits until `total` chunks are done. Spins only briefly, then sleeps on the counter, so
   * that a worker starved of a core (the other core busy with something else) gets this one
   * instead of watching it spin. A browser's main thread may not sleep (Atomics.wait throws
   * there): it keeps spinning.
   */
  private awaitDone(total: number): void {
    for (let spins = 0; ; spins++) {
      const done = Atomics.load(this.ctrl, DONE);
      if (done >= total) break;
      if (spins > 2000 && mayBlock) {
        try {
          Atomics.wait(this.ctrl, DONE, done, 1);
        } catch {
          mayBlock = false;
        }
      }
    }
  }

  /** Claims the chunks of a started job that no worker took, runs them, and waits for the rest. */
  private finish(job: Job | null): void {
    if (!job) return;
    const { chunks, table } = job;
    const fns = this.rt.fns;
    try {
      // The calling thread works too, claiming chunks like any worker.
      const tc = now();
      let mine = 0;
      // A chunk that throws (a trap) must not leave workers running on a released table: the
      // error is kept, the remaining chunks are only counted, and it is thrown after the wait.
      let error: unknown = null;
      for (;;) {
        const v = Atomics.load(this.ctrl, NEXT);
        const idx = v & 0xfffff;
        if (idx >= chunks.length) break;
        if (Atomics.compareExchange(this.ctrl, NEXT, v, v + 1) !== v) continue;
        try {
          if (error === null) for (const [name, ...args] of chunks[idx]!) fns[name]!(...args);
        } catch (e) {
          error = e;
        }
        Atomics.add(this.ctrl, DONE, 1);
        mine++;
      }
      const t1 = now();
      // Chunks claimed by workers are in progress: wait for them.
      this.awaitDone(chunks.length);
      if (Atomics.exchange(this.ctrl, FAILED, 0)) error ??= new LightconvError('a WebAssembly kernel failed in a worker thread');
      if (error !== null) throw error;
      // Judged on the part after the caller came back (its own work in between is not the job's).
      if (this.judging) this.judge(tc, t1, now(), mine, chunks.length);
    } finally {
      this.rt.release(table);
    }
  }

  /** Updates the adaptive fallback after a job: started t0, own chunks done t1, all done t2 (ms). */
  private judge(t0: number, t1: number, t2: number, mine: number, total: number): void {
    if (mine === 0) return; // no estimate of the single-thread time
    const alone = ((t1 - t0) / mine) * total;
    this.balance = 0.95 * this.balance + (alone - (t2 - t0));
    if (this.balance < -LOSS_MS) {
      this.backoffMs = Math.min(1000, Math.max(20, this.backoffMs * 2));
      this.backoffUntil = t2 + this.backoffMs;
      this.balance = 0;
    } else if (this.balance > LOSS_MS) this.backoffMs = 0;
  }
}

/**
 * Chooses, for one repeated workload (a model run at one input shape), between the worker
 * threads and the calling thread alone, by timing whole runs of each: the per-job fallback
 * above cannot see every loss — when the other core is busy, the calling thread's own chunks
 * slow down too, so "what it would have taken alone" is overestimated and two threads ran at
 * 0.9× one. Whole runs are comparable, so this estimates each mode by the fastest of its last
 * three runs (load from elsewhere only ever slows a run down, and an old estimate — from
 * before the kernels were warm, say — is replaced after three new runs instead of fading
 * slowly), uses the faster, and now and then tries the other (EXPLORE) so that it notices
 * when the machine gets quieter or busier. The first runs of each mode are warm-up.
 */
export class ThreadChoice {
  /** The last runs of each mode, [threads, alone], newest last. */
  private readonly recent: [number[], number[]] = [[], []];
  private readonly seen: [number, number] = [0, 0];
  private runs = 0;
  private explore = EXPLORE;
  private lastChoice: boolean | null = null;
  private lastTry = 0;

  /** `clock`: milliseconds (tests pass a fake one). */
  constructor(private readonly clock: () => number = now) {}

  /** Runs fn (one run of the workload) in the chosen mode, timing it. */
  run<T>(pool: Pool, fn: () => T): T {
    if (getThreads() <= 1) return fn();
    const alone = this.pick();
    const prev = [pool.inline, pool.judging] as const;
    pool.inline = prev[0] || alone;
    pool.judging = false;
    const t0 = this.clock();
    try {
      return fn();
    } finally {
      [pool.inline, pool.judging] = prev;
      this.record(alone ? 1 : 0, this.clock() - t0);
    }
  }

  /** Whether the next run goes without the workers. */
  private pick(): boolean {
    if (this.recent[0].length < KEEP || this.recent[1].length < KEEP) return this.runs++ % 2 === 1; // both modes measured first
    const { threads, alone: one } = this.estimates;
    const alone = one < threads;
    // A try costs up to a run of the slower mode: at least 100 of those apart keeps tries ≤ ~1 %.
    const period = Math.max(EXPLORE_MAX_MS, 100 * Math.max(threads, one));
    const due = ++this.runs >= this.explore || (this.runs >= EXPLORE && this.clock() - this.lastTry >= period);
    if (!due) return alone;
    // A try of the other mode; each try that confirms the choice doubles the interval.
    this.runs = 0;
    this.lastTry = this.clock();
    if (alone === this.lastChoice) this.explore = Math.min(EXPLORE_MAX, 2 * this.explore);
    else this.explore = EXPLORE;
    this.lastChoice = alone;
    return !alone;
  }

  private record(mode: 0 | 1, ms: number): void {
    if (this.seen[mode]++ < WARM_UP) return; // worker start, kernel compilation and tier-up
    const r = this.recent[mode];
    r.push(ms);
    if (r.length > KEEP) r.shift();
  }

  /** Each mode's estimate (ms): the fastest of its last runs; NaN before it has any. */
  get estimates(): { threads: number; alone: number } {
    const best = (r: number[]) => (r.length ? Math.min(...r) : NaN);
    return { threads: best(this.recent[0]), alone: best(this.recent[1]) };
  }
}

/**
 * Runs between tries of the mode ThreadChoice is not using: 8 at first, doubling up to 256
 * while the choice holds (a try of the slower mode costs up to ~1.5× a run; at 256 that is
 * 0.2 % on average), but a try at least every EXPLORE_MAX_MS (or 100 runs of the slower mode,
 * when longer): after a burst of load from elsewhere, runs of a few milliseconds go back to the
 * workers within a second (a doubled interval alone could take many seconds).
 */
const EXPLORE = 8;
const EXPLORE_MAX = 256;
const EXPLORE_MAX_MS = 1000;
/** Runs of each mode not counted at first, and how many recent runs estimate a mode. */
const WARM_UP = 2;
const KEEP = 3;
