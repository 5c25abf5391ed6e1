import { type DType, DTYPES } from '../core/dtype.js';
import { LightconvError } from '../core/errors.js';
import { Tensor } from '../core/tensor.js';
import type { Optimizer } from './optim.js';

/**
 * Checkpoints: a model's parameters and buffers and an optimizer's state in one file.
 *
 * Format (little-endian):
 *   bytes 0–7    magic "LCCKPT01"
 *   bytes 8–11   uint32 n, the length of the JSON header
 *   12…12+n      UTF-8 JSON: { format, version: 1, dataBytes, meta, tensors: [{ name, dtype, shape,
 *                offset, bytes }], optimizer: { stepCount, groups: [{ lr, initialLr }],
 *                scalars: { "<param>": { step: 3 } } } }
 *   then         padding to a multiple of 8, then the tensors' raw data, each at its `offset`
 *                (relative to the start of this data section)
 * Tensor names: `param/<name>`, `buffer/<name>`, `optim/<param name>/<state key>` (e.g.
 * `optim/fc.weight/exp_avg`).
 *
 * Saving never damages an existing checkpoint: the bytes go to a temporary file in the same
 * folder, which is fsynced and then renamed over the target (atomic on POSIX file systems);
 * on any error the temporary file is removed and the old file is untouched.
 */
export interface CheckpointModel {
  namedParameters(): [string, Tensor][];
  namedBuffers(): [string, Tensor][];
}

export class CheckpointError extends LightconvError {}

/** The file operations a save needs (tests substitute a failing one). */
export interface CheckpointIo {
  open(path: string, flags: string): Promise<{ write(data: Uint8Array): Promise<unknown>; sync(): Promise<void>; close(): Promise<void> }>;
  rename(from: string, to: string): Promise<void>;
  rm(path: string, opts: { force: boolean }): Promise<void>;
}

const MAGIC = 'LCCKPT01';

function paramNames(model: CheckpointModel): Map<Tensor, string> {
  return new Map(model.namedParameters().map(([n, t]) => [t, n]));
}

/** The checkpoint as bytes. */
export function encodeCheckpoint(model: CheckpointModel, optimizer?: Optimizer<{ lr: number }>, meta: Record<string, unknown> = {}): Uint8Array {
  const entries: [string, Tensor][] = [...model.namedParameters().map(([n, t]) => [`param/${n}`, t] as [string, Tensor]), ...model.namedBuffers().map(([n, t]) => [`buffer/${n}`, t] as [string, Tensor])];
  const scalars: Record<string, Record<string, number>> = {};
  if (optimizer) {
    const names = paramNames(model);
    for (const [p, st] of optimizer.state) {
      const n = names.get(p);
      if (n === undefined) throw new CheckpointError('saveCheckpoint: the optimizer holds state for a tensor that is not a parameter of the model');
      for (const [k, v] of Object.entries(st)) {
        if (v instanceof Tensor) entries.push([`optim/${n}/${k}`, v]);
        else (scalars[n] ??= {})[k] = v;
      }
    }
  }
  let offset = 0;
  const tensors = entries.map(([name, t]) => {
    const bytes = t.size * DTYPES[t.dtype].bytes;
    const e = { name, dtype: t.dtype, shape: [...t.shape], offset, bytes };
    offset += Math.ceil(bytes / 8) * 8;
    return e;
  });
  const header = new TextEncoder().encode(
    JSON.stringify({
      format: 'lightconv-checkpoint',
      version: 1,
      dataBytes: offset,
      meta,
      tensors,
      optimizer: optimizer ? { stepCount: optimizer.stepCount, groups: optimizer.groups.map((g) => ({ lr: g.options.lr, initialLr: g.initialLr })), scalars } : null,
    }),
  );
  const dataStart = Math.ceil((12 + header.length) / 8) * 8;
  const out = new Uint8Array(dataStart + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  entries.forEach(([, t], i) => {
    const d = t.dataSync();
    out.set(new Uint8Array(d.buffer, d.byteOffset, tensors[i]!.bytes), dataStart + tensors[i]!.offset);
  });
  return out;
}

// node:fs is imported when a checkpoint is saved or loaded, so the module loads in browsers.
const fs = () => import('node:fs/promises');
const nodeIo: CheckpointIo = { open: async (p, f) => (await fs()).open(p, f), rename: async (a, b) => (await fs()).rename(a, b), rm: async (p, o) => (await fs()).rm(p, o) };

function splitPath(path: string): { dir: string; base: string } {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return { dir: i >= 0 ? path.slice(0, i + 1) : '', base: path.slice(i + 1) };
}

/** Writes the checkpoint to `path` atomically (temp file in the same folder, fsync, rename). */
export async function saveCheckpoint(
  path: string,
  model: CheckpointModel,
  opts: { optimizer?: Optimizer<{ lr: number }>; meta?: Record<string, unknown>; io?: CheckpointIo } = {},
): Promise<void> {
  const io = opts.io ?? nodeIo;
  const bytes = encodeCheckpoint(model, opts.optimizer, opts.meta);
  const { dir, base } = splitPath(path);
  const tmp = `${dir}.${base}.${process.pid}.${Date.now()}.tmp`;
  try {
    const fh = await io.open(tmp, 'w');
    try {
      await fh.write(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await io.rename(tmp, path);
  } catch (e) {
    await io.rm(tmp, { force: true }).catch(() => undefined);
    throw new CheckpointError(`saveCheckpoint: could not write '${path}' (${(e as Error).message}); any previous checkpoint there is unchanged`);
  }
}

interface Header {
  format: string;
  version: number;
  dataBytes: number;
  meta: Record<string, unknown>;
  tensors: { name: string; dtype: DType; shape: number[]; offset: number; bytes: number }[];
  optimizer: { stepCount: number; groups: { lr: number; initialLr: number }[]; scalars: Record<string, Record<string, number>> } | null;
}

/** Decodes checkpoint bytes into named tensors (copies) and the header. */
export function decodeCheckpoint(bytes: Uint8Array, what = 'checkpoint'): { header: Header; tensors: Map<string, Tensor> } {
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) throw new CheckpointError(`${what}: not a lightconv checkpoint (bad magic)`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(8, true);
  if (12 + n > bytes.length) throw new CheckpointError(`${what}: truncated header`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + n))) as Header;
  } catch {
    throw new CheckpointError(`${what}: corrupt header`);
  }
  if (header.version !== 1) throw new CheckpointError(`${what}: unsupported version ${header.version}`);
  const dataStart = Math.ceil((12 + n) / 8) * 8;
  if (bytes.length !== dataStart + header.dataBytes) {
    throw new CheckpointError(`${what}: ${bytes.length} bytes, expected ${dataStart + header.dataBytes} (truncated or damaged; a tensor would run past the end)`);
  }
  const tensors = new Map<string, Tensor>();
  for (const e of header.tensors) {
    const info = DTYPES[e.dtype];
    if (!info) throw new CheckpointError(`${what}: tensor '${e.name}' has unknown dtype ${e.dtype}`);
    const start = dataStart + e.offset;
    if (start + e.bytes > bytes.length) throw new CheckpointError(`${what}: tensor '${e.name}' runs past the end of the file (truncated?)`);
    const data = info.make(e.bytes / info.bytes);
    new Uint8Array(data.buffer).set(bytes.subarray(start, start + e.bytes));
    tensors.set(e.name, new Tensor(data, e.shape, e.dtype));
  }
  return { header, tensors };
}

/**
 * Loads a checkpoint into `model` (values copied into its existing tensors; names and shapes
 * must match) and, when given, `optimizer` (state, step count, group lrs). Returns the meta.
 */
export async function loadCheckpoint(path: string, model: CheckpointModel, opts: { optimizer?: Optimizer<{ lr: number }> } = {}): Promise<Record<string, unknown>> {
  const { header, tensors } = decodeCheckpoint(new Uint8Array(await (await fs()).readFile(path)), path);
  const into = (kind: string, list: [string, Tensor][]) => {
    for (const [name, t] of list) {
      const src = tensors.get(`${kind}/${name}`);
      if (!src) throw new CheckpointError(`${path}: no ${kind} '${name}'`);
      if (src.shape.join() !== t.shape.join() || src.dtype !== t.dtype) {
        throw new CheckpointError(`${path}: ${kind} '${name}' is ${src.dtype} [${src.shape}], the model's is ${t.dtype} [${t.shape}]`);
      }
      t.dataSync().set(src.dataSync());
      t.version++;
    }
  };
  into('param', model.namedParameters());
  into('buffer', model.namedBuffers());
  const opt = opts.optimizer;
  if (opt) {
    if (!header.optimizer) throw new CheckpointError(`${path}: holds no optimizer state`);
    opt.stepCount = header.optimizer.stepCount;
    header.optimizer.groups.forEach((g, i) => {
      if (opt.groups[i]) opt.groups[i]!.options.lr = g.lr;
    });
    opt.state.clear();
    for (const [name, p] of model.namedParameters()) {
      const st: Record<string, Tensor | number> = { ...(header.optimizer.scalars[name] ?? {}) };
      for (const [k, t] of tensors) if (k.startsWith(`optim/${name}/`)) st[k.slice(`optim/${name}/`.length)] = t;
      if (Object.keys(st).length) opt.state.set(p, st);
    }
  }
  return header.meta;
}
