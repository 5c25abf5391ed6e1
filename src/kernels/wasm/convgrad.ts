import type { ConvGeometry } from '../conv.js';
import { f32Array } from '../../core/dtype.js';
import { NO_ACTIVATION } from '../activation.js';
import { gemm, gemmTailFloats } from './conv.js';
import { type Runtime, f32Index, placeBias, runtime } from './runtime.js';
import { scratchBytes } from './budget.js';

/**
 * Gradients of a 1×1, stride-1, unpadded float32 conv (MobileNet's pointwise convs) on the
 * WebAssembly GEMM. Per group, the images of a chunk are put side by side (Xc: [C/g, N·P],
 * dYc: [M/g, N·P], P = H·W), so that each gradient is one GEMM however small the planes are
 * (the 2×2 planes at the end of a 64×64 MobileNet would otherwise be GEMMs with 4 columns):
 *   ∂W = dYc·Xcᵀ (K = N·P), ∂Xc = Wᵀ·dYc.
 * Float32 throughout, like the forward: each ∂W element sums N·P products, ∂X elements M/g.
 * Returns null, having done nothing, when the WebAssembly kernels are unavailable.
 */
export function wasmPointwiseGrad(
  X: Float32Array,
  W: Float32Array,
  dY: Float32Array,
  g: ConvGeometry,
  needX: boolean,
  needW: boolean,
): { gX: Float32Array | null; gW: Float32Array | null } | null {
  const rt = runtime();
  if (!rt) return null;
  const P = g.h * g.w;
  const { cg, mg } = g;
  if (P === 0 || cg === 0 || mg === 0 || g.n === 0) return null;
  const gX = needX ? f32Array(g.n * g.c * P) : null;
  const gW = needW ? f32Array(g.m * cg) : null;
  // Images per chunk: the copies and the GEMM operands stay around 32 MiB.
  const perImage = (g.c + g.m + 2 * (cg + mg)) * P;
  const imgs = Math.max(1, Math.min(g.n, Math.floor((8 << 20) / Math.max(1, perImage))));
  for (let gi = 0; gi < g.group; gi++) {
    for (let n0 = 0; n0 < g.n; n0 += imgs) {
      const cnt = Math.min(imgs, g.n - n0);
      chunk(rt, X, W, dY, g, gi, n0, cnt, gX, gW);
    }
  }
  return { gX, gW };
}

function chunk(rt: Runtime, X: Float32Array, W: Float32Array, dY: Float32Array, g: ConvGeometry, gi: number, n0: number, cnt: number, gX: Float32Array | null, gW: Float32Array | null): void {
  const P = g.h * g.w;
  const { cg, mg } = g;
  const K = cnt * P; // columns side by side
  // Planes of 64 or more take ∂X as one GEMM per image, straight from dY and into NCHW order;
  // smaller ones first put dY side by side (dYc) for one wide GEMM.
  const side = P < 64;
  const mPanelsW = Math.ceil(mg / 4); // ∂W = dYc·Xcᵀ: A = dYc (mg rows)
  const mPanelsX = Math.ceil(cg / 4); // ∂Xc = Wᵀ·dYc: A = Wᵀ (cg rows)
  const tailFloats = Math.max(gW ? gemmTailFloats(K, mPanelsW, cg) : 0, gX ? gemmTailFloats(mg, mPanelsX, side ? K : P) : 0);
  const floats = {
    dYraw: cnt * g.m * P, // dY as it comes (one set)
    xRaw: cnt * g.c * P, // X as it comes (one set); later ∂X in NCHW order on its way out
    dYc: gX && side ? mg * K : 0, // dY side by side: ∂X's B
    xT: gW ? K * cg : 0, // Xcᵀ: ∂W's B
    aW: gW ? mPanelsW * 4 * K : 0, // dYc packed
    aX: gX ? mPanelsX * 4 * mg : 0, // Wᵀ packed
    w: gX ? mg * cg : 0, // the group's weights as they are
    c: Math.max(gW ? mg * cg : 0, gX && side ? cg * K : 0), // a product
    bias: 4 * Math.max(mPanelsW, mPanelsX),
    tail: tailFloats,
  };
  let total = 0;
  const at: Record<string, number> = {};
  const base = rt.alloc(scratchBytes(4 * (Object.values(floats).reduce((a, b) => a + b, 0) + 16 * 10)));
  try {
    for (const [name, f] of Object.entries(floats)) {
      at[name] = base + 4 * total;
      total += (f + 15) & ~15; // 64-byte aligned
    }
    const pBias = placeBias(rt, null, 0, 0, floats.bias, at.bias!);
    let v = rt.f32();
    v.set(dY.subarray(n0 * g.m * P, (n0 + cnt) * g.m * P), f32Index(at.dYraw!));
    // Row r of image j's group block of dY.
    const dyRow = (j: number, r: number) => at.dYraw! + 4 * ((j * g.m + gi * mg + r) * P);
    if (floats.dYc > 0) {
      // dYc[r, j·P + q] = dY[n0 + j, gi·mg + r, q]
      for (let j = 0; j < cnt; j++) rt.call('copy2d', dyRow(j, 0), 4 * P, 4, at.dYc! + 4 * j * P, 4 * K, 4, mg, P);
    }
    if (gW) {
      // Xcᵀ[j·P + q, r] = X[n0 + j, gi·cg + r, q]
      v.set(X.subarray(n0 * g.c * P, (n0 + cnt) * g.c * P), f32Index(at.xRaw!));
      for (let j = 0; j < cnt; j++) rt.call('copy2d', at.xRaw! + 4 * (j * g.c + gi * cg) * P, 4 * P, 4, at.xT! + 4 * j * P * cg, 4, 4 * cg, cg, P);
      // A = dYc as 4-row panels (what packA writes), by the copy kernel: packA's JS loop cost
      // as much as the GEMM here.
      if (mg % 4 !== 0) rt.call('fill', at.aW! + 16 * (mPanelsW - 1) * K, 4 * K, 0);
      for (let i = 0; i < mPanelsW; i++) {
        const rows = Math.min(4, mg - 4 * i);
        if (floats.dYc > 0) rt.call('copy2d', at.dYc! + 16 * i * K, 4 * K, 4, at.aW! + 16 * i * K, 4, 16, rows, K);
        else for (let j = 0; j < cnt; j++) rt.call('copy2d', dyRow(j, 4 * i), 4 * P, 4, at.aW! + 16 * (i * K + j * P), 4, 16, rows, P);
      }
      gemm(rt, at.aW!, mPanelsW, mg, K, at.xT!, cg, cg, at.c!, cg, pBias, NO_ACTIVATION, at.tail!);
      v = rt.f32();
      const c = f32Index(at.c!);
      const wo = gi * mg * cg;
      for (let i = 0; i < mg * cg; i++) gW[wo + i] += v[c + i]!;
    }
    if (gX) {
      // A = Wᵀ: element (c, m) at W[(gi·mg + m)·cg + c], packed by the copy kernel from a copy of
      // W (packA's JS loop reads W down its columns). ∂X of image j goes to xRaw + j·cg·P.
      rt.f32().set(W.subarray(gi * mg * cg, (gi + 1) * mg * cg), f32Index(at.w!));
      if (cg % 4 !== 0) rt.call('fill', at.aX! + 16 * (mPanelsX - 1) * mg, 4 * mg, 0);
      for (let i = 0; i < mPanelsX; i++) rt.call('copy2d', at.w! + 16 * i, 4, 4 * cg, at.aX! + 16 * i * mg, 4, 16, Math.min(4, cg - 4 * i), mg);
      const pA = at.aX!;
      if (side) {
        gemm(rt, pA, mPanelsX, cg, mg, at.dYc!, K, K, at.c!, K, pBias, NO_ACTIVATION, at.tail!);
        for (let j = 0; j < cnt; j++) rt.call('copy2d', at.c! + 4 * j * P, 4 * K, 4, at.xRaw! + 4 * j * cg * P, 4 * P, 4, cg, P);
      } else {
        for (let j = 0; j < cnt; j++) gemm(rt, pA, mPanelsX, cg, mg, dyRow(j, 0), P, P, at.xRaw! + 4 * j * cg * P, P, pBias, NO_ACTIVATION, at.tail!);
      }
      v = rt.f32();
      const r0 = f32Index(at.xRaw!);
      if (g.group === 1) gX.set(v.subarray(r0, r0 + cnt * g.c * P), n0 * g.c * P);
      else for (let j = 0; j < cnt; j++) gX.set(v.subarray(r0 + j * cg * P, r0 + (j + 1) * cg * P), ((n0 + j) * g.c + gi * cg) * P);
    }
  } finally {
    rt.release(base);
  }
}
