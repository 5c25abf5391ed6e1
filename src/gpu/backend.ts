import { ValueError } from '../core/errors.js';
import type { Backend, OpCard } from '../core/op.js';
import type { Shape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { isConstant } from '../kernels/wasm/runtime.js';
import { GPU_GRADS, type GradResult } from './kernels/grad.js';
import { GPU_KERNELS } from './kernels/index.js';
import type { GpuPlan, GpuProgram } from './kernels/types.js';

/**
 * The GPU backend: runs each op card's gpu.js kernel (src/gpu/kernels) through a small adapter
 * over gpu.js. Kernels are compiled once per op and shape and cached; weights are uploaded once;
 * results stay on the device (gpu.js pipeline textures) from layer to layer and are read back
 * only when asked (`dataSync()` / `await data()`); everything is freed by `dispose()`.
 *
 * The mode is always chosen explicitly, never by gpu.js's auto-selection (which prefers software
 * GL — llvmpipe, SwiftShader — that is slower than the CPU backend). A software renderer is
 * detected and reported. An op the GPU cannot run (no kernel, an attribute, a dtype, a size limit)
 * runs on the CPU instead, with one message per op and reason; `coverage()` says what ran where.
 */

/** gpu.js backends: the GL ones keep tensors in textures; webasm and cpu in typed arrays. */
export type GpuMode = 'webgl2' | 'webgl' | 'webgpu' | 'headlessgl' | 'webasm' | 'cpu';

/** The parts of gpu.js the adapter uses (gpu.js is an optional peer; its types are not needed). */
interface GpuJsTexture {
  toArray(): Float32Array | number[];
  delete(): void;
}
type DeviceValue = GpuJsTexture | Float32Array;
interface GpuJsKernel {
  (...args: DeviceValue[]): DeviceValue | Promise<DeviceValue>;
  destroy?(removeCanvasReferences?: boolean): void;
}
interface GpuJsInstance {
  createKernel(fn: unknown, settings: Record<string, unknown>): GpuJsKernel;
  destroy(): unknown;
  readonly mode?: string;
}
/** The shape of gpu.js's `GPU` class, as far as the backend uses it (pass it as `GpuOptions.GPU`). */
export interface GpuJsConstructor {
  new (settings: Record<string, unknown>): GpuJsInstance;
  readonly isWebGL2Supported?: boolean;
  readonly isWebGLSupported?: boolean;
  readonly isWebGPUSupported?: boolean;
  readonly isHeadlessGLSupported?: boolean;
  readonly isWebAssemblySupported?: boolean;
}

/** Options of `gpu`: the gpu.js mode (chosen automatically by default), the GPU class, the log. */
export interface GpuOptions {
  /**
   * The gpu.js backend. Default: webgl2 in a browser that has it, else headlessgl where it is
   * built, else webasm, else cpu — chosen here, explicitly, and reported in `info`.
   */
  mode?: GpuMode;
  /** gpu.js's GPU class, when it is not importable as 'gpu.js' (e.g. a page's global `GPU`). */
  GPU?: GpuJsConstructor;
  /** Where fallback and renderer messages go (default console.warn); each is printed once. */
  log?: (message: string) => void;
}

/** What ran where, per op (card name). */
export interface OpCoverage {
  /** Calls that ran on the GPU. */
  gpu: number;
  /** Calls that ran on the CPU, with the reasons. */
  cpu: number;
  reasons: string[];
}

/** Which gpu.js mode the backend runs on, and on what renderer. */
export interface GpuInfo {
  readonly mode: GpuMode;
  /** The GL renderer string (WEBGL_debug_renderer_info) where there is one. */
  readonly renderer: string | null;
  /** True for software renderers (SwiftShader, llvmpipe, …) and for the cpu and webasm modes. */
  readonly software: boolean;
}

/** Device memory held by the backend, for finding leaks (`GpuBackend.stats`). */
export interface GpuStats {
  /** Device buffers owned by tensors (kernel outputs, explicit uploads), not yet disposed. */
  liveBuffers: number;
  /** Constant host tensors (a loaded model's weights) uploaded once, cached until the host array dies or destroy(). */
  cachedUploads: number;
  /** Compiled gpu.js kernels in the cache. */
  kernels: number;
}

/** The backend `gpu` returns: a `Backend` that keeps tensors on the device, with its info, op coverage and memory statistics. */
export interface GpuBackend extends Backend {
  readonly info: GpuInfo;
  /** Per op (card name), how many calls ran on the GPU and how many fell back to the CPU, with the reasons. */
  coverage(): Record<string, OpCoverage>;
  /** Live device buffers, cached uploads and compiled kernels now. */
  stats(): GpuStats;
  /** A device copy of a host tensor, owned by the caller (dispose it). */
  upload(t: Tensor): Tensor;
  /** The input gradients of one call on the GPU, or undefined where the card's CPU `grad` must run (autograd calls this). */
  grad<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A, output: Tensor, gradOutput: Tensor): (Tensor | null)[] | undefined;
  /** a + b of two gradients on the device (autograd calls this where a tensor's gradients meet). */
  accumulate(a: Tensor, b: Tensor): Tensor | undefined;
  /**
   * Frees every kernel, cached upload and the gpu.js context; the backend and any tensor still on
   * it are unusable afterwards (read what you need first).
   */
  destroy(): void;
}

/** A device buffer; tensor views of one buffer (Reshape & co.) share it by reference count. */
interface Buffer {
  value: DeviceValue;
  refs: number;
  readonly size: number;
  /** Counted in liveBuffers (tensor-owned and per-call buffers; not the cached uploads of constants). */
  live: boolean;
}

/** gpu.js indexes GL textures with float32 arithmetic: flat indices must stay below 2^24. */
const MAX_ELEMENTS = 1 << 24;

const SOFTWARE_RENDERERS = /swiftshader|llvmpipe|softpipe|software|lavapipe|basic render/i;

function isTexture(v: DeviceValue): v is GpuJsTexture {
  return !(v instanceof Float32Array);
}

async function loadGpuJs(opts: GpuOptions): Promise<GpuJsConstructor> {
  if (opts.GPU) return opts.GPU;
  const global = (globalThis as { GPU?: GpuJsConstructor }).GPU;
  if (typeof global === 'function') return global;
  try {
    const mod = (await import('gpu.js')) as { GPU?: GpuJsConstructor; default?: { GPU?: GpuJsConstructor } };
    const ctor = mod.GPU ?? mod.default?.GPU;
    if (ctor) return ctor;
  } catch (e) {
    throw new ValueError(`lightconv/gpu needs the optional peer dependency gpu.js (npm install gpu.js): ${(e as Error).message}`);
  }
  throw new ValueError('lightconv/gpu: the gpu.js module has no GPU export');
}

function supported(G: GpuJsConstructor, mode: GpuMode): boolean {
  switch (mode) {
    case 'webgl2':
      return !!G.isWebGL2Supported;
    case 'webgl':
      return !!G.isWebGLSupported;
    case 'webgpu':
      return !!G.isWebGPUSupported;
    case 'headlessgl':
      return !!G.isHeadlessGLSupported;
    case 'webasm':
      return !!G.isWebAssemblySupported;
    case 'cpu':
      return true;
  }
}

/**
 * A GPU backend over gpu.js: `useBackend(await gpu())`. Throws a ValueError when gpu.js is
 * missing or the requested mode is not available here (no silent downgrade).
 *
 * @example
 * ```ts
 * import { useBackend } from 'lightconv';
 * import { gpu } from 'lightconv/gpu';
 *
 * const backend = await gpu({ mode: 'webgl2' });
 * useBackend(backend);
 * console.log(backend.info.mode, backend.info.renderer);
 * // … run models; then backend.coverage() shows which ops ran on the CPU
 * ```
 */
export async function gpu(opts: GpuOptions = {}): Promise<GpuBackend> {
  const G = await loadGpuJs(opts);
  const inBrowser = typeof document !== 'undefined';
  const mode: GpuMode =
    opts.mode ?? (inBrowser && G.isWebGL2Supported ? 'webgl2' : G.isHeadlessGLSupported ? 'headlessgl' : G.isWebAssemblySupported ? 'webasm' : 'cpu');
  if (mode === 'webgpu') {
    // gpu.js's WebGPU kernels return Promises from every call; the op interface is synchronous.
    throw new ValueError("lightconv/gpu: mode 'webgpu' is not supported yet (gpu.js WebGPU kernels are asynchronous only); use 'webgl2'");
  }
  if (!supported(G, mode)) throw new ValueError(`lightconv/gpu: gpu.js mode '${mode}' is not available here`);
  const settings: Record<string, unknown> = { mode };
  let renderer: string | null = null;
  if ((mode === 'webgl2' || mode === 'webgl') && inBrowser) {
    const canvas = document.createElement('canvas');
    const context = canvas.getContext(mode, { premultipliedAlpha: false, preserveDrawingBuffer: false }) as WebGLRenderingContext | null;
    if (!context) throw new ValueError(`lightconv/gpu: this browser gives no ${mode} context`);
    settings.canvas = canvas;
    settings.context = context;
    const ext = context.getExtension('WEBGL_debug_renderer_info');
    renderer = String(context.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : context.RENDERER));
  }
  const software = mode === 'cpu' || mode === 'webasm' || (renderer !== null && SOFTWARE_RENDERERS.test(renderer));
  return new GpuJsBackend(new G(settings), { mode, renderer, software }, opts.log ?? ((m) => console.warn(m)));
}

class GpuJsBackend implements GpuBackend {
  readonly name: string;
  private readonly kernels = new Map<string, GpuJsKernel>();
  private readonly uploads = new WeakMap<Float32Array, Buffer>();
  private readonly uploadSet = new Set<Buffer>();
  private readonly finalizer: FinalizationRegistry<Buffer>;
  private readonly said = new Set<string>();
  private readonly cover: Record<string, OpCoverage> = {};
  private live = 0;
  private destroyed = false;

  constructor(
    private readonly g: GpuJsInstance,
    readonly info: GpuInfo,
    private readonly log: (message: string) => void,
  ) {
    this.name = `gpu:${info.mode}`;
    // An implicitly uploaded host tensor that is garbage-collected takes its device copy along.
    this.finalizer = new FinalizationRegistry((b) => {
      if (this.uploadSet.delete(b)) this.free(b);
    });
    if (info.renderer) this.say(`lightconv/gpu: ${info.mode} renderer is ${info.renderer}${info.software ? ' — a software renderer, likely slower than the CPU backend' : ''}`);
    else if (info.mode === 'cpu' || info.mode === 'webasm') this.say(`lightconv/gpu: gpu.js mode '${info.mode}' runs on the CPU (for testing; the CPU backend is faster)`);
  }

  run<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A): Tensor {
    this.alive();
    const planner = GPU_KERNELS.get(card as OpCard<unknown>);
    let plan: GpuPlan;
    if (!planner) plan = { kind: 'cpu', reason: 'no gpu.js kernel' };
    else {
      const bad = inputs.find((t) => t.dtype !== 'float32');
      plan = bad ? { kind: 'cpu', reason: `${bad.dtype} input (the GPU kernels are float32; integer tensors stay on the CPU)` } : planner(inputs, attrs);
    }
    if (plan.kind === 'programs') {
      const big = Math.max(plan.programs.reduce((m, p) => Math.max(m, p.size), 0), ...inputs.map((t) => t.size));
      if (big >= MAX_ELEMENTS) plan = { kind: 'cpu', reason: `a tensor of ${big} elements (the GPU kernels index below 2^24)` };
      else if (plan.programs.some((p) => p.size === 0)) plan = { kind: 'cpu', reason: 'an empty output' };
    }
    if (plan.kind === 'cpu') return this.onCpu(card, inputs, attrs, plan.reason);
    this.count(card.name).gpu++;
    if (plan.kind === 'view') return this.viewOf(inputs[0]!, plan.shape);
    const outs = this.runPrograms(card.name, plan.programs, inputs);
    const last = outs.pop()!;
    outs.forEach((b) => this.free(b));
    return this.own(last, plan.shape);
  }

  /**
   * The backward of one call on the GPU (autograd asks here before the card's own `grad`): the
   * card's backward kernels (src/gpu/kernels/grad.ts) over inputs, output and gradient, leaving
   * the input gradients on the device; `undefined` (and one message per op and reason) where
   * the card has none or they do not take the call, and the card's CPU `grad` runs instead.
   */
  grad<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A, output: Tensor, gradOutput: Tensor): (Tensor | null)[] | undefined {
    this.alive();
    const op = `${card.name} backward`;
    const planner = GPU_GRADS.get(card as OpCard<unknown>);
    const all = [...inputs, output, gradOutput];
    // Float32 only: the tensors the launches read, and the gradients (an integer input such as
    // Reshape's shape that no launch reads has no gradient and may stay on the host).
    const bad = [inputs[0]!, output, gradOutput].find((t) => t.dtype !== 'float32');
    const p = !planner
      ? { kind: 'cpu' as const, reason: 'no gpu.js backward kernel' }
      : bad
        ? { kind: 'cpu' as const, reason: `${bad.dtype} tensors (the GPU kernels are float32)` }
        : planner(inputs, attrs, output, gradOutput);
    let reason = p.kind === 'cpu' ? p.reason : null;
    if (p.kind === 'grads') {
      const read = all.find((t, k) => t.dtype !== 'float32' && p.programs.some((q) => q.args.includes(k)));
      if (read) reason = `${read.dtype} tensors (the GPU kernels are float32)`;
    }
    if (p.kind === 'grads' && reason === null) {
      const big = Math.max(p.programs.reduce((m, q) => Math.max(m, q.size), 0), ...all.map((t) => t.size));
      if (big >= MAX_ELEMENTS) reason = `a tensor of ${big} elements (the GPU kernels index below 2^24)`;
      else if (p.programs.some((q) => q.size === 0)) reason = 'an empty tensor';
    }
    if (reason !== null || p.kind !== 'grads') {
      const c = this.count(op);
      c.cpu++;
      if (reason && !c.reasons.includes(reason)) c.reasons.push(reason);
      this.say(`lightconv/gpu: ${op} runs on the CPU: ${reason}`);
      return undefined;
    }
    this.count(op).gpu++;
    const outs = this.runPrograms(op, p.programs, all);
    const result = p.results.map((r: GradResult, k) => {
      if (!r) return null;
      if ('view' in r) return gradOutput.device ? this.viewOf(gradOutput, inputs[k]!.shape) : this.own(this.put(gradOutput.f32()), inputs[k]!.shape);
      return this.own(outs[r.program]!, inputs[k]!.shape);
    });
    outs.forEach((b) => b.refs === 0 && this.free(b)); // launches no gradient kept (intermediates)
    return result;
  }

  /** a + b of two same-shape float32 gradients (autograd, where a tensor's gradients meet), on the device. */
  accumulate(a: Tensor, b: Tensor): Tensor | undefined {
    this.alive();
    const op = 'gradient accumulation';
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.join() !== b.shape.join() || a.size === 0 || a.size >= MAX_ELEMENTS) return undefined;
    this.count(op).gpu++;
    const p: GpuProgram = { name: 'accumulate', source: accumulateKernel, constants: {}, size: a.size, args: [0, 1] };
    return this.own(this.runPrograms(op, [p], [a, b])[0]!, a.shape);
  }

  /** Launches a chain of programs (arguments: k ≥ 0 the tensor args[k], −1 − j launch j); every launch's buffer, unowned. */
  private runPrograms(op: string, programs: readonly GpuProgram[], tensors: readonly Tensor[]): Buffer[] {
    const outs: Buffer[] = [];
    const temps = new Map<Tensor, Buffer>();
    try {
      for (const p of programs) {
        const args = p.args.map((k) => (k >= 0 ? this.bufferOf(tensors[k]!, temps).value : outs[-1 - k]!.value));
        outs.push(this.launch(op, p, args));
      }
    } catch (e) {
      outs.forEach((b) => this.free(b));
      throw e;
    } finally {
      temps.forEach((b) => this.free(b));
    }
    return outs;
  }

  /** Runs the card's CPU kernel (reading device inputs back) and moves a float32 result to the device. */
  private onCpu<A>(card: OpCard<A>, inputs: readonly Tensor[], attrs: A, reason: string): Tensor {
    const c = this.count(card.name);
    c.cpu++;
    if (!c.reasons.includes(reason)) c.reasons.push(reason);
    this.say(`lightconv/gpu: ${card.name} runs on the CPU: ${reason}`);
    const out = card.cpu ? card.cpu(inputs, attrs) : card.reference(inputs, attrs);
    if (out.dtype !== 'float32' || out.size === 0 || out.size >= MAX_ELEMENTS || out.device) return out;
    return this.own(this.put(out.f32()), out.shape);
  }

  private launch(op: string, p: GpuProgram, args: DeviceValue[]): Buffer {
    const key = `${op}/${p.name}|${p.size}|${args.map((a) => (isTexture(a) ? 't' : 'a') + sizeOfValue(a)).join(',')}|${JSON.stringify(p.constants)}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = this.g.createKernel(p.source, {
        output: [p.size],
        constants: p.constants,
        pipeline: true,
        immutable: true,
        precision: 'single',
        tactic: 'precision',
        dynamicOutput: false,
        dynamicArguments: false,
      });
      this.kernels.set(key, k);
    }
    const v = k(...args);
    if (v instanceof Promise) throw new ValueError(`lightconv/gpu: kernel ${op}/${p.name} returned a Promise (asynchronous gpu.js modes are not supported)`);
    return this.track(v, p.size);
  }

  /**
   * A device buffer for `t`: its own; for a host tensor, the cached upload of a constant (a loaded
   * model's weights, marked by the ONNX loader: uploaded once, freed with the host array), or else
   * a copy for this call only (`temps`, freed after it) — host data may change between calls (a
   * parameter being trained).
   */
  private bufferOf(t: Tensor, temps: Map<Tensor, Buffer>): Buffer {
    const d = t.device;
    if (d) {
      if (d.backend !== this) throw new ValueError(`lightconv/gpu: a tensor of another backend (${d.backend.name}) was passed to ${this.name}`);
      return d.handle as Buffer;
    }
    const data = t.f32();
    if (!isConstant(data)) {
      let b = temps.get(t);
      if (!b) temps.set(t, (b = this.put(data)));
      return b;
    }
    let b = this.uploads.get(data);
    if (!b) {
      b = this.put(data);
      this.live--; // a cached upload, not a live tensor buffer
      b.live = false;
      this.uploads.set(data, b);
      this.uploadSet.add(b);
      this.finalizer.register(data, b);
    }
    return b;
  }

  /** Copies host data to a new device buffer. */
  private put(data: Float32Array): Buffer {
    if (isGl(this.info.mode)) {
      const p: GpuProgram = { name: 'upload', source: uploadKernel, constants: {}, size: data.length, args: [0] };
      return this.launch('upload', p, [data]);
    }
    return this.track(data.slice(), data.length);
  }

  private track(value: DeviceValue, size: number): Buffer {
    this.live++;
    return { value, refs: 0, size, live: true };
  }

  private own(b: Buffer, shape: Shape): Tensor {
    b.refs++;
    return new Tensor({ backend: this, handle: b }, shape, 'float32');
  }

  private free(b: Buffer): void {
    if (b.value === EMPTY) return;
    if (isTexture(b.value)) b.value.delete();
    b.value = EMPTY;
    if (b.live) this.live--;
  }

  private viewOf(t: Tensor, shape: Shape): Tensor {
    const d = t.device;
    if (d && d.backend === this) return this.own(d.handle as Buffer, shape);
    return new Tensor(t.dataSync(), shape, t.dtype);
  }

  private count(op: string): OpCoverage {
    return (this.cover[op] ??= { gpu: 0, cpu: 0, reasons: [] });
  }

  private say(message: string): void {
    if (this.said.has(message)) return;
    this.said.add(message);
    this.log(message);
  }

  private alive(): void {
    if (this.destroyed) throw new ValueError(`${this.name}: the backend was destroyed`);
  }

  // ------------------------------------------------------------------ Backend device members

  read(t: Tensor): Float32Array {
    this.alive();
    const b = t.device!.handle as Buffer;
    if (b.value === EMPTY && b.size > 0) throw new ValueError(`${this.name}: reading a freed buffer`);
    const v = b.value;
    if (!isTexture(v)) return v.slice(0, b.size);
    const a = v.toArray();
    return a instanceof Float32Array && a.length === b.size ? a : Float32Array.from(a as ArrayLike<number>).subarray(0, b.size);
  }

  dispose(t: Tensor): void {
    const b = t.device?.handle as Buffer | undefined;
    if (!b || b.refs <= 0) return;
    if (--b.refs === 0) this.free(b);
  }

  view(t: Tensor, shape: Shape): Tensor {
    return this.viewOf(t, shape);
  }

  upload(t: Tensor): Tensor {
    this.alive();
    if (t.device) throw new ValueError(`${this.name}: upload() takes a host tensor`);
    if (t.dtype !== 'float32') throw new ValueError(`${this.name}: upload() takes float32 tensors, got ${t.dtype}`);
    return this.own(this.put(t.f32()), t.shape);
  }

  // ------------------------------------------------------------------ reports and teardown

  coverage(): Record<string, OpCoverage> {
    return structuredClone(this.cover);
  }

  stats(): GpuStats {
    return { liveBuffers: this.live, cachedUploads: this.uploadSet.size, kernels: this.kernels.size };
  }

  destroy(): void {
    if (this.destroyed) return;
    for (const b of this.uploadSet) this.free(b);
    this.uploadSet.clear();
    for (const k of this.kernels.values()) k.destroy?.();
    this.kernels.clear();
    void this.g.destroy();
    this.destroyed = true;
  }
}

const EMPTY = new Float32Array(0);

function isGl(mode: GpuMode): boolean {
  return mode === 'webgl2' || mode === 'webgl' || mode === 'headlessgl';
}

function sizeOfValue(v: DeviceValue): string {
  return isTexture(v) ? String((v as unknown as { output?: number[] }).output ?? '?') : String(v.length);
}

/** The sum of two same-shape arrays (gradient accumulation). */
const accumulateKernel = function (this: { thread: { x: number } }, a: Float32Array, b: Float32Array): number {
  return a[this.thread.x]! + b[this.thread.x]!;
};

/** Copies a host array into a device buffer (a texture on the GL backends). */
const uploadKernel = function (this: { thread: { x: number } }, a: Float32Array): number {
  return a[this.thread.x]!;
};
