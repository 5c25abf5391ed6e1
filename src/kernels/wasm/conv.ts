import { type Activation, activateInPlace } from '../activation.js';
import type { ConvGeometry } from '../conv.js';
import { type Call, type Job, chunkCount, depthwiseNs, gemmNs } from './pool.js';
import { depthwiseName } from './kernels.js';
import { type Runtime, isConstant, packA, runtime, wasmActivation } from './runtime.js';

/**
 * Conv on the WebAssembly SIMD kernels: 1×1 and im2col convs as packed GEMMs, depthwise convs
 * directly. Data is copied into wasm memory per image (one memcpy), results copied back; the
 * weights of loaded models are packed once and stay there (see markConstant).
 */


function actParams(act: Activation): [number, number] {
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
  } else {
    im2colGemm(rt, X, W, B, y, g, act);
  }
  const a = wasmActivation(act.kind);
  if (a === 'none' && act.kind !== 'none') activateInPlace(y, act); // sigmoid, SiLU, tanh: exp lives in JS
  return true;
}

/**
 * C[m×n] (row-major, ld = n rounded up to 4) = act(bias + A·B) with A packed at pA (mPanels
 * 4-row panels), B row-major in wasm memory at pBsrc (k rows of ldB floats, columns n … ldB−1
 * zero), packed into pB first.
 */
export function gemmCore(rt: Runtime, pA: number, mPanels: number, k: number, pBsrc: number, ldB: number, pB: number, pC: number, pBias: number, act: Activation, defer = false): Job | null {
  const n8 = ldB >> 3;
  const tail4 = (ldB & 7) === 4;
  const a = wasmActivation(act.kind);
  const [p1, p2] = actParams(act);
  const ldc = ldB * 4;
  // Chunks worth a hand-off each (pool.ts's tuning); one: run it here.
  const want = chunkCount(gemmNs(mPanels * 4 * ldB * k));
  const gemm8 = `gemm8_${a}`;
  const gemm4 = `gemm4_${a}`;
  if (want <= 1) {
    const f = rt.fns;
    f.packb!(pBsrc, ldc, k, n8, pB);
    if (tail4) f.packb4!(pBsrc + n8 * 32, ldc, k, pB + n8 * k * 32);
    if (n8 > 0) f[gemm8]!(pA, pB, pC, pBias, mPanels, k, 0, n8, ldc, p1, p2);
    if (tail4) f[gemm4]!(pA, pB + n8 * k * 32, pC + n8 * 32, pBias, mPanels, k, ldc, p1, p2);
    return null;
  }
  // Threads: chunks of B panels, each packing its own panels before multiplying them; when
  // there are too few panels for that, B is packed first and the chunks form a grid of
  // (A panel range × B panel range).
  const cols = n8 + (tail4 ? 1 : 0);
  const jChunks = Math.min(cols, want);
  const iChunks = Math.min(mPanels, Math.max(1, Math.ceil(want / jChunks)));
  const packInChunk = iChunks === 1;
  if (!packInChunk) {
    rt.fns.packb!(pBsrc, ldc, k, n8, pB);
    if (tail4) rt.fns.packb4!(pBsrc + n8 * 32, ldc, k, pB + n8 * k * 32);
  }
  const chunks: Call[][] = [];
  for (let ic = 0; ic < iChunks; ic++) {
    const i0 = Math.floor((ic * mPanels) / iChunks);
    const i1 = Math.floor(((ic + 1) * mPanels) / iChunks);
    if (i1 <= i0) continue;
    const sub: [number, number, number, number] = [pA + i0 * k * 16, pBias + i0 * 16, pC + i0 * 4 * ldc, i1 - i0];
    for (let jc = 0; jc < jChunks; jc++) {
      const j0 = Math.floor((jc * cols) / jChunks);
      const j1 = Math.min(n8, Math.floor(((jc + 1) * cols) / jChunks));
      const chunk: Call[] = [];
      const tail = tail4 && jc === jChunks - 1;
      if (packInChunk && j1 > j0) chunk.push(['packb', pBsrc + j0 * 32, ldc, k, j1 - j0, pB + j0 * k * 32]);
      if (packInChunk && tail) chunk.push(['packb4', pBsrc + n8 * 32, ldc, k, pB + n8 * k * 32]);
      if (j1 > j0) chunk.push([gemm8, sub[0], pB, sub[2], sub[1], sub[3], k, j0, j1, ldc, p1, p2]);
      if (tail) chunk.push([gemm4, sub[0], pB + n8 * k * 32, sub[2] + n8 * 32, sub[1], sub[3], k, ldc, p1, p2]);
      if (chunk.length > 0) chunks.push(chunk);
    }
  }
  if (defer) return rt.pool.start(chunks);
  rt.pool.run(chunks);
  return null;
}

/**
 * Runs `count` blocks of a GEMM-based conv: load(i, pBsrc) copies block i's B into wasm memory
 * and returns its ld, gemm(pBsrc, ld, pC, defer) multiplies, store(i, pC, ld) copies C out.
 * With threads (`overlap`), block i's GEMM runs on the workers while this thread copies block
 * i − 1 out and block i + 1 in, into the second of two B/C buffers; the copies in and out are
 * JS work on the calling thread, and on small-K 1×1 convs they cost as much as half the GEMM.
 * Without, the plain order (C copied out while it is still in cache).
 */
function pipelined(rt: Runtime, count: number, overlap: boolean, bufs: readonly [number, number, number, number], load: (i: number, pBsrc: number) => number, gemm: (pBsrc: number, ld: number, pC: number, defer: boolean) => Job | null, store: (i: number, pC: number, ld: number) => void): void {
  if (!overlap || count < 2) {
    for (let i = 0; i < count; i++) {
      const ld = load(i, bufs[0]);
      gemm(bufs[0], ld, bufs[1], false);
      store(i, bufs[1], ld);
    }
    return;
  }
  let ld = load(0, bufs[0]);
  let prevLd = 0;
  for (let i = 0; i < count; i++) {
    const cur = (i & 1) * 2;
    const other = 2 - cur;
    const job = gemm(bufs[cur]!, ld, bufs[cur + 1]!, true);
    try {
      if (i > 0) store(i - 1, bufs[other + 1]!, prevLd);
      prevLd = ld;
      if (i + 1 < count) ld = load(i + 1, bufs[other]!);
    } finally {
      rt.pool.finish(job);
    }
  }
  store(count - 1, bufs[((count - 1) & 1) * 2 + 1]!, prevLd);
}

/** Writes bias (or zeros) for rows [off, off + m) into wasm memory at ptr, padded to mPanels·4. */
function putBias(rt: Runtime, ptr: number, B: Float32Array | null, off: number, m: number, mPanels: number): void {
  const v = rt.f32();
  const o = ptr >> 2;
  if (B) v.set(B.subarray(off, off + m), o);
  else v.fill(0, o, o + m);
  v.fill(0, o + m, o + mPanels * 4);
}

/**
 * 1×1 stride-1 unpadded conv: per image and group, Y = W·X with X as the K×HW matrix B, in
 * blocks of columns so that the block of C the GEMM writes is still in L2 when it is copied
 * out (writing all of a 96×112² C first and copying it afterwards cost as much as the GEMM).
 */
function pointwise(rt: Runtime, X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const hw = g.h * g.w;
  const k = g.cg;
  const mPanels = Math.ceil(g.mg / 4);
  // Column block: C block (mPanels·4 × nb) and B block (k × nb) about 256 KiB each at most.
  const nb = Math.max(64, Math.floor(Math.min(1 << 16, (1 << 16) / Math.max(1, mPanels * 4), (1 << 16) / k) / 8) * 8);
  const blocked = hw > nb;
  const nbImages = Math.max(nb, (hw + 3) & ~3);
  const ldMax = blocked ? nb : Math.max((hw + 3) & ~3, g.n > 1 && 2 * hw <= nb ? (Math.min(g.n, Math.floor(nbImages / hw)) * hw + 3) & ~3 : 0);
  // Threads: overlap the copies with the GEMMs when a block's GEMM is worth splitting.
  const overlap = chunkCount(gemmNs(mPanels * 4 * k * Math.min(ldMax, g.n * hw))) > 1;
  const bufs = overlap ? 2 : 1;
  const bytes = 4 * (mPanels * 4 * k + mPanels * 4 + k * ldMax + bufs * (k * ldMax + mPanels * 4 * ldMax));
  const base = rt.alloc(bytes);
  try {
    const pAscratch = base;
    const pBias = pAscratch + mPanels * 16 * k;
    const pB = pBias + mPanels * 16;
    const pBsrc0 = pB + k * ldMax * 4;
    const pC0 = pBsrc0 + k * ldMax * 4;
    const pBsrc1 = overlap ? pC0 + mPanels * 16 * ldMax : pBsrc0;
    const pC1 = overlap ? pBsrc1 + k * ldMax * 4 : pC0;
    const buffers = [pBsrc0, pC0, pBsrc1, pC1] as const;
    for (let gi = 0; gi < g.group; gi++) {
      const pA = packA(rt, W, gi * g.mg * k, g.mg, k, pAscratch);
      putBias(rt, pBias, B, gi * g.mg, g.mg, mPanels);
      const gemm = (pBsrc: number, ld: number, pC: number, defer: boolean) => gemmCore(rt, pA, mPanels, k, pBsrc, ld, pB, pC, pBias, act, defer);
      // Small planes of a batch: several images side by side in one GEMM (N = images·HW), so
      // the weights are streamed once per block instead of once per image (SE convs at batch
      // 16 have HW = 1: sixteen 1-column GEMMs became one of 16 columns).
      const perBlock = blocked ? 1 : Math.min(g.n, Math.max(1, Math.floor(nbImages / hw)));
      if (perBlock > 1) {
        pipelined(
          rt,
          Math.ceil(g.n / perBlock),
          overlap,
          buffers,
          (i, pBsrc) => {
            const n0 = i * perBlock;
            const cnt = Math.min(perBlock, g.n - n0);
            const ld = (cnt * hw + 3) & ~3;
            const v = rt.f32();
            const s = pBsrc >> 2;
            for (let r = 0; r < k; r++) {
              for (let j = 0; j < cnt; j++) {
                const xo = ((n0 + j) * g.c + gi * k + r) * hw;
                v.set(X.subarray(xo, xo + hw), s + r * ld + j * hw);
              }
              if (ld > cnt * hw) v.fill(0, s + r * ld + cnt * hw, s + (r + 1) * ld);
            }
            return ld;
          },
          gemm,
          (i, pC, ld) => {
            const n0 = i * perBlock;
            const cnt = Math.min(perBlock, g.n - n0);
            const w = rt.f32();
            const c = pC >> 2;
            for (let j = 0; j < cnt; j++) {
              const yo = ((n0 + j) * g.m + gi * g.mg) * hw;
              if (hw === 1) for (let r = 0; r < g.mg; r++) y[yo + r] = w[c + r * ld + j]!;
              else for (let r = 0; r < g.mg; r++) y.set(w.subarray(c + r * ld + j * hw, c + r * ld + (j + 1) * hw), yo + r * hw);
            }
          },
        );
        continue;
      }
      // Blocks (image n, columns p0 …): ceil(hw / ldMax) per image.
      const perImage = Math.ceil(hw / ldMax);
      pipelined(
        rt,
        g.n * perImage,
        overlap,
        buffers,
        (i, pBsrc) => {
          const n = Math.floor(i / perImage);
          const p0 = (i - n * perImage) * ldMax;
          const xo = (n * g.c + gi * k) * hw;
          const cols = Math.min(ldMax, hw - p0);
          const ld = (cols + 3) & ~3;
          const v = rt.f32();
          const s = pBsrc >> 2;
          if (!blocked && ld === hw) v.set(X.subarray(xo, xo + k * hw), s);
          else {
            for (let r = 0; r < k; r++) {
              v.set(X.subarray(xo + r * hw + p0, xo + r * hw + p0 + cols), s + r * ld);
              if (ld > cols) v.fill(0, s + r * ld + cols, s + (r + 1) * ld);
            }
          }
          return ld;
        },
        gemm,
        (i, pC, ld) => {
          const n = Math.floor(i / perImage);
          const p0 = (i - n * perImage) * ldMax;
          const yo = (n * g.m + gi * g.mg) * hw;
          const cols = Math.min(ldMax, hw - p0);
          const w = rt.f32();
          const c = pC >> 2;
          if (!blocked && ld === hw) y.set(w.subarray(c, c + g.mg * hw), yo);
          else for (let r = 0; r < g.mg; r++) y.set(w.subarray(c + r * ld, c + r * ld + cols), yo + r * hw + p0);
        },
      );
    }
  } finally {
    rt.release(base);
  }
}

/** Positions per im2col chunk: the column matrix stays under ~4 MiB. */
const COL_FLOATS = 1 << 20;

/**
 * General conv: im2col and the packed GEMM, per chunk of output positions. For strides 1 and 2
 * the image is copied into zero-bordered planes in wasm memory and the columns are gathered by
 * the SIMD im2col kernel (in plain JS the gather cost as much as the GEMM); other strides
 * gather in JS.
 */
function im2colGemm(rt: Runtime, X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const k = g.cg * g.kh * g.kw;
  const positions = g.oh * g.ow;
  const simd = g.sw === 1 || g.sw === 2;
  const rowsPerChunk = Math.max(1, Math.min(g.oh, Math.floor(COL_FLOATS / (k * g.ow))));
  const chunk = simd ? rowsPerChunk * g.ow : Math.max(8, Math.min((positions + 7) & ~7, Math.floor(COL_FLOATS / k / 8) * 8));
  const ldMax = (chunk + 3) & ~3;
  const mPanels = Math.ceil(g.mg / 4);
  const wp = g.w + g.pl + g.pr;
  const hp = g.h + g.pt + g.pb;
  const imageFloats = simd ? g.c * g.h * g.w + g.c * hp * wp + 64 : 0;
  const bytes = 4 * (mPanels * 4 * k + mPanels * 4 + 2 * k * ldMax + 16 + mPanels * 4 * ldMax + imageFloats);
  const base = rt.alloc(bytes);
  try {
    const pAscratch = base;
    const pBias = pAscratch + mPanels * 16 * k;
    const pBsrc = pBias + mPanels * 16;
    const pB = pBsrc + (k * ldMax + 16) * 4;
    const pC = pB + k * ldMax * 4;
    const pIn = pC + mPanels * 16 * ldMax;
    const pPad = pIn + g.c * g.h * g.w * 4;
    if (simd) rt.f32().fill(0, (pPad >> 2) + g.c * hp * wp, (pPad >> 2) + g.c * hp * wp + 64);
    for (let n = 0; n < g.n; n++) {
      if (simd) {
        const chw = g.c * g.h * g.w;
        rt.f32().set(X.subarray(n * chw, (n + 1) * chw), pIn >> 2);
        for (let ch = 0; ch < g.c; ch++) rt.fns.padplane!(pIn + ch * g.h * g.w * 4, g.h, g.w, pPad + ch * hp * wp * 4, wp, g.pt, g.pl, hp);
      }
      for (let gi = 0; gi < g.group; gi++) {
        const pA = packA(rt, W, gi * g.mg * k, g.mg, k, pAscratch);
        putBias(rt, pBias, B, gi * g.mg, g.mg, mPanels);
        const xo = (n * g.c + gi * g.cg) * g.h * g.w;
        for (let p0 = 0; p0 < positions; p0 += chunk) {
          const cols = Math.min(chunk, positions - p0);
          const ld = (cols + 3) & ~3;
          if (simd) {
            const oy0 = p0 / g.ow;
            const im2col = rt.fns[`im2col_s${g.sw}`]!;
            im2col(pPad + gi * g.cg * hp * wp * 4, wp, hp * wp * 4, g.cg, g.kh, g.kw, g.dh, g.dw, g.sh, oy0, oy0 + cols / g.ow, g.ow, pBsrc, ld);
          } else im2colInto(X, xo, g, p0, cols, rt.f32(), pBsrc >> 2, ld);
          gemmCore(rt, pA, mPanels, k, pBsrc, ld, pB, pC, pBias, act);
          // Output rows of this chunk: y[(n·m + gi·mg + i)·positions + p0 …].
          const v = rt.f32();
          const c = pC >> 2;
          const yo = (n * g.m + gi * g.mg) * positions + p0;
          for (let i = 0; i < g.mg; i++) y.set(v.subarray(c + i * ld, c + i * ld + cols), yo + i * positions);
        }
      }
    }
  } finally {
    rt.release(base);
  }
}

/**
 * col[d + r·ld + q] = input tap r of output position p0 + q (0 in the padding, and for
 * q in [cols, ld)); r runs over (channel, ky, kx) of the cg channels starting at xo.
 */
function im2colInto(X: Float32Array, xo: number, g: ConvGeometry, p0: number, cols: number, col: Float32Array, d0: number, ld: number): void {
  const { h, w, kh, kw, sh, sw, dh, dw, pt, pl, ow } = g;
  let r = 0;
  for (let ci = 0; ci < g.cg; ci++) {
    const plane = xo + ci * h * w;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++, r++) {
        const shift = kx * dw - pl;
        const lo = Math.max(0, Math.ceil(-shift / sw));
        const hi = Math.max(lo, Math.floor((w - 1 - shift) / sw) + 1);
        let d = d0 + r * ld;
        let oy = Math.floor(p0 / ow);
        let ox = p0 - oy * ow;
        let left = cols;
        while (left > 0) {
          const end = Math.min(ow, ox + left);
          left -= end - ox;
          const iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= h) {
            col.fill(0, d, d + end - ox);
            d += end - ox;
            ox = end;
          } else {
            const src = plane + iy * w + shift;
            const a = Math.min(Math.max(ox, lo), end);
            const b = Math.min(Math.max(a, hi), end);
            for (; ox < a; ox++) col[d++] = 0;
            if (sw === 1) {
              col.set(X.subarray(src + ox, src + b), d);
              d += b - ox;
              ox = b;
            } else for (; ox < b; ox++) col[d++] = X[src + ox * sw]!;
            for (; ox < end; ox++) col[d++] = 0;
          }
          ox = 0;
          oy++;
        }
        for (let q = cols; q < ld; q++) col[d0 + r * ld + q] = 0;
      }
    }
  }
}

/**
 * Depthwise conv: per image, the channels are copied into zero-bordered planes and run through
 * the generated kernel; with threads, in chunks of channels handed out by the pool.
 */
function depthwise(rt: Runtime, X: Float32Array, W: Float32Array, B: Float32Array | null, y: Float32Array, g: ConvGeometry, act: Activation): void {
  const { c, h, w, kh, kw, pt, pl, oh, ow } = g;
  const taps = kh * kw;
  const wp = w + pl + g.pr;
  const hp = h + pt + g.pb;
  const a = wasmActivation(act.kind);
  const [p1, p2] = actParams(act);
  // Sigmoid and SiLU run as a separate pass over each chunk's outputs (in cache), eight
  // vectors at a time; chunks then start at multiples of 4 channels so that every pass
  // covers whole vectors of its own channels (the last one runs into the +4 float slack).
  const pass = a === 'sigmoid' || a === 'silu' ? `act_${a}` : null;
  const spec = { kh, kw, sh: g.sh, sw: g.sw, dh: g.dh, dw: g.dw, act: pass ? ('none' as const) : a };
  rt.depthwise(spec);
  const name = depthwiseName(spec);
  const plane = hp * wp;
  const padFloats = c * plane + 64; // slack: lanes that are computed but never stored read past the last plane
  // Chunks of channels, each one call (pad + kernel for every channel of the chunk), sized so
  // that each is worth a hand-off; small convs run on the calling thread alone.
  const nChunks = chunkCount(depthwiseNs(c * oh * ow * taps, c * (h * w + plane + oh * ow)));
  // With threads and several images, two input/output buffers: image n runs on the workers
  // while this thread copies image n − 1 out and image n + 1 in (see pipelined).
  const overlap = nChunks > 1 && g.n > 1;
  const io = c * h * w + c * oh * ow + 4; // +4: the activation pass may run 3 floats past the outputs
  const bytes = 4 * (c * taps + c + padFloats + (overlap ? 2 : 1) * io);
  const base = rt.alloc(bytes);
  try {
    const pW = base;
    const pBias = pW + c * taps * 4;
    const pPad = pBias + c * 4;
    const pIn0 = pPad + padFloats * 4;
    const pIn1 = overlap ? pIn0 + io * 4 : pIn0;
    const out = (pIn: number) => pIn + c * h * w * 4;
    const v = rt.f32();
    v.set(W.subarray(0, c * taps), pW >> 2);
    if (B) v.set(B.subarray(0, c), pBias >> 2);
    else v.fill(0, pBias >> 2, (pBias >> 2) + c);
    v.fill(0, (pPad >> 2) + c * plane, (pPad >> 2) + padFloats);
    const dwc = `dwc_${name.slice(3)}`;
    // Sigmoid and SiLU chunks start at multiples of 4 channels (see above).
    const align = pass ? 4 : 1;
    const chunksFor = (pIn: number): Call[][] => {
      const pOut = out(pIn);
      const chunks: Call[][] = [];
      for (let q = 0; q < nChunks; q++) {
        const c0 = Math.min(c, Math.floor((q * c) / nChunks / align) * align);
        const c1 = q === nChunks - 1 ? c : Math.min(c, Math.floor(((q + 1) * c) / nChunks / align) * align);
        if (c1 <= c0) continue;
        const chunk: Call[] = [[dwc, pIn, h, w, pPad, wp, pt, pl, hp, pW, pBias, pOut, oh, ow, p1, p2, c0, c1]];
        if (pass) chunk.push([pass, pOut + c0 * oh * ow * 4, Math.ceil(((c1 - c0) * oh * ow) / 4)]);
        chunks.push(chunk);
      }
      return chunks;
    };
    const chunks0 = chunksFor(pIn0);
    const chunks1 = overlap ? chunksFor(pIn1) : chunks0;
    pipelined(
      rt,
      g.n,
      overlap,
      [pIn0, out(pIn0), pIn1, out(pIn1)],
      (n, pIn) => {
        rt.f32().set(X.subarray(n * c * h * w, (n + 1) * c * h * w), pIn >> 2);
        return 0;
      },
      (pIn, _, __, defer) => {
        const chunks = pIn === pIn0 ? chunks0 : chunks1;
        if (defer) return rt.pool.start(chunks);
        rt.pool.run(chunks);
        return null;
      },
      (n, pOut) => {
        const o = pOut >> 2;
        y.set(rt.f32().subarray(o, o + c * oh * ow), n * c * oh * ow);
      },
    );
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
