import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LightconvError, OnnxError, ValueError } from '../../src/core/errors.js';
import { encodePng } from '../../src/data/image.js';
import { listCsvImages, listImageFolder, loadImageFolder } from '../../src/data/datasets.js';
import { readImage, readImageSync } from '../../src/data/decode.js';
import { openRegularFileSync, readRegularFile, readRegularFileSync } from '../../src/io/files.js';
import { externalReader } from '../../src/io/onnx/external.js';
import { readOnnx } from '../../src/io/onnx/model.js';
import { CheckpointError, loadCheckpoint } from '../../src/train/checkpoint.js';

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lc-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A named pipe (FIFO): opening one for reading without a writer blocks forever with a plain open. */
function fifo(path: string): string {
  execFileSync('mkfifo', [path]);
  return path;
}
const canFifo = process.platform !== 'win32';

const png = () => encodePng(new Uint8Array(4 * 4 * 3).fill(200), 4, 4);

describe.skipIf(!canFifo)('non-regular files are refused with a typed error before reading (never a hang)', () => {
  it('readRegularFile / readRegularFileSync: FIFO, directory, missing file', async () => {
    const p = fifo(join(dir, 'pipe'));
    await expect(readRegularFile(p)).rejects.toThrow(ValueError);
    await expect(readRegularFile(p)).rejects.toThrow(/pipe: is a FIFO \(named pipe\), not a regular file/);
    expect(() => readRegularFileSync(fs, p)).toThrow(/pipe: is a FIFO/);
    await expect(readRegularFile(dir)).rejects.toThrow(/is a directory, not a regular file/);
    await expect(readRegularFile(join(dir, 'absent'))).rejects.toThrow(/absent: cannot read \(ENOENT\)/);
    await expect(readRegularFile(join(dir, 'absent'))).rejects.toBeInstanceOf(LightconvError);
  });

  it('a FIFO or a directory as the ONNX model path', async () => {
    const p = fifo(join(dir, 'model.onnx'));
    await expect(readOnnx(p)).rejects.toThrow(/model\.onnx: is a FIFO/);
    await expect(readOnnx(dir)).rejects.toThrow(/is a directory/);
  });

  it('a FIFO as a checkpoint', async () => {
    const p = fifo(join(dir, 'm.ckpt'));
    const model = { namedParameters: () => [], namedBuffers: () => [] };
    await expect(loadCheckpoint(p, model)).rejects.toThrow(CheckpointError);
    await expect(loadCheckpoint(p, model)).rejects.toThrow(/m\.ckpt: is a FIFO/);
  });

  it('a FIFO named *.png: readImage, readImageSync, listImageFolder, loadImageFolder; a FIFO as the CSV', async () => {
    const root = join(dir, 'data');
    await mkdir(join(root, 'a'), { recursive: true });
    await mkdir(join(root, 'b'), { recursive: true });
    await writeFile(join(root, 'a', '1.png'), png());
    await writeFile(join(root, 'b', '1.png'), png());
    const p = fifo(join(root, 'b', '2.png'));
    await expect(readImage(p)).rejects.toThrow(/2\.png: is a FIFO/);
    expect(() => readImageSync(fs, p)).toThrow(ValueError);
    await expect(listImageFolder(root)).rejects.toThrow(/listImageFolder: '.*2\.png' is not a regular file/);
    await expect(loadImageFolder(root)).rejects.toThrow(/loadImageFolder: '.*2\.png' is not a regular file/);
    const csv = fifo(join(dir, 'labels.csv'));
    await expect(listCsvImages(root, csv)).rejects.toThrow(/labels\.csv: is a FIFO/);
  });
});

describe('dataset folders do not follow symlinks out of their root', () => {
  async function layout() {
    const root = join(dir, 'data');
    const outside = join(dir, 'outside');
    await mkdir(join(root, 'a'), { recursive: true });
    await mkdir(join(root, 'b'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(root, 'a', '1.png'), png());
    await writeFile(join(root, 'b', '1.png'), png());
    // Not an image: its bytes must never appear in an error message.
    await writeFile(join(outside, 'secret.png'), 'TOP-SECRET-CONTENTS');
    return { root, outside };
  }

  it('a file symlink to outside the root is an error naming the link, never showing the file', async () => {
    const { root, outside } = await layout();
    await symlink(join(outside, 'secret.png'), join(root, 'b', '2.png'));
    for (const f of [listImageFolder, loadImageFolder]) {
      const err = await f(root).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValueError);
      expect((err as Error).message).toMatch(/'.*b\/2\.png' is a symbolic link leading out of the dataset's folder/);
      expect((err as Error).message).not.toMatch(/TOP-SECRET|54 4f 50/);
    }
    await writeFile(join(root, 'labels.csv'), 'image_id,dx\n1,a\n2,b\n');
    await expect(listCsvImages(root, join(root, 'labels.csv'))).rejects.toThrow(/symbolic link leading out/);
  });

  it('a folder symlink to outside the root is an error; links within the root are followed', async () => {
    const { root, outside } = await layout();
    await symlink(outside, join(root, 'b', 'more'));
    await expect(listImageFolder(root)).rejects.toThrow(/'.*b\/more' is a symbolic link leading out/);
    await rm(join(root, 'b', 'more'));
    // Inside the root: followed as before.
    await symlink(join(root, 'a', '1.png'), join(root, 'b', 'copy.png'));
    const list = await listImageFolder(root);
    expect(list.items.map((it) => it.file)).toEqual(['a/1.png', 'b/1.png', 'b/copy.png']);
    // A non-image symlink out of the root (a README, say) is simply not data: skipped.
    await symlink(join(outside, 'secret.png'), join(root, 'b', 'NOTES'));
    expect((await listImageFolder(root)).items).toHaveLength(3);
  });
});

describe('external data: checks on the opened descriptor', () => {
  async function model() {
    const m = join(dir, 'm');
    await mkdir(m);
    await writeFile(join(m, 'w.bin'), Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    await writeFile(join(dir, 'secret.bin'), Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]));
    return { read: await externalReader(join(m, 'model.onnx')), m };
  }

  it('reads a plain file; refuses a hard link (nlink 2), a symlink, a FIFO, and a too-short file', async () => {
    const { read, m } = await model();
    expect(Array.from(read('w.bin', 2, 4, 't'))).toEqual([3, 4, 5, 6]);
    await link(join(dir, 'secret.bin'), join(m, 'hard.bin'));
    expect(() => read('hard.bin', 0, 8, 't')).toThrow(OnnxError);
    expect(() => read('hard.bin', 0, 8, 't')).toThrow(/'hard\.bin' has 2 hard links/);
    await symlink(join(dir, 'secret.bin'), join(m, 'sym.bin'));
    expect(() => read('sym.bin', 0, 8, 't')).toThrow(/symbolic link/);
    if (canFifo) {
      fifo(join(m, 'pipe.bin'));
      expect(() => read('pipe.bin', 0, 8, 't')).toThrow(/'pipe\.bin' is a FIFO \(named pipe\), not a regular file/);
    }
    expect(() => read('w.bin', 4, 8, 't')).toThrow(/is 8 bytes, too short for offset 4 \+ length 8/);
  });

  it('the descriptor is opened without following a symlink (O_NOFOLLOW), so a swap after the check fails the open', async () => {
    await writeFile(join(dir, 'secret.bin'), 'outside');
    await symlink(join(dir, 'secret.bin'), join(dir, 'swapped.bin'));
    if (fs.constants.O_NOFOLLOW === undefined) return; // Windows: no O_NOFOLLOW (symlinks need privileges there)
    expect(() => openRegularFileSync(fs, join(dir, 'swapped.bin'), { noFollow: true })).toThrow(/swapped\.bin: is a symbolic link, which is not followed here/);
    // Without noFollow (a model path the user gave) the link is followed as usual.
    const { fd } = openRegularFileSync(fs, join(dir, 'swapped.bin'));
    fs.closeSync(fd);
  });

  it.skipIf(process.platform === 'win32')('a file swapped for a symlink to outside the folder, over and over while loading: never leaks outside bytes', async () => {
    const { read, m } = await model();
    const target = join(m, 'w.bin');
    // Another process swaps w.bin between the real file and a symlink to ../secret.bin as fast as it can.
    const swapper = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs'); const [t, s] = process.argv.slice(1); const good = fs.readFileSync(t);
         for (let i = 0; ; i++) { const a = t + '.l' + i; fs.symlinkSync(s, a); fs.renameSync(a, t);
           const b = t + '.f' + i; fs.writeFileSync(b, good); fs.renameSync(b, t); }`,
        target,
        join(dir, 'secret.bin'),
      ],
      { stdio: 'ignore' },
    );
    try {
      let ok = 0;
      let refusedCount = 0;
      const deadline = Date.now() + 1500;
      await new Promise((r) => setTimeout(r, 100)); // let the swapper start
      while (Date.now() < deadline) {
        try {
          const got = read('w.bin', 0, 8, 't');
          expect(Array.from(got)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
          ok++;
        } catch (e) {
          expect(e).toBeInstanceOf(OnnxError);
          expect((e as Error).message).not.toMatch(/\b9\b/);
          refusedCount++;
        }
        if ((ok + refusedCount) % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      // Both outcomes occur: the race was really run (reads succeeded and swaps were caught).
      expect(ok + refusedCount).toBeGreaterThan(100);
      expect(refusedCount).toBeGreaterThan(0);
    } finally {
      swapper.kill('SIGKILL');
    }
  });
});
