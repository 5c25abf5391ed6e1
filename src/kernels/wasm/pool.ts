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
 *
 * Node only for now (worker_threads; `receiveMessageOnPort` hands new modules to a worker
 * that is blocked in Atomics.wait). Browsers run single-threaded.
 */

/** A kernel call: the export name and its numeric arguments. */
export type Call = readonly [string, ...number[]];

// Control words (Int32Array over a SharedArrayBuffer).
const GEN = 0; // job generation; workers wait on it
const NEXT = 1; // (generation & 0xfff) << 20 | next chunk index
const TOTAL = 2;
const ARGS = 3; // byte address of the job table in wasm memory
const MODULES = 4; // modules the job needs
const STOP = 5;
const DONE = 6; // chunks finished

/**
 * The worker's whole program, as source: it waits for a generation bump, claims chunks and
 * runs their calls. Job table layout (float64): [chunk offsets (total + 1)] then calls as
 * [fn id, argc, args…]; offsets index into the float64 array from the table start.
 */
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { memory, ctrlBuffer, port } = workerData;
const ctrl = new Int32Array(ctrlBuffer);
const fns = [];
const byName = Object.create(null);
let modules = 0;
let buf = null;
let f64 = null;
let gen = 0;
for (;;) {
  Atomics.wait(ctrl, ${GEN}, gen);
  gen = Atomics.load(ctrl, ${GEN});
  if (Atomics.load(ctrl, ${STOP})) break;
  const need = Atomics.load(ctrl, ${MODULES});
  while (modules < need) {
    const m = receiveMessageOnPort(port);
    if (!m) continue;
    const inst = new WebAssembly.Instance(new WebAssembly.Module(m.message.bytes), { env: { memory } });
    Object.assign(byName, inst.exports);
    for (const name of m.message.names) fns.push(byName[name]);
    modules++;
  }
  const total = Atomics.load(ctrl, ${TOTAL});
  const table = Atomics.load(ctrl, ${ARGS}) >> 3;
  for (;;) {
    const v = Atomics.load(ctrl, ${NEXT});
    if ((v >>> 20) !== (gen & 0xfff)) break;
    const idx = v & 0xfffff;
    if (idx >= total) break;
    if (Atomics.compareExchange(ctrl, ${NEXT}, v, v + 1) !== v) continue;
    if (memory.buffer !== buf) { buf = memory.buffer; f64 = new Float64Array(buf); }
    let o = table + f64[table + idx];
    const end = table + f64[table + idx + 1];
    while (o < end) {
      const fn = fns[f64[o]];
      const argc = f64[o + 1];
      const a = f64.subarray(o + 2, o + 2 + argc);
      fn(...a);
      o += 2 + argc;
    }
    Atomics.add(ctrl, ${DONE}, 1);
    Atomics.notify(ctrl, ${DONE});
  }
}
`;

interface NodeWorker {
  unref(): void;
  terminate(): Promise<number>;
}
interface WorkerThreads {
  Worker: new (src: string, opts: object) => NodeWorker;
  MessageChannel: new () => { port1: { postMessage(m: unknown): void; unref?(): void; close(): void }; port2: unknown };
}

function workerThreads(): WorkerThreads | null {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return (p?.getBuiltinModule?.('node:worker_threads') as WorkerThreads | undefined) ?? null;
  } catch {
    return null;
  }
}

interface WorkerHandle {
  worker: NodeWorker;
  port: { postMessage(m: unknown): void; close(): void };
}

export class Pool {
  private readonly ctrl: Int32Array;
  private workers: WorkerHandle[] = [];
  private gen = 0;
  /** Names of every export in module order: the ids that job tables use. */
  private readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  private readonly moduleNames: string[][] = [];

  constructor(private readonly rt: Runtime) {
    this.ctrl = new Int32Array(new SharedArrayBuffer(64));
  }

  /** Records a module's exports (in instantiation order) and hands it to running workers. */
  addModule(bytes: Uint8Array, names: string[]): void {
    for (const n of names) {
      this.ids.set(n, this.names.length);
      this.names.push(n);
    }
    this.moduleNames.push(names);
    for (const w of this.workers) w.port.postMessage({ bytes, names });
  }

  get size(): number {
    return this.workers.length + 1;
  }

  /** Starts or stops workers to match getThreads(). */
  private resize(): void {
    const want = this.rt.memory.buffer instanceof SharedArrayBuffer ? getThreads() - 1 : 0;
    if (want === this.workers.length) return;
    while (this.workers.length > want) {
      const w = this.workers.pop()!;
      void w.worker.terminate();
      w.port.close();
    }
    const wt = want > this.workers.length ? workerThreads() : null;
    if (!wt) return;
    if (this.workers.length === 0) Atomics.store(this.ctrl, STOP, 0);
    while (this.workers.length < want) {
      const { port1, port2 } = new wt.MessageChannel();
      const worker = new wt.Worker(WORKER_SOURCE, { eval: true, workerData: { memory: this.rt.memory, ctrlBuffer: this.ctrl.buffer, port: port2 }, transferList: [port2] });
      worker.unref();
      port1.unref?.();
      this.rt.modules.forEach((bytes, i) => port1.postMessage({ bytes, names: this.moduleNames[i] }));
      this.workers.push({ worker, port: port1 });
    }
  }

  /** Runs every chunk (each a list of calls) once, on as many threads as configured. */
  run(chunks: readonly (readonly Call[])[]): void {
    const fns = this.rt.fns;
    this.resize();
    if (this.workers.length === 0 || chunks.length <= 1) {
      for (const chunk of chunks) for (const [name, ...args] of chunk) fns[name]!(...args);
      return;
    }
    // Job table in wasm memory (float64): chunk offsets, then the calls.
    let words = chunks.length + 1;
    for (const chunk of chunks) for (const call of chunk) words += call.length + 1;
    const table = this.rt.alloc(words * 8);
    try {
      const f64 = new Float64Array(this.rt.memory.buffer, table, words);
      let o = chunks.length + 1;
      chunks.forEach((chunk, c) => {
        f64[c] = o;
        for (const [name, ...args] of chunk) {
          f64[o++] = this.ids.get(name)!;
          f64[o++] = args.length;
          for (const a of args) f64[o++] = a;
        }
      });
      f64[chunks.length] = o;
      const gen = (this.gen = (this.gen + 1) | 0);
      Atomics.store(this.ctrl, TOTAL, chunks.length);
      Atomics.store(this.ctrl, ARGS, table);
      Atomics.store(this.ctrl, MODULES, this.rt.modules.length);
      Atomics.store(this.ctrl, DONE, 0);
      Atomics.store(this.ctrl, NEXT, (gen & 0xfff) << 20);
      Atomics.store(this.ctrl, GEN, gen);
      Atomics.notify(this.ctrl, GEN);
      // The calling thread works too, claiming chunks like any worker.
      for (;;) {
        const v = Atomics.load(this.ctrl, NEXT);
        const idx = v & 0xfffff;
        if (idx >= chunks.length) break;
        if (Atomics.compareExchange(this.ctrl, NEXT, v, v + 1) !== v) continue;
        for (const [name, ...args] of chunks[idx]!) fns[name]!(...args);
        Atomics.add(this.ctrl, DONE, 1);
      }
      // Chunks claimed by workers are in progress: wait for them. Spin only briefly, then
      // sleep on the counter, so that a worker starved of a core (the other core busy with
      // something else) gets this one instead of watching it spin.
      for (let spins = 0; ; spins++) {
        const done = Atomics.load(this.ctrl, DONE);
        if (done >= chunks.length) break;
        if (spins > 2000) Atomics.wait(this.ctrl, DONE, done, 1);
      }
    } finally {
      this.rt.release(table);
    }
  }
}
