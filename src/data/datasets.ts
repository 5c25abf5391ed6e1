import { LightconvError, ResourceLimitError, ValueError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';
import { readRegularFile } from '../io/files.js';
import { decodeAnyImage } from './decode.js';
import { resizeBilinear, toTensor } from './image.js';

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

/** Options of `loadImageFolder`: size, channels and normalisation of the decoded images. */
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
 *
 * @example
 * ```ts
 * import { loadImageFolder, trainTestSplit } from 'lightconv';
 *
 * const ds = await loadImageFolder('data/digits', { size: 32, channels: 1 });
 * const { train, test } = trainTestSplit(ds, 0.2, 42);
 * console.log(ds.classes, train.images.shape); // [N, 1, 32, 32]
 * ```
 */
export async function loadImageFolder(root: string, opts: ImageFolderOptions = {}): Promise<ImageDataset> {
  // Imported here so that the module loads in browsers.
  const { readdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const entries = await readdir(root, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new LightconvError(`loadImageFolder: cannot read '${root}' (${e.code ?? e.message})`);
  });
  const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (classes.length === 0) throw new ValueError(`loadImageFolder: '${root}' has no class folders`);
  const inside = await insideRoot(root);
  const channels = opts.channels ?? 3;
  const tensors: Tensor[] = [];
  const labels: number[] = [];
  const files: string[] = [];
  for (const [label, cls] of classes.entries()) {
    const listed = await readdir(join(root, cls), { withFileTypes: true });
    const names: string[] = [];
    const links = new Map<string, string>();
    for (const e of listed) {
      if (!IMAGE.test(e.name)) continue;
      const { kind, real } = await dataFile(join(root, cls, e.name), e, inside, 'loadImageFolder');
      if (kind !== 'file') continue;
      names.push(e.name);
      if (real !== undefined) links.set(e.name, real);
    }
    names.sort();
    for (const f of names) {
      let img = decodeAnyImage(await readRegularFile(links.get(f) ?? join(root, cls, f), DATA_READ), join(root, cls, f));
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

/**
 * Rows `idx` of a dataset (a copy).
 *
 * @example
 * ```ts
 * import { loadImageFolder, subset } from 'lightconv';
 *
 * const ds = await loadImageFolder('data/digits', { size: 32 });
 * const firstTen = subset(ds, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
 * ```
 */
export function subset(ds: ImageDataset, idx: readonly number[]): ImageDataset {
  const [, c, h, w] = ds.images.shape as [number, number, number, number];
  const per = c * h * w;
  const src = ds.images.f32();
  const data = new Float32Array(idx.length * per);
  idx.forEach((k, i) => data.set(src.subarray(k * per, (k + 1) * per), i * per));
  return { images: new Tensor(data, [idx.length, c, h, w]), labels: Int32Array.from(idx, (k) => ds.labels[k]!), classes: ds.classes, files: idx.map((k) => ds.files[k]!) };
}

/**
 * A seeded stratified split: `testFraction` of each class goes to test, the rest to train.
 *
 * @example
 * ```ts
 * import { loadImageFolder, trainTestSplit } from 'lightconv';
 *
 * const { train, test } = trainTestSplit(await loadImageFolder('data/digits', { size: 32 }), 0.25, 1);
 * ```
 */
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

// ---------------------------------------------------------------------------------------------
// File lists: what a dataset holds, without decoding it, so sets larger than memory stream
// through ImageLoader (src/data/loader.ts).

/** One image of a list. */
export interface ImageItem {
  /** Path to read the file from (root joined with `file`). */
  path: string;
  /** Path relative to the root, POSIX separators: what reports show. */
  file: string;
  /** Index into the list's classes. */
  label: number;
  /** A grouping key (patient, lesion) for grouped splits, from the CSV's group column. */
  group?: string;
}

/** A dataset as a file list (nothing decoded): `listImageFolder`, `listCsvImages`; what `ImageLoader` streams. */
export interface ImageList {
  root: string;
  layout: 'folder' | 'csv';
  /** Class names, index = label. */
  classes: string[];
  items: ImageItem[];
}

/** Extensions listed; DICOM only with .dcm, since an extension-less file may be anything. */
const LISTED = /\.(png|jpe?g|dcm)$/i;
/** Tried, in this order, after a CSV image id that has no extension. */
const CSV_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.dcm'];

/** A test for "this real path lies inside the dataset's root" (the root's own real path). */
async function insideRoot(root: string): Promise<(real: string) => boolean> {
  const { realpath } = await import('node:fs/promises');
  const { sep } = await import('node:path');
  const base = await realpath(root).catch(() => root);
  const prefix = base.endsWith(sep) ? base : base + sep;
  return (real) => real === base || real.startsWith(prefix);
}

/**
 * What a folder entry is for a dataset: 'dir', 'file' (a regular file), or 'skip'. Symbolic links
 * are followed only when they lead to somewhere inside the dataset's root; a link out of it, or
 * a FIFO, socket or device with an image's name, is an error naming the entry (never its
 * contents): reading such a file could hang, or show bytes of a file that is not the dataset's.
 * For a link to a file, `real` is the path the link resolved to (what is read later, without
 * following links: DATA_READ).
 */
async function dataFile(abs: string, e: import('node:fs').Dirent, inside: (real: string) => boolean, what: string): Promise<{ kind: 'dir' | 'file' | 'skip'; real?: string }> {
  const { realpath, stat } = await import('node:fs/promises');
  const data = LISTED.test(e.name);
  let st: { isDirectory(): boolean; isFile(): boolean } = e;
  let resolved: string | undefined;
  if (e.isSymbolicLink()) {
    const real = await realpath(abs).catch(() => undefined);
    const target = real !== undefined ? await stat(real).catch(() => undefined) : undefined;
    if (real === undefined || target === undefined) {
      if (data) throw new ValueError(`${what}: '${abs}' is a broken symbolic link`);
      return { kind: 'skip' };
    }
    if (!inside(real)) {
      if (!data && !target.isDirectory()) return { kind: 'skip' };
      throw new ValueError(`${what}: '${abs}' is a symbolic link leading out of the dataset's folder; links are followed only within it`);
    }
    st = target;
    resolved = real;
  }
  if (st.isDirectory()) return { kind: 'dir' };
  if (st.isFile()) return resolved !== undefined ? { kind: 'file', real: resolved } : { kind: 'file' };
  if (data) throw new ValueError(`${what}: '${abs}' is not a regular file (a FIFO, socket or device?); refusing to read it`);
  return { kind: 'skip' };
}

/**
 * How a listed data file is read: opened without following a symbolic link as its last component
 * (a link checked at listing time was replaced by its target's real path), then checked on the
 * descriptor (a regular file within budget; src/io/files.ts). A file swapped for a link, FIFO or
 * folder after it was listed is refused then, not followed.
 */
const DATA_READ = { noFollow: true } as const;

/**
 * The image files (.png .jpg .jpeg .dcm) under `dir`, recursively, sorted: `file` is `dir` joined
 * with the relative path (what messages show), `path` what to read (for a symbolic link inside
 * `dir`, its target's real path; links out of `dir` are refused). ImageLoader reads `path`
 * without following a link as its last component, so a file swapped for one later is refused.
 *
 * @example
 * ```ts
 * import { listImageFiles } from 'lightconv';
 *
 * for (const { file } of await listImageFiles('new-images', 'predict')) console.log(file);
 * ```
 */
export async function listImageFiles(dir: string, what: string): Promise<{ file: string; path: string }[]> {
  const { join } = await import('node:path');
  const links = new Map<string, string>();
  const files = (await walk(dir, what, dir, links)).filter((f) => LISTED.test(f));
  return files.map((f) => {
    const file = join(dir, ...f.split('/'));
    return { file, path: links.get(f) ?? file };
  });
}

/**
 * Regular files under `dir`, recursively, as sorted relative POSIX paths. Symbolic links are
 * followed within `root` only (each real folder once); see dataFile.
 */
async function walk(dir: string, what: string, root = dir, links?: Map<string, string>): Promise<string[]> {
  const { readdir, realpath } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const inside = await insideRoot(root);
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = async (abs: string, rel: string): Promise<void> => {
    const real = await realpath(abs);
    if (seen.has(real)) return; // a symlink loop
    seen.add(real);
    const entries = await readdir(abs, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      throw new LightconvError(`${what}: cannot read '${abs}' (${e.code ?? e.message})`);
    });
    for (const e of entries) {
      // Hidden entries (.DS_Store, ._x.png resource forks, .ipynb_checkpoints) are never data.
      if (e.name.startsWith('.')) continue;
      const a = join(abs, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      const { kind, real: target } = await dataFile(a, e, inside, what);
      if (kind === 'dir') await visit(a, r);
      else if (kind === 'file') {
        out.push(r);
        if (target !== undefined) links?.set(r, target);
      }
    }
  };
  await visit(dir, '');
  // One sort of the relative paths: the order never depends on the file system's.
  return out.sort();
}

/**
 * Lists a torchvision ImageFolder layout, `root/<class>/…/<image>`: classes are the folder names
 * sorted, files (.png .jpg .jpeg .dcm, in nested folders too) sorted by path. Hidden files and
 * folders are skipped. An empty class folder, a single class or no images at all is an error.
 *
 * @example
 * ```ts
 * import { listImageFolder } from 'lightconv';
 *
 * const list = await listImageFolder('data/skin'); // data/skin/<class>/<image>
 * console.log(list.classes, list.items.length, list.items[0]?.file);
 * ```
 */
export async function listImageFolder(root: string): Promise<ImageList> {
  const { readdir } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const what = 'listImageFolder';
  const entries = await readdir(root, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new LightconvError(`${what}: cannot read '${root}' (${e.code ?? e.message})`);
  });
  const classes = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (classes.length === 0) {
    const loose = entries.filter((e) => e.isFile() && LISTED.test(e.name)).length;
    const hint = loose ? ` (it holds ${loose} images directly; the layout is root/<class>/<image>)` : '';
    throw new ValueError(`${what}: '${root}' has no class folders${hint}`);
  }
  const items: ImageItem[] = [];
  const empty: string[] = [];
  for (const [label, cls] of classes.entries()) {
    const links = new Map<string, string>();
    const files = (await walk(join(root, cls), what, root, links)).filter((f) => LISTED.test(f));
    if (files.length === 0) empty.push(cls);
    for (const f of files) items.push({ path: links.get(f) ?? join(root, cls, ...f.split('/')), file: `${cls}/${f}`, label });
  }
  if (items.length === 0) throw new ValueError(`${what}: no images (.png .jpg .jpeg .dcm) under '${root}'`);
  if (empty.length) {
    throw new ValueError(`${what}: class folder${empty.length > 1 ? 's' : ''} ${empty.map((c) => `'${join(root, c)}'`).join(', ')} ${empty.length > 1 ? 'hold' : 'holds'} no images (.png .jpg .jpeg .dcm)`);
  }
  if (classes.length < 2) throw new ValueError(`${what}: '${root}' has one class ('${classes[0]}'); a classifier needs at least two`);
  return { root, layout: 'folder', classes, items };
}

/** Options of `listCsvImages`: the CSV's columns (HAM10000's names by default) and the class order. */
export interface CsvImagesOptions {
  /** Column naming the image (HAM10000: image_id); the extension may be left out. Default 'image_id'. */
  imageCol?: string;
  /** Column holding the class name. Default 'dx'. */
  labelCol?: string;
  /** Column grouping images (HAM10000: lesion_id) for grouped splits. */
  groupCol?: string;
  /** Class names in label order; a label outside them is an error. Default: the labels seen, sorted. */
  classes?: readonly string[];
}

/**
 * Lists images named by a CSV file (the HAM10000 layout: `image_id,dx,…`), found under `root`
 * — directly, at the path the CSV gives, or by file name anywhere below root (HAM10000 splits
 * its images over two folders). A CSV path that does not exist as given is also tried relative
 * to root. Rows are numbered as a spreadsheet shows them: the header is row 1.
 *
 * @example
 * ```ts
 * import { listCsvImages } from 'lightconv';
 *
 * const list = await listCsvImages('data/HAM10000', 'HAM10000_metadata.csv', { imageCol: 'image_id', labelCol: 'dx', groupCol: 'lesion_id' });
 * ```
 */
export async function listCsvImages(root: string, csvFile: string, opts: CsvImagesOptions = {}): Promise<ImageList> {
  const { stat } = await import('node:fs/promises');
  const { isAbsolute, join } = await import('node:path');
  const { parse } = await import('csv-parse/sync');
  const what = 'listCsvImages';
  const imageCol = opts.imageCol ?? 'image_id';
  const labelCol = opts.labelCol ?? 'dx';

  let csvPath = csvFile;
  const exists = (p: string) => stat(p).then((s) => s.isFile(), () => false);
  if (!(await exists(csvPath)) && !isAbsolute(csvFile) && (await exists(join(root, csvFile)))) csvPath = join(root, csvFile);
  // Opened first, then checked: a FIFO or device is refused instead of hanging (src/io/files.ts).
  const text = new TextDecoder().decode(
    await readRegularFile(csvPath).catch((e: Error) => {
      throw e instanceof ValueError || e instanceof ResourceLimitError ? e : new LightconvError(`${what}: ${e.message}`);
    }),
  );
  let rows: string[][];
  try {
    // Empty lines are kept (and skipped below) so that row numbers match a spreadsheet's.
    rows = parse(text, { bom: true, relax_column_count: true }) as string[][];
  } catch (e) {
    throw new ValueError(`${what}: ${csvPath}: malformed CSV: ${(e as Error).message}`);
  }
  const header = (rows[0] ?? []).map((h) => h.trim());
  const col = (name: string) => {
    const k = header.indexOf(name);
    if (k < 0) throw new ValueError(`${what}: ${csvPath} has no column '${name}' (columns: ${header.map((h) => `'${h}'`).join(', ') || 'none'})`);
    return k;
  };
  const ic = col(imageCol);
  const lc = col(labelCol);
  const gc = opts.groupCol !== undefined ? col(opts.groupCol) : -1;

  const links = new Map<string, string>();
  const files = await walk(root, what, root, links);
  const fileSet = new Set(files);
  // Relative paths by base name and by base name without its image extension.
  const byName = new Map<string, string[]>();
  const add = (k: string, f: string) => (byName.get(k) ?? byName.set(k, []).get(k)!).push(f);
  for (const f of files) {
    const base = f.slice(f.lastIndexOf('/') + 1);
    add(base, f);
    if (LISTED.test(base)) add(base.replace(LISTED, ''), f);
  }
  const resolve = (id: string, row: number): string | undefined => {
    const rel = id.replace(/\\/g, '/').replace(/^\.\//, '');
    const candidates = LISTED.test(rel) ? [rel] : [rel, ...CSV_EXTENSIONS.map((e) => rel + e)];
    for (const c of candidates) if (fileSet.has(c)) return c;
    if (rel.includes('/')) return undefined;
    const hits = [...new Set(candidates.flatMap((c) => byName.get(c) ?? []))].filter((f) => LISTED.test(f) || fileSet.has(f));
    if (hits.length > 1) {
      throw new ValueError(`${what}: ${csvPath} row ${row}: image '${id}' matches ${hits.length} files under '${root}': ${hits.slice(0, 4).join(', ')}${hits.length > 4 ? ', …' : ''}`);
    }
    return hits[0];
  };

  const given = opts.classes ? [...opts.classes] : undefined;
  if (given && new Set(given).size !== given.length) throw new ValueError(`${what}: classes [${given.join(', ')}] repeat a name`);
  const raw: { file: string; label: string; group?: string; row: number }[] = [];
  const firstRow = new Map<string, number>();
  const missing: string[] = [];
  let nMissing = 0;
  for (let r = 1; r < rows.length; r++) {
    const rec = rows[r]!;
    const row = r + 1;
    if (rec.every((v) => v.trim() === '')) continue;
    const need = Math.max(ic, lc, gc);
    if (rec.length <= need) throw new ValueError(`${what}: ${csvPath} row ${row} has ${rec.length} fields, the header ${header.length}`);
    const id = rec[ic]!.trim();
    const label = rec[lc]!.trim();
    if (!id) throw new ValueError(`${what}: ${csvPath} row ${row}: empty '${imageCol}'`);
    if (!label) throw new ValueError(`${what}: ${csvPath} row ${row}: empty '${labelCol}' for image '${id}'`);
    const before = firstRow.get(id);
    if (before !== undefined) throw new ValueError(`${what}: ${csvPath} row ${row}: image '${id}' is listed twice (rows ${before} and ${row})`);
    firstRow.set(id, row);
    if (given && !given.includes(label)) {
      throw new ValueError(`${what}: ${csvPath} row ${row}: label '${label}' of image '${id}' is not one of the classes [${given.join(', ')}]`);
    }
    const file = resolve(id, row);
    if (file === undefined) {
      nMissing++;
      if (missing.length < 5) missing.push(`row ${row} ('${id}')`);
      continue;
    }
    raw.push({ file, label, row, ...(gc >= 0 ? { group: rec[gc]!.trim() } : {}) });
  }
  if (nMissing) {
    throw new ValueError(
      `${what}: ${csvPath}: ${nMissing} row${nMissing > 1 ? 's name' : ' names'} an image not found under '${root}' ` +
        `(tried ${CSV_EXTENSIONS.join(' ')} when the id has no extension): ${missing.join(', ')}${nMissing > missing.length ? ', …' : ''}`,
    );
  }
  // Two ids resolving to one file (e.g. 'a' and 'a.jpg') would put one image in two places.
  const fileRow = new Map<string, number>();
  for (const it of raw) {
    const prev = fileRow.get(it.file);
    if (prev !== undefined) throw new ValueError(`${what}: ${csvPath} rows ${prev} and ${it.row} both name the file '${it.file}'`);
    fileRow.set(it.file, it.row);
  }
  if (raw.length === 0) throw new ValueError(`${what}: ${csvPath} lists no images`);
  const classes = given ?? [...new Set(raw.map((it) => it.label))].sort();
  const seen = new Set(raw.map((it) => it.label));
  if (seen.size < 2) throw new ValueError(`${what}: ${csvPath}: every image has the label '${raw[0]!.label}'; a classifier needs at least two classes`);
  const items = raw.map(({ file, label, group }) => ({ path: links.get(file) ?? join(root, ...file.split('/')), file, label: classes.indexOf(label), ...(group !== undefined ? { group } : {}) }));
  return { root, layout: 'csv', classes, items };
}

/**
 * The items at `indices`, in that order (classes and root kept).
 *
 * @example
 * ```ts
 * import { listImageFolder, stratifiedSplit, subsetList } from 'lightconv';
 *
 * const list = await listImageFolder('data/skin');
 * const { train, test } = stratifiedSplit(list.items.map((it) => it.label), 0.2, 0);
 * const testList = subsetList(list, test);
 * ```
 */
export function subsetList(list: ImageList, indices: readonly number[]): ImageList {
  const n = list.items.length;
  const items = indices.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new ValueError(`subsetList: index ${i} is outside the list of ${n} images`);
    return list.items[i]!;
  });
  return { root: list.root, layout: list.layout, classes: [...list.classes], items };
}
