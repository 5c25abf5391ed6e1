import { LightconvError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { decodeImage, resizeBilinear, toTensor } from './image.js';

/**
 * An image classification dataset in memory: images [N, C, H, W] float32 and integer labels.
 */
export interface ImageDataset {
  readonly images: Tensor;
  readonly labels: Int32Array;
  /** Class names, index = label (the folder names, sorted). */
  readonly classes: readonly string[];
  /** Source file per image (relative to the root). */
  readonly files: readonly string[];
}

export interface ImageFolderOptions {
  /** Resize every image to size × size (PIL-style antialiased bilinear); default: keep (all must agree). */
  size?: number;
  /** 1 (grayscale, ITU-R 601 luma) or 3 (RGB, default). */
  channels?: 1 | 3;
  /** Per-channel normalisation after scaling to [0, 1]; default none. */
  mean?: readonly number[];
  std?: readonly number[];
}

const IMAGE = /\.(png|jpe?g)$/i;

/**
 * Loads a torchvision ImageFolder layout — `root/<class>/<image>` — with classes numbered in
 * sorted folder-name order and images in sorted file-name order (deterministic).
 */
export async function loadImageFolder(root: string, opts: ImageFolderOptions = {}): Promise<ImageDataset> {
  // Imported here so that the module loads in browsers.
  const { readFile, readdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const entries = await readdir(root, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new LightconvError(`loadImageFolder: cannot read '${root}' (${e.code ?? e.message})`);
  });
  const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (classes.length === 0) throw new ValueError(`loadImageFolder: '${root}' has no class folders`);
  const channels = opts.channels ?? 3;
  const tensors: Tensor[] = [];
  const labels: number[] = [];
  const files: string[] = [];
  for (const [label, cls] of classes.entries()) {
    const names = (await readdir(join(root, cls))).filter((f) => IMAGE.test(f)).sort();
    for (const f of names) {
      let img = decodeImage(new Uint8Array(await readFile(join(root, cls, f))));
      if (opts.size) img = resizeBilinear(img, opts.size, opts.size);
      const t = toTensor(img, { channels, mean: opts.mean, std: opts.std });
      if (tensors.length && t.shape.join() !== tensors[0]!.shape.join()) {
        throw new ValueError(`loadImageFolder: ${cls}/${f} is ${t.shape[3]}×${t.shape[2]}, the first image ${tensors[0]!.shape[3]}×${tensors[0]!.shape[2]}; pass \`size\``);
      }
      tensors.push(t);
      labels.push(label);
      files.push(`${cls}/${f}`);
    }
  }
  if (tensors.length === 0) throw new ValueError(`loadImageFolder: no images under '${root}'`);
  const [, c, h, w] = tensors[0]!.shape as [number, number, number, number];
  const data = new Float32Array(tensors.length * c * h * w);
  tensors.forEach((t, i) => data.set(t.f32(), i * c * h * w));
  return { images: new Tensor(data, [tensors.length, c, h, w]), labels: Int32Array.from(labels), classes, files };
}

/** Rows `idx` of a dataset (a copy). */
export function subset(ds: ImageDataset, idx: readonly number[]): ImageDataset {
  const [, c, h, w] = ds.images.shape as [number, number, number, number];
  const per = c * h * w;
  const src = ds.images.f32();
  const data = new Float32Array(idx.length * per);
  idx.forEach((k, i) => data.set(src.subarray(k * per, (k + 1) * per), i * per));
  return { images: new Tensor(data, [idx.length, c, h, w]), labels: Int32Array.from(idx, (k) => ds.labels[k]!), classes: ds.classes, files: idx.map((k) => ds.files[k]!) };
}

/** A seeded stratified split: `testFraction` of each class goes to test, the rest to train. */
export function trainTestSplit(ds: ImageDataset, testFraction: number, seed = 0): { train: ImageDataset; test: ImageDataset } {
  if (!(testFraction > 0 && testFraction < 1)) throw new ValueError(`trainTestSplit: testFraction must be in (0, 1), got ${testFraction}`);
  const rng = new Rng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (let c = 0; c < ds.classes.length; c++) {
    const idx = rng.shuffle([...ds.labels.keys()].filter((i) => ds.labels[i] === c));
    const k = Math.round(idx.length * testFraction);
    test.push(...idx.slice(0, k));
    train.push(...idx.slice(k));
  }
  return { train: subset(ds, train.sort((a, b) => a - b)), test: subset(ds, test.sort((a, b) => a - b)) };
}
