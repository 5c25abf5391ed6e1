import type { Activation } from '../activation.js';
import type { ConvGeometry } from '../conv.js';
import { NO_ACTIVATION } from '../activation.js';
import { getLimits } from '../../core/limits.js';
import { scratchBytes } from './budget.js';
import { actParams, gemm, gemmTailFloats } from './conv.js';
import { type Call, chunkCount, splitRange, streamNs } from './pool.js';
import { type Runtime, constantCopy, f32Index, isConstant, placeBias, wasmActivation } from './runtime.js';

/**
 * 3×3 stride-1 convs by Winograd's F(2×2, 3×3) (see winograd_kernels.ts): per image, the input
 * planes are zero-bordered, transformed into 16 matrices V[ξ] (channels × tiles), multiplied by
 * the 16 transformed weight matrices U[ξ] (out channels × channels) on the GEMM, and the 16
 * products transformed back into 2×2 output tiles with the bias and activation. 2.25× fewer
 * multiply-adds than the direct conv, for the price of the transforms (small when the conv has
 * many channels). Accuracy: the transforms add up to 4 inputs and 9 products, but each GEMM sums
 * 4× fewer terms; against a float64 reference the error measured below the direct conv's
 * (bench/winograd.ts) and is tested to stay within 4× of it (tests/kernels/winograd.test.ts).
 * Only for loaded models' constant weights (U is computed once and kept), groups of 1,
 * dilation 1, and enough channels and tiles for the GEMMs to pay.
 */
export function winogradApplies(g: ConvGeometry, W: Float32Array): boolean {
  return (
    winogradEnabled.on &&
    g.kh === 3 && g.kw === 3 && g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 && g.group === 1 &&
    g.c >= 16 && g.m >= 16 && g.oh >= 4 && g.ow >= 4 && isConstant(W) &&
    // Its scratch holds whole transformed images; beyond this the direct conv, which works
    // through chunks of positions, is the one that fits.
    4 * scratchFloats(g, true, false) <= Math.min(256 * 2 ** 20, getLimits().maxTensorBytes)
  );
}

/** Floats of scratch for one conv, by part (see winogradConv). */
function scratchParts(g: ConvGeometry, constantW: boolean, inputThere: boolean): Record<string, number> {
  const { c, m, h, w } = g;
  const { tilesH, tilesW4, T, hp, wp } = tiling(g);
  const mPanels = Math.ceil(m / 4);
  return {
    u: constantW ? 0 : 16 * mPanels * 4 * c,
    bias: mPanels * 4,
    zero: mPanels * 4,
    input: inputThere ? 0 : c * h * w,
    pad: c * hp * wp,
    v: 16 * c * T,
    prod: 16 * m * T,
    out: m * (2 * tilesH) * (2 * tilesW4),
    tail: gemmTailFloats(c, mPanels, T),
  };
}

function scratchFloats(g: ConvGeometry, constantW: boolean, inputThere: boolean): number {
  return Object.values(scratchParts(g, constantW, inputThere)).reduce((a, n) => a + ((n + 15) & ~15), 0);
}

/** Tiles: 2×2 outputs each, rows of tilesW4 (a multiple of 4: one vector of tiles). */
function tiling(g: ConvGeometry): { tilesH: number; tilesW4: number; T: number; hp: number; wp: number } {
  const tilesH = Math.ceil(g.oh / 2);
  const tilesW4 = Math.ceil(Math.ceil(g.ow / 2) / 4) * 4;
  // The zero-bordered plane: every tile's 4×4 window, and four tiles read 12 floats.
  return { tilesH, tilesW4, T: tilesH * tilesW4, hp: 2 * tilesH + 2, wp: 2 * tilesW4 + 4 };
}

/** Settable for benchmarks and tests: off runs the same convs through im2col and the GEMM. */
export const winogradEnabled = { on: true };

/**
 * U[ξ] = (G g Gᵀ)[ξ] for every (out channel, channel), G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
 * packed as 16 GEMM A operands (4-row panels, see packA) one after the other: cached with the
 * constant weight.
 */
function transformedWeights(rt: Runtime, W: Float32Array, m: number, c: number, scratch: number): number {
  const panels = Math.ceil(m / 4);
  const per = panels * 4 * c; // floats per ξ
  return constantCopy(rt, W, `winograd:${m}:${c}`, 16 * per, scratch, (ptr) => {
    const v = rt.f32();
    const base = f32Index(ptr);
    v.fill(0, base, base + 16 * per);
    const gg = new Float64Array(12); // G·g, 4×3
    for (let o = 0; o < m; o++) {
      for (let i = 0; i < c; i++) {
        const w = (o * c + i) * 9;
        for (let col = 0; col < 3; col++) {
          const g0 = W[w + col]!;
          const g1 = W[w + 3 + col]!;
          const g2 = W[w + 6 + col]!;
          gg[col] = g0;
          gg[3 + col] = 0.5 * (g0 + g1 + g2);
          gg[6 + col] = 0.5 * (g0 - g1 + g2);
          gg[9 + col] = g2;
        }
        // Element (o, i) of panel-packed A: panel ⌊o/4⌋, k = i, row o mod 4.
        const at = base + (o >> 2) * 4 * c + 4 * i + (o & 3);
        for (let r = 0; r < 4; r++) {
          const a0 = gg[3 * r]!;
          const a1 = gg[3 * r + 1]!;
          const a2 = gg[3 * r + 2]!;
          const row = [a0, 0.5 * (a0 + a1 + a2), 0.5 * (a0 - a1 + a2), a2];
          for (let j = 0; j < 4; j++) v[at + (4 * r + j) * per] = row[j]!;
        }
      }
    }
  });
}

export function winogradConv(rt: Runtime, X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const { c, m, h, w, oh, ow } = g;
  const { tilesH, tilesW4, T, hp, wp } = tiling(g);
  const mPanels = Math.ceil(m / 4);
  const ohp = 2 * tilesH;
  const owp = 2 * tilesW4;
  const xAt = rt.addressOf(X);
  const yAt = rt.addressOf(y);
  const floats = scratchParts(g, isConstant(W), xAt >= 0);
  const at: Record<string, number> = {};
  let total = 0;
  for (const [name, n] of Object.entries(floats)) {
    at[name] = total;
    total += (n + 15) & ~15; // 64-byte aligned
  }
  const base = rt.alloc(scratchBytes(4 * total));
  try {
    for (const name of Object.keys(at)) at[name] = base + 4 * at[name]!;
    const pU = transformedWeights(rt, W, m, c, at.u!);
    const pBias = placeBias(rt, B, 0, m, mPanels * 4, at.bias!);
    const pZero = placeBias(rt, null, 0, m, mPanels * 4, at.zero!);
    const a = wasmActivation(act.kind);
    const [p1, p2] = actParams(act);
    const xi = 4 * c * T; // bytes from V[ξ] to V[ξ + 1]
    const mi = 4 * m * T;
    const chw = c * h * w;
    for (let n = 0; n < g.n; n++) {
      const src = xAt >= 0 ? xAt + 4 * n * chw : at.input!;
      if (xAt < 0) rt.f32().set(X.subarray(n * chw, (n + 1) * chw), f32Index(at.input!));
      // Zero-bordered planes and their transform, a chunk of channels per call pair.
      rt.pool.run(
        splitRange(c, chunkCount(streamNs(20 * c * T))).map(([c0, c1]): Call[] => [
          ...Array.from({ length: c1 - c0 }, (_, i): Call => ['padplane', src + 4 * (c0 + i) * h * w, h, w, at.pad! + 4 * (c0 + i) * hp * wp, wp, g.pt, g.pl, hp]),
          ['wino_in', at.pad!, wp, 4 * hp * wp, tilesH, tilesW4, at.v!, 4 * T, xi, c0, c1],
        ]),
      );
      for (let k = 0; k < 16; k++) gemm(rt, pU + k * mPanels * 16 * c, mPanels, m, c, at.v! + k * xi, T, T, at.prod! + k * mi, T, pZero, NO_ACTIVATION, at.tail!);
      // Back to 2×2 tiles: straight into y when its planes are whole tiles, else into padded
      // planes and cropped (by the same chunk, or in JS when y is a plain array).
      const yo = n * m * oh * ow;
      const direct = yAt >= 0 && ohp === oh && owp === ow;
      const pOut = direct ? yAt + 4 * yo : at.out!;
      rt.pool.run(
        splitRange(m, chunkCount(streamNs(20 * m * T))).map(([m0, m1]): Call[] => [
          [`wino_out_${a}`, at.prod!, 4 * T, mi, pOut, 4 * owp, 4 * ohp * owp, tilesH, tilesW4, pBias, m0, m1, p1, p2],
          ...(direct || yAt < 0 ? [] : Array.from({ length: m1 - m0 }, (_, i): Call => ['copy2d', pOut + 4 * (m0 + i) * ohp * owp, 4 * owp, 4, yAt + 4 * (yo + (m0 + i) * oh * ow), 4 * ow, 4, oh, ow])),
        ]),
      );
      if (yAt < 0) {
        const v = rt.f32();
        const o = f32Index(pOut);
        for (let ch = 0; ch < m; ch++) for (let r = 0; r < oh; r++) y.set(v.subarray(o + (ch * ohp + r) * owp, o + (ch * ohp + r) * owp + ow), yo + (ch * oh + r) * ow);
      }
    }
  } finally {
    rt.release(base);
  }
}
