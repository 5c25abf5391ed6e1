/**
 * Pointwise activations, shared by the elementwise card and by the fused epilogues of conv,
 * Gemm and batch norm (bias + activation applied while the output is still in cache).
 *
 * Conventions where libraries disagree, chosen here once:
 * - Leaky-ReLU slope: given explicitly; ONNX and PyTorch default to 0.01.
 * - hard-sigmoid: max(0, min(1, alpha·x + beta)). PyTorch's is alpha 1/6, beta 1/2
 *   (= relu6(x+3)/6); ONNX's HardSigmoid default is alpha 0.2, beta 0.5 — read the attributes.
 * - hard-swish: x · relu6(x + 3) / 6 (PyTorch and ONNX HardSwish agree).
 * - SiLU (swish): x · sigmoid(x).
 *
 * Special values (docs/special-values.md; every kernel path gives the same answer):
 * - sigmoid(x) is +0 below −88.72 (where e^−x overflows float32, as in PyTorch's float32
 *   kernel), so SiLU there is −0 and SiLU(−∞) = −∞ · 0 = NaN, as in PyTorch;
 * - hard-swish(x) is x · 0 below −3: −0 for finite x, NaN at −∞ (PyTorch and ONNX's
 *   x · HardSigmoid(x)); above 3 it is x itself (so +∞ stays +∞, FLT_MAX stays finite);
 * - relu, clip, hard-sigmoid keep NaN and keep −0 (x < 0 is false for both), as PyTorch does.
 */
export type Activation =
  | { readonly kind: 'none' }
  | { readonly kind: 'relu' }
  | { readonly kind: 'leaky_relu'; readonly alpha: number }
  | { readonly kind: 'clip'; readonly min: number; readonly max: number }
  | { readonly kind: 'sigmoid' }
  | { readonly kind: 'hard_sigmoid'; readonly alpha: number; readonly beta: number }
  | { readonly kind: 'hard_swish' }
  | { readonly kind: 'silu' }
  | { readonly kind: 'tanh' };

export const NO_ACTIVATION: Activation = { kind: 'none' };

/** The activation as a scalar function (used by reference kernels). */
export function activationFn(a: Activation): (x: number) => number {
  switch (a.kind) {
    case 'none':
      return (x) => x;
    case 'relu':
      return (x) => (x < 0 ? 0 : x); // NaN stays NaN, as in the fast kernel
    case 'leaky_relu': {
      const s = a.alpha;
      return (x) => (x >= 0 ? x : s * x);
    }
    case 'clip': {
      const lo = a.min;
      const hi = a.max;
      return (x) => (x < lo ? lo : x > hi ? hi : x);
    }
    case 'sigmoid':
      return sigmoid32;
    case 'hard_sigmoid': {
      const al = a.alpha;
      const be = a.beta;
      return (x) => Math.max(0, Math.min(1, al * x + be));
    }
    case 'hard_swish':
      return (x) => (x * Math.max(0, Math.min(6, x + 3))) / 6;
    case 'silu':
      return (x) => x * sigmoid32(x);
    case 'tanh':
      return Math.tanh;
  }
}

/**
 * ln of the largest float32: e^t overflows float32 above it. sigmoid(x) = 1 / (1 + e^−x) is
 * taken as +0 below −EXP_OVERFLOW_F32, where PyTorch's float32 kernel (and the WebAssembly
 * one, whose exp overflows at the same point) get 1 / ∞; the float64 formula would give a
 * denormal there instead.
 */
export const EXP_OVERFLOW_F32 = 88.72283905206835;

/** The activation's sigmoid: logistic(x), and +0 where e^−x overflows float32 (x < −88.72). */
export function sigmoid32(x: number): number {
  return x < -EXP_OVERFLOW_F32 ? 0 : logistic(x);
}

/** Numerically safe logistic function (no overflow of exp for large |x|). */
export function logistic(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * Applies `a` in place to out[start..end). The switch sits outside the loops so each loop is
 * monomorphic and tight — this runs on every output of every fused conv.
 */
export function activateInPlace(out: Float32Array, a: Activation, start = 0, end = out.length): void {
  switch (a.kind) {
    case 'none':
      return;
    case 'relu':
      for (let i = start; i < end; i++) if (out[i]! < 0) out[i] = 0; // NaN stays NaN
      return;
    case 'leaky_relu': {
      const s = a.alpha;
      for (let i = start; i < end; i++) {
        const x = out[i]!;
        if (x < 0) out[i] = s * x;
      }
      return;
    }
    case 'clip': {
      const lo = a.min;
      const hi = a.max;
      for (let i = start; i < end; i++) {
        const x = out[i]!;
        out[i] = x < lo ? lo : x > hi ? hi : x;
      }
      return;
    }
    case 'sigmoid':
      for (let i = start; i < end; i++) out[i] = sigmoid32(out[i]!);
      return;
    case 'hard_sigmoid': {
      const al = a.alpha;
      const be = a.beta;
      for (let i = start; i < end; i++) {
        const y = al * out[i]! + be;
        out[i] = y < 0 ? 0 : y > 1 ? 1 : y;
      }
      return;
    }
    case 'hard_swish':
      for (let i = start; i < end; i++) {
        const x = out[i]!;
        const r = x + 3;
        // x · 0, not 0: −0 for finite x < −3 and NaN at −∞, as x · relu6(x + 3) / 6 gives
        out[i] = r <= 0 ? x * 0 : r >= 6 ? x : (x * r) / 6;
      }
      return;
    case 'silu':
      for (let i = start; i < end; i++) {
        const x = out[i]!;
        out[i] = x * sigmoid32(x);
      }
      return;
    case 'tanh':
      for (let i = start; i < end; i++) out[i] = Math.tanh(out[i]!);
      return;
  }
}

/**
 * The derivative dy/dx of an activation at input x (y = f(x) given too, for the activations
 * whose derivative is cheaper from the output). Sub-gradients at the kinks are PyTorch's:
 * - relu: 0 at x = 0 (threshold_backward passes the gradient only where x > 0);
 * - leaky-relu: the slope at x = 0 (leaky_relu_backward: x > 0 ? 1 : slope);
 * - clip / relu6: 1 strictly inside (min, max), 0 at and beyond the bounds (hardtanh_backward;
 *   note torch.clamp's own backward passes the gradient *at* the bounds — ReLU6 is hardtanh);
 * - hard-sigmoid: alpha strictly inside 0 < alpha·x + beta < 1, else 0 (hardsigmoid_backward);
 * - hard-swish: 0 for x < −3, x/3 + 1/2 for −3 ≤ x ≤ 3, 1 above (hardswish_backward, so −1/2
 *   at x = −3 and 3/2 at x = 3, one-sided values PyTorch chose).
 */
export function activationDerivative(a: Activation): (x: number, y: number) => number {
  switch (a.kind) {
    case 'none':
      return () => 1;
    case 'relu':
      return (x) => (x > 0 ? 1 : 0);
    case 'leaky_relu': {
      const s = a.alpha;
      return (x) => (x > 0 ? 1 : s);
    }
    case 'clip': {
      const lo = a.min;
      const hi = a.max;
      return (x) => (x > lo && x < hi ? 1 : 0);
    }
    case 'sigmoid':
      return (_x, y) => y * (1 - y);
    case 'hard_sigmoid': {
      const al = a.alpha;
      const be = a.beta;
      return (x) => {
        const z = al * x + be;
        return z > 0 && z < 1 ? al : 0;
      };
    }
    case 'hard_swish':
      return (x) => (x < -3 ? 0 : x <= 3 ? x / 3 + 0.5 : 1);
    case 'silu':
      return (x) => {
        const s = logistic(x);
        return s * (1 + x * (1 - s));
      };
    case 'tanh':
      return (_x, y) => 1 - y * y;
  }
}
