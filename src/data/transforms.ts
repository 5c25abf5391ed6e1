import { ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type RgbImage, centerCrop as cropCenter, resizeBilinear, resizeShorter, roundHalfEven, toTensor } from './image.js';

/**
 * Image transforms with torchvision's names and semantics (on PIL images), each a plain JSON
 * object — `{ kind: 'randomHorizontalFlip', p: 0.5 }` — so that the loader can send them to its
 * worker threads and a run can record them. `applyTransform(spec, img, rng)` runs one; every
 * random choice comes from `rng`, so a seed fixes the result.
 */

export type Range = [lo: number, hi: number];

/** A transform as plain data (JSON-serialisable, so it can cross to the decode workers and be stored with a run): build one with the functions of `transforms`, run it with `applyTransform`. */
export type TransformSpec =
  | { kind: 'resize'; size: number }
  | { kind: 'resizeTo'; width: number; height: number }
  | { kind: 'centerCrop'; size: number | [height: number, width: number] }
  | { kind: 'randomResizedCrop'; size: number; scale: Range; ratio: Range }
  | { kind: 'randomHorizontalFlip'; p: number }
  | { kind: 'randomVerticalFlip'; p: number }
  | { kind: 'randomRotation'; degrees: Range }
  | { kind: 'colorJitter'; brightness: Range | null; contrast: Range | null; saturation: Range | null; hue: Range | null }
  | { kind: 'compose'; transforms: TransformSpec[] };

/**
 * torchvision Resize(size) with an int: the shorter side becomes `size` (PIL's antialiased
 * bilinear).
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const img = transforms.resize(256); // use with applyTransform
 * ```
 */
export function resize(size: number): TransformSpec {
  return check({ kind: 'resize', size });
}

/**
 * Resize to exactly width × height (torchvision Resize((h, w))).
 *
 * @example
 * ```ts
 * import { applyTransform, readImage, transforms } from 'lightconv';
 *
 * const small = applyTransform(transforms.resizeTo(64, 48), await readImage('x.png')); // 64×48
 * ```
 */
export function resizeTo(width: number, height: number): TransformSpec {
  return check({ kind: 'resizeTo', width, height });
}

/**
 * torchvision CenterCrop: a side, or [height, width]; pads with black when larger than the image.
 *
 * @example
 * ```ts
 * import { applyTransform, readImage, transforms } from 'lightconv';
 *
 * const crop = applyTransform(transforms.centerCrop([200, 300]), await readImage('x.png')); // 300 wide, 200 high
 * ```
 */
export function centerCrop(size: number | [number, number]): TransformSpec {
  return check({ kind: 'centerCrop', size });
}

/**
 * torchvision RandomResizedCrop(size, scale, ratio) with bilinear, antialiased resizing.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const spec = transforms.randomResizedCrop(224, { scale: [0.5, 1] });
 * ```
 */
export function randomResizedCrop(size: number, opts: { scale?: Range; ratio?: Range } = {}): TransformSpec {
  return check({ kind: 'randomResizedCrop', size, scale: opts.scale ?? [0.08, 1], ratio: opts.ratio ?? [3 / 4, 4 / 3] });
}

/**
 * torchvision RandomHorizontalFlip: mirrors left–right with probability `p` (default 0.5).
 *
 * @example
 * ```ts
 * import { applyTransform, readImage, transforms } from 'lightconv';
 *
 * const img = applyTransform(transforms.randomHorizontalFlip(), await readImage('x.png'));
 * ```
 */
export function randomHorizontalFlip(p = 0.5): TransformSpec {
  return check({ kind: 'randomHorizontalFlip', p });
}

/**
 * torchvision RandomVerticalFlip: mirrors top–bottom with probability `p` (default 0.5).
 *
 * @example
 * ```ts
 * import { applyTransform, readImage, transforms } from 'lightconv';
 *
 * const img = applyTransform(transforms.randomVerticalFlip(0.2), await readImage('x.png'));
 * ```
 */
export function randomVerticalFlip(p = 0.5): TransformSpec {
  return check({ kind: 'randomVerticalFlip', p });
}

/**
 * torchvision RandomRotation(degrees): an angle uniform in [−d, d] (or the range given),
 * counter-clockwise, about the centre, bilinear, fill 0.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const spec = transforms.randomRotation(15); // ±15°
 * ```
 */
export function randomRotation(degrees: number | Range): TransformSpec {
  const d: Range = typeof degrees === 'number' ? [-degrees, degrees] : degrees;
  if (typeof degrees === 'number' && !(degrees >= 0)) throw new ValueError(`randomRotation: degrees ${degrees} must be non-negative`);
  return check({ kind: 'randomRotation', degrees: d });
}

/** Options of `colorJitter`, torchvision ColorJitter's: each adjustment left out is not applied. */
export interface ColorJitterOptions {
  /** Factor uniform in [max(0, 1 − b), 1 + b], or the range given. */
  brightness?: number | Range;
  contrast?: number | Range;
  saturation?: number | Range;
  /** Hue shift uniform in [−h, h] (h ≤ 0.5, in turns of the colour wheel), or the range given. */
  hue?: number | Range;
}

/**
 * torchvision ColorJitter: the four adjustments in a random order, each with a random factor.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const spec = transforms.colorJitter({ brightness: 0.2, contrast: 0.2, hue: 0.05 });
 * ```
 */
export function colorJitter(opts: ColorJitterOptions): TransformSpec {
  const factor = (name: string, v: number | Range | undefined): Range | null => {
    if (v === undefined) return null;
    if (typeof v === 'number') {
      if (!(v >= 0)) throw new ValueError(`colorJitter: ${name} ${v} must be non-negative`);
      v = [Math.max(0, 1 - v), 1 + v];
    }
    // torchvision drops a range that is the identity.
    return v[0] === 1 && v[1] === 1 ? null : v;
  };
  let hue: Range | null = null;
  if (opts.hue !== undefined) {
    const h = opts.hue;
    if (typeof h === 'number' && !(h >= 0 && h <= 0.5)) throw new ValueError(`colorJitter: hue ${h} must be in [0, 0.5]`);
    hue = typeof h === 'number' ? [-h, h] : h;
    if (hue[0] === 0 && hue[1] === 0) hue = null;
  }
  return check({ kind: 'colorJitter', brightness: factor('brightness', opts.brightness), contrast: factor('contrast', opts.contrast), saturation: factor('saturation', opts.saturation), hue });
}

/**
 * Several transforms run in order, as one (torchvision Compose). Throws a ValueError naming the
 * first bad one.
 *
 * @example
 * ```ts
 * import { Rng, applyTransform, readImage, transforms } from 'lightconv';
 *
 * const augment = transforms.compose([transforms.randomResizedCrop(224), transforms.randomHorizontalFlip()]);
 * const img = applyTransform(augment, await readImage('x.png'), new Rng(7));
 * ```
 */
export function compose(transforms: TransformSpec[]): TransformSpec {
  return check({ kind: 'compose', transforms: [...transforms] });
}

// ---------------------------------------------------------------------------------------------
// Validation: specs arrive as JSON (metadata, command lines, other threads), so each is checked.

const isPos = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1;
const isRange = (v: unknown): v is Range => Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && Number.isFinite(x)) && v[0] <= v[1];
const isProb = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;

/**
 * Throws a ValueError naming the first thing wrong with `spec`; returns it unchanged.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * transforms.checkTransform({ kind: 'randomHorizontalFlip', p: 1.5 }); // throws a ValueError naming p
 * ```
 */
export function checkTransform<T extends TransformSpec>(spec: T, where = 'transform'): T {
  const s = spec as TransformSpec & Record<string, unknown>;
  const bad = (why: string): never => {
    throw new ValueError(`${where}: ${JSON.stringify(spec)}: ${why}`);
  };
  if (s === null || typeof s !== 'object') bad('not a transform object');
  switch (s.kind) {
    case 'resize':
      if (!isPos(s.size)) bad('size must be a positive integer');
      break;
    case 'resizeTo':
      if (!isPos(s.width) || !isPos(s.height)) bad('width and height must be positive integers');
      break;
    case 'centerCrop':
      if (!(isPos(s.size) || (Array.isArray(s.size) && s.size.length === 2 && s.size.every(isPos)))) bad('size must be a positive integer or [height, width]');
      break;
    case 'randomResizedCrop':
      if (!isPos(s.size)) bad('size must be a positive integer');
      if (!isRange(s.scale) || !(s.scale[0] > 0 && s.scale[1] <= 1)) bad('scale must be [lo, hi] with 0 < lo ≤ hi ≤ 1');
      if (!isRange(s.ratio) || !(s.ratio[0] > 0)) bad('ratio must be [lo, hi] with 0 < lo ≤ hi');
      break;
    case 'randomHorizontalFlip':
    case 'randomVerticalFlip':
      if (!isProb(s.p)) bad('p must be in [0, 1]');
      break;
    case 'randomRotation':
      if (!isRange(s.degrees)) bad('degrees must be [lo, hi] with lo ≤ hi');
      break;
    case 'colorJitter':
      for (const k of ['brightness', 'contrast', 'saturation'] as const) {
        const v = s[k];
        if (v !== null && v !== undefined && !(isRange(v) && v[0] >= 0)) bad(`${k} must be null or [lo, hi] with 0 ≤ lo ≤ hi`);
      }
      if (s.hue !== null && s.hue !== undefined && !(isRange(s.hue) && s.hue[0] >= -0.5 && s.hue[1] <= 0.5)) bad('hue must be null or [lo, hi] within [−0.5, 0.5]');
      break;
    case 'compose':
      if (!Array.isArray(s.transforms)) bad('transforms must be an array');
      s.transforms.forEach((t, i) => checkTransform(t, `${where}.transforms[${i}]`));
      break;
    default:
      bad(`unknown kind '${String((s as { kind?: unknown }).kind)}'`);
  }
  return spec;
}

const check = <T extends TransformSpec>(spec: T) => checkTransform(spec, spec.kind);

// ---------------------------------------------------------------------------------------------
// Application

/**
 * Runs one transform; random choices come from `rng` (a fresh Rng(0) when omitted).
 *
 * @example
 * ```ts
 * import { Rng, applyTransform, readImage, transforms } from 'lightconv';
 *
 * const img = await readImage('x.png');
 * const out = applyTransform(transforms.randomRotation(10), img, new Rng(1)); // the same result for the same seed
 * ```
 */
export function applyTransform(spec: TransformSpec, img: RgbImage, rng: Rng = new Rng(0)): RgbImage {
  switch (spec.kind) {
    case 'resize':
      return resizeShorter(img, spec.size);
    case 'resizeTo':
      return resizeBilinear(img, spec.width, spec.height);
    case 'centerCrop': {
      const [h, w] = typeof spec.size === 'number' ? [spec.size, spec.size] : spec.size;
      return cropCenter(img, w, h);
    }
    case 'randomResizedCrop': {
      const { top, left, height, width } = resizedCropParams(img.width, img.height, spec.scale, spec.ratio, rng);
      return resizeBilinear(crop(img, left, top, width, height), spec.size, spec.size);
    }
    case 'randomHorizontalFlip':
      return rng.next() < spec.p ? flipHorizontal(img) : img;
    case 'randomVerticalFlip':
      return rng.next() < spec.p ? flipVertical(img) : img;
    case 'randomRotation':
      return rotate(img, rng.uniform(spec.degrees[0], spec.degrees[1]));
    case 'colorJitter':
      return jitter(img, spec, rng);
    case 'compose':
      return spec.transforms.reduce((im, t) => applyTransform(t, im, rng), img);
    default:
      throw new ValueError(`applyTransform: unknown kind '${(spec as { kind?: unknown }).kind}'`);
  }
}

/**
 * torchvision RandomResizedCrop.get_params: ten tries at an area fraction in `scale` and a log-
 * uniform aspect ratio in `ratio`; failing those, the largest central crop within the ratios.
 * Python's round (half to even) and randint's inclusive bounds are kept.
 *
 * @example
 * ```ts
 * import { Rng, transforms } from 'lightconv';
 *
 * const { top, left, width, height } = transforms.resizedCropParams(640, 480, [0.08, 1], [3 / 4, 4 / 3], new Rng(0));
 * ```
 */
export function resizedCropParams(W: number, H: number, scale: Range, ratio: Range, rng: Rng): { top: number; left: number; height: number; width: number } {
  const area = W * H;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H) {
      const top = rng.int(H - h + 1);
      const left = rng.int(W - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = W / H;
  let w = W;
  let h = H;
  if (inRatio < ratio[0]) h = roundHalfEven(w / ratio[0]);
  else if (inRatio > ratio[1]) w = roundHalfEven(h * ratio[1]);
  return { top: Math.floor((H - h) / 2), left: Math.floor((W - w) / 2), height: h, width: w };
}

/**
 * The rectangle at (left, top) of width × height, which must lie inside the image.
 *
 * @example
 * ```ts
 * import { applyTransform, readImage, transforms } from 'lightconv';
 *
 * const corner = transforms.crop(await readImage('x.png'), 0, 0, 64, 64);
 * ```
 */
export function crop(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  if (left < 0 || top < 0 || width < 1 || height < 1 || left + width > img.width || top + height > img.height) {
    throw new ValueError(`crop: ${width}×${height} at (${left}, ${top}) is outside the ${img.width}×${img.height} image`);
  }
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = ((top + y) * img.width + left) * 3;
    out.set(img.rgb.subarray(s, s + width * 3), y * width * 3);
  }
  return { width, height, rgb: out };
}

/**
 * The image mirrored left–right.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const mirrored = transforms.flipHorizontal(await readImage('x.png'));
 * ```
 */
export function flipHorizontal(img: RgbImage): RgbImage {
  const { width: w, height: h, rgb } = img;
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 3;
      const d = (y * w + (w - 1 - x)) * 3;
      out[d] = rgb[s]!;
      out[d + 1] = rgb[s + 1]!;
      out[d + 2] = rgb[s + 2]!;
    }
  }
  return { width: w, height: h, rgb: out };
}

/**
 * The image mirrored top–bottom.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const flipped = transforms.flipVertical(await readImage('x.png'));
 * ```
 */
export function flipVertical(img: RgbImage): RgbImage {
  const { width: w, height: h, rgb } = img;
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < h; y++) out.set(rgb.subarray(y * w * 3, (y + 1) * w * 3), (h - 1 - y) * w * 3);
  return { width: w, height: h, rgb: out };
}

/** A quarter turn counter-clockwise, exact (PIL's transpose ROTATE_90): out(x, y) = in(w − 1 − y, x). */
function rotate90(img: RgbImage): RgbImage {
  const { width: w, height: h, rgb } = img;
  const out = new Uint8Array(rgb.length);
  // The output is h wide and w high.
  for (let y = 0; y < w; y++) {
    for (let x = 0; x < h; x++) {
      const s = (x * w + (w - 1 - y)) * 3;
      const d = (y * h + x) * 3;
      out[d] = rgb[s]!;
      out[d + 1] = rgb[s + 1]!;
      out[d + 2] = rgb[s + 2]!;
    }
  }
  return { width: h, height: w, rgb: out };
}

/** Python's round(x, 15), which PIL applies to the rotation matrix so quarter turns come out exact. */
const round15 = (x: number) => Number(x.toFixed(15));

/**
 * PIL's Image.rotate(angle, BILINEAR, expand=False, fillcolor=0), which torchvision's rotate calls:
 * counter-clockwise degrees about the image centre, same size. Multiples of 180° (and of 90° on
 * square images) are exact transposes, as in PIL; other angles sample each output pixel centre
 * through the inverse affine map with Geometry.c's bilinear filter (edge pixels clamped, results
 * truncated to 8 bits, points outside the image filled with 0).
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const turned = transforms.rotate(await readImage('x.png'), 90); // counter-clockwise
 * ```
 */
export function rotate(img: RgbImage, degrees: number): RgbImage {
  const { width: w, height: h, rgb } = img;
  const angle = ((degrees % 360) + 360) % 360;
  if (angle === 0) return { width: w, height: h, rgb: rgb.slice() };
  if (angle === 180) return flipVertical(flipHorizontal(img));
  if ((angle === 90 || angle === 270) && w === h) return angle === 90 ? rotate90(img) : rotate90(rotate90(rotate90(img)));
  const t = (-degrees * Math.PI) / 180;
  const a = round15(Math.cos(t));
  const b = round15(Math.sin(t));
  const d = round15(-Math.sin(t));
  const e = round15(Math.cos(t));
  const cx = w / 2;
  const cy = h / 2;
  const c = a * -cx + b * -cy + 0.0 + cx;
  const f = d * -cx + e * -cy + 0.0 + cy;
  const out = new Uint8Array(rgb.length);
  const clipX = (x: number) => (x < 0 ? 0 : x < w ? x : w - 1);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let xin = a * (x + 0.5) + b * (y + 0.5) + c;
      let yin = d * (x + 0.5) + e * (y + 0.5) + f;
      if (xin < 0 || xin >= w || yin < 0 || yin >= h) continue; // fill 0
      xin -= 0.5;
      yin -= 0.5;
      const ix = Math.floor(xin);
      const iy = Math.floor(yin);
      const dx = xin - ix;
      const dy = yin - iy;
      const row0 = (iy < 0 ? 0 : iy < h ? iy : h - 1) * w;
      const x0 = clipX(ix);
      const x1 = clipX(ix + 1);
      const hasRow1 = iy + 1 >= 0 && iy + 1 < h;
      const row1 = (iy + 1) * w;
      const o = (y * w + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const p0 = rgb[(row0 + x0) * 3 + ch]!;
        const p1 = rgb[(row0 + x1) * 3 + ch]!;
        const v1 = p0 + (p1 - p0) * dx;
        let v2 = v1;
        if (hasRow1) {
          const q0 = rgb[(row1 + x0) * 3 + ch]!;
          const q1 = rgb[(row1 + x1) * 3 + ch]!;
          v2 = q0 + (q1 - q0) * dx;
        }
        out[o + ch] = Math.trunc(v1 + (v2 - v1) * dy);
      }
    }
  }
  return { width: w, height: h, rgb: out };
}

// ---------------------------------------------------------------------------------------------
// Colour, after PIL's ImageEnhance (which torchvision's adjust_* call on PIL images)

const f32 = Math.fround;

/** PIL's Image.blend(degenerate, img, alpha): float arithmetic, truncated, clipped when extrapolating. */
function blendInto(out: Uint8Array, degenerate: (i: number) => number, img: Uint8Array, alpha: number): void {
  const al = f32(alpha);
  for (let i = 0; i < img.length; i++) {
    const d0 = degenerate(i);
    const v = f32(d0 + f32(al * (img[i]! - d0)));
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
}

/** PIL's RGB → L (ITU-R 601-2 luma, 16-bit fixed point, rounded). */
function lumaAt(rgb: Uint8Array, p: number): number {
  return (rgb[3 * p]! * 19595 + rgb[3 * p + 1]! * 38470 + rgb[3 * p + 2]! * 7471 + 0x8000) >> 16;
}

/**
 * torchvision's adjust_brightness: every channel times `factor` (0 black, 1 unchanged), clipped to
 * 0…255.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const brighter = transforms.adjustBrightness(await readImage('x.png'), 1.2);
 * ```
 */
export function adjustBrightness(img: RgbImage, factor: number): RgbImage {
  const out = new Uint8Array(img.rgb.length);
  blendInto(out, () => 0, img.rgb, factor);
  return { width: img.width, height: img.height, rgb: out };
}

/**
 * torchvision's adjust_contrast: blended with the mean grey level by `factor` (0 flat grey, 1
 * unchanged).
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const flat = transforms.adjustContrast(await readImage('x.png'), 0.5);
 * ```
 */
export function adjustContrast(img: RgbImage, factor: number): RgbImage {
  const n = img.width * img.height;
  let sum = 0;
  for (let p = 0; p < n; p++) sum += lumaAt(img.rgb, p);
  const mean = Math.trunc(sum / n + 0.5);
  const out = new Uint8Array(img.rgb.length);
  blendInto(out, () => mean, img.rgb, factor);
  return { width: img.width, height: img.height, rgb: out };
}

/**
 * torchvision's adjust_saturation: blended with the grayscale image by `factor` (0 grey, 1
 * unchanged).
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const grey = transforms.adjustSaturation(await readImage('x.png'), 0);
 * ```
 */
export function adjustSaturation(img: RgbImage, factor: number): RgbImage {
  const out = new Uint8Array(img.rgb.length);
  blendInto(out, (i) => lumaAt(img.rgb, Math.floor(i / 3)), img.rgb, factor);
  return { width: img.width, height: img.height, rgb: out };
}

/**
 * torchvision's adjust_hue on PIL images: to PIL's 8-bit HSV, H shifted by uint8(factor · 255)
 * with wrap-around, and back. `factor` in [−0.5, 0.5] turns.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const shifted = transforms.adjustHue(await readImage('x.png'), 0.1);
 * ```
 */
export function adjustHue(img: RgbImage, factor: number): RgbImage {
  if (!(factor >= -0.5 && factor <= 0.5)) throw new ValueError(`adjustHue: factor ${factor} must be in [−0.5, 0.5]`);
  const shift = (((Math.trunc(factor * 255) % 256) + 256) % 256) | 0;
  const { rgb } = img;
  const out = new Uint8Array(rgb.length);
  for (let p = 0; p < rgb.length; p += 3) {
    const r = rgb[p]!;
    const g = rgb[p + 1]!;
    const b = rgb[p + 2]!;
    // Convert.c rgb2hsv_row
    const maxc = Math.max(r, g, b);
    const minc = Math.min(r, g, b);
    let uh = 0;
    let us = 0;
    const uv = maxc;
    if (minc !== maxc) {
      const cr = maxc - minc;
      const s = f32(cr / maxc);
      const rc = f32((maxc - r) / cr);
      const gc = f32((maxc - g) / cr);
      const bc = f32((maxc - b) / cr);
      let h = r === maxc ? f32(bc - gc) : g === maxc ? f32(2 + rc - bc) : f32(4 + gc - rc);
      h = f32((h / 6 + 1) % 1);
      uh = Math.min(255, Math.max(0, Math.trunc(h * 255)));
      us = Math.min(255, Math.max(0, Math.trunc(s * 255)));
    }
    const hh = (uh + shift) & 255;
    // Convert.c hsv2rgb
    if (us === 0) {
      out[p] = out[p + 1] = out[p + 2] = uv;
      continue;
    }
    const i = Math.floor((hh * 6) / 255);
    const fr = f32((hh * 6) / 255 - i);
    const fs = f32(us / 255);
    const c8 = (x: number) => Math.min(255, Math.max(0, x));
    const pp = c8(Math.round(uv * (1 - fs)));
    const q = c8(Math.round(uv * (1 - fs * fr)));
    const t = c8(Math.round(uv * (1 - fs * (1 - fr))));
    const [R, G, B] = [
      [uv, t, pp],
      [q, uv, pp],
      [pp, uv, t],
      [pp, q, uv],
      [t, pp, uv],
      [uv, pp, q],
    ][i % 6]!;
    out[p] = R!;
    out[p + 1] = G!;
    out[p + 2] = B!;
  }
  return { width: img.width, height: img.height, rgb: out };
}

/** ColorJitter.forward: a random permutation of the four, then each factor drawn in that order. */
function jitter(img: RgbImage, spec: Extract<TransformSpec, { kind: 'colorJitter' }>, rng: Rng): RgbImage {
  const order = rng.shuffle([0, 1, 2, 3]);
  const draw = (r: Range | null) => (r ? rng.uniform(r[0], r[1]) : null);
  const factors = [draw(spec.brightness), draw(spec.contrast), draw(spec.saturation), draw(spec.hue)];
  let out = img;
  for (const k of order) {
    const v = factors[k];
    if (v === null || v === undefined) continue;
    if (k === 0) out = adjustBrightness(out, v);
    else if (k === 1) out = adjustContrast(out, v);
    else if (k === 2) out = adjustSaturation(out, v);
    else out = adjustHue(out, v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Model preprocessing: stored with exported models so inference repeats it exactly.

/** How images become a model's input (torchvision's Resize → CenterCrop → ToTensor → Normalize); stored in trained models' metadata. */
export interface Preprocess {
  /** The model's input side: the tensors are [C, inputSize, inputSize]. */
  inputSize: number;
  /** Shorter side after the first resize (torchvision Resize(int)). */
  resize: number;
  /** Centre crop side at evaluation (resized to inputSize if it differs). */
  crop: number;
  channels: 1 | 3;
  mean: number[];
  std: number[];
  /** DICOM VOI window [center, width]; absent: each file's own. */
  window?: [number, number];
}

/** The ONNX metadata key under which `preprocessToMetadata` stores the preprocessing. */
export const PREPROCESS_KEY = 'lightconv.preprocess';

/**
 * Throws a ValueError naming the first field of `p` that is wrong; returns it.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * transforms.checkPreprocess({ inputSize: 224, resize: 256, crop: 224, channels: 3, mean: [0.5], std: [0.5] }); // throws: mean needs 3 values
 * ```
 */
export function checkPreprocess(p: Preprocess, where = 'preprocess'): Preprocess {
  const bad = (why: string): never => {
    throw new ValueError(`${where}: ${why} (got ${JSON.stringify(p)})`);
  };
  if (p === null || typeof p !== 'object') bad('not an object');
  for (const k of ['inputSize', 'resize', 'crop'] as const) if (!isPos(p[k])) bad(`${k} must be a positive integer`);
  if (p.channels !== 1 && p.channels !== 3) bad('channels must be 1 or 3');
  for (const k of ['mean', 'std'] as const) {
    const v = p[k];
    if (!Array.isArray(v) || v.length !== p.channels || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) bad(`${k} must be ${p.channels} finite numbers`);
  }
  if (p.std.some((s) => s === 0)) bad('std must be non-zero');
  if (p.window !== undefined && !(Array.isArray(p.window) && p.window.length === 2 && p.window.every(Number.isFinite) && p.window[1] >= 1)) {
    bad('window must be [center, width] with width ≥ 1');
  }
  return p;
}

/**
 * The shared first step of evaluation and training: the shorter side resized to `p.resize`
 * (a no-op on an image already that size). The loader caches this, so augmentation works on it,
 * as it would on a dataset stored at that size.
 *
 * @example
 * ```ts
 * import { readImage, transforms } from 'lightconv';
 *
 * const p = { inputSize: 224, resize: 256, crop: 224, channels: 3 as const, mean: [0, 0, 0], std: [1, 1, 1] };
 * const base = transforms.baseImage(await readImage('x.png'), p); // shorter side 256
 * ```
 */
export function baseImage(img: RgbImage, p: Preprocess): RgbImage {
  return Math.min(img.width, img.height) === p.resize ? img : resizeShorter(img, p.resize);
}

/**
 * An image → a normalised CHW float32 array of [channels, inputSize, inputSize]. Evaluation
 * (no `augment`): resize the shorter side, centre-crop, resize to inputSize if the crop differs
 * — torchvision's Resize → CenterCrop → ToTensor → Normalize. Training: the augmentation runs
 * on the resized image instead of the crop; a result not inputSize square is then resized
 * and centre-cropped to it.
 *
 * @example
 * ```ts
 * import { Tensor, preprocessImage, readImage } from 'lightconv';
 *
 * const p = { inputSize: 224, resize: 256, crop: 224, channels: 3 as const, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
 * const x = new Tensor(preprocessImage(await readImage('x.png'), p), [1, 3, 224, 224]);
 * ```
 */
export function preprocessImage(img: RgbImage, p: Preprocess, augment?: readonly TransformSpec[], rng: Rng = new Rng(0)): Float32Array {
  let out = baseImage(img, p);
  const S = p.inputSize;
  if (augment && augment.length) {
    for (const t of augment) out = applyTransform(t, out, rng);
    if (out.width !== S || out.height !== S) out = cropCenter(resizeShorter(out, S), S, S);
  } else {
    out = cropCenter(out, p.crop, p.crop);
    if (p.crop !== S) out = resizeBilinear(out, S, S);
  }
  return toTensor(out, { channels: p.channels, mean: p.mean, std: p.std }).f32();
}

/**
 * The preprocessing as model metadata (ONNX metadata_props): one JSON entry under
 * 'lightconv.preprocess'.
 *
 * @example
 * ```ts
 * import { preprocessToMetadata } from 'lightconv';
 *
 * const p = { inputSize: 64, resize: 64, crop: 64, channels: 3 as const, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
 * const meta = preprocessToMetadata(p); // { 'lightconv.preprocess': '{…}' }
 * ```
 */
export function preprocessToMetadata(p: Preprocess): Record<string, string> {
  checkPreprocess(p);
  const { inputSize, resize, crop, channels, mean, std, window } = p;
  return { [PREPROCESS_KEY]: JSON.stringify({ inputSize, resize, crop, channels, mean, std, ...(window ? { window } : {}) }) };
}

/**
 * The preprocessing stored by preprocessToMetadata; null when the metadata has none, a ValueError
 * when it is malformed.
 *
 * @example
 * ```ts
 * import { loadOnnx, preprocessFromMetadata } from 'lightconv';
 *
 * const model = await loadOnnx('runs/exp1/model.onnx');
 * const p = preprocessFromMetadata(Object.fromEntries(model.graph.metadata)); // null if absent
 * ```
 */
export function preprocessFromMetadata(m: Record<string, string>): Preprocess | null {
  const raw = m[PREPROCESS_KEY];
  if (raw === undefined) return null;
  let p: Preprocess;
  try {
    p = JSON.parse(raw) as Preprocess;
  } catch (e) {
    throw new ValueError(`metadata '${PREPROCESS_KEY}' is not JSON: ${(e as Error).message}`);
  }
  return checkPreprocess(p, `metadata '${PREPROCESS_KEY}'`);
}

/**
 * A default augmentation for medical patches (histology, dermoscopy): random resized crops that
 * keep most of the patch (scale 0.7–1, since a lesion or stain pattern may sit anywhere but
 * tiny crops lose it), both flips (such images have no up or left), and light colour jitter
 * for stain and illumination variation.
 */
/**
 * Augmentation for images whose orientation carries meaning (digits, letters, chest X-rays with
 * their laterality): a mild random resized crop and ±10° rotation, no flips, no colour change.
 *
 * @example
 * ```ts
 * import { ImageLoader, listImageFolder, uprightAugment } from 'lightconv';
 *
 * const preprocess = { inputSize: 28, resize: 28, crop: 28, channels: 1 as const, mean: [0.5], std: [0.5] };
 * const loader = new ImageLoader(await listImageFolder('data/digits'), { preprocess, augment: uprightAugment(28), batchSize: 64 });
 * ```
 */
export function uprightAugment(inputSize: number): TransformSpec[] {
  return [randomResizedCrop(inputSize, { scale: [0.8, 1], ratio: [0.9, 1.1] }), randomRotation(10)];
}

/**
 * The training augmentation of `lightconv train` (augment 'default'): a random resized crop (scale
 * 0.7–1), horizontal and vertical flips, light colour jitter. For images without a natural
 * orientation (dermoscopy, histology).
 *
 * @example
 * ```ts
 * import { defaultAugment, preprocessImage, readImage, Rng } from 'lightconv';
 *
 * const p = { inputSize: 224, resize: 256, crop: 224, channels: 3 as const, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
 * const x = preprocessImage(await readImage('x.png'), p, defaultAugment(224), new Rng(3));
 * ```
 */
export function defaultAugment(inputSize: number): TransformSpec[] {
  return [
    randomResizedCrop(inputSize, { scale: [0.7, 1], ratio: [3 / 4, 4 / 3] }),
    randomHorizontalFlip(0.5),
    randomVerticalFlip(0.5),
    colorJitter({ brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 }),
  ];
}
