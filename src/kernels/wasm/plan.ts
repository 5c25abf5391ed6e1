import { disposeSymbol } from '../../core/dispose.js';
import type { Call, PlanJob } from './pool.js';
import { type Runtime, constantsEpoch, f32Index } from './runtime.js';

/**
 * A workload recorded as the WebAssembly kernel calls it made, to be replayed without the
 * JavaScript that decided them (shape checks, conv geometry, allocation, call lists): at
 * batch 1 that JavaScript was a sixth of a MobileNetV3-Small run, and all of it serial.
 *
 * Recording runs the workload once with every scratch and arena allocation served from a
 * region of kernel memory that the plan then keeps, so the addresses in the calls stay valid
 * and the plan's own. Each job of the pool becomes a phase; consecutive single-chunk phases
 * merge. A replay runs the phases in order — with workers as a single job whose chunks wait
 * for the phases before them — so a run costs one hand-off instead of one per kernel call.
 *
 * What a plan cannot see is any memory effect made in JavaScript (a TypeScript kernel, a
 * copy). The caller therefore checks a new plan before using it (see OnnxModel): it fills the
 * region with NaN, replays, and compares the outputs with the recording run's, bit for bit.
 */
export class KernelPlan {
  private constructor(
    private readonly rt: Runtime,
    /** Byte address and size of the region. */
    readonly base: number,
    readonly bytes: number,
    private readonly job: PlanJob,
    private readonly epoch: number,
  ) {}

  /**
   * Runs fn (one run of the workload) with allocations from a new region of `bytes` and
   * returns the plan of its kernel calls with fn's result. Throws RegionFull when the region
   * is too small, or what fn throws; the region is then released.
   */
  static record<T>(rt: Runtime, bytes: number, fn: () => T): { plan: KernelPlan; result: T } {
    const pool = rt.pool;
    const base = rt.alloc(bytes, true);
    const phases: Call[][][] = [];
    const prev = pool.inline;
    pool.recording = phases;
    pool.inline = false; // the chunking of the threaded runs; a run alone takes the chunks in order
    try {
      const result = rt.withRegion(base, bytes, fn);
      return { plan: new KernelPlan(rt, base, bytes, buildJob(rt, phases), constantsEpoch), result };
    } catch (e) {
      rt.release(base);
      throw e;
    } finally {
      pool.recording = null;
      pool.inline = prev;
    }
  }

  private disposed = false;

  /** Whether the plan can run: not disposed, and the packed constants its calls read are still there (see forgetConstant). */
  get valid(): boolean {
    return !this.disposed && this.epoch === constantsEpoch;
  }

  /** Replays the calls (on the workers too, unless the pool runs inline). */
  run(): void {
    this.rt.pool.runPlan(this.job);
  }

  /** Number of chunks a replay hands out (for tests). */
  get chunkCount(): number {
    return this.job.chunks.length;
  }

  /** Fills the region with NaN, except the byte ranges `keep` (the inputs). */
  poison(keep: readonly (readonly [number, number])[]): void {
    const v = this.rt.f32();
    let at = this.base;
    for (const [start, len] of [...keep].sort((a, b) => a[0] - b[0])) {
      if (start > at) v.fill(NaN, f32Index(at), f32Index(start));
      at = Math.max(at, start + len);
    }
    if (at < this.base + this.bytes) v.fill(NaN, f32Index(at), f32Index(this.base + this.bytes));
  }

  /** Whether [addr, addr + bytes) lies inside the region. */
  holds(addr: number, bytes: number): boolean {
    return addr >= this.base && addr + bytes <= this.base + this.bytes;
  }

  /** Gives the region and the job table back to the kernel memory (later plans and runs reuse it). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.rt.release(this.base);
    this.rt.release(this.job.table);
  }

  [disposeSymbol](): void {
    this.dispose();
  }
}

type Bound = readonly [(...a: number[]) => void, readonly number[]];

/** The pool's form of the recorded phases: bound calls, chunks with their barriers, and the job table. */
function buildJob(rt: Runtime, phases: readonly Call[][][]): PlanJob {
  // Consecutive single-chunk phases (serial calls) become one chunk.
  const merged: Call[][][] = [];
  for (const p of phases) {
    if (p.length === 0) continue;
    const last = merged[merged.length - 1];
    if (p.length === 1 && last?.length === 1) last[0]!.push(...p[0]!);
    else merged.push(p.map((c) => [...c]));
  }
  const bind = (c: Call): Bound => [rt.fns[c[0]]!, c.slice(1) as number[]];
  const chunks: { after: number; calls: Bound[] }[] = [];
  for (const phase of merged) {
    const after = chunks.length;
    for (const chunk of phase) chunks.push({ after, calls: chunk.map(bind) });
  }
  const table = rt.pool.writeTable(merged.flat(), chunks.map((c) => c.after), true);
  return { calls: chunks.flatMap((c) => c.calls), chunks, table };
}
