import { F32, Fn, I32, V128 } from './emit.js';
import { type WasmActivation, emitActivations } from './kernels.js';

/**
 * The transforms of Winograd's F(2×2, 3×3) (Lavin and Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2016): a 3×3 stride-1 conv computes each 2×2 output tile from a 4×4 input
 * tile as Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, 16 multiplies per input channel instead of 36. The 16
 * elementwise products over channels are 16 GEMMs (see winograd.ts); these kernels move data
 * in and out of that form, four tiles of a tile row per vector.
 *
 *   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]   Aᵀ = [1 1 1 0; 0 1 −1 −1]
 */

/**
 * wino_in(pPad, wp, plane, tilesH, tilesW4, pV, vChannel, xi, c0, c1): for channels c0 ≤ c < c1,
 * the zero-bordered plane at pPad + c·plane bytes (rows of wp floats; tile (ty, tx) reads rows
 * 2ty…2ty+3, columns 2tx…2tx+3) becomes V[ξ] (Bᵀ d B)[ξ] of every tile: float t = ty·tilesW4 + tx
 * of channel c's row of matrix ξ, at pV + ξ·xi + c·vChannel + 4t. tilesW4 is a multiple of 4
 * and the plane at least 2·tilesW4 + 4 floats wide (four tiles read 12 floats).
 */
export function winogradInputKernel(): Fn {
  const f = new Fn('wino_in', [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32]);
  const [pPad, wp, plane, tilesH, tilesW4, pV, vChannel, xi, c0, c1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const c = f.local(I32);
  const ty = f.local(I32);
  const tx = f.local(I32);
  const src = f.local(I32); // the 4×4 tiles' top-left float
  const dst = f.local(I32); // V[0] at this tile
  const rowBytes = f.local(I32);
  const [v0, v1, v2, e0, o0, e1, o1] = Array.from({ length: 7 }, () => f.local(V128));
  // a[r][j]: row r of d·B (four tiles per vector); rows 0 and 3 are only kept while needed.
  const a = Array.from({ length: 4 }, () => Array.from({ length: 4 }, () => f.local(V128)));

  f.get(wp).i32(2).shl().set(rowBytes);
  f.get(c0).set(c);
  f.get(c).get(c1).geS().brIf(0);
  f.block().loop(); // channels
  {
    f.i32(0).set(ty);
    f.block().loop(); // tile rows
    {
      f.i32(0).set(tx);
      f.block().loop(); // four tiles at a time
      {
        // src = pPad + c·plane + (2ty·wp + 2tx)·4; dst = pV + c·vChannel + (ty·tilesW4 + tx)·4
        f.get(pPad).get(c).get(plane).mul().add();
        f.get(ty).get(rowBytes).mul().i32(1).shl().add();
        f.get(tx).i32(3).shl().add().set(src);
        f.get(pV).get(c).get(vChannel).mul().add();
        f.get(ty).get(tilesW4).mul().get(tx).add().i32(2).shl().add().set(dst);
        const rowOf = (r: number) => {
          // d·B for row r of four tiles: columns 2t…2t+3 of each as even/odd lanes.
          f.get(src);
          if (r > 0) f.get(rowBytes).i32(r).mul().add();
          f.v128Load(0).set(v0);
          f.get(src);
          if (r > 0) f.get(rowBytes).i32(r).mul().add();
          f.v128Load(16).set(v1);
          f.get(src);
          if (r > 0) f.get(rowBytes).i32(r).mul().add();
          f.v128Load(32).set(v2);
          f.get(v0).get(v1).shuffle32(0, 2, 4, 6).set(e0); // column 0 of the four tiles
          f.get(v0).get(v1).shuffle32(1, 3, 5, 7).set(o0); // column 1
          f.get(e0).get(v2).shuffle32(1, 2, 3, 4).set(e1); // column 2
          f.get(o0).get(v2).shuffle32(1, 2, 3, 5).set(o1); // column 3
          const row = a[r]!;
          f.get(e0).get(e1).fsub().set(row[0]!);
          f.get(o0).get(e1).fadd().set(row[1]!);
          f.get(e1).get(o0).fsub().set(row[2]!);
          f.get(o0).get(o1).fsub().set(row[3]!);
        };
        const store = (i: number, emit: (j: number) => void) => {
          for (let j = 0; j < 4; j++) {
            // V[ξ = 4i + j] at dst + ξ·xi
            f.get(dst);
            if (4 * i + j > 0) f.get(xi).i32(4 * i + j).mul().add();
            emit(j);
            f.v128Store(0);
          }
        };
        // Bᵀ on the rows: (a0 − a2, a1 + a2, a2 − a1, a1 − a3), rows 0 and 3 live briefly.
        rowOf(0);
        rowOf(2);
        store(0, (j) => f.get(a[0]![j]!).get(a[2]![j]!).fsub());
        rowOf(1);
        store(1, (j) => f.get(a[1]![j]!).get(a[2]![j]!).fadd());
        store(2, (j) => f.get(a[2]![j]!).get(a[1]![j]!).fsub());
        rowOf(3);
        store(3, (j) => f.get(a[1]![j]!).get(a[3]![j]!).fsub());
        f.get(tx).i32(4).add().tee(tx).get(tilesW4).ltS().brIf(0);
      }
      f.end().end();
      f.get(ty).i32(1).add().tee(ty).get(tilesH).ltS().brIf(0);
    }
    f.end().end();
    f.get(c).i32(1).add().tee(c).get(c1).ltS().brIf(0);
  }
  f.end().end();
  return f;
}

/**
 * wino_out_<act>(pM, mChannel, xi, pY, ldY, planeY, tilesH, tilesW4, pBias, m0, m1, p1, p2): for
 * output channels m0 ≤ m < m1, the 16 products M[ξ] (float t of channel m's row of matrix ξ at
 * pM + ξ·xi + m·mChannel + 4t) become the 2×2 output tiles Aᵀ M A, plus the channel's bias,
 * through the activation, written to the plane at pY + m·planeY (rows ldY bytes apart, 2·tilesH
 * rows of 2·tilesW4 floats: the caller crops).
 */
export function winogradOutputKernel(act: WasmActivation): Fn {
  const f = new Fn(`wino_out_${act}`, [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, F32]);
  const [pM, mChannel, xi, pY, ldY, planeY, tilesH, tilesW4, pBias, m0, m1, p1, p2] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const m = f.local(I32);
  const ty = f.local(I32);
  const tx = f.local(I32);
  const src = f.local(I32);
  const dst = f.local(I32);
  const bias = f.local(V128);
  // s[i][j] = (Aᵀ M)[i][j] for the four tiles; then the four outputs of each tile.
  const s = Array.from({ length: 2 }, () => Array.from({ length: 4 }, () => f.local(V128)));
  const t = f.local(V128);
  const y = Array.from({ length: 4 }, () => f.local(V128)); // y00, y01, y10, y11

  f.get(m0).set(m);
  f.get(m).get(m1).geS().brIf(0);
  f.block().loop(); // channels
  {
    f.get(pBias).get(m).i32(2).shl().add().loadSplat(0).set(bias);
    f.i32(0).set(ty);
    f.block().loop();
    {
      f.i32(0).set(tx);
      f.block().loop();
      {
        f.get(pM).get(m).get(mChannel).mul().add();
        f.get(ty).get(tilesW4).mul().get(tx).add().i32(2).shl().add().set(src);
        f.get(pY).get(m).get(planeY).mul().add();
        f.get(ty).get(ldY).mul().i32(1).shl().add();
        f.get(tx).i32(3).shl().add().set(dst);
        const load = (i: number, j: number) => {
          f.get(src);
          if (4 * i + j > 0) f.get(xi).i32(4 * i + j).mul().add();
          f.v128Load(0);
        };
        for (let j = 0; j < 4; j++) {
          // Aᵀ on the rows: s0 = M0 + M1 + M2, s1 = M1 − M2 − M3 (column j)
          load(1, j);
          f.set(t);
          load(0, j);
          f.get(t).fadd();
          load(2, j);
          f.fadd().set(s[0]![j]!);
          f.get(t);
          load(2, j);
          f.fsub();
          load(3, j);
          f.fsub().set(s[1]![j]!);
        }
        for (let i = 0; i < 2; i++) {
          const r = s[i]!;
          // A on the columns: y_i0 = s0 + s1 + s2, y_i1 = s1 − s2 − s3; then the bias.
          f.get(r[0]!).get(r[1]!).fadd().get(r[2]!).fadd().get(bias).fadd().set(y[2 * i]!);
          f.get(r[1]!).get(r[2]!).fsub().get(r[3]!).fsub().get(bias).fadd().set(y[2 * i + 1]!);
        }
        emitActivations(f, act, y, p1, p2);
        for (let i = 0; i < 2; i++) {
          // Row 2ty + i: y_i0 and y_i1 of the four tiles interleaved, eight floats.
          f.get(dst);
          if (i > 0) f.get(ldY).add();
          f.get(y[2 * i]!).get(y[2 * i + 1]!).shuffle32(0, 4, 1, 5).v128Store(0);
          f.get(dst);
          if (i > 0) f.get(ldY).add();
          f.get(y[2 * i]!).get(y[2 * i + 1]!).shuffle32(2, 6, 3, 7).v128Store(16);
        }
        f.get(tx).i32(4).add().tee(tx).get(tilesW4).ltS().brIf(0);
      }
      f.end().end();
      f.get(ty).i32(1).add().tee(ty).get(tilesH).ltS().brIf(0);
    }
    f.end().end();
    f.get(m).i32(1).add().tee(m).get(m1).ltS().brIf(0);
  }
  f.end().end();
  return f;
}
