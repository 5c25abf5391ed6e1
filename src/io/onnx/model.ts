import { LightconvError, OnnxError, ResourceLimitError, ShapeError, ValueError } from '../../core/errors.js';
import { fmtBytes, getLimits } from '../../core/limits.js';
import { fmtShape } from '../../core/shape.js';
import { Tensor, tidy } from '../../core/tensor.js';
import { externalReader } from './external.js';
import { OnnxGraph, type ValueInfo } from './graph.js';
import type { NodeRunner, OnnxNode } from './node.js';
import { optimizeGraph } from './optimize.js';
import { lookupOp } from './ops/index.js';
import { UnsupportedOpError } from '../../core/errors.js';
import type { ExternalReader } from './tensor_proto.js';
import { f32Index, holdConstant, releaseConstant, runtime, wasmKernelsEnabled } from '../../kernels/wasm/runtime.js';
import { disposeSymbol } from '../../core/dispose.js';
import { ThreadChoice } from '../../kernels/wasm/pool.js';
import { type KernelArena, openArena } from '../../kernels/wasm/arena.js';
import { withOutputArena } from '../../core/storage.js';
import { cpuBackend, getBackend } from '../../core/op.js';
import { isGradEnabled } from '../../core/autograd.js';
import { prepackConvWeight } from '../../kernels/wasm/conv.js';
import { prepackGemmWeight } from '../../kernels/wasm/gemm.js';
import { KernelPlan } from '../../kernels/wasm/plan.js';
import { RegionFull } from '../../kernels/wasm/runtime.js';
import { getThreads } from '../../core/threads.js';

/** An ONNX model: a file path (Node only; external data is read from beside it), or the file's bytes. */
export type ModelSource = string | Uint8Array | ArrayBuffer;

/** Options of `loadOnnx` / `loadOnnxSync`. */
export interface LoadOptions {
  /** Apply inference rewrites (BN folding, conv + activation fusion). Default true. */
  optimize?: boolean;
  /**
   * Replay recorded runs (default true): from the third run at an input shape, the model runs
   * as the list of kernel calls it recorded for that shape (see KernelPlan), which skips the
   * per-node JavaScript and hands work to the worker threads once per run. Only graphs that
   * run entirely on the WebAssembly kernels are replayed; a replay is checked against its
   * recording before it is used. Costs the run's kernel memory, kept until dispose().
   */
  replay?: boolean;
}

/** Options of `OnnxModel.run`: per-node hooks for stepping through and profiling. */
export interface RunOptions {
  /**
   * Called after every node with its outputs — for stepping through a network. The outputs
   * are the caller's to keep: with this hook, intermediates are plain arrays, not arena
   * memory that a later node would reuse (which makes the run somewhat slower).
   */
  onNode?: (node: OnnxNode, outputs: readonly Tensor[]) => void;
  /** Called after every node with the milliseconds it took (a profile; changes nothing else). */
  onNodeTime?: (node: OnnxNode, ms: number) => void;
}

/** A recorded run at one set of input shapes and thread count (see KernelPlan). */
interface ModelPlan {
  readonly kernel: KernelPlan;
  readonly inputs: readonly { readonly name: string; readonly at: number; readonly size: number }[];
  readonly outputs: readonly { readonly name: string; readonly at: number; readonly shape: readonly number[] }[];
}

/** Runs at one set of input shapes and thread count: how many, their kernel memory, the plan or why there is none. */
interface PlanState {
  runs: number;
  peakBytes: number;
  plan: ModelPlan | null;
  failed: string | null;
}

/** What a model holds in kernel memory: its plans, and its weights' packed copies (see holdConstant). */
interface Held {
  readonly states: Map<string, PlanState>;
  readonly weights: readonly Float32Array[];
}

function freeHeld(h: Held): void {
  for (const s of h.states.values()) s.plan?.kernel.dispose();
  h.states.clear();
  for (const w of h.weights) releaseConstant(w);
}

/**
 * Gives a model's kernel memory back when a model that was not disposed is garbage-collected.
 * A safety net only: the collector runs when the JavaScript heap is under pressure, not the
 * kernel memory, and its callbacks only between tasks (never inside one synchronous loop).
 */
const planRegistry = typeof FinalizationRegistry !== 'undefined' ? new FinalizationRegistry<Held>(freeHeld) : null;

/** Normal runs at a shape before one is recorded (the first packs weights and generates kernels). */
const PLAN_AFTER = 2;
/** Plans a model keeps (each holds its run's kernel memory); the oldest is dropped beyond. */
const MAX_PLANS = 4;
/** A run needing more kernel memory than this is not recorded (at large batches the per-node JavaScript is a small share anyway). */
const PLAN_MAX_BYTES = 256 * 2 ** 20;
/**
 * Ops whose kernels decide nothing from the values of float data (only from shapes and
 * constants), so a recorded run is valid for any input of the same shapes. Whether a graph's
 * ops really ran on the WebAssembly kernels is checked when a plan is made.
 */
const REPLAYABLE_OPS = new Set([
  ...['Conv', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'GlobalAveragePool', 'MaxPool', 'AveragePool', 'Pad', 'BatchNormalization'],
  ...['Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softmax'],
  ...['Flatten', 'Reshape', 'Identity', 'Squeeze', 'Unsqueeze', 'Transpose', 'Dropout', 'Shape', 'Gather', 'Concat'],
]);

interface Step {
  readonly node: OnnxNode;
  readonly run: NodeRunner;
  /** Values no later step (nor the caller) needs once this step has run. */
  readonly release: readonly string[];
}

/**
 * Reads and validates an ONNX file or buffer without compiling it (works with unsupported ops too).
 *
 * @example
 * ```ts
 * import { readOnnx } from 'lightconv/onnx';
 *
 * const graph = await readOnnx('model.onnx');
 * console.log(graph.inputs, graph.unsupported); // ops the engine lacks, if any
 * ```
 */
export async function readOnnx(source: ModelSource): Promise<OnnxGraph> {
  if (typeof source === 'string') {
    // Opened first, then checked on the descriptor: a FIFO or directory is refused without blocking,
    // and the size is checked against maxModelBytes before the buffer is made (src/io/files.ts).
    const { readRegularFile } = await import('../files.js');
    const bytes = await readRegularFile(source, { error: (m) => new OnnxError(m) });
    return OnnxGraph.decode(bytes, source, await externalReader(source));
  }
  return OnnxGraph.decode(source instanceof Uint8Array ? source : new Uint8Array(source), 'model');
}

/**
 * Loads an ONNX model from a file path or bytes, ready to run. Throws an UnsupportedOpError
 * listing every op the engine lacks, or an OnnxError naming what is malformed.
 *
 * @example
 * ```ts
 * import { Tensor } from 'lightconv';
 * import { loadOnnx } from 'lightconv/onnx';
 *
 * const model = await loadOnnx('mobilenetv3.onnx');
 * const x = Tensor.randn([1, 3, 224, 224], { seed: 0 });
 * const out = await model.run({ [model.inputs[0]!.name]: x });
 * console.log(out[model.outputs[0]!.name]!.shape); // e.g. [1, 1000]
 * model.dispose();
 * ```
 */
export async function loadOnnx(source: ModelSource, opts: LoadOptions = {}): Promise<OnnxModel> {
  return new OnnxModel(await readOnnx(source), opts);
}

/**
 * Synchronous variant for bytes already in memory (no external data).
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { Tensor } from 'lightconv';
 * import { loadOnnxSync } from 'lightconv/onnx';
 *
 * const model = loadOnnxSync(readFileSync('model.onnx'));
 * const logits = Object.values(model.runSync(Tensor.zeros([1, 3, 224, 224])))[0]!;
 * ```
 */
export function loadOnnxSync(bytes: Uint8Array | ArrayBuffer, opts: LoadOptions & { readExternal?: ExternalReader } = {}): OnnxModel {
  return new OnnxModel(OnnxGraph.decode(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), 'model', opts.readExternal), opts);
}

/**
 * A compiled ONNX graph: run it with named input tensors. It holds kernel memory (packed
 * weights, recorded runs) until `dispose()` — or `using model = …`, which disposes at the end
 * of the block; a model dropped without either frees it only once garbage-collected.
 *
 * @example
 * ```ts
 * import { Tensor } from 'lightconv';
 * import { loadOnnx } from 'lightconv/onnx';
 *
 * using model = await loadOnnx('model.onnx'); // disposed at the end of the block
 * const outputs = await model.run(Tensor.zeros([1, 3, 224, 224]), {
 *   onNode: (node, outs) => console.log(node.opType, outs[0]?.shape),
 * });
 * ```
 */
export class OnnxModel implements Disposable {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  private readonly steps: readonly Step[];
  private readonly constants: ReadonlyMap<string, Tensor>;
  /** Whether runs may be recorded and replayed (LoadOptions.replay, and only replayable ops). */
  private readonly replay: boolean;
  /** Per input shapes and thread count (see ModelPlan); oldest first. */
  private readonly planStates = new Map<string, PlanState>();
  /** The kernel memory this model holds (freed by dispose, or by planRegistry once collected). */
  private readonly held: Held;
  private isDisposed = false;

  constructor(
    readonly graph: OnnxGraph,
    opts: LoadOptions = {},
  ) {
    if (graph.unsupported.length > 0) throw new UnsupportedOpError(graph.unsupported, graph.name ? `model '${graph.name}'` : 'model');
    this.inputs = graph.inputs;
    this.outputs = graph.outputs;
    const outNames = graph.outputs.map((o) => o.name);
    const { nodes, initializers } =
      opts.optimize === false ? { nodes: [...graph.nodes], initializers: new Map(graph.initializers) } : optimizeGraph(graph.nodes, graph.initializers, outNames);
    this.constants = initializers;

    // Liveness: a value is released after its last reader runs, unless the caller gets it back.
    const lastUse = new Map<string, number>();
    nodes.forEach((n, i) => n.inputs.forEach((v) => v && lastUse.set(v, i)));
    const keep = new Set([...outNames, ...initializers.keys()]);
    const releaseAt: string[][] = nodes.map(() => []);
    for (const [v, i] of lastUse) if (!keep.has(v)) releaseAt[i]!.push(v);
    nodes.forEach((n, i) => n.outputs.forEach((v) => v && !lastUse.has(v) && !keep.has(v) && releaseAt[i]!.push(v)));

    this.steps = nodes.map((node, i) => ({ node, run: lookupOp(node.opType)!.compile(node), release: releaseAt[i]! }));
    this.replay = opts.replay !== false && nodes.every((n) => n.domain === '' && REPLAYABLE_OPS.has(n.opType));

    // The weights of a loaded model never change: fast kernels may keep them pre-packed, until
    // dispose (which frees the packed copies no other model holds). Last, once nothing else
    // here can throw, so that a model that fails to load holds nothing.
    const weights: Float32Array[] = [];
    for (const t of initializers.values()) {
      const d = t.dataSync();
      if (t.dtype === 'float32' && d instanceof Float32Array) {
        holdConstant(d);
        weights.push(d);
      }
    }
    this.held = { states: this.planStates, weights };
    planRegistry?.register(this, this.held, this);
    if (wasmKernelsEnabled()) prepack(nodes, initializers);
  }

  /** Whether dispose() was called. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /**
   * Frees the kernel memory the model holds — its recorded runs and its weights' packed
   * copies (those no other loaded model shares) — for later models to reuse. The model cannot
   * run afterwards; idempotent. Tensors it returned stay valid (they are plain arrays).
   */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    planRegistry?.unregister(this);
    freeHeld(this.held);
    this.threadChoices.clear();
  }

  /** Same as `dispose()`, for `using model = …`. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** The nodes that will run, after optimisation, in order. */
  get plan(): readonly OnnxNode[] {
    return this.steps.map((s) => s.node);
  }

  /** Runs the graph. `feeds` maps input names to tensors; a single tensor feeds a one-input model. */
  async run(feeds: Record<string, Tensor> | Tensor, opts: RunOptions = {}): Promise<Record<string, Tensor>> {
    return this.runSync(feeds, opts);
  }

  /** Synchronous `run`: same feeds, options, result and errors. Throws a LightconvError once the model is disposed. */
  runSync(feeds: Record<string, Tensor> | Tensor, opts: RunOptions = {}): Record<string, Tensor> {
    if (this.isDisposed) throw new LightconvError(`${this.graph.name ? `model '${this.graph.name}'` : 'the model'} was disposed; load it again to run it`);
    // Device tensors (the GPU backend's textures) made during the run and not returned are
    // freed when it ends, also when a node throws; on the CPU this changes nothing.
    return tidy(() => this.runSteps(feeds, opts));
  }

  private runSteps(feeds: Record<string, Tensor> | Tensor, opts: RunOptions): Record<string, Tensor> {
    const fed = this.checkFeeds(feeds);
    // Intermediates in the kernels' own memory (no copies between layers), on the CPU backend,
    // when nothing outside the run can hold on to them: no onNode hook, no tape recording.
    const recording = isGradEnabled() && [...fed.values(), ...this.constants.values()].some((t) => t.requiresGrad);
    const arena = getBackend() === cpuBackend && !opts.onNode && !recording ? openArena() : null;
    if (!arena) return this.runValues(fed, opts, null);
    const choice = this.threadChoice(fed);
    const rt = runtime()!;
    const state = this.replay && !opts.onNodeTime ? this.planState(fed) : null;
    if (state?.plan) {
      arena.close();
      const plan = state.plan;
      return choice.run(rt.pool, () => this.replayPlan(plan, fed));
    }
    if (state && !state.failed && state.runs >= PLAN_AFTER) {
      arena.close();
      const result = this.recordPlan(fed, opts, state);
      if (result) return result;
      return this.runSteps(feeds, opts); // not recorded: a normal run (state.failed or a bigger region next time)
    }
    try {
      const base = rt.resetPeak();
      const result = withOutputArena(arena, () => choice.run(rt.pool, () => this.runValues(residentFeeds(arena, fed).values, opts, arena)));
      // What the caller gets back is copied out of the arena, which is freed below.
      for (const [name, t] of Object.entries(result)) if (arena.blockOf(t.dataSync()) >= 0) result[name] = new Tensor(t.dataSync().slice(), t.shape, t.dtype);
      if (state) {
        state.runs++;
        state.peakBytes = Math.max(state.peakBytes, rt.peak - base);
      }
      return result;
    } finally {
      arena.close();
    }
  }

  /**
   * Whether runs with these feeds (their shapes, at the current thread count) replay a
   * recorded plan now (see LoadOptions.replay), and if not, why not.
   */
  replayStatus(feeds: Record<string, Tensor> | Tensor): { replaying: boolean; reason: string | null } {
    if (this.isDisposed) return { replaying: false, reason: 'the model was disposed' };
    if (!this.replay) return { replaying: false, reason: 'replay is off or the graph has ops a replay does not cover' };
    if (!openArena() || getBackend() !== cpuBackend) return { replaying: false, reason: 'not on the WebAssembly kernels of the CPU backend with shared memory' };
    const fed = this.checkFeeds(feeds);
    if ([...fed.values()].some((t) => t.dtype !== 'float32' || t.device)) return { replaying: false, reason: 'an input is not a float32 CPU tensor' };
    const state = this.planStates.get(planKey(fed));
    if (state?.plan?.kernel.valid) return { replaying: true, reason: null };
    return { replaying: false, reason: state?.failed ?? `not recorded yet (after ${PLAN_AFTER} runs at these shapes)` };
  }

  /** The plan state for these feeds at the current thread count (made on first use), or null when they cannot be replayed. */
  private planState(fed: ReadonlyMap<string, Tensor>): PlanState | null {
    for (const t of fed.values()) if (t.dtype !== 'float32' || t.device) return null;
    const key = planKey(fed);
    let state = this.planStates.get(key);
    if (state?.plan && !state.plan.kernel.valid) {
      // Packed weights it read were dropped (a weight was fine-tuned): record again.
      state.plan.kernel.dispose();
      state = undefined;
    }
    if (!state) {
      state = { runs: 0, peakBytes: 0, plan: null, failed: null };
      this.planStates.set(key, state);
      const planned = [...this.planStates.values()].filter((s) => s.plan);
      if (planned.length >= MAX_PLANS) {
        planned[0]!.plan!.kernel.dispose();
        planned[0]!.plan = null;
        planned[0]!.runs = 0;
      }
      if (this.planStates.size > 64) {
        // Many shapes: forget the oldest (its plan, if any, is one of the MAX_PLANS).
        const [oldKey, old] = this.planStates.entries().next().value!;
        old.plan?.kernel.dispose();
        this.planStates.delete(oldKey);
      }
    }
    return state;
  }

  /**
   * Runs the graph once while recording its kernel calls, then checks the plan: its memory is
   * filled with NaN (the inputs kept) and it is replayed; the outputs must equal the recorded
   * run's bit for bit, which they only do when every effect of the run was a recorded kernel
   * call. Returns the recorded run's outputs, or null when no plan was made (state says why).
   */
  private recordPlan(fed: ReadonlyMap<string, Tensor>, opts: RunOptions, state: PlanState): Record<string, Tensor> | null {
    const rt = runtime()!;
    const bytes = Math.ceil(state.peakBytes * 1.25) + 2 ** 20;
    if (bytes > PLAN_MAX_BYTES) {
      state.failed = `a run needs ${fmtBytes(bytes)} of kernel memory (plans are made up to ${fmtBytes(PLAN_MAX_BYTES)})`;
      return null;
    }
    let recorded: { plan: KernelPlan; result: { outputs: Record<string, Tensor>; plan: Omit<ModelPlan, 'kernel'> | string } };
    try {
      recorded = KernelPlan.record(rt, bytes, () => this.recordingRun(fed, opts));
    } catch (e) {
      if (!(e instanceof RegionFull)) throw e;
      state.peakBytes = 2 * bytes; // try again with more
      return null;
    }
    const { plan: kernel, result } = recorded;
    const { outputs } = result;
    const fail = (why: string) => {
      kernel.dispose();
      state.failed = why;
      return outputs;
    };
    if (typeof result.plan === 'string') return fail(result.plan);
    const plan: ModelPlan = { kernel, ...result.plan };
    if (plan.outputs.some((o) => !kernel.holds(o.at, 4 * o.shape.reduce((a, b) => a * b, 1)))) return fail('an output is not computed by the WebAssembly kernels');
    kernel.poison(plan.inputs.map((i) => [i.at, 4 * i.size] as const));
    const pool = rt.pool;
    const prev = pool.inline;
    pool.inline = true;
    let replayed: Record<string, Tensor>;
    try {
      replayed = this.replayPlan(plan, fed);
    } finally {
      pool.inline = prev;
    }
    for (const [name, t] of Object.entries(outputs)) {
      const a = new Uint32Array((t.dataSync() as Float32Array).buffer);
      const b = new Uint32Array((replayed[name]!.dataSync() as Float32Array).buffer);
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) return fail('part of a run is not a WebAssembly kernel call (its replay differed)');
    }
    state.plan = plan;
    return outputs;
  }

  /** One run with the feeds copied into the arena (so kernels read them in place), noting where inputs and outputs are. */
  private recordingRun(fed: ReadonlyMap<string, Tensor>, opts: RunOptions): { outputs: Record<string, Tensor>; plan: Omit<ModelPlan, 'kernel'> | string } {
    const rt = runtime()!;
    const arena = openArena()!;
    try {
      return withOutputArena(arena, () => {
        const { values: resident, inputs } = residentFeeds(arena, fed);
        const values = this.runValues(resident, opts, arena);
        const outputs: Record<string, Tensor> = Object.create(null);
        const places: { name: string; at: number; shape: readonly number[] }[] = [];
        let why: string | null = null;
        for (const [name, t] of Object.entries(values)) {
          const d = t.dataSync();
          if (!(d instanceof Float32Array) || t.dtype !== 'float32') why ??= `output '${name}' is not float32`;
          places.push({ name, at: d instanceof Float32Array ? rt.addressOf(d) : -1, shape: t.shape });
          outputs[name] = new Tensor(d.slice(), t.shape, t.dtype);
        }
        if (inputs.length < fed.size || inputs.some((i) => i.at < 0)) why ??= 'the inputs are not in kernel memory';
        return { outputs, plan: why ?? { inputs, outputs: places } };
      });
    } finally {
      arena.close();
    }
  }

  /** A replay: the inputs copied to where the plan reads them, its calls, the outputs copied out. */
  private replayPlan(plan: ModelPlan, fed: ReadonlyMap<string, Tensor>): Record<string, Tensor> {
    const rt = runtime()!;
    rt.pool.wake();
    for (const i of plan.inputs) rt.f32().set(fed.get(i.name)!.dataSync() as Float32Array, f32Index(i.at));
    plan.kernel.run();
    const v = rt.f32();
    const out: Record<string, Tensor> = Object.create(null);
    for (const o of plan.outputs) out[o.name] = new Tensor(v.slice(f32Index(o.at), f32Index(o.at) + o.shape.reduce((a, b) => a * b, 1)), o.shape);
    return out;
  }

  /** Per input shapes: whether runs go faster with the worker threads or without (see ThreadChoice). */
  private readonly threadChoices = new Map<string, ThreadChoice>();

  private threadChoice(fed: ReadonlyMap<string, Tensor>): ThreadChoice {
    const key = [...fed].map(([k, t]) => `${k}:${t.shape.join('x')}`).join(',');
    let c = this.threadChoices.get(key);
    if (!c) {
      if (this.threadChoices.size >= 16) this.threadChoices.clear(); // many shapes: start over
      this.threadChoices.set(key, (c = new ThreadChoice()));
    }
    return c;
  }

  private runValues(fed: ReadonlyMap<string, Tensor>, opts: RunOptions, arena: KernelArena | null): Record<string, Tensor> {
    const values = new Map<string, Tensor>(this.constants);
    for (const [name, t] of fed) values.set(name, t);
    /** Live values whose data is in the arena: name → block. */
    const inArena = new Map<string, number>();
    // The feeds' blocks belong to the caller for the whole run: a view of a feed (Identity,
    // Reshape, Flatten of the input) going dead must not free the feed under later readers.
    const pinned = new Set<number>();
    if (arena) for (const t of fed.values()) if (!t.device) pinned.add(arena.blockOf(t.dataSync()));
    for (const step of this.steps) {
      const { node } = step;
      const args = node.inputs.map((v) => {
        if (!v) return undefined;
        const t = values.get(v);
        if (!t) throw new OnnxError(`${node.label}: input '${v}' has no value (an optional graph input was not fed?)`);
        return t;
      });
      let outs: Tensor[];
      const t0 = opts.onNodeTime ? performance.now() : 0;
      try {
        outs = step.run(args);
      } catch (e) {
        throw withNode(e, node, args);
      }
      opts.onNodeTime?.(node, performance.now() - t0);
      node.outputs.forEach((v, i) => {
        if (!v) return;
        const t = outs[i];
        if (!t) throw new OnnxError(`${node.label}: produced no value for output '${v}'`);
        values.set(v, t);
        const block = arena && !t.device ? arena.blockOf(t.dataSync()) : -1;
        if (block >= 0) inArena.set(v, block);
      });
      opts.onNode?.(node, outs);
      for (const v of step.release) {
        const t = values.get(v);
        values.delete(v);
        if (!t || this.constants.has(v)) continue;
        // A device intermediate is freed as soon as nothing reads it (unless another name holds it).
        if (t.device && ![...fed.values(), ...values.values()].includes(t)) t.dispose();
        // So is an arena block, unless a live value is a view of it (Reshape, Flatten, Identity).
        const block = inArena.get(v);
        if (block === undefined) continue;
        inArena.delete(v);
        if (!pinned.has(block) && ![...inArena.values()].includes(block)) arena!.free(block);
      }
    }
    // Null prototype: an output may be named '__proto__' or 'constructor' and is still a plain entry.
    const result: Record<string, Tensor> = Object.create(null);
    for (const o of this.outputs) result[o.name] = values.get(o.name)!;
    return result;
  }

  private checkFeeds(feeds: Record<string, Tensor> | Tensor): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    if (feeds instanceof Tensor) {
      if (this.inputs.length !== 1) throw new ValueError(`the model has ${this.inputs.length} inputs (${this.inputs.map((i) => `'${i.name}'`).join(', ')}); pass them by name`);
      feeds = { [this.inputs[0]!.name]: feeds };
    }
    const declared = new Map(this.graph.inputs.map((i) => [i.name, i]));
    for (const name of Object.keys(feeds)) {
      if (!declared.has(name) && !this.graph.initializers.has(name)) {
        throw new ValueError(`unknown input '${name}'; the model's inputs are ${[...declared.keys()].map((n) => `'${n}'`).join(', ')}`);
      }
    }
    const symbols = new Map<string, number>();
    for (const info of this.graph.inputs) {
      const t = Object.hasOwn(feeds, info.name) ? feeds[info.name] : undefined;
      if (!t) throw new ValueError(`input '${info.name}' is missing`);
      if (!(t instanceof Tensor)) throw new ValueError(`input '${info.name}' is not a Tensor`);
      if (info.dtype && t.dtype !== info.dtype) throw new ValueError(`input '${info.name}' must be ${info.dtype} (ONNX ${info.elemType}), got ${t.dtype}`);
      if (info.shape) {
        const want = info.shape;
        if (want.length !== t.rank) throw new ShapeError(`input '${info.name}' must have rank ${want.length} (${fmtDecl(want)}), got ${fmtShape(t.shape)}`);
        want.forEach((d, i) => {
          const got = t.shape[i]!;
          if (typeof d === 'number' && d !== got) throw new ShapeError(`input '${info.name}' dim ${i} must be ${d} (${fmtDecl(want)}), got ${fmtShape(t.shape)}`);
          if (typeof d === 'string') {
            const seen = symbols.get(d);
            if (seen !== undefined && seen !== got) throw new ShapeError(`input '${info.name}' dim ${i} ('${d}') is ${got}, but another input set '${d}' = ${seen}`);
            symbols.set(d, got);
          }
        });
      }
      out.set(info.name, t);
    }
    for (const [name, t] of Object.entries(feeds)) if (!out.has(name)) out.set(name, t); // an initializer overridden by the caller
    return out;
  }
}

/**
 * Packs the constant Conv and Gemm weights for the WebAssembly kernels at load (and generates
 * the depthwise kernels the model needs), so the first run does not pay for it. Best effort:
 * a node whose attributes are bad is left for its own compile/run step to report.
 */
function prepack(nodes: readonly OnnxNode[], inits: ReadonlyMap<string, Tensor>): void {
  for (const n of nodes) {
    try {
      const w = n.inputs[1] ? inits.get(n.inputs[1]) : undefined;
      if (!w || w.dtype !== 'float32' || n.domain !== '') continue;
      const data = w.dataSync() as Float32Array;
      if (n.opType === 'Conv') {
        const rank = w.rank - 2;
        const ones = new Array<number>(Math.max(0, rank)).fill(1);
        prepackConvWeight(data, w.shape, n.int('group', 1), n.has('strides') ? n.ints('strides') : ones, n.has('dilations') ? n.ints('dilations') : ones);
      } else if (n.opType === 'Gemm') {
        prepackGemmWeight(data, w.shape, n.int('transB', 0) === 1);
      }
    } catch {
      // reported when the node compiles or runs
    }
  }
}

/**
 * The float32 feeds copied into the arena, so that every kernel reads them in place — and
 * the same way in every run (an op reading a plain array may take its TypeScript path).
 */
function residentFeeds(arena: KernelArena, fed: ReadonlyMap<string, Tensor>): { values: Map<string, Tensor>; inputs: { name: string; at: number; size: number }[] } {
  const values = new Map(fed);
  const inputs: { name: string; at: number; size: number }[] = [];
  for (const [name, t] of fed) {
    const data = t.dataSync();
    if (t.dtype !== 'float32' || t.device || !(data instanceof Float32Array)) continue;
    const d = arena.alloc(t.size);
    d.set(data);
    values.set(name, new Tensor(d, t.shape));
    inputs.push({ name, at: arena.addressOf(d), size: t.size });
  }
  return { values, inputs };
}

/** Plans are per input shapes and thread count (the chunking of their kernel calls depends on it). */
function planKey(fed: ReadonlyMap<string, Tensor>): string {
  return `${[...fed].map(([k, t]) => `${k}:${t.shape.join('x')}`).join(',')}|${getThreads()}`;
}

function fmtDecl(s: ReadonlyArray<number | string | null>): string {
  return `[${s.map((d) => d ?? '?').join(', ')}]`;
}

/** Prefixes a kernel's error with the node it happened in, keeping its type. */
function withNode(e: unknown, node: OnnxNode, args: ReadonlyArray<Tensor | undefined>): unknown {
  if (!(e instanceof LightconvError) || e.message.includes(`'${node.name}'`)) return e;
  const shapes = args.map((t) => (t ? fmtShape(t.shape) : '-')).join(', ');
  const msg = `${node.label} (inputs ${shapes}): ${e.message}`;
  if (e instanceof ShapeError) return new ShapeError(msg);
  if (e instanceof ValueError) return new ValueError(msg);
  if (e instanceof OnnxError) return new OnnxError(msg);
  if (e instanceof ResourceLimitError) return new ResourceLimitError(msg);
  return e;
}
