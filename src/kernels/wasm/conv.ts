import { type Activation, activateInPlace } from '../activation.js';
import { type ConvGeometry, im2col } from '../conv.js';
import { type Call, chunkCount, depthwiseNs, gemmNs, splitRange, streamNs } from './pool.js';
import { type WasmActivation, depthwiseName, splitPlaneFloats } from './kernels.js';
import { type Runtime, f32Index, gemmSuffix, isConstant, packA, placeBias, placeConstant, runtime, wasmActivation } from './runtime.js';
import { scratchBytes } from './budget.js';
import { winogradApplies, winogradConv } from './winograd.js';

/**
 * Conv on the WebAssembly SIMD kernels: 1×1 and im2col convs as GEMMs, depthwise convs
 * directly. Inputs and outputs that live in wasm memory (the graph runner's arena) are used in
 * place; others are copied in and out. The weights of loaded models are packed once and stay
 * there (see markConstant).
 */


/** The f32 parameters the kernels' epilogue takes for an activation. */
export function actParams(act: Activation): [number, number] {
  switch (act.kind) {
    case 'leaky_relu':
      return [act.alpha, 0];
    case 'clip':
      return [act.min, act.max];
    case 'hard_sigmoid':
      return [act.alpha, act.beta];
    default:
      return [0, 0];
  }
}

/**
 * Runs the conv on the WebAssembly kernels and returns true, or returns false (having done
 * nothing) when these kernels do not cover it.
 */
export function wasmConv(X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): boolean {
  const rt = runtime();
  if (!rt) return false;
  const k = g.cg * g.kh * g.kw;
  if (k === 0 || g.n * g.m * g.oh * g.ow === 0) return false;
  if (g.group === g.c && g.m === g.c && g.cg === 1) {
    if ((g.sw !== 1 && g.sw !== 2) || g.kh * g.kw > 49) return false;
    depthwise(rt, X, W, B, y, g, act);
  } else if (g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.pt + g.pl + g.pb + g.pr === 0) {
    pointwise(rt, X, W, B, y, g, act);
  } else if (winogradApplies(g, W)) {
    winogradConv(rt, X, W, B, y, g, act);
  } else {
    im2colGemm(rt, X, W, B, y, g, act);
  }
  const a = wasmActivation(act.kind);
  if (a === 'none' && act.kind !== 'none') activateInPlace(y, act); // sigmoid, SiLU, tanh: exp lives in JS
  return true;
}

/** Floats of scratch `gemm` needs for its leftovers (K = k, mPanels A panels, N = n). */
export function gemmTailFloats(k: number, mPanels: number, n: number): number {
  return 8 * k + 32 * mPanels + 4 * n + 16;
}

/**
 * C = act(bias + A·B) for the first m rows of C: A packed at pA (mPanels 4-row panels), B the
 * k×n row-major matrix at pB (rows ldb floats apart), read in place; C row-major at pC (rows
 * ldc floats apart), written in place for its first 8·⌊n/8⌋ columns and whole 4-row panels.
 * The rest goes through `tail` (gemmTailFloats floats of scratch): the last n mod 8 columns
 * are copied into a zero-padded 8-wide panel, and the rows of a partial last panel are
 * computed there; both are copied out after, so nothing outside C's m×n elements is ever
 * written. All of it runs as one job of the pool (the leftovers as chunks of their own).
 */
export function gemm(rt: Runtime, pA: number, mPanels: number, m: number, k: number, pB: number, ldb: number, n: number, pC: number, ldc: number, pBias: number, act: Activation, tail: number): void {
  // Rows a multiple of 1 KiB apart map to a few L1 sets, and a B panel of many rows then
  // evicts itself (a 512×512×1024 GEMM ran at 20 instead of 31 GFLOP/s): copy B to rows of
  // another length first (one pass, small next to the GEMM).
  if (ldb % 256 === 0 && k > 32 && n >= 8) {
    const ld = n + 8;
    const copy = rt.alloc(scratchBytes(4 * k * ld + 64));
    try {
      rt.call('copy2d', pB, 4 * ldb, 4, copy, 4 * ld, 4, k, n);
      gemm(rt, pA, mPanels, m, k, copy, ld, n, pC, ldc, pBias, act, tail);
    } finally {
      rt.release(copy);
    }
    return;
  }
  const n8 = n >> 3;
  const rest = n - 8 * n8;
  const a = wasmActivation(act.kind);
  const [p1, p2] = actParams(act);
  const gemm8 = `gemm8_${a}${gemmSuffix()}`;
  const full = Math.min(mPanels, Math.floor(m / 4)); // A panels whose 4 rows C has
  const partial = full < mPanels && n8 > 0;
  const pRest = tail + 32 * k; // rest columns' tile: mPanels·4 rows of 8
  const pPart = pRest + 128 * mPanels; // the partial panel's rows: 4 rows of 8·n8
  const calls: Call[][] = [];
  let pack = 0;
  if (n8 > 0 && full > 0) {
    // Chunks: a grid of (A panel range × B panel range), B ranges first (each A panel range
    // then streams its B columns once).
    const want = chunkCount(gemmNs(mPanels * 4 * k * n));
    const jChunks = Math.min(n8, want);
    const iChunks = Math.min(full, Math.max(1, Math.ceil(want / jChunks)));
    // B panels whose rows lie far apart are copied together before use (a buffer per chunk).
    const packBytes = 32 * Math.min(k, gemmBlocking.kc);
    if (gemmBlocking.pack && 4 * ldb >= gemmBlocking.packRowBytes && k >= 16 && full >= 2) pack = rt.alloc(scratchBytes(iChunks * jChunks * packBytes));
    for (let ic = 0; ic < iChunks; ic++) {
      const i0 = Math.floor((ic * full) / iChunks);
      const i1 = Math.floor(((ic + 1) * full) / iChunks);
      if (i1 <= i0) continue;
      for (let jc = 0; jc < jChunks; jc++) {
        const j0 = Math.floor((jc * n8) / jChunks);
        const j1 = Math.floor(((jc + 1) * n8) / jChunks);
        if (j1 > j0) calls.push(blockedGemm8(a, pA, pB, pC, pBias, i0, i1, k, j0, j1, ldc, ldb, pack && pack + calls.length * packBytes, p1, p2));
      }
    }
  }
  // The leftovers, each a chunk that copies its operand into scratch, multiplies, and copies
  // its part of C out (parts no other chunk writes). Up to 3 leftover columns: one
  // matrix-vector product each (gemv sums every output as gemm8 does, so a column's bits do
  // not depend on where it falls); more: a zero-padded 8-wide panel.
  if (rest > 0) {
    const pRestB = pB + 32 * n8;
    const pRestC = pC + 32 * n8;
    if (rest <= 3) {
      // A lone column of unit stride (a 1×1 conv of a 1×1 plane: the SE gates) is read in
      // place, its panels split between chunks; other columns are copied, one chunk each.
      const inPlace = n === 1 && ldb === 1;
      const parts: [number, number][] = inPlace ? splitRange(mPanels, chunkCount(gemmNs(mPanels * 4 * k))) : [[0, mPanels]];
      for (let q = 0; q < rest; q++) {
        const col = inPlace ? pRestB : tail + 4 * q * k;
        const out = pRest + 16 * q * mPanels;
        for (const [i0, i1] of parts) {
          calls.push([
            ...(inPlace ? [] : [['copy2d', pRestB + 4 * q, 4 * ldb, 4, col, 4, 4, k, 1] as const]),
            [`gemv_${a}${gemmSuffix()}`, pA + i0 * k * 16, col, out + 16 * i0, pBias + 16 * i0, i1 - i0, k, p1, p2],
            ['copy2d', out + 16 * i0, 4, 4, pRestC + 4 * q + 16 * i0 * ldc, 4 * ldc, 4, Math.min(m, 4 * i1) - 4 * i0, 1],
          ]);
        }
      }
    } else {
      calls.push([
        ['fill', tail, 8 * k, 0],
        ['copy2d', pRestB, 4 * ldb, 4, tail, 32, 4, k, rest],
        [gemm8, pA, tail, pRest, pBias, mPanels, k, 0, 1, 32, 32, 32, 16 * k, 0, 0, p1, p2],
        ['copy2d', pRest, 32, 4, pRestC, 4 * ldc, 4, m, rest],
      ]);
    }
  }
  if (partial) {
    calls.push([
      [gemm8, pA + full * k * 16, pB, pPart, pBias + full * 16, 1, k, 0, n8, 32 * n8, 4 * ldb, 32, 16 * k, 0, 0, p1, p2],
      ['copy2d', pPart, 32 * n8, 4, pC + 16 * full * ldc, 4 * ldc, 4, m - 4 * full, 8 * n8],
    ]);
  }
  try {
    rt.pool.run(calls);
  } finally {
    if (pack) rt.release(pack);
  }
}

/**
 * Cache blocking of the GEMM's main part (Goto's scheme on gemm8's tiles): K in blocks of at
 * most `kc` (a B panel block, kc·32 bytes, stays in L1 while the A panels stream past it), A
 * panels in groups of `mcPanels` (an A block, mcPanels·16·kc bytes, stays in L2 while every B
 * panel streams past it). Without it a long K (3×3 convs of 256+ channels, ConvNeXt's MLPs, a
 * training step's ∂W over every position) streamed all of A from memory once per 8 columns.
 * The bits do not depend on it (see gemmKernel). Settable for benchmarks and tests.
 */
export const gemmBlocking = { kc: 384, mcPanels: 32, pack: true, packRowBytes: 2048 };

/**
 * The calls of one chunk of `gemm`'s main part: A panels [i0, i1), B panels [j0, j1), K in
 * blocks (the first starts at the bias, later ones add to C; the activation runs on the last).
 */
function blockedGemm8(act: WasmActivation, pA: number, pB: number, pC: number, pBias: number, i0: number, i1: number, k: number, j0: number, j1: number, ldc: number, ldb: number, pack: number, p1: number, p2: number): Call[] {
  const suffix = gemmSuffix();
  const kBlocks = k > gemmBlocking.kc ? Math.ceil(k / gemmBlocking.kc) : 1;
  const mcPanels = kBlocks > 1 || (i1 - i0) * 16 * k > gemmBlocking.mcPanels * 16 * gemmBlocking.kc ? gemmBlocking.mcPanels : i1 - i0;
  const calls: Call[] = [];
  for (let m0 = i0; m0 < i1; m0 += mcPanels) {
    const m1 = Math.min(i1, m0 + mcPanels);
    for (let b = 0; b < kBlocks; b++) {
      // Even blocks: K = 400 is 200 + 200, not 384 + 16.
      const k0 = Math.floor((b * k) / kBlocks);
      const k1 = Math.floor(((b + 1) * k) / kBlocks);
      const last = b === kBlocks - 1;
      calls.push([`gemm8_${last ? act : 'none'}${suffix}`, pA + m0 * k * 16 + k0 * 16, pB + k0 * 4 * ldb, pC + m0 * 16 * ldc, pBias + m0 * 16, m1 - m0, k1 - k0, j0, j1, 4 * ldc, 4 * ldb, 32, 16 * k, b > 0 ? 1 : 0, pack, p1, p2]);
    }
  }
  return calls;
}

/** Column block of a copied 1×1 conv: B (k × nb) and C (m × nb) about 256 KiB each at most. */
function columnBlock(k: number, m: number): number {
  return Math.max(64, Math.floor(Math.min(1 << 16, (1 << 16) / Math.max(1, m), (1 << 16) / k) / 8) * 8);
}

/**
 * 1×1 stride-1 unpadded conv: per image and group, Y = W·X with X as the K×HW matrix B. Input
 * and output are used in place when they live in wasm memory (the graph runner's arena);
 * otherwise columns are copied in and out in blocks small enough that the block of C is still
 * in L2 when it is copied out. Planes smaller than 32 (the SE convs, HW = 1) put the images of
 * a batch side by side, so one GEMM of N = images·HW streams the weights once instead of once
 * per image.
 */
function pointwise(rt: Runtime, X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const hw = g.h * g.w;
  const k = g.cg;
  const mg = g.mg;
  const mPanels = Math.ceil(mg / 4);
  const side = g.n > 1 && hw < 32 ? Math.min(g.n, Math.max(1, Math.floor(256 / hw))) : 1; // images per GEMM
  const xAt = rt.addressOf(X);
  const yAt = rt.addressOf(y);
  const inPlace = side === 1 && xAt >= 0 && yAt >= 0;
  const nb = inPlace ? hw : side > 1 ? side * hw : Math.min(hw, columnBlock(k, mPanels * 4));
  const bytes = 4 * (mPanels * 4 * k + mPanels * 4 + gemmTailFloats(k, mPanels, nb) + (xAt >= 0 && side === 1 ? 0 : k * nb) + (yAt >= 0 && side === 1 ? 0 : mPanels * 4 * nb));
  const base = rt.alloc(scratchBytes(bytes));
  try {
    const pAscratch = base;
    const pBiasScratch = pAscratch + mPanels * 16 * k;
    const pTail = pBiasScratch + mPanels * 16;
    const pBs = pTail + 4 * gemmTailFloats(k, mPanels, nb);
    const pCs = pBs + (xAt >= 0 && side === 1 ? 0 : 4 * k * nb);
    for (let gi = 0; gi < g.group; gi++) {
      const pA = packA(rt, W, gi * mg * k, mg, k, pAscratch);
      const pBias = placeBias(rt, B, gi * mg, mg, mPanels * 4, pBiasScratch);
      if (side > 1) {
        // Images n0 … n0 + cnt − 1 side by side: B[r, j·hw + q] = X[n0 + j, gi·k + r, q].
        for (let n0 = 0; n0 < g.n; n0 += side) {
          const cnt = Math.min(side, g.n - n0);
          const ld = cnt * hw;
          const xo = (j: number) => ((n0 + j) * g.c + gi * k) * hw;
          if (xAt >= 0) rt.pool.run([Array.from({ length: cnt }, (_, j): Call => ['copy2d', xAt + 4 * xo(j), 4 * hw, 4, pBs + 4 * j * hw, 4 * ld, 4, k, hw])]);
          else {
            const v = rt.f32();
            for (let r = 0; r < k; r++) for (let j = 0; j < cnt; j++) v.set(X.subarray(xo(j) + r * hw, xo(j) + (r + 1) * hw), f32Index(pBs) + r * ld + j * hw);
          }
          gemm(rt, pA, mPanels, mg, k, pBs, ld, ld, pCs, ld, pBias, act, pTail);
          const yo = (j: number) => ((n0 + j) * g.m + gi * mg) * hw;
          if (yAt >= 0) rt.pool.run([Array.from({ length: cnt }, (_, j): Call => ['copy2d', pCs + 4 * j * hw, 4 * ld, 4, yAt + 4 * yo(j), 4 * hw, 4, mg, hw])]);
          else {
            const w = rt.f32();
            for (let j = 0; j < cnt; j++) for (let r = 0; r < mg; r++) y.set(w.subarray(f32Index(pCs) + r * ld + j * hw, f32Index(pCs) + r * ld + (j + 1) * hw), yo(j) + r * hw);
          }
        }
        continue;
      }
      for (let n = 0; n < g.n; n++) {
        const xo = (n * g.c + gi * k) * hw;
        const yo = (n * g.m + gi * mg) * hw;
        for (let p0 = 0; p0 < hw; p0 += nb) {
          const cols = Math.min(nb, hw - p0);
          let pB: number;
          let ldb: number;
          if (xAt >= 0) [pB, ldb] = [xAt + 4 * (xo + p0), hw];
          else {
            const v = rt.f32();
            if (cols === hw) v.set(X.subarray(xo, xo + k * hw), f32Index(pBs));
            else for (let r = 0; r < k; r++) v.set(X.subarray(xo + r * hw + p0, xo + r * hw + p0 + cols), f32Index(pBs) + r * cols);
            [pB, ldb] = [pBs, cols];
          }
          if (yAt >= 0) gemm(rt, pA, mPanels, mg, k, pB, ldb, cols, yAt + 4 * (yo + p0), hw, pBias, act, pTail);
          else {
            gemm(rt, pA, mPanels, mg, k, pB, ldb, cols, pCs, cols, pBias, act, pTail);
            const w = rt.f32();
            const c = f32Index(pCs);
            if (cols === hw) y.set(w.subarray(c, c + mg * hw), yo);
            else for (let r = 0; r < mg; r++) y.set(w.subarray(c + r * cols, c + (r + 1) * cols), yo + r * hw + p0);
          }
        }
      }
    }
  } finally {
    rt.release(base);
  }
}

/** Positions per im2col chunk: the column matrix stays under ~4 MiB. */
const COL_FLOATS = 1 << 20;

/**
 * General conv: im2col and the GEMM, per chunk of output positions. For strides 1 and 2 the
 * image is copied into zero-bordered planes in wasm memory (from where it is, when it lives
 * there already) and the columns are gathered by the SIMD im2col kernel (in plain JS the
 * gather cost as much as the GEMM); other strides gather in JS. The GEMM writes the output in
 * place when it lives in wasm memory.
 */
function im2colGemm(rt: Runtime, X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const k = g.cg * g.kh * g.kw;
  const positions = g.oh * g.ow;
  const simd = g.sw === 1 || g.sw === 2;
  const rowsPerChunk = Math.max(1, Math.min(g.oh, Math.floor(COL_FLOATS / (k * g.ow))));
  const chunk = simd ? rowsPerChunk * g.ow : Math.max(8, Math.min((positions + 7) & ~7, Math.floor(COL_FLOATS / k / 8) * 8));
  // Column rows at least 3 floats longer than a chunk's columns: the SIMD gather's last vector
  // of a row may write 3 floats past it, and rows are gathered by different threads.
  const ldOf = (cols: number) => (cols + 6) & ~3;
  const ldMax = ldOf(chunk);
  const mPanels = Math.ceil(g.mg / 4);
  const wp = g.w + g.pl + g.pr;
  const hp = g.h + g.pt + g.pb;
  const xAt = rt.addressOf(X);
  const yAt = rt.addressOf(y);
  const imageFloats = simd ? (xAt >= 0 ? 0 : g.c * g.h * g.w) + g.c * hp * wp + 64 : 0;
  const bytes = 4 * (mPanels * 4 * k + mPanels * 4 + gemmTailFloats(k, mPanels, ldMax) + k * ldMax + 16 + (yAt >= 0 ? 0 : mPanels * 4 * ldMax) + imageFloats);
  const base = rt.alloc(scratchBytes(bytes));
  try {
    const pAscratch = base;
    const pBiasScratch = pAscratch + mPanels * 16 * k;
    const pTail = pBiasScratch + mPanels * 16;
    const pCol = pTail + 4 * gemmTailFloats(k, mPanels, ldMax);
    const pC = pCol + (k * ldMax + 16) * 4;
    const pIn = pC + (yAt >= 0 ? 0 : mPanels * 16 * ldMax);
    const pPad = pIn + (xAt >= 0 ? 0 : g.c * g.h * g.w * 4);
    if (simd) rt.call('fill', pPad + 4 * g.c * hp * wp, 64, 0);
    const chw = g.c * g.h * g.w;
    for (let n = 0; n < g.n; n++) {
      if (simd) {
        const src = xAt >= 0 ? xAt + 4 * n * chw : pIn;
        if (xAt < 0) rt.f32().set(X.subarray(n * chw, (n + 1) * chw), f32Index(pIn));
        const pads = splitRange(g.c, chunkCount(streamNs(2 * g.c * hp * wp))).map(([c0, c1]) =>
          Array.from({ length: c1 - c0 }, (_, i): Call => ['padplane', src + (c0 + i) * g.h * g.w * 4, g.h, g.w, pPad + (c0 + i) * hp * wp * 4, wp, g.pt, g.pl, hp]),
        );
        rt.pool.run(pads);
      }
      for (let gi = 0; gi < g.group; gi++) {
        const pA = packA(rt, W, gi * g.mg * k, g.mg, k, pAscratch);
        const pBias = placeBias(rt, B, gi * g.mg, g.mg, mPanels * 4, pBiasScratch);
        const xo = (n * g.c + gi * g.cg) * g.h * g.w;
        const yo = (n * g.m + gi * g.mg) * positions;
        for (let p0 = 0; p0 < positions; p0 += chunk) {
          const cols = Math.min(chunk, positions - p0);
          const ld = ldOf(cols);
          if (simd) {
            // One call per (input channel, kernel row): kw rows of the column matrix each.
            const oy0 = p0 / g.ow;
            const plane0 = pPad + gi * g.cg * hp * wp * 4;
            const gather = splitRange(g.cg * g.kh, chunkCount(streamNs(2 * k * cols))).map(([u0, u1]) =>
              Array.from({ length: u1 - u0 }, (_, i): Call => {
                const [ci, ky] = [Math.floor((u0 + i) / g.kh), (u0 + i) % g.kh];
                return [`im2col_s${g.sw}`, plane0 + (ci * hp * wp + ky * g.dh * wp) * 4, wp, hp * wp * 4, 1, 1, g.kw, g.dh, g.dw, g.sh, oy0, oy0 + cols / g.ow, g.ow, pCol + 4 * ld * (u0 + i) * g.kw, ld];
              }),
            );
            rt.pool.run(gather);
          } else im2col(X, xo, g, p0, cols, rt.f32(), f32Index(pCol), ld);
          if (yAt >= 0) gemm(rt, pA, mPanels, g.mg, k, pCol, ld, cols, yAt + 4 * (yo + p0), positions, pBias, act, pTail);
          else {
            gemm(rt, pA, mPanels, g.mg, k, pCol, ld, cols, pC, ld, pBias, act, pTail);
            // Output rows of this chunk: y[(n·m + gi·mg + i)·positions + p0 …].
            const v = rt.f32();
            const c = f32Index(pC);
            for (let i = 0; i < g.mg; i++) y.set(v.subarray(c + i * ld, c + i * ld + cols), yo + p0 + i * positions);
          }
        }
      }
    }
  } finally {
    rt.release(base);
  }
}

/**
 * Depthwise conv: per image, chunks of channels, each one call that pads every channel of the
 * chunk into the chunk's own zero-bordered plane (hot in cache) and runs the generated kernel
 * on it; with threads, the chunks are handed out by the pool. Input and output are used in
 * place when they live in wasm memory.
 */
function depthwise(rt: Runtime, X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const { c, h, w, kh, kw, pt, pl, oh, ow } = g;
  const taps = kh * kw;
  const wp = w + pl + g.pr;
  const hp = h + pt + g.pb;
  const a = wasmActivation(act.kind);
  const [p1, p2] = actParams(act);
  // Sigmoid and SiLU run as a separate pass over each chunk's outputs (in cache), eight
  // vectors at a time.
  const pass = a === 'sigmoid' || a === 'silu' ? `act_${a}` : null;
  const spec = { kh, kw, sh: g.sh, sw: g.sw, dh: g.dh, dw: g.dw, act: pass ? ('none' as const) : a };
  rt.depthwise(spec);
  const name = depthwiseName(spec);
  // Horizontal stride 2: the plane split by column parity (padSplitKernel), each half wp2 wide.
  const wp2 = Math.ceil(wp / 2);
  // Slack after each plane: lanes that are computed but never stored read past its end.
  const plane = g.sw === 2 ? splitPlaneFloats(hp, wp2) : hp * wp + 64;
  const nChunks = chunkCount(depthwiseNs(c * oh * ow * taps, c * (h * w + hp * wp + oh * ow)));
  const xAt = rt.addressOf(X);
  const yAt = rt.addressOf(y);
  const inFloats = xAt >= 0 ? 0 : c * h * w;
  const outFloats = yAt >= 0 ? 0 : c * oh * ow;
  const bytes = 4 * (c * taps + c + nChunks * plane + inFloats + outFloats) + 16; // +16: a last vector read past the end
  const base = rt.alloc(scratchBytes(bytes));
  try {
    const pWs = base;
    const pBs = pWs + c * taps * 4;
    const pPad = pBs + c * 4;
    const pIn = pPad + nChunks * plane * 4;
    const pOut = pIn + inFloats * 4;
    const pW = placeConstant(rt, W, 0, c * taps, pWs);
    const pBias = placeBias(rt, B, 0, c, c, pBs);
    const dwc = `dwc_${name.slice(3)}`;
    for (let n = 0; n < g.n; n++) {
      const src = xAt >= 0 ? xAt + 4 * n * c * h * w : pIn;
      const dst = yAt >= 0 ? yAt + 4 * n * c * oh * ow : pOut;
      if (xAt < 0) rt.f32().set(X.subarray(n * c * h * w, (n + 1) * c * h * w), f32Index(pIn));
      const chunks: Call[][] = [];
      for (const [q, [c0, c1]] of splitRange(c, nChunks).entries()) {
        const chunk: Call[] = [[dwc, src, h, w, pPad + q * plane * 4, g.sw === 2 ? wp2 : wp, pt, pl, hp, pW, pBias, dst, oh, ow, p1, p2, c0, c1]];
        if (pass) chunk.push([pass, dst + c0 * oh * ow * 4, (c1 - c0) * oh * ow, p1, p2]);
        chunks.push(chunk);
      }
      rt.pool.run(chunks);
      if (yAt < 0) y.set(rt.f32().subarray(f32Index(pOut), f32Index(pOut) + c * oh * ow), n * c * oh * ow);
    }
  } finally {
    rt.release(base);
  }
}

/**
 * Packs a constant conv weight [M, C/group, kH, kW…] for the GEMM kernels now (at model load)
 * instead of on the first run, and generates the depthwise kernel it will need. Does nothing
 * where the WebAssembly kernels are off or the weight is not marked constant.
 */
export function prepackConvWeight(W: Float32Array, shape: readonly number[], group: number, strides: readonly number[], dilations: readonly number[]): void {
  const rt = runtime();
  if (!rt || shape.length < 3) return;
  const [m, cg] = [shape[0]!, shape[1]!];
  const spatial = shape.slice(2);
  const taps = spatial.reduce((a, b) => a * b, 1);
  if (cg === 1 && group === m && group > 1) {
    // Depthwise (when the input has group channels): generate its kernel.
    const two = spatial.length === 2;
    const sw = strides[strides.length - 1] ?? 1;
    if (sw === 1 || sw === 2) {
      rt.depthwise({ kh: two ? spatial[0]! : 1, kw: spatial[spatial.length - 1]!, sh: two ? (strides[0] ?? 1) : 1, sw, dh: two ? (dilations[0] ?? 1) : 1, dw: dilations[dilations.length - 1] ?? 1, act: 'none' });
    }
    return;
  }
  const mg = m / group;
  const k = cg * taps;
  if (!Number.isInteger(mg) || k === 0 || !isConstant(W)) return;
  for (let gi = 0; gi < group; gi++) packA(rt, W, gi * mg * k, mg, k, 0);
}
