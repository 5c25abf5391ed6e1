import { type DType, DTYPES } from '../core/dtype.js';
import { LightconvError, ResourceLimitError } from '../core/errors.js';
import { getLimits } from '../core/limits.js';
import { Tensor } from '../core/tensor.js';
import { type AtomicIo, writeFileAtomic } from '../io/atomic.js';
import { crc32 } from '../io/crc32.js';
import type { Optimizer } from './optim.js';

/**
 * Checkpoints: a model's parameters and buffers and an optimizer's state in one file.
 *
 * Format (little-endian):
 *   bytes 0–7    magic "LCCKPT02"
 *   bytes 8–11   uint32 n, the length of the JSON header
 *   bytes 12–15  uint32 CRC-32 (IEEE) of every byte from 16 to the end of the file
 *   16…16+n      UTF-8 JSON: { format, version: 2, dataBytes, meta, tensors: [{ name, dtype, shape,
 *                offset, bytes }], optimizer: { stepCount, groups: [{ lr, initialLr }],
 *                scalars: { "<param>": { step: 3 } } } }
 *   then         padding to a multiple of 8, then the tensors' raw data, each at its `offset`
 *                (relative to the start of this data section)
 * Files of the first format ("LCCKPT01", no checksum, header at byte 12, version 1) still load.
 * Tensor names: `param/<name>`, `buffer/<name>`, `optim/<param name>/<state key>` (e.g.
 * `optim/fc.weight/exp_avg`).
 *
 * Saving never damages an existing checkpoint: it goes through src/io/atomic.ts (every byte
 * written, fsynced, size and checksum verified on the temporary file, renamed, folder fsynced);
 * on any error the temporary file is removed and the old file is untouched.
 *
 * Loading validates the whole file first — header shape, allowlisted dtypes, offsets and sizes,
 * the checksum, and every parameter, buffer and optimizer-state name and shape against the target
 * model and optimizer, the state keys and values against what the optimizer keeps
 * (Optimizer.stateSpec) and the saved lrs against its settings' ranges (Optimizer.checkOptions)
 * — and only then copies: all or nothing, CheckpointError naming the tensor or key.
 */
export interface CheckpointModel {
  /** Every parameter with its dotted name. */
  namedParameters(): [string, Tensor][];
  /** Every buffer (BN running statistics) with its dotted name. */
  namedBuffers(): [string, Tensor][];
}

/**
 * A checkpoint that cannot be read, or that does not fit the model or optimizer; the message names
 * the file and tensor.
 *
 * @example
 * ```ts
 * import { CheckpointError, lightCnn, loadCheckpoint } from 'lightconv';
 *
 * try {
 *   await loadCheckpoint('run.lcckpt', lightCnn());
 * } catch (e) {
 *   if (e instanceof CheckpointError) console.error(e.message); // names the file and tensor
 * }
 * ```
 */
export class CheckpointError extends LightconvError {}

/** The file operations a save needs (tests substitute failing ones); see src/io/atomic.ts. */
export type CheckpointIo = AtomicIo;

const MAGIC_V1 = 'LCCKPT01';
const MAGIC = 'LCCKPT02';
/** Where the JSON header starts: after magic, length and (from version 2) the checksum. */
const HEADER_AT = { 1: 12, 2: 16 } as const;

function paramNames(model: CheckpointModel): Map<Tensor, string> {
  return new Map(model.namedParameters().map(([n, t]) => [t, n]));
}

/**
 * The checkpoint as bytes.
 *
 * @example
 * ```ts
 * import { decodeCheckpoint, encodeCheckpoint, lightCnn } from 'lightconv';
 *
 * const bytes = encodeCheckpoint(lightCnn(), undefined, { epoch: 3 });
 * const { header, tensors } = decodeCheckpoint(bytes); // tensors: 'param/…', 'buffer/…'
 * ```
 */
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
      version: 2,
      dataBytes: offset,
      meta,
      tensors,
      optimizer: optimizer ? { stepCount: optimizer.stepCount, groups: optimizer.groups.map((g) => ({ lr: g.options.lr, initialLr: g.initialLr })), scalars } : null,
    }),
  );
  const dataStart = Math.ceil((HEADER_AT[2] + header.length) / 8) * 8;
  const out = new Uint8Array(dataStart + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, header.length, true);
  out.set(header, HEADER_AT[2]);
  entries.forEach(([, t], i) => {
    const d = t.dataSync();
    out.set(new Uint8Array(d.buffer, d.byteOffset, tensors[i]!.bytes), dataStart + tensors[i]!.offset);
  });
  view.setUint32(12, crc32(out.subarray(16)), true);
  return out;
}

/**
 * Writes the checkpoint to `path` through src/io/atomic.ts: all bytes or an error, fsynced, the
 * size and the checksum read back and verified before the rename over any old file.
 *
 * @example
 * ```ts
 * import { Adam, lightCnn, saveCheckpoint } from 'lightconv';
 *
 * const net = lightCnn();
 * const optimizer = new Adam(net.parameters(), { lr: 1e-3 });
 * await saveCheckpoint('run.lcckpt', net, { optimizer, meta: { epoch: 3 } });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  model: CheckpointModel,
  opts: { optimizer?: Optimizer<{ lr: number }>; meta?: Record<string, unknown>; io?: CheckpointIo } = {},
): Promise<void> {
  const bytes = encodeCheckpoint(model, opts.optimizer, opts.meta);
  await writeFileAtomic(path, bytes, {
    ...(opts.io ? { io: opts.io } : {}),
    verify: (back) => verifyChecksum(back, `${path} (as written)`),
    error: (m) => new CheckpointError(`saveCheckpoint: ${m}`),
  });
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  offset: number;
  bytes: number;
}

interface Header {
  format: string;
  version: number;
  dataBytes: number;
  meta: Record<string, unknown>;
  tensors: Entry[];
  optimizer: { stepCount: number; groups: { lr: number; initialLr: number }[]; scalars: Record<string, Record<string, number>> } | null;
}

/** Dtype names a checkpoint may use: an allowlist, so '__proto__' or 'constructor' never index DTYPES. */
const DTYPE_NAMES: ReadonlySet<string> = new Set(Object.keys(DTYPES));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** An optimizer-state key: a plain identifier that no object inherits ('__proto__', 'constructor' are refused). */
const isStateKey = (k: string): boolean => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && !(k in Object.prototype);

/** The format version from the magic, or an error. */
function versionOf(bytes: Uint8Array, what: string): 1 | 2 {
  const magic = bytes.length >= 16 ? new TextDecoder().decode(bytes.subarray(0, 8)) : '';
  if (magic === MAGIC) return 2;
  if (magic === MAGIC_V1) return 1;
  throw new CheckpointError(`${what}: not a lightconv checkpoint (bad magic)`);
}

/** Throws unless the stored CRC-32 matches the bytes (format 2; format 1 has none). */
function verifyChecksum(bytes: Uint8Array, what: string): void {
  if (versionOf(bytes, what) === 1) return;
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(12, true);
  const actual = crc32(bytes.subarray(16));
  if (stored !== actual) {
    throw new CheckpointError(`${what}: checksum mismatch (stored ${stored.toString(16).padStart(8, '0')}, computed ${actual.toString(16).padStart(8, '0')}): the file is damaged`);
  }
}

/**
 * Parses and validates the header against the file's length: every field typed, dtypes from the
 * allowlist, each tensor's byte count equal to its shape's, inside the data section, names unique.
 */
function validate(bytes: Uint8Array, what: string): { header: Header; dataStart: number } {
  const version = versionOf(bytes, what);
  const at = HEADER_AT[version];
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(8, true);
  if (at + n > bytes.length) throw new CheckpointError(`${what}: truncated header (${n} bytes declared, ${bytes.length - at} present)`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(at, at + n)));
  } catch {
    throw new CheckpointError(`${what}: corrupt header (not UTF-8 JSON)`);
  }
  const bad = (why: string) => new CheckpointError(`${what}: invalid header: ${why}`);
  if (!isObject(raw)) throw bad(`expected an object, found ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
  if (raw.format !== 'lightconv-checkpoint') throw bad(`format is ${JSON.stringify(raw.format)}, expected "lightconv-checkpoint"`);
  if (raw.version !== version) throw new CheckpointError(`${what}: unsupported version ${JSON.stringify(raw.version)} (the file's magic says ${version})`);
  if (!isCount(raw.dataBytes)) throw bad(`dataBytes ${JSON.stringify(raw.dataBytes)} is not a non-negative integer`);
  if (raw.meta !== undefined && !isObject(raw.meta)) throw bad('meta is not an object');
  if (!Array.isArray(raw.tensors)) throw bad(`'tensors' is ${raw.tensors === undefined ? 'missing' : 'not an array'}`);
  const dataStart = Math.ceil((at + n) / 8) * 8;
  if (bytes.length !== dataStart + raw.dataBytes) {
    throw new CheckpointError(`${what}: ${bytes.length} bytes, expected ${dataStart + raw.dataBytes} (truncated or damaged; a tensor would run past the end)`);
  }
  const dataBytes = raw.dataBytes;
  const names = new Set<string>();
  const maxRank = getLimits().maxRank;
  raw.tensors.forEach((e: unknown, i: number) => {
    if (!isObject(e)) throw bad(`tensors[${i}] is not an object`);
    if (typeof e.name !== 'string' || e.name === '') throw bad(`tensors[${i}] has no name`);
    const t = `tensor '${e.name}'`;
    if (names.has(e.name)) throw bad(`${t} appears twice`);
    names.add(e.name);
    if (typeof e.dtype !== 'string' || !DTYPE_NAMES.has(e.dtype)) throw bad(`${t} has unknown dtype ${JSON.stringify(e.dtype)}`);
    const size = DTYPES[e.dtype as DType].bytes;
    if (!Array.isArray(e.shape) || e.shape.length > maxRank || !e.shape.every(isCount)) throw bad(`${t} has an invalid shape ${JSON.stringify(e.shape)}`);
    if (!isCount(e.offset)) throw bad(`${t} has offset ${JSON.stringify(e.offset)}; offsets are non-negative integers`);
    if (!isCount(e.bytes) || e.bytes % size !== 0) throw bad(`${t} has ${JSON.stringify(e.bytes)} bytes, not a multiple of its ${e.dtype} element size ${size}`);
    const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (count * size !== e.bytes) throw bad(`${t}: shape [${(e.shape as number[]).join(', ')}] of ${e.dtype} needs ${count * size} bytes, the header says ${e.bytes}`);
    if (e.offset + e.bytes > dataBytes) throw bad(`${t} at offset ${e.offset} + ${e.bytes} bytes runs past the ${dataBytes}-byte data section`);
  });
  const o = raw.optimizer;
  if (o !== null && o !== undefined) {
    if (!isObject(o)) throw bad('optimizer is not an object');
    if (!isCount(o.stepCount)) throw bad(`optimizer stepCount ${JSON.stringify(o.stepCount)} is not a non-negative integer`);
    const isRate = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
    if (!Array.isArray(o.groups)) throw bad('optimizer groups is not an array');
    o.groups.forEach((g: unknown, i: number) => {
      if (!isObject(g) || !isRate(g.lr) || !isRate(g.initialLr)) {
        throw bad(`optimizer group ${i} must have a finite lr and initialLr ≥ 0, found ${JSON.stringify(isObject(g) ? { lr: g.lr, initialLr: g.initialLr } : g)}`);
      }
    });
    if (!isObject(o.scalars) || !Object.values(o.scalars).every(isObject)) throw bad('optimizer scalars must map parameter names to objects of numbers');
    for (const [p, sc] of Object.entries(o.scalars)) {
      for (const [k, v] of Object.entries(sc as object)) {
        // JSON cannot hold NaN or ∞, but a key may hold a string, null or an object.
        if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`optimizer state '${p}/${k}' is ${JSON.stringify(v)}, not a finite number`);
      }
    }
    for (const [p, sc] of Object.entries(o.scalars)) {
      const k = Object.keys(sc as object).find((x) => !isStateKey(x));
      if (k !== undefined) throw bad(`optimizer state of '${p}' has the key ${JSON.stringify(k)}, not a state name`);
    }
  }
  return { header: { ...(raw as unknown as Header), meta: (raw.meta as Record<string, unknown> | undefined) ?? {}, optimizer: (o as Header['optimizer']) ?? null }, dataStart };
}

/**
 * Checks the optimizer state a checkpoint holds against what the optimizer keeps (its stateSpec
 * for the parameter's group): exactly the expected tensor and scalar keys for every parameter
 * that has state, tensors in the dtype the optimizer creates and with finite values (second
 * moments ≥ 0), counts such as Adam's `step` non-negative safe integers. A file that passes
 * cannot make the next step produce NaN from its state or reach a missing or mistyped key.
 */
function checkOptimizerState(path: string, opt: Optimizer<{ lr: number }>, params: [string, Tensor][], states: Map<Tensor, Record<string, Tensor | number>>): void {
  const groupOf = new Map<Tensor, { lr: number }>();
  for (const g of opt.groups) for (const p of g.params) groupOf.set(p, g.options);
  const list = (keys: Iterable<string>) => [...keys].map((k) => `'${k}'`).join(', ') || 'none';
  for (const [name, p] of params) {
    const st = states.get(p);
    if (!st) continue; // never stepped (frozen, or unused by the loss): the optimizer starts it afresh
    const at = (k: string) => `${path}: optimizer state '${name}/${k}'`;
    const o = groupOf.get(p);
    if (!o) throw new CheckpointError(`${path}: optimizer state for '${name}', which is in none of the optimizer's parameter groups`);
    const spec = opt.stateSpec(o);
    const floatType = p.dtype === 'float64' ? 'float64' : 'float32';
    for (const [k, v] of Object.entries(st)) {
      if (v instanceof Tensor) {
        if (spec && !spec.tensors.includes(k)) {
          throw new CheckpointError(`${at(k)} is a tensor; ${opt.constructor.name} keeps ${spec.counts.includes(k) ? `'${k}' as a number` : `no '${k}'`} (tensor state: ${list(spec.tensors)})`);
        }
        if (spec && v.dtype !== floatType) throw new CheckpointError(`${at(k)} is ${v.dtype}, ${opt.constructor.name} keeps it as ${floatType} for a ${p.dtype} parameter`);
        const min = spec?.nonNegative?.includes(k) ? 0 : -Infinity;
        const d = v.dataSync();
        for (let i = 0; i < d.length; i++) {
          const x = d[i]!;
          if (!(x >= min) || !Number.isFinite(x)) throw new CheckpointError(`${at(k)} holds ${x} at index ${i}${min === 0 ? '; it must be finite and ≥ 0' : '; it must be finite'}`);
        }
      } else if (spec) {
        if (!spec.counts.includes(k)) {
          throw new CheckpointError(`${at(k)} is the number ${v}; ${opt.constructor.name} keeps ${spec.tensors.includes(k) ? `'${k}' as a tensor of the parameter's shape` : `no '${k}'`} (scalar state: ${list(spec.counts)})`);
        }
        if (!Number.isSafeInteger(v) || v < 0) throw new CheckpointError(`${at(k)} is ${v}; it must be a non-negative integer`);
      }
    }
    if (spec) {
      const missing = [...spec.tensors, ...spec.counts].filter((k) => !Object.hasOwn(st, k));
      if (missing.length) throw new CheckpointError(`${path}: optimizer state of '${name}' lacks ${list(missing)} (${opt.constructor.name} keeps ${list([...spec.tensors, ...spec.counts])})`);
    }
  }
}

/**
 * Decodes checkpoint bytes into named tensors (copies) and the header, after validating all of it.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { decodeCheckpoint } from 'lightconv';
 *
 * const { tensors } = decodeCheckpoint(readFileSync('run.lcckpt'), 'run.lcckpt');
 * for (const [name, t] of tensors) console.log(name, t.shape);
 * ```
 */
export function decodeCheckpoint(bytes: Uint8Array, what = 'checkpoint'): { header: Header; tensors: Map<string, Tensor> } {
  const { header, dataStart } = validate(bytes, what);
  verifyChecksum(bytes, what);
  const tensors = new Map<string, Tensor>();
  for (const e of header.tensors) {
    const info = DTYPES[e.dtype];
    const data = info.make(e.bytes / info.bytes);
    const start = dataStart + e.offset;
    new Uint8Array(data.buffer).set(bytes.subarray(start, start + e.bytes));
    tensors.set(e.name, new Tensor(data, e.shape, e.dtype));
  }
  return { header, tensors };
}

/**
 * Loads a checkpoint into `model` (values copied into its existing tensors; names and shapes
 * must match) and, when given, `optimizer` (state, step count, group lrs). Returns the meta.
 * Everything is checked before anything is changed: on any error the model and optimizer are
 * as they were.
 *
 * @example
 * ```ts
 * import { Adam, lightCnn, loadCheckpoint } from 'lightconv';
 *
 * const net = lightCnn();
 * const optimizer = new Adam(net.parameters(), { lr: 1e-3 });
 * const meta = await loadCheckpoint('run.lcckpt', net, { optimizer }); // e.g. { epoch: 3 }
 * ```
 */
export async function loadCheckpoint(path: string, model: CheckpointModel, opts: { optimizer?: Optimizer<{ lr: number }> } = {}): Promise<Record<string, unknown>> {
  const { readRegularFile } = await import('../io/files.js');
  const bytes = await readRegularFile(path, { error: (m) => new CheckpointError(m) }).catch((e: unknown) => {
    throw e instanceof CheckpointError || e instanceof ResourceLimitError ? e : new CheckpointError((e as Error).message);
  });
  const { header, tensors } = decodeCheckpoint(bytes, path);

  // 1. Plan: every copy, every check, no writes.
  const copies: [Tensor, Tensor][] = [];
  const used = new Set<string>();
  const plan = (kind: string, list: [string, Tensor][]) => {
    for (const [name, t] of list) {
      const key = `${kind}/${name}`;
      const src = tensors.get(key);
      if (!src) throw new CheckpointError(`${path}: no ${kind} '${name}'`);
      if (src.shape.join() !== t.shape.join() || src.dtype !== t.dtype) {
        throw new CheckpointError(`${path}: ${kind} '${name}' is ${src.dtype} [${src.shape}], the model's is ${t.dtype} [${t.shape}]`);
      }
      copies.push([t, src]);
      used.add(key);
    }
  };
  const params = model.namedParameters();
  plan('param', params);
  plan('buffer', model.namedBuffers());
  const extra = [...tensors.keys()].filter((k) => !used.has(k) && !k.startsWith('optim/'));
  if (extra.length) throw new CheckpointError(`${path}: holds ${extra.slice(0, 3).map((k) => `'${k}'`).join(', ')}${extra.length > 3 ? ` and ${extra.length - 3} more` : ''} that the model lacks (another architecture?)`);

  const opt = opts.optimizer;
  const states = new Map<Tensor, Record<string, Tensor | number>>();
  const ho = header.optimizer;
  if (opt) {
    if (!ho) throw new CheckpointError(`${path}: holds no optimizer state`);
    if (ho.groups.length !== opt.groups.length) throw new CheckpointError(`${path}: optimizer state has ${ho.groups.length} parameter groups, the optimizer ${opt.groups.length}`);
    // The saved lrs must be valid settings of the optimizer they go into.
    ho.groups.forEach((g, i) => {
      try {
        opt.checkOptions({ ...opt.groups[i]!.options, lr: g.lr });
      } catch (e) {
        throw new CheckpointError(`${path}: optimizer group ${i}: ${(e as Error).message}`);
      }
    });
    const byName = new Map(params);
    for (const name of Object.keys(ho.scalars)) {
      if (!byName.has(name)) throw new CheckpointError(`${path}: optimizer state for '${name}', which is not a parameter of the model`);
    }
    for (const [key, t] of tensors) {
      if (!key.startsWith('optim/')) continue;
      const rest = key.slice('optim/'.length);
      const cut = rest.lastIndexOf('/');
      const name = rest.slice(0, cut);
      const p = cut > 0 ? byName.get(name) : undefined;
      if (!p) throw new CheckpointError(`${path}: optimizer state '${key}' is for no parameter of the model`);
      if (!isStateKey(rest.slice(cut + 1))) throw new CheckpointError(`${path}: optimizer state '${key}' has a key that is not a state name`);
      // Every tensor-valued state (momentum, Adam moments) has its parameter's shape.
      if (t.shape.join() !== p.shape.join() || !DTYPES[t.dtype].isFloat) {
        throw new CheckpointError(`${path}: optimizer state '${key}' is ${t.dtype} [${t.shape}], its parameter '${name}' is [${p.shape}]`);
      }
      ((states.get(p) ?? states.set(p, {}).get(p)!) as Record<string, Tensor | number>)[rest.slice(cut + 1)] = t;
    }
    for (const [name, p] of params) {
      const sc = ho.scalars[name];
      if (!sc) continue;
      const st = states.get(p) ?? states.set(p, {}).get(p)!;
      for (const [k, v] of Object.entries(sc)) {
        // keys checked by isStateKey
        if (Object.hasOwn(st, k)) throw new CheckpointError(`${path}: optimizer state '${name}/${k}' is given both as a scalar and as the tensor 'optim/${name}/${k}'`);
        st[k] = v;
      }
    }
    checkOptimizerState(path, opt, params, states);
  }

  // 2. Commit: nothing below can fail on the file's contents.
  for (const [t, src] of copies) {
    t.dataSync().set(src.dataSync());
    t.version++;
  }
  if (opt && ho) {
    opt.stepCount = ho.stepCount;
    ho.groups.forEach((g, i) => {
      opt.groups[i]!.options.lr = g.lr;
    });
    opt.state.clear();
    for (const [p, st] of states) opt.state.set(p, st);
  }
  return header.meta;
}
