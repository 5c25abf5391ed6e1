import type { Shape } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import type { Activation } from '../../kernels/activation.js';

/**
 * The gpu.js side of an op card. gpu.js reads a kernel's *source text* (Function.toString) and
 * translates it to GLSL, WGSL, WebAssembly or plain JavaScript, so every kernel here is a plain
 * `function` expression with these rules:
 * - one output element per thread: `this.thread.x` is the flat NCHW index of a 1-D output;
 * - every loop bound and size comes from `this.constants` (gpu.js silently cuts loops bounded by
 *   an argument at loopMaxIterations = 1000 — a 1152-channel 1×1 conv came out 36 % wrong);
 * - inputs are flat NCHW arrays (textures on the GL backends), read as `x[i]`;
 * - integer division is floor(a / b) corrected by one either way, because GLSL's float division
 *   of exact multiples may land just below the integer;
 * - no helper functions, closures or module constants: gpu.js sees only the function's text (a
 *   bundler may rename a top-level helper, and a minifier rewrites everything — tsup must not
 *   minify these files).
 *
 * Why beside the CPU cards and not inside them: gpu.js is an optional peer of `lightconv/gpu`.
 * The kernel sources need no import of gpu.js, but the adapter does, and keeping every gpu.js
 * concern under src/gpu keeps the main `lightconv` bundle free of it (and of GPU code it never
 * runs). Each file here is named after the card file it serves and keyed by the card.
 */

/** What a kernel sees as `this`. */
export interface KernelThis<C> {
  readonly thread: { readonly x: number };
  readonly constants: C;
}

/** A kernel argument: a flat float array (a texture on the GL backends). */
export type Arr = Float32Array;

/** The text gpu.js compiles: a plain function of flat arrays returning one number (gpu.js supplies `this`). */
export type KernelSource = (this: never, ...args: Arr[]) => number;

/** One gpu.js kernel launch. */
export interface GpuProgram {
  /** Names the kernel in the cache key and in messages. */
  readonly name: string;
  readonly source: KernelSource;
  /** Loop bounds, sizes and attributes, all numbers (gpu.js bakes them into the shader). */
  readonly constants: Readonly<Record<string, number>>;
  /** Output elements (the output is 1-D). */
  readonly size: number;
  /**
   * Kernel arguments in order: k ≥ 0 is the op's input k; −1 − j is the output of program j of
   * the same plan (for ops run as a chain of launches, such as a many-input Concat).
   */
  readonly args: readonly number[];
}

/** How the GPU backend runs one call of a card. */
export type GpuPlan =
  /** One or more launches; the last one's output, under `shape`, is the result. */
  | { readonly kind: 'programs'; readonly programs: readonly GpuProgram[]; readonly shape: Shape }
  /** The input's buffer under another shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity). */
  | { readonly kind: 'view'; readonly shape: Shape }
  /** Cannot run on the GPU; the reason is printed once per op and reason. */
  | { readonly kind: 'cpu'; readonly reason: string };

/** Plans a call: gets the inputs (shapes and dtypes; shapes already checked) and attributes. */
export type GpuKernel<A> = (inputs: readonly Tensor[], attrs: A) => GpuPlan;

export const cpuPlan = (reason: string): GpuPlan => ({ kind: 'cpu', reason });

/** Largest finite float32: GLSL has no literal for ±Infinity. */
export const F32_MAX = 3.4028234663852886e38;

/**
 * The activation as kernel constants: act (a code), p1, p2. The kernels' activation lines keep
 * the CPU kernels' special values (docs/special-values.md): relu, clip and hard-sigmoid compare
 * (`if (s < lo)`) rather than call Math.max, so NaN and −0 pass through as on the CPU; sigmoid
 * is 0 and SiLU −0 below −88.72 (float32's exp overflow); hard-swish is s · (gate / 6).
 */
export function activationConstants(a: Activation | undefined): { act: number; p1: number; p2: number } {
  const clamp = (v: number) => Math.max(-F32_MAX, Math.min(F32_MAX, v));
  switch (a?.kind ?? 'none') {
    case 'none':
      return { act: 0, p1: 0, p2: 0 };
    case 'relu':
      return { act: 1, p1: 0, p2: 0 };
    case 'leaky_relu':
      return { act: 2, p1: (a as { alpha: number }).alpha, p2: 0 };
    case 'clip': {
      const c = a as { min: number; max: number };
      return { act: 3, p1: clamp(c.min), p2: clamp(c.max) };
    }
    case 'sigmoid':
      return { act: 4, p1: 0, p2: 0 };
    case 'hard_sigmoid': {
      const h = a as { alpha: number; beta: number };
      return { act: 5, p1: h.alpha, p2: h.beta };
    }
    case 'hard_swish':
      return { act: 6, p1: 0, p2: 0 };
    case 'silu':
      return { act: 7, p1: 0, p2: 0 };
    case 'tanh':
      return { act: 8, p1: 0, p2: 0 };
  }
  return { act: 0, p1: 0, p2: 0 };
}
