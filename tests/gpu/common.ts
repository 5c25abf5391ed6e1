import { GPU } from 'gpu.js';
import type { GpuMode } from '../../src/gpu.js';
import type { Activation } from '../../src/kernels/activation.js';
import type { ConvAttrs } from '../../src/kernels/conv.js';

/**
 * Tolerance of a GPU kernel against the CPU: float32 sums in another order than the float64
 * loops, so atol grows with the longest reduction of the case (k), scaled to max|y| by expectClose.
 */
export const tol = (k = 1) => ({ atol: 2e-6 * Math.max(4, Math.sqrt(k) * 4), rtol: 1e-4 });

/** headlessgl joins where the optional native `gl` package is built (not by the default install). */
export const MODES: GpuMode[] = ['cpu', 'webasm', ...(GPU.isHeadlessGLSupported ? (['headlessgl'] as const) : [])];

export const convAttrs = (strides: number[], pads: number[], dilations: number[], group: number, activation: Activation = { kind: 'none' }): ConvAttrs => ({
  strides,
  pads,
  dilations,
  group,
  activation,
});
