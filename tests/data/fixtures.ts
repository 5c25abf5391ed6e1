import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { encodePng } from '../../src/data/image.js';

/** A w × h image whose pixels depend on (x, y, seed), so that any two images and positions differ. */
export function pattern(w: number, h: number, seed = 0): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      rgb[i] = (x * 37 + y * 11 + seed * 53) & 255;
      rgb[i + 1] = (x * y * 13 + 7 + seed * 29) & 255;
      rgb[i + 2] = (x * x * 5 + y * 29 + seed * 17) & 255;
    }
  }
  return rgb;
}

export async function tempDir(tag: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `lc-${tag}-`));
}

/** Writes a PNG of w × h (the pattern of `seed`) at root/rel, making folders. */
export async function writePng(root: string, rel: string, w = 12, h = 10, seed = 0): Promise<string> {
  const path = join(root, ...rel.split('/'));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, encodePng(pattern(w, h, seed), w, h));
  return path;
}

/** An ImageFolder tree: `counts[class]` PNGs per class, each with its own pattern. */
export async function imageFolder(tag: string, counts: Record<string, number>, w = 12, h = 10): Promise<string> {
  const root = await tempDir(tag);
  let seed = 0;
  for (const [cls, n] of Object.entries(counts)) {
    for (let i = 0; i < n; i++) await writePng(root, `${cls}/img${String(i).padStart(3, '0')}.png`, w, h, seed++);
  }
  return root;
}
