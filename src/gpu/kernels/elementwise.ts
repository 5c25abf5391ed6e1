import { broadcastShapes } from '../../core/shape.js';
import type { BinaryOp, UnaryOp } from '../../kernels/elementwise.js';
import { type Arr, type GpuKernel, type KernelThis, activationConstants, cpuPlan } from './types.js';

/** Unary card (src/kernels/elementwise.ts): an activation (codes 0–8) or neg (9), abs (10), exp (11), sqrt (12). */
interface UnaryConstants {
  act: number; p1: number; p2: number;
}

export const unaryKernel = function (this: KernelThis<UnaryConstants>, x: Arr): number {
  const s = x[this.thread.x]!;
  let v = s;
  if (this.constants.act === 1) { if (s < 0) { v = 0; } }
  if (this.constants.act === 2) { if (s < 0) { v = this.constants.p1 * s; } }
  if (this.constants.act === 3) { if (s < this.constants.p1) { v = this.constants.p1; } if (s > this.constants.p2) { v = this.constants.p2; } }
  if (this.constants.act === 4) { v = 1 / (1 + Math.exp(-s)); if (s < -88.72283905206835) { v = 0; } }
  if (this.constants.act === 5) { v = this.constants.p1 * s + this.constants.p2; if (v < 0) { v = 0; } if (v > 1) { v = 1; } }
  if (this.constants.act === 6) { v = s * (Math.min(Math.max(s + 3, 0), 6) / 6); }
  if (this.constants.act === 7) { v = s / (1 + Math.exp(-s)); if (s < -88.72283905206835) { v = s * 0; } }
  if (this.constants.act === 8) { v = Math.tanh(Math.min(Math.max(s, -15), 15)); }
  if (this.constants.act === 9) { v = -s; }
  if (this.constants.act === 10) { v = Math.abs(s); }
  if (this.constants.act === 11) { v = Math.exp(s); }
  if (this.constants.act === 12) { v = Math.sqrt(s); }
  return v;
};

const MATH_CODES: Partial<Record<UnaryOp['kind'], number>> = { neg: 9, abs: 10, exp: 11, sqrt: 12 };

export const gpuUnary: GpuKernel<UnaryOp> = ([x], op) => {
  let constants: { act: number; p1: number; p2: number };
  if (op.kind === 'erf') return cpuPlan('erf has no GPU kernel');
  const code = MATH_CODES[op.kind];
  if (code !== undefined) constants = { act: code, p1: 0, p2: 0 };
  else constants = activationConstants(op as Parameters<typeof activationConstants>[0]);
  return { kind: 'programs', shape: x!.shape, programs: [{ name: 'unary', source: unaryKernel, size: x!.size, args: [0], constants }] };
};

/**
 * Binary card: numpy broadcasting over up to 6 output dims (after merging neighbours). Each
 * operand is read through per-dim strides that are 0 along its broadcast dims.
 */
interface BinaryConstants {
  op: number;
  d1: number; d2: number; d3: number; d4: number; d5: number;
  a0: number; a1: number; a2: number; a3: number; a4: number; a5: number;
  b0: number; b1: number; b2: number; b3: number; b4: number; b5: number;
}

export const binaryKernel = function (this: KernelThis<BinaryConstants>, a: Arr, b: Arr): number {
  let t = this.thread.x;
  let ia = 0;
  let ib = 0;
  let q = Math.floor(t / this.constants.d5);
  let r = t - q * this.constants.d5;
  if (r < 0) { q = q - 1; r = r + this.constants.d5; }
  if (r >= this.constants.d5) { q = q + 1; r = r - this.constants.d5; }
  ia += r * this.constants.a5; ib += r * this.constants.b5; t = q;
  q = Math.floor(t / this.constants.d4);
  r = t - q * this.constants.d4;
  if (r < 0) { q = q - 1; r = r + this.constants.d4; }
  if (r >= this.constants.d4) { q = q + 1; r = r - this.constants.d4; }
  ia += r * this.constants.a4; ib += r * this.constants.b4; t = q;
  q = Math.floor(t / this.constants.d3);
  r = t - q * this.constants.d3;
  if (r < 0) { q = q - 1; r = r + this.constants.d3; }
  if (r >= this.constants.d3) { q = q + 1; r = r - this.constants.d3; }
  ia += r * this.constants.a3; ib += r * this.constants.b3; t = q;
  q = Math.floor(t / this.constants.d2);
  r = t - q * this.constants.d2;
  if (r < 0) { q = q - 1; r = r + this.constants.d2; }
  if (r >= this.constants.d2) { q = q + 1; r = r - this.constants.d2; }
  ia += r * this.constants.a2; ib += r * this.constants.b2; t = q;
  q = Math.floor(t / this.constants.d1);
  r = t - q * this.constants.d1;
  if (r < 0) { q = q - 1; r = r + this.constants.d1; }
  if (r >= this.constants.d1) { q = q + 1; r = r - this.constants.d1; }
  ia += r * this.constants.a1 + q * this.constants.a0;
  ib += r * this.constants.b1 + q * this.constants.b0;
  const x = a[ia]!;
  const y = b[ib]!;
  let v = x + y;
  if (this.constants.op === 1) { v = x - y; }
  if (this.constants.op === 2) { v = x * y; }
  if (this.constants.op === 3) { v = x / y; }
  return v;
};

const BINARY_CODES: Partial<Record<BinaryOp, number>> = { Add: 0, Sub: 1, Mul: 2, Div: 3 };

/** The output dims (size-1 dims dropped, neighbours merged where both operands allow) and strides. */
export function broadcastPlan(out: readonly number[], shapes: readonly (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const full = shapes.map((s) => {
    const own: number[] = new Array<number>(s.length);
    let acc = 1;
    for (let i = s.length - 1; i >= 0; i--) {
      own[i] = acc;
      acc *= s[i]!;
    }
    const lead = out.length - s.length;
    return out.map((_, i) => (i < lead || s[i - lead] === 1 ? 0 : own[i - lead]!));
  });
  const dims: number[] = [];
  const strides: number[][] = shapes.map(() => []);
  out.forEach((d, i) => {
    if (d === 1) return;
    const k = dims.length - 1;
    if (k >= 0 && full.every((f, s) => strides[s]![k] === f[i]! * d)) {
      dims[k]! *= d;
      full.forEach((f, s) => (strides[s]![k] = f[i]!));
    } else {
      dims.push(d);
      full.forEach((f, s) => strides[s]!.push(f[i]!));
    }
  });
  return { dims, strides };
}

export const gpuBinary: GpuKernel<BinaryOp> = ([a, b], op) => {
  const code = BINARY_CODES[op];
  if (code === undefined) return cpuPlan(`${op} has no GPU kernel (GLSL pow is undefined for negative bases)`);
  const shape = broadcastShapes(a!.shape, b!.shape, op);
  const { dims, strides } = broadcastPlan(shape, [a!.shape, b!.shape]);
  if (dims.length > 6) return cpuPlan(`${dims.length} broadcast dims (the kernel takes 6)`);
  const pad = 6 - dims.length;
  const d = [...new Array<number>(pad).fill(1), ...dims];
  const sa = [...new Array<number>(pad).fill(0), ...strides[0]!];
  const sb = [...new Array<number>(pad).fill(0), ...strides[1]!];
  const size = shape.reduce((x, y) => x * y, 1);
  return {
    kind: 'programs',
    shape,
    programs: [
      {
        name: 'binary',
        source: binaryKernel,
        size,
        args: [0, 1],
        constants: {
          op: code,
          d1: d[1]!, d2: d[2]!, d3: d[3]!, d4: d[4]!, d5: d[5]!,
          a0: sa[0]!, a1: sa[1]!, a2: sa[2]!, a3: sa[3]!, a4: sa[4]!, a5: sa[5]!,
          b0: sb[0]!, b1: sb[1]!, b2: sb[2]!, b3: sb[3]!, b4: sb[4]!, b5: sb[5]!,
        },
      },
    ],
  };
};
