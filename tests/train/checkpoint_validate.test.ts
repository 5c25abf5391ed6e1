import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { crc32 } from '../../src/io/crc32.js';
import { CheckpointError, decodeCheckpoint, encodeCheckpoint, loadCheckpoint } from '../../src/train/checkpoint.js';
import { AdamW, SGD } from '../../src/train/optim.js';

/** Two layers: fc1 [4, 3] and fc2 [2, 4], plus a buffer. */
function net(seed = 1) {
  const fc1 = Tensor.randn([4, 3], { seed, std: 0.5 }).requireGrad();
  const fc2 = Tensor.randn([2, 4], { seed: seed + 1, std: 0.5 }).requireGrad();
  const count = Tensor.zeros([1]);
  return {
    fc1,
    fc2,
    count,
    namedParameters: (): [string, Tensor][] => [['fc1', fc1], ['fc2', fc2]],
    namedBuffers: (): [string, Tensor][] => [['count', count]],
  };
}
type Net = ReturnType<typeof net>;
const snapshot = (m: Net) => [...m.fc1.dataSync(), ...m.fc2.dataSync(), ...m.count.dataSync()];

/** A trained-ish AdamW on `m`: one step, so exp_avg / exp_avg_sq / step exist. */
function adam(m: Net) {
  const opt = new AdamW([m.fc1, m.fc2], { lr: 0.01 });
  m.fc1.grad = Tensor.ones([4, 3]);
  m.fc2.grad = Tensor.ones([2, 4]);
  opt.step();
  return opt;
}

const enc = new TextEncoder();

/** The header and data section of a (version 2) checkpoint. */
function split(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + n))) as Record<string, unknown>;
  return { header, data: bytes.subarray(Math.ceil((16 + n) / 8) * 8) };
}

/** A checkpoint file from any header value and data bytes, with a correct checksum (so validation, not the CRC, must catch it). */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), version: 1 | 2 = 2): Uint8Array {
  const json = enc.encode(JSON.stringify(header));
  const at = version === 2 ? 16 : 12;
  const start = Math.ceil((at + json.length) / 8) * 8;
  const out = new Uint8Array(start + data.length);
  out.set(enc.encode(version === 2 ? 'LCCKPT02' : 'LCCKPT01'));
  const v = new DataView(out.buffer);
  v.setUint32(8, json.length, true);
  out.set(json, at);
  out.set(data, start);
  if (version === 2) v.setUint32(12, crc32(out.subarray(16)), true);
  return out;
}

/** A valid checkpoint of `m` (with `opt`), its header changed by `edit`. */
function mutate(m: Net, edit: (h: Record<string, unknown> & { tensors: Record<string, unknown>[] }) => void, opt?: AdamW): Uint8Array {
  const { header, data } = split(encodeCheckpoint(m, opt));
  edit(header as Record<string, unknown> & { tensors: Record<string, unknown>[] });
  return craft(header, data);
}

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc-ckpt-val-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `bytes`, loads them into a fresh net (and optimizer) and returns the error; asserts nothing changed. */
async function refused(bytes: Uint8Array, into = net(9), opt?: AdamW): Promise<CheckpointError> {
  const path = join(dir, 'bad.ckpt');
  await writeFile(path, bytes);
  const before = snapshot(into);
  const optBefore = opt ? { steps: opt.stepCount, lr: opt.groups.map((g) => g.options.lr), state: [...opt.state.entries()] } : undefined;
  const err = await loadCheckpoint(path, into, opt ? { optimizer: opt } : {}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CheckpointError);
  // All or nothing: not one value of the model (or the optimizer) was touched.
  expect(snapshot(into)).toEqual(before);
  if (opt) expect({ steps: opt.stepCount, lr: opt.groups.map((g) => g.options.lr), state: [...opt.state.entries()] }).toEqual(optBefore);
  return err as CheckpointError;
}

describe('loadCheckpoint validates the whole file before it writes', () => {
  it('a header that is null, an array, a number, or lacks tensors', async () => {
    expect((await refused(craft(null))).message).toMatch(/bad\.ckpt: invalid header: expected an object, found null/);
    expect((await refused(craft([1, 2]))).message).toMatch(/found an array/);
    expect((await refused(craft(42))).message).toMatch(/found number/);
    const noTensors = { format: 'lightconv-checkpoint', version: 2, dataBytes: 0, meta: {}, optimizer: null };
    expect((await refused(craft(noTensors))).message).toMatch(/'tensors' is missing/);
    expect((await refused(craft({ ...noTensors, tensors: {} }))).message).toMatch(/'tensors' is not an array/);
    expect((await refused(craft({ ...noTensors, tensors: [null] }))).message).toMatch(/tensors\[0\] is not an object/);
    expect((await refused(craft({ ...noTensors, format: 'x', tensors: [] }))).message).toMatch(/format is "x"/);
    expect((await refused(craft({ ...noTensors, version: 1, tensors: [] }))).message).toMatch(/unsupported version 1/);
  });

  it('dtype names outside the allowlist, including __proto__ and constructor', async () => {
    for (const dtype of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'float16', 7, null]) {
      const err = await refused(mutate(net(), (h) => (h.tensors[0]!.dtype = dtype)));
      expect(err.message).toMatch(new RegExp(`tensor 'param/fc1' has unknown dtype ${JSON.stringify(JSON.stringify(dtype)).slice(1, -1).replace(/[()]/g, '\\$&')}`));
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('offsets negative, fractional or past the data; byte counts not a multiple of the element size or not the shape', async () => {
    const cases: [(h: { tensors: Record<string, unknown>[] }) => void, RegExp][] = [
      [(h) => (h.tensors[1]!.offset = -8), /'param\/fc2' has offset -8; offsets are non-negative integers/],
      [(h) => (h.tensors[1]!.offset = 1.5), /'param\/fc2' has offset 1.5/],
      [(h) => (h.tensors[1]!.offset = 1e9), /'param\/fc2' at offset 1000000000 \+ 32 bytes runs past the \d+-byte data section/],
      [(h) => (h.tensors[0]!.bytes = 47), /'param\/fc1' has 47 bytes, not a multiple of its float32 element size 4/],
      [(h) => (h.tensors[0]!.bytes = 44), /'param\/fc1': shape \[4, 3\] of float32 needs 48 bytes, the header says 44/],
      [(h) => (h.tensors[0]!.shape = [4, -3]), /'param\/fc1' has an invalid shape \[4,-3\]/],
      [(h) => (h.tensors[0]!.shape = [4, 'x']), /invalid shape/],
      [(h) => (h.tensors[0]!.shape = new Array(40).fill(1)), /invalid shape/],
      [(h) => (h.tensors[1]!.name = 'param/fc1'), /tensor 'param\/fc1' appears twice/],
      [(h) => (h.tensors[0]!.name = ''), /tensors\[0\] has no name/],
    ];
    for (const [edit, why] of cases) expect((await refused(mutate(net(), edit))).message).toMatch(why);
  });

  it('header bytes that are not JSON or not UTF-8, a truncated header, a file cut short', async () => {
    const good = encodeCheckpoint(net());
    const bad = good.slice();
    bad[20] = 0xff; // inside the JSON: invalid UTF-8 (checksum fixed up so validation must catch it)
    new DataView(bad.buffer).setUint32(12, crc32(bad.subarray(16)), true);
    expect((await refused(bad)).message).toMatch(/corrupt header/);
    const long = good.slice();
    new DataView(long.buffer).setUint32(8, 1e6, true);
    expect((await refused(long)).message).toMatch(/truncated header \(1000000 bytes declared/);
    expect((await refused(good.subarray(0, good.length - 8))).message).toMatch(/expected \d+ \(truncated or damaged/);
    expect((await refused(new Uint8Array(10))).message).toMatch(/bad magic/);
  });

  it('loading into another architecture changes nothing, even when the first layers match', async () => {
    const src = net(1);
    // Same fc1, different fc2: the old loader copied fc1 before failing on fc2.
    const other = net(5);
    (other as { fc2: Tensor }).fc2 = Tensor.zeros([3, 4]);
    other.namedParameters = () => [['fc1', other.fc1], ['fc2', other.fc2]];
    const err = await refused(encodeCheckpoint(src), other);
    expect(err.message).toMatch(/param 'fc2' is float32 \[2,4\], the model's is float32 \[3,4\]/);
    // A checkpoint with more tensors than the model (a larger architecture).
    const smaller = net(5);
    smaller.namedParameters = () => [['fc1', smaller.fc1]];
    expect((await refused(encodeCheckpoint(src), smaller)).message).toMatch(/holds 'param\/fc2' that the model lacks/);
    const missing = net(5);
    missing.namedBuffers = () => [['count', missing.count], ['other', Tensor.zeros([1])]];
    expect((await refused(encodeCheckpoint(src), missing)).message).toMatch(/no buffer 'other'/);
  });

  it('optimizer state: shapes, parameter names, state keys and group counts are all checked first', async () => {
    const src = net(1);
    const opt = adam(src);
    const good = encodeCheckpoint(src, opt);
    const { header, data } = split(good);
    const tensors = header.tensors as { name: string; shape: number[]; bytes: number }[];
    // exp_avg of fc1 declared [12] instead of [4, 3]: same bytes, wrong shape (an Adam step would then use garbage).
    const reshaped = structuredClone(header);
    (reshaped.tensors as { name: string; shape: number[] }[]).find((t) => t.name === 'optim/fc1/exp_avg')!.shape = [12];
    const into = net(7);
    const intoOpt = adam(into);
    expect((await refused(craft(reshaped, data), into, intoOpt)).message).toMatch(/optimizer state 'optim\/fc1\/exp_avg' is float32 \[12\], its parameter 'fc1' is \[4,3\]/);
    // State for a parameter the model does not have.
    const renamed = structuredClone(header);
    (renamed.tensors as { name: string }[]).find((t) => t.name === 'optim/fc2/exp_avg')!.name = 'optim/fc9/exp_avg';
    expect((await refused(craft(renamed, data), into, intoOpt)).message).toMatch(/'optim\/fc9\/exp_avg' is for no parameter/);
    // A state key that would reach the object's prototype.
    const proto = structuredClone(header);
    (proto.tensors as { name: string }[]).find((t) => t.name === 'optim/fc2/exp_avg')!.name = 'optim/fc2/__proto__';
    expect((await refused(craft(proto, data), into, intoOpt)).message).toMatch(/'optim\/fc2\/__proto__' has a key that is not a state name/);
    const scalars = structuredClone(header);
    (scalars.optimizer as { scalars: Record<string, unknown> }).scalars = JSON.parse('{"fc1": {"__proto__": 1}}');
    expect((await refused(craft(scalars, data), into, intoOpt)).message).toMatch(/state of 'fc1' has the key "__proto__"/);
    const constructorKey = structuredClone(header);
    (constructorKey.optimizer as { scalars: Record<string, unknown> }).scalars = { fc1: { constructor: 1 } };
    expect((await refused(craft(constructorKey, data), into, intoOpt)).message).toMatch(/"constructor", not a state name/);
    // Two groups saved, one in the optimizer.
    const groups = structuredClone(header);
    const g = (groups.optimizer as { groups: unknown[] }).groups;
    g.push(g[0]);
    expect((await refused(craft(groups, data), into, intoOpt)).message).toMatch(/2 parameter groups, the optimizer 1/);
    const badStep = structuredClone(header);
    (badStep.optimizer as { stepCount: unknown }).stepCount = -1;
    expect((await refused(craft(badStep, data), into, intoOpt)).message).toMatch(/stepCount -1/);
    // No optimizer state at all.
    expect((await refused(encodeCheckpoint(src), into, intoOpt)).message).toMatch(/holds no optimizer state/);
    expect(tensors.length).toBe(7); // fc1, fc2, count, and two Adam moments for each parameter
    // The valid file loads, and one more step keeps every weight finite.
    const path = join(dir, 'good.ckpt');
    await writeFile(path, good);
    await loadCheckpoint(path, into, { optimizer: intoOpt });
    expect(snapshot(into)).toEqual(snapshot(src));
    into.fc1.grad = Tensor.ones([4, 3]);
    into.fc2.grad = Tensor.ones([2, 4]);
    intoOpt.step();
    expect(snapshot(into).every(Number.isFinite)).toBe(true);
  });

  it('an SGD momentum buffer of the wrong shape is refused too', async () => {
    const src = net(1);
    const opt = new SGD([src.fc1, src.fc2], { lr: 0.1, momentum: 0.9 });
    src.fc1.grad = Tensor.ones([4, 3]);
    src.fc2.grad = Tensor.ones([2, 4]);
    opt.step();
    const bytes = mutate(src, (h) => (h.tensors.find((t) => t.name === 'optim/fc2/momentum_buffer')!.shape = [4, 2]), opt as unknown as AdamW);
    const into = net(3);
    const intoOpt = new SGD([into.fc1, into.fc2], { lr: 0.1, momentum: 0.9 });
    expect((await refused(bytes, into, intoOpt as unknown as AdamW)).message).toMatch(/'optim\/fc2\/momentum_buffer' is float32 \[4,2\], its parameter 'fc2' is \[2,4\]/);
  });

  it('files of the first format (no checksum) still load; decodeCheckpoint validates the same way', async () => {
    const src = net(1);
    const { header, data } = split(encodeCheckpoint(src));
    const v1 = craft({ ...header, version: 1 }, data, 1);
    const path = join(dir, 'v1.ckpt');
    await writeFile(path, v1);
    const into = net(4);
    await loadCheckpoint(path, into);
    expect(snapshot(into)).toEqual(snapshot(src));
    expect(() => decodeCheckpoint(craft(null))).toThrow(CheckpointError);
  });
});
