import { chunkCount, type Call, splitRange, streamNs } from './pool.js';
import { runtime, wasmKernelsEnabled } from './runtime.js';
import { scratchBytes } from './budget.js';

/** A 2-D pool over `planes` planes of h × w (pads [top, left, bottom, right], resolved). */
export interface Pool2d {
  readonly planes: number;
  readonly h: number;
  readonly w: number;
  readonly oh: number;
  readonly ow: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly dh: number;
  readonly dw: number;
  readonly pads: readonly [number, number, number, number];
}

/**
 * 2-D max and average pooling on the WebAssembly kernels, for planes that live in wasm memory
 * (a graph run's arena): per chunk of planes, each plane is copied into the chunk's own padded
 * plane (borders −∞ for max, 0 for average) and pooled from there. Returns false, having done
 * nothing, for what it does not cover: a width stride other than 1 or 2, or an average whose
 * divisor changes with the position (padding that does not count, or windows past the end).
 */
export function wasmPool2d(kind: 'max' | 'avg', X: Float32Array, Y: Float32Array, g: Pool2d, countIncludePad: boolean): boolean {
  const rt = wasmKernelsEnabled() ? runtime() : null;
  if (!rt || (g.sw !== 1 && g.sw !== 2) || g.planes * g.oh * g.ow === 0) return false;
  const xAt = rt.addressOf(X);
  const yAt = rt.addressOf(Y);
  if (xAt < 0 || yAt < 0) return false;
  const [pt, pl, pb, pr] = g.pads;
  // Rows and columns the windows reach, from the first padded one.
  const reachH = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const reachW = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  if (kind === 'avg') {
    const [hLimit, wLimit] = countIncludePad ? [pt + g.h + pb, pl + g.w + pr] : [g.h, g.w];
    const padded = pt + pl + pb + pr > 0;
    if (reachH > hLimit || reachW > wLimit || (padded && !countIncludePad)) return false;
  }
  const hp = Math.max(pt + g.h + pb, reachH);
  // The last vector of a row reads 4·sw floats from its first column.
  const wp = Math.max(pl + g.w + pr, Math.ceil(g.ow / 4) * 4 * g.sw + (g.kw - 1) * g.dw);
  const plane = hp * wp + 16;
  const chunks = splitRange(g.planes, chunkCount(streamNs(g.planes * (2 * hp * wp + g.kh * g.kw * g.oh * g.ow))));
  const base = rt.alloc(scratchBytes(4 * plane * chunks.length));
  try {
    const fillValue = kind === 'max' ? -Infinity : 0;
    const scale = 1 / (g.kh * g.kw);
    const calls = chunks.map(([p0, p1], q): Call[] => {
      const pad = base + 4 * q * plane;
      const out: Call[] = [];
      for (let p = p0; p < p1; p++) {
        out.push(
          ['fill', pad, hp * wp, fillValue],
          ['copy2d', xAt + 4 * p * g.h * g.w, 4 * g.w, 4, pad + 4 * (pt * wp + pl), 4 * wp, 4, g.h, g.w],
          [`pool_${kind}_s${g.sw}`, pad, wp, yAt + 4 * p * g.oh * g.ow, g.oh, g.ow, g.kh, g.kw, g.sh, g.dh, g.dw, scale],
        );
      }
      return out;
    });
    rt.pool.run(calls);
  } finally {
    rt.release(base);
  }
  return true;
}
