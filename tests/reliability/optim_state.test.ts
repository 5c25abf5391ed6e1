import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValueError } from '../../src/core/errors.js';
import { Tensor } from '../../src/core/tensor.js';
import { crc32 } from '../../src/io/crc32.js';
import { CheckpointError, encodeCheckpoint, loadCheckpoint } from '../../src/train/checkpoint.js';
import { Adam, AdamW, SGD } from '../../src/train/optim.js';

/**
 * Class 5, optimizer state: hostile checkpoints with a correct CRC whose optimizer state would
 * load and then break the next step (NaN weights, an untyped TypeError, a silent reset). Each
 * must be refused with a CheckpointError naming the key, before anything is copied.
 */

function net(seed = 1) {
  const w = Tensor.randn([3, 2], { seed, std: 0.5 }).requireGrad();
  const b = Tensor.randn([3], { seed: seed + 1, std: 0.5 }).requireGrad();
  return { w, b, namedParameters: (): [string, Tensor][] => [['w', w], ['b', b]], namedBuffers: (): [string, Tensor][] => [] };
}
type Net = ReturnType<typeof net>;
const snapshot = (m: Net) => [...m.w.dataSync(), ...m.b.dataSync()];
function stepped<O extends Adam | SGD>(m: Net, make: (p: Tensor[]) => O): O {
  const opt = make([m.w, m.b]);
  m.w.grad = Tensor.ones([3, 2]);
  m.b.grad = Tensor.ones([3]);
  opt.step();
  return opt;
}

interface Hdr {
  tensors: { name: string; dtype: string; shape: number[]; offset: number; bytes: number }[];
  dataBytes: number;
  optimizer: { stepCount: number; groups: { lr: number; initialLr: number }[]; scalars: Record<string, Record<string, unknown>> };
}
/** A checkpoint of `m` and `opt` with its header edited (and tensor data appended for new entries), checksum recomputed. */
function craft(m: Net, opt: Adam | SGD, edit: (h: Hdr, add: (name: string, data: Float32Array | Float64Array, dtype?: string, shape?: number[]) => void) => void): Uint8Array {
  const good = encodeCheckpoint(m, opt);
  const n = new DataView(good.buffer).getUint32(8, true);
  const h = JSON.parse(new TextDecoder().decode(good.subarray(16, 16 + n))) as Hdr;
  const extra: Uint8Array[] = [];
  let data = good.subarray(Math.ceil((16 + n) / 8) * 8);
  edit(h, (name, d, dtype = 'float32', shape = [d.length]) => {
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    h.tensors.push({ name, dtype, shape, offset: h.dataBytes, bytes: bytes.length });
    const padded = new Uint8Array(Math.ceil(bytes.length / 8) * 8);
    padded.set(bytes);
    h.dataBytes += padded.length;
    extra.push(padded);
  });
  const joined = new Uint8Array(data.length + extra.reduce((a, e) => a + e.length, 0));
  joined.set(data);
  let at = data.length;
  for (const e of extra) (joined.set(e, at), (at += e.length));
  data = joined;
  const json = new TextEncoder().encode(JSON.stringify(h));
  const start = Math.ceil((16 + json.length) / 8) * 8;
  const out = new Uint8Array(start + data.length);
  out.set(new TextEncoder().encode('LCCKPT02'));
  const v = new DataView(out.buffer);
  v.setUint32(8, json.length, true);
  out.set(json, 16);
  out.set(data, start);
  v.setUint32(12, crc32(out.subarray(16)), true);
  return out;
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc-optim-state-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Loads `bytes` into a fresh net and optimizer; returns the error after checking nothing changed. */
async function refused(bytes: Uint8Array, makeOpt: (p: Tensor[]) => Adam | SGD): Promise<string> {
  const into = net(7);
  const opt = stepped(into, makeOpt);
  const before = { w: snapshot(into), steps: opt.stepCount, lr: opt.groups.map((g) => g.options.lr), state: [...opt.state.entries()].map(([p, s]) => [p, { ...s }]) };
  const path = join(dir, 'bad.ckpt');
  await writeFile(path, bytes);
  const err = await loadCheckpoint(path, into, { optimizer: opt }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CheckpointError);
  expect({ w: snapshot(into), steps: opt.stepCount, lr: opt.groups.map((g) => g.options.lr), state: [...opt.state.entries()].map(([p, s]) => [p, { ...s }]) }).toEqual(before);
  return (err as Error).message;
}

const adam = (p: Tensor[]) => new Adam(p, { lr: 0.01 });
const ams = (p: Tensor[]) => new Adam(p, { lr: 0.01, amsgrad: true });
const sgd = (p: Tensor[]) => new SGD(p, { lr: 0.1, momentum: 0.9 });

describe('optimizer state in a checkpoint is validated before anything is copied', () => {
  const src = net(1);
  const opt = stepped(src, adam);
  const cases: [string, (h: Hdr, add: (name: string, d: Float32Array | Float64Array, dtype?: string, shape?: number[]) => void) => void, RegExp][] = [
    ['step = -1', (h) => (h.optimizer.scalars.w!.step = -1), /state 'w\/step' is -1; it must be a non-negative integer/],
    ['step = 1.5', (h) => (h.optimizer.scalars.w!.step = 1.5), /'w\/step' is 1\.5/],
    ['step = 2^60', (h) => (h.optimizer.scalars.b!.step = 2 ** 60), /'b\/step' is 1152921504606847000/],
    ['step as a string', (h) => (h.optimizer.scalars.w!.step = '3'), /state 'w\/step' is "3", not a finite number/],
    ['exp_avg as the number 5', (h) => {
      h.tensors = h.tensors.filter((t) => t.name !== 'optim/w/exp_avg');
      h.optimizer.scalars.w!.exp_avg = 5;
    }, /'w\/exp_avg' is the number 5; Adam keeps 'exp_avg' as a tensor/],
    ['exp_avg both as scalar and tensor', (h) => (h.optimizer.scalars.w!.exp_avg = 5), /'w\/exp_avg' is given both as a scalar and as the tensor/],
    ['a tensor optim/w/step', (h, add) => {
      delete h.optimizer.scalars.w!.step;
      add('optim/w/step', new Float32Array(6).fill(1), 'float32', [3, 2]);
    }, /'w\/step' is a tensor; Adam keeps 'step' as a number/],
    ['exp_avg_sq missing', (h) => (h.tensors = h.tensors.filter((t) => t.name !== 'optim/b/exp_avg_sq')), /state of 'b' lacks 'exp_avg_sq'/],
    ['step missing', (h) => delete h.optimizer.scalars.b!.step, /state of 'b' lacks 'step'/],
    ['an unknown tensor key', (h, add) => add('optim/b/velocity', new Float32Array(3)), /'b\/velocity' is a tensor; Adam keeps no 'velocity'/],
    ['an unknown scalar key', (h) => (h.optimizer.scalars.b!.extra = 1), /'b\/extra' is the number 1; Adam keeps no 'extra'/],
    ['a negative second moment', (h, add) => {
      h.tensors = h.tensors.filter((t) => t.name !== 'optim/b/exp_avg_sq');
      add('optim/b/exp_avg_sq', new Float32Array([0.1, -1, 0.1]));
    }, /'b\/exp_avg_sq' holds -1 at index 1; it must be finite and ≥ 0/],
    ['a NaN first moment', (h, add) => {
      h.tensors = h.tensors.filter((t) => t.name !== 'optim/b/exp_avg');
      add('optim/b/exp_avg', new Float32Array([0, Number.NaN, 0]));
    }, /'b\/exp_avg' holds NaN at index 1/],
    ['a float64 moment for a float32 parameter', (h, add) => {
      h.tensors = h.tensors.filter((t) => t.name !== 'optim/b/exp_avg');
      add('optim/b/exp_avg', new Float64Array(3), 'float64');
    }, /'b\/exp_avg' is float64, Adam keeps it as float32/],
    ['lr = -1e30', (h) => (h.optimizer.groups[0]!.lr = -1e30), /optimizer group 0 must have a finite lr and initialLr ≥ 0/],
    ['initialLr = -1', (h) => (h.optimizer.groups[0]!.initialLr = -1), /optimizer group 0 must have a finite lr/],
  ];
  for (const [name, edit, want] of cases) {
    it(name, async () => {
      expect(await refused(craft(src, opt, edit), adam)).toMatch(want);
    });
  }

  it('amsgrad needs its running max; SGD with momentum needs its buffer and has no step', async () => {
    // Saved without amsgrad, loaded into an amsgrad Adam: max_exp_avg_sq would silently start at zero.
    expect(await refused(encodeCheckpoint(src, opt), ams)).toMatch(/state of 'w' lacks 'max_exp_avg_sq'/);
    const s = net(1);
    const o = stepped(s, sgd);
    // (A parameter with no state at all is one never stepped, as a frozen one: that loads.)
    expect(await refused(craft(s, o, (h) => (h.tensors.find((t) => t.name === 'optim/w/momentum_buffer')!.dtype = 'int32')), sgd)).toMatch(/optimizer state 'optim\/w\/momentum_buffer' is int32/);
    expect(await refused(craft(s, o, (h) => ((h.optimizer.scalars.w ??= {}).step = 1)), sgd)).toMatch(/'w\/step' is the number 1; SGD keeps no 'step'/);
  });

  it('a valid file still loads, and a step after it keeps weights finite', async () => {
    const path = join(dir, 'good.ckpt');
    await writeFile(path, encodeCheckpoint(src, opt));
    const into = net(3);
    const o = stepped(into, adam);
    await loadCheckpoint(path, into, { optimizer: o });
    expect(snapshot(into)).toEqual(snapshot(src));
    into.w.grad = Tensor.ones([3, 2]);
    into.b.grad = Tensor.ones([3]);
    o.step();
    expect(snapshot(into).every(Number.isFinite)).toBe(true);
  });

  it('optimizer settings out of range are refused when constructed (ValueError naming the setting)', () => {
    const p = [Tensor.zeros([2]).requireGrad()];
    expect(() => new Adam(p, { lr: -1e30 })).toThrow(/Adam: lr must be a finite number ≥ 0, got -1e\+30/);
    expect(() => new Adam(p, { lr: Number.POSITIVE_INFINITY })).toThrow(ValueError);
    expect(() => new Adam(p, { betas: [1, 0.999] })).toThrow(/betas\[0\] must be a finite number ≥ 0 and < 1, got 1/);
    expect(() => new AdamW(p, { betas: [0.9, -0.1] })).toThrow(/AdamW: betas\[1\]/);
    expect(() => new Adam(p, { eps: -1 })).toThrow(/eps must be/);
    expect(() => new Adam(p, { weightDecay: Number.NaN })).toThrow(/weightDecay must be/);
    expect(() => new SGD(p, { lr: 0.1, momentum: -0.5 })).toThrow(/SGD: momentum must be a finite number ≥ 0/);
    expect(() => new SGD([{ params: p, options: { lr: -1 } }], { lr: 0.1 })).toThrow(/SGD: lr must be/);
  });
});
