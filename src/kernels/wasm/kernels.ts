import { F32, Fn, I32, V128, type ValType } from './emit.js';

/**
 * The SIMD micro-kernels, written as generators of WebAssembly code (see emit.ts). All
 * pointers are byte addresses in the shared kernel memory, unsigned (up to 4 GiB: they are
 * compared with geU/ltU, see emit.ts); all data is float32.
 *
 * What won in the prototype, and is what these kernels do: 8 v128 accumulators (a 4×8 tile),
 * B in 8-wide panels (read in place from the row-major matrix), A broadcast with
 * v128.load32_splat, and a plain k-loop that compares pointers. More accumulators or an
 * unrolled k-loop spill (V8 has 15 usable xmm registers) and lose 20–40 %.
 */

/**
 * The epilogues the kernels run on their accumulators. Sigmoid and SiLU use a polynomial exp
 * (emitExp); tanh runs in JS afterwards, on the finished output, with the TS path's code.
 */
export const WASM_ACTIVATIONS = ['none', 'relu', 'leaky_relu', 'clip', 'hard_sigmoid', 'hard_swish', 'sigmoid', 'silu', 'gelu'] as const;
export type WasmActivation = (typeof WASM_ACTIVATIONS)[number];

/** A v128 constant with four equal f32 lanes. */
function constF32x4(f: Fn, v: number): Fn {
  return f.f32(v).splat();
}

/**
 * Emits `v = act(v)` for the v128 local `v`, with the activation's parameters in the f32
 * locals p1 and p2 (leaky: slope; clip: min, max; hard-sigmoid: alpha, beta). Each kind keeps
 * the TS kernel's semantics, special values included (docs/special-values.md): relu, clip and
 * hard-sigmoid use pmax/pmin (`x < lo ? lo : x`), which keep NaN and −0 as the TS loops do
 * (f32x4.max would turn −0 into +0).
 */
export function emitActivation(f: Fn, act: WasmActivation, v: number, p1: number, p2: number): void {
  switch (act) {
    case 'none':
      return;
    case 'relu':
      f.get(v).v128Zero().fpmax().set(v);
      return;
    case 'leaky_relu':
      // bitselect(s·x, x, x < 0)
      f.get(v).get(p1).splat().fmul().get(v).get(v).v128Zero().flt().bitselect().set(v);
      return;
    case 'clip':
      f.get(v).get(p1).splat().fpmax().get(p2).splat().fpmin().set(v);
      return;
    case 'hard_sigmoid':
      f.get(v).get(p1).splat().fmul().get(p2).splat().fadd().v128Zero().fpmax();
      constF32x4(f, 1).fpmin().set(v);
      return;
    case 'hard_swish':
      // x · (min(max(x + 3, 0), 6) · (1/6)): a multiply, not a divide (divps is slow, and this
      // runs on every accumulator of a GEMM tile); within an ulp of x·relu6(x + 3)/6. The gate
      // is scaled before it meets x: 6 · f32(1/6) rounds to exactly 1, so x ≥ 3 gives x itself
      // (FLT_MAX stays finite), and x < −3 gives x · 0 (−0, and NaN at −∞, as PyTorch).
      f.get(v).get(v);
      constF32x4(f, 3).fadd().v128Zero().fpmax();
      constF32x4(f, 6).fpmin();
      constF32x4(f, 1 / 6).fmul().fmul().set(v);
      return;
    case 'sigmoid':
    case 'silu':
      emitSigmoids(f, [v], act === 'silu');
      return;
    case 'gelu':
      emitGelus(f, [v]);
      return;
  }
}

/**
 * Activations on several vectors at once. Sigmoid and SiLU are long dependency chains (the exp
 * polynomial): emitting the steps of up to four vectors interleaved lets them overlap, about
 * 3× faster than one vector after another. Other activations are short and go one by one.
 */
export function emitActivations(f: Fn, act: WasmActivation, vs: readonly number[], p1: number, p2: number): void {
  if (act === 'gelu') {
    for (let i = 0; i < vs.length; i += 4) emitGelus(f, vs.slice(i, i + 4));
    return;
  }
  if (act !== 'sigmoid' && act !== 'silu') {
    for (const v of vs) emitActivation(f, act, v, p1, p2);
    return;
  }
  for (let i = 0; i < vs.length; i += 4) emitSigmoids(f, vs.slice(i, i + 4), act === 'silu');
}

/**
 * v = 0.5·v·(1 + erf(v·√½)) (GELU, exact form) for up to four vectors, interleaved. erf is the
 * float32 rational approximation of the TS kernel (erfF32 in elementwise.ts: x·P(x²)/Q(x²) on
 * |x| < 4, ±1 beyond), evaluated in float32 here: a few ulps from the TS kernel's float64
 * evaluation. Special values as there: NaN stays NaN, +∞ gives +∞, −∞ gives NaN (−∞·0, as
 * PyTorch), large negative x gives −0.
 */
function emitGelus(f: Fn, vs: readonly number[]): void {
  const tmp = f.temps(4 * vs.length);
  const U = vs.map((_, i) => tmp[4 * i]!); // x·√½ clamped to [−4, 4], then erf
  const Z = vs.map((_, i) => tmp[4 * i + 1]!); // its square
  const P = vs.map((_, i) => tmp[4 * i + 2]!);
  const Q = vs.map((_, i) => tmp[4 * i + 3]!);
  const each = (emit: (i: number) => void) => vs.forEach((_, i) => emit(i));
  each((i) => {
    // f32x4.max/min keep NaN (pmax/pmin would not).
    f.get(vs[i]!);
    constF32x4(f, Math.SQRT1_2).fmul();
    constF32x4(f, -4).fmax();
    constF32x4(f, 4).fmin().tee(U[i]!).get(U[i]!).fmul().set(Z[i]!);
    f.get(Z[i]!);
    constF32x4(f, -2.72614225801306e-10).fmul();
    constF32x4(f, 2.77068142495902e-8).fadd().set(P[i]!);
    f.get(Z[i]!);
    constF32x4(f, -1.45660718464996e-5).fmul();
    constF32x4(f, -2.13374055278905e-4).fadd().set(Q[i]!);
  });
  for (const c of [-2.10102402082508e-6, -5.69250639462346e-5, -7.34990630326855e-4, -2.95459980854025e-3, -1.60960333262415e-2]) {
    each((i) => {
      f.get(P[i]!).get(Z[i]!).fmul();
      constF32x4(f, c).fadd().set(P[i]!);
    });
  }
  for (const c of [-1.68282697438203e-3, -7.37332916720468e-3, -1.42647390514189e-2]) {
    each((i) => {
      f.get(Q[i]!).get(Z[i]!).fmul();
      constF32x4(f, c).fadd().set(Q[i]!);
    });
  }
  each((i) => {
    // erf = ±1 where |x·√½| ≥ 4 (the clamped value / 4), else u·P/Q; then 0.5·x·(1 + erf).
    f.get(U[i]!);
    constF32x4(f, 0.25).fmul();
    f.get(U[i]!).get(P[i]!).fmul().get(Q[i]!).fdiv();
    f.get(U[i]!).fabs();
    constF32x4(f, 4).fge().bitselect();
    constF32x4(f, 1).fadd();
    f.get(vs[i]!);
    constF32x4(f, 0.5).fmul().fmul().set(vs[i]!);
  });
}

/**
 * v = 1 / (1 + exp(−v)) (times v for SiLU) for up to four vectors, with exp by Cephes'
 * single-precision method: clamp t = −v to [−87.3, 174], n = round(t·log2 e), r = t − n·ln 2
 * in two parts, a degree-6 polynomial for e^r on |r| ≤ ln2/2, times 2^n built in exponent
 * bits as 2^h · 2^(n−h) with h = n >> 1 (each factor a normal float for |n| ≤ 252). So e^t
 * overflows to +∞ where float32 does (t > 88.72), making sigmoid +0 and SiLU −0 (NaN at −∞)
 * as in PyTorch and the TS kernels, and is exact-ish down to the denormal sigmoids just above
 * that; a clamp at 88.3 would floor sigmoid at 4.5e−39 (SiLU(x) = x·4.5e−39, −∞ at −∞).
 * Rounding uses the 1.5·2^23 trick (adding it leaves n in the low mantissa bits; much faster
 * in V8 than f32x4.nearest + trunc_sat). Relative error about 2e-7; NaN stays NaN.
 */
function emitSigmoids(f: Fn, vs: readonly number[], silu: boolean): void {
  const MAGIC = 12582912; // 1.5·2^23
  const tmp = f.temps(3 * vs.length);
  const T = vs.map((_, i) => tmp[3 * i]!); // −x, then r
  const N = vs.map((_, i) => tmp[3 * i + 1]!); // magic + n
  const P = vs.map((_, i) => tmp[3 * i + 2]!); // polynomial, then exp
  const each = (emit: (i: number) => void) => vs.forEach((_, i) => emit(i));
  each((i) => {
    f.get(vs[i]!).fneg();
    constF32x4(f, -87.3).fmax();
    constF32x4(f, 174).fmin().set(T[i]!);
  });
  each((i) => {
    f.get(T[i]!);
    constF32x4(f, 1.4426950408889634).fmul();
    constF32x4(f, MAGIC).fadd().set(N[i]!);
  });
  each((i) => {
    // r = t − m·0.693359375 + m·2.12194440e-4, m = n − magic (exact)
    f.get(N[i]!);
    constF32x4(f, MAGIC).fsub().set(P[i]!);
    f.get(T[i]!).get(P[i]!);
    constF32x4(f, 0.693359375).fmul().fsub().get(P[i]!);
    constF32x4(f, 2.1219444e-4).fmul().fadd().set(T[i]!);
  });
  each((i) => {
    constF32x4(f, 1.98756915e-4).get(T[i]!).fmul();
    constF32x4(f, 1.3981999507e-3).fadd().set(P[i]!);
  });
  for (const c of [8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]) {
    each((i) => {
      f.get(P[i]!).get(T[i]!).fmul();
      constF32x4(f, c).fadd().set(P[i]!);
    });
  }
  each((i) => {
    // e^r ≈ p·r² + r + 1, times 2^h then 2^(n−h): n = bits(magic + n) − 0x4b400000, and
    // 2^k = (k + 127) << 23
    f.get(P[i]!).get(T[i]!).get(T[i]!).fmul().fmul().get(T[i]!).fadd();
    constF32x4(f, 1).fadd();
    f.get(N[i]!).i32(-0x4b400000).splatI32().iadd32x4().set(N[i]!);
    f.get(N[i]!).i32(1).ishrS32x4();
    f.i32(127).splatI32().iadd32x4().i32(23).ishl32x4();
    f.fmul();
    f.get(N[i]!).get(N[i]!).i32(1).ishrS32x4().isub32x4();
    f.i32(127).splatI32().iadd32x4().i32(23).ishl32x4();
    f.fmul().set(P[i]!);
  });
  each((i) => {
    constF32x4(f, 1);
    constF32x4(f, 1).get(P[i]!).fadd().fdiv();
    if (silu) f.get(vs[i]!).fmul();
    f.set(vs[i]!);
  });
}

/** The name suffix of the GEMM/GEMV kernels built with relaxed SIMD's fused multiply-add. */
export const FUSED_SUFFIX = '_fma';

/**
 * gemm8_<act>(pA, pB, pC, pBias, mPanels, K, j0, j1, ldc, ldb, panelB, aStride, accumulate, pPack, p1, p2):
 * for the 8-wide B panels j0 ≤ j < j1 and every 4-row A panel, C[4×8 tile] = act(start + A
 * panel · B panel), where start is the bias (accumulate 0) or the tile C already holds
 * (accumulate 1: a later block of K, see `gemm`). A panels are K×4 (16 bytes per k), aStride
 * bytes apart; B panel j starts at pB + j·panelB and its K rows of 8 floats are ldb bytes
 * apart: B read in place, 8 columns of a row-major matrix (ldb its row bytes, panelB 32) — as
 * fast as packed panels in measurements here, and without the copy. C is row-major with ldc
 * bytes per row, bias one float per row (padded to whole panels). K ≥ 1. Each output is one
 * chain of adds in k order whether K comes in one call or in blocks (a float32 store and load
 * in between change nothing), so blocking does not change a bit. pPack (0: none) is K·32 bytes
 * of scratch where each B panel is copied before its tiles read it.
 */
export function gemmKernel(act: WasmActivation, fused = false): Fn {
  const f = new Fn(`gemm8_${act}${fused ? FUSED_SUFFIX : ''}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, F32]);
  const [pA, pB, pC, pBias, mPanels, K, j0, j1, ldc, ldb, panelB, aStride, accumulate, pPack, p1, p2] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const aPanel = f.local(I32);
  const ldRead = f.local(I32); // row bytes of the B panel the tiles read: ldb, or 32 when packed
  const src = f.local(I32);
  const j = f.local(I32);
  const bPanel = f.local(I32);
  const cCol = f.local(I32);
  const ip = f.local(I32);
  const a = f.local(I32);
  const b = f.local(I32);
  const end = f.local(I32);
  const cRow = f.local(I32);
  const bias = f.local(I32);
  const kBytes = f.local(I32);
  const acc = Array.from({ length: 8 }, () => f.local(V128));
  const b0 = f.local(V128);
  const b1 = f.local(V128);
  const av = f.local(V128);
  const halves = 2;

  // kBytes = K · (row bytes read): from a panel's first row to past its last
  f.get(pPack).if_().i32(32).set(ldRead).else_().get(ldb).set(ldRead).end();
  f.get(K).get(ldRead).mul().set(kBytes);
  f.get(j0).set(j);
  f.get(j).get(j1).geS().brIf(0 /* nothing to do: returns from the function body */);
  f.block().loop(); // over B panels
  {
    // bPanel = pB + j·panelB; cCol = pC + j·32
    f.get(pB).get(j).get(panelB).mul().add().set(bPanel);
    f.get(pC).get(j).i32(32).mul().add().set(cCol);
    // With pPack, the panel's K rows (ldb bytes apart: one page each for wide matrices) are
    // first copied next to each other, so the A panels that follow read it from few pages.
    f.get(pPack).if_();
    {
      f.get(bPanel).set(src);
      f.get(pPack).set(b);
      f.get(pPack).get(kBytes).add().set(end);
      f.loop();
      f.get(b).get(src).v128Load(0).v128Store(0);
      f.get(b).get(src).v128Load(16).v128Store(16);
      f.get(src).get(ldb).add().set(src);
      f.get(b).i32(32).add().tee(b).get(end).ne().brIf(0);
      f.end();
      f.get(pPack).set(bPanel);
    }
    f.end();
    f.i32(0).set(ip);
    f.get(pA).set(aPanel);
    f.get(cCol).set(cRow);
    f.get(pBias).set(bias);
    f.block().loop(); // over A panels
    {
      f.get(aPanel).set(a);
      // Accumulators start at the bias of their row, or at what C holds.
      f.get(accumulate).if_();
      for (let r = 0; r < 4; r++) {
        for (let h = 0; h < halves; h++) {
          f.get(cRow);
          if (r > 0) f.get(ldc).i32(r).mul().add();
          f.v128Load(h * 16).set(acc[r * halves + h]!);
        }
      }
      f.else_();
      for (let r = 0; r < 4; r++) {
        f.get(bias).loadSplat(r * 4).set(acc[r * halves]!);
        f.get(acc[r * 2]!).set(acc[r * 2 + 1]!);
      }
      f.end();
      f.get(bPanel).set(b);
      f.get(bPanel).get(kBytes).add().set(end);
      f.loop();
      {
        f.get(b).v128Load(0).set(b0);
        f.get(b).v128Load(16).set(b1);
        for (let r = 0; r < 4; r++) {
          f.get(a).loadSplat(r * 4).set(av);
          f.get(av).get(b0).madd(acc[r * halves]!, fused).set(acc[r * halves]!);
          f.get(av).get(b1).madd(acc[r * 2 + 1]!, fused).set(acc[r * 2 + 1]!);
        }
        f.get(a).i32(16).add().set(a);
        f.get(b).get(ldRead).add().tee(b).get(end).ne().brIf(0);
      }
      f.end();
      // Epilogue and stores: row r of the tile at cRow + r·ldc.
      emitActivations(f, act, acc, p1, p2);
      for (let r = 0; r < 4; r++) {
        for (let h = 0; h < halves; h++) {
          const v = acc[r * halves + h]!;
          f.get(cRow);
          if (r > 0) f.get(ldc).i32(r).mul().add();
          f.get(v).v128Store(h * 16);
        }
      }
      f.get(cRow).get(ldc).i32(2).shl().add().set(cRow);
      f.get(aPanel).get(aStride).add().set(aPanel);
      f.get(bias).i32(16).add().set(bias);
      f.get(ip).i32(1).add().tee(ip).get(mPanels).ltS().brIf(0);
    }
    f.end().end();
    f.get(j).i32(1).add().tee(j).get(j1).ltS().brIf(0);
  }
  f.end().end();
  return f;
}

/**
 * gemv_<act>(pA, pX, pY, pBias, mPanels, K, p1, p2): y = act(bias + A·x) for A packed as
 * 4-row panels (K×4 each, see gemm8), mPanels·4 floats at pY. Each output is summed exactly
 * as gemm8 sums it (bias, then k = 0, 1, … in order, one chain), so a column computed here
 * has the same bits as in a GEMM: results do not depend on the batch size. Two panels run
 * side by side so that one chain's adds wait on the other's.
 */
export function gemvKernel(act: WasmActivation, fused = false): Fn {
  const f = new Fn(`gemv_${act}${fused ? FUSED_SUFFIX : ''}`, [I32, I32, I32, I32, I32, I32, F32, F32]);
  const [pA, pX, pY, pBias, mPanels, K, p1, p2] = [0, 1, 2, 3, 4, 5, 6, 7];
  const i = f.local(I32);
  const a = f.local(I32);
  const x = f.local(I32);
  const end = f.local(I32);
  const panel = f.local(I32); // K·16 bytes
  const pairs = f.local(I32);
  const acc0 = f.local(V128);
  const acc1 = f.local(V128);
  const xv = f.local(V128);
  f.get(K).i32(4).shl().set(panel);
  f.get(mPanels).i32(-2).and().set(pairs);
  f.get(pA).set(a);
  f.i32(0).set(i);
  // Pairs of panels: a and a + panel.
  f.block().loop();
  {
    f.get(i).get(pairs).geS().brIf(1);
    f.get(pBias).get(i).i32(4).shl().add().v128Load(0).set(acc0);
    f.get(pBias).get(i).i32(4).shl().add().v128Load(16).set(acc1);
    f.get(pX).set(x);
    f.get(a).get(panel).add().set(end);
    f.block().loop();
    f.get(a).get(end).geU().brIf(1);
    f.get(x).loadSplat(0).set(xv);
    f.get(a).v128Load(0).get(xv).madd(acc0, fused).set(acc0);
    f.get(a).get(panel).add().v128Load(0).get(xv).madd(acc1, fused).set(acc1);
    f.get(a).i32(16).add().set(a);
    f.get(x).i32(4).add().set(x);
    f.br(0);
    f.end().end();
    emitActivation(f, act, acc0, p1, p2);
    emitActivation(f, act, acc1, p1, p2);
    f.get(pY).get(i).i32(4).shl().add().get(acc0).v128Store(0);
    f.get(pY).get(i).i32(4).shl().add().get(acc1).v128Store(16);
    f.get(a).get(panel).add().set(a); // past the pair's second panel
    f.get(i).i32(2).add().set(i);
    f.br(0);
  }
  f.end().end();
  // The last panel when mPanels is odd.
  f.get(i).get(mPanels).ltS().if_();
  {
    f.get(pBias).get(i).i32(4).shl().add().v128Load(0).set(acc0);
    f.get(pX).set(x);
    f.get(a).get(panel).add().set(end);
    f.block().loop();
    f.get(a).get(end).geU().brIf(1);
    f.get(a).v128Load(0).get(x).loadSplat(0).madd(acc0, fused).set(acc0);
    f.get(a).i32(16).add().set(a);
    f.get(x).i32(4).add().set(x);
    f.br(0);
    f.end().end();
    emitActivation(f, act, acc0, p1, p2);
    f.get(pY).get(i).i32(4).shl().add().get(acc0).v128Store(0);
  }
  f.end();
  return f;
}

/** Depthwise geometry baked into one generated kernel. */
export interface DepthwiseSpec {
  kh: number;
  kw: number;
  /** 1 or 2. */
  sw: number;
  sh: number;
  dh: number;
  dw: number;
  act: WasmActivation;
}

export function depthwiseName(s: DepthwiseSpec): string {
  return `dw_${s.kh}x${s.kw}_s${s.sh}x${s.sw}_d${s.dh}x${s.dw}_${s.act}`;
}

/**
 * dw_…(src, wp, wts, bias, dst, oh, ow, p1, p2, odd): one channel of a depthwise conv over a
 * zero-padded plane (rows of wp floats): window (oy, ox) starts at src + (oy·sh·wp + ox)·4.
 * Four adjacent output columns per v128. With horizontal stride 2 the plane comes split in
 * two (padSplitKernel): its even columns at src, its odd ones `odd` bytes further, each wp
 * floats wide; tap kx of output ox is then column ox + ⌊kx·dw/2⌋ of one of them, so a tap is
 * one plain load (with the columns interleaved it was two loads and a shuffle per tap). The
 * padding is in the plane, so the interior needs no bounds checks: each row runs two vectors
 * (8 outputs) per iteration while they fit, then one, then the last vector of the row is moved
 * back to end at ow − 1 (recomputing a few outputs) so nothing is written past the row; rows
 * narrower than 4 store lane by lane. Taps are splatted once per channel into registers (up to
 * 3×3 with two vectors in flight, 5×5 with one) and splat-loaded otherwise.
 */
export function depthwiseKernel(s: DepthwiseSpec): Fn {
  const f = new Fn(depthwiseName(s), [I32, I32, I32, F32, I32, I32, I32, F32, F32, I32]);
  const [src, wp, wts, bias, dst, oh, ow, p1, p2, odd] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const split = s.sw === 2;
  const taps = s.kh * s.kw;
  // Two vectors per iteration when the taps and both vectors' accumulators fit the ~15 xmm
  // registers V8 has; otherwise one vector, with one accumulator per filter row.
  const pair = taps <= 9;
  const inRegs = taps <= 9;
  const oy = f.local(I32);
  const x = f.local(I32);
  const rowStep = f.local(I32); // sh·wp·4
  const tapRow = f.local(I32); // dh·wp·4
  const rowBase = f.local(I32);
  const out = f.local(I32);
  const base = f.local(I32);
  const baseOdd = f.local(I32); // base + odd (split planes)
  const ow4 = f.local(I32);
  const ow8 = f.local(I32);
  const tapv = inRegs ? Array.from({ length: taps }, () => f.local(V128)) : [];
  const vb = f.local(V128);
  // Accumulators: one vector: one per filter row (up to 5, independent add chains); two
  // vectors: two chains each.
  const chains1 = Math.min(s.kh, 5);
  const accA = Array.from({ length: chains1 }, () => f.local(V128));
  const accB = pair ? Array.from({ length: Math.min(2, s.kh) }, () => f.local(V128)) : [];
  const accA2 = pair ? accA.slice(0, Math.min(2, s.kh)) : [];
  // Every output is summed in the same order, whichever loop computes it.
  const acc1 = pair ? accA2 : accA;
  f.get(bias).splat().set(vb);
  if (inRegs) for (let t = 0; t < taps; t++) f.get(wts).loadSplat(t * 4).set(tapv[t]!);
  f.get(wp).i32(4 * s.sh).mul().set(rowStep);
  f.get(wp).i32(4 * s.dh).mul().set(tapRow);
  f.get(ow).i32(4).sub().set(ow4);
  f.get(ow).i32(8).sub().set(ow8);
  f.get(src).set(rowBase);
  f.get(dst).set(out);

  /** Emits acc = bias + Σ taps for the vector whose window starts at byte address `base` + off. */
  const emitTaps = (vecs: { accs: number[]; off: number }[]): void => {
    for (let ky = 0; ky < s.kh; ky++) {
      if (ky === 0) f.get(rowBase).set(base);
      else f.get(base).get(tapRow).add().set(base);
      if (split) f.get(base).get(odd).add().set(baseOdd);
      for (let kx = 0; kx < s.kw; kx++) {
        const t = ky * s.kw + kx;
        for (const v of vecs) {
          const chain = v.accs[ky % v.accs.length]!;
          const first = kx === 0 && ky < v.accs.length;
          const c = kx * s.dw; // the tap's column offset in the unsplit plane
          if (!first) f.get(chain);
          else if (ky === 0) f.get(vb);
          if (inRegs) f.get(tapv[t]!);
          else f.get(wts).loadSplat(t * 4);
          if (!split) f.get(base).v128Load(v.off + c * 4);
          else f.get(c % 2 === 0 ? base : baseOdd).v128Load(v.off + (c >> 1) * 4);
          f.fmul();
          if (!first || ky === 0) f.fadd();
          f.set(chain);
        }
      }
    }
    for (const v of vecs) for (let i = 1; i < v.accs.length; i++) f.get(v.accs[0]!).get(v.accs[i]!).fadd().set(v.accs[0]!);
    emitActivations(
      f,
      s.act,
      vecs.map((v) => v.accs[0]!),
      p1,
      p2,
    );
  };
  // rowBase walks along the row (the window of column x); rowStart and outRow keep the row's start.
  const rowStart = f.local(I32);
  const outRow = f.local(I32);

  f.i32(0).set(oy);
  f.block().loop();
  {
    f.get(oy).get(oh).geS().brIf(1);
    f.get(rowBase).set(rowStart);
    f.get(out).set(outRow);
    f.i32(0).set(x);
    if (pair) {
      // Two vectors per iteration: x ≤ ow − 8.
      f.block().loop();
      f.get(x).get(ow8).gtS().brIf(1);
      emitTaps([
        { accs: accA2, off: 0 },
        { accs: accB, off: 16 },
      ]);
      f.get(outRow).get(accA2[0]!).v128Store(0);
      f.get(outRow).get(accB[0]!).v128Store(16);
      f.get(x).i32(8).add().set(x);
      f.get(rowBase).i32(32).add().set(rowBase);
      f.get(outRow).i32(32).add().set(outRow);
      f.br(0);
      f.end().end();
    }
    // One vector per iteration: x ≤ ow − 4.
    f.block().loop();
    f.get(x).get(ow4).gtS().brIf(1);
    emitTaps([{ accs: acc1, off: 0 }]);
    f.get(outRow).get(acc1[0]!).v128Store(0);
    f.get(x).i32(4).add().set(x);
    f.get(rowBase).i32(16).add().set(rowBase);
    f.get(outRow).i32(16).add().set(outRow);
    f.br(0);
    f.end().end();
    // Leftover columns: x < ow.
    f.get(x).get(ow).ltS().if_();
    {
      f.get(ow).i32(4).geS().if_();
      {
        // The last vector, moved back to end at ow − 1: shift by (x − (ow − 4)) columns.
        f.get(rowStart).get(ow4).i32(4).mul().add().set(rowBase);
        emitTaps([{ accs: acc1, off: 0 }]);
        f.get(out).get(ow4).i32(2).shl().add().get(acc1[0]!).v128Store(0);
      }
      f.else_();
      {
        emitTaps([{ accs: acc1, off: 0 }]);
        for (let lane = 0; lane < 4; lane++) {
          f.get(ow).i32(lane).gtS().if_();
          f.get(out).get(acc1[0]!).extractLane(lane).f32Store(lane * 4);
          f.end();
        }
      }
      f.end();
    }
    f.end();
    f.get(rowStart).get(rowStep).add().set(rowBase);
    f.get(out).get(ow).i32(2).shl().add().set(out);
    f.get(oy).i32(1).add().set(oy);
    f.br(0);
  }
  f.end().end();
  return f;
}

/**
 * dwc_…(pIn, h, w, pPad, wp, pt, pl, hp, pW, pBias, pOut, oh, ow, p1, p2, c0, c1): channels
 * [c0, c1) of a depthwise conv in one call: for each, the zero-bordered plane at pPad (one
 * plane, reused for every channel, so it stays in cache; function 0 of the module: padplane,
 * or padsplit for horizontal stride 2, whose plane is wp = ⌈padded width / 2⌉ floats wide)
 * then the kernel (function 1). Input planes h·w floats apart, weights kh·kw, outputs oh·ow;
 * bias one float per channel. One call per chunk of channels keeps thread hand-offs and
 * JS→wasm calls out of the per-channel cost.
 */
export function depthwiseChannelsKernel(s: DepthwiseSpec): Fn {
  const f = new Fn(`dwc_${depthwiseName(s).slice(3)}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, F32, I32, I32]);
  const [pIn, h, w, pPad, wp, pt, pl, hp, pW, pBias, pOut, oh, ow, p1, p2, c0, c1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
  const ch = f.local(I32);
  const padPtr = f.local(I32);
  const odd = f.local(I32);
  if (s.sw === 2) f.get(hp).get(wp).mul().i32(4).add().i32(2).shl().set(odd); // see padSplitKernel
  else f.i32(0).set(odd);
  f.get(c0).set(ch);
  f.block().loop();
  f.get(ch).get(c1).geS().brIf(1);
  f.get(pPad).set(padPtr);
  f.get(pIn).get(ch).get(h).mul().get(w).mul().i32(2).shl().add().get(h).get(w).get(padPtr).get(wp).get(pt).get(pl).get(hp).call(0);
  f.get(padPtr).get(wp).get(pW).get(ch).i32(4 * s.kh * s.kw).mul().add();
  f.get(pBias).get(ch).i32(2).shl().add().f32Load(0);
  f.get(pOut).get(ch).get(oh).mul().get(ow).mul().i32(2).shl().add().get(oh).get(ow).get(p1).get(p2).get(odd).call(1);
  f.get(ch).i32(1).add().set(ch);
  f.br(0);
  f.end().end();
  return f;
}

/** Floats a padsplit plane pair takes (with its row buffer and slack), for wp2 = ⌈padded width / 2⌉. */
export function splitPlaneFloats(hp: number, wp2: number): number {
  return 2 * (hp * wp2 + 4) + 8 * Math.ceil(wp2 / 4) + 64;
}

/**
 * padsplit(src, h, w, dst, wp2, pt, pl, hp): the zero-bordered plane of padplane, split by
 * column parity: its even columns as a plane of hp rows × wp2 floats at dst, its odd columns as
 * another at dst + odd, odd = (hp·wp2 + 4)·4 bytes (4 floats apart, so the last row's last
 * vector may run over). Each padded row is built in a row buffer after the two planes, then
 * split eight floats at a time with two shuffles.
 */
export function padSplitKernel(name: string): Fn {
  const f = new Fn(name, [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [src, h, w, dst, wp2, pt, pl, hp] = [0, 1, 2, 3, 4, 5, 6, 7];
  const y = f.local(I32);
  const odd = f.local(I32);
  const row = f.local(I32);
  const d = f.local(I32);
  const e = f.local(I32);
  const e4 = f.local(I32);
  const sp = f.local(I32);
  const r = f.local(I32);
  const va = f.local(V128);
  const vb = f.local(V128);
  f.get(hp).get(wp2).mul().i32(4).add().i32(2).shl().set(odd);
  f.get(dst).get(odd).i32(1).shl().add().set(row);
  f.i32(0).set(y);
  f.block().loop();
  {
    f.get(y).get(hp).geS().brIf(1);
    // Zero the row buffer: 8·⌈wp2/4⌉ floats, all that the split below reads.
    f.get(row).set(d);
    f.get(row).get(wp2).i32(3).add().i32(-4).and().i32(3).shl().add().set(e);
    f.block().loop();
    f.get(d).get(e).geU().brIf(1);
    f.get(d).v128Zero().v128Store(0);
    f.get(d).i32(16).add().set(d);
    f.br(0);
    f.end().end();
    // Interior rows: the source row at column pl.
    f.get(y).get(pt).geS().get(y).get(pt).get(h).add().ltS().and().if_();
    {
      f.get(src).get(y).get(pt).sub().get(w).mul().i32(2).shl().add().set(sp);
      f.get(row).get(pl).i32(2).shl().add().set(d);
      emitCopy(f, d, sp, w, e, e4);
    }
    f.end();
    // Split: even columns to the first plane, odd to the second.
    f.get(row).set(r);
    f.get(dst).get(y).get(wp2).mul().i32(2).shl().add().set(d);
    f.get(d).get(wp2).i32(2).shl().add().set(e);
    f.block().loop();
    f.get(d).get(e).geU().brIf(1);
    f.get(r).v128Load(0).set(va);
    f.get(r).v128Load(16).set(vb);
    f.get(d).get(va).get(vb).shuffle32(0, 2, 4, 6).v128Store(0);
    f.get(d).get(odd).add().get(va).get(vb).shuffle32(1, 3, 5, 7).v128Store(0);
    f.get(r).i32(32).add().set(r);
    f.get(d).i32(16).add().set(d);
    f.br(0);
    f.end().end();
    f.get(y).i32(1).add().set(y);
    f.br(0);
  }
  f.end().end();
  return f;
}

/**
 * im2col_s<sw>(src, wp, planeBytes, cg, kh, kw, dh, dw, sh, oy0, oy1, ow, dst, ld): the
 * column matrix of output rows [oy0, oy1) from cg zero-padded planes (rows of wp floats,
 * planes planeBytes apart): row r = (ci, ky, kx) of dst (ld floats apart) holds, for each
 * output (oy, ox), src[ci][oy·sh + ky·dh][ox·sw + kx·dw]. Each output row is gathered four
 * columns per v128 (stride 2: two loads and a shuffle); the last vector may write up to three
 * floats past the row, which the next row (or the padding of dst) absorbs.
 */
export function im2colKernel(sw: 1 | 2): Fn {
  const f = new Fn(`im2col_s${sw}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [src, wp, planeBytes, cg, kh, kw, dh, dw, sh, oy0, oy1, ow, dst, ld] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const ci = f.local(I32);
  const ky = f.local(I32);
  const kx = f.local(I32);
  const oy = f.local(I32);
  const rowDst = f.local(I32);
  const d = f.local(I32);
  const s = f.local(I32);
  const e = f.local(I32);
  const plane = f.local(I32);
  f.get(dst).set(rowDst);
  f.get(src).set(plane);
  f.i32(0).set(ci);
  f.block().loop();
  f.get(ci).get(cg).geS().brIf(1);
  {
    f.i32(0).set(ky);
    f.block().loop();
    f.get(ky).get(kh).geS().brIf(1);
    {
      f.i32(0).set(kx);
      f.block().loop();
      f.get(kx).get(kw).geS().brIf(1);
      {
        f.get(rowDst).set(d);
        f.get(oy0).set(oy);
        f.block().loop();
        f.get(oy).get(oy1).geS().brIf(1);
        {
          // s = plane + ((oy·sh + ky·dh)·wp + kx·dw)·4
          f.get(plane).get(oy).get(sh).mul().get(ky).get(dh).mul().add().get(wp).mul().get(kx).get(dw).mul().add().i32(2).shl().add().set(s);
          f.get(d).get(ow).i32(2).shl().add().set(e);
          f.block().loop();
          f.get(d).get(e).geU().brIf(1);
          f.get(d);
          if (sw === 1) f.get(s).v128Load(0);
          else f.get(s).v128Load(0).get(s).v128Load(16).shuffle32(0, 2, 4, 6);
          f.v128Store(0);
          f.get(d).i32(16).add().set(d);
          f.get(s).i32(16 * sw).add().set(s);
          f.br(0);
          f.end().end();
          f.get(e).set(d);
          f.get(oy).i32(1).add().set(oy);
          f.br(0);
        }
        f.end().end();
        f.get(rowDst).get(ld).i32(2).shl().add().set(rowDst);
        f.get(kx).i32(1).add().set(kx);
        f.br(0);
      }
      f.end().end();
      f.get(ky).i32(1).add().set(ky);
      f.br(0);
    }
    f.end().end();
    f.get(plane).get(planeBytes).add().set(plane);
    f.get(ci).i32(1).add().set(ci);
    f.br(0);
  }
  f.end().end();
  return f;
}

/** Emits a copy of n floats (i32 local) from address local s to d, both advanced; e and e4 are scratch locals. */
function emitCopy(f: Fn, d: number, s: number, n: number, e: number, e4: number): void {
  f.get(d).get(n).i32(2).shl().add().set(e);
  f.get(d).get(n).i32(-4).and().i32(2).shl().add().set(e4);
  f.block().loop();
  f.get(d).get(e4).geU().brIf(1);
  f.get(d).get(s).v128Load(0).v128Store(0);
  f.get(s).i32(16).add().set(s);
  f.get(d).i32(16).add().set(d);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(d).get(e).geU().brIf(1);
  f.get(d).get(s).f32Load(0).f32Store(0);
  f.get(s).i32(4).add().set(s);
  f.get(d).i32(4).add().set(d);
  f.br(0);
  f.end().end();
}

/**
 * padplane(src, h, w, dst, wp, pt, pl, hp): writes the whole zero-bordered plane at dst
 * (hp rows of wp floats) from the h×w plane at src placed at row pt, column pl. Writing the
 * zeros here (instead of clearing the scratch first) touches each padded float once and
 * never writes outside the plane, so threads can fill neighbouring planes at once.
 */
export function padPlaneKernel(name = 'padplane'): Fn {
  const f = new Fn(name, [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [src, h, w, dst, wp, pt, pl, hp] = [0, 1, 2, 3, 4, 5, 6, 7];
  const y = f.local(I32);
  const d = f.local(I32);
  const e = f.local(I32);
  const e4 = f.local(I32);
  const s = f.local(I32);
  f.i32(0).set(y);
  f.block().loop();
  {
    f.get(y).get(hp).geS().brIf(1);
    // Zero the row.
    f.get(dst).get(y).get(wp).mul().i32(2).shl().add().tee(d).get(wp).i32(2).shl().add().set(e);
    f.get(d).get(wp).i32(-4).and().i32(2).shl().add().set(e4);
    f.block().loop();
    f.get(d).get(e4).geU().brIf(1);
    f.get(d).v128Zero().v128Store(0);
    f.get(d).i32(16).add().set(d);
    f.br(0);
    f.end().end();
    f.block().loop();
    f.get(d).get(e).geU().brIf(1);
    f.get(d).f32(0).f32Store(0);
    f.get(d).i32(4).add().set(d);
    f.br(0);
    f.end().end();
    // Interior rows: copy the source row over the zeros.
    f.get(y).get(pt).geS().get(y).get(pt).get(h).add().ltS().and().if_();
    {
      f.get(src).get(y).get(pt).sub().get(w).mul().i32(2).shl().add().set(s);
      f.get(dst).get(y).get(wp).mul().get(pl).add().i32(2).shl().add().set(d);
      emitCopy(f, d, s, w, e, e4);
    }
    f.end();
    f.get(y).i32(1).add().set(y);
    f.br(0);
  }
  f.end().end();
  return f;
}

/**
 * act_<kind>(ptr, n, p1, p2): v = act(v) in place over n floats (p1, p2: the epilogue's
 * parameters, see actParams), eight vectors at a time (interleaved, see emitActivations), then
 * one at a time, then the last n mod 4 lane by lane (from a full load; the floats past the end
 * are read, never written). For sigmoid and SiLU after the depthwise kernel, whose
 * one-vector-at-a-time loop would leave the exp chains latency-bound, and for activations
 * that are nodes of their own.
 */
export function activationPassKernel(act: Exclude<WasmActivation, 'none'>): Fn {
  const f = new Fn(`act_${act}`, [I32, I32, F32, F32]);
  const [ptr, n, p1, p2] = [0, 1, 2, 3];
  const vs = Array.from({ length: 8 }, () => f.local(V128));
  const end = f.local(I32);
  const end4 = f.local(I32);
  const end32 = f.local(I32);
  f.get(ptr).get(n).i32(2).shl().add().set(end);
  f.get(ptr).get(n).i32(-4).and().i32(2).shl().add().set(end4);
  f.get(ptr).get(n).i32(-32).and().i32(2).shl().add().set(end32);
  f.block().loop();
  f.get(ptr).get(end32).geU().brIf(1);
  vs.forEach((v, i) => f.get(ptr).v128Load(16 * i).set(v));
  emitActivations(f, act, vs, p1, p2);
  vs.forEach((v, i) => f.get(ptr).get(v).v128Store(16 * i));
  f.get(ptr).i32(128).add().set(ptr);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(ptr).get(end4).geU().brIf(1);
  f.get(ptr).v128Load(0).set(vs[0]!);
  emitActivations(f, act, [vs[0]!], p1, p2);
  f.get(ptr).get(vs[0]!).v128Store(0);
  f.get(ptr).i32(16).add().set(ptr);
  f.br(0);
  f.end().end();
  f.get(ptr).get(end).ltU().if_();
  {
    f.get(ptr).v128Load(0).set(vs[0]!);
    emitActivations(f, act, [vs[0]!], p1, p2);
    emitTailStores(f, ptr, end, ptr, vs[0]!);
  }
  f.end();
  return f;
}

/**
 * affine_<act>(pX, pY, inner, pA, pB, c0, c1, p1, p2): y = act(a[c]·x + b[c]) over the channel
 * planes c0 ≤ c < c1 of inner floats each (plane c at pX + 4·c·inner; a and b one float per
 * channel at pA, pB): batch norm at inference, with its fused activation. Each plane runs in
 * vectors, its last inner mod 4 floats lane by lane from a full load (floats past the plane are
 * read, never written).
 */
export function affineKernel(act: WasmActivation): Fn {
  const f = new Fn(`affine_${act}`, [I32, I32, I32, I32, I32, I32, I32, F32, F32]);
  const [pX, pY, inner, pA, pB, c0, c1, p1, p2] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const c = f.local(I32);
  const x = f.local(I32);
  const y = f.local(I32);
  const end4 = f.local(I32);
  const end = f.local(I32);
  const a = f.local(V128);
  const b = f.local(V128);
  const v = f.local(V128);
  f.get(c0).set(c);
  f.get(c).get(c1).geS().brIf(0);
  f.block().loop(); // channels
  {
    f.get(pA).get(c).i32(2).shl().add().loadSplat(0).set(a);
    f.get(pB).get(c).i32(2).shl().add().loadSplat(0).set(b);
    // x, y: the plane's first float; end4 past its last whole vector, end past the plane.
    f.get(c).get(inner).mul().i32(2).shl().tee(x).get(pY).add().set(y);
    f.get(x).get(pX).add().set(x);
    f.get(x).get(inner).i32(-4).and().i32(2).shl().add().set(end4);
    f.get(x).get(inner).i32(2).shl().add().set(end);
    f.block().loop();
    f.get(x).get(end4).geU().brIf(1);
    f.get(x).v128Load(0).get(a).fmul().get(b).fadd().set(v);
    emitActivation(f, act, v, p1, p2);
    f.get(y).get(v).v128Store(0);
    f.get(x).i32(16).add().set(x);
    f.get(y).i32(16).add().set(y);
    f.br(0);
    f.end().end();
    f.get(x).get(end).ltU().if_();
    {
      f.get(x).v128Load(0).get(a).fmul().get(b).fadd().set(v);
      emitActivation(f, act, v, p1, p2);
      emitTailStores(f, x, end, y, v);
    }
    f.end();
    f.get(c).i32(1).add().tee(c).get(c1).ltS().brIf(0);
  }
  f.end().end();
  return f;
}

/**
 * The last floats of a run, lane by lane: lane k of the vector `v` is stored at dst + 4k while
 * probe + 4k < end (probe walks the run that `end` bounds; dst the output beside it).
 */
function emitTailStores(f: Fn, probe: number, end: number, dst: number, v: number): void {
  for (let lane = 0; lane < 3; lane++) {
    f.get(probe).i32(4 * lane).add().get(end).ltU().if_();
    f.get(dst).get(v).extractLane(lane).f32Store(4 * lane);
    f.end();
  }
}

/** The float ops of the elementwise kernels, as their vector instruction. */
export const BINARY_OPS = { Add: 'fadd', Sub: 'fsub', Mul: 'fmul', Div: 'fdiv' } as const;
export type WasmBinaryOp = keyof typeof BINARY_OPS;

/**
 * bin_<op>_<kind>(pA, ra, pB, rb, pY, rows, n): rows of n outputs, y[r·n + k] = a ∘ b with
 * row r of A at pA + r·ra and of B at pB + r·rb (bytes). kind vv: both rows are vectors;
 * vs: B holds one value per row (the SE gate, a scalar); sv: A does. Four outputs per v128;
 * a row's last partial vector is computed from a full load (the few floats read past the row
 * are never used) and stored lane by lane.
 */
export function binaryKernel(op: WasmBinaryOp, kind: 'vv' | 'vs' | 'sv'): Fn {
  const f = new Fn(`bin_${op}_${kind}`, [I32, I32, I32, I32, I32, I32, I32]);
  const [pA, ra, pB, rb, pY, rows, n] = [0, 1, 2, 3, 4, 5, 6];
  const r = f.local(I32);
  const a = f.local(I32);
  const b = f.local(I32);
  const y = f.local(I32);
  const end = f.local(I32);
  const end4 = f.local(I32);
  const sv = f.local(V128);
  const v = f.local(V128);
  const emitOp = (): void => {
    if (kind === 'sv') f.get(sv);
    else f.get(a).v128Load(0);
    if (kind === 'vs') f.get(sv);
    else f.get(b).v128Load(0);
    f[BINARY_OPS[op]]();
  };
  f.get(pY).set(y);
  f.i32(0).set(r);
  f.block().loop();
  {
    f.get(r).get(rows).geS().brIf(1);
    f.get(pA).get(r).get(ra).mul().add().set(a);
    f.get(pB).get(r).get(rb).mul().add().set(b);
    if (kind === 'vs') f.get(b).loadSplat(0).set(sv);
    if (kind === 'sv') f.get(a).loadSplat(0).set(sv);
    f.get(y).get(n).i32(2).shl().add().set(end);
    f.get(y).get(n).i32(-4).and().i32(2).shl().add().set(end4);
    f.block().loop();
    f.get(y).get(end4).geU().brIf(1);
    f.get(y);
    emitOp();
    f.v128Store(0);
    if (kind !== 'sv') f.get(a).i32(16).add().set(a);
    if (kind !== 'vs') f.get(b).i32(16).add().set(b);
    f.get(y).i32(16).add().set(y);
    f.br(0);
    f.end().end();
    f.get(y).get(end).ltU().if_();
    {
      emitOp();
      f.set(v);
      emitTailStores(f, y, end, y, v);
    }
    f.end();
    f.get(end).set(y);
    f.get(r).i32(1).add().set(r);
    f.br(0);
  }
  f.end().end();
  return f;
}

/**
 * mean_rows(pX, pY, rows, n, inv): y[r] = inv · Σ x[r·n + k] over k < n (the global average
 * pool: rows are channel planes). Two vector accumulators, then the lanes and the last n mod 8
 * floats added in order.
 */
export function meanRowsKernel(): Fn {
  const f = new Fn('mean_rows', [I32, I32, I32, I32, F32]);
  const [pX, pY, rows, n, inv] = [0, 1, 2, 3, 4];
  const r = f.local(I32);
  const x = f.local(I32);
  const end = f.local(I32);
  const end8 = f.local(I32);
  const acc0 = f.local(V128);
  const acc1 = f.local(V128);
  const s = f.local(F32);
  f.get(pX).set(x);
  f.i32(0).set(r);
  f.block().loop();
  {
    f.get(r).get(rows).geS().brIf(1);
    f.get(x).get(n).i32(2).shl().add().set(end);
    f.get(x).get(n).i32(-8).and().i32(2).shl().add().set(end8);
    f.v128Zero().set(acc0);
    f.v128Zero().set(acc1);
    f.block().loop();
    f.get(x).get(end8).geU().brIf(1);
    f.get(acc0).get(x).v128Load(0).fadd().set(acc0);
    f.get(acc1).get(x).v128Load(16).fadd().set(acc1);
    f.get(x).i32(32).add().set(x);
    f.br(0);
    f.end().end();
    f.get(acc0).get(acc1).fadd().set(acc0);
    f.get(acc0).extractLane(0).get(acc0).extractLane(1).f32add().get(acc0).extractLane(2).f32add().get(acc0).extractLane(3).f32add().set(s);
    f.block().loop();
    f.get(x).get(end).geU().brIf(1);
    f.get(s).get(x).f32Load(0).f32add().set(s);
    f.get(x).i32(4).add().set(x);
    f.br(0);
    f.end().end();
    f.get(pY).get(r).i32(2).shl().add().get(s).get(inv).f32mul().f32Store(0);
    f.get(r).i32(1).add().set(r);
    f.br(0);
  }
  f.end().end();
  return f;
}

/**
 * copy2d(src, srcRow, srcCol, dst, dstRow, dstCol, rows, cols): dst[r, c] = src[r, c] for a
 * rows × cols matrix, each side with its own row and column strides in bytes (a transpose is a
 * copy with swapped strides). Rows of unit column stride on both sides copy four floats at a
 * time. The data moves of the GEMM's leftovers and the classifier's inputs, as kernel calls,
 * so that a run can be replayed as a list of calls (see plan.ts).
 */
export function copy2dKernel(): Fn {
  const f = new Fn('copy2d', [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [src, sRow, sCol, dst, dRow, dCol, rows, cols] = [0, 1, 2, 3, 4, 5, 6, 7];
  const r = f.local(I32);
  const s = f.local(I32);
  const d = f.local(I32);
  const e = f.local(I32);
  const e4 = f.local(I32);
  f.i32(0).set(r);
  f.block().loop();
  {
    f.get(r).get(rows).geS().brIf(1);
    f.get(src).get(r).get(sRow).mul().add().set(s);
    f.get(dst).get(r).get(dRow).mul().add().set(d);
    f.get(sCol).i32(4).ne().get(dCol).i32(4).ne().or().if_();
    {
      f.get(d).get(cols).get(dCol).mul().add().set(e);
      f.block().loop();
      f.get(d).get(e).geU().brIf(1);
      f.get(d).get(s).f32Load(0).f32Store(0);
      f.get(s).get(sCol).add().set(s);
      f.get(d).get(dCol).add().set(d);
      f.br(0);
      f.end().end();
    }
    f.else_();
    emitCopy(f, d, s, cols, e, e4);
    f.end();
    f.get(r).i32(1).add().set(r);
    f.br(0);
  }
  f.end().end();
  return f;
}

/** fill(dst, n, value): n floats at dst set to value. */
export function fillKernel(): Fn {
  const f = new Fn('fill', [I32, I32, F32]);
  const [dst, n, value] = [0, 1, 2];
  const e = f.local(I32);
  const e4 = f.local(I32);
  const v = f.local(V128);
  f.get(value).splat().set(v);
  f.get(dst).get(n).i32(2).shl().add().set(e);
  f.get(dst).get(n).i32(-4).and().i32(2).shl().add().set(e4);
  f.block().loop();
  f.get(dst).get(e4).geU().brIf(1);
  f.get(dst).get(v).v128Store(0);
  f.get(dst).i32(16).add().set(dst);
  f.br(0);
  f.end().end();
  f.block().loop();
  f.get(dst).get(e).geU().brIf(1);
  f.get(dst).get(value).f32Store(0);
  f.get(dst).i32(4).add().set(dst);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * pool_<max|avg>_s<sw>(src, wp, dst, oh, ow, kh, kw, sh, dh, dw, scale): one plane of a 2-D
 * max or average pool from a padded plane at src (rows of wp floats, borders filled with −∞
 * or 0, big enough for every window) to oh × ow outputs at dst. Four output columns per v128
 * (stride 2: two loads and a shuffle); the window's taps in row-major order, combined with
 * pmax (a NaN never wins, as in the TypeScript kernel) or summed and multiplied by `scale`
 * (1 / the window size). The last n mod 4 outputs of a row are stored lane by lane.
 */
export function poolKernel(kind: 'max' | 'avg', sw: 1 | 2): Fn {
  const f = new Fn(`pool_${kind}_s${sw}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32]);
  const [src, wp, dst, oh, ow, kh, kw, sh, dh, dw, scale] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const oy = f.local(I32);
  const ox = f.local(I32);
  const ky = f.local(I32);
  const kx = f.local(I32);
  const row = f.local(I32); // address of the window's first tap row for these columns
  const s = f.local(I32);
  const d = f.local(I32);
  const acc = f.local(V128);
  const vscale = f.local(V128);
  f.get(scale).splat().set(vscale);
  f.get(dst).set(d);
  f.i32(0).set(oy);
  f.block().loop();
  f.get(oy).get(oh).geS().brIf(1);
  {
    f.i32(0).set(ox);
    f.block().loop();
    f.get(ox).get(ow).geS().brIf(1);
    {
      // row = src + 4·(oy·sh·wp + ox·sw)
      f.get(src).get(oy).get(sh).mul().get(wp).mul().get(ox).i32(sw).mul().add().i32(2).shl().add().set(row);
      if (kind === 'max') f.f32(-Infinity).splat().set(acc);
      else f.v128Zero().set(acc);
      f.i32(0).set(ky);
      f.block().loop();
      f.get(ky).get(kh).geS().brIf(1);
      {
        f.get(row).get(ky).get(dh).mul().get(wp).mul().i32(2).shl().add().set(s);
        f.i32(0).set(kx);
        f.block().loop();
        f.get(kx).get(kw).geS().brIf(1);
        f.get(acc);
        if (sw === 1) f.get(s).v128Load(0);
        else f.get(s).v128Load(0).get(s).v128Load(16).shuffle32(0, 2, 4, 6);
        if (kind === 'max') f.fpmax();
        else f.fadd();
        f.set(acc);
        f.get(s).get(dw).i32(2).shl().add().set(s);
        f.get(kx).i32(1).add().set(kx);
        f.br(0);
        f.end().end();
      }
      f.get(ky).i32(1).add().set(ky);
      f.br(0);
      f.end().end();
      if (kind === 'avg') f.get(acc).get(vscale).fmul().set(acc);
      // Four outputs, or the row's last ones lane by lane.
      f.get(ox).i32(4).add().get(ow).gtS().eqz().if_();
      f.get(d).get(acc).v128Store(0);
      f.else_();
      for (let lane = 0; lane < 3; lane++) {
        f.get(ox).i32(lane).add().get(ow).ltS().if_();
        f.get(d).get(acc).extractLane(lane).f32Store(4 * lane);
        f.end();
      }
      f.end();
      f.get(d).i32(16).add().set(d);
      f.get(ox).i32(4).add().set(ox);
      f.br(0);
    }
    f.end().end();
    // d went past the row's end by the padding of the last vector: back to the next row's start.
    f.get(dst).get(oy).i32(1).add().get(ow).mul().i32(2).shl().add().set(d);
    f.get(oy).i32(1).add().set(oy);
    f.br(0);
  }
  f.end().end();
  return f;
}
