import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Tensor } from '../../src/core/tensor.js';
import { gemm } from '../../src/kernels/gemm.js';
import { nodeAtomicIo } from '../../src/io/atomic.js';
import { CheckpointError, type CheckpointIo, decodeCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { TrainingAbortedError, checkpointCallback, earlyStopping, fit } from '../../src/train/fit.js';
import { AdamW } from '../../src/train/optim.js';

/** A linear classifier with a buffer: enough to exercise fit and checkpoints. */
class Linear2 {
  readonly w = Tensor.randn([3, 2], { seed: 1, std: 0.1 }).requireGrad();
  readonly b = Tensor.zeros([3]).requireGrad();
  readonly seen = Tensor.zeros([1]);
  training = true;
  forward(x: Tensor): Tensor {
    if (this.training) this.seen.dataSync()[0]! += x.shape[0]!;
    return gemm(x, this.w, this.b, { transB: true });
  }
  parameters() {
    return [this.w, this.b];
  }
  namedParameters(): [string, Tensor][] {
    return [['fc.weight', this.w], ['fc.bias', this.b]];
  }
  namedBuffers(): [string, Tensor][] {
    return [['seen', this.seen]];
  }
  train(on = true) {
    this.training = on;
  }
  eval() {
    this.training = false;
  }
}

/** Three separable blobs in 2-D. */
function blobs(n: number, seed: number) {
  const x = Tensor.randn([n, 2], { seed, std: 0.3 });
  const d = x.dataSync();
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const centers = [[2, 0], [-1, 2], [-1, -2]];
  labels.forEach((y, i) => {
    d[2 * i] += centers[y]![0]!;
    d[2 * i + 1] += centers[y]![1]!;
  });
  return { images: x, labels };
}

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkpoints', () => {
  it('round-trips parameters, buffers and optimizer state (training resumes identically)', async () => {
    const data = blobs(60, 2);
    const a = new Linear2();
    const optA = new AdamW(a.parameters(), { lr: 0.05 });
    await fit(a, data, { epochs: 2, batchSize: 16, optimizer: optA, progress: false, seed: 3 });
    const path = join(dir, 'model.ckpt');
    await saveCheckpoint(path, a, { optimizer: optA, meta: { epoch: 2 } });

    const b = new Linear2();
    const optB = new AdamW(b.parameters(), { lr: 0.05 });
    expect(await loadCheckpoint(path, b, { optimizer: optB })).toEqual({ epoch: 2 });
    expect(Array.from(b.w.dataSync())).toEqual(Array.from(a.w.dataSync()));
    expect(b.seen.dataSync()[0]).toBe(120);
    expect(optB.stepCount).toBe(optA.stepCount);
    // One more identical epoch on both: the same weights (the Adam moments and step came back).
    await fit(a, data, { epochs: 1, batchSize: 16, optimizer: optA, progress: false, seed: 9 });
    await fit(b, data, { epochs: 1, batchSize: 16, optimizer: optB, progress: false, seed: 9 });
    expect(Array.from(b.w.dataSync())).toEqual(Array.from(a.w.dataSync()));
  });

  it('a failed save leaves the previous file intact and no temporary file behind', async () => {
    const m = new Linear2();
    const path = join(dir, 'model.ckpt');
    await saveCheckpoint(path, m);
    const before = await readFile(path);
    m.w.dataSync().fill(42);
    const real = await nodeAtomicIo();
    const failing: CheckpointIo = {
      ...real,
      open: async (p, f, m) => {
        const fh = await real.open(p, f, m);
        return {
          write: async () => {
            throw new Error('ENOSPC: no space left on device');
          },
          sync: () => fh.sync(),
          stat: () => fh.stat(),
          close: () => fh.close(),
        };
      },
      rename: async () => {
        throw new Error('not reached');
      },
    };
    await expect(saveCheckpoint(path, m, { io: failing })).rejects.toThrow(/ENOSPC.*unchanged/);
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
    expect(await readdir(dir)).toEqual(['model.ckpt']);
    // A crash between writing and renaming (rename fails): same guarantee.
    const renameFails: CheckpointIo = { ...real, rename: async () => { throw new Error('EIO'); } };
    await expect(saveCheckpoint(path, m, { io: renameFails })).rejects.toBeInstanceOf(CheckpointError);
    expect(Buffer.compare(await readFile(path), before)).toBe(0);
    expect(await readdir(dir)).toEqual(['model.ckpt']);
  });

  it('rejects truncated or foreign files and mismatched shapes with CheckpointError', async () => {
    const m = new Linear2();
    const path = join(dir, 'model.ckpt');
    await saveCheckpoint(path, m);
    const bytes = new Uint8Array(await readFile(path));
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4))).toThrow(/past the end/);
    expect(() => decodeCheckpoint(new Uint8Array(20))).toThrow(/bad magic/);
    const other = new Linear2();
    (other as { w: Tensor }).w = Tensor.zeros([2, 2]).requireGrad();
    await expect(loadCheckpoint(path, other)).rejects.toThrow(/fc.weight.*\[3,2\].*\[2,2\]/);
    await writeFile(join(dir, 'x'), 'hello world, not a checkpoint');
    await expect(loadCheckpoint(join(dir, 'x'), m)).rejects.toBeInstanceOf(CheckpointError);
  });
});

describe('fit', () => {
  it('learns, logs per-epoch history, stops early and saves the best checkpoint', async () => {
    const m = new Linear2();
    const optimizer = new AdamW(m.parameters(), { lr: 0.1 });
    const stopper = earlyStopping({ monitor: 'valLoss', patience: 2, minDelta: 1e-3 });
    const path = join(dir, 'best.ckpt');
    const { history, stoppedEarly } = await fit(m, blobs(90, 4), {
      epochs: 200,
      batchSize: 30,
      optimizer,
      validation: blobs(30, 5),
      callbacks: [stopper, checkpointCallback(path, { bestOnly: true })],
      progress: false,
    });
    expect(stoppedEarly).toBe(true);
    expect(history.length).toBeLessThan(200);
    expect(history.at(-1)!.valAccuracy).toBe(1);
    for (const [i, h] of history.entries()) {
      expect(h.epoch).toBe(i + 1);
      expect(h.lr).toBe(0.1);
      expect(h.timeMs).toBeGreaterThan(0);
    }
    const saved = new Linear2();
    const meta = await loadCheckpoint(path, saved);
    // bestOnly saves on any improvement of valLoss: the epoch of the lowest one.
    const best = history.reduce((a, h) => (h.valLoss! < a.valLoss! ? h : a));
    expect(meta.epoch).toBe(best.epoch);
    expect(stopper.bestEpoch).toBeLessThanOrEqual(best.epoch);
  });

  it('stops on an AbortSignal between batches with the history so far', async () => {
    const ctrl = new AbortController();
    const m = new Linear2();
    const run = fit(m, blobs(300, 6), {
      epochs: 1000,
      batchSize: 10,
      optimizer: new AdamW(m.parameters()),
      progress: false,
      callbacks: [{ onEpochEnd: (l) => void (l.epoch === 2 && ctrl.abort()) }],
      signal: ctrl.signal,
    });
    const err = await run.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingAbortedError);
    expect((err as TrainingAbortedError).history.length).toBe(2);
  });

  it('rejects inconsistent data', async () => {
    const m = new Linear2();
    await expect(fit(m, { images: Tensor.zeros([4, 2]), labels: [0, 1] }, { epochs: 1, optimizer: new AdamW(m.parameters()), progress: false })).rejects.toThrow(/4 inputs but 2 labels/);
  });
});
